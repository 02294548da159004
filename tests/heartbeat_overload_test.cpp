// Heartbeats at the capacity edge (issue 13, "degrade, never collapse"), against real parleyd
// processes: a server that stops reading for a while (SIGSTOP, as CPU starvation does) must
// not declare the peers whose pongs wait unread in its sockets dead; peers that really stop
// answering (the holder stopped) must still be closed; and a ping budget stretches the
// effective ping period instead of letting heartbeats take the whole CPU.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/idle_process.h"
#include "tests/support/parleyd_process.h"

namespace {

using namespace std::chrono_literals;
using parley_test::IdleProcess;
using parley_test::ParleydProcess;
using parley_test::parleyd_metric;
using parley_test::wait_until;


constexpr uint32_t kConnections = 2000;

// Upgraded connections on the server, without the /metrics request's own connection.
long held(const ParleydProcess& server) { return parleyd_metric(server.port(), "parley_connections") - 1; }

// True once the server holds exactly `want`: a /metrics request's connection whose close is
// still being processed when the next one is served counts for a moment, so wait it out.
bool holds(const ParleydProcess& server, long want) {
  return wait_until([&] { return held(server) == want; }, 5s);
}

// Waits until the server holds all kConnections and has sent two pings per connection.
void hold_all(const ParleydProcess& server) {
  ASSERT_TRUE(wait_until([&] { return held(server) == kConnections; }, 60s)) << "held " << held(server);
  const long pings = parleyd_metric(server.port(), "parley_pings_sent_total");
  ASSERT_TRUE(wait_until([&] { return parleyd_metric(server.port(), "parley_pings_sent_total") >= pings + 2 * kConnections; }, 20s));
}

// The server falls behind on reading while every peer answers: the holder is held up for a
// moment (so pings go out without their pongs), then the server stops for five pong timeouts
// while the holder answers, so the pongs wait unread in the server's sockets past their
// deadlines (what CPU starvation does to a loaded server). Overload must cost latency, not
// connections: none is lost.
TEST(HeartbeatOverload, ServerBehindOnReadingLosesNoConnection) {
  ParleydProcess server({"--ping-interval", "500", "--pong-timeout", "400"});
  ASSERT_TRUE(server.ok()) << server.error();
  IdleProcess holder(server.port(), kConnections);
  ASSERT_GT(holder.pid(), 0);
  hold_all(server);

  for (int round = 0; round < 3; ++round) {
    const long pings = parleyd_metric(server.port(), "parley_pings_sent_total");
    ASSERT_EQ(kill(holder.pid(), SIGSTOP), 0);
    std::this_thread::sleep_for(100ms);  // about 400 pings go out unanswered
    ASSERT_EQ(kill(server.pid(), SIGSTOP), 0);
    ASSERT_EQ(kill(holder.pid(), SIGCONT), 0);  // their pongs reach the stopped server
    std::this_thread::sleep_for(2000ms);
    ASSERT_EQ(kill(server.pid(), SIGCONT), 0);
    // Two more heartbeat rounds, answered.
    EXPECT_TRUE(wait_until([&] { return parleyd_metric(server.port(), "parley_pings_sent_total") >= pings + 2 * kConnections; }, 20s));
  }
  const long dead = parleyd_metric(server.port(), "parley_dead_peers_total");
  const long deferred = parleyd_metric(server.port(), "parley_pong_deadlines_deferred_total");
  std::printf("after 3 stalls: %ld of %u declared dead, %ld pong deadlines deferred\n", dead, kConnections, deferred);
  EXPECT_EQ(dead, 0);
  EXPECT_TRUE(holds(server, kConnections)) << "held " << held(server);
  EXPECT_GT(deferred, 0);
}

// The other side of the same rule: a holder that stops answering (stopped longer than the pong
// timeout, while the server runs freely) loses its connections as dead peers.
TEST(HeartbeatOverload, PeersStoppedLongerThanThePongTimeoutAreClosedAsDead) {
  ParleydProcess server({"--ping-interval", "500", "--pong-timeout", "400"});
  ASSERT_TRUE(server.ok()) << server.error();
  IdleProcess holder(server.port(), kConnections);
  ASSERT_GT(holder.pid(), 0);
  hold_all(server);
  ASSERT_EQ(parleyd_metric(server.port(), "parley_dead_peers_total"), 0);

  ASSERT_EQ(kill(holder.pid(), SIGSTOP), 0);
  // Within a ping interval and a pong timeout (900 ms) every connection was pinged and missed
  // its deadline; the rest is margin for a loaded machine.
  EXPECT_TRUE(wait_until([&] { return held(server) == 0; }, 10s)) << "held " << held(server);
  EXPECT_EQ(parleyd_metric(server.port(), "parley_dead_peers_total"), static_cast<long>(kConnections));
}

// The heartbeat budget: 2,100 connections pinged every 200 ms would need 10,500 pings a second;
// with a budget of 1,000 the period stretches to about 2.1 s, /metrics and stderr say so, and
// no connection is lost. When most connections go, the period returns to 200 ms.
TEST(HeartbeatOverload, PingBudgetStretchesThePeriodAndSaysSo) {
  ParleydProcess server({"--ping-interval", "200", "--pong-timeout", "150", "--max-pings-per-second", "1000"});
  ASSERT_TRUE(server.ok()) << server.error();
  auto many = std::make_unique<IdleProcess>(server.port(), kConnections);
  IdleProcess few(server.port(), 100);
  ASSERT_GT(many->pid(), 0);
  ASSERT_GT(few.pid(), 0);
  ASSERT_TRUE(wait_until([&] { return held(server) == kConnections + 100; }, 60s)) << "held " << held(server);
  ASSERT_TRUE(wait_until([&] { return server.stderr_text().find("heartbeat budget: ") != std::string::npos; }, 5s));
  const std::string log = server.stderr_text();
  EXPECT_NE(log.find("at one ping per 200 ms exceed 1000 pings/s; pinging every"), std::string::npos) << log;
  std::this_thread::sleep_for(3s);  // every connection past its first, stretched, period

  const auto t0 = std::chrono::steady_clock::now();
  const long pings0 = parleyd_metric(server.port(), "parley_pings_sent_total");
  std::this_thread::sleep_for(4s);
  const long pings1 = parleyd_metric(server.port(), "parley_pings_sent_total");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double rate = (pings1 - pings0) / seconds;
  EXPECT_LE(rate, 1250) << "pings/s over the budget of 1000 (unbudgeted: 10,500)";
  EXPECT_GE(rate, 500) << "pings/s far under the budget: the period stretched too far";
  const long period = parleyd_metric(server.port(), "parley_ping_interval_effective_ms");
  EXPECT_GE(period, 2100);  // ceil(2,101 connections (with /metrics) * 1000 / 1000)
  EXPECT_LE(period, 2110);
  EXPECT_GT(parleyd_metric(server.port(), "parley_pings_deferred_total"), 0);
  EXPECT_EQ(parleyd_metric(server.port(), "parley_dead_peers_total"), 0);
  EXPECT_TRUE(holds(server, kConnections + 100)) << "held " << held(server);

  many.reset();  // killed: 100 connections left need 500 pings/s, well under the budget
  EXPECT_TRUE(wait_until([&] { return server.stderr_text().find("back to one ping per 200 ms") != std::string::npos; }, 10s))
      << server.stderr_text();
  EXPECT_EQ(parleyd_metric(server.port(), "parley_ping_interval_effective_ms"), 200);
  EXPECT_TRUE(holds(server, 100)) << "held " << held(server);
}

}  // namespace
