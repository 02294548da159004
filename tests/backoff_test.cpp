// tools/backoff.h: the reconnection schedule, with an injected random source and caller-supplied
// times. Full jitter: each delay uniform in [0, min(cap, base * 2^attempt)].
#include "tools/backoff.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

namespace {

using std::chrono::milliseconds;
using tools::cli::Backoff;
using tools::cli::BackoffPolicy;

BackoffPolicy policy(int64_t base_ms, int64_t cap_ms, uint32_t retries, int64_t stable_ms = 2000) {
  return BackoffPolicy{milliseconds(base_ms), milliseconds(cap_ms), retries, milliseconds(stable_ms)};
}

// A random source that returns the given values in turn (then repeats the last).
Backoff::Random sequence(std::vector<uint64_t> values) {
  return [values, i = size_t{0}]() mutable { return values[i < values.size() ? i++ : values.size() - 1]; };
}

TEST(CliBackoff, CeilingDoublesFromBaseUpToTheCap) {
  Backoff backoff(policy(100, 1000, 10), sequence({0}));
  const int64_t expected[] = {100, 200, 400, 800, 1000, 1000, 1000};
  for (uint32_t attempt = 0; attempt < std::size(expected); ++attempt) {
    EXPECT_EQ(backoff.ceiling(attempt).count(), expected[attempt]) << "attempt " << attempt;
  }
}

TEST(CliBackoff, CeilingSaturatesInsteadOfOverflowing) {
  Backoff backoff(policy(3, 86'400'000, 10), sequence({0}));
  EXPECT_EQ(backoff.ceiling(24).count(), 3 << 24);
  EXPECT_EQ(backoff.ceiling(25).count(), 86'400'000);  // 3 << 25 is past the cap
  EXPECT_EQ(backoff.ceiling(40).count(), 86'400'000);
  EXPECT_EQ(backoff.ceiling(63).count(), 86'400'000);
  EXPECT_EQ(backoff.ceiling(1'000'000).count(), 86'400'000);
}

TEST(CliBackoff, DelayIsTheRandomValueReducedIntoZeroToCeiling) {
  // Ceilings 100, 200, 400: values 0, ceiling, ceiling + 1 (wraps to 0) and one in between.
  Backoff backoff(policy(100, 10'000, 4), sequence({0, 200, 401, 1234}));
  EXPECT_EQ(backoff.next_delay(), milliseconds(0));
  EXPECT_EQ(backoff.next_delay(), milliseconds(200));  // the bound itself is reachable
  EXPECT_EQ(backoff.next_delay(), milliseconds(0));    // 401 % 401
  EXPECT_EQ(backoff.next_delay(), milliseconds(1234 % 801));
}

TEST(CliBackoff, FullJitterCoversTheWholeRangeAndNeverExceedsIt) {
  std::mt19937_64 rng(42);
  for (uint32_t attempt = 0; attempt < 6; ++attempt) {
    int64_t low = INT64_MAX, high = -1;
    const int64_t ceiling = std::min<int64_t>(30'000, int64_t{500} << attempt);
    for (int draw = 0; draw < 2000; ++draw) {
      Backoff backoff(policy(500, 30'000, 10), [&] { return rng(); });
      for (uint32_t skip = 0; skip < attempt; ++skip) backoff.next_delay();
      const int64_t delay = backoff.next_delay()->count();
      ASSERT_GE(delay, 0);
      ASSERT_LE(delay, ceiling) << "attempt " << attempt;
      low = std::min(low, delay);
      high = std::max(high, delay);
    }
    // 2000 uniform draws: the extremes land within 1% of the ends (failure odds ~ e^-40).
    EXPECT_LE(low, ceiling / 100) << "attempt " << attempt;
    EXPECT_GE(high, ceiling - ceiling / 100) << "attempt " << attempt;
  }
}

TEST(CliBackoff, GivesUpAfterMaxRetries) {
  Backoff backoff(policy(10, 100, 3), sequence({5}));
  EXPECT_TRUE(backoff.next_delay());
  EXPECT_TRUE(backoff.next_delay());
  EXPECT_TRUE(backoff.next_delay());
  EXPECT_EQ(backoff.attempts(), 3u);
  EXPECT_FALSE(backoff.next_delay());
  EXPECT_FALSE(backoff.next_delay());
  EXPECT_EQ(backoff.attempts(), 3u);
}

TEST(CliBackoff, ZeroRetriesMeansNoRetry) {
  Backoff backoff(policy(10, 100, 0), sequence({5}));
  EXPECT_FALSE(backoff.next_delay());
}

TEST(CliBackoff, ZeroBaseRetriesAtOnce) {
  Backoff backoff(policy(0, 0, 3), sequence({UINT64_MAX}));
  EXPECT_EQ(backoff.next_delay(), milliseconds(0));
  EXPECT_EQ(backoff.next_delay(), milliseconds(0));
}

TEST(CliBackoff, ACapBelowTheBaseIsRaisedToTheBase) {
  Backoff backoff(policy(300, 100, 3), sequence({UINT64_MAX - 1}));
  EXPECT_EQ(backoff.policy().cap, milliseconds(300));
  EXPECT_EQ(backoff.ceiling(5), milliseconds(300));
}

TEST(CliBackoff, AStableConnectionResetsTheSchedule) {
  // Ceilings 100, 200 (value == ceiling shows it), then 101: 0 under the base ceiling 100, but
  // 101 had the schedule gone on to the ceiling 400.
  Backoff backoff(policy(100, 10'000, 3, 2000), sequence({100, 200, 101, 0}));
  EXPECT_EQ(backoff.next_delay(), milliseconds(100));
  EXPECT_EQ(backoff.next_delay(), milliseconds(200));
  EXPECT_EQ(backoff.attempts(), 2u);
  backoff.on_connected(milliseconds(10'000));
  backoff.on_disconnected(milliseconds(12'000));  // up exactly stable_after: a success
  EXPECT_EQ(backoff.attempts(), 0u);
  EXPECT_EQ(backoff.next_delay(), milliseconds(0));
  // ... with the whole budget again.
  EXPECT_TRUE(backoff.next_delay());
  EXPECT_TRUE(backoff.next_delay());
  EXPECT_FALSE(backoff.next_delay());
}

TEST(CliBackoff, AShortLivedConnectionKeepsUsingTheBudget) {
  Backoff backoff(policy(100, 10'000, 2, 2000), sequence({0}));
  EXPECT_TRUE(backoff.next_delay());
  backoff.on_connected(milliseconds(5000));
  backoff.on_disconnected(milliseconds(6999));  // a server that accepts and hangs up at once
  EXPECT_EQ(backoff.attempts(), 1u);
  EXPECT_TRUE(backoff.next_delay());
  EXPECT_FALSE(backoff.next_delay());
}

TEST(CliBackoff, DisconnectWithoutConnectChangesNothing) {
  Backoff backoff(policy(100, 10'000, 2, 0), sequence({0}));
  EXPECT_TRUE(backoff.next_delay());
  backoff.on_disconnected(milliseconds(1'000'000));
  EXPECT_EQ(backoff.attempts(), 1u);
  backoff.reset();
  EXPECT_EQ(backoff.attempts(), 0u);
}

}  // namespace
