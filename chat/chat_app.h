#pragma once
// The /chat WebSocket application (issue 3, docs/protocol.md): identification, rooms, presence,
// history, room messages, direct messages, typing. One JSON object per text message in each
// direction (chat_codec.h). Bad input gets an `error` reply and the connection stays up.
//
// Fan-out encodes a room event once (JSON + frame header in one SharedBuffer) and hands that
// buffer to every recipient (ChatTransport::send_encoded). The app talks to a ChatTransport
// rather than to WsServer directly, so tests and benchmarks can run it against a stub.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "chat/chat_codec.h"
#include "chat/chat_session.h"
#include "chat/cluster/presence.h"
#include "chat/flat_map.h"
#include "chat/origin_policy.h"
#include "chat/histogram.h"
#include "chat/room.h"
#include "chat/store/room_log.h"
#include "chat/token_bucket.h"
#include "protocol/ws_server.h"
#include "reactor/shared_buffer.h"
#include "reactor/timer_wheel.h"

namespace reactor {
class EventLoop;
}  // namespace reactor

namespace simdjson::dom {
class parser;
}

namespace chat {

struct ChatConfig {
  size_t history_size = 50;             // messages kept per room (0: no history)
  size_t max_text_bytes = 4096;         // longer msg/dm text -> error text_too_long
  size_t max_rooms_per_connection = 32; // joins beyond -> error too_many_rooms
  // Memory bounds (issue 13). Bytes of history all rooms together may hold; past it the oldest
  // messages of the rooms holding the most history are evicted (RoomTable). 0: no budget.
  size_t history_memory = size_t{64} << 20;
  // Live rooms in total, and live rooms created from one address (the peer_key below); a join
  // that would create one more gets error room_limit. 0: unlimited.
  size_t max_rooms = 100000;
  size_t max_rooms_per_ip = 1000;
  // Issue 14: a join with since_seq gets at most this many missed messages (the newest ones,
  // with recovered:false when more were missed).
  size_t recovery_limit = 1000;
  // A msg/dm client id is recognised this long by the app's own memory log (no log given).
  uint64_t dedup_window_ms = 10 * 60 * 1000;
  // Session resume (issue 14, docs/protocol.md "Session resume"): when a connection drops, its
  // session (name, rooms, verified identity) is held this long for a hello with its resume
  // token, and the others see it "away". 0: off (the session ends at once; welcome carries no
  // token). Held sessions expire in expire_held(), which the embedder calls now and then.
  uint64_t resume_window_ms = 0;
  // At most this many sessions held at once (a bound on their memory: each is one pool session,
  // 120 bytes, a 24-byte users entry, a 16-byte queue entry and a 16-byte member entry per room:
  // about 18 MB at the default with one room each); past it the oldest held one ends early.
  // 0: unlimited.
  size_t max_held_sessions = 100000;
  // Wall-clock milliseconds since the epoch for `ts` and token expiry; null means CLOCK_REALTIME.
  uint64_t (*wall_clock_ms)() = nullptr;

