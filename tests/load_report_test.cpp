#include "tools/load_report.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "tools/load_options.h"

namespace tools {
namespace {

LoadResult sample_result(uint64_t base) {
  LoadResult r;
  r.counters.connects_started = base + 1;
  r.counters.upgrades = base + 1;
  r.counters.sent = base * 10;
  r.counters.received = base * 10;
  r.counters.sent_total = base * 12;
  r.counters.received_total = base * 12;
  r.counters.payload_bytes_received = base * 200;
  r.counters.errors[static_cast<size_t>(ErrorKind::kMismatch)] = base;
  for (uint64_t v = 1; v <= base * 10; ++v) r.message_latency.record(v * 1000);
  r.connect_latency.record(base * 50'000);
  r.ack_latency.record(base * 3'000);
  r.measured_s = 2.0 + static_cast<double>(base);
  return r;
}

TEST(LoadResult, SerializeRoundTrip) {
  const LoadResult original = sample_result(7);
  std::string bytes;
  original.serialize(bytes);
  LoadResult copy;
  ASSERT_TRUE(copy.deserialize(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size())));
  EXPECT_EQ(copy.counters.sent, original.counters.sent);
  EXPECT_EQ(copy.counters.errors[static_cast<size_t>(ErrorKind::kMismatch)], 7u);
  EXPECT_EQ(copy.message_latency.count(), original.message_latency.count());
  EXPECT_EQ(copy.message_latency.value_at_quantile(0.99), original.message_latency.value_at_quantile(0.99));
  EXPECT_EQ(copy.connect_latency.max(), original.connect_latency.max());
  EXPECT_EQ(copy.ack_latency.count(), 1u);
  EXPECT_EQ(copy.ack_latency.max(), original.ack_latency.max());
  EXPECT_DOUBLE_EQ(copy.measured_s, original.measured_s);
}

TEST(LoadResult, DeserializeRejectsGarbage) {
  std::string bytes;
  sample_result(3).serialize(bytes);
  LoadResult copy;
  EXPECT_FALSE(copy.deserialize(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), 10)));
  bytes += 'x';  // trailing bytes: not one whole result
  EXPECT_FALSE(copy.deserialize(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size())));
  bytes[0] ^= 1;
  EXPECT_FALSE(copy.deserialize(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size())));
}

