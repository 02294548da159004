#pragma once
// Reconnection delays for parley-cli: exponential backoff with full jitter (each delay is drawn
// uniformly from [0, min(cap, base * 2^attempt)]), a retry budget, and a reset once a connection
// has stayed up long enough. Pure: the caller passes the time and injects the random source.
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>

namespace tools::cli {

// The ceiling of attempt `attempt` (0-based): min(cap, base * 2^attempt), saturating at cap
// without overflowing; 0 when base is 0.
uint64_t backoff_ceiling_ms(uint64_t base_ms, uint64_t cap_ms, uint32_t attempt);
// Full jitter: a delay uniform over [0, ceiling] made from one uniformly distributed `random`
// value. Callers that keep their own per-connection state (parley-idle) use these directly.
uint64_t full_jitter_ms(uint64_t ceiling_ms, uint64_t random);

struct BackoffPolicy {
  std::chrono::milliseconds base{500};   // ceiling of the first delay
  std::chrono::milliseconds cap{30000};  // no ceiling grows past this
  uint32_t max_retries = 5;              // attempts allowed after a failure, until a reset
  // A connection that lived at least this long counts as a success and resets the schedule; one
  // that dropped sooner (a server that accepts and hangs up) keeps using up the budget.
  std::chrono::milliseconds stable_after{2000};
};

class Backoff {
 public:
  // Uniformly distributed 64-bit values; called once per delay.
  using Random = std::function<uint64_t()>;

  Backoff(BackoffPolicy policy, Random random);

  // The delay before the next attempt, or nullopt when max_retries attempts have been handed
  // out since the last reset (give up). Each call uses up one attempt.
  std::optional<std::chrono::milliseconds> next_delay();
  // The upper bound of the delay for attempt `attempt` (0-based): min(cap, base * 2^attempt).
  std::chrono::milliseconds ceiling(uint32_t attempt) const;

  // A connection was established at `now` (any clock, as long as it is the same for all calls).
  void on_connected(std::chrono::milliseconds now);
  // The established connection dropped at `now`; resets the schedule when it lasted at least
  // stable_after. Without an earlier on_connected it does nothing.
  void on_disconnected(std::chrono::milliseconds now);
  // Forgets every attempt made.
  void reset() { attempts_ = 0; }

  // Attempts handed out since the last reset.
  uint32_t attempts() const { return attempts_; }
  const BackoffPolicy& policy() const { return policy_; }

 private:
  BackoffPolicy policy_;
  Random random_;
  std::optional<std::chrono::milliseconds> connected_at_;
  uint32_t attempts_ = 0;
};

}  // namespace tools::cli
