#include "tools/backoff.h"

#include <utility>

namespace tools::cli {

Backoff::Backoff(BackoffPolicy policy, Random random) : policy_(policy), random_(std::move(random)) {
  if (policy_.base.count() < 0) policy_.base = std::chrono::milliseconds(0);
  if (policy_.cap < policy_.base) policy_.cap = policy_.base;
}

uint64_t backoff_ceiling_ms(uint64_t base_ms, uint64_t cap_ms, uint32_t attempt) {
  if (base_ms == 0) return 0;
  if (attempt >= 63 || base_ms > (cap_ms >> attempt)) return cap_ms;
  return base_ms << attempt;
}

uint64_t full_jitter_ms(uint64_t ceiling_ms, uint64_t random) {
  // The modulo bias is below 2^-40 for any sane bound.
  return ceiling_ms == UINT64_MAX ? random : random % (ceiling_ms + 1);
}

std::chrono::milliseconds Backoff::ceiling(uint32_t attempt) const {
  return std::chrono::milliseconds(static_cast<int64_t>(backoff_ceiling_ms(
      static_cast<uint64_t>(policy_.base.count()), static_cast<uint64_t>(policy_.cap.count()), attempt)));
}

std::optional<std::chrono::milliseconds> Backoff::next_delay() {
  if (attempts_ >= policy_.max_retries) return std::nullopt;
  const uint64_t bound = static_cast<uint64_t>(ceiling(attempts_).count());
  ++attempts_;
  return std::chrono::milliseconds(static_cast<int64_t>(full_jitter_ms(bound, random_())));
}

void Backoff::on_connected(std::chrono::milliseconds now) { connected_at_ = now; }

void Backoff::on_disconnected(std::chrono::milliseconds now) {
  if (!connected_at_) return;
  if (now - *connected_at_ >= policy_.stable_after) attempts_ = 0;
  connected_at_.reset();
}

}  // namespace tools::cli
