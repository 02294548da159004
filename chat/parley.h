#pragma once
// The embedding API: run parley's chat core inside your own C++ program.
//
//   parley::Config config;
//   config.listen = "127.0.0.1:9000";
//   parley::Hooks hooks;
//   hooks.authorize = [](const parley::Handshake& h) {
//     parley::Authorization a;
//     a.user = std::string(h.query_param("user"));  // identified at once, no hello needed
//     return a;
//   };
//   hooks.on_message = [](const parley::Message& m) { return m.text.find("spam") == m.text.npos; };
//   parley::Server server(config, hooks);
//   if (server.start() != 0) return 1;
//   std::thread loop([&] { server.run(); });
//   server.publish("lobby", "hello from the host");   // from any thread
//   server.stop();                                     // from any thread, a hook or a signal handler
//   loop.join();
//
// The chat protocol is the one parleyd speaks on /chat (docs/protocol.md). Hooks run on the loop
// thread, one at a time; they must not block. The reactor, WebSocket server and chat state are
// hidden behind the Server (pimpl), so this header pulls in none of them.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace protocol {
struct HttpRequest;
}

namespace parley {

// Every limit and abuse control parleyd has, with parleyd's defaults (its --help names each
// option; tests/embed_config_test.cpp holds the two equal field by field). Deliberate
// differences: `store` is "none" (a library does not create parley.db in the working directory
// unless asked), and there is no /echo, page or worker count. start() checks every value with
// parleyd's own option table and fails with -EINVAL and error() naming the option.
struct Config {
  // Serving.
  std::string listen = "127.0.0.1:8080";  // HOST:PORT; port 0 picks a free port (see port())
  std::string path = "/chat";             // the WebSocket path of the chat protocol
  bool reuse_port = false;                // SO_REUSEPORT, to share the port among processes
  bool serve_healthz = true;              // GET /healthz -> 200 ok
  bool serve_metrics = true;              // GET /metrics -> Prometheus text (also Server::metrics())
  // WebSocket limits (--max-message-size ... --max-handshakes).
  uint64_t max_message_size = 16u << 20;  // any message; the chat path allows at most 16 x max_text_bytes (>= 64K)
  uint32_t handshake_timeout_ms = 10000;  // the HTTP upgrade request must arrive within this
  uint32_t close_timeout_ms = 5000;       // the close handshake must finish within this
  uint32_t drain_timeout_ms = 5000;       // stop(): close every connection (1001), wait at most this
  uint32_t ping_interval_ms = 30000;      // heartbeat ping period; 0: no heartbeat
  uint32_t pong_timeout_ms = 10000;       // a connection silent this long after a ping is closed
  uint32_t idle_timeout_ms = 0;           // close connections with no message this long; 0: never
  uint32_t max_pings_per_second = 0;      // heartbeat budget; 0: 10000 per CPU
  uint64_t max_buffered = 1u << 20;       // write-queue cap per connection
  uint64_t max_memory = UINT64_MAX;       // all write queues; UINT64_MAX: a share of RAM; 0: off
  bool slow_consumer_drop = false;        // past max_buffered: drop messages instead of closing 1008
  bool deflate = true;                    // accept permessage-deflate offers (RFC 7692)
  uint64_t deflate_threshold = 64;        // smaller outgoing messages go uncompressed
  uint32_t max_connections = 0;           // 0: the fd limit
  uint32_t max_connections_per_ip = 1000; // per address (IPv6 /64); beyond: HTTP 503; 0: unlimited
  uint32_t max_handshakes_per_ip = 32;    // incomplete handshakes per address; 0: unlimited
  uint32_t max_handshakes = 0;            // incomplete handshakes in all; 0: a quarter of the fd limit
  // Chat limits.
  uint32_t history_size = 50;             // messages kept per room, sent on join (0: none)
  uint64_t max_text_bytes = 4096;         // longer text -> error text_too_long
  uint32_t max_rooms_per_connection = 32; // more joins -> error too_many_rooms
  uint32_t rate_limit = 20;               // messages per second per connection; 0: off
  uint32_t rate_burst = 40;               // messages a connection may send at once
  uint32_t handshake_rate = 0;            // upgrades per second per address (burst the same); 0: off
  uint32_t max_room_members = 10000;      // 0: unlimited; more joins -> error rejected (room_full)
  uint64_t history_memory = 64u << 20;    // bytes of history all rooms together; 0: no cap
  uint32_t max_rooms = 100000;            // live rooms in total; 0: unlimited
  uint32_t max_rooms_per_ip = 1000;       // live rooms created from one address; 0: unlimited
  // Access control. A token secret (at least 32 bytes; the bytes, or a file holding them as
  // parleyd's --auth-secret) makes every upgrade need an HS256 token (docs/protocol.md), checked
  // before Hooks::authorize, which then sees the token's user in Authorization::user's place.
  std::string token_secret;
  std::string token_secret_file;
  std::string allow_origin;               // --allow-origin list; empty: any Origin
  bool deny_missing_origin = false;       // refuse upgrades without an Origin header (403)
  // TLS (wss://, https): both set or both empty.
  std::string tls_cert_file;              // PEM certificate chain
  std::string tls_key_file;               // PEM private key
  // Durable history (issue 14, docs/protocol.md). "none": memory only (history lives in each
  // room's ring and goes with the room). A path: a SQLite file (created when missing) that keeps
  // every room message and DM; acks wait for the commit; history survives restarts.
  std::string store = "none";
  bool sync_full = false;                 // fsync each commit: survives power loss, not only a crash
  uint32_t history_keep = 10000;          // messages kept per room / DM conversation in the store
  uint32_t recovery_limit = 1000;         // most missed messages a join with since_seq gets
  uint32_t dedup_window_minutes = 10;     // a msg/dm id is recognised at least this long
  uint64_t history_max_age_seconds = 0;   // the store also deletes messages older than this; 0: off
  // Session resume (docs/protocol.md): a session whose connection was lost is held this long
  // for a hello with its resume token (name kept, rooms paused, others see it away); 0: off.
  uint32_t resume_window_seconds = 120;
};

// A read-only view of an upgrade request, valid only during Hooks::authorize.
class Handshake {
 public:
  explicit Handshake(const protocol::HttpRequest& request) : request_(request) {}
  // The request path without the query ("/chat").
  std::string_view path() const;
  // The raw query string after '?', empty when none.
  std::string_view query() const;
  // The value of the first query parameter `name` (not percent-decoded), empty when absent.
  std::string_view query_param(std::string_view name) const;
  // The first header named `name` (case-insensitive), empty when absent.
  std::string_view header(std::string_view name) const;