TEST(LoadResult, MergeAddsCountersAndHistograms) {
  LoadResult a = sample_result(2);
  const LoadResult b = sample_result(5);
  a.merge(b);
  EXPECT_EQ(a.counters.sent, 70u);
  EXPECT_EQ(a.counters.upgrades, 9u);
  EXPECT_EQ(a.counters.error_total(), 7u);
  EXPECT_EQ(a.message_latency.count(), 70u);
  EXPECT_EQ(a.message_latency.max(), 50'000u);
  EXPECT_EQ(a.connect_latency.count(), 2u);
  EXPECT_DOUBLE_EQ(a.measured_s, 7.0);
}

TEST(LoadReport, JsonCarriesCountsLatencyAndErrorsByKind) {
  LoadOptions options;
  options.url_text = "ws://127.0.0.1:1/echo\"x";
  options.pipeline = 16;
  const LoadResult r = sample_result(4);
  const std::string json = format_json(options, r);
  EXPECT_NE(json.find("\"scenario\": \"echo\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"url\": \"ws://127.0.0.1:1/echo\\\"x\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"mode\": \"closed-loop\""), std::string::npos);
  EXPECT_NE(json.find("\"messages_sent\": 40,"), std::string::npos);
  EXPECT_NE(json.find("\"messages_received\": 40,"), std::string::npos);
  EXPECT_NE(json.find("\"messages_per_s\": 6.7,"), std::string::npos) << json;  // 40 over 6 s
  EXPECT_NE(json.find("\"latency_us\": {\"count\": 40, \"min\": 1.000"), std::string::npos) << json;
  EXPECT_NE(json.find("\"max\": 40.000}"), std::string::npos) << json;
  EXPECT_NE(json.find("\"errors\": {\"total\": 4, \"socket\": 0"), std::string::npos) << json;
  EXPECT_NE(json.find("\"mismatch\": 4"), std::string::npos);
  // Balanced braces: one object with three nested latency objects and the errors object.
  EXPECT_EQ(std::count(json.begin(), json.end(), '{'), 5);
  EXPECT_EQ(std::count(json.begin(), json.end(), '}'), 5);
  EXPECT_NE(json.find("\"ack_latency_us\": {\"count\": 1"), std::string::npos) << json;
}

TEST(LoadReport, SummaryNamesTheErrorsAndTheShortfall) {
  LoadOptions options;
  options.connections = 10;
  LoadResult r = sample_result(1);
  r.counters.connects_started = 8;
  const std::string summary = format_summary(options, r);
  EXPECT_NE(summary.find("errors     1  mismatch 1"), std::string::npos) << summary;
  EXPECT_NE(summary.find("2 never started"), std::string::npos) << summary;
  EXPECT_NE(summary.find("p99.9"), std::string::npos);

  options.scenario = Scenario::kConnect;
  r.counters.cycles_measured = 300;
  const std::string connect = format_summary(options, r);
  EXPECT_NE(connect.find("300 connect-upgrade-close cycles, 100 handshakes/s"), std::string::npos) << connect;
}

LoadResult broadcast_result() {
  LoadResult r;
  r.counters.upgrades = 101;
  r.counters.subscribers_measured = 100;
  r.counters.published = 50;
  r.counters.acked = 50;
  r.counters.deliveries = 4990;
  r.counters.server_cpu_ns = 499'000'000;
  r.counters.server_cpu_window_ns = 1'996'000'000;
  for (uint64_t v = 1; v <= 4990; ++v) r.message_latency.record(v * 100);
  r.measured_s = 2.0;
  r.join_s = 0.5;
  r.delivery_span_s = 2.5;
  return r;
}

TEST(LoadReport, BroadcastCountsMissingDeliveries) {
  LoadResult r = broadcast_result();
  EXPECT_EQ(r.expected_deliveries(), 5000u);
  EXPECT_EQ(r.missing_deliveries(), 10u);
  r.count_missing_deliveries();
  EXPECT_EQ(r.counters.errors[static_cast<size_t>(ErrorKind::kMissing)], 10u);

  std::string bytes;
  r.serialize(bytes);
  LoadResult copy;
  ASSERT_TRUE(copy.deserialize(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size())));
  EXPECT_DOUBLE_EQ(copy.join_s, 0.5);
  EXPECT_DOUBLE_EQ(copy.delivery_span_s, 2.5);
  EXPECT_EQ(copy.counters.deliveries, 4990u);
  LoadResult other;
  other.join_s = 0.7;
  other.counters.subscribers_measured = 20;
  copy.merge(other);
  EXPECT_DOUBLE_EQ(copy.join_s, 0.7);
  EXPECT_DOUBLE_EQ(copy.delivery_span_s, 2.5);
  EXPECT_EQ(copy.expected_deliveries(), 6000u);
}

