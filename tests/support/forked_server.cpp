#include "tests/support/forked_server.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string_view>
#include <thread>
#include <vector>

#include "protocol/echo_app.h"
#include "reactor/event_loop.h"
#include "reactor/socket_ops.h"

namespace parley_test {

namespace {

// /fanout: every message is encoded once and sent to every other connection on the path, the
// way a chat room broadcasts (send_encoded, so the write-queue cap policy applies).
class FanoutApp final : public protocol::WsApplication {
 public:
  explicit FanoutApp(protocol::WsServer& server) : server_(server) {}
  void on_open(protocol::ConnectionId id) override { members_.push_back(id); }
  void on_close(protocol::ConnectionId id, uint16_t) override { std::erase(members_, id); }
  void on_message(protocol::ConnectionId from, protocol::Opcode opcode, std::span<uint8_t> payload) override {
    uint8_t header[protocol::kMaxFrameHeaderLength];
    size_t header_length = protocol::encode_frame_header(header, opcode, payload.size());
    reactor::SharedBuffer* frame = reactor::SharedBuffer::create(header_length + payload.size());
    frame->append(header, header_length);
    frame->append(payload.data(), payload.size());
    for (protocol::ConnectionId id : members_) {
      if (id != from) server_.send_encoded(id, frame);
    }
    frame->release();
  }

 private:
  protocol::WsServer& server_;
  std::vector<protocol::ConnectionId> members_;
};

bool io_uring_requested() {
  const char* value = std::getenv("PARLEY_TEST_IO_URING");
  return value != nullptr && std::string_view(value) == "1";
}

[[noreturn]] void run_child(const protocol::WsServerConfig& config, uint32_t drain_timeout_ms, int port_pipe) {
  reactor::EventLoop loop;
  if (loop.open() != 0) _exit(3);
  // PARLEY_TEST_IO_URING=1 runs every forked server with its output batched through io_uring
  // (tests/uring_send_test.cpp re-runs suites so); a server that fell back would not test it.
  protocol::WsServerConfig effective = config;
  if (io_uring_requested()) effective.io_uring = true;
  protocol::WsServer server(loop, effective);
  if (effective.io_uring && !server.io_uring_active()) _exit(7);
  protocol::EchoApp echo(server);
  server.add_websocket_route("/echo", &echo);
  FanoutApp fanout(server);
  server.add_websocket_route("/fanout", &fanout);
  reactor::SocketAddress address;
  reactor::parse_address("127.0.0.1:0", address);
  if (server.listen(address) != 0) _exit(4);
  loop.watch_signals({SIGTERM}, [&](int) { server.drain(drain_timeout_ms, [&] { loop.stop(); }); });
  uint16_t port = server.address().port();
  if (write(port_pipe, &port, sizeof port) != sizeof port) _exit(5);
  close(port_pipe);
  int rc = loop.run();
  _exit(rc == 0 ? 0 : 6);
}

}  // namespace

ForkedServer::ForkedServer(const protocol::WsServerConfig& config, uint32_t drain_timeout_ms) {
  int fds[2];
  if (pipe(fds) != 0) return;
  pid_ = fork();
  if (pid_ == 0) {
    close(fds[0]);
    run_child(config, drain_timeout_ms, fds[1]);
  }
  close(fds[1]);
  if (pid_ < 0) {
    close(fds[0]);
    return;
  }
  pollfd p{fds[0], POLLIN, 0};
  uint16_t port = 0;
  if (poll(&p, 1, 5000) == 1 && read(fds[0], &port, sizeof port) == sizeof port) port_ = port;
  close(fds[0]);
}

ForkedServer::~ForkedServer() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

int ForkedServer::terminate(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return status;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return -1;
}

}  // namespace parley_test
