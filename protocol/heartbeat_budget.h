#pragma once
// The heartbeat budget (issue 13, "degrade, never collapse"): RFC 6455 5.5.2 pings cost a
// send, a timer and a pong to read per connection per period, so at a million connections a
// fixed period can take the CPU the connections themselves need. Past a rate of pings per
// second the period stretches (pings are deferred, never dropped), so overload costs
// dead-peer detection latency, not connections.
#include <algorithm>
#include <cstdint>

namespace protocol {

class HeartbeatBudget {
 public:
  // `interval_ms` is the configured ping period; `max_per_second` the budget, 0 = unlimited.
  HeartbeatBudget(uint32_t interval_ms, uint32_t max_per_second)
      : interval_ms_(interval_ms), max_per_second_(max_per_second), effective_ms_(interval_ms) {}

  // The ping period to use now with `connections` connections: the configured one, or, while
  // one ping per connection per period would exceed the budget, connections / budget seconds.
  // Stretching starts above the budget and stops only below 90% of it, so a connection count
  // hovering at the edge does not flap (and log) on every connection.
  uint32_t period_for(uint64_t connections) {
    if (max_per_second_ == 0 || interval_ms_ == 0) return interval_ms_;
    // Pings per second the configured period would need, compared as connections * 1000
    // against budget * interval (no division, no overflow below 2^54 connections).
    const uint64_t demand = connections * 1000;
    const uint64_t allowed = uint64_t{max_per_second_} * interval_ms_;
    const bool was = stretching_;
    if (!stretching_ && demand > allowed) stretching_ = true;
    if (stretching_ && demand * 10 < allowed * 9) stretching_ = false;
    if (stretching_ != was) changed_ = true;
    uint64_t period = interval_ms_;
    if (stretching_) period = std::max<uint64_t>(period, (demand + max_per_second_ - 1) / max_per_second_);
    effective_ms_ = static_cast<uint32_t>(std::min<uint64_t>(period, kMaxPeriodMs));
    return effective_ms_;
  }

  // True while the period is stretched.
  bool stretching() const { return stretching_; }
  // The period last returned by period_for() (the configured one before the first call).
  uint32_t effective_ms() const { return effective_ms_; }
  // True once after stretching started or stopped (for one log line per change).
  bool take_change() {
    const bool changed = changed_;
    changed_ = false;
    return changed;
  }

  // The longest stretched period: a day, like the longest configurable one.
  static constexpr uint64_t kMaxPeriodMs = 86'400'000;

 private:
  uint32_t interval_ms_;
  uint32_t max_per_second_;
  uint32_t effective_ms_;
  bool stretching_ = false;
  bool changed_ = false;
};

}  // namespace protocol