  // Access control and abuse limits (issue 7). The defaults keep /chat open and unlimited.
  //
  // Non-empty: every upgrade must carry an HS256 token signed with this secret (auth_token.h,
  // carried as "Authorization: Bearer", Sec-WebSocket-Protocol "parley.token.<token>" or the
  // "token" query parameter); missing or invalid -> HTTP 401. The connection is then identified
  // as the token's "sub" at open (welcome without hello), and a "rooms" claim limits its joins.
  std::string token_secret;
  // Set: the Origin header must pass it (RFC 6455 10.2) or the upgrade gets HTTP 403.
  // Unset: any Origin, and none, is accepted.
  std::optional<OriginPolicy> origins;
  // Per-connection message rate (token bucket): over it, the message is dropped with error
  // "rejected" (reason "rate_limited: ..."); after rate_violations_to_close consecutive drops
  // the connection is closed with 1008. message_rate 0 disables.
  double message_rate = 0;
  uint32_t message_burst = 40;              // 1 to TokenBucketRate::kMaxBurst
  uint32_t rate_violations_to_close = 20;   // 0: never close, only drop
  // Upgrades to this app per second per source address (IPv4 address, IPv6 /64), burst
  // handshake_burst; over it -> HTTP 429. 0 disables.
  double handshake_rate = 0;
  uint32_t handshake_burst = 1;             // 1 to TokenBucketRate::kMaxBurst
  // Members one room may hold; joins beyond get error "rejected" (reason "room_full: ...").
  // 0: unlimited.
  size_t max_room_members = 0;
  // Presence in big rooms (issue 18, docs/protocol.md "Presence in big rooms"). A join, leave,
  // away or back (session held for resume, resumed) in a room of more than presence_batch_above
  // members is not told at once: the changes of
  // each room are gathered for presence_batch_ms on the loop's timer and told as ONE `members`
  // event, listing names while the room and the batch hold at most presence_names_max, counts
  // only above, and those at most every presence_counts_ms (a counts-only event to 10,000
  // members every 50 ms would cost 200,000 frames a second while the room churns), and in a
  // room so big that this would cost more than presence_counts_per_s frames a second (every
  // member on every node counted), less often: every members x 1000 / presence_counts_per_s ms
  // (0: no such bound). Without the bound, filling a room of N at R joins a second sends
  // N^2 / (2R) counts frames; with it, at most presence_counts_per_s a second. Smaller
  // rooms keep one `joined`/`left`/`presence` per change, as before. Batching needs the loop
  // (set_loop_clock); presence_batch_ms 0 turns it off. Sizes count every node's members.
  uint64_t presence_batch_ms = 50;
  size_t presence_batch_above = 100;
  size_t presence_names_max = 1000;
  uint64_t presence_counts_ms = 1000;
  size_t presence_counts_per_s = 10000;
  // Milliseconds of a monotonic clock for the rate limits; null means CLOCK_MONOTONIC_COARSE.
  uint64_t (*monotonic_ms)() = nullptr;
  // The per-address key of a connection's peer for handshake_rate and max_rooms_per_ip; false
  // when unknown (the upgrade or room is then not limited). Null means getpeername() on the
  // id's fd.
  bool (*peer_key)(protocol::ConnectionId, uint64_t& key) = nullptr;
};

// Where ChatApp's output goes: WsServer in production (WsServerTransport), stubs in tests.
class ChatTransport {
 public:
  virtual ~ChatTransport() = default;
  // Sends one text message to `id`.
  virtual protocol::SendResult send_text(protocol::ConnectionId id, std::string_view text) = 0;
  // Sends a frame already encoded (header + payload); the transport takes its own reference.
  virtual protocol::SendResult send_encoded(protocol::ConnectionId id, reactor::SharedBuffer* frame) = 0;
  // Starts closing `id`.
  virtual void close(protocol::ConnectionId id, uint16_t code, std::string_view reason) = 0;
};

// ChatTransport over a WsServer.
class WsServerTransport final : public ChatTransport {
 public:
  explicit WsServerTransport(protocol::WsServer& server) : server_(server) {}
  protocol::SendResult send_text(protocol::ConnectionId id, std::string_view text) override {
    return server_.send_text(id, text);
  }
  protocol::SendResult send_encoded(protocol::ConnectionId id, reactor::SharedBuffer* frame) override {
    return server_.send_encoded(id, frame);
  }
  void close(protocol::ConnectionId id, uint16_t code, std::string_view reason) override {
    server_.close(id, code, reason);
  }

