#include "chat/chat_app.h"

#include <simdjson.h>
#include <time.h>

#include <algorithm>
#include <string>

#include "chat/chat_app_internal.h"
#include "chat/upgrade_auth.h"
#include "reactor/event_loop.h"
#include "chat/store/memory_room_log.h"
#include "protocol/close_code.h"

// ChatApp's lifecycle (upgrade, open, close), identification, message dispatch and direct
// messages. Access control is in chat_access.cpp, the room handlers in chat_rooms.cpp.

namespace chat {

using detail::fd_of;

namespace {

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

}  // namespace

namespace {

// The memory-only log: it assigns seqs and remembers client ids; it keeps one message per
// conversation (its smallest setting: 0 would mean all), since the rings, under the
// --history-memory budget (issue 13), are the history.
std::unique_ptr<RoomLog> default_log(const ChatConfig& config) {
  RoomLogConfig log_config;
  log_config.path = "none";
  log_config.history_keep = 1;
  log_config.dedup_window_ms = config.dedup_window_ms;
  log_config.wall_clock_ms = config.wall_clock_ms;
  return std::make_unique<MemoryRoomLog>(log_config);
}

}  // namespace

ChatApp::ChatApp(ChatTransport& transport, ChatConfig config, ChatHooks* hooks, RoomLog* log)
    : transport_(transport),
      config_(std::move(config)),
      hooks_(hooks),
      own_log_(log == nullptr ? default_log(config_) : nullptr),
      log_(log == nullptr ? own_log_.get() : log),
      memory_only_(log == nullptr),
      rooms_(sessions_, config_.history_size, config_.history_memory) {
  log_->set_client(this);
  rooms_.set_room_limits(config_.max_rooms, config_.max_rooms_per_ip);
  out_.reserve(1024);
  if (config_.message_rate > 0) {
    message_rate_ = TokenBucketRate::make(config_.message_rate, config_.message_burst);
  }
  if (config_.handshake_rate > 0) {
    handshake_rate_ = TokenBucketRate::make(config_.handshake_rate, config_.handshake_burst);
  }
}

ChatApp::~ChatApp() {
  if (presence_wheel_ != nullptr) presence_wheel_->cancel(&presence_tick_);
  // A log that outlives the app (parleyd's) must not deliver its last completions here.
  log_->set_client(nullptr);
}

uint64_t ChatApp::now_ms() const { return config_.wall_clock_ms != nullptr ? config_.wall_clock_ms() : realtime_ms(); }

uint64_t chat_hard_message_size(uint64_t max_text_bytes) {
  constexpr uint64_t kFloor = 64 * 1024;
  return max_text_bytes > kFloor / 16 ? (max_text_bytes > UINT64_MAX / 16 ? UINT64_MAX : 16 * max_text_bytes)
                                       : kFloor;
}

ChatRoomStats ChatApp::room_stats() const {
  return {rooms_.size(), rooms_.history_bytes(), rooms_.history_memory(), rooms_.history_evictions()};
}

uint64_t ChatApp::loop_ms() const { return loop_clock_ != nullptr ? loop_clock_->now_ms() : 0; }

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

protocol::UpgradeVerdict ChatApp::on_upgrade(protocol::ConnectionId id, const protocol::HttpRequest& request) {
  protocol::UpgradeVerdict verdict;
  ChatAuthDecision decision;
  std::string_view subprotocol;
  bool admitted = check_access(id, request, decision, subprotocol);
  if (admitted && hooks_ != nullptr) hooks_->authorize(id, request, decision);
  if (decision.status != 101) {
    return refuse_upgrade(id, request, decision.status,
                          decision.reason.empty() ? std::string("rejected") : std::move(decision.reason));
  }
  if (!decision.user.empty()) {
    // The name came from the embedder's hook or a token: a bad one is still the client's
    // credential that does not fit, so 4xx (RFC 9110 15.5), not 500.
    if (!is_valid_user_name(decision.user)) {
      return refuse_upgrade(id, request, 400, "invalid user name: names are 1-32 of A-Z a-z 0-9 _ . -");
    }
    std::string policy_reason;
    if (!name_allowed(id, decision.user, policy_reason)) return refuse_upgrade(id, request, 403, policy_reason);
    expire_held();
    // A held session of this verified identity is taken over at open (resume by token identity).
    if (users_.contains(std::string_view(decision.user)) && held_session_named(decision.user) == kNoIndex) {
      return refuse_upgrade(id, request, 409, "user name taken");
    }
    // Keyed by fd: an entry left behind by an upgrade that never opened is overwritten by the
    // next connection on that fd, so the map stays bounded by the fd table.
    PendingUser& pending = pending_users_[fd_of(id)];
    pending = PendingUser{};
    pending.id = id;
    pending.name = std::move(decision.user);
    pending.restrict_rooms = decision.restrict_rooms;
    pending.rooms = std::move(decision.rooms);
  }
  // RFC 6455 4.2.2: select one offered protocol; the in-band one when offered, since such a
  // client (the page) offers it on every connection. Both are views into `request` or static.
  verdict.subprotocol = offers_subprotocol(request, kChatSubprotocol) ? kChatSubprotocol : subprotocol;
  return verdict;
}

protocol::UpgradeVerdict ChatApp::refuse_upgrade(protocol::ConnectionId id, const protocol::HttpRequest& request,
                                                 int status, std::string reason) {
  protocol::UpgradeVerdict verdict;
  if (status >= 400 && status < 500 && offers_subprotocol(request, kChatSubprotocol)) {
    PendingUser& pending = pending_users_[fd_of(id)];
    pending = PendingUser{};
    pending.id = id;
    pending.close_code = static_cast<uint16_t>(kRefusalCloseBase + status);
    pending.close_reason = std::move(reason);
    verdict.subprotocol = kChatSubprotocol;
    return verdict;
  }
  // The verdict's reason is a view: its text lives in verdict_reason_ until the next upgrade.
  verdict_reason_ = std::move(reason);
  verdict.status = status;
  verdict.reason = verdict_reason_;
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
  if (pending->id == id && pending->close_code != 0) {
    // A refusal told in-band: nothing this connection sends is delivered once our close is
    // out (RFC 6455 7.1.2, WsServer), so it can never say hello.
    std::string reason = std::move(pending->close_reason);
    uint16_t code = pending->close_code;
    pending_users_.erase(fd_of(id));
    transport_.close(id, code, reason);
    return;
  }
  if (pending->id == id) {
    std::string name = std::move(pending->name);
    Grant grant{pending->restrict_rooms, std::move(pending->rooms)};
    pending_users_.erase(fd_of(id));
    if (uint32_t held = held_session_named(name); held != kNoIndex) {
      attach_session(held, id);
      grants_.insert_or_assign(held, std::move(grant));
      return;
    }
    if (!identify(id, name)) {
      send_error(id, ChatError::kNameTaken, "user name taken", {});
      transport_.close(id, protocol::kClosePolicyViolation, "user name taken");
      return;
    }
    grants_.insert_or_assign(session_of(id), std::move(grant));
    // A verified identity is welcomed without waiting (the token's subject is that user), and
    // closed as a second connection of that name would be here if another node holds it.
    if (presence_ != nullptr) claim_verified(id, name);
    return;
  }
  pending_users_.erase(fd_of(id));
}

bool ChatApp::identify(protocol::ConnectionId id, std::string_view name,
                       const std::vector<std::string>* resumed_rooms) {
  if (users_.contains(name)) return false;
  uint32_t index = sessions_.acquire();
  if (index == kNoIndex) return false;
  ChatSession& session = sessions_.get(index);
  session.connection = id;
  session.set_name(name);
  users_.try_emplace(session.name(), index);  // the key views the session's inline name
  log_->watch_user(name);  // a delivering engine routes DMs for `name` here
  uint32_t fd = fd_of(id);
  if (fd >= session_by_fd_.size()) session_by_fd_.resize(std::max<size_t>(fd + 1, session_by_fd_.size() * 2), 0);
  session_by_fd_[fd] = index + 1;
  write_session_welcome(index);
  if (resumed_rooms != nullptr) {
    write_resumed_begin(out_);
    for (size_t i = 0; i < resumed_rooms->size(); ++i) write_resumed_room(out_, (*resumed_rooms)[i], i == 0);
    write_resumed_end(out_);
  }
  transport_.send_text(id, out_);
  if (hooks_ != nullptr) hooks_->on_connect(id, session.name());
  return true;
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
        write_session_welcome(session);
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
  std::string policy_reason;
  if (!name_allowed(id, message.name, policy_reason)) {
    send_error(id, ChatError::kInvalidName, policy_reason, message.id);
    return;
  }
  if (!message.resume.empty()) {
    resume_by_token(id, message);
    return;
  }
  expire_held();
  // Names are the cluster's (chat_presence.cpp): the welcome waits for the claim's answer. A
  // name held here (a session on this node, attached or held) is answered below at once.
  if (presence_ != nullptr && !users_.contains(message.name)) {
    claim_name(id, message);
    return;
  }
  if (!identify(id, message.name)) {
    send_error(id, ChatError::kNameTaken,
               held_session_named(message.name) != kNoIndex
                   ? "user name taken: held for its owner to resume (reconnecting)"
                   : "user name taken",
               message.id);
  }
}

void ChatApp::on_dm(protocol::ConnectionId id, uint32_t session, const ClientMessage& message) {
  const uint32_t* target = users_.find(message.to);
  // A delivering engine (Redis) reaches users on other nodes, which this one cannot see (no
  // cluster-wide presence yet, docs/redis.md): the DM is stored and goes to whoever holds the name.
  if (target == nullptr && !log_->delivers()) {
    send_error(id, ChatError::kUnknownUser, "no such user", message.id);
    return;
  }
  // Held for resume: refused rather than stored unseen (docs/protocol.md "Session resume").
  if (target != nullptr && sessions_.get(*target).connection == 0) {
    send_error(id, ChatError::kAway, "that user is away (reconnecting); the message was not sent", message.id);
    return;
  }
  std::string_view user = sessions_.get(session).name();
  if (hooks_ != nullptr) {
    ChatMessageEvent event{id, user, {}, message.to, message.text};
    if (!hooks_->allow_message(event)) {
      ++stats_.vetoed;
      send_error(id, ChatError::kRejected, "message rejected", message.id);
      return;
    }
  }
  // Stored first; delivered on completion to whoever holds the name then (chat_log.cpp).
  AppendRequest request;
  request.conversation = dm_conversation(user, message.to);
  request.sender = user;
  request.ts_ms = now_ms();
  request.text = message.text;
  request.client_id = message.id;
  request.cookie = id;
  request.recipient = message.to;
  request.arrival_ms = loop_ms();
  dm_targets_.emplace_back(message.to);
  if (!submit_append(std::move(request), id, message.id)) dm_targets_.pop_back();
}

void ChatApp::send_error(protocol::ConnectionId id, ChatError error, std::string_view reason,
                         std::string_view message_id) {
  ++stats_.errors;
  // Its own scratch string: callers may pass views into out_.
  error_out_.clear();
  write_error(error_out_, error, reason, message_id);
  transport_.send_text(id, error_out_);
}

void ChatApp::on_close(protocol::ConnectionId id, uint16_t code) {
  uint32_t fd = fd_of(id);
  if (PendingUser* pending = pending_users_.find(fd); pending != nullptr && pending->id == id) {
    pending_users_.erase(fd);
  }
  if (PendingClaim* claim = pending_claims_.find(fd); claim != nullptr && claim->connection == id) {
    pending_claims_.erase(fd);  // the claim's answer then gives the name back (on_claimed)
  }
  uint32_t session = session_of(id);
  if (session == kNoIndex) return;
  // `left` goes out as one shared frame, as every room event does (issue 13: a private copy
  // per member cost each a write-queue chunk). WsServer delivers on_close in its before-sleep
  // loop, which flushes what on_close queued before the loop sleeps.
  // Held for resume only when the connection was lost (1006: no close frame, RFC 6455 7.1.5) or
  // the client went away (1001, RFC 6455 7.4.1: a page reloading or navigating). 1000 is a
  // goodbye, and a close the server made (1008 policy, 1009 too big, ...) a kick: those end now.
  bool lost = code == protocol::kCloseAbnormal || code == protocol::kCloseGoingAway;
  // The hook hears of the connection once, after its session has left (or was held): a name
  // copy, since ending the session releases it.
  std::string name = hooks_ != nullptr ? std::string(sessions_.get(session).name()) : std::string();
  if (!(lost && hold_session(session))) {
    session_by_fd_[fd] = 0;
    end_session(session);
  }
  if (hooks_ != nullptr) hooks_->on_disconnect(id, name, code);
}

void ChatApp::end_session(uint32_t session) {
  bool was_held = held_until_.erase(session);
  leave_all(session);
  grants_.erase(session);
  log_->unwatch_user(sessions_.get(session).name());
  if (presence_ != nullptr) {
    if (was_held) presence_->unhold(sessions_.get(session).name());
    presence_->release(sessions_.get(session).name());
  }
  users_.erase(sessions_.get(session).name());
  sessions_.release(session);
}

}  // namespace chat
