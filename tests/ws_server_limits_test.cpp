// Heartbeats, write-queue caps, connection limits and graceful drain of WsServer, each run
// with its own WsServerConfig in a forked server (tests/support/forked_server.h).
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/forked_server.h"
#include "tests/support/ws_test_client.h"

namespace {

using namespace std::chrono_literals;
using parley_test::ForkedServer;
using parley_test::Received;
using parley_test::WsTestClient;

// For tests about anything but heartbeats: no pings, which would otherwise land at random
// moments of the 30 s default interval, between frames a test expects in order.
protocol::WsServerConfig without_heartbeats() {
  protocol::WsServerConfig config;
  config.ping_interval_ms = 0;
  return config;
}

protocol::WsServerConfig fast_heartbeat() {
  protocol::WsServerConfig config;
  config.ping_interval_ms = 150;
  config.pong_timeout_ms = 150;
  config.close_timeout_ms = 300;
  return config;
}

// 16 MiB of 1 KiB messages: more than the kernel's socket buffers on both sides can hold.
constexpr int kFlood = 16 * 1024;

// Writes masked text frames of `size` bytes with plain send(), never reading, until `stop` is set
// or the server closes: the client stays a slow consumer from the server's point of view. It
// keeps writing while the test reads: the server stops reading a peer whose queue is full
// (kReadPaused) and only overflows it -- the 1008 -- on a read that brings many messages at once,
// so input must still be waiting when it resumes (a writer that gave up left too little, once).
// Returns true when the server cut the connection (a send failed), false when `stop` ended it.
bool write_without_reading(int fd, size_t size, const std::atomic<bool>& stop) {
  std::string frame = parley_test::encode_frame(parley_test::kOpText, std::string(size, 'x'));
  while (!stop) {
    size_t sent = 0;
    while (sent < frame.size()) {
      ssize_t n = ::send(fd, frame.data() + sent, frame.size() - sent, MSG_NOSIGNAL);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        // The test client's socket is non-blocking: wait, never leave half a frame behind.
        pollfd p{fd, POLLOUT, 0};
        if (poll(&p, 1, 50) != 1 && stop) return false;
        continue;
      }
      if (n <= 0) return true;
      sent += static_cast<size_t>(n);
    }
  }
  return false;
}

