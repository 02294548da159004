#include "tools/backoff.h"

#include <utility>

namespace tools::cli {

Backoff::Backoff(BackoffPolicy policy, Random random) : policy_(policy), random_(std::move(random)) {
  if (policy_.base.count() < 0) policy_.base = std::chrono::milliseconds(0);
  if (policy_.cap < policy_.base) policy_.cap = policy_.base;
}

std::chrono::milliseconds Backoff::ceiling(uint32_t attempt) const {
  const uint64_t base = static_cast<uint64_t>(policy_.base.count());
  const uint64_t cap = static_cast<uint64_t>(policy_.cap.count());
  // base << attempt, saturating at cap without overflowing.
  if (base == 0) return std::chrono::milliseconds(0);
  if (attempt >= 63 || base > (cap >> attempt)) return policy_.cap;
  return std::chrono::milliseconds(static_cast<int64_t>(base << attempt));
}

std::optional<std::chrono::milliseconds> Backoff::next_delay() {
  if (attempts_ >= policy_.max_retries) return std::nullopt;
  const uint64_t bound = static_cast<uint64_t>(ceiling(attempts_).count());
  ++attempts_;
  // Full jitter: uniform over [0, bound]. The modulo bias is below 2^-40 for any sane bound.
  const uint64_t value = bound == UINT64_MAX ? random_() : random_() % (bound + 1);
  return std::chrono::milliseconds(static_cast<int64_t>(value));
}

void Backoff::on_connected(std::chrono::milliseconds now) { connected_at_ = now; }

void Backoff::on_disconnected(std::chrono::milliseconds now) {
  if (!connected_at_) return;
  if (now - *connected_at_ >= policy_.stable_after) attempts_ = 0;
  connected_at_.reset();
}

}  // namespace tools::cli