 private:
  protocol::WsServer& server_;
};

// A room message or direct message about to be delivered, for ChatHooks::allow_message.
struct ChatMessageEvent {
  protocol::ConnectionId connection = 0;
  std::string_view user;  // the sender
  std::string_view room;  // set for a room message
  std::string_view to;    // set for a direct message
  std::string_view text;
};

// What the embedding application decided about an upgrade request. When ChatConfig has a
// token secret, the hook sees the verified token's grant already filled in (user, rooms).
struct ChatAuthDecision {
  int status = 101;     // anything else rejects the upgrade with that HTTP status
  std::string reason;   // rejection body
  // When set, the connection is identified as this user at open (welcome, no hello needed); a
  // later hello with this name gets the welcome again, with another name already_identified.
  std::string user;
  // With restrict_rooms, the connection may join only these rooms (names without '#'; "general"
  // allows "general" and "#general"); an empty list then allows no room at all.
  bool restrict_rooms = false;
  std::vector<std::string> rooms;
};

// Embedding hooks; every callback runs on the loop thread. Defaults change nothing.
class ChatHooks {
 public:
  virtual ~ChatHooks() = default;
  // Decides on an upgrade request to /chat.
  virtual void authorize(protocol::ConnectionId, const protocol::HttpRequest&, ChatAuthDecision&) {}
  // Returns false to veto a msg or dm (the sender gets error "rejected").
  virtual bool allow_message(const ChatMessageEvent&) { return true; }
  // A message of a type the protocol does not know, from an identified user. Returns true when
  // handled (no error is sent), false to answer unknown_type.
  virtual bool on_custom(protocol::ConnectionId, std::string_view /*user*/, std::string_view /*type*/,
                         std::string_view /*json*/) {
    return false;
  }
  // The name policy (issue 17): every identification path (hello, token, authorize's user) asks
  // it before a connection takes `name`. False refuses: hello gets error invalid_name with
  // `reason`, an upgrade naming the connection gets HTTP 403 with `reason`.
  virtual bool allow_name(protocol::ConnectionId, std::string_view /*name*/, std::string& /*reason*/) { return true; }
  // A connection was identified as `user` (welcome sent) / an identified connection closed with
  // `code` (RFC 6455 7.4; 1006 when no close frame came).
  virtual void on_connect(protocol::ConnectionId, std::string_view /*user*/) {}
  virtual void on_disconnect(protocol::ConnectionId, std::string_view /*user*/, uint16_t /*code*/) {}
  // `user` joined `room` (not again when already a member) / left it (by leave or by closing).
  virtual void on_join(protocol::ConnectionId, std::string_view /*user*/, std::string_view /*room*/) {}
  virtual void on_leave(protocol::ConnectionId, std::string_view /*user*/, std::string_view /*room*/) {}
};

// Counters for tests and /metrics.
struct ChatStats {
  uint64_t messages = 0;       // room messages accepted
  uint64_t direct_messages = 0;
  uint64_t deliveries = 0;     // frames handed to the transport for room fan-out
  uint64_t errors = 0;         // error replies sent
  uint64_t vetoed = 0;
  uint64_t unavailable = 0;    // msg/dm/join/history refused because the room log failed or was full
  uint64_t duplicates = 0;     // msg/dm answered with the original ack (client id seen before)
};

// A user name (and room restriction) granted at the handshake, held until on_open.
struct PendingUser {
  protocol::ConnectionId id = 0;
  std::string name;
  bool restrict_rooms = false;
  std::vector<std::string> rooms;
  // Set: the upgrade was refused in-band (docs/protocol.md "Refusals a browser can read"): it was
  // accepted so that on_open can close it with this code and reason.
  uint16_t close_code = 0;
  std::string close_reason;
};

// Counters of the access-control and limit decisions (issue 7).
struct ChatAccessStats {
  uint64_t unauthorized = 0;       // 401: missing or invalid token
  uint64_t forbidden_origins = 0;  // 403
  uint64_t handshakes_limited = 0; // 429
  uint64_t rate_limited = 0;       // messages dropped by the per-connection rate limit
  uint64_t rate_closed = 0;        // connections closed 1008 for flooding
  uint64_t forbidden_rooms = 0;    // joins outside a token's rooms
  uint64_t rooms_full = 0;         // joins refused by max_room_members
  uint64_t room_limit = 0;         // joins refused by max_rooms or max_rooms_per_ip
};

// What the rooms hold (issue 13), for tests and /metrics.
struct ChatRoomStats {
  size_t rooms = 0;                // live rooms
  size_t history_bytes = 0;        // heap bytes held by all rooms' history
  size_t history_memory = 0;       // the budget (ChatConfig::history_memory; 0: none)
  uint64_t history_evictions = 0;  // messages evicted early to keep the budget
};

// The largest /chat message read whole (the route's max message size in parleyd): 16 times the
// text limit, at least 64 KiB. Anything up to it gets a JSON reply (text_too_long when the text
// is over max_text_bytes); a larger message closes the connection with 1009 (RFC 6455 7.4.1),
// since reading it would let one peer pin that much memory.
uint64_t chat_hard_message_size(uint64_t max_text_bytes);

// Every room message and direct message goes through a RoomLog (chat/store/room_log.h, issue 14):
// the log assigns the seq, and the app delivers the message and acks the sender only when the
// log's completion arrives (for SQLite: after the commit), in completion order, which is seq
// order. The in-memory ring of each room (History) is a cache of the log's newest messages.
class ChatApp final : public protocol::WsApplication, public RoomLogClient, public PresenceClient {
 public:
  // The default (and largest) page of a paged `who`; a plain `who` of a room this big or
  // smaller lists every member, as before issue 18.
  static constexpr uint32_t kWhoPage = 1000;

  // `transport`, `hooks` (may be null) and `log` must outlive the app. A null `log` means
  // memory only (`--store none`): the app's own memory log assigns seqs and dedups client ids,
  // each room's ring is its whole history (under --history-memory), and an emptied room is
  // forgotten, seq and all, as before issue 14.
  ChatApp(ChatTransport& transport, ChatConfig config = {}, ChatHooks* hooks = nullptr, RoomLog* log = nullptr);
  ~ChatApp() override;
  ChatApp(const ChatApp&) = delete;
  ChatApp& operator=(const ChatApp&) = delete;

