#include "chat/token_bucket.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <random>

namespace chat {
namespace {

TokenBucketRate rate(double per_second, uint32_t burst) {
  const auto r = TokenBucketRate::make(per_second, burst);
  EXPECT_TRUE(r.has_value()) << per_second << "/s burst " << burst;
  return r.value_or(TokenBucketRate{});
}

// Takes as many tokens as the bucket gives at `now`.
int drain(TokenBucket& b, const TokenBucketRate& r, uint64_t now) {
  int n = 0;
  while (b.try_take(r, now)) ++n;
  return n;
}

TEST(TokenBucket, StateIsEightBytes) {
  EXPECT_EQ(sizeof(TokenBucket), 8u);
  EXPECT_EQ(alignof(TokenBucket), 4u);
}

TEST(TokenBucket, StartsFullWithTheBurst) {
  const TokenBucketRate r = rate(1, 5);
  TokenBucket b(r, 1000);
  EXPECT_EQ(b.tokens(), 5u);
  EXPECT_EQ(drain(b, r, 1000), 5);
  EXPECT_FALSE(b.try_take(r, 1000));
}

TEST(TokenBucket, DefaultConstructedIsEmpty) {
  const TokenBucketRate r = rate(1000, 10);
  TokenBucket b;
  EXPECT_FALSE(b.try_take(r, 0));
  EXPECT_TRUE(b.try_take(r, 1));  // 1000/s: one token per millisecond
  b.reset(r, 5);
  EXPECT_EQ(drain(b, r, 5), 10);
}

TEST(TokenBucket, RefillsAtTheRate) {
  const TokenBucketRate r = rate(10, 1);  // one token every 100 ms
  TokenBucket b(r, 0);
  EXPECT_TRUE(b.try_take(r, 0));
  EXPECT_FALSE(b.try_take(r, 99));
  EXPECT_TRUE(b.try_take(r, 100));
  EXPECT_FALSE(b.try_take(r, 100));
  EXPECT_FALSE(b.try_take(r, 150));
  EXPECT_TRUE(b.try_take(r, 200));
}

TEST(TokenBucket, RefillStopsAtTheBurst) {
  const TokenBucketRate r = rate(100, 3);
  TokenBucket b(r, 0);
  EXPECT_EQ(drain(b, r, 0), 3);
  EXPECT_EQ(drain(b, r, 1'000'000), 3);  // a long pause gives back the burst, no more
  EXPECT_EQ(drain(b, r, 1'000'010), 1);  // then 1 per 10 ms
}

TEST(TokenBucket, FrequentCallsDoNotLoseFractions) {
  // 1/3 token per second polled every millisecond: exact fixed point means 10 tokens in 30 s.
  // (Burst 2, so the cap never clips: a full bucket rightly drops what overflows it.)
  const TokenBucketRate r = rate(1.0 / 3.0, 2);
  EXPECT_EQ(r.units_per_ms, 333u);  // 0.333 tokens/s: resolution is 0.001/s
  TokenBucket b(r, 0);
  ASSERT_EQ(drain(b, r, 0), 2);
  int taken = 0;
  for (uint64_t t = 1; t <= 30'030; ++t) taken += b.try_take(r, t);
  // 30.03 s * 0.333/s = 9.99999 tokens: 9 whole ones by then, the 10th just after.
  EXPECT_EQ(taken, 9);
  EXPECT_TRUE(b.try_take(r, 30'031));
}

TEST(TokenBucket, AFullBucketDropsTheOverflow) {
  const TokenBucketRate r = rate(1, 1);
  TokenBucket b(r, 0);
  EXPECT_TRUE(b.try_take(r, 0));
  EXPECT_TRUE(b.try_take(r, 1500));  // full at 1000; the 500 ms after that are lost
  EXPECT_FALSE(b.try_take(r, 2000));
  EXPECT_FALSE(b.try_take(r, 2499));
  EXPECT_TRUE(b.try_take(r, 2500));
}

TEST(TokenBucket, LongRunRateIsExact) {
  const TokenBucketRate r = rate(7, 2);
  TokenBucket b(r, 0);
  std::mt19937 rng(7);
  uint64_t now = 0;
  int taken = drain(b, r, 0);
  EXPECT_EQ(taken, 2);
  // Poll at random intervals for 1000 s; every token that accrues is taken.
  while (now < 1'000'000) {
    now += 1 + rng() % 50;
    taken += drain(b, r, now);
  }
  EXPECT_EQ(taken, 2 + static_cast<int>(now * 7 / 1000));
}

TEST(TokenBucket, TakeSeveral) {
  const TokenBucketRate r = rate(1, 10);
  TokenBucket b(r, 0);
  EXPECT_TRUE(b.try_take(r, 0, 7));
  EXPECT_FALSE(b.try_take(r, 0, 4));  // fails whole: nothing taken
  EXPECT_TRUE(b.try_take(r, 0, 3));
  EXPECT_FALSE(b.try_take(r, 1'000'000, 11));  // above the burst: never
  EXPECT_TRUE(b.try_take(r, 1'000'000, 0));
}

TEST(TokenBucket, MsUntilAvailable) {
  const TokenBucketRate r = rate(4, 2);  // one token per 250 ms
  TokenBucket b(r, 0);
  EXPECT_EQ(b.ms_until_available(r, 0), 0u);
  EXPECT_EQ(drain(b, r, 0), 2);
  EXPECT_EQ(b.ms_until_available(r, 0), 250u);
  EXPECT_EQ(b.ms_until_available(r, 100), 150u);
  EXPECT_EQ(b.ms_until_available(r, 100, 2), 400u);
  EXPECT_EQ(b.ms_until_available(r, 100, 3), UINT64_MAX);
  EXPECT_FALSE(b.try_take(r, 249));
  EXPECT_TRUE(b.try_take(r, 250));
}

TEST(TokenBucket, ClockWrapAroundIsSeamless) {
  // The bucket keeps the low 32 bits of the clock; crossing 2^32 ms must not matter.
  const TokenBucketRate r = rate(10, 1);
  const uint64_t wrap = uint64_t{1} << 32;
  TokenBucket b(r, wrap - 50);
  EXPECT_TRUE(b.try_take(r, wrap - 50));
  EXPECT_FALSE(b.try_take(r, wrap - 1));
  EXPECT_FALSE(b.try_take(r, wrap + 49));  // 99 ms later
  EXPECT_TRUE(b.try_take(r, wrap + 50));   // 100 ms later, across the wrap
  EXPECT_FALSE(b.try_take(r, wrap + 50));
  // And at every later wrap of a 64-bit clock.
  const uint64_t far = (uint64_t{12345} << 32) - 10;
  TokenBucket c(r, far);
  EXPECT_TRUE(c.try_take(r, far));
  EXPECT_FALSE(c.try_take(r, far + 99));
  EXPECT_TRUE(c.try_take(r, far + 100));
}

TEST(TokenBucket, LongGapsUpTo24DaysRefill) {
  const TokenBucketRate r = rate(1, 5);
  TokenBucket b(r, 0);
  EXPECT_EQ(drain(b, r, 0), 5);
  const uint64_t gap = (uint64_t{1} << 31) - 1;  // ~24.8 days
  EXPECT_EQ(drain(b, r, gap), 5);
}

TEST(TokenBucket, BackwardsClockGrantsNothing) {
  const TokenBucketRate r = rate(1000, 5);
  TokenBucket b(r, 1'000'000);
  EXPECT_EQ(drain(b, r, 1'000'000), 5);
  // A step back looks like a ~49-day gap modulo 2^32; it must not refill the bucket.
  EXPECT_FALSE(b.try_take(r, 999'000));
  EXPECT_FALSE(b.try_take(r, 999'000));
  // Time then runs forward from the new reading.
  EXPECT_TRUE(b.try_take(r, 999'001));
  EXPECT_FALSE(b.try_take(r, 999'001));
}

TEST(TokenBucket, GapsOfHalfTheRangeOrMoreUnderCredit) {
  // Documented behaviour: 2^31 ms or more since the last call is taken for a backwards step.
  const TokenBucketRate r = rate(1, 1);
  TokenBucket b(r, 0);
  ASSERT_TRUE(b.try_take(r, 0));
  EXPECT_FALSE(b.try_take(r, uint64_t{1} << 31));
  EXPECT_TRUE(b.try_take(r, (uint64_t{1} << 31) + 1000));  // refills normally from there
}

TEST(TokenBucket, RateLimits) {
  EXPECT_FALSE(TokenBucketRate::make(0, 1).has_value());
  EXPECT_FALSE(TokenBucketRate::make(0.0001, 1).has_value());
  EXPECT_FALSE(TokenBucketRate::make(-1, 1).has_value());
  EXPECT_FALSE(TokenBucketRate::make(std::numeric_limits<double>::infinity(), 1).has_value());
  EXPECT_FALSE(TokenBucketRate::make(std::numeric_limits<double>::quiet_NaN(), 1).has_value());
  EXPECT_FALSE(TokenBucketRate::make(4'000'001, 1).has_value());
  EXPECT_FALSE(TokenBucketRate::make(1, 0).has_value());
  EXPECT_FALSE(TokenBucketRate::make(1, TokenBucketRate::kMaxBurst + 1).has_value());
  EXPECT_TRUE(TokenBucketRate::make(0.001, 1).has_value());
  EXPECT_TRUE(TokenBucketRate::make(4'000'000, TokenBucketRate::kMaxBurst).has_value());
  EXPECT_EQ(TokenBucketRate::kMaxBurst, 4294u);
}

TEST(TokenBucket, ExtremesDoNotOverflow) {
  const TokenBucketRate fast = rate(4'000'000, TokenBucketRate::kMaxBurst);
  TokenBucket b(fast, 0);
  EXPECT_TRUE(b.try_take(fast, 0, TokenBucketRate::kMaxBurst));
  EXPECT_TRUE(b.try_take(fast, (uint64_t{1} << 31) - 1, TokenBucketRate::kMaxBurst));
  EXPECT_FALSE(b.try_take(fast, (uint64_t{1} << 31) - 1));
  EXPECT_TRUE(b.try_take(fast, uint64_t{1} << 31));  // 4000 tokens in a millisecond
  EXPECT_FALSE(b.try_take(fast, UINT64_MAX, UINT32_MAX));

  const TokenBucketRate slow = rate(0.001, 1);  // one token per 1000 s
  TokenBucket s(slow, 0);
  EXPECT_TRUE(s.try_take(slow, 0));
  EXPECT_FALSE(s.try_take(slow, 999'999));
  EXPECT_TRUE(s.try_take(slow, 1'000'000));
}

TEST(TokenBucketLimiter, WrapsRateAndBucket) {
  TokenBucketLimiter limiter(rate(2, 2), 0);
  EXPECT_TRUE(limiter.try_take(0));
  EXPECT_TRUE(limiter.try_take(0));
  EXPECT_FALSE(limiter.try_take(0));
  EXPECT_EQ(limiter.ms_until_available(0), 500u);
  EXPECT_TRUE(limiter.try_take(500));
  EXPECT_EQ(limiter.rate().units_per_ms, 2000u);
}

TEST(TokenBucket, UsableInConstantExpressions) {
  constexpr auto r = TokenBucketRate::make(10, 2);
  static_assert(r.has_value());
  constexpr bool third = [] {
    TokenBucket b(*TokenBucketRate::make(10, 2), 0);
    b.try_take(*TokenBucketRate::make(10, 2), 0);
    b.try_take(*TokenBucketRate::make(10, 2), 0);
    return b.try_take(*TokenBucketRate::make(10, 2), 0);
  }();
  static_assert(!third);
  SUCCEED();
}

}  // namespace
}  // namespace chat
