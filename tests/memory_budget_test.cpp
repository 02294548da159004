// Issue 13: the server-wide memory budget (WsServerConfig::max_memory). Near it, new connections
// get HTTP 503 with Retry-After; at it, the connection pinning the most queued memory is closed
// first, and a smaller slow consumer keeps its subscription and catches up.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <string>
#include <thread>

#include "chat/parleyd_options.h"
#include "reactor/memory_budget.h"
#include "tests/support/forked_server.h"
#include "tests/support/parleyd_process.h"
#include "tests/support/ws_test_client.h"

namespace {

using namespace std::chrono_literals;
using parley_test::ForkedServer;
using parley_test::Received;
using parley_test::WsTestClient;

constexpr size_t kBudget = 4 << 20;
constexpr size_t kFrame = 1024;
constexpr int kBatch = 32;
constexpr int kMaxBatches = 2048;  // 64 MiB: far more than the budget and any socket buffers

// True once the server closed `client`'s connection (FIN or reset), unread data or not.
bool peer_closed(const WsTestClient& client) {
  pollfd p{client.fd(), POLLRDHUP, 0};
  return poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

// Reads every whole frame that has arrived; false if the connection broke.
bool read_available(WsTestClient& client) {
  for (;;) {
    Received r = client.recv_frame(10ms);
    if (r.ok()) continue;
    return r.status == parley_test::RecvStatus::kTimeout;
  }
}

// A fresh /echo connection: its HTTP status (101 when admitted) and, for a 503, its details.
struct Probe {
  int status = 0;
  bool retry_after = false;
  std::string body;
};
Probe probe(uint16_t port) {
  WsTestClient client;
  Probe result;
  client.connect("127.0.0.1", port);
  result.status = client.handshake_response().status;
  result.retry_after = client.handshake_response().header("Retry-After").has_value();
  result.body = client.handshake_response().body;
  return result;
}

TEST(MemoryBudget, NearItNewConnectionsGet503AtItTheLargestQueueIsClosedFirst) {
  protocol::WsServerConfig config;
  config.ping_interval_ms = 0;
  config.max_buffered = 64 << 20;  // the per-connection cap stays out of the way
  config.max_memory = kBudget;
  ForkedServer server(config);
  ASSERT_TRUE(server.ok());

  // Two subscribers with fixed receive buffers, so the server's queues (not the kernel) hold
  // what they do not read. `big` never reads; `small` reads until the budget is nearly spent
  // (its buffer is large enough for loopback TCP to keep up).
  WsTestClient big;
  WsTestClient small;
  for (WsTestClient* client : {&big, &small}) {
    ASSERT_TRUE(client->connect_tcp("127.0.0.1", server.port()));
    int size = client == &big ? 4096 : 64 * 1024;
    ASSERT_EQ(setsockopt(client->fd(), SOL_SOCKET, SO_RCVBUF, &size, sizeof size), 0);
    ASSERT_TRUE(client->upgrade("/fanout")) << client->error();
  }
  WsTestClient publisher;
  ASSERT_TRUE(publisher.connect("127.0.0.1", server.port(), "/fanout")) << publisher.error();
  const std::string body(kFrame, 'p');

  // Phase 1: publish until a new connection is refused for memory.
  Probe refused;
  int batches = 0;
  for (; batches < kMaxBatches && refused.status != 503; ++batches) {
    for (int i = 0; i < kBatch; ++i) ASSERT_TRUE(publisher.send_frame(parley_test::kOpText, body));
    ASSERT_TRUE(read_available(small));
    std::this_thread::sleep_for(2ms);
    Probe p = probe(server.port());
    if (p.status != 101) refused = p;
    ASSERT_FALSE(peer_closed(big)) << "shed before any 503, after " << batches << " batches";
  }
  ASSERT_EQ(refused.status, 503) << "never refused after " << batches << " batches";
  EXPECT_TRUE(refused.retry_after);
  EXPECT_NE(refused.body.find("memory"), std::string::npos) << refused.body;

  // Phase 2: `small` stops reading too; publishing on crosses the budget. The one pinning the
  // most (`big`, behind since the start) is closed; that frees enough, so `small` stays.
  for (int more = 0; more < kMaxBatches && !peer_closed(big); ++more) {
    for (int i = 0; i < kBatch; ++i) ASSERT_TRUE(publisher.send_frame(parley_test::kOpText, body));
    std::this_thread::sleep_for(2ms);
  }
  ASSERT_TRUE(peer_closed(big)) << "the largest slow consumer was never closed";
  std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(peer_closed(small)) << "the smaller slow consumer was closed too";

  // Back under the budget: new connections are admitted again, and `small` catches up on
  // everything it was sent, up to a last message.
  Probe admitted;
  for (int i = 0; i < 50 && admitted.status != 101; ++i) {
    admitted = probe(server.port());
    if (admitted.status != 101) std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(admitted.status, 101);
  ASSERT_TRUE(publisher.send_frame(parley_test::kOpText, "last"));
  for (;;) {
    Received r = small.recv_frame(5s);
    ASSERT_TRUE(r.ok()) << r.error;
    if (r.payload == "last") break;
    ASSERT_EQ(r.payload.size(), kFrame);
  }
}

// Input a peer leaves buffered (here a message sent in fragments and never finished) pins heap
// like a write queue does, so it counts against --max-memory: near the budget new WebSocket
// upgrades get 503, while /metrics still answers (it is how an operator sees why), and shows it.
TEST(MemoryBudget, BufferedInputCountsAndMetricsStillAnswerNearTheBudget) {
  parley_test::ParleydProcess server({"--max-memory", "1M"});
  ASSERT_TRUE(server.ok()) << server.error();
  WsTestClient trickler;
  ASSERT_TRUE(trickler.connect("127.0.0.1", server.port(), "/echo")) << trickler.error();
  parley_test::FrameOptions more;
  more.fin = false;
  const std::string piece(300 * 1024, 'x');
  ASSERT_TRUE(trickler.send_frame(parley_test::kOpText, piece, more));
  ASSERT_TRUE(trickler.send_frame(parley_test::kOpContinuation, piece, more));
  ASSERT_TRUE(trickler.send_frame(parley_test::kOpContinuation, piece, more));  // 900 KiB > 7/8 of 1 MiB

  long input = -1;
  for (int i = 0; i < 100 && input < 900 * 1024; ++i) {
    input = parley_test::parleyd_metric(server.port(), "parley_memory_input_bytes");
    if (input < 900 * 1024) std::this_thread::sleep_for(20ms);
  }
  EXPECT_GE(input, 900 * 1024) << "/metrics did not answer, or the buffered message is not counted";
  EXPECT_GE(parley_test::parleyd_metric(server.port(), "parley_memory_accounted_bytes"), 900 * 1024);
  Probe refused = probe(server.port());
  EXPECT_EQ(refused.status, 503);
  EXPECT_TRUE(refused.retry_after);
  EXPECT_NE(refused.body.find("memory"), std::string::npos) << refused.body;
  EXPECT_GE(parley_test::parleyd_metric(server.port(), "parley_memory_rejected_total"), 1);

  // The peer goes: its buffer is given back and upgrades are admitted again.
  trickler.disconnect();
  for (int i = 0; i < 100 && parley_test::parleyd_metric(server.port(), "parley_memory_input_bytes") != 0; ++i) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(parley_test::parleyd_metric(server.port(), "parley_memory_input_bytes"), 0);
  EXPECT_EQ(probe(server.port()).status, 101);
}

TEST(MemoryBudget, WithoutABudgetNothingIsRefused) {
  // max_memory = 0 is off: the same slow subscriber is only bound by its own cap.
  protocol::WsServerConfig config;
  config.ping_interval_ms = 0;
  config.max_buffered = 64 << 20;
  ForkedServer server(config);
  ASSERT_TRUE(server.ok());
  WsTestClient slow;
  ASSERT_TRUE(slow.connect_tcp("127.0.0.1", server.port()));
  int size = 4096;
  ASSERT_EQ(setsockopt(slow.fd(), SOL_SOCKET, SO_RCVBUF, &size, sizeof size), 0);
  ASSERT_TRUE(slow.upgrade("/fanout")) << slow.error();
  WsTestClient publisher;
  ASSERT_TRUE(publisher.connect("127.0.0.1", server.port(), "/fanout")) << publisher.error();
  const std::string body(kFrame, 'p');
  for (int i = 0; i < 2 * static_cast<int>(kBudget / kFrame); ++i) {
    ASSERT_TRUE(publisher.send_frame(parley_test::kOpText, body));
  }
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(probe(server.port()).status, 101);
  EXPECT_FALSE(peer_closed(slow));
}

}  // namespace

namespace {

TEST(MemoryBudgetOption, MaxMemoryTakesSizesZeroForOffAndDefaultsToAShareOfRam) {
  chat::ParleydOptions options;
  std::string error;
  EXPECT_EQ(options.max_memory, chat::kAutoMemoryBudget);
  ASSERT_TRUE(chat::parse_parleyd_options({"--max-memory", "512M"}, options, error)) << error;
  EXPECT_EQ(options.max_memory, uint64_t{512} << 20);
  ASSERT_TRUE(chat::parse_parleyd_options({"--max-memory", "0"}, options, error)) << error;
  EXPECT_EQ(options.max_memory, 0u);
  EXPECT_FALSE(chat::parse_parleyd_options({"--max-memory", "lots"}, options, error));
  EXPECT_NE(error.find("--max-memory"), std::string::npos) << error;
  EXPECT_NE(chat::parleyd_usage().find("--max-memory"), std::string::npos);

  // The default: a quarter of the machine's (or cgroup's) memory, split over the workers.
  const uint64_t system = reactor::system_memory_bytes();
  ASSERT_GT(system, 64u << 20) << "could not read MemTotal";
  EXPECT_EQ(reactor::default_memory_budget(1), system / 4);
  EXPECT_EQ(reactor::default_memory_budget(4), system / 16);
}

}  // namespace