  protocol::UpgradeVerdict on_upgrade(protocol::ConnectionId id, const protocol::HttpRequest& request) override;
  void on_open(protocol::ConnectionId id) override;
  void on_message(protocol::ConnectionId id, protocol::Opcode opcode, std::span<uint8_t> payload) override;
  void on_close(protocol::ConnectionId id, uint16_t code) override;

  // RoomLogClient: a message was stored (deliver, ack), refused (error unavailable) or found
  // to be a resend (the original ack). Loop thread.
  void on_appended(AppendResult& result) override;
  // RoomLogClient: a read for a join, a recovery or a history request finished.
  void on_read(ReadResult& result) override;
  // RoomLogClient, delivering engines (Redis): a stored message from any node, in seq order:
  // fan out to the room's local members or to the local recipient of a DM.
  void on_delivered(const DeliveredMessage& message) override;

  // Presence across nodes (chat/cluster/presence.h; chat_presence.cpp): null (the default) keeps
  // names, who and presence events local to this process. Set before serving; must outlive
  // the app. Names are then claimed cluster-wide (hello waits for the claim), joined/left/typing
  // go to the room's members on every node and `who` lists them all.
  void set_presence(Presence* presence);
  // PresenceClient: a hello's claim was answered (welcome, name_taken or unavailable).
  void on_claimed(uint64_t cookie, std::string_view name, ClaimResult result) override;
  // PresenceClient: an event of a user on another node: told to this node's members of `room`.
  void on_remote_presence(std::string_view room, std::string_view user, PresenceEvent event) override;
  // PresenceClient: the other nodes' members for a `who`: the reply goes out.
  void on_members(uint64_t cookie, bool ok, const std::vector<std::string>& remote) override;
  // PresenceClient: the room's members on every node, as Redis counted them at a batch.
  void on_room_count(std::string_view room, size_t members) override;
  // PresenceClient: a resume (or a verified identity) whose session another node held was
  // answered: welcome with its rooms, resume_failed or unavailable (chat_presence.cpp).
  void on_taken_over(uint64_t cookie, std::string_view name, ClaimResult result,
                     const std::vector<std::string>& rooms) override;
  // PresenceClient: `name`'s session resumed on another node: it ends here.
  void on_name_lost(std::string_view name) override;

  // Posts a message to room `room` from `from` (any label, e.g. "server") through the room
  // log: to every member, with the next seq, into history, once stored (at once with the memory
  // log). False when the room has no members or the log refused it (queue full).
  bool publish(std::string_view room, std::string_view from, std::string_view text);
  // Sends a raw text message to a connection (e.g. a reply to a custom message type).
  protocol::SendResult send_to(protocol::ConnectionId id, std::string_view json) {
    return transport_.send_text(id, json);
  }

  // Closes connection `id` with `code` and `reason` (the close handshake, RFC 6455 7.1.2).
  void close(protocol::ConnectionId id, uint16_t code, std::string_view reason) { transport_.close(id, code, reason); }
  // Calls `fn(user, connection)` for every identified connection.
  template <typename Fn>
  void for_each_user(Fn&& fn) const {
    users_.for_each([&](std::string_view name, uint32_t session) { fn(name, sessions_.get(session).connection); });
  }
  // The rooms user `name` is in (names as they were created); empty when unknown or in none.
  std::vector<std::string> rooms_of(std::string_view name) const;
  // The members of room `room`; empty when it does not exist.
  std::vector<std::string> members_of(std::string_view room) const;

  // The user name of `id`, empty when it has not identified.
  std::string_view user_of(protocol::ConnectionId id) const;
  // The connection of user `name` (any case), or 0 (also while the session is held).
  protocol::ConnectionId connection_of(std::string_view name) const;
  // Ends the held sessions whose resume window has passed (the usual `left` to their rooms);
  // returns how many ended. Cheap when none is due: call it every second or so.
  size_t expire_held();
  // Sessions held for resume now.
  size_t held_sessions() const { return held_until_.size(); }

