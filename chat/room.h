#pragma once
// Rooms (DESIGN.md "Rooms"): a flat hash map from room name to a room id, rooms in a slab
// indexed by id, each room a dense member array with swap-remove. Every member entry and the
// session's Membership for that room point at each other (slot <-> membership index), so join
// and leave are O(1) and both sides are fixed up when an entry moves. Empty rooms are freed.
//
// Bounds (issue 13): the table caps the number of live rooms and the rooms one owner (a peer
// address) has created and that still live, and keeps the history of all rooms together under
// a byte budget. Over the budget, the oldest message of the room whose history holds the most
// bytes is evicted, until the total is under the budget again: a few busy (or hostile) rooms
// lose their oldest history first, while quiet rooms keep theirs. A max-heap of rooms keyed by
// history bytes makes each step O(log rooms).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "chat/chat_session.h"
#include "chat/flat_map.h"
#include "chat/history.h"
#include "protocol/ws_server.h"

namespace chat {

// One member of a room. 16 bytes: fan-out walks an array of these and reads `connection` only.
struct RoomMember {
  protocol::ConnectionId connection = 0;
  uint32_t session = 0;     // index in the SessionPool
  uint32_t membership = 0;  // index of this room in that session's MembershipList
};

// What one pending presence change says of a user: membership (joined, left) or, for a member
// whose session is held for resume, status (away, back).
enum class PresenceChange : uint8_t { kJoined, kLeft, kAway, kBack };

// Presence changes of one room not yet announced (issue 18: big rooms get one `members` event
// per batch instead of one event per join, leave, away or back). Net changes since the last
// announcement: a join and a leave of the same user within one batch cancel out (with any
// away/back of that user in between), and so do an away and a back, so every member that knew
// the room's list at the last announcement (or from a `who` answered since, which announces
// first) ends at the right list.
struct PresenceBatch {
  struct Change {
    std::string user;
    PresenceChange kind = PresenceChange::kJoined;
    bool cancelled = false;  // undone by the opposite change later in the batch
  };
  std::vector<Change> changes;                 // in the order they happened
  FlatMap<std::string, uint32_t> membership;   // user -> index of its uncancelled join or leave
  FlatMap<std::string, uint32_t> status;       // user -> index of its uncancelled away or back
  uint64_t since_ms = 0;                       // loop ms of the batch's first change

  // Records a change of `user`; the opposite of a change pending for it cancels both, a repeat
  // of it is dropped.
  void note(std::string_view user, PresenceChange kind);
  // Uncancelled changes of one kind, and of all kinds.
  size_t count(PresenceChange kind) const { return counts_[static_cast<size_t>(kind)]; }
  size_t size() const { return counts_[0] + counts_[1] + counts_[2] + counts_[3]; }

 private:
  // Cancels the pending change at `index` (its entry in `map` goes too).
  void cancel(FlatMap<std::string, uint32_t>& map, std::string_view user, uint32_t index);

  size_t counts_[4] = {0, 0, 0, 0};
};

// How often a counts-only `members` event may go out to a room of `members` (every node's):
// at most every floor_ms, and no more often than keeps telling them all within frames_per_s
// frames a second (0: no such bound). Filling a room of N at R joins a second then sends at
// most frames_per_s counts frames a second instead of N^2 / (2R) in all (issue 18).
inline uint64_t counts_interval_ms(size_t members, uint64_t floor_ms, size_t frames_per_s) {
  if (frames_per_s == 0) return floor_ms;
  return std::max<uint64_t>(floor_ms, uint64_t{members} * 1000 / frames_per_s);
}

class Room {
 public:
  explicit Room(size_t history_capacity) : history_(history_capacity) {}

  const std::string& name() const { return name_; }
  // Dense member array in no particular order; invalidated by any join or leave of this room.
  std::span<const RoomMember> members() const { return members_; }
  size_t size() const { return members_.size(); }
  // Read-only: messages go in through RoomTable::append_history, which keeps the budget.
  // With a room log (issue 14) the ring is a cache: a contiguous run of the newest messages.
  const History& history() const { return history_; }
  // True when the ring holds every message the room log had when it was loaded, plus every one
  // delivered since (nothing older is to be found in the log); false once the budget evicted
  // from it or when it was loaded from a partial read.
  bool history_complete() const { return history_complete_; }
  // Hands out the next message seq: 1, 2, 3, ... for the room's lifetime.
  uint64_t take_seq() { return next_seq_++; }
  // The seq the next message will get.
  uint64_t next_seq() const { return next_seq_; }
  // False for a freed slab slot.
  bool live() const { return live_; }
  // Changes waiting for the next presence batch (ChatApp), null when none; dropped with the
  // room. Mutable: what is still to be announced is not the room's membership, and the
  // fan-out of any room event (which sees a const Room) announces it first.
  std::unique_ptr<PresenceBatch>& pending_presence() const { return pending_presence_; }
  // Members of this room on other nodes (with --redis), as the cluster last told this node:
  // the room's count in Redis at its latest batch, less this node's members, then +1/-1 per
  // remote join/leave heard since. 0 without a cluster. Not this node's membership.
  size_t remote_members() const { return remote_members_; }
  void set_remote_members(size_t members) { remote_members_ = static_cast<uint32_t>(std::min<size_t>(members, UINT32_MAX)); }
  // Every member on every node, as far as this node knows.
  size_t cluster_size() const { return members_.size() + remote_members_; }

