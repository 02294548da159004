// Admission pacing at the capacity edge (issue 13, "degrade, never collapse"), against a real
// parleyd: held connections with a short ping period, then the server falls behind (SIGSTOP, as
// CPU starvation does) while a storm of new connections piles up in its accept queue. When it
// runs again it must serve the held connections first (none declared dead or lost), admit the
// storm at a pace (the metric and the log say so), and have every storm connection in within a
// bounded time; then pacing stops by itself.
#include <signal.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "tests/support/idle_process.h"
#include "tests/support/parleyd_process.h"

namespace {

using namespace std::chrono_literals;
using parley_test::IdleProcess;
using parley_test::ParleydProcess;
using parley_test::parleyd_metric;
using parley_test::wait_until;

constexpr uint32_t kHeld = 2000;
constexpr uint32_t kStorm = 4000;  // under the listen backlog (4096): the kernel holds them all

// Upgraded connections on the server, without the /metrics request's own connection.
long held(const ParleydProcess& server) { return parleyd_metric(server.port(), "parley_connections") - 1; }

TEST(AdmissionPacing, StormAfterAStallIsPacedAndNoHeldConnectionIsLost) {
  ParleydProcess server({"--ping-interval", "500", "--pong-timeout", "400", "--max-connections-per-ip", "0",
                         "--max-handshakes-per-ip", "0"});
  ASSERT_TRUE(server.ok()) << server.error();
  IdleProcess holder(server.port(), kHeld);  // a lost connection stays lost
  ASSERT_GT(holder.pid(), 0);
  ASSERT_TRUE(wait_until([&] { return held(server) == kHeld; }, 60s)) << "held " << held(server);
  EXPECT_EQ(parleyd_metric(server.port(), "parley_admission_paced_total"), 0) << "paced before any overload";

  // The server stops for three seconds (six ping periods) while the storm connects: the kernel
  // completes the TCP handshakes and queues them; the heads wait in their sockets.
  ASSERT_EQ(kill(server.pid(), SIGSTOP), 0);
  IdleProcess storm(server.port(), kStorm, {"--rate", "100000", "--max-pending", "5000", "--no-reconnect"});
  ASSERT_GT(storm.pid(), 0);
  std::this_thread::sleep_for(3s);
  ASSERT_EQ(kill(server.pid(), SIGCONT), 0);
  const auto resumed = std::chrono::steady_clock::now();

  // Every storm connection gets in within a bounded time (at the slowest pace, 64/s, 4,000
  // take about a minute; the pace recovers once the server has caught up, so far less).
  EXPECT_TRUE(wait_until([&] { return held(server) == kHeld + kStorm; }, 45s)) << "held " << held(server);
  const double all_in_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - resumed).count();
  const long paced_rounds = parleyd_metric(server.port(), "parley_accept_paced_total");
  const long paced = parleyd_metric(server.port(), "parley_admission_paced_total");
  std::printf("[ info     ] storm of %u all in %.1f s after the stall; pacing started %ld times, %ld accept rounds "
              "stopped at the pace; %ld pong deadlines deferred\n",
              kStorm, all_in_s, paced, paced_rounds,
              parleyd_metric(server.port(), "parley_pong_deadlines_deferred_total"));
  EXPECT_GE(paced, 1);
  EXPECT_GT(paced_rounds, 0);
  EXPECT_NE(server.stderr_text().find("admission paced: behind with"), std::string::npos) << server.stderr_text();
  // The held connections were served meanwhile: none was declared dead, none lost (the
  // holders do not reconnect, so a lost one would leave the count short for good).
  EXPECT_EQ(parleyd_metric(server.port(), "parley_dead_peers_total"), 0);
  // Caught up: pacing stops by itself and says so.
  EXPECT_TRUE(wait_until([&] { return parleyd_metric(server.port(), "parley_accept_pace_per_second") == 0; }, 15s));
  EXPECT_TRUE(wait_until([&] { return server.stderr_text().find("admission paced: caught up") != std::string::npos; }, 5s))
      << server.stderr_text();
  EXPECT_TRUE(wait_until([&] { return held(server) == kHeld + kStorm; }, 5s)) << "held " << held(server);
}

}  // namespace