// Connects `client` with a receive buffer small enough that the server's queue, not the
// client's socket, absorbs what it is sent (large enough that loopback TCP still moves data
// quickly once it reads), and upgrades to `path`.
::testing::AssertionResult connect_small_receiver(WsTestClient& client, uint16_t port, std::string_view path = "/echo") {
  if (!client.connect_tcp("127.0.0.1", port)) return ::testing::AssertionFailure() << "connect failed";
  int size = 64 * 1024;
  setsockopt(client.fd(), SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  if (!client.upgrade(path)) return ::testing::AssertionFailure() << client.error();
  return ::testing::AssertionSuccess();
}

TEST(WsServerHeartbeat, PingsArriveAndAnsweringKeepsTheConnection) {
  ForkedServer server(fast_heartbeat());
  ASSERT_TRUE(server.ok());
  WsTestClient client;
  ASSERT_TRUE(client.connect("127.0.0.1", server.port())) << client.error();
  int pings = 0;
  auto until = std::chrono::steady_clock::now() + 1200ms;
  while (std::chrono::steady_clock::now() < until) {
    Received frame = client.recv_frame(400ms);
    if (frame.status == parley_test::RecvStatus::kTimeout) continue;
    ASSERT_TRUE(frame.ok()) << frame.error;
    ASSERT_EQ(frame.opcode, parley_test::kOpPing);
    ++pings;
    ASSERT_TRUE(client.send_frame(parley_test::kOpPong, frame.payload));
  }
  EXPECT_GE(pings, 3);
  ASSERT_TRUE(client.send_frame(parley_test::kOpText, "alive"));
  Received echo;
  do echo = client.recv_frame(1000ms);
  while (echo.ok() && echo.opcode == parley_test::kOpPing);
  ASSERT_TRUE(echo.ok()) << echo.error;
  EXPECT_EQ(echo.payload, "alive");
}

TEST(WsServerHeartbeat, SilentPeerIsDroppedAfterThePongTimeout) {
  ForkedServer server(fast_heartbeat());
  ASSERT_TRUE(server.ok());
  WsTestClient client;
  ASSERT_TRUE(client.connect("127.0.0.1", server.port())) << client.error();
  // Never answer: first ping within 150 ms, dead 150 ms later.
  EXPECT_TRUE(client.wait_tcp_closed(2000ms));
}

// The policy for a peer that floods us and never reads: once its queue is full the server stops
// reading it (kReadPaused; its input waits in the kernel and costs us nothing), so its pongs go
// unread as well, and the heartbeat drops it at the pong deadline rather than keeping it
// forever. Under the drop policy a full queue drops the echoes instead of closing with 1008
// (SlowReaderIsClosedWith1008WhileOthersKeepReceiving), so here it is the heartbeat that cuts:
// with heartbeats off the flooder would stay, paused, until it read or went away.
TEST(WsServerHeartbeat, APeerThatFloodsAndNeverReadsIsDroppedAtThePongDeadline) {
  protocol::WsServerConfig config = fast_heartbeat();
  config.max_buffered = 64 * 1024;
  config.slow_consumer = protocol::SlowConsumerPolicy::kDrop;
  ForkedServer server(config);
  ASSERT_TRUE(server.ok());
  WsTestClient flooder;
  ASSERT_TRUE(connect_small_receiver(flooder, server.port()));
  std::atomic<bool> stop{false};
  std::atomic<bool> cut{false};
  std::thread writer([&] { cut = write_without_reading(flooder.fd(), 1024, stop); });
  const auto until = std::chrono::steady_clock::now() + 5000ms;
  while (!cut && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(20ms);
  stop = true;
  writer.join();
  EXPECT_TRUE(cut) << "a peer that never reads was still connected after 5 s of 150 ms heartbeats";
}

TEST(WsServerHeartbeat, IdleConnectionIsClosedNormally) {
  protocol::WsServerConfig config = fast_heartbeat();
  config.ping_interval_ms = 100;
  config.idle_timeout_ms = 300;
  ForkedServer server(config);
  ASSERT_TRUE(server.ok());
  WsTestClient client;
  ASSERT_TRUE(client.connect("127.0.0.1", server.port())) << client.error();
  // Answer pings (so the peer is alive) but send no data: the idle timeout closes with 1000.
  auto until = std::chrono::steady_clock::now() + 3000ms;
  bool closed = false;
  while (!closed && std::chrono::steady_clock::now() < until) {
    Received frame = client.recv_frame(500ms);
    if (!frame.ok()) continue;
    if (frame.opcode == parley_test::kOpPing) {
      client.send_frame(parley_test::kOpPong, frame.payload);
    } else if (frame.opcode == parley_test::kOpClose) {
      ASSERT_GE(frame.payload.size(), 2u);
      EXPECT_EQ((static_cast<uint8_t>(frame.payload[0]) << 8) | static_cast<uint8_t>(frame.payload[1]), 1000);
      closed = true;
    }
  }
  EXPECT_TRUE(closed);
}

TEST(WsServerBackpressure, SlowReaderIsClosedWith1008WhileOthersKeepReceiving) {
  protocol::WsServerConfig config = without_heartbeats();
  config.max_buffered = 64 * 1024;
  ForkedServer server(config);
  ASSERT_TRUE(server.ok());
  WsTestClient slow;
  ASSERT_TRUE(connect_small_receiver(slow, server.port()));
  WsTestClient healthy;
  ASSERT_TRUE(healthy.connect("127.0.0.1", server.port())) << healthy.error();

  std::atomic<bool> stop{false};
  std::thread writer([&] { write_without_reading(slow.fd(), 1024, stop); });
  for (int i = 0; i < 50; ++i) {
    Received r;
    if (healthy.send_frame(parley_test::kOpText, "ok " + std::to_string(i))) r = healthy.recv_message(2000ms);
    EXPECT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.payload, "ok " + std::to_string(i));
    if (!r.ok()) break;
  }
  // Now read what the slow reader was sent, the writer still writing: some echoes, then the
  // close frame.
  parley_test::CloseResult close = slow.expect_close(5000ms);
  stop = true;
  writer.join();
  ASSERT_TRUE(close.close_received) << close.error;
  EXPECT_EQ(close.code, 1008);
  EXPECT_LT(close.frames_before.size(), static_cast<size_t>(kFlood));
}

TEST(WsServerBackpressure, DropPolicyDropsFanOutToASlowSubscriberAndKeepsIt) {
  protocol::WsServerConfig config = without_heartbeats();
  config.max_buffered = 64 * 1024;
  config.slow_consumer = protocol::SlowConsumerPolicy::kDrop;
  ForkedServer server(config);
  ASSERT_TRUE(server.ok());
  WsTestClient slow;
  ASSERT_TRUE(connect_small_receiver(slow, server.port(), "/fanout"));
  WsTestClient publisher;
  ASSERT_TRUE(publisher.connect("127.0.0.1", server.port(), "/fanout")) << publisher.error();
  // The publisher is read normally; only the subscriber falls behind.
  constexpr int kMessages = 8 * 1024;
  std::string body(1024, 'p');
  for (int i = 0; i < kMessages; ++i) ASSERT_TRUE(publisher.send_frame(parley_test::kOpText, body));
  std::this_thread::sleep_for(200ms);
  size_t received = 0;
  for (;;) {
    Received r = slow.recv_frame(500ms);
    if (!r.ok()) break;
    ASSERT_EQ(r.opcode, parley_test::kOpText);
    ++received;
  }
  EXPECT_GT(received, 0u);
  EXPECT_LT(received, static_cast<size_t>(kMessages)) << "nothing was dropped";
  // Still subscribed once caught up: the next message arrives.
  ASSERT_TRUE(publisher.send_frame(parley_test::kOpText, "after"));
  Received r = slow.recv_message(2000ms);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.payload, "after");
}