TEST(LoadReport, ServerCpuOfSeveralProcesses) {
  // parleyd's workers and Redis measured as one server: the sum, and each in --server-pid order.
  LoadOptions options;
  options.scenario = Scenario::kBroadcast;
  options.server_pids = {11, 12, 13};
  LoadResult r = broadcast_result();
  const uint64_t begin[3] = {1'000'000'000, 5'000'000'000, 7'000'000'000};
  const uint64_t end[3] = {1'250'000'000, 5'500'000'000, 6'000'000'000};  // a pid reused: counts 0, not a wrap
  record_server_cpu(r.counters, 3, begin, end, 3'000'000'000);
  EXPECT_EQ(r.counters.server_cpu_ns, 750'000'000u);
  EXPECT_EQ(r.counters.server_cpu_window_ns, 3'000'000'000u);
  std::string bytes;  // worker 0 samples; the parent reads it back from the pipe
  r.serialize(bytes);
  LoadResult copy;
  ASSERT_TRUE(copy.deserialize(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size())));
  const std::string json = format_json(options, copy);
  EXPECT_NE(json.find("\"server_cpu_s\": 0.750,"), std::string::npos) << json;
  EXPECT_NE(json.find("\"server_cpu_each_s\": [0.250, 0.500, 0.000],"), std::string::npos) << json;
}

TEST(LoadReport, BroadcastJsonAndSummary) {
  LoadOptions options;
  options.scenario = Scenario::kBroadcast;
  options.connections = 100;
  options.rate = 25;
  LoadResult r = broadcast_result();
  r.count_missing_deliveries();
  const std::string json = format_json(options, r);
  EXPECT_NE(json.find("\"scenario\": \"broadcast\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"deliveries\": 4990,"), std::string::npos) << json;
  EXPECT_NE(json.find("\"deliveries_expected\": 5000,"), std::string::npos) << json;
  EXPECT_NE(json.find("\"deliveries_missing\": 10,"), std::string::npos) << json;
  EXPECT_NE(json.find("\"deliveries_per_s\": 1996.0,"), std::string::npos) << json;  // over the 2.5 s span
  EXPECT_NE(json.find("\"server_cpu_percent\": 25.0,"), std::string::npos) << json;
  EXPECT_NE(json.find("\"server_cpu_each_s\": [],"), std::string::npos) << json;  // no --server-pid
  EXPECT_NE(json.find("\"missing\": 10"), std::string::npos) << json;
  EXPECT_EQ(std::count(json.begin(), json.end(), '{'), 5);
  const std::string summary = format_summary(options, r);
  EXPECT_NE(summary.find("100 subscribers"), std::string::npos) << summary;
  EXPECT_NE(summary.find("open loop at 25 msg/s"), std::string::npos) << summary;
  EXPECT_NE(summary.find("4,990 of 5,000 expected, 10 missing"), std::string::npos) << summary;
  EXPECT_NE(summary.find("100.000 us per delivery"), std::string::npos) << summary;
  EXPECT_NE(summary.find("errors     10  missing 10"), std::string::npos) << summary;
}

LoadResult chat_result() {
  LoadResult r;
  r.chat = true;
  r.counters.upgrades = 12;
  r.counters.subscribers_measured = 10;
  r.counters.published = 40;
  r.counters.acked = 38;
  r.counters.refused = 2;
  r.counters.deliveries_expected = 114;
  r.counters.deliveries = 110;
  r.counters.idle_skipped = 7;
  r.counters.presence_events = 36;
  r.measured_s = 2.0;
  r.join_s = 0.25;
  r.delivery_span_s = 2.2;
  for (uint64_t v = 1; v <= 110; ++v) r.message_latency.record(v * 1000);
  return r;
}

TEST(LoadReport, ChatCountsMissingOnlyWhenExactAndExtraAlways) {
  LoadResult exact = chat_result();
  EXPECT_EQ(exact.expected_deliveries(), 114u);  // from the acks, not published x joined
  EXPECT_TRUE(exact.deliveries_exact(10));
  EXPECT_FALSE(exact.deliveries_exact(11));  // a user never joined
  exact.count_missing_deliveries(10);
  EXPECT_EQ(exact.counters.errors[static_cast<size_t>(ErrorKind::kMissing)], 4u);
  EXPECT_EQ(exact.counters.errors[static_cast<size_t>(ErrorKind::kExtra)], 0u);

  // With reconnects the expectation is only an upper bound: fewer is fine, more is not.
  LoadResult bound = chat_result();
  bound.counters.reconnects_planned = 2;
  bound.counters.reconnects = 2;
  EXPECT_FALSE(bound.deliveries_exact(10));
  bound.count_missing_deliveries(10);
  EXPECT_EQ(bound.counters.error_total(), 0u);
  bound.counters.deliveries = 120;
  bound.count_missing_deliveries(10);
  EXPECT_EQ(bound.counters.errors[static_cast<size_t>(ErrorKind::kExtra)], 6u);
}

TEST(LoadReport, ChatJsonAndSummary) {
  LoadOptions options;
  options.scenario = Scenario::kChat;
  options.connections = 10;
  options.rate = 20;
  options.rooms = 4;
  options.rooms_per_user = 2;
  options.idle_share = 0.25;
  options.reconnect_share = 0.2;
  LoadResult r = chat_result();
  r.counters.reconnects_planned = 2;
  r.counters.reconnects = 1;
  r.count_missing_deliveries(options.connections);
  const std::string json = format_json(options, r);
  EXPECT_NE(json.find("\"scenario\": \"chat\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"rooms\": 4,"), std::string::npos) << json;
  EXPECT_NE(json.find("\"users_joined\": 10,"), std::string::npos) << json;
  EXPECT_NE(json.find("\"deliveries_expected\": 114,"), std::string::npos) << json;
  EXPECT_NE(json.find("\"deliveries_exact\": false,"), std::string::npos) << json;
  EXPECT_NE(json.find("\"reconnects_planned\": 2,"), std::string::npos) << json;
  EXPECT_NE(json.find("\"reconnects\": 1,"), std::string::npos) << json;
  EXPECT_NE(json.find("\"skipped\": 7,"), std::string::npos) << json;
  EXPECT_NE(json.find("\"extra\": 0"), std::string::npos) << json;
  EXPECT_EQ(std::count(json.begin(), json.end(), '{'), 5);
  const std::string summary = format_summary(options, r);
  EXPECT_NE(summary.find("10 users"), std::string::npos) << summary;
  EXPECT_NE(summary.find("4 rooms, 2 per user, open loop at 20 msg/s"), std::string::npos) << summary;
  EXPECT_NE(summary.find("of talking, which began 0.25 s after the start (10 of 10 users joined)"), std::string::npos)
      << summary;
  EXPECT_NE(summary.find("40 msg (20-byte text), 38 acked, 2 refused; 7 skipped"), std::string::npos) << summary;
  EXPECT_NE(summary.find("110 of at most 114 (not exact"), std::string::npos) << summary;
  EXPECT_NE(summary.find("1 back and joined again (2 planned users, 0 connections lost); 36 presence events"), std::string::npos) << summary;
}

TEST(LoadReport, IdleSummary) {
  LoadOptions options;
  options.scenario = Scenario::kIdle;
  options.connections = 1000;
  options.warmup_s = 1;
  LoadResult r;
  r.counters.open_connections = 998;
  r.counters.lost = 3;
  r.counters.reconnects = 1;
  r.counters.pings = 4000;
  r.counters.errors[static_cast<size_t>(ErrorKind::kClosed)] = 3;
  r.measured_s = 2.0;
  r.join_s = 0.4;
  const std::string summary = format_summary(options, r);
  EXPECT_NE(summary.find("2.00 s of holding, after a 0.40 s ramp and 1.00 s of warmup"), std::string::npos) << summary;
  EXPECT_NE(summary.find("998 of 1,000 open at the end; 3 lost and 1 reconnected"), std::string::npos) << summary;
  EXPECT_NE(summary.find("4,000 answered, 2000.0/s"), std::string::npos) << summary;
  const std::string json = format_json(options, r);
  EXPECT_NE(json.find("\"mode\": \"hold\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"pings\": 4000,"), std::string::npos) << json;
  EXPECT_NE(json.find("\"open\": 998,"), std::string::npos) << json;
  EXPECT_NE(json.find("\"ramp_s\": 0.400,"), std::string::npos) << json;
}

TEST(LoadReport, ErrorKindNamesAreDistinct) {
  for (size_t i = 0; i < static_cast<size_t>(ErrorKind::kCount); ++i) {
    for (size_t j = i + 1; j < static_cast<size_t>(ErrorKind::kCount); ++j) {
      EXPECT_STRNE(error_kind_name(static_cast<ErrorKind>(i)), error_kind_name(static_cast<ErrorKind>(j)));
    }
  }
}

}  // namespace
}  // namespace tools