  const RoomTable& rooms() const { return rooms_; }
  const SessionPool& sessions() const { return sessions_; }
  size_t users() const { return users_.size(); }
  const ChatStats& stats() const { return stats_; }
  // Reads the loop's per-iteration clock (EventLoop::now_ms) at a message's arrival and at its
  // fan-out, for publish_to_delivery(); without it (null, the default) nothing is recorded.
  // The loop also times the presence batches (ChatConfig::presence_batch_ms): without one,
  // every join and leave is told at once. Call once, before serving; `loop` outlives the app.
  void set_loop_clock(reactor::EventLoop* loop);
  // Tells every room its pending presence batch now (for tests and benchmarks; the batch
  // timer tells each when it is due).
  void flush_presence() { flush_presence(true); }
  // Room messages and DMs from clients: loop ms from arrival to fan-out (after the store's
  // commit; with a delivering engine, to the engine's completion), once per message.
  const Histogram& publish_to_delivery() const { return publish_to_delivery_; }
  const ChatAccessStats& access_stats() const { return access_stats_; }
  // Rooms and history memory now.
  ChatRoomStats room_stats() const;
  const ChatConfig& config() const { return config_; }
  // SIGHUP reload (issue 16): takes from `config` the limits that may change at run time --
  // max_text_bytes, max_room_members, origins, token_secret, and the message and handshake rates
  // (bursts too) while they stay on -- for messages and upgrades from now on. A rate switched
  // on or off is ignored here: its per-connection state exists only when it was on at start.
  void update_limits(const ChatConfig& config) {
    config_.max_text_bytes = config.max_text_bytes;
    config_.max_room_members = config.max_room_members;
    config_.origins = config.origins;
    config_.token_secret = config.token_secret;
    if (message_rate_ && config.message_rate > 0) {
      if (auto rate = TokenBucketRate::make(config.message_rate, config.message_burst)) {
        message_rate_ = rate;
        config_.message_rate = config.message_rate;
        config_.message_burst = config.message_burst;
      }
    }
    if (handshake_rate_ && config.handshake_rate > 0) {
      if (auto rate = TokenBucketRate::make(config.handshake_rate, config.handshake_burst)) {
        handshake_rate_ = rate;
        config_.handshake_rate = config.handshake_rate;
        config_.handshake_burst = config.handshake_burst;
      }
    }
  }
  // The room log messages go through.
  RoomLog& room_log() { return *log_; }
  const RoomLog& room_log() const { return *log_; }

 private:
  // A read of the room log waiting for its completion, keyed by the read's cookie.
  struct PendingRead {
    enum class Kind : uint8_t { kJoin, kHistory, kDmHistory } kind = Kind::kJoin;
    protocol::ConnectionId connection = 0;
    uint32_t session = kNoIndex;
    std::string name;        // the room, or the other user of a DM conversation
    std::string message_id;  // echoed in an error reply
    bool since = false;      // kJoin: a recovery (join with since_seq)
    uint64_t since_seq = 0;
  };
  // Checks the handshake limits, Origin and token; fills `decision`. False when rejected
  // (decision.status/reason set).
  bool check_access(protocol::ConnectionId id, const protocol::HttpRequest& request, ChatAuthDecision& decision,
                    std::string_view& subprotocol);
  // The name policy (ChatHooks::allow_name) for `name` wanted by `id`; false with `reason` set.
  bool name_allowed(protocol::ConnectionId id, std::string_view name, std::string& reason);
  // Refuses the upgrade of `id` with `status` and `reason`: an HTTP error, or, when the client
  // offered the "parley.chat" subprotocol, in-band (accept, then close 4000 + status in on_open)
  // because a browser's WebSocket exposes no HTTP status of a failed handshake.
  protocol::UpgradeVerdict refuse_upgrade(protocol::ConnectionId id, const protocol::HttpRequest& request, int status,
                                          std::string reason);
  // Takes one handshake token for the peer of `id`; false when its address is over the rate.
  bool take_handshake(protocol::ConnectionId id, uint64_t now, uint64_t& retry_after_ms);
  // Takes one message token for `id`; false (after replying or closing) when over the rate.
  bool take_message(protocol::ConnectionId id);
  // False when `session` was granted rooms at the handshake and `room` is not among them.
  bool room_allowed(uint32_t session, std::string_view room) const;
  uint64_t monotonic_now() const;
  // The per-address key of `id`'s peer (ChatConfig::peer_key); false when unknown.
  bool peer_key_of(protocol::ConnectionId id, uint64_t& key) const;

  // The session of `id`, or kNoIndex before hello.
  uint32_t session_of(protocol::ConnectionId id) const;
  // Creates the identified session of `id` named `name` and sends welcome; false if taken. With
  // `resumed_rooms` (a session taken over from another node) the welcome says resumed and lists
  // them.
  bool identify(protocol::ConnectionId id, std::string_view name,
                const std::vector<std::string>* resumed_rooms = nullptr);
  uint64_t now_ms() const;