 private:
  const protocol::HttpRequest& request_;
};

// Hooks::authorize's answer.
struct Authorization {
  bool accept = true;
  int status = 403;    // HTTP status of a rejection
  std::string reason;  // body of a rejection
  // When set (and accepted), the connection is identified as this user at once: the client gets
  // `welcome` without sending hello. It goes through Hooks::allow_name like any name; an invalid
  // name answers 400, a refused one 403, a taken one 409 (in-band for the page, see
  // docs/protocol.md "Refusals a browser can read").
  std::string user;
};

// A room message or direct message about to be delivered.
struct Message {
  uint64_t client = 0;    // the sender's connection
  std::string_view user;  // the sender's name
  std::string_view room;  // the room, for a room message
  std::string_view to;    // the recipient, for a direct message
  std::string_view text;
  bool direct() const { return room.empty(); }
};

// A client message whose "type" the chat protocol does not define.
struct CustomMessage {
  uint64_t client = 0;
  std::string_view user;
  std::string_view type;
  std::string_view json;  // the whole message as received
};

// An identified connection: on_connect, on_disconnect.
struct Client {
  uint64_t client = 0;
  std::string_view user;
  uint16_t code = 0;  // on_disconnect: the close code (RFC 6455 7.4; 1006 when none was received)
};

// A member entering or leaving a room: on_join, on_leave.
struct RoomEvent {
  uint64_t client = 0;
  std::string_view user;
  std::string_view room;
};

// Every hook is optional and runs on the loop thread, one at a time; it must not block. A hook
// that throws counts as a refusal (authorize: 500, allow_name and on_message: refused,
// on_custom: unhandled); the notification hooks' exceptions are dropped.
struct Hooks {
  // Decides on each upgrade request to Config::path. Unset: accept, identify by hello.
  std::function<Authorization(const Handshake&)> authorize;
  // The name policy: asked before any connection takes a name, whether from hello, a token or
  // Authorization::user. Return an empty string to allow, else the reason (hello gets error
  // invalid_name with it; an upgrade gets 403 with it).
  std::function<std::string(std::string_view name)> allow_name;
  // Sees every msg and dm before delivery; false vetoes it (the sender gets error "rejected").
  std::function<bool(const Message&)> on_message;
  // Handles custom message types; true when handled, false to answer error unknown_type.
  // Reply with Server::send(message.client, json).
  std::function<bool(const CustomMessage&)> on_custom;
  // A connection was identified (welcome sent) / an identified connection closed.
  std::function<void(const Client&)> on_connect;
  std::function<void(const Client&)> on_disconnect;
  // A user joined a room (not on a repeated join) / left it (leave, or the connection closed).
  std::function<void(const RoomEvent&)> on_join;
  std::function<void(const RoomEvent&)> on_leave;
};

// Server::stats().
struct Stats {
  uint64_t connections = 0;      // open WebSocket connections (chat and not yet identified)
  uint64_t users = 0;            // identified connections
  uint64_t rooms = 0;            // live rooms
  uint64_t messages = 0;         // room messages accepted since start
  uint64_t direct_messages = 0;
  uint64_t vetoed = 0;           // messages refused by Hooks::on_message
  uint64_t rate_limited = 0;     // messages dropped by Config::rate_limit
  uint64_t unauthorized = 0;     // upgrades refused for a missing or invalid token
  uint64_t busy_rejected = 0;    // upgrades refused 503 by max_connections / max_connections_per_ip
};

class Server {
 public:
  explicit Server(Config config = {}, Hooks hooks = {});
  // Call stop() and wait for run() to return before destroying a running server.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Checks the Config, creates the event loop, reads the token secret and TLS files, opens
  // Config::store and binds the listening socket; 0 or -errno: -EINVAL for a value out of
  // parleyd's range or a bad listen address, origin list, secret or TLS file, -EIO when the
  // store cannot be opened; error() says which in one line. Idempotent; run() calls it when
  // needed. A failure is final: later calls return the same error (make a new Server to retry).
  int start();
  // Why start() failed, in one line ("invalid Config value for parleyd's --rate-burst: ...",
  // "store FILE: ..."); else empty.
  const std::string& error() const;
  // The bound port (the real one when port 0 was asked for); 0 before a successful start().
  uint16_t port() const;
  // The bound address as "HOST:PORT"; empty before a successful start().
  std::string address() const;

