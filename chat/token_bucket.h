#pragma once
// Token-bucket rate limiting (rate N tokens/s, burst B) with an injected millisecond clock.
// The per-connection state is 8 bytes; the rate and burst are shared configuration passed in
// on each call, so a million connections do not carry a million copies of it. O(1), no
// allocation, no floating point on the hot path.
//
// Fixed point: tokens are counted in micro-tokens (kUnitsPerToken = 10^6), so a rate given in
// thousandths of a token per second is an exact whole number of units per millisecond: refill
// is elapsed_ms * units_per_ms with no rounding drift, however often it runs.
//
// Time is kept as the low 32 bits of the millisecond clock (it wraps every ~49.7 days). The
// elapsed time is the difference modulo 2^32:
// - a gap under 2^31 ms (~24.8 days) is exact, even across the wrap;
// - a difference of 2^31 ms or more is taken for a clock that stepped backwards and credits
//   nothing; a real idle gap that long (or a gap >= 2^32 ms, seen modulo 2^32) therefore
//   under-credits. Errors only ever deny, never grant extra tokens, and the bucket refills
//   normally from the next call on.
#include <cstdint>
#include <optional>

namespace chat {

// Shared configuration of a family of buckets.
struct TokenBucketRate {
  static constexpr uint64_t kUnitsPerToken = 1'000'000;
  // Largest burst: capacity must fit the 32-bit token counter.
  static constexpr uint32_t kMaxBurst = static_cast<uint32_t>(UINT32_MAX / kUnitsPerToken);

  uint32_t units_per_ms = 0;   // refill per millisecond == tokens per second * 1000
  uint32_t capacity = 0;       // burst * kUnitsPerToken

  // `per_second` tokens per second (0.001 to 4,000,000, resolution 0.001) and a burst of
  // 1 to kMaxBurst (4294) tokens; std::nullopt when out of range or not finite.
  static constexpr std::optional<TokenBucketRate> make(double per_second, uint32_t burst) {
    if (!(per_second >= 0.001 && per_second <= 4'000'000.0) || burst < 1 || burst > kMaxBurst) {
      return std::nullopt;
    }
    TokenBucketRate rate;
    rate.units_per_ms = static_cast<uint32_t>(per_second * 1000.0 + 0.5);
    rate.capacity = static_cast<uint32_t>(burst * kUnitsPerToken);
    return rate;
  }
};

// Per-connection state: 8 bytes. Default-constructed it is empty as of time 0; call reset() (or
// use the two-argument constructor) when the connection opens to start full.
class TokenBucket {
 public:
  constexpr TokenBucket() = default;
  // Full at `now_ms`.
  constexpr TokenBucket(const TokenBucketRate& rate, uint64_t now_ms) { reset(rate, now_ms); }

  // Refills to the burst and restarts the clock at `now_ms`.
  constexpr void reset(const TokenBucketRate& rate, uint64_t now_ms) {
    tokens_ = rate.capacity;
    last_ms_ = static_cast<uint32_t>(now_ms);
  }

  // Takes `count` tokens if that many are available after refilling up to `now_ms`; returns
  // false (taking none) otherwise. A count above the burst can never succeed.
  constexpr bool try_take(const TokenBucketRate& rate, uint64_t now_ms, uint32_t count = 1) {
    refill(rate, now_ms);
    const uint64_t cost = uint64_t{count} * TokenBucketRate::kUnitsPerToken;
    if (tokens_ < cost) return false;
    tokens_ = static_cast<uint32_t>(tokens_ - cost);
    return true;
  }

  // Milliseconds from `now_ms` until `count` tokens will be available (0 if they are now;
  // UINT64_MAX if count exceeds the burst). Refills first, takes nothing.
  constexpr uint64_t ms_until_available(const TokenBucketRate& rate, uint64_t now_ms,
                                        uint32_t count = 1) {
    refill(rate, now_ms);
    const uint64_t cost = uint64_t{count} * TokenBucketRate::kUnitsPerToken;
    if (cost > rate.capacity || rate.units_per_ms == 0) return UINT64_MAX;
    if (tokens_ >= cost) return 0;
    return (cost - tokens_ + rate.units_per_ms - 1) / rate.units_per_ms;
  }

  // Whole tokens available as of the last call (no refill).
  constexpr uint32_t tokens() const {
    return static_cast<uint32_t>(tokens_ / TokenBucketRate::kUnitsPerToken);
  }

 private:
  constexpr void refill(const TokenBucketRate& rate, uint64_t now_ms) {
    const uint32_t now = static_cast<uint32_t>(now_ms);
    const uint32_t elapsed = now - last_ms_;  // modulo 2^32: exact across the wrap
    last_ms_ = now;
    if (elapsed >= 0x8000'0000u) return;  // the clock went backwards (see the top of the file)
    // elapsed < 2^31 and units_per_ms < 2^32: the product fits in 63 bits.
    const uint64_t filled = tokens_ + uint64_t{elapsed} * rate.units_per_ms;
    tokens_ = filled > rate.capacity ? rate.capacity : static_cast<uint32_t>(filled);
  }

  uint32_t tokens_ = 0;   // micro-tokens, <= rate.capacity
  uint32_t last_ms_ = 0;  // low 32 bits of the clock at the last refill
};

static_assert(sizeof(TokenBucket) == 8);

// A bucket bundled with its own rate, for one-off uses (a tool, a listener-wide limit):
// 16 bytes. Per-connection state should use TokenBucket with a shared TokenBucketRate.
class TokenBucketLimiter {
 public:
  // Starts full at `now_ms`.
  constexpr TokenBucketLimiter(const TokenBucketRate& rate, uint64_t now_ms)
      : rate_(rate), bucket_(rate, now_ms) {}

  // See TokenBucket::try_take.
  constexpr bool try_take(uint64_t now_ms, uint32_t count = 1) {
    return bucket_.try_take(rate_, now_ms, count);
  }
  // See TokenBucket::ms_until_available.
  constexpr uint64_t ms_until_available(uint64_t now_ms, uint32_t count = 1) {
    return bucket_.ms_until_available(rate_, now_ms, count);
  }
  const TokenBucketRate& rate() const { return rate_; }

 private:
  TokenBucketRate rate_;
  TokenBucket bucket_;
};

}  // namespace chat
