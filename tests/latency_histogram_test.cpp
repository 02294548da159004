#include "tools/latency_histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace tools {
namespace {

// The order statistic value_at_quantile() promises: the ceil(q * n)-th smallest (at least the 1st).
uint64_t reference_quantile(const std::vector<uint64_t>& sorted, double q) {
  uint64_t rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(sorted.size())));
  rank = std::clamp<uint64_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

void expect_quantiles_match(const LatencyHistogram& h, std::vector<uint64_t> values) {
  std::sort(values.begin(), values.end());
  for (double q : {0.0, 0.001, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 0.9999, 1.0}) {
    const uint64_t want = reference_quantile(values, q);
    const uint64_t got = h.value_at_quantile(q);
    const double tolerance = static_cast<double>(want) * LatencyHistogram::kRelativePrecision;
    EXPECT_LE(std::fabs(static_cast<double>(got) - static_cast<double>(want)), tolerance + 0.5)
        << "q=" << q << " want " << want << " got " << got;
  }
  EXPECT_EQ(h.min(), values.front());
  EXPECT_EQ(h.max(), values.back());
  EXPECT_EQ(h.count(), values.size());
}

TEST(LatencyHistogram, BucketsTileTheWholeRange) {
  EXPECT_EQ(LatencyHistogram::bucket_of(0), 0u);
  EXPECT_EQ(LatencyHistogram::bucket_of(UINT64_MAX), LatencyHistogram::kBucketCount - 1);
  EXPECT_EQ(LatencyHistogram::bucket_high(LatencyHistogram::kBucketCount - 1), UINT64_MAX);
  for (size_t i = 0; i < LatencyHistogram::kBucketCount; ++i) {
    const uint64_t low = LatencyHistogram::bucket_low(i);
    const uint64_t high = LatencyHistogram::bucket_high(i);
    ASSERT_LE(low, high);
    ASSERT_EQ(LatencyHistogram::bucket_of(low), i);
    ASSERT_EQ(LatencyHistogram::bucket_of(high), i);
    if (i + 1 < LatencyHistogram::kBucketCount) {
      ASSERT_EQ(LatencyHistogram::bucket_low(i + 1), high + 1);
    }
    // The stated precision: half a bucket is within kRelativePrecision of its lower bound.
    ASSERT_LE(static_cast<double>(high - low) / 2,
              static_cast<double>(low) * LatencyHistogram::kRelativePrecision + 0.5);
  }
}

TEST(LatencyHistogram, SmallValuesAreExact) {
  LatencyHistogram h;
  std::vector<uint64_t> values;
  for (uint64_t v = 0; v < 256; ++v) {
    h.record(v);
    values.push_back(v);
  }
  std::sort(values.begin(), values.end());
  for (double q : {0.01, 0.5, 0.9, 0.99, 1.0}) EXPECT_EQ(h.value_at_quantile(q), reference_quantile(values, q));
}

TEST(LatencyHistogram, EmptyReportsZero) {
  LatencyHistogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 0u);
  EXPECT_EQ(h.mean(), 0.0);
  EXPECT_EQ(h.value_at_quantile(0.99), 0u);
}

TEST(LatencyHistogram, PercentilesMatchSortedReferenceUniform) {
  std::mt19937_64 rng(1);
  std::uniform_int_distribution<uint64_t> dist(1'000, 10'000'000);
  LatencyHistogram h;
  std::vector<uint64_t> values;
  for (int i = 0; i < 200'000; ++i) {
    values.push_back(dist(rng));
    h.record(values.back());
  }
  expect_quantiles_match(h, values);
}

TEST(LatencyHistogram, PercentilesMatchSortedReferenceLongTail) {
  // Latency-like: log-normal body in the tens of microseconds plus rare multi-millisecond stalls.
  std::mt19937_64 rng(2);
  std::lognormal_distribution<double> body(std::log(40'000.0), 0.5);
  std::uniform_int_distribution<uint64_t> stall(1'000'000, 200'000'000);
  std::bernoulli_distribution is_stall(0.002);
  LatencyHistogram h;
  std::vector<uint64_t> values;
  for (int i = 0; i < 300'000; ++i) {
    values.push_back(is_stall(rng) ? stall(rng) : static_cast<uint64_t>(body(rng)));
    h.record(values.back());
  }
  expect_quantiles_match(h, values);
}

TEST(LatencyHistogram, MeanIsExact) {
  LatencyHistogram h;
  h.record(100);
  h.record(200);
  h.record_n(1'000'000, 2);
  EXPECT_DOUBLE_EQ(h.mean(), (100.0 + 200.0 + 2'000'000.0) / 4);
  EXPECT_EQ(h.count(), 4u);
}

TEST(LatencyHistogram, HugeValues) {
  LatencyHistogram h;
  h.record(UINT64_MAX);
  h.record(uint64_t{1} << 63);
  EXPECT_EQ(h.max(), UINT64_MAX);
  EXPECT_EQ(h.min(), uint64_t{1} << 63);
  EXPECT_EQ(h.value_at_quantile(1.0), UINT64_MAX);
}

TEST(LatencyHistogram, MergeEqualsRecordingEverything) {
  std::mt19937_64 rng(3);
  std::exponential_distribution<double> dist(1.0 / 50'000);
  LatencyHistogram a, b, all;
  std::vector<uint64_t> values;
  for (int i = 0; i < 100'000; ++i) {
    const auto v = static_cast<uint64_t>(dist(rng)) + 1;
    values.push_back(v);
    (i % 3 == 0 ? a : b).record(v);
    all.record(v);
  }
  a.merge(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.min(), all.min());
  EXPECT_EQ(a.max(), all.max());
  EXPECT_NEAR(a.mean(), all.mean(), 1e-6 * all.mean());
  for (double q : {0.5, 0.9, 0.99, 0.999}) EXPECT_EQ(a.value_at_quantile(q), all.value_at_quantile(q));
  expect_quantiles_match(a, values);
}

TEST(LatencyHistogram, MergeIntoEmptyKeepsMinimum) {
  LatencyHistogram empty, b;
  b.record(5'000);
  b.record(7'000);
  empty.merge(b);
  EXPECT_EQ(empty.min(), 5'000u);
  EXPECT_EQ(empty.max(), 7'000u);
}

TEST(LatencyHistogram, SerializeRoundTrip) {
  LatencyHistogram h;
  for (uint64_t v = 1; v < 10'000'000; v = v * 3 + 1) h.record_n(v, v % 7 + 1);
  std::string bytes;
  h.serialize(bytes);
  bytes += "tail";
  std::span<const uint8_t> in(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  LatencyHistogram copy;
  ASSERT_TRUE(copy.deserialize(in));
  EXPECT_EQ(in.size(), 4u);  // stops right after its own bytes
  EXPECT_EQ(copy.count(), h.count());
  EXPECT_EQ(copy.min(), h.min());
  EXPECT_EQ(copy.max(), h.max());
  for (double q : {0.0, 0.3, 0.5, 0.99, 1.0}) EXPECT_EQ(copy.value_at_quantile(q), h.value_at_quantile(q));
}

TEST(LatencyHistogram, DeserializeRejectsTruncatedInput) {
  LatencyHistogram h;
  h.record(1);
  h.record(1'000'000);
  std::string bytes;
  h.serialize(bytes);
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    std::span<const uint8_t> in(reinterpret_cast<const uint8_t*>(bytes.data()), cut);
    LatencyHistogram copy;
    EXPECT_FALSE(copy.deserialize(in)) << cut;
  }
}

}  // namespace
}  // namespace tools