  void handle(protocol::ConnectionId id, const ClientMessage& message);
  void handle_custom(protocol::ConnectionId id, std::string_view json, const ParseResult& result);
  void on_hello(protocol::ConnectionId id, const ClientMessage& message);
  void on_join(protocol::ConnectionId id, uint32_t session, const ClientMessage& message);
  void on_leave(protocol::ConnectionId id, uint32_t session, const ClientMessage& message);
  void on_msg(protocol::ConnectionId id, uint32_t session, const ClientMessage& message);
  void on_dm(protocol::ConnectionId id, uint32_t session, const ClientMessage& message);
  void on_typing(protocol::ConnectionId id, uint32_t session, const ClientMessage& message);
  void on_who(protocol::ConnectionId id, uint32_t session, const ClientMessage& message);
  void on_history(protocol::ConnectionId id, uint32_t session, const ClientMessage& message);

  // The room id of `room` if `session` is a member, else kNoIndex.
  uint32_t joined_room(uint32_t session, std::string_view room) const;
  void send_error(protocol::ConnectionId id, ChatError error, std::string_view reason, std::string_view message_id);
  // Room-log plumbing (chat_log.cpp).
  // Checks and performs the join of `room` (room_allowed aside); sends the error and returns
  // false when refused.
  bool admit(protocol::ConnectionId id, uint32_t session, std::string_view room, std::string_view message_id,
             RoomTable::JoinResult& result);
  // After a join: tells the other members (only when newly joined).
  void announce_join(protocol::ConnectionId id, uint32_t session, const RoomTable::JoinResult& result);
  // True when the join `message` must read the room log (the ring cannot answer it).
  bool join_needs_read(uint32_t room_id, const ClientMessage& message) const;
  // Answers a join (with or without since_seq) from the ring.
  void reply_join_from_ring(protocol::ConnectionId id, uint32_t room_id, const ClientMessage& message);
  // Sends the ring's newest `limit` messages (0: the capacity) with seq < before_seq.
  void send_history(protocol::ConnectionId id, const Room& room, uint64_t before_seq, uint32_t limit);
  // Sends a history reply holding `messages` (a room's, or with `dm` a conversation's with
  // `name`), with the recovery fields when `recovery`.
  void send_stored(protocol::ConnectionId id, std::string_view name, bool dm, const std::vector<StoredMessage>& messages,
                   bool recovery, bool recovered, uint64_t first_seq);
  // Submits a read for `pending`; on a full queue replies unavailable. `kind` picks the call.
  void submit_read(PendingRead pending, std::string_view conversation, uint64_t bound, size_t limit, bool since);
  // Submits a msg/dm; on a full queue replies unavailable and returns false.
  bool submit_append(AppendRequest request, protocol::ConnectionId id, std::string_view message_id);
  void finish_join(PendingRead& pending, ReadResult& result);
  void on_dm_history(protocol::ConnectionId id, uint32_t session, const ClientMessage& message);
  void send_ack(protocol::ConnectionId id, std::string_view message_id, uint64_t seq, uint64_t ts_ms);
  // Where a stored message's ack goes: `cookie` (the connection that sent it) while its session
  // lives, else the connection `sender` resumed on (session resume), 0 while held or gone.
  protocol::ConnectionId sender_connection(protocol::ConnectionId cookie, std::string_view sender) const;
  // A stored DM to `to`'s connection on this node, if it has one (not while held for resume).
  void deliver_dm(std::string_view from, std::string_view to, std::string_view text, uint64_t ts_ms, uint64_t seq);
  // A stored room message to the room's members on this node but `except` (and into its ring).
  void deliver_room_message(std::string_view conversation, std::string_view from, std::string_view text,
                            uint64_t ts_ms, uint64_t seq, protocol::ConnectionId except);
  // A room was freed: memory only, its log entry goes too.
  void room_freed(std::string_view room);
  // Sends `json` to every member of `room` but `except`: encoded once into one shared frame.
  void broadcast(const Room& room, protocol::ConnectionId except, std::string_view json);
  // Removes `session` from every room, telling the remaining members (one shared frame each).
  void leave_all(uint32_t session);
  // Session resume (chat_resume.cpp).
  // Writes the welcome for `session` into out_: with a fresh resume token when resume is on.
  void write_session_welcome(uint32_t session);
  // `session`'s current resume token (its last welcome's); "" when it has none.
  std::string resume_token(uint32_t session) const;
  // Holds `session` after its connection `id` closed: pauses its memberships, tells its rooms
  // "away", starts the window. False when resume is off (the caller ends the session).
  bool hold_session(uint32_t session);
  // Detaches `session` from its connection: memberships paused, fd slot cleared.
  void detach_session(uint32_t session);
  // Attaches held `session` to `id`: resumed welcome, "back" to its rooms. Its memberships stay
  // paused until the client joins each again (join with since_seq resumes delivery at the seam).
  void attach_session(uint32_t session, protocol::ConnectionId id);
  // hello with a resume token: attaches the held (or still attached) session it names, or
  // answers resume_failed.
  void resume_by_token(protocol::ConnectionId id, const ClientMessage& message);
  // error resume_failed (the token is unknown, forged, used or expired).
  void send_resume_failed(protocol::ConnectionId id, std::string_view message_id);
  // Ends `session`: leaves its rooms (left), forgets name, grant and pool slot.
  void end_session(uint32_t session);
  // With a durable log: empties the ring of `room_id` when its first members are all held (a
  // cache nobody reads until a rejoin, which reads the log), so held sessions pin no history.
  void drop_ring_if_unattended(uint32_t room_id);
  // If `session`'s membership of `room_id` is paused (held or resumed, not yet rejoined), sends
  // it live messages again from now on.
  void unpause_membership(uint32_t session, uint32_t room_id);
  // The held session named `name` (any case), or kNoIndex.
  uint32_t held_session_named(std::string_view name) const;

