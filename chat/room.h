#pragma once
// Rooms (DESIGN.md "Rooms"): a flat hash map from room name to a room id, rooms in a slab
// indexed by id, each room a dense member array with swap-remove. Every member entry and the
// session's Membership for that room point at each other (slot <-> membership index), so join
// and leave are O(1) and both sides are fixed up when an entry moves. Empty rooms are freed.
#include <cstddef>
#include <cstdint>
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

class Room {
 public:
  explicit Room(size_t history_capacity) : history_(history_capacity) {}

  const std::string& name() const { return name_; }
  // Dense member array in no particular order; invalidated by any join or leave of this room.
  std::span<const RoomMember> members() const { return members_; }
  size_t size() const { return members_.size(); }
  History& history() { return history_; }
  const History& history() const { return history_; }
  // Hands out the next message seq: 1, 2, 3, ... for the room's lifetime.
  uint64_t take_seq() { return next_seq_++; }
  // The seq the next message will get.
  uint64_t next_seq() const { return next_seq_; }
  // False for a freed slab slot.
  bool live() const { return live_; }

 private:
  friend class RoomTable;
  std::string name_;
  std::vector<RoomMember> members_;
  History history_;
  uint64_t next_seq_ = 1;
  bool live_ = false;
};

class RoomTable {
 public:
  // `sessions` must outlive the table; rooms keep `history_capacity` messages each.
  RoomTable(SessionPool& sessions, size_t history_capacity)
      : sessions_(sessions), history_capacity_(history_capacity) {}
  RoomTable(const RoomTable&) = delete;
  RoomTable& operator=(const RoomTable&) = delete;

  enum class JoinStatus : uint8_t {
    kJoined,         // added; the room was created if it did not exist
    kAlreadyMember,  // nothing changed
    kTooManyRooms,   // the session is in max_rooms rooms already; nothing changed
    kNoMemory,       // nothing changed
  };
  struct JoinResult {
    JoinStatus status = JoinStatus::kJoined;
    uint32_t room = kNoIndex;  // the room's id (also for kAlreadyMember)
  };
  // Adds session `session` (its connection taken from the session) to room `name`, creating
  // the room on first join. Invalidates Room references and members() spans (the slab and the
  // member array may grow).
  JoinResult join(uint32_t session, std::string_view name, size_t max_rooms);

  struct LeaveResult {
    uint32_t room = kNoIndex;  // kNoIndex when the session was not in the room
    bool freed = false;        // the room became empty and was freed (its id is now invalid)
  };
  // Removes `session` from room `name`. Invalidates members() spans of that room.
  LeaveResult leave(uint32_t session, std::string_view name);
  // Removes `session` from the room of its membership `index` (< memberships.size()).
  LeaveResult leave_at(uint32_t session, uint32_t index);

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
  uint32_t create(std::string_view name);
  void free_room(uint32_t room);

  SessionPool& sessions_;
  size_t history_capacity_;
  FlatMap<std::string, uint32_t> by_name_;
  std::vector<Room> rooms_;
  std::vector<uint32_t> free_rooms_;
};

}  // namespace chat
