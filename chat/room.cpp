#include "chat/room.h"

#include <new>
#include <utility>

namespace chat {

uint32_t RoomTable::find(std::string_view name) const {
  const uint32_t* id = by_name_.find(name);
  return id == nullptr ? kNoIndex : *id;
}

uint32_t RoomTable::create(std::string_view name, uint64_t owner) {
  uint32_t id;
  if (!free_rooms_.empty()) {
    id = free_rooms_.back();
    free_rooms_.pop_back();
  } else {
    id = static_cast<uint32_t>(rooms_.size());
    rooms_.emplace_back(history_capacity_);
  }
  Room& room = rooms_[id];
  room.name_.assign(name);
  room.next_seq_ = 1;
  room.owner_ = owner;
  room.heap_position_ = kNoIndex;
  room.remote_members_ = 0;
  room.live_ = true;
  room.history_complete_ = false;
  by_name_.try_emplace(name, id);
  if (owner != kNoOwner) ++*owned_rooms_.try_emplace(owner, 0u).first;
  return id;
}

void RoomTable::free_room(uint32_t id) {
  Room& room = rooms_[id];
  by_name_.erase(std::string_view(room.name_));
  // Give the memory back: a freed room costs only its slab slot.
  std::string().swap(room.name_);
  std::vector<RoomMember>().swap(room.members_);
  room.pending_presence_.reset();  // nobody is left to tell
  heap_remove(id);
  history_bytes_ -= room.history_.bytes();
  room.history_.clear();
  if (room.owner_ != kNoOwner) {
    uint32_t* owned = owned_rooms_.find(room.owner_);
    if (owned != nullptr && --*owned == 0) owned_rooms_.erase(room.owner_);
    room.owner_ = kNoOwner;
  }
  room.live_ = false;
  free_rooms_.push_back(id);
}

void PresenceBatch::note(std::string_view user, PresenceChange kind) {
  const bool is_membership = kind == PresenceChange::kJoined || kind == PresenceChange::kLeft;
  FlatMap<std::string, uint32_t>& pending = is_membership ? membership : status;
  if (uint32_t* index = pending.find(user); index != nullptr) {
    const uint32_t at = *index;
    if (changes[at].kind == kind) return;
    cancel(pending, user, at);
    // Joined and left (or left and came back) within the batch: members never learnt of the
    // user being there (or gone), so an away or back in between means nothing to them either.
    if (is_membership) {
      if (uint32_t* between = status.find(user); between != nullptr) cancel(status, user, *between);
    }
    return;
  }
  pending.try_emplace(user, static_cast<uint32_t>(changes.size()));
  changes.push_back({std::string(user), kind, false});
  counts_[static_cast<size_t>(kind)] += 1;
}

void PresenceBatch::cancel(FlatMap<std::string, uint32_t>& map, std::string_view user, uint32_t index) {
  changes[index].cancelled = true;
  counts_[static_cast<size_t>(changes[index].kind)] -= 1;
  map.erase(user);
}

RoomTable::JoinResult RoomTable::join(uint32_t session_index, std::string_view name, size_t max_rooms,
                                      uint64_t owner) {
  ChatSession& session = sessions_.get(session_index);
  uint32_t id = find(name);
  if (id != kNoIndex && session.memberships.find(id) != kNoIndex) return {JoinStatus::kAlreadyMember, id};
  if (session.memberships.size() >= max_rooms) return {JoinStatus::kTooManyRooms, id};
  bool created = false;
  if (id == kNoIndex) {
    if (max_rooms_ != 0 && by_name_.size() >= max_rooms_) return {JoinStatus::kRoomLimit, kNoIndex};
    if (max_rooms_per_owner_ != 0 && owner != kNoOwner && rooms_of(owner) >= max_rooms_per_owner_) {
      return {JoinStatus::kOwnerRoomLimit, kNoIndex};
    }
    id = create(name, owner);
    created = true;
  }
  Room& room = rooms_[id];
  auto slot = static_cast<uint32_t>(room.members_.size());
  uint32_t membership = session.memberships.push_back({id, slot});
  if (membership == kNoIndex) {
    if (created) free_room(id);
    return {JoinStatus::kNoMemory, kNoIndex};
  }
  room.members_.push_back({session.connection, session_index, membership});
  return {JoinStatus::kJoined, id};
}

RoomTable::LeaveResult RoomTable::leave(uint32_t session_index, std::string_view name) {
  uint32_t id = find(name);
  if (id == kNoIndex) return {};
  uint32_t index = sessions_.get(session_index).memberships.find(id);
  if (index == kNoIndex) return {};
  return leave_at(session_index, index);
}

RoomTable::LeaveResult RoomTable::leave_at(uint32_t session_index, uint32_t index) {
  MembershipList& memberships = sessions_.get(session_index).memberships;
  const Membership gone = memberships[index];
  Room& room = rooms_[gone.room];

  // Swap-remove from the room; the member moved into the hole gets its new slot recorded in
  // its own session's membership.
  std::vector<RoomMember>& members = room.members_;
  auto last = static_cast<uint32_t>(members.size() - 1);
  if (gone.slot != last) {
    members[gone.slot] = members[last];
    const RoomMember& moved = members[gone.slot];
    sessions_.get(moved.session).memberships[moved.membership].slot = gone.slot;
  }
  members.pop_back();

  // Swap-remove from the session; the room entry of the membership moved into the hole gets
  // its new membership index.
  uint32_t moved_from = memberships.swap_remove(index);
  if (moved_from != kNoIndex) {
    const Membership& moved = memberships[index];
    rooms_[moved.room].members_[moved.slot].membership = index;
  }

  LeaveResult result{gone.room, false};
  if (members.empty()) {
    free_room(gone.room);
    result.freed = true;
  }
  return result;
}

void RoomTable::set_room_limits(size_t max_rooms, size_t max_rooms_per_owner) {
  max_rooms_ = max_rooms;
  max_rooms_per_owner_ = max_rooms_per_owner;
}

size_t RoomTable::rooms_of(uint64_t owner) const {
  const uint32_t* owned = owned_rooms_.find(owner);
  return owned == nullptr ? 0 : *owned;
}

bool RoomTable::append_history(uint32_t id, std::string_view from, std::string_view text, uint64_t ts_ms,
                               uint64_t seq) {
  Room& room = rooms_[id];
  size_t before = room.history_.bytes();
  // A full ring overwrites its oldest message, which then lives only in the room log.
  if (room.history_.size() == room.history_.capacity()) room.history_complete_ = false;
  if (!room.history_.push(from, text, ts_ms, seq)) return false;
  history_bytes_ = history_bytes_ - before + room.history_.bytes();
  if (room.history_.empty()) return true;  // history disabled
  if (room.heap_position_ == kNoIndex) {
    room.heap_position_ = static_cast<uint32_t>(by_bytes_.size());
    by_bytes_.push_back(id);
  }
  heap_fix(room.heap_position_);
  enforce_history_budget();
  return true;
}

void RoomTable::reset_history(uint32_t id, bool complete) {
  Room& room = rooms_[id];
  heap_remove(id);
  history_bytes_ -= room.history_.bytes();
  room.history_.clear();
  room.history_complete_ = complete;
}

void RoomTable::enforce_history_budget() {
  if (history_memory_ == 0) return;
  while (history_bytes_ > history_memory_ && !by_bytes_.empty()) {
    uint32_t id = by_bytes_.front();
    History& history = rooms_[id].history_;
    size_t before = history.bytes();
    history.evict_oldest();
    rooms_[id].history_complete_ = false;  // the evicted message is only in the room log now
    history_bytes_ -= before - history.bytes();
    ++history_evictions_;
    if (history.empty()) {
      heap_remove(id);
    } else {
      heap_fix(0);
    }
  }
}

void RoomTable::heap_swap(uint32_t a, uint32_t b) {
  std::swap(by_bytes_[a], by_bytes_[b]);
  rooms_[by_bytes_[a]].heap_position_ = a;
  rooms_[by_bytes_[b]].heap_position_ = b;
}

void RoomTable::heap_fix(uint32_t position) {
  auto bytes = [this](uint32_t at) { return rooms_[by_bytes_[at]].history_.bytes(); };
  // Up while larger than the parent, then down while smaller than the larger child.
  while (position > 0 && bytes(position) > bytes((position - 1) / 2)) {
    heap_swap(position, (position - 1) / 2);
    position = (position - 1) / 2;
  }
  auto size = static_cast<uint32_t>(by_bytes_.size());
  for (;;) {
    uint32_t largest = position;
    uint32_t left = 2 * position + 1;
    uint32_t right = left + 1;
    if (left < size && bytes(left) > bytes(largest)) largest = left;
    if (right < size && bytes(right) > bytes(largest)) largest = right;
    if (largest == position) return;
    heap_swap(position, largest);
    position = largest;
  }
}

void RoomTable::heap_remove(uint32_t id) {
  uint32_t position = rooms_[id].heap_position_;
  if (position == kNoIndex) return;
  auto last = static_cast<uint32_t>(by_bytes_.size() - 1);
  if (position != last) heap_swap(position, last);
  by_bytes_.pop_back();
  rooms_[id].heap_position_ = kNoIndex;
  if (position < by_bytes_.size()) heap_fix(position);
}

bool RoomTable::check_invariants(std::string* why) const {
  auto fail = [&](std::string text) {
    if (why != nullptr) *why = std::move(text);
    return false;
  };
  size_t live = 0;
  for (uint32_t id = 0; id < rooms_.size(); ++id) {
    const Room& room = rooms_[id];
    if (!room.live_) {
      if (!room.members_.empty()) return fail("freed room " + std::to_string(id) + " has members");
      continue;
    }
    ++live;
    if (room.members_.empty()) return fail("live room '" + room.name_ + "' is empty");
    if (find(room.name_) != id) return fail("room '" + room.name_ + "' is not in the map under its id");
    for (uint32_t slot = 0; slot < room.members_.size(); ++slot) {
      const RoomMember& member = room.members_[slot];
      if (member.session >= sessions_.capacity()) return fail("member with a bad session index");
      const ChatSession& session = sessions_.get(member.session);
      if (!session.in_use()) return fail("member session was released");
      // 0: a paused member (session held for resume, or resumed and not yet rejoined).
      if (member.connection != 0 && session.connection != member.connection) {
        return fail("member connection differs from its session's");
      }
      if (member.membership >= session.memberships.size()) return fail("member membership index out of range");
      const Membership& m = session.memberships[member.membership];
      if (m.room != id || m.slot != slot) {
        return fail("room '" + room.name_ + "' slot " + std::to_string(slot) + ": session records room " +
                    std::to_string(m.room) + " slot " + std::to_string(m.slot));
      }
    }
  }
  if (live != by_name_.size()) return fail("map size differs from the live rooms");
  // Every membership must point back at a member entry (counts match, links were checked above).
  size_t memberships = 0;
  size_t members = 0;
  for (uint32_t i = 0; i < sessions_.capacity(); ++i) {
    const ChatSession& session = sessions_.get(i);
    if (!session.in_use()) continue;
    for (uint32_t k = 0; k < session.memberships.size(); ++k) {
      const Membership& m = session.memberships[k];
      if (m.room >= rooms_.size() || !rooms_[m.room].live_) return fail("membership of a freed room");
      if (m.slot >= rooms_[m.room].members_.size()) return fail("membership slot out of range");
      const RoomMember& member = rooms_[m.room].members_[m.slot];
      if (member.session != i || member.membership != k) return fail("membership does not point back");
    }
    memberships += session.memberships.size();
  }
  for (const Room& room : rooms_) members += room.members_.size();
  if (members != memberships) return fail("member and membership counts differ");
  // The history budget: the running total, the heap's cross-links and its order.
  size_t bytes = 0;
  size_t with_history = 0;
  for (uint32_t id = 0; id < rooms_.size(); ++id) {
    const Room& room = rooms_[id];
    bytes += room.history_.bytes();
    if (!room.history_.empty()) ++with_history;
    if (room.heap_position_ != kNoIndex &&
        (room.heap_position_ >= by_bytes_.size() || by_bytes_[room.heap_position_] != id)) {
      return fail("room " + std::to_string(id) + " has a stale heap position");
    }
  }
  if (bytes != history_bytes_) return fail("history byte total differs from the rooms' sum");
  if (with_history != by_bytes_.size()) return fail("heap size differs from the rooms with history");
  for (uint32_t at = 1; at < by_bytes_.size(); ++at) {
    if (rooms_[by_bytes_[at]].history_.bytes() > rooms_[by_bytes_[(at - 1) / 2]].history_.bytes()) {
      return fail("history heap out of order");
    }
  }
  if (history_memory_ != 0 && history_bytes_ > history_memory_) return fail("history over its budget");
  return true;
}

}  // namespace chat