  // Presence batching (chat_presence.cpp). Tells `room` that `user` joined (or left): at once
  // (`joined`/`left` to every member but `except`) in a small room or without batching, else
  // into the room's batch. `size` is this node's members of the room counting `user` (a remote
  // user: this node's members), the other nodes' (Room::remote_members) added inside.
  void announce_presence(const Room& room, uint32_t room_id, std::string_view user, bool joined,
                         protocol::ConnectionId except, size_t size);
  // The same for a member whose session is held for resume (`away`) or resumed (`back`): a
  // `presence` event at once in a small room, else into the batch.
  void announce_status(const Room& room, uint32_t room_id, std::string_view user, bool away,
                       protocol::ConnectionId except);
  // Adds a change to `room`'s batch (started, and the tick armed, if there is none yet).
  void batch_presence(const Room& room, uint32_t room_id, std::string_view user, PresenceChange kind);
  // Sends `room`'s pending batch, if any, as one `members` event to every attached member.
  void flush_room_presence(const Room& room);
  // Tells the pending batches: all, or those due (a counts-only room's once its counts
  // interval old, counts_interval_ms); re-arms the timer for the rest.
  void flush_presence(bool all);
  static void on_presence_tick(void* context, reactor::TimerNode* node);

  // A hello waiting for its cluster-wide name claim (chat_presence.cpp), keyed by fd.
  struct PendingClaim {
    uint64_t cookie = 0;
    protocol::ConnectionId connection = 0;
    std::string name;
    std::string message_id;
    bool verified = false;  // claim_verified: the session exists already
  };
  // A `who` waiting for the other nodes' members, keyed by its cookie.
  struct PendingWho {
    protocol::ConnectionId connection = 0;
    std::string room;
    uint32_t limit = 0;  // the page asked for (0: none given)
    std::string after;   // the page cursor (empty: from the first name)
  };
  // A cookie for a claim or take-over of `id`'s hello; false (answered `rejected`) when one of
  // its hellos already waits.
  bool new_claim_cookie(protocol::ConnectionId id, std::string_view message_id, uint64_t& cookie);
  // The pending claim `cookie` answers, taken out into `out`; false when its connection went
  // (a name won for nobody is given back).
  bool answered_claim(uint64_t cookie, std::string_view name, ClaimResult result, PendingClaim& out);
  // hello for a name not held here, with presence: submits the claim (or answers unavailable).
  void claim_name(protocol::ConnectionId id, const ClientMessage& message);
  // A name verified at the handshake, already welcomed: claimed cluster-wide in the background.
  void claim_verified(protocol::ConnectionId id, std::string_view name);
  // hello with a resume token unknown here, with presence: asks the other nodes (take_over).
  void take_over_name(protocol::ConnectionId id, const ClientMessage& message);
  // A verified identity another node holds live: name_taken, and the connection closed 1008.
  void refuse_verified_name(protocol::ConnectionId id);
  // Writes and sends the `who` of `room_id` with `remote` (other nodes' members) appended: the
  // whole list for a plain `who` of a room of at most kWhoPage members, else the page of at most
  // `limit` (0: kWhoPage) names sorting after `after`, in byte order, with count and next.
  void send_who(protocol::ConnectionId id, uint32_t room_id, const std::vector<std::string>& remote,
                uint32_t limit, std::string_view after);

