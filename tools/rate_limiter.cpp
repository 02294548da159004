#include "tools/rate_limiter.h"

#include <algorithm>

namespace tools {
namespace {

using u128 = unsigned __int128;
constexpr uint64_t kNsPerSecond = 1'000'000'000;

}  // namespace

OpenLoopPacer::OpenLoopPacer(uint64_t start_ns, uint64_t rate, uint64_t stride, uint64_t phase)
    : start_ns_(start_ns), rate_(std::max<uint64_t>(rate, 1)), stride_(std::max<uint64_t>(stride, 1)),
      phase_(phase % std::max<uint64_t>(stride, 1)) {}

uint64_t OpenLoopPacer::intended(uint64_t k) const {
  // 128-bit so that neither a long run nor a high rate overflows; no accumulated drift.
  const u128 global = static_cast<u128>(k) * stride_ + phase_;
  const u128 offset = (global * kNsPerSecond + rate_ - 1) / rate_;
  return start_ns_ + static_cast<uint64_t>(offset);
}

uint64_t OpenLoopPacer::due(uint64_t now_ns) const {
  if (now_ns < start_ns_) return 0;
  // Event k is due when (k * stride + phase) * 1e9 <= (now - start) * rate, i.e. when its global
  // index is <= last_global.
  const u128 last_global = static_cast<u128>(now_ns - start_ns_) * rate_ / kNsPerSecond;
  if (last_global < phase_) return 0;
  return static_cast<uint64_t>((last_global - phase_) / stride_ + 1);
}

void OpenLoopPacer::skip_to(uint64_t now_ns) { taken_ = std::max(taken_, due(now_ns)); }

}  // namespace tools
