#include "chat/chat_app.h"

#include <netinet/in.h>
#include <simdjson.h>
#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <string>

#include "chat/auth_token.h"
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

uint64_t monotonic_coarse_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

// IPv4: the address (top bit set, so it cannot equal an IPv6 key of ours); IPv6: its /64, as
// --max-connections-per-ip does (one host usually owns a whole /64). IPv4-mapped IPv6 is IPv4.
bool peer_key_from_socket(protocol::ConnectionId id, uint64_t& key) {
  sockaddr_storage address{};
  socklen_t length = sizeof address;
  if (getpeername(static_cast<int>(static_cast<uint32_t>(id)), reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    return false;
  }
  if (address.ss_family == AF_INET) {
    key = (uint64_t{1} << 63) | ntohl(reinterpret_cast<const sockaddr_in&>(address).sin_addr.s_addr);
    return true;
  }
  if (address.ss_family == AF_INET6) {
    const uint8_t* bytes = reinterpret_cast<const sockaddr_in6&>(address).sin6_addr.s6_addr;
    static constexpr uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::equal(bytes, bytes + 12, kMappedPrefix)) {
      key = (uint64_t{1} << 63) | uint64_t{bytes[12]} << 24 | uint64_t{bytes[13]} << 16 |
            uint64_t{bytes[14]} << 8 | bytes[15];
      return true;
    }
    key = 0;
    for (int i = 0; i < 8; ++i) key = key << 8 | bytes[i];
    key &= ~(uint64_t{1} << 63);
    return true;
  }
  return false;
}

// The most peers whose handshake buckets are kept; past it, full (idle) buckets are dropped.
constexpr size_t kMaxHandshakePeers = 65536;

std::string_view without_hash(std::string_view room) {
  return !room.empty() && room.front() == '#' ? room.substr(1) : room;
}

}  // namespace

ChatApp::ChatApp(ChatTransport& transport, ChatConfig config, ChatHooks* hooks)
    : transport_(transport), config_(std::move(config)), hooks_(hooks), rooms_(sessions_, config_.history_size) {
  out_.reserve(1024);
  if (config_.message_rate > 0) {
    message_rate_ = TokenBucketRate::make(config_.message_rate, config_.message_burst);
  }
  if (config_.handshake_rate > 0) {
    handshake_rate_ = TokenBucketRate::make(config_.handshake_rate, config_.handshake_burst);
  }
}

ChatApp::~ChatApp() = default;

uint64_t ChatApp::now_ms() const { return config_.wall_clock_ms != nullptr ? config_.wall_clock_ms() : realtime_ms(); }

uint64_t ChatApp::monotonic_now() const {
  return config_.monotonic_ms != nullptr ? config_.monotonic_ms() : monotonic_coarse_ms();
}

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

bool ChatApp::take_handshake(protocol::ConnectionId id, uint64_t now, uint64_t& retry_after_ms) {
  uint64_t key = 0;
  bool known = config_.peer_key != nullptr ? config_.peer_key(id, key) : peer_key_from_socket(id, key);
  if (!known) return true;
  if (handshake_buckets_.size() >= kMaxHandshakePeers && !handshake_buckets_.contains(key)) {
    // Forget peers whose bucket has refilled: they are indistinguishable from new ones. If
    // too few were idle, forget everyone: a limit that fails open under a many-address flood
    // rather than refusing all newcomers.
    handshake_buckets_.erase_if([&](const uint64_t&, TokenBucket& bucket) {
      return bucket.ms_until_available(*handshake_rate_, now, config_.handshake_burst) == 0;
    });
    if (handshake_buckets_.size() >= kMaxHandshakePeers * 3 / 4) handshake_buckets_.clear();
  }
  auto [bucket, inserted] = handshake_buckets_.try_emplace(key, *handshake_rate_, now);
  if (bucket->try_take(*handshake_rate_, now)) return true;
  retry_after_ms = bucket->ms_until_available(*handshake_rate_, now);
  return false;
}

