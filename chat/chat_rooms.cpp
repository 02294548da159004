#include "chat/chat_app.h"

#include <algorithm>
#include <string>

#include "protocol/frame_header.h"

// ChatApp's room handlers: join, leave, room messages, typing, who, history, and the fan-out
// they share (one encoded frame per event, referenced by every recipient).

namespace chat {

uint32_t ChatApp::joined_room(uint32_t session, std::string_view room) const {
  uint32_t id = rooms_.find(room);
  if (id == kNoIndex || sessions_.get(session).memberships.find(id) == kNoIndex) return kNoIndex;
  return id;
}

void ChatApp::on_join(protocol::ConnectionId id, uint32_t session, const ClientMessage& message) {
  // chat_codec.h has no forbidden_room / room_full codes (yet): "rejected" with a reason that
  // starts with a stable token.
  if (!room_allowed(session, message.room)) {
    ++access_stats_.forbidden_rooms;
    send_error(id, ChatError::kRejected, "forbidden_room: your token does not grant this room", message.id);
    return;
  }
  if (config_.max_room_members != 0) {
    uint32_t existing = rooms_.find(message.room);
    if (existing != kNoIndex && sessions_.get(session).memberships.find(existing) == kNoIndex &&
        rooms_.room(existing).members().size() >= config_.max_room_members) {
      ++access_stats_.rooms_full;
      send_error(id, ChatError::kRejected,
                 "room_full: at most " + std::to_string(config_.max_room_members) + " members per room",
                 message.id);
      return;
    }
  }
  // The creator's address, looked up only when the join would create a room.
  uint64_t owner = RoomTable::kNoOwner;
  if (config_.max_rooms_per_ip != 0 && rooms_.find(message.room) == kNoIndex) {
    uint64_t key = 0;
    if (peer_key_of(id, key)) owner = key;
  }
  RoomTable::JoinResult result = rooms_.join(session, message.room, config_.max_rooms_per_connection, owner);
  switch (result.status) {
    case RoomTable::JoinStatus::kRoomLimit:
      ++access_stats_.room_limit;
      send_error(id, ChatError::kRoomLimit,
                 "the server holds its maximum of " + std::to_string(config_.max_rooms) +
                     " rooms; join an existing room",
                 message.id);
      return;
    case RoomTable::JoinStatus::kOwnerRoomLimit:
      ++access_stats_.room_limit;
      send_error(id, ChatError::kRoomLimit,
                 "your address has created " + std::to_string(config_.max_rooms_per_ip) +
                     " rooms that still exist; join an existing room",
                 message.id);
      return;
    case RoomTable::JoinStatus::kTooManyRooms:
      send_error(id, ChatError::kTooManyRooms,
                 "at most " + std::to_string(config_.max_rooms_per_connection) + " rooms per connection",
                 message.id);
      return;
    case RoomTable::JoinStatus::kNoMemory:
      send_error(id, ChatError::kRejected, "out of memory", message.id);
      return;
    case RoomTable::JoinStatus::kAlreadyMember:
      // Idempotent: the joiner gets the history again, the others hear nothing.
      send_history(id, rooms_.room(result.room), 0, 0);
      return;
    case RoomTable::JoinStatus::kJoined:
      break;
  }
  const Room& room = rooms_.room(result.room);
  out_.clear();
  write_presence(out_, true, room.name(), sessions_.get(session).name());
  broadcast(room, id, out_);
  send_history(id, room, 0, 0);
}

void ChatApp::on_leave(protocol::ConnectionId id, uint32_t session, const ClientMessage& message) {
  RoomTable::LeaveResult result = rooms_.leave(session, message.room);
  if (result.room == kNoIndex) {
    send_error(id, ChatError::kUnknownRoom, "not in that room", message.id);
    return;
  }
  if (result.freed) return;
  const Room& room = rooms_.room(result.room);
  out_.clear();
  write_presence(out_, false, room.name(), sessions_.get(session).name());
  broadcast(room, id, out_);
}

void ChatApp::on_msg(protocol::ConnectionId id, uint32_t session, const ClientMessage& message) {
  uint32_t room_id = joined_room(session, message.room);
  if (room_id == kNoIndex) {
    send_error(id, ChatError::kUnknownRoom, "not in that room", message.id);
    return;
  }
  std::string_view user = sessions_.get(session).name();
  if (hooks_ != nullptr) {
    ChatMessageEvent event{id, user, message.room, {}, message.text};
    if (!hooks_->allow_message(event)) {
      ++stats_.vetoed;
      send_error(id, ChatError::kRejected, "message rejected", message.id);
      return;
    }
    // The hook may have published to this room or closed connections; the room is still
    // there (only leaving frees a room, and leaves happen in on_close and on_leave).
    room_id = joined_room(session, message.room);
    if (room_id == kNoIndex) return;
  }
  Room& room = rooms_.room(room_id);
  uint64_t ts = now_ms();
  uint64_t seq = room.take_seq();
  rooms_.append_history(room_id, user, message.text, ts, seq);
  out_.clear();
  write_msg(out_, room.name(), user, message.text, ts, seq);
  broadcast(room, id, out_);
  out_.clear();
  write_ack(out_, message.id, seq, ts);
  transport_.send_text(id, out_);
  ++stats_.messages;
}

void ChatApp::on_typing(protocol::ConnectionId id, uint32_t session, const ClientMessage& message) {
  uint32_t room_id = joined_room(session, message.room);
  if (room_id == kNoIndex) {
    send_error(id, ChatError::kUnknownRoom, "not in that room", message.id);
    return;
  }
  const Room& room = rooms_.room(room_id);
  out_.clear();
  write_typing(out_, room.name(), sessions_.get(session).name(), message.on);
  broadcast(room, id, out_);
}

void ChatApp::on_who(protocol::ConnectionId id, uint32_t session, const ClientMessage& message) {
  uint32_t room_id = joined_room(session, message.room);
  if (room_id == kNoIndex) {
    send_error(id, ChatError::kUnknownRoom, "not in that room", message.id);
    return;
  }
  const Room& room = rooms_.room(room_id);
  out_.clear();
  write_who_begin(out_, room.name());
  bool first = true;
  for (const RoomMember& member : room.members()) {
    write_who_user(out_, sessions_.get(member.session).name(), first);
    first = false;
  }
  write_who_end(out_);
  transport_.send_text(id, out_);
}

void ChatApp::on_history(protocol::ConnectionId id, uint32_t session, const ClientMessage& message) {
  uint32_t room_id = joined_room(session, message.room);
  if (room_id == kNoIndex) {
    send_error(id, ChatError::kUnknownRoom, "not in that room", message.id);
    return;
  }
  send_history(id, rooms_.room(room_id), message.before_seq, message.limit);
}

void ChatApp::send_history(protocol::ConnectionId id, const Room& room, uint64_t before_seq, uint32_t limit) {
  const History& history = room.history();
  size_t wanted = limit == 0 ? history.capacity() : std::min<size_t>(limit, history.capacity());
  History::Range range = wanted == 0 ? History::Range{} : history.select(before_seq, wanted);
  out_.clear();
  write_history_begin(out_, room.name());
  for (size_t i = 0; i < range.count; ++i) {
    const HistoryEntry& entry = history.at(range.first + i);
    write_history_item(out_, entry.from, entry.text, entry.ts_ms, entry.seq, i == 0);
  }
  write_history_end(out_);
  transport_.send_text(id, out_);
}

void ChatApp::broadcast(const Room& room, protocol::ConnectionId except, std::string_view json) {
  std::span<const RoomMember> members = room.members();
  if (members.empty() || (members.size() == 1 && members[0].connection == except)) return;
  // Encode once: header and payload in one refcounted buffer that every recipient's write
  // queue references (DESIGN.md hot path step 5).
  uint8_t header[protocol::kMaxFrameHeaderLength];
  size_t header_length = protocol::encode_frame_header(header, protocol::Opcode::kText, json.size());
  reactor::SharedBuffer* frame = reactor::SharedBuffer::create(header_length + json.size());
  if (frame == nullptr) return;
  frame->append(header, header_length);
  frame->append(json.data(), json.size());
  for (const RoomMember& member : members) {
    if (member.connection == except) continue;
    transport_.send_encoded(member.connection, frame);
    ++stats_.deliveries;
  }
  frame->release();
}

uint64_t ChatApp::publish(std::string_view room_name, std::string_view from, std::string_view text) {
  uint32_t room_id = rooms_.find(room_name);
  if (room_id == kNoIndex) return 0;
  Room& room = rooms_.room(room_id);
  uint64_t ts = now_ms();
  uint64_t seq = room.take_seq();
  rooms_.append_history(room_id, from, text, ts, seq);
  std::string json;
  json.reserve(96 + room_name.size() + from.size() + text.size());
  write_msg(json, room.name(), from, text, ts, seq);
  broadcast(room, 0, json);
  ++stats_.messages;
  return seq;
}

void ChatApp::leave_all(uint32_t session) {
  ChatSession& chat_session = sessions_.get(session);
  protocol::ConnectionId id = chat_session.connection;
  while (!chat_session.memberships.empty()) {
    uint32_t index = chat_session.memberships.size() - 1;
    RoomTable::LeaveResult result = rooms_.leave_at(session, index);
    if (result.freed) continue;
    const Room& room = rooms_.room(result.room);
    out_.clear();
    write_presence(out_, false, room.name(), chat_session.name());
    broadcast(room, id, out_);
  }
}

}  // namespace chat
