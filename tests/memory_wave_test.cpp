// Issue 13, the attack that took parleyd from 6.5 MB to 1.4 GB and kept it: room members that
// never read, a publisher, and members leaving (each leave sends every member a `left` notice,
// which used to cost a 16 KiB chunk behind a queued broadcast frame). At a scale for `make
// test`: 2,000 silent members in one room of a real parleyd with --max-memory 16M. Its RSS must
// stay within the budget during the wave, come back to within 2x of the pre-wave RSS within a
// few seconds once the members are gone, and a second wave must plateau, not add up.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/parleyd_process.h"
#include "tests/support/process_memory.h"
#include "tests/support/ws_test_client.h"

namespace {

using namespace std::chrono_literals;
using parley_test::ParleydProcess;
using parley_test::kAddressSanitizer;
using parley_test::rss_kib;
using parley_test::Received;
using parley_test::WsTestClient;
using Clock = std::chrono::steady_clock;

constexpr int kMembers = 2000;
constexpr long kBudgetKib = 16 * 1024;
constexpr long kSlackKib = 16 * 1024;  // chat state of 2,000 sessions, tables, allocator slack
constexpr size_t kTextSize = 1000;
constexpr auto kPublishFor = 3000ms;     // as fast as the server fans out: far more than the
                                         // members' socket buffers absorb, so queues build up
constexpr auto kChurnAfter = 1500ms;     // then members leave while queues hold frames
constexpr auto kLeaveEvery = 50ms;       // churn: 30 leaves
constexpr auto kReturnWithin = 5000ms;

// After a wave, RSS must come back within this multiple of its pre-wave value (issue 13).
constexpr long kReturnRatio = 2;

// Discards whatever has arrived for `client` (the publisher reads, but its content is not
// what this test is about).
void discard_input(WsTestClient& client) {
  char buffer[65536];
  while (recv(client.fd(), buffer, sizeof buffer, MSG_DONTWAIT) > 0) {
  }
}

struct WaveResult {
  long peak_kib = 0;        // highest RSS seen from the first member's join to the last leave
  long after_kib = 0;       // RSS once back within kReturnRatio x the pre-wave RSS (or at the deadline)
  long returned_ms = -1;    // how long that took after the last member left; -1: never
  long published = 0;
};

// One wave: kMembers join and stop reading, the publisher publishes while members leave one by
// one, then all leave at once.
::testing::AssertionResult run_wave(ParleydProcess& server, WsTestClient& publisher, int wave, long pre_wave_kib,
                                    WaveResult& result) {
  // A wave starts on a quiet server: on a loaded machine the previous wave's mass leave may
  // still be in progress, and near the budget new connections are refused (503) by design.
  const auto quiet_by = Clock::now() + 15s;
  for (;;) {
    long accounted = parley_test::parleyd_metric(server.port(), "parley_memory_accounted_bytes");
    if (accounted >= 0 && accounted < kBudgetKib * 1024 / 4) break;
    if (Clock::now() > quiet_by) return ::testing::AssertionFailure() << "queue memory still " << accounted << " bytes before wave " << wave;
    std::this_thread::sleep_for(50ms);
  }
  std::vector<std::unique_ptr<WsTestClient>> members;
  members.reserve(kMembers);
  for (int i = 0; i < kMembers; ++i) {
    auto member = std::make_unique<WsTestClient>();
    if (!member->connect_tcp("127.0.0.1", server.port())) return ::testing::AssertionFailure() << member->error();
    // A small receive buffer: the server's queue, not the kernel, holds what is not read.
    int small = 4096;
    setsockopt(member->fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    if (!member->upgrade("/chat")) {
      return ::testing::AssertionFailure() << "member " << i << ": " << member->error() << " (HTTP "
                                           << member->handshake_response().status << ")";
    }
    std::string name = "w" + std::to_string(wave) + "m" + std::to_string(i);
    if (!member->send_frame(parley_test::kOpText, R"({"type":"hello","name":")" + name + R"("})") ||
        !member->send_frame(parley_test::kOpText, R"({"type":"join","room":"lobby"})")) {
      return ::testing::AssertionFailure() << "member " << i << ": " << member->error();
    }
    members.push_back(std::move(member));
    if (i % 256 == 0) result.peak_kib = std::max(result.peak_kib, rss_kib(server.pid()));
  }

  const std::string text(kTextSize, 'x');
  const auto start = Clock::now();
  auto next_leave = start + kChurnAfter;
  for (int n = 0; Clock::now() - start < kPublishFor; ++n) {
    std::string msg = R"({"type":"msg","room":"lobby","text":")" + text + std::to_string(n) + R"("})";
    if (!publisher.send_frame(parley_test::kOpText, msg)) return ::testing::AssertionFailure() << publisher.error();
    discard_input(publisher);
    if (Clock::now() >= next_leave && !members.empty()) {
      members.pop_back();  // closes the TCP connection: a leave, and a notice to every member
      next_leave += kLeaveEvery;
    }
    if (n % 16 == 0) {
      result.peak_kib = std::max(result.peak_kib, rss_kib(server.pid()));
      std::this_thread::sleep_for(1ms);
    }
    ++result.published;
  }
  // Everyone leaves at once: every leave notifies every member still there.
  members.clear();
  const auto gone = Clock::now();
  while (Clock::now() - gone < kReturnWithin) {
    discard_input(publisher);
    long now = rss_kib(server.pid());
    result.peak_kib = std::max(result.peak_kib, now);
    result.after_kib = now;
    if (now <= kReturnRatio * pre_wave_kib) {
      result.returned_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - gone).count();
      break;
    }
    std::this_thread::sleep_for(20ms);
  }
  return ::testing::AssertionSuccess();
}

TEST(MemoryWave, SilentMembersAndLeavesStayInTheBudgetAndMemoryComesBack) {
  // A measurement of the plain build's RSS and timing (make test runs it). Under ASan, the
  // allocator decides when pages go back and the server runs several times slower, so two of
  // three CI runs failed on ASan, not on parleyd: once on the RSS plateau, once on the
  // publisher's send timing out. The same paths run under ASan in MemoryBudget.* and the soak.
  if (kAddressSanitizer) GTEST_SKIP() << "RSS and timing measurement: plain build only (make test)";
  ParleydProcess server({"--max-memory", std::to_string(kBudgetKib) + "K", "--rate-limit", "0", "--history", "0",
                         "--max-connections-per-ip", "0",
                         "--ping-interval", "0"});
  ASSERT_TRUE(server.ok()) << server.error();

  // The publisher, warmed up (buffers touched once) before the pre-wave RSS is taken.
  WsTestClient publisher;
  ASSERT_TRUE(publisher.connect("127.0.0.1", server.port(), "/chat")) << publisher.error();
  ASSERT_TRUE(publisher.send_frame(parley_test::kOpText, R"({"type":"hello","name":"publisher"})"));
  ASSERT_TRUE(publisher.send_frame(parley_test::kOpText, R"({"type":"join","room":"lobby"})"));
  ASSERT_TRUE(publisher.send_frame(parley_test::kOpText, R"({"type":"msg","room":"lobby","text":"warm"})"));
  for (;;) {
    Received r = publisher.recv_message(5s);
    ASSERT_TRUE(r.ok()) << r.error;
    if (r.payload.find(R"("type":"ack")") != std::string::npos) break;
  }
  std::this_thread::sleep_for(300ms);
  const long pre_wave = rss_kib(server.pid());
  ASSERT_GT(pre_wave, 0);

  WaveResult first;
  ASSERT_TRUE(run_wave(server, publisher, 1, pre_wave, first));
  WaveResult second;
  ASSERT_TRUE(run_wave(server, publisher, 2, pre_wave, second));
  std::printf("[ info     ] parleyd RSS: pre-wave %ld KiB; wave 1 (%ld messages) peak %ld KiB, back to %ld KiB "
              "after %ld ms; wave 2 (%ld messages) peak %ld KiB, back to %ld KiB after %ld ms; %ld closed to shed\n",
              pre_wave, first.published, first.peak_kib, first.after_kib, first.returned_ms, second.published,
              second.peak_kib, second.after_kib, second.returned_ms,
              parley_test::parleyd_metric(server.port(), "parley_memory_shed_closed_total"));

  // Within the budget (plus what is not write-queue memory) during both waves.
  EXPECT_LT(first.peak_kib, pre_wave + (kBudgetKib + kSlackKib));
  EXPECT_LT(second.peak_kib, pre_wave + (kBudgetKib + kSlackKib));
  // Memory comes back within a few seconds, both times, and waves do not add up.
  EXPECT_GE(first.returned_ms, 0) << "RSS stayed at " << first.after_kib << " KiB (pre-wave " << pre_wave << ")";
  EXPECT_GE(second.returned_ms, 0) << "RSS stayed at " << second.after_kib << " KiB (pre-wave " << pre_wave << ")";
  EXPECT_LT(second.peak_kib, first.peak_kib + 8 * 1024) << "the second wave added to the first";

  // /metrics shows the budget and the trims.
  EXPECT_EQ(parley_test::parleyd_metric(server.port(), "parley_memory_budget_bytes"), kBudgetKib * 1024);
  EXPECT_LT(parley_test::parleyd_metric(server.port(), "parley_memory_accounted_bytes"), 1 << 20);
  EXPECT_GT(parley_test::parleyd_metric(server.port(), "parley_heap_trims_total"), 0);
  EXPECT_GE(parley_test::parleyd_metric(server.port(), "parley_memory_shed_closed_total"), 0);
}

}  // namespace