bool ChatApp::check_access(protocol::ConnectionId id, const protocol::HttpRequest& request,
                           ChatAuthDecision& decision, std::string_view& subprotocol) {
  // Cheapest first, and the rate before anything else so rejected attempts count too.
  if (handshake_rate_) {
    uint64_t retry_after_ms = 0;
    if (!take_handshake(id, monotonic_now(), retry_after_ms)) {
      ++access_stats_.handshakes_limited;
      uint64_t seconds = std::max<uint64_t>(1, (retry_after_ms + 999) / 1000);
      decision.status = 429;
      decision.reason = "too many handshakes from your address; retry after " + std::to_string(seconds) + " s";
      return false;
    }
  }
  // RFC 6455 10.2: a browser always sends Origin; refuse pages of sites not on the list.
  if (config_.origins && !config_.origins->allows(request.header("Origin"))) {
    ++access_stats_.forbidden_origins;
    decision.status = 403;
    decision.reason = request.has_header("Origin") ? "origin not allowed" : "an Origin header is required";
    return false;
  }
  if (config_.token_secret.empty()) return true;
  ExtractedToken extracted = extract_token(request);
  if (extracted.source == TokenSource::kNone || extracted.token.empty()) {
    ++access_stats_.unauthorized;
    decision.status = 401;
    decision.reason =
        "a token is required (Authorization: Bearer, Sec-WebSocket-Protocol parley.token.<token>, or ?token=)";
    return false;
  }
  // Never echo the token: the reason names only the failure class.
  TokenResult result = verify_token(extracted.token, config_.token_secret, now_ms() / 1000);
  if (result.status != TokenStatus::kOk) {
    ++access_stats_.unauthorized;
    decision.status = 401;
    decision.reason = "invalid token: " + std::string(token_status_name(result.status));
    return false;
  }
  decision.user = std::move(result.subject);
  decision.restrict_rooms = result.has_rooms;
  decision.rooms = std::move(result.rooms);
  // RFC 6455 4.2.2: select the protocol the token came in, the only one we know the client
  // offered; a browser fails the connection when none is selected.
  subprotocol = extracted.subprotocol;
  return true;
}

protocol::UpgradeVerdict ChatApp::on_upgrade(protocol::ConnectionId id, const protocol::HttpRequest& request) {
  protocol::UpgradeVerdict verdict;
  ChatAuthDecision decision;
  std::string_view subprotocol;
  bool admitted = check_access(id, request, decision, subprotocol);
  if (admitted && hooks_ != nullptr) hooks_->authorize(id, request, decision);
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
    pending.restrict_rooms = decision.restrict_rooms;
    pending.rooms = std::move(decision.rooms);
  }
  verdict.subprotocol = subprotocol;  // a view into `request`, which outlives the verdict's use
  return verdict;
}

void ChatApp::on_open(protocol::ConnectionId id) {
  if (message_rate_) {
    uint32_t fd = fd_of(id);
    if (fd >= rate_by_fd_.size()) rate_by_fd_.resize(std::max<size_t>(fd + 1, rate_by_fd_.size() * 2));
    rate_by_fd_[fd].bucket.reset(*message_rate_, monotonic_now());
    rate_by_fd_[fd].violations = 0;
  }
  PendingUser* pending = pending_users_.find(fd_of(id));
  if (pending == nullptr) return;
  if (pending->id == id) {
    std::string name = std::move(pending->name);
    Grant grant{pending->restrict_rooms, std::move(pending->rooms)};
    pending_users_.erase(fd_of(id));
    if (!identify(id, name)) {
      send_error(id, ChatError::kNameTaken, "user name taken", {});
      transport_.close(id, protocol::kClosePolicyViolation, "user name taken");
      return;
    }
    grants_.insert_or_assign(session_of(id), std::move(grant));
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

bool ChatApp::take_message(protocol::ConnectionId id) {
  uint32_t fd = fd_of(id);
  if (fd >= rate_by_fd_.size()) return true;  // not opened through on_open: nothing to limit
  RateState& state = rate_by_fd_[fd];
  if (state.bucket.try_take(*message_rate_, monotonic_now())) {
    state.violations = 0;
    return true;
  }
  ++access_stats_.rate_limited;
  if (config_.rate_violations_to_close != 0 && ++state.violations >= config_.rate_violations_to_close) {
    ++access_stats_.rate_closed;
    state.violations = 0;
    transport_.close(id, protocol::kClosePolicyViolation, "message rate limit exceeded");
    return false;
  }
  // chat_codec.h has no rate_limited code (yet): "rejected" with a reason that starts with a
  // stable token clients can match.
  send_error(id, ChatError::kRejected, "rate_limited: too many messages; this one was dropped", {});
  return false;
}

void ChatApp::on_message(protocol::ConnectionId id, protocol::Opcode opcode, std::span<uint8_t> payload) {
  // Before parsing: a flood costs one bucket check per message, not a JSON parse.
  if (message_rate_ && !take_message(id)) return;
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
  if (uint32_t session = session_of(id); session != kNoIndex) {
    // A connection named at the handshake (token or hook) may still say hello, as clients
    // written for the hello flow do: the same name gets the welcome again, another an error.
    std::string_view name = sessions_.get(session).name();
    if (grants_.contains(session)) {
      if (message.name == name) {
        out_.clear();
        write_welcome(out_, name);
        transport_.send_text(id, out_);
        return;
      }
      send_error(id, ChatError::kAlreadyIdentified,
                 "this connection is identified by its token as '" + std::string(name) + "'", message.id);
      return;
    }
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

bool ChatApp::room_allowed(uint32_t session, std::string_view room) const {
  const Grant* grant = grants_.find(session);
  if (grant == nullptr || !grant->restrict_rooms) return true;
  std::string_view bare = without_hash(room);
  return std::find(grant->rooms.begin(), grant->rooms.end(), bare) != grant->rooms.end();
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
  grants_.erase(session);
  users_.erase(sessions_.get(session).name());
  sessions_.release(session);
  session_by_fd_[fd] = 0;
}

}  // namespace chat
