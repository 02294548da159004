#pragma once
// A log-bucketed latency histogram in the manner of HdrHistogram: fixed memory, O(1) record,
// mergeable, percentiles within kRelativePrecision of the exact order statistic.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace tools {

// Values are unsigned 64-bit (parley-load records nanoseconds). Values below 2 * kSubBuckets are
// exact; above, every power-of-two range [2^m, 2^(m+1)) is split into kSubBuckets equal buckets,
// so a bucket is at most 1/kSubBuckets of its lower bound wide.
class LatencyHistogram {
 public:
  static constexpr unsigned kSubBucketBits = 7;
  static constexpr uint64_t kSubBuckets = uint64_t{1} << kSubBucketBits;  // 128
  // Buckets for the whole uint64_t range: 2*128 exact ones, then 128 per octave 2^8 .. 2^63.
  static constexpr size_t kBucketCount = (64 - kSubBucketBits + 1) * kSubBuckets;
  // A reported value (its bucket's midpoint) is within this fraction of every value in the bucket.
  static constexpr double kRelativePrecision = 1.0 / (2 * kSubBuckets);

  LatencyHistogram();

  // Counts one value. Never fails, never allocates.
  void record(uint64_t value) { record_n(value, 1); }
  // Counts `count` occurrences of `value`.
  void record_n(uint64_t value, uint64_t count);
  // Adds every count of `other` into this histogram (the merge of two workers' results).
  void merge(const LatencyHistogram& other);
  // Forgets everything recorded.
  void clear();

  uint64_t count() const { return count_; }
  // Exact smallest / largest recorded value; 0 when empty.
  uint64_t min() const { return count_ ? min_ : 0; }
  uint64_t max() const { return max_; }
  // Exact arithmetic mean of the recorded values; 0 when empty.
  double mean() const;

  // The value at quantile `q` in [0, 1]: the bucket holding the ceil(q * count)-th smallest value,
  // reported as that bucket's midpoint clamped to [min, max] (exactly min / max for the first /
  // last rank). 0 when empty.
  uint64_t value_at_quantile(double q) const;

  // Bucket index of `value`, and the inclusive value range a bucket covers.
  static size_t bucket_of(uint64_t value);
  static uint64_t bucket_low(size_t index);
  static uint64_t bucket_high(size_t index);

  // Appends a compact binary form (only non-empty buckets) to `out`.
  void serialize(std::string& out) const;
  // Reads what serialize() wrote from the front of `in` and advances it; false when malformed
  // (the histogram is then unspecified).
  bool deserialize(std::span<const uint8_t>& in);

 private:
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
  long double sum_ = 0;
};

}  // namespace tools
