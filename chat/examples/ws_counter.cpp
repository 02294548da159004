// ws_counter: embedding the lower layer, protocol::WsServer, for a protocol that is not chat.
// A shared counter: every client sees its value, and any client may change it.
//
//   build/examples/ws_counter --listen 127.0.0.1:9001
//   websocat -H 'Sec-WebSocket-Protocol: counter.v1' ws://127.0.0.1:9001/counter
//
// The protocol (subprotocol "counter.v1", one text message per command):
//   client -> "+N" or "-N" (N 1..1000000)   server -> every client: "value V"
//   client -> "get"                          server -> this client: "value V"
//   anything else                            server closes with 4400 "bad command"
//   a binary message                         server closes with 1003 (RFC 6455 7.4.1)
// On connect the client gets "value V". Without the subprotocol the upgrade gets HTTP 400.
// SIGINT/SIGTERM: close every connection (1001) and exit once they are gone (at most 2 s).
//
// What it shows of WsServer: a WsApplication (on_upgrade, on_open, on_message, on_close), the
// reactor's loop and signals, send_text and close, the same limits parleyd uses
// (WsServerConfig), and /healthz beside the WebSocket path.
#include <signal.h>

#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <unordered_set>

#include "protocol/handshake.h"
#include "protocol/http_request.h"
#include "protocol/ws_server.h"
#include "reactor/event_loop.h"
#include "reactor/socket_ops.h"

namespace {

constexpr std::string_view kSubprotocol = "counter.v1";
constexpr int64_t kMaxStep = 1000000;

class CounterApp final : public protocol::WsApplication {
 public:
  explicit CounterApp(protocol::WsServer& server) : server_(server) {}

  protocol::UpgradeVerdict on_upgrade(protocol::ConnectionId, const protocol::HttpRequest& request) override {
    protocol::UpgradeVerdict verdict;
    // RFC 6455 4.2.2: the server selects one protocol the client offered.
    if (!protocol::header_has_token(request.header("Sec-WebSocket-Protocol"), kSubprotocol)) {
      verdict.status = 400;
      verdict.reason = "offer the subprotocol counter.v1";
      return verdict;
    }
    verdict.subprotocol = kSubprotocol;
    return verdict;
  }

  void on_open(protocol::ConnectionId id) override {
    clients_.insert(id);
    server_.send_text(id, value_line());
  }

  void on_message(protocol::ConnectionId id, protocol::Opcode opcode, std::span<uint8_t> payload) override {
    if (opcode != protocol::Opcode::kText) {
      server_.close(id, 1003, "text commands only");  // RFC 6455 7.4.1: unsupported data
      return;
    }
    std::string_view command(reinterpret_cast<const char*>(payload.data()), payload.size());
    if (command == "get") {
      server_.send_text(id, value_line());
      return;
    }
    int64_t step = 0;
    if (command.size() >= 2 && (command[0] == '+' || command[0] == '-')) {
      auto [end, ec] = std::from_chars(command.data() + 1, command.data() + command.size(), step);
      if (ec != std::errc() || end != command.data() + command.size() || step < 1 || step > kMaxStep) step = 0;
    }
    if (step == 0) {
      server_.close(id, 4400, "bad command");
      return;
    }
    value_ += command[0] == '+' ? step : -step;
    std::string line = value_line();
    for (protocol::ConnectionId client : clients_) server_.send_text(client, line);
  }

  void on_close(protocol::ConnectionId id, uint16_t) override { clients_.erase(id); }

 private:
  std::string value_line() const { return "value " + std::to_string(value_); }

  protocol::WsServer& server_;
  std::unordered_set<protocol::ConnectionId> clients_;
  int64_t value_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  std::string listen = "127.0.0.1:9001";
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
      listen = argv[++i];
    } else {
      std::fprintf(stderr, "usage: ws_counter [--listen HOST:PORT]\n");
      return 2;
    }
  }
  reactor::SocketAddress address;
  if (reactor::parse_address(listen, address) != 0) {
    std::fprintf(stderr, "ws_counter: invalid --listen '%s' (HOST:PORT)\n", listen.c_str());
    return 2;
  }
  reactor::EventLoop loop;
  if (int rc = loop.open(); rc != 0) {
    std::fprintf(stderr, "ws_counter: cannot create the event loop: %s\n", std::strerror(-rc));
    return 1;
  }
  protocol::WsServerConfig config;
  config.max_message_size = 64;  // the longest command is 8 bytes
  config.ping_interval_ms = 30000;
  protocol::WsServer server(loop, config);
  CounterApp app(server);
  server.add_websocket_route("/counter", &app);
  server.add_http_route("/healthz", [](const protocol::HttpRequest&, protocol::HttpReply& reply) {
    reply.body = "ok\n";
  });
  if (int rc = server.listen(address); rc != 0) {
    std::fprintf(stderr, "ws_counter: cannot listen on %s: %s\n", listen.c_str(), std::strerror(-rc));
    return 1;
  }
  int rc = loop.watch_signals({SIGINT, SIGTERM}, [&](int) { server.drain(2000, [&] { loop.stop(); }); });
  if (rc != 0) {
    std::fprintf(stderr, "ws_counter: cannot watch signals: %s\n", std::strerror(-rc));
    return 1;
  }
  std::printf("listening on %s\n", server.address().to_string().c_str());
  std::fflush(stdout);
  if (int run_rc = loop.run(); run_rc != 0) {
    std::fprintf(stderr, "ws_counter: event loop failed: %s\n", std::strerror(-run_rc));
    return 1;
  }
  return 0;
}