TEST(WsServerLimits, ConnectionsPerIpBeyondTheLimitGet503) {
  protocol::WsServerConfig config = without_heartbeats();
  config.max_connections_per_ip = 5;
  ForkedServer server(config);
  ASSERT_TRUE(server.ok());
  std::vector<std::unique_ptr<WsTestClient>> clients;
  for (int i = 0; i < 5; ++i) {
    clients.push_back(std::make_unique<WsTestClient>());
    ASSERT_TRUE(clients.back()->connect("127.0.0.1", server.port())) << clients.back()->error();
  }
  WsTestClient extra;
  ASSERT_FALSE(extra.connect("127.0.0.1", server.port()));
  EXPECT_EQ(extra.handshake_response().status, 503);
  // Freeing a slot lets the next one in (the refused connection held one until it closed).
  extra.disconnect();
  clients.front()->disconnect();
  clients.erase(clients.begin());
  std::this_thread::sleep_for(100ms);
  WsTestClient again;
  EXPECT_TRUE(again.connect("127.0.0.1", server.port())) << again.error();
}

TEST(WsServerLimits, TotalConnectionsBeyondTheLimitGet503) {
  protocol::WsServerConfig config = without_heartbeats();
  config.max_connections = 3;
  ForkedServer server(config);
  ASSERT_TRUE(server.ok());
  WsTestClient a, b, c, d;
  ASSERT_TRUE(a.connect("127.0.0.1", server.port())) << a.error();
  ASSERT_TRUE(b.connect("127.0.0.1", server.port())) << b.error();
  ASSERT_TRUE(c.connect("127.0.0.1", server.port())) << c.error();
  ASSERT_FALSE(d.connect("127.0.0.1", server.port()));
  EXPECT_EQ(d.handshake_response().status, 503);
  EXPECT_TRUE(d.handshake_response().header("Retry-After").has_value());
}