  ChatTransport& transport_;
  ChatConfig config_;
  Presence* presence_ = nullptr;
  FlatMap<uint32_t, PendingClaim> pending_claims_;
  FlatMap<uint64_t, PendingWho> pending_whos_;
  uint64_t next_presence_cookie_ = 1;
  ChatHooks* hooks_;
  std::unique_ptr<RoomLog> own_log_;  // the memory-only log when none was given
  RoomLog* log_;
  bool memory_only_;  // own_log_: the ring is the history; nothing is read from the log
  FlatMap<uint64_t, PendingRead> pending_reads_;
  uint64_t next_read_ = 1;
  // The exact `to` of each DM submitted and not yet completed, in submission order (appends
  // complete in submission order, room_log.h): the log's key holds the names lowercased.
  std::deque<std::string> dm_targets_;
  ChatParser parser_;
  SessionPool sessions_;
  RoomTable rooms_;
  // Name -> session. Keys are views of the sessions' inline names (pool chunks never move), so
  // an entry costs 24 bytes and no string allocation; erased before its session is released.
  FlatMap<std::string_view, uint32_t, FoldedNameHash, FoldedNameEqual> users_;
  // Held sessions in hold order (so in expiry order: one window for all), with the deadline
  // they were held with; an entry whose session resumed or ended (held_until_ differs) is skipped.
  struct HeldSession {
    uint32_t session = kNoIndex;
    uint64_t until = 0;
  };
  std::deque<HeldSession> held_;
  // Session index -> the monotonic ms its hold ends: present exactly while it is held.
  FlatMap<uint32_t, uint64_t> held_until_;
  // Session index + 1 per fd (0: none): a 4-byte slot per fd, so a connection that never says
  // hello costs the chat layer nothing else.
  std::vector<uint32_t> session_by_fd_;
  // Names granted by ChatHooks::authorize, waiting for on_open, keyed by fd.
  FlatMap<uint32_t, PendingUser> pending_users_;
  std::string out_;        // scratch for writing one JSON message
  std::string error_out_;  // scratch for error replies (their reason may point into out_)
  std::string verdict_reason_;  // UpgradeVerdict::reason points here
  // Reads the "type" of messages the codec does not know (custom types); made on first use.
  std::unique_ptr<simdjson::dom::parser> custom_parser_;
  ChatStats stats_;
  const reactor::EventLoop* loop_clock_ = nullptr;
  // Presence batching: the timer (on the loop given to set_loop_clock; null: no batching), its
  // node (armed while a batch waits), the rooms with a batch (ids; stale ones are skipped), and
  // scratch for the event (apart from out_: a batch is told from inside another fan-out).
  std::unique_ptr<reactor::TimerWheel> presence_wheel_;
  reactor::TimerNode presence_tick_;
  std::vector<uint32_t> presence_rooms_;
  std::string presence_out_;
  std::vector<std::string_view> presence_names_[4];  // by PresenceChange
  // 1 ms resolution (the loop clock's): an observation of 0 or 1 ms lands in le=0.001.
  Histogram publish_to_delivery_{1000, 2000, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000,
                                 5000000, 10000000};
  // The loop clock's ms now, 0 without one (read once per message: a load, no syscall).
  uint64_t loop_ms() const;
  ChatAccessStats access_stats_;

  // What a handshake granted an identified session; present for every session named at the
  // handshake (token or hook), keyed by session index, erased before the session is released.
  struct Grant {
    bool restrict_rooms = false;
    std::vector<std::string> rooms;
  };
  FlatMap<uint32_t, Grant> grants_;
  // Per-connection message rate state, indexed by fd; reset in on_open. Empty when message
  // rate limiting is off. 12 bytes per fd.
  struct RateState {
    TokenBucket bucket;
    uint32_t violations = 0;  // consecutive over-limit messages
  };
  std::vector<RateState> rate_by_fd_;
  std::optional<TokenBucketRate> message_rate_;
  std::optional<TokenBucketRate> handshake_rate_;
  // Handshake buckets by peer key; bounded by kMaxHandshakePeers (see take_handshake).
  FlatMap<uint64_t, TokenBucket> handshake_buckets_;
};

}  // namespace chat
