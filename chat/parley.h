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

namespace protocol {
struct HttpRequest;
}

namespace parley {

struct Config {
  std::string listen = "127.0.0.1:8080";  // HOST:PORT; port 0 picks a free port (see port())
  std::string path = "/chat";             // the WebSocket path of the chat protocol
  bool reuse_port = false;                // SO_REUSEPORT, to share the port among processes
  bool serve_healthz = true;              // GET /healthz -> 200 ok
  size_t history_size = 50;               // messages kept per room, sent on join (0: none)
  size_t max_text_bytes = 4096;           // longer text -> error text_too_long
  size_t max_rooms_per_connection = 32;   // more joins -> error too_many_rooms
  uint64_t max_message_size = 1u << 20;   // larger WebSocket messages close the connection (1009)
  uint32_t handshake_timeout_ms = 10000;  // the HTTP upgrade request must arrive within this
  uint32_t close_timeout_ms = 5000;       // the close handshake must finish within this
  // Durable history (issue 14, docs/protocol.md). "none": memory only (history lives in each
  // room's ring and goes with the room). A path: a SQLite file (created when missing) that keeps
  // every room message and DM; acks wait for the commit; history survives restarts.
  std::string store = "none";
  bool sync_full = false;                 // fsync each commit: survives power loss, not only a crash
  size_t history_keep = 10000;            // messages kept per room / DM conversation in the store
  size_t recovery_limit = 1000;           // most missed messages a join with since_seq gets
  uint32_t dedup_window_minutes = 10;     // a msg/dm id is recognised at least this long
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
  // `welcome` without sending hello. It must be a valid, free user name, else the upgrade fails
  // (500 invalid, 409 taken).
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

// Every hook is optional and runs on the loop thread. A hook that throws counts as a refusal
// (authorize: 500, on_message: veto, on_custom: unhandled).
struct Hooks {
  // Decides on each upgrade request to Config::path. Unset: accept, identify by hello.
  std::function<Authorization(const Handshake&)> authorize;
  // Sees every msg and dm before delivery; false vetoes it (the sender gets error "rejected").
  std::function<bool(const Message&)> on_message;
  // Handles custom message types; true when handled, false to answer error unknown_type.
  // Reply with Server::send(message.client, json).
  std::function<bool(const CustomMessage&)> on_custom;
};

class Server {
 public:
  explicit Server(Config config = {}, Hooks hooks = {});
  // Call stop() and wait for run() to return before destroying a running server.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Creates the event loop, opens Config::store and binds the listening socket; 0 or -errno
  // (-EINVAL for a bad Config::listen, -EIO when the store cannot be opened: see error()). Idempotent; run() calls it when needed. A failure is final: later calls
  // return the same error (make a new Server to retry).
  int start();
  // Why start() failed, in one line ("store FILE: ..."), when it says; else empty.
  const std::string& error() const;
  // The bound port (the real one when port 0 was asked for); 0 before a successful start().
  uint16_t port() const;
  // The bound address as "HOST:PORT"; empty before a successful start().
  std::string address() const;

  // Serves on the calling thread until stop(); 0, or -errno when start() or the loop failed.
  int run();
  // Asks run() to close every connection (1001 going away), refuse new upgrades (503), and
  // return once every connection is gone or Config::close_timeout_ms has passed. Safe from any
  // thread, from a hook, and from a POSIX signal handler (an atomic store and an eventfd write).
  // A stop before run() makes the next run() return at once.
  void stop();

  // Posts `text` to room `room` as user `from`, to every member, with the room's next seq and
  // into its history. Safe from any thread: from a hook it is delivered before this returns;
  // otherwise it is queued and delivered by the loop. False for an invalid room or `from` name,
  // text over max_text_bytes or not UTF-8, or (when delivered at once) a room with no members.
  bool publish(std::string_view room, std::string_view text, std::string_view from = "server");

  // Sends one text message (normally a JSON object) to connection `client`. Loop thread only
  // (from a hook); false when the connection is gone or closing.
  bool send(uint64_t client, std::string_view text);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace parley