 private:
  friend class RoomTable;
  std::string name_;
  std::vector<RoomMember> members_;
  History history_;
  mutable std::unique_ptr<PresenceBatch> pending_presence_;
  uint64_t next_seq_ = 1;
  uint64_t owner_ = UINT64_MAX;     // the creator's peer key, or RoomTable::kNoOwner
  uint32_t heap_position_ = kNoIndex;  // index in RoomTable::by_bytes_, kNoIndex when not in it
  uint32_t remote_members_ = 0;
  bool live_ = false;
  bool history_complete_ = false;
};

class RoomTable {
 public:
  // An owner key that is never limited (the creator's address is unknown).
  static constexpr uint64_t kNoOwner = UINT64_MAX;

  // `sessions` must outlive the table; rooms keep `history_capacity` messages each, and all
  // rooms together at most `history_memory` bytes of history (0: no budget).
  RoomTable(SessionPool& sessions, size_t history_capacity, size_t history_memory = 0)
      : sessions_(sessions), history_capacity_(history_capacity), history_memory_(history_memory) {}
  RoomTable(const RoomTable&) = delete;
  RoomTable& operator=(const RoomTable&) = delete;

  enum class JoinStatus : uint8_t {
    kJoined,         // added; the room was created if it did not exist
    kAlreadyMember,  // nothing changed
    kTooManyRooms,   // the session is in max_rooms rooms already; nothing changed
    kNoMemory,       // nothing changed
    kRoomLimit,      // the room does not exist and max_rooms rooms live already
    kOwnerRoomLimit, // the room does not exist and its owner has created max_rooms_per_owner
  };
  struct JoinResult {
    JoinStatus status = JoinStatus::kJoined;
    uint32_t room = kNoIndex;  // the room's id (also for kAlreadyMember)
  };
  // Adds session `session` (its connection taken from the session) to room `name`, creating
  // the room on first join, owned by `owner` (a peer key; kNoOwner is never limited).
  // `max_rooms` caps the session's memberships. Invalidates Room references and members()
  // spans (the slab and the member array may grow).
  JoinResult join(uint32_t session, std::string_view name, size_t max_rooms, uint64_t owner = kNoOwner);

  // Caps live rooms (`max_rooms`) and live rooms per owner (`max_rooms_per_owner`) for joins
  // that would create a room; 0 means unlimited. Existing rooms are not touched.
  void set_room_limits(size_t max_rooms, size_t max_rooms_per_owner);
  // Live rooms created by `owner`.
  size_t rooms_of(uint64_t owner) const;

  // Appends a message to room `room`'s history (History::push), then evicts the oldest
  // messages of the rooms holding the most history bytes until the total is within the
  // budget (possibly this very message, when the budget is smaller than it). False when the
  // seq is not newer than the room's newest.
  bool append_history(uint32_t room, std::string_view from, std::string_view text, uint64_t ts_ms, uint64_t seq);
  // Empties room `room`'s history ring and records whether what is pushed next is all the room
  // log holds (Room::history_complete), e.g. before loading the ring from the log.
  void reset_history(uint32_t room, bool complete);
  // Heap bytes held by all rooms' history (History::bytes summed).
  size_t history_bytes() const { return history_bytes_; }
  // The budget given at construction (0: none).
  size_t history_memory() const { return history_memory_; }
  // Messages evicted to keep the budget since construction.
  uint64_t history_evictions() const { return history_evictions_; }

  struct LeaveResult {
    uint32_t room = kNoIndex;  // kNoIndex when the session was not in the room
    bool freed = false;        // the room became empty and was freed (its id is now invalid)
  };
  // Removes `session` from room `name`. Invalidates members() spans of that room.
  LeaveResult leave(uint32_t session, std::string_view name);
  // Removes `session` from the room of its membership `index` (< memberships.size()).
  LeaveResult leave_at(uint32_t session, uint32_t index);

  // Sets the connection fan-out uses for member `slot` of room `room` (both valid): 0 pauses
  // the member (fan-out skips it), a connection id resumes it (session resume, issue 14).
  void set_member_connection(uint32_t room, uint32_t slot, protocol::ConnectionId connection) {
    rooms_[room].members_[slot].connection = connection;
  }

  // The id of room `name`, or kNoIndex.
  uint32_t find(std::string_view name) const;
  // The room with id `room` (a live id from join() or find()).
  Room& room(uint32_t room) { return rooms_[room]; }
  const Room& room(uint32_t room) const { return rooms_[room]; }
  // Number of live rooms.
  size_t size() const { return by_name_.size(); }
  // Slab slots ever created (live or free), for memory reports.
  size_t slab_size() const { return rooms_.size(); }

  // Checks every cross-link (map <-> slab, member slot <-> session membership); on failure
  // returns false and says what is wrong in `why`. O(total members); for tests.
  bool check_invariants(std::string* why) const;

 private:
  uint32_t create(std::string_view name, uint64_t owner);
  void free_room(uint32_t room);
  // Max-heap of rooms by history bytes (by_bytes_): moves the entry at `position` to its place.
  void heap_fix(uint32_t position);
  void heap_swap(uint32_t a, uint32_t b);
  void heap_remove(uint32_t room);
  // Evicts oldest messages from the largest histories until history_bytes_ fits the budget.
  void enforce_history_budget();

  SessionPool& sessions_;
  size_t history_capacity_;
  size_t history_memory_;
  size_t history_bytes_ = 0;
  uint64_t history_evictions_ = 0;
  size_t max_rooms_ = 0;
  size_t max_rooms_per_owner_ = 0;
  FlatMap<std::string, uint32_t> by_name_;
  std::vector<Room> rooms_;
  std::vector<uint32_t> free_rooms_;
  std::vector<uint32_t> by_bytes_;           // room ids with a non-empty history, a max-heap
  FlatMap<uint64_t, uint32_t> owned_rooms_;  // owner -> live rooms it created (no zero entries)
};

}  // namespace chat