// Opens a TCP connection and sends the first bytes of a request head, which it never finishes.
std::unique_ptr<WsTestClient> slow_client(uint16_t port) {
  auto c = std::make_unique<WsTestClient>();
  EXPECT_TRUE(c->connect_tcp("127.0.0.1", port)) << c->error();
  EXPECT_TRUE(c->send_raw("GET /echo HTTP/1.1\r\nHost: x\r\n"));
  return c;
}

TEST(WsServerAdmission, DefaultsAreOn) {
  protocol::WsServerConfig config;
  EXPECT_EQ(config.max_connections_per_ip, 1000u);
  EXPECT_EQ(config.max_handshakes_per_ip, 32u);
}

TEST(WsServerAdmission, OldestHandshakeOfAnAddressGoesFirst) {
  protocol::WsServerConfig config = without_heartbeats();
  config.max_handshakes_per_ip = 3;
  ForkedServer server(config);
  ASSERT_TRUE(server.ok());
  std::vector<std::unique_ptr<WsTestClient>> slow;
  for (int i = 0; i < 3; ++i) {
    slow.push_back(slow_client(server.port()));
    std::this_thread::sleep_for(30ms);  // accepted in this order
  }
  // A fourth incomplete handshake from the address closes the oldest, and only it.
  slow.push_back(slow_client(server.port()));
  EXPECT_TRUE(slow[0]->wait_tcp_closed(2000ms));
  for (int i = 1; i < 4; ++i) EXPECT_FALSE(slow[i]->wait_tcp_closed(100ms)) << i;
  // A waiting client that finishes its head gets in.
  ASSERT_TRUE(slow[1]->send_raw("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"));
  EXPECT_EQ(slow[1]->read_http_response(2000ms).status, 101);
  // A real client from the same address sends its head at once and gets in (if the server
  // reads its head only after accepting it, it may close slow[2], the oldest, to make room).
  WsTestClient real;
  ASSERT_TRUE(real.connect("127.0.0.1", server.port())) << real.error();
  ASSERT_TRUE(real.send_frame(parley_test::kOpText, "hi"));
  EXPECT_EQ(real.recv_message(2000ms).payload, "hi");
}

TEST(WsServerAdmission, TotalHandshakeCapClosesTheOldest) {
  protocol::WsServerConfig config = without_heartbeats();
  config.max_handshakes_per_ip = 0;
  config.max_handshakes = 2;
  ForkedServer server(config);
  ASSERT_TRUE(server.ok());
  auto first = slow_client(server.port());
  std::this_thread::sleep_for(30ms);
  auto second = slow_client(server.port());
  std::this_thread::sleep_for(30ms);
  auto third = slow_client(server.port());
  EXPECT_TRUE(first->wait_tcp_closed(2000ms));
  EXPECT_FALSE(second->wait_tcp_closed(100ms));
  EXPECT_FALSE(third->wait_tcp_closed(100ms));
}

TEST(WsServerAdmission, ConnectionLimitEvictsAnIncompleteHandshakeBeforeRefusing) {
  protocol::WsServerConfig config = without_heartbeats();
  config.max_connections = 3;
  ForkedServer server(config);
  ASSERT_TRUE(server.ok());
  WsTestClient a, b;
  ASSERT_TRUE(a.connect("127.0.0.1", server.port())) << a.error();
  ASSERT_TRUE(b.connect("127.0.0.1", server.port())) << b.error();
  auto slow = slow_client(server.port());
  std::this_thread::sleep_for(50ms);
  // At the limit: the slow handshake makes room for the newcomer.
  WsTestClient c;
  ASSERT_TRUE(c.connect("127.0.0.1", server.port())) << c.error();
  EXPECT_TRUE(slow->wait_tcp_closed(2000ms));
  // With only upgraded connections left, the next one is refused as before.
  WsTestClient d;
  ASSERT_FALSE(d.connect("127.0.0.1", server.port()));
  EXPECT_EQ(d.handshake_response().status, 503);
}

