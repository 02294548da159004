#pragma once
// Admission pacing under overload (issue 13, "degrade, never collapse"): while the server is
// behind, new connections are accepted at a bounded, adaptive pace and the rest wait in the
// kernel's accept queue, so the connections already held keep being served (their pongs read,
// their messages delivered) instead of a reconnect storm feeding itself. Pure: the caller says
// once per loop iteration whether it fell behind, and asks how many accepts it may do now.
//
// Why pace accepts rather than the alternatives (measured on loopback; docs/architecture.md):
// - A 503 with Retry-After costs the server what an admission costs (accept4, epoll_ctl, read,
//   send, close: the kernel's TCP setup and teardown are ~all of a handshake's ~45 us), and the
//   client comes back for another one; it sheds memory and fds, not CPU.
// - Not accepting at all lets the accept queue fill (4096 by default); past it Linux drops SYNs
//   and every waiting client retries on the same exponential schedule (1, 3, 7, 15, 31 s):
//   with listen(16) and 200 clients, 17 got in at once and only 17 more in the next 40 s.
// - Accepting a few each tick keeps the queue draining (so few SYNs are dropped) at a cost the
//   loop chooses, and the pace halves for every second the server stays behind.
#include <algorithm>
#include <cstdint>

namespace protocol {

class AdmissionPacer {
 public:
  // Accepts per second when pacing starts, and the floor it halves down to.
  static constexpr uint32_t kInitialRate = 1024;
  static constexpr uint32_t kMinRate = 64;
  // Accepts that may be taken at once after a quiet moment (the token bucket's depth).
  static constexpr uint32_t kBurst = 32;
  // The pace is reconsidered once per window: halved if the server fell behind in it, doubled
  // if not; a whole window at kInitialRate without falling behind ends the pacing.
  static constexpr uint64_t kWindowMs = 1000;

  // Records one loop iteration at `now_ms`; `behind` says the server fell behind in it.
  void observe(uint64_t now_ms, bool behind) {
    if (rate_ == 0) {
      if (!behind) return;
      rate_ = kInitialRate;
      window_start_ms_ = now_ms;
      behind_in_window_ = false;
      credit_ = uint64_t{kBurst} * 1000;
      refilled_ms_ = now_ms;
      changed_ = true;
      return;
    }
    behind_in_window_ |= behind;
    if (now_ms - window_start_ms_ < kWindowMs) return;
    refill(now_ms);
    if (behind_in_window_) {
      rate_ = std::max(kMinRate, rate_ / 2);
    } else if (rate_ >= kInitialRate) {
      rate_ = 0;
      changed_ = true;
      return;
    } else {
      rate_ = std::min(kInitialRate, rate_ * 2);
    }
    window_start_ms_ = now_ms;
    behind_in_window_ = false;
  }

  // True while accepts are paced.
  bool pacing() const { return rate_ != 0; }
  // Accepts per second allowed now; 0 when not pacing (unlimited).
  uint32_t rate() const { return rate_; }
  // Accepts allowed at `now_ms` (while pacing; unlimited otherwise, shown as UINT32_MAX).
  uint32_t allowance(uint64_t now_ms) {
    if (rate_ == 0) return UINT32_MAX;
    refill(now_ms);
    return static_cast<uint32_t>(credit_ / 1000);
  }
  // Spends `accepts` of the allowance.
  void take(uint32_t accepts) {
    const uint64_t cost = uint64_t{accepts} * 1000;
    credit_ = credit_ > cost ? credit_ - cost : 0;
  }
  // Milliseconds from the last allowance() until one more accept is allowed (at least 1).
  uint32_t ms_until_next() const {
    if (rate_ == 0 || credit_ >= 1000) return 1;
    return static_cast<uint32_t>(std::max<uint64_t>(1, (1000 - credit_ + rate_ - 1) / rate_));
  }
  // True once after pacing started or stopped (for one log line per change).
  bool take_change() {
    const bool changed = changed_;
    changed_ = false;
    return changed;
  }

 private:
  // Credit is kept in thousandths of an accept: `rate_` accepts per second is `rate_`
  // thousandths per millisecond, so no division is needed.
  void refill(uint64_t now_ms) {
    if (now_ms > refilled_ms_) credit_ = std::min<uint64_t>(uint64_t{kBurst} * 1000, credit_ + (now_ms - refilled_ms_) * rate_);
    refilled_ms_ = std::max(refilled_ms_, now_ms);
  }

  uint32_t rate_ = 0;
  uint64_t credit_ = 0;
  uint64_t refilled_ms_ = 0;
  uint64_t window_start_ms_ = 0;
  bool behind_in_window_ = false;
  bool changed_ = false;
};

}  // namespace protocol
