#include "tools/rate_limiter.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

namespace tools {
namespace {

constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kSecond = 1'000'000'000;

// The clock the pacer is driven by in these tests: time moves only when the test says so.
struct FakeClock {
  uint64_t now = 0;
  void advance(uint64_t ns) { now += ns; }
};

TEST(OpenLoopPacer, IntendedTimesFollowTheRate) {
  const uint64_t start = 5 * kSecond;
  OpenLoopPacer pacer(start, 1000);
  for (uint64_t k = 0; k < 10; ++k) EXPECT_EQ(pacer.intended(k), start + k * kMs);
}

TEST(OpenLoopPacer, DueCountsEventsAtOrBeforeNow) {
  const uint64_t start = 1000;
  OpenLoopPacer pacer(start, 1000);
  EXPECT_EQ(pacer.due(0), 0u);
  EXPECT_EQ(pacer.due(start - 1), 0u);
  EXPECT_EQ(pacer.due(start), 1u);  // event 0 is due at the start
  EXPECT_EQ(pacer.due(start + kMs - 1), 1u);
  EXPECT_EQ(pacer.due(start + kMs), 2u);
  EXPECT_EQ(pacer.due(start + 10 * kMs), 11u);
}

TEST(OpenLoopPacer, DueAgreesWithIntendedForUnevenPeriods) {
  // 7 events/s has a period of 142857142.857... ns: rounding must not drift or disagree.
  OpenLoopPacer pacer(123, 7, 3, 2);
  for (uint64_t k = 0; k < 1000; ++k) {
    const uint64_t t = pacer.intended(k);
    EXPECT_EQ(pacer.due(t), k + 1) << k;
    EXPECT_EQ(pacer.due(t - 1), k) << k;
  }
}

TEST(OpenLoopPacer, NoDriftOverLongRuns) {
  OpenLoopPacer pacer(0, 3);
  EXPECT_EQ(pacer.intended(3), kSecond);
  EXPECT_EQ(pacer.intended(3'000'000'000ULL), 1'000'000'000ULL * kSecond);
  EXPECT_EQ(pacer.intended(1), 333'333'334u);  // rounded up to whole nanoseconds
}

TEST(OpenLoopPacer, StridedPacersSplitOneScheduleEvenly) {
  // 4 senders sharing 400 events/s: each gets 100/s, staggered by 2.5 ms, and together they
  // produce exactly the global schedule.
  const uint64_t start = 77;
  OpenLoopPacer global(start, 400);
  std::vector<OpenLoopPacer> senders;
  for (uint64_t i = 0; i < 4; ++i) senders.emplace_back(start, 400, 4, i);
  for (uint64_t k = 0; k < 100; ++k) {
    for (uint64_t i = 0; i < 4; ++i) {
      EXPECT_EQ(senders[i].intended(k), global.intended(k * 4 + i));
      if (k > 0) {
        EXPECT_EQ(senders[i].intended(k) - senders[i].intended(k - 1), 10 * kMs);
      }
    }
  }
  for (uint64_t now : {start, start + 1, start + 2'500'000, start + 7'499'999, start + kSecond}) {
    uint64_t sum = 0;
    for (const OpenLoopPacer& s : senders) sum += s.due(now);
    EXPECT_EQ(sum, global.due(now)) << now;
  }
}

TEST(OpenLoopPacer, StalledSenderOwesAndKeepsIntendedTimes) {
  // Coordinated omission: a sender that could not send for 50 ms still reports each message's
  // intended time, so the stall shows up in the measured latency.
  FakeClock clock{1'000};
  OpenLoopPacer pacer(clock.now, 1000);
  EXPECT_EQ(pacer.owed(clock.now), 1u);
  EXPECT_EQ(pacer.take(), 1'000u);
  EXPECT_EQ(pacer.owed(clock.now), 0u);
  clock.advance(50 * kMs);
  EXPECT_EQ(pacer.owed(clock.now), 50u);
  std::vector<uint64_t> latencies;
  while (pacer.owed(clock.now) != 0) latencies.push_back(clock.now - pacer.take());
  ASSERT_EQ(latencies.size(), 50u);
  EXPECT_EQ(latencies.front(), 49 * kMs);  // message 1 was due at 1 ms
  EXPECT_EQ(latencies.back(), 0u);
  EXPECT_EQ(pacer.taken(), 51u);
  EXPECT_EQ(pacer.next_intended(), 1'000 + 51 * kMs);
}

TEST(OpenLoopPacer, SkipToDropsThePast) {
  FakeClock clock{0};
  OpenLoopPacer pacer(clock.now, 100);
  clock.advance(kSecond);
  pacer.skip_to(clock.now);
  EXPECT_EQ(pacer.owed(clock.now), 0u);
  EXPECT_EQ(pacer.next_intended(), kSecond + 10 * kMs);
  pacer.skip_to(0);  // never moves backwards
  EXPECT_EQ(pacer.taken(), 101u);
}

TEST(OpenLoopPacer, JitteryClockSendsExactlyTheSchedule) {
  // Whatever the wake-up pattern, after T seconds the sender has taken every event due by T,
  // each exactly once and in order.
  std::mt19937_64 rng(9);
  std::uniform_int_distribution<uint64_t> step(0, 3 * kMs);
  FakeClock clock{42};
  const uint64_t start = clock.now;
  OpenLoopPacer pacer(start, 2500);
  uint64_t last = 0, sent = 0;
  while (clock.now < start + 2 * kSecond) {
    clock.advance(step(rng));
    for (uint64_t owed = pacer.owed(clock.now); owed != 0; --owed) {
      const uint64_t intended = pacer.take();
      ASSERT_LE(intended, clock.now);
      if (sent != 0) {
        ASSERT_EQ(intended - last, 400'000u);
      }
      last = intended;
      ++sent;
    }
  }
  EXPECT_EQ(sent, pacer.due(clock.now));
  EXPECT_EQ(sent, (clock.now - start) * 2500 / kSecond + 1);
}

TEST(OpenLoopPacer, HighRatesDoNotOverflow) {
  OpenLoopPacer pacer(0, 10'000'000'000ULL, 19'000, 18'999);
  EXPECT_EQ(pacer.due(3600 * kSecond), (3600ULL * 10'000'000'000ULL - 18'999) / 19'000 + 1);
}

}  // namespace
}  // namespace tools