  // Serves on the calling thread until stop(); 0, or -errno when start() or the loop failed.
  int run();
  // Asks run() to close every connection (1001 going away), refuse new upgrades (503), and
  // return once every connection is gone or Config::drain_timeout_ms has passed. Safe from any
  // thread, from a hook, and from a POSIX signal handler (an atomic store and an eventfd write).
  // A stop before run() makes the next run() return at once.
  void stop();

  // Host-side calls. Safe from any thread: from a hook (the loop thread) they act at once;
  // from another thread they are posted to the loop and wait for its answer (one trip
  // through the loop's eventfd; never call them from a signal handler). While the server is
  // not running (before run(), after run() returned) queries answer empty and actions false;
  // a call that races with stop() is answered either way, never lost or hung.

  // Posts `text` to room `room` as user `from`, to every member, with the room's next seq and
  // into its history. Unlike the calls below it does not wait: from another thread it is
  // queued (also before run(), delivered when run() starts) and returns true. False for an
  // invalid room or `from` name, text over max_text_bytes or not UTF-8, or (from a hook) a
  // room with no members.
  bool publish(std::string_view room, std::string_view text, std::string_view from = "server");
  // Sends one text message (normally a JSON object) to connection `client` / to the connection
  // of `user`. False when there is none, it is closing, or its queue is full.
  bool send(uint64_t client, std::string_view text);
  bool send_to_user(std::string_view user, std::string_view text);
  // Closes connection `client` / the connection of `user` with `code` and `reason` (RFC 6455
  // 7.1.2 close handshake; hooks on_leave and on_disconnect follow). `code` must be 1000 or
  // 3000-4999 (7.4.2: the rest is the protocol's) and `reason` valid UTF-8 of at most 123
  // bytes (5.5: 125-byte control payload); else false. False when there is no such connection.
  bool kick(uint64_t client, uint16_t code = 4000, std::string_view reason = "kicked");
  bool kick_user(std::string_view user, uint16_t code = 4000, std::string_view reason = "kicked");
  // The identified users online, sorted.
  std::vector<std::string> users();
  // The live rooms (those with members), sorted.
  std::vector<std::string> rooms();
  // The members of `room`, sorted; empty when it does not exist.
  std::vector<std::string> members(std::string_view room);
  // The rooms `user` is in, sorted; empty when unknown.
  std::vector<std::string> rooms_of(std::string_view user);
  // The connection of `user`, or 0.
  uint64_t client_of(std::string_view user);
  // Counters and gauges now.
  Stats stats();
  // What GET /metrics serves (Prometheus text format); empty when not running.
  std::string metrics();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace parley
