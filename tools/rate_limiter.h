#pragma once
// Open-loop pacing: a fixed schedule of intended event times that does not wait for replies.
// Latency measured from the intended time (not the actual send) includes any time a sender was
// held up, which is what corrects coordinated omission.
#include <cstdint>

namespace tools {

// The k-th event (k = 0, 1, ...) is due at start + (k * stride + phase) * 1e9 / rate ns, exactly,
// rounded up to a whole nanosecond. One global schedule of `rate` events/s split round-robin over
// `stride` senders gives sender `phase` its own pacer: same rate / stride each, staggered evenly.
// Time is always passed in (the caller's clock), so tests drive it with any clock they like.
class OpenLoopPacer {
 public:
  OpenLoopPacer() = default;
  // `rate` events per second in total over `stride` senders (both > 0); this pacer is sender
  // `phase` (< stride).
  OpenLoopPacer(uint64_t start_ns, uint64_t rate, uint64_t stride = 1, uint64_t phase = 0);

  // Intended time of event `k`.
  uint64_t intended(uint64_t k) const;
  // Number of events whose intended time is <= now_ns.
  uint64_t due(uint64_t now_ns) const;

  // Events handed out by take() so far.
  uint64_t taken() const { return taken_; }
  // Intended time of the next event take() would hand out.
  uint64_t next_intended() const { return intended(taken_); }
  // Events due by now_ns and not yet taken: the sender is this many behind schedule.
  uint64_t owed(uint64_t now_ns) const {
    const uint64_t d = due(now_ns);
    return d > taken_ ? d - taken_ : 0;
  }
  // Hands out the next event and returns its intended time (callers check owed() first).
  uint64_t take() { return intended(taken_++); }
  // Drops every event due by now_ns without sending it (a sender that joins late starts on the
  // schedule instead of owing its past).
  void skip_to(uint64_t now_ns);

 private:
  uint64_t start_ns_ = 0;
  uint64_t rate_ = 1;
  uint64_t stride_ = 1;
  uint64_t phase_ = 0;
  uint64_t taken_ = 0;
};

}  // namespace tools
