#include "tools/latency_histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

namespace tools {
namespace {

template <typename T>
void put(std::string& out, T value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof value);
}

template <typename T>
bool take(std::span<const uint8_t>& in, T& value) {
  if (in.size() < sizeof value) return false;
  std::memcpy(&value, in.data(), sizeof value);
  in = in.subspan(sizeof value);
  return true;
}

constexpr uint32_t kSerialMagic = 0x4c484731;  // "LHG1"

}  // namespace

LatencyHistogram::LatencyHistogram() : counts_(kBucketCount, 0) {}

size_t LatencyHistogram::bucket_of(uint64_t value) {
  if (value < 2 * kSubBuckets) return static_cast<size_t>(value);
  // value is in [2^m, 2^(m+1)) with m >= kSubBucketBits + 1; its top kSubBucketBits + 1 bits
  // pick the sub-bucket.
  const unsigned m = 63u - static_cast<unsigned>(std::countl_zero(value));
  const unsigned shift = m - kSubBucketBits;
  const uint64_t mantissa = value >> shift;  // in [kSubBuckets, 2 * kSubBuckets)
  return static_cast<size_t>((shift + 1) * kSubBuckets + (mantissa - kSubBuckets));
}

uint64_t LatencyHistogram::bucket_low(size_t index) {
  if (index < 2 * kSubBuckets) return index;
  const uint64_t shift = index / kSubBuckets - 1;
  const uint64_t mantissa = index % kSubBuckets + kSubBuckets;
  return mantissa << shift;
}

uint64_t LatencyHistogram::bucket_high(size_t index) {
  if (index < 2 * kSubBuckets) return index;
  const uint64_t shift = index / kSubBuckets - 1;
  return bucket_low(index) + ((uint64_t{1} << shift) - 1);
}

void LatencyHistogram::record_n(uint64_t value, uint64_t count) {
  if (count == 0) return;
  counts_[bucket_of(value)] += count;
  count_ += count;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
  sum_ += static_cast<long double>(value) * count;
}

void LatencyHistogram::merge(const LatencyHistogram& other) {
  for (size_t i = 0; i < kBucketCount; ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  sum_ += other.sum_;
}

void LatencyHistogram::clear() {
  std::fill(counts_.begin(), counts_.end(), 0);
  count_ = 0;
  min_ = UINT64_MAX;
  max_ = 0;
  sum_ = 0;
}

double LatencyHistogram::mean() const {
  return count_ ? static_cast<double>(sum_ / static_cast<long double>(count_)) : 0.0;
}

uint64_t LatencyHistogram::value_at_quantile(double q) const {
  if (count_ == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  uint64_t rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_)));
  rank = std::clamp<uint64_t>(rank, 1, count_);
  // The extremes are known exactly.
  if (rank == 1) return min_;
  if (rank == count_) return max_;
  uint64_t seen = 0;
  for (size_t i = 0; i < kBucketCount; ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      const uint64_t low = bucket_low(i);
      const uint64_t mid = low + (bucket_high(i) - low) / 2;
      return std::clamp(mid, min(), max_);
    }
  }
  return max_;
}

void LatencyHistogram::serialize(std::string& out) const {
  uint32_t used = 0;
  for (uint64_t c : counts_) used += c != 0;
  put(out, kSerialMagic);
  put(out, used);
  put(out, count_);
  put(out, min_);
  put(out, max_);
  put(out, static_cast<double>(sum_));
  for (size_t i = 0; i < kBucketCount; ++i) {
    if (counts_[i] == 0) continue;
    put(out, static_cast<uint32_t>(i));
    put(out, counts_[i]);
  }
}

bool LatencyHistogram::deserialize(std::span<const uint8_t>& in) {
  clear();
  uint32_t magic = 0, used = 0;
  double sum = 0;
  if (!take(in, magic) || magic != kSerialMagic || !take(in, used) || !take(in, count_) ||
      !take(in, min_) || !take(in, max_) || !take(in, sum)) {
    return false;
  }
  sum_ = sum;
  uint64_t total = 0;
  for (uint32_t k = 0; k < used; ++k) {
    uint32_t index = 0;
    uint64_t c = 0;
    if (!take(in, index) || !take(in, c) || index >= kBucketCount) return false;
    counts_[index] += c;
    total += c;
  }
  return total == count_;
}

}  // namespace tools
