#include "chat/chat_app.h"

#include <simdjson.h>
#include <time.h>

#include <algorithm>
#include <string>

#include "protocol/close_code.h"
#include "protocol/frame_header.h"

namespace chat {

namespace {

uint32_t fd_of(protocol::ConnectionId id) { return static_cast<uint32_t>(id); }

uint64_t realtime_ms() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

}  // namespace

ChatApp::ChatApp(ChatTransport& transport, ChatConfig config, ChatHooks* hooks)
    : transport_(transport), config_(config), hooks_(hooks), rooms_(sessions_, config.history_size) {
  out_.reserve(1024);
}

ChatApp::~ChatApp() = default;

uint64_t ChatApp::now_ms() const { return config_.wall_clock_ms != nullptr ? config_.wall_clock_ms() : realtime_ms(); }

uint32_t ChatApp::session_of(protocol::ConnectionId id) const {
  uint32_t fd = fd_of(id);
  if (fd >= session_by_fd_.size() || session_by_fd_[fd] == 0) return kNoIndex;
  uint32_t index = session_by_fd_[fd] - 1;
  // Guards against a stale id for an fd that now belongs to another connection.
  return sessions_.get(index).connection == id ? index : kNoIndex;
}

std::string_view ChatApp::user_of(protocol::ConnectionId id) const {
  uint32_t session = session_of(id);
  return session == kNoIndex ? std::string_view() : sessions_.get(session).name();
}

protocol::ConnectionId ChatApp::connection_of(std::string_view name) const {
  const uint32_t* session = users_.find(name);
  return session == nullptr ? 0 : sessions_.get(*session).connection;
}

protocol::UpgradeVerdict ChatApp::on_upgrade(protocol::ConnectionId id, const protocol::HttpRequest& request) {
  protocol::UpgradeVerdict verdict;
  if (hooks_ == nullptr) return verdict;
  ChatAuthDecision decision;
  hooks_->authorize(id, request, decision);
  // The verdict's reason is a view: its text lives in verdict_reason_ until the next upgrade.
  std::string& reason = verdict_reason_;
  if (decision.status != 101) {
    reason = decision.reason.empty() ? std::string("rejected") : decision.reason;
    verdict.status = decision.status;
    verdict.reason = reason;
    return verdict;
  }
  if (!decision.user.empty()) {
    if (!is_valid_user_name(decision.user)) {
      reason = "the server chose an invalid user name";
      verdict.status = 500;
      verdict.reason = reason;
      return verdict;
    }
    if (users_.contains(std::string_view(decision.user))) {
      reason = "user name taken";
      verdict.status = 409;
      verdict.reason = reason;
      return verdict;
    }
    // Keyed by fd: an entry left behind by an upgrade that never opened is overwritten by the
    // next connection on that fd, so the map stays bounded by the fd table.
    PendingUser& pending = pending_users_[fd_of(id)];
    pending.id = id;
    pending.name = std::move(decision.user);
  }
  return verdict;
}

void ChatApp::on_open(protocol::ConnectionId id) {
  PendingUser* pending = pending_users_.find(fd_of(id));
  if (pending == nullptr) return;
  if (pending->id == id) {
    std::string name = std::move(pending->name);
    pending_users_.erase(fd_of(id));
    if (!identify(id, name)) {
      send_error(id, ChatError::kNameTaken, "user name taken", {});
      transport_.close(id, protocol::kClosePolicyViolation, "user name taken");
    }
    return;
  }
  pending_users_.erase(fd_of(id));
}

bool ChatApp::identify(protocol::ConnectionId id, std::string_view name) {
  if (users_.contains(name)) return false;
  uint32_t index = sessions_.acquire();
  if (index == kNoIndex) return false;
  ChatSession& session = sessions_.get(index);
  session.connection = id;
  session.set_name(name);
  users_.try_emplace(session.name(), index);  // the key views the session's inline name
  uint32_t fd = fd_of(id);
  if (fd >= session_by_fd_.size()) session_by_fd_.resize(std::max<size_t>(fd + 1, session_by_fd_.size() * 2), 0);
  session_by_fd_[fd] = index + 1;
  out_.clear();
  write_welcome(out_, name);
  transport_.send_text(id, out_);
  return true;
}

void ChatApp::on_message(protocol::ConnectionId id, protocol::Opcode opcode, std::span<uint8_t> payload) {
  if (opcode != protocol::Opcode::kText) {
    send_error(id, ChatError::kBadJson, "binary messages are not supported; send JSON text", {});
    return;
  }
  std::string_view json(reinterpret_cast<const char*>(payload.data()), payload.size());
  ClientMessage message;
  ParseResult result = parser_.parse(json, config_.max_text_bytes, message);
  if (result.error == ChatError::kUnknownType && hooks_ != nullptr) {
    handle_custom(id, json, result);
    return;
  }
  if (result.error != ChatError::kNone) {
    send_error(id, result.error, result.reason, result.id);
    return;
  }
  handle(id, message);
}

void ChatApp::handle_custom(protocol::ConnectionId id, std::string_view json, const ParseResult& result) {
  // Only the embedding application knows these types; find out which one it is.
  if (custom_parser_ == nullptr) custom_parser_ = std::make_unique<simdjson::dom::parser>();
  std::string_view type;
  simdjson::dom::element document;
  bool has_type = custom_parser_->parse(json.data(), json.size(), true).get(document) == simdjson::SUCCESS &&
                  document.is_object() && document["type"].get_string().get(type) == simdjson::SUCCESS;
  if (!has_type) {
    send_error(id, result.error, result.reason, result.id);
    return;
  }
  uint32_t session = session_of(id);
  if (session == kNoIndex) {
    send_error(id, ChatError::kNotIdentified, "say hello first", result.id);
    return;
  }
  std::string type_copy(type);  // the hook may send, publish or parse: keep nothing borrowed
  if (!hooks_->on_custom(id, sessions_.get(session).name(), type_copy, json)) {
    send_error(id, result.error, result.reason, result.id);
  }
}

void ChatApp::handle(protocol::ConnectionId id, const ClientMessage& message) {
  if (message.type == ClientType::kHello) {
    on_hello(id, message);
    return;
  }
  uint32_t session = session_of(id);
  if (session == kNoIndex) {
    send_error(id, ChatError::kNotIdentified, "say hello first", message.id);
    return;
  }
  switch (message.type) {
    case ClientType::kHello:
      break;
    case ClientType::kJoin:
      on_join(id, session, message);
      break;
    case ClientType::kLeave:
      on_leave(id, session, message);
      break;
    case ClientType::kMsg:
      on_msg(id, session, message);
      break;
    case ClientType::kDm:
      on_dm(id, session, message);
      break;
    case ClientType::kTyping:
      on_typing(id, session, message);
      break;
    case ClientType::kWho:
      on_who(id, session, message);
      break;
    case ClientType::kHistory:
      on_history(id, session, message);
      break;
    case ClientType::kPing:
      out_.clear();
      write_pong(out_, now_ms());
      transport_.send_text(id, out_);
      break;
  }
}

void ChatApp::on_hello(protocol::ConnectionId id, const ClientMessage& message) {
  if (session_of(id) != kNoIndex) {
    send_error(id, ChatError::kAlreadyIdentified, "already identified", message.id);
    return;
  }
  if (!is_valid_user_name(message.name)) {
    send_error(id, ChatError::kInvalidName, "user names are 1-32 of A-Z a-z 0-9 _ . -", message.id);
    return;
  }
  if (!identify(id, message.name)) {
    send_error(id, ChatError::kNameTaken, "user name taken", message.id);
  }
}

uint32_t ChatApp::joined_room(uint32_t session, std::string_view room) const {
  uint32_t id = rooms_.find(room);
  if (id == kNoIndex || sessions_.get(session).memberships.find(id) == kNoIndex) return kNoIndex;
  return id;
}

void ChatApp::on_join(protocol::ConnectionId id, uint32_t session, const ClientMessage& message) {
  RoomTable::JoinResult result = rooms_.join(session, message.room, config_.max_rooms_per_connection);
  switch (result.status) {
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
  room.history().push(user, message.text, ts, seq);
  out_.clear();
  write_msg(out_, room.name(), user, message.text, ts, seq);
  broadcast(room, id, out_);
  out_.clear();
  write_ack(out_, message.id, seq, ts);
  transport_.send_text(id, out_);
  ++stats_.messages;
}

void ChatApp::on_dm(protocol::ConnectionId id, uint32_t session, const ClientMessage& message) {
  const uint32_t* target = users_.find(message.to);
  if (target == nullptr) {
    send_error(id, ChatError::kUnknownUser, "no such user", message.id);
    return;
  }
  protocol::ConnectionId to = sessions_.get(*target).connection;
  std::string_view user = sessions_.get(session).name();
  if (hooks_ != nullptr) {
    ChatMessageEvent event{id, user, {}, message.to, message.text};
    if (!hooks_->allow_message(event)) {
      ++stats_.vetoed;
      send_error(id, ChatError::kRejected, "message rejected", message.id);
      return;
    }
  }
  uint64_t ts = now_ms();
  out_.clear();
  write_dm(out_, user, message.to, message.text, ts);
  transport_.send_text(to, out_);
  out_.clear();
  write_ack(out_, message.id, 0, ts);
  transport_.send_text(id, out_);
  ++stats_.direct_messages;
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

void ChatApp::send_error(protocol::ConnectionId id, ChatError error, std::string_view reason,
                         std::string_view message_id) {
  ++stats_.errors;
  // Its own scratch string: callers may pass views into out_.
  error_out_.clear();
  write_error(error_out_, error, reason, message_id);
  transport_.send_text(id, error_out_);
}

void ChatApp::broadcast(const Room& room, protocol::ConnectionId except, std::string_view json, bool immediate) {
  std::span<const RoomMember> members = room.members();
  if (members.empty() || (members.size() == 1 && members[0].connection == except)) return;
  if (immediate) {
    for (const RoomMember& member : members) {
      if (member.connection != except) transport_.send_text(member.connection, json);
    }
    return;
  }
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
  room.history().push(from, text, ts, seq);
  std::string json;
  json.reserve(96 + room_name.size() + from.size() + text.size());
  write_msg(json, room.name(), from, text, ts, seq);
  broadcast(room, 0, json);
  ++stats_.messages;
  return seq;
}

void ChatApp::leave_all(uint32_t session, bool immediate) {
  ChatSession& chat_session = sessions_.get(session);
  protocol::ConnectionId id = chat_session.connection;
  while (!chat_session.memberships.empty()) {
    uint32_t index = chat_session.memberships.size() - 1;
    RoomTable::LeaveResult result = rooms_.leave_at(session, index);
    if (result.freed) continue;
    const Room& room = rooms_.room(result.room);
    out_.clear();
    write_presence(out_, false, room.name(), chat_session.name());
    broadcast(room, id, out_, immediate);
  }
}

void ChatApp::on_close(protocol::ConnectionId id, uint16_t) {
  uint32_t fd = fd_of(id);
  if (PendingUser* pending = pending_users_.find(fd); pending != nullptr && pending->id == id) {
    pending_users_.erase(fd);
  }
  uint32_t session = session_of(id);
  if (session == kNoIndex) return;
  // WsServer calls on_close after its end-of-iteration flush of send_encoded frames, and may
  // then sleep in epoll_wait: frames queued with send_encoded here would wait for the next
  // unrelated event. Presence on disconnect is therefore written at once, one copy per member.
  leave_all(session, /*immediate=*/true);
  users_.erase(sessions_.get(session).name());
  sessions_.release(session);
  session_by_fd_[fd] = 0;
}

}  // namespace chat
