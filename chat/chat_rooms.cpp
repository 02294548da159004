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
  if (!room_allowed(session, message.room)) {
    ++access_stats_.forbidden_rooms;
    send_error(id, ChatError::kRejected, "forbidden_room: your token does not grant this room", message.id);
    return;
  }
  uint32_t room_id = rooms_.find(message.room);
  if (!join_needs_read(room_id, message)) {
    RoomTable::JoinResult result;
    bool created = room_id == kNoIndex;
    if (!admit(id, session, message.room, message.id, result)) return;
    unpause_membership(session, result.room);  // the reply below covers everything before now
    // A room made without a read: its ring is complete only when the log has nothing for it.
    if (created) rooms_.reset_history(result.room, log_->last_seq(message.room) == 0);
    if (created) log_->watch(message.room, log_->last_seq(message.room));
    announce_join(id, session, result);
    reply_join_from_ring(id, result.room, message);
    return;
  }
  // The joiner joins live traffic when the read completes (finish_join): the read holds exactly
  // the messages delivered before it, so nothing is missed or repeated at the seam.
  PendingRead pending;
  pending.kind = PendingRead::Kind::kJoin;
  pending.connection = id;
  pending.session = session;
  pending.name = message.room;
  pending.message_id = message.id;
  pending.since = message.has_since_seq;
  pending.since_seq = message.since_seq;
  if (message.has_since_seq) {
    submit_read(std::move(pending), message.room, message.since_seq, config_.recovery_limit, true);
  } else {
    submit_read(std::move(pending), message.room, 0, config_.history_size, false);
  }
}

bool ChatApp::admit(protocol::ConnectionId id, uint32_t session, std::string_view room_name,
                    std::string_view message_id, RoomTable::JoinResult& result) {
  // chat_codec.h has no forbidden_room / room_full codes (yet): "rejected" with a reason that
  // starts with a stable token.
  if (config_.max_room_members != 0) {
    uint32_t existing = rooms_.find(room_name);
    if (existing != kNoIndex && sessions_.get(session).memberships.find(existing) == kNoIndex &&
        rooms_.room(existing).members().size() >= config_.max_room_members) {
      ++access_stats_.rooms_full;
      send_error(id, ChatError::kRejected,
                 "room_full: at most " + std::to_string(config_.max_room_members) + " members per room",
                 message_id);
      return false;
    }
  }
  // The creator's address, looked up only when the join would create a room.
  uint64_t owner = RoomTable::kNoOwner;
  if (config_.max_rooms_per_ip != 0 && rooms_.find(room_name) == kNoIndex) {
    uint64_t key = 0;
    if (peer_key_of(id, key)) owner = key;
  }
  result = rooms_.join(session, room_name, config_.max_rooms_per_connection, owner);
  switch (result.status) {
    case RoomTable::JoinStatus::kRoomLimit:
      ++access_stats_.room_limit;
      send_error(id, ChatError::kRoomLimit,
                 "the server holds its maximum of " + std::to_string(config_.max_rooms) +
                     " rooms; join an existing room",
                 message_id);
      return false;
    case RoomTable::JoinStatus::kOwnerRoomLimit:
      ++access_stats_.room_limit;
      send_error(id, ChatError::kRoomLimit,
                 "your address has created " + std::to_string(config_.max_rooms_per_ip) +
                     " rooms that still exist; join an existing room",
                 message_id);
      return false;
    case RoomTable::JoinStatus::kTooManyRooms:
      send_error(id, ChatError::kTooManyRooms,
                 "at most " + std::to_string(config_.max_rooms_per_connection) + " rooms per connection",
                 message_id);
      return false;
    case RoomTable::JoinStatus::kNoMemory:
      send_error(id, ChatError::kRejected, "out of memory", message_id);
      return false;
    case RoomTable::JoinStatus::kAlreadyMember:
    case RoomTable::JoinStatus::kJoined:
      break;
  }
  return true;
}

void ChatApp::announce_join(protocol::ConnectionId id, uint32_t session, const RoomTable::JoinResult& result) {
  // Idempotent: joining a room one is in again tells nobody (the joiner gets the history again).
  if (result.status != RoomTable::JoinStatus::kJoined) return;
  const Room& room = rooms_.room(result.room);
  announce_presence(room, result.room, sessions_.get(session).name(), true, id, room.size());
  if (presence_ != nullptr) presence_->joined(room.name(), sessions_.get(session).name());
  if (hooks_ != nullptr) hooks_->on_join(id, sessions_.get(session).name(), room.name());
}