// The per-fd admission word is reused as fds and address entries are: after churn (upgraded
// connections and incomplete handshakes coming and going on the same fds), the per-address
// caps still count exactly the connections open now.
// Connects, retrying for up to 2 s while the address is over its cap: the server hears of the
// previous round's closes a moment after the client made them.
bool connect_when_room(WsTestClient& c, uint16_t port) {
  for (int attempt = 0; attempt < 200; ++attempt) {
    if (c.connect("127.0.0.1", port)) return true;
    if (c.handshake_response().status != 503) return false;
    c.disconnect();
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

TEST(WsServerAdmission, CountsStayExactAfterChurn) {
  protocol::WsServerConfig config = without_heartbeats();
  config.max_connections_per_ip = 4;
  config.max_handshakes_per_ip = 2;
  ForkedServer server(config);
  ASSERT_TRUE(server.ok());
  for (int round = 0; round < 20; ++round) {
    WsTestClient a, b;
    ASSERT_TRUE(connect_when_room(a, server.port())) << round << ": " << a.error();
    auto slow = slow_client(server.port());
    ASSERT_TRUE(connect_when_room(b, server.port())) << round << ": " << b.error();
    // Leaving in another order than they came (the slow one still incomplete when it goes).
    b.disconnect();
    slow.reset();
    a.disconnect();
  }
  std::this_thread::sleep_for(500ms);  // the server sees the last closes
  // No handshake is left counted: two incomplete ones fit, a third closes only the oldest.
  std::vector<std::unique_ptr<WsTestClient>> slow;
  for (int i = 0; i < 3; ++i) {
    slow.push_back(slow_client(server.port()));
    std::this_thread::sleep_for(30ms);  // accepted in this order
  }
  EXPECT_TRUE(slow[0]->wait_tcp_closed(2000ms));
  EXPECT_FALSE(slow[1]->wait_tcp_closed(100ms));
  EXPECT_FALSE(slow[2]->wait_tcp_closed(100ms));
  // No connection is left counted: four fit and a fifth is refused. (The slow ones go first:
  // a newcomer whose head the server reads only after accepting it would evict one.)
  slow.clear();
  std::this_thread::sleep_for(500ms);
  WsTestClient a, b, c, d, e;
  ASSERT_TRUE(a.connect("127.0.0.1", server.port())) << a.error();
  ASSERT_TRUE(b.connect("127.0.0.1", server.port())) << b.error();
  ASSERT_TRUE(c.connect("127.0.0.1", server.port())) << c.error();
  ASSERT_TRUE(d.connect("127.0.0.1", server.port())) << d.error();
  ASSERT_FALSE(e.connect("127.0.0.1", server.port()));
  EXPECT_EQ(e.handshake_response().status, 503);
}

// Sends `bytes` on a fresh connection and returns the server's answer, read within 1 s: far
// less than the 10 s handshake timeout, so a 400 here came at once.
parley_test::HttpResponse answer_to(uint16_t port, std::string_view bytes) {
  WsTestClient c;
  EXPECT_TRUE(c.connect_tcp("127.0.0.1", port)) << c.error();
  EXPECT_TRUE(c.send_raw(bytes));
  return c.read_http_response(1000ms);
}

TEST(WsServerRequests, GarbageIsRefusedAtOnce) {
  ForkedServer server(without_heartbeats());
  ASSERT_TRUE(server.ok());
  // A TLS ClientHello on the plain port, binary junk, a control byte in a trickled head.
  EXPECT_EQ(answer_to(server.port(), std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11)).status, 400);
  EXPECT_EQ(answer_to(server.port(), std::string("\x00\xff\x13\x37", 4)).status, 400);
  EXPECT_EQ(answer_to(server.port(), "GET /echo HTTP/1.1\r\nHost: x\x01").status, 400);
  WsTestClient trickle;
  ASSERT_TRUE(trickle.connect_tcp("127.0.0.1", server.port()));
  ASSERT_TRUE(trickle.send_raw("GET /echo HTTP/1.1\r\n"));
  std::this_thread::sleep_for(50ms);
  ASSERT_TRUE(trickle.send_raw("Host : x"));  // whitespace before the colon (RFC 9112 5.1)
  EXPECT_EQ(trickle.read_http_response(1000ms).status, 400);
  // A plausible but unfinished head still waits (and is not refused).
  WsTestClient waiting;
  ASSERT_TRUE(waiting.connect_tcp("127.0.0.1", server.port()));
  ASSERT_TRUE(waiting.send_raw("GET /echo HTTP/1.1\r\nHost: x\r\n"));
  EXPECT_FALSE(waiting.wait_tcp_closed(300ms));
}

TEST(WsServerRequests, AbsoluteFormTargetReachesItsRoute) {
  ForkedServer server(without_heartbeats());
  ASSERT_TRUE(server.ok());
  WsTestClient c;
  ASSERT_TRUE(c.connect_tcp("127.0.0.1", server.port()));
  ASSERT_TRUE(c.send_raw("GET http://127.0.0.1/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                         "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"));
  EXPECT_EQ(c.read_http_response(2000ms).status, 101);
}

TEST(WsServerRequests, UpgradeWithABodyIsRefused) {
  ForkedServer server(without_heartbeats());
  ASSERT_TRUE(server.ok());
  // Without the check these 6 bytes would be read as a WebSocket frame.
  const std::string head = "GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
  parley_test::HttpResponse r = answer_to(server.port(), head + "Content-Length: 6\r\n\r\n" + std::string("\x81\x80\0\0\0\0", 6));
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("body"), std::string::npos) << r.body;
  EXPECT_EQ(answer_to(server.port(), head + "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n").status, 400);
}

TEST(WsServerDrain, SigtermClosesEveryoneWith1001AndExitsZero) {
  protocol::WsServerConfig config = without_heartbeats();
  config.close_timeout_ms = 400;
  ForkedServer server(config, /*drain_timeout_ms=*/1500);
  ASSERT_TRUE(server.ok());
  WsTestClient polite;
  WsTestClient silent;
  ASSERT_TRUE(polite.connect("127.0.0.1", server.port())) << polite.error();
  ASSERT_TRUE(silent.connect("127.0.0.1", server.port())) << silent.error();
  // A message sent before the shutdown is still answered before the close.
  ASSERT_TRUE(polite.send_frame(parley_test::kOpText, "last words"));
  std::this_thread::sleep_for(50ms);

  auto started = std::chrono::steady_clock::now();
  std::thread stopper([&] {
    int status = server.terminate(5000ms);
    EXPECT_TRUE(WIFEXITED(status)) << status;
    EXPECT_EQ(WEXITSTATUS(status), 0);
  });
  parley_test::CloseResult close = polite.expect_close(3000ms);  // replies with a close
  ASSERT_TRUE(close.close_received) << close.error;
  EXPECT_EQ(close.code, 1001);
  ASSERT_EQ(close.frames_before.size(), 1u);
  EXPECT_EQ(close.frames_before[0].payload, "last words");
  EXPECT_TRUE(close.tcp_closed);
  // The silent client never answers; the server gives up on it and still exits in time.
  Received first = silent.recv_frame(2000ms);
  ASSERT_TRUE(first.ok()) << first.error;
  EXPECT_EQ(first.opcode, parley_test::kOpClose);
  EXPECT_TRUE(silent.wait_tcp_closed(3000ms));
  stopper.join();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 3000ms);
}

}  // namespace