void ChatApp::on_leave(protocol::ConnectionId id, uint32_t session, const ClientMessage& message) {
  uint32_t joined = joined_room(session, message.room);
  // Copied before leaving: the room's name goes with a freed room.
  std::string room_name = joined == kNoIndex ? std::string() : std::string(rooms_.room(joined).name());
  RoomTable::LeaveResult result = rooms_.leave(session, message.room);
  if (result.room == kNoIndex) {
    send_error(id, ChatError::kUnknownRoom, "not in that room", message.id);
    return;
  }
  if (hooks_ != nullptr) hooks_->on_leave(id, sessions_.get(session).name(), room_name);
  if (presence_ != nullptr) presence_->left(room_name, sessions_.get(session).name());
  if (result.freed) {
    room_freed(message.room);
    return;
  }
  const Room& room = rooms_.room(result.room);
  announce_presence(room, result.room, sessions_.get(session).name(), false, id, room.size() + 1);
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
  }
  // Stored first: the members get it and the sender its ack when the log completes it
  // (on_appended), so an ack means the message is durable and has its place in seq order.
  AppendRequest request;
  request.conversation = message.room;
  request.sender = user;
  request.ts_ms = now_ms();
  request.text = message.text;
  request.client_id = message.id;
  request.cookie = id;
  request.arrival_ms = loop_ms();
  submit_append(std::move(request), id, message.id);
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
  if (presence_ != nullptr) presence_->typing(room.name(), sessions_.get(session).name(), message.on);
}

void ChatApp::on_who(protocol::ConnectionId id, uint32_t session, const ClientMessage& message) {
  uint32_t room_id = joined_room(session, message.room);
  if (room_id == kNoIndex) {
    send_error(id, ChatError::kUnknownRoom, "not in that room", message.id);
    return;
  }
  // With presence across nodes the reply waits for the other nodes' members; when they cannot
  // be had (Redis away, queue full) it lists this node's (chat_presence.cpp).
  if (presence_ != nullptr) {
    uint64_t cookie = next_presence_cookie_++;
    if (presence_->members(rooms_.room(room_id).name(), cookie)) {
      pending_whos_.insert_or_assign(cookie, PendingWho{id, std::string(rooms_.room(room_id).name()), message.limit,
                                                        std::string(message.after)});
      return;
    }
  }
  send_who(id, room_id, {}, message.limit, message.after);
}

std::vector<std::string> ChatApp::rooms_of(std::string_view name) const {
  std::vector<std::string> out;
  const uint32_t* session = users_.find(name);
  if (session == nullptr) return out;
  const ChatSession& chat_session = sessions_.get(*session);
  for (uint32_t i = 0; i < chat_session.memberships.size(); ++i) {
    out.emplace_back(rooms_.room(chat_session.memberships[i].room).name());
  }
  return out;
}

std::vector<std::string> ChatApp::members_of(std::string_view room) const {
  std::vector<std::string> out;
  uint32_t room_id = rooms_.find(room);
  if (room_id == kNoIndex) return out;
  for (const RoomMember& member : rooms_.room(room_id).members()) out.emplace_back(sessions_.get(member.session).name());
  return out;
}

void ChatApp::broadcast(const Room& room, protocol::ConnectionId except, std::string_view json) {
  // Presence batched for this room goes first (chat_presence.cpp): no member may see a user's
  // message or typing before that user's join. Its own scratch string: `json` may be out_.
  if (room.pending_presence() != nullptr) flush_room_presence(room);
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
    // 0: a member held for resume or not yet rejoined after it (chat_resume.cpp).
    if (member.connection == except || member.connection == 0) continue;
    transport_.send_encoded(member.connection, frame);
    ++stats_.deliveries;
  }
  frame->release();
}

void ChatApp::leave_all(uint32_t session) {
  ChatSession& chat_session = sessions_.get(session);
  protocol::ConnectionId id = chat_session.connection;
  while (!chat_session.memberships.empty()) {
    uint32_t index = chat_session.memberships.size() - 1;
    uint32_t room_id = chat_session.memberships[index].room;
    // As after a leave message, the hook runs once the member is gone; the name is copied
    // because a freed room's goes with it.
    std::string left =
        hooks_ != nullptr || presence_ != nullptr ? std::string(rooms_.room(room_id).name()) : std::string();
    if (presence_ != nullptr) presence_->left(left, chat_session.name());
    if ((memory_only_ || log_->delivers()) && rooms_.room(room_id).size() == 1) {
      std::string name = rooms_.room(room_id).name();  // freed by leave_at
      rooms_.leave_at(session, index);
      room_freed(name);
      if (hooks_ != nullptr) hooks_->on_leave(id, chat_session.name(), left);
      continue;
    }
    RoomTable::LeaveResult result = rooms_.leave_at(session, index);
    if (hooks_ != nullptr) hooks_->on_leave(id, chat_session.name(), left);
    if (result.freed) continue;
    const Room& room = rooms_.room(result.room);
    announce_presence(room, result.room, chat_session.name(), false, id, room.size() + 1);
  }
}

}  // namespace chat
