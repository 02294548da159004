#include "tools/load_report.h"

#include <algorithm>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace tools {
namespace {

constexpr size_t kErrorKinds = static_cast<size_t>(ErrorKind::kCount);
constexpr uint32_t kResultMagic = 0x4c524553;  // "LRES"

std::string printf_string(const char* format, ...) __attribute__((format(printf, 1, 2)));
std::string printf_string(const char* format, ...) {
  char buffer[512];
  va_list args;
  va_start(args, format);
  int n = std::vsnprintf(buffer, sizeof buffer, format, args);
  va_end(args);
  return std::string(buffer, static_cast<size_t>(std::clamp(n, 0, static_cast<int>(sizeof buffer) - 1)));
}

// 1234567 -> "1,234,567".
std::string grouped(uint64_t value) {
  std::string digits = std::to_string(value);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i != 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// Nanoseconds as a short human duration.
std::string human_ns(uint64_t ns) {
  if (ns < 10'000) return printf_string("%.2fus", ns / 1e3);
  if (ns < 1'000'000) return printf_string("%.1fus", ns / 1e3);
  if (ns < 1'000'000'000) return printf_string("%.2fms", ns / 1e6);
  return printf_string("%.2fs", ns / 1e9);
}

std::string latency_line(const LatencyHistogram& h) {
  return "p50 " + human_ns(h.value_at_quantile(0.50)) + "  p90 " + human_ns(h.value_at_quantile(0.90)) +
         "  p99 " + human_ns(h.value_at_quantile(0.99)) + "  p99.9 " + human_ns(h.value_at_quantile(0.999)) +
         "  max " + human_ns(h.max()) + "  (mean " + human_ns(static_cast<uint64_t>(h.mean())) +
         ", n=" + grouped(h.count()) + ")";
}

std::string latency_json(const LatencyHistogram& h) {
  auto us = [](double ns) { return ns / 1e3; };
  return printf_string(
      "{\"count\": %" PRIu64 ", \"min\": %.3f, \"mean\": %.3f, \"p50\": %.3f, \"p90\": %.3f, "
      "\"p99\": %.3f, \"p999\": %.3f, \"max\": %.3f}",
      h.count(), us(h.min()), us(h.mean()), us(h.value_at_quantile(0.50)), us(h.value_at_quantile(0.90)),
      us(h.value_at_quantile(0.99)), us(h.value_at_quantile(0.999)), us(h.max()));
}

std::string json_escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += printf_string("\\u%04x", c);
    } else {
      out += c;
    }
  }
  return out;
}

double per_second(uint64_t count, double seconds) { return seconds > 0 ? count / seconds : 0.0; }

// Deliveries go on after the last publish while the server works through its fan-out, so the
// rate is over the longer of the window and first-publish-to-last-delivery.
double deliveries_per_second(const LoadResult& r) {
  return per_second(r.counters.deliveries, std::max(r.measured_s, r.delivery_span_s));
}

const char* connection_noun(Scenario scenario) {
  switch (scenario) {
    case Scenario::kEcho: return "connections";
    case Scenario::kConnect: return "concurrent connectors";
    case Scenario::kBroadcast: return "subscribers";
    case Scenario::kChat: return "users";
    case Scenario::kIdle: return "connections";
  }
  return "connections";
}

// The server's CPU over the measurement as a percentage of one core; 0 when not sampled.
double server_cpu_percent(const LoadCounters& c) {
  return c.server_cpu_window_ns != 0 ? 100.0 * c.server_cpu_ns / c.server_cpu_window_ns : 0.0;
}

std::string mode_text(const LoadOptions& o) {
  if (o.scenario == Scenario::kChat) {
    std::string text = grouped(o.rooms) + (o.rooms == 1 ? " room, " : " rooms, ") + grouped(o.rooms_per_user) +
                       " per user, open loop at " +
                       grouped(o.rate) + " msg/s, in-flight cap " + grouped(o.max_in_flight);
    if (o.idle_share > 0) text += printf_string(", idle %.0f%% of the time", 100 * o.idle_share);
    if (o.reconnect_share > 0) text += printf_string(", %.0f%% of users reconnect", 100 * o.reconnect_share);
    return text;
  }
  if (o.scenario == Scenario::kIdle) return "holding, answering pings";
  if (o.scenario == Scenario::kBroadcast) {
    const std::string who = grouped(o.publishers) + (o.publishers == 1 ? " publisher" : " publishers");
    if (o.rate != 0) return who + ", open loop at " + grouped(o.rate) + " msg/s, in-flight cap " + grouped(o.max_in_flight);
    return who + ", closed loop, pipeline " + grouped(o.pipeline);
  }
  if (o.scenario == Scenario::kConnect) {
    return o.close_handshake ? "close frame, then wait for the server's" : "plain TCP close";
  }
  if (o.rate != 0) return "open loop at " + grouped(o.rate) + " msg/s, in-flight cap " + grouped(o.max_in_flight);
  return "closed loop, pipeline " + grouped(o.pipeline);
}


// The chat scenario's lines of the summary, after "measured".
std::string chat_summary(const LoadOptions& o, const LoadResult& r) {
  const LoadCounters& c = r.counters;
  std::string out;
  out += printf_string("  sent       %s msg (%" PRIu64 "-byte text), %s acked, %s refused; %s skipped (idle or away)\n",
                       grouped(c.published).c_str(), o.size, grouped(c.acked).c_str(), grouped(c.refused).c_str(),
                       grouped(c.idle_skipped).c_str());
  if (c.unsent != 0) {
    out += printf_string("  behind     %s messages due in the window were never sent: the in-flight cap (%" PRIu64
                         ") held them back, or their user had closed\n",
                         grouped(c.unsent).c_str(), o.max_in_flight);
  }
  const bool exact = r.deliveries_exact(o.connections);
  out += printf_string("  deliveries %s of %s%s%s, %s missing, %s extra, %s deliveries/s over %.2f s\n",
                       grouped(c.deliveries).c_str(), exact ? "" : "at most ", grouped(r.expected_deliveries()).c_str(),
                       exact ? " expected (exact)" : " (not exact: reconnects or users that never joined)",
                       exact ? grouped(r.missing_deliveries()).c_str() : "?", grouped(r.extra_deliveries()).c_str(),
                       grouped(static_cast<uint64_t>(deliveries_per_second(r))).c_str(),
                       std::max(r.measured_s, r.delivery_span_s));
  out += "  latency    " + latency_line(r.message_latency) + " (publish to receipt)\n";
  out += "  ack        " + latency_line(r.ack_latency) + " (send to ack: stored)\n";
  out += printf_string("  reconnects %s back and joined again (%s planned users, %s connections lost); %s presence "
                       "events (joined/left) received\n",
                       grouped(c.reconnects).c_str(), grouped(c.reconnects_planned).c_str(),
                       grouped(c.connections_lost).c_str(), grouped(c.presence_events).c_str());
  out += printf_string("  resends    %s unacked msg sent again (same id) after %s unplanned losses and the reconnects; "
                       "%s duplicate acks (stored already: deduplicated); %s never acked\n",
                       grouped(c.resends).c_str(), grouped(c.connections_lost).c_str(),
                       grouped(c.duplicate_acks).c_str(), grouped(c.never_acked).c_str());
  out += printf_string("  upgrades   %s of %s", grouped(c.upgrades).c_str(),
                       grouped(o.connections + c.reconnects_planned + c.connections_lost).c_str());
  if (r.connect_latency.count() != 0) out += ", connect to 101: " + latency_line(r.connect_latency);
  out += "\n";
  return out;
}

// The idle scenario's lines of the summary, after "measured".
std::string idle_summary(const LoadOptions& o, const LoadResult& r) {
  const LoadCounters& c = r.counters;
  std::string out;
  out += printf_string("  held       %s of %s open at the end; %s lost and %s reconnected while measured\n",
                       grouped(c.open_connections).c_str(), grouped(o.connections).c_str(), grouped(c.lost).c_str(),
                       grouped(c.reconnects).c_str());
  out += printf_string("  pings      %s answered, %.1f/s\n", grouped(c.pings).c_str(), per_second(c.pings, r.measured_s));
  out += printf_string("  attempts   %s connects, %s upgrades\n", grouped(c.connects_started).c_str(),
                       grouped(c.upgrades).c_str());
  return out;
}
}  // namespace

const char* error_kind_name(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kSocket: return "socket";
    case ErrorKind::kConnect: return "connect";
    case ErrorKind::kHandshake: return "handshake";
    case ErrorKind::kTimeout: return "timeout";
    case ErrorKind::kProtocol: return "protocol";
    case ErrorKind::kMismatch: return "mismatch";
    case ErrorKind::kClosed: return "closed";
    case ErrorKind::kUnanswered: return "unanswered";
    case ErrorKind::kChat: return "chat";
    case ErrorKind::kMissing: return "missing";
    case ErrorKind::kExtra: return "extra";
    case ErrorKind::kCount: break;
  }
  return "unknown";
}

uint64_t LoadCounters::error_total() const {
  uint64_t total = 0;
  for (uint64_t e : errors) total += e;
  return total;
}

void LoadCounters::add(const LoadCounters& o) {
  connects_started += o.connects_started;
  upgrades += o.upgrades;
  upgrades_measured += o.upgrades_measured;
  cycles_measured += o.cycles_measured;
  closes_clean += o.closes_clean;
  open_connections += o.open_connections;
  sent_total += o.sent_total;
  received_total += o.received_total;
  sent += o.sent;
  received += o.received;
  payload_bytes_received += o.payload_bytes_received;
  unsent += o.unsent;
  subscribers_joined += o.subscribers_joined;
  subscribers_measured += o.subscribers_measured;
  published += o.published;
  acked += o.acked;
  refused += o.refused;
  deliveries += o.deliveries;
  deliveries_expected += o.deliveries_expected;
  idle_skipped += o.idle_skipped;
  presence_events += o.presence_events;
  reconnects_planned += o.reconnects_planned;
  reconnects += o.reconnects;
  resends += o.resends;
  duplicate_acks += o.duplicate_acks;
  never_acked += o.never_acked;
  connections_lost += o.connections_lost;
  tls_handshakes += o.tls_handshakes;
  tls_resumed += o.tls_resumed;
  lost += o.lost;
  pings += o.pings;
  server_cpu_ns += o.server_cpu_ns;
  server_cpu_window_ns += o.server_cpu_window_ns;
  for (size_t i = 0; i < kMaxServerPids; ++i) server_cpu_each_ns[i] += o.server_cpu_each_ns[i];
  for (size_t i = 0; i < kErrorKinds; ++i) errors[i] += o.errors[i];
}

void record_server_cpu(LoadCounters& c, size_t count, const uint64_t* begin_ns, const uint64_t* end_ns,
                       uint64_t window_ns) {
  c.server_cpu_ns = 0;
  for (size_t i = 0; i < count && i < kMaxServerPids; ++i) {
    c.server_cpu_each_ns[i] = end_ns[i] > begin_ns[i] ? end_ns[i] - begin_ns[i] : 0;
    c.server_cpu_ns += c.server_cpu_each_ns[i];
  }
  c.server_cpu_window_ns = window_ns;
}

void LoadResult::merge(const LoadResult& other) {
  counters.add(other.counters);
  message_latency.merge(other.message_latency);
  connect_latency.merge(other.connect_latency);
  ack_latency.merge(other.ack_latency);
  measured_s = std::max(measured_s, other.measured_s);
  join_s = std::max(join_s, other.join_s);
  delivery_span_s = std::max(delivery_span_s, other.delivery_span_s);
}

void LoadResult::count_missing_deliveries(uint64_t users) {
  if (deliveries_exact(users)) counters.errors[static_cast<size_t>(ErrorKind::kMissing)] += missing_deliveries();
  if (chat) counters.errors[static_cast<size_t>(ErrorKind::kExtra)] += extra_deliveries();
}

void LoadResult::serialize(std::string& out) const {
  static_assert(std::is_trivially_copyable_v<LoadCounters>);
  out.append(reinterpret_cast<const char*>(&kResultMagic), sizeof kResultMagic);
  out.append(reinterpret_cast<const char*>(&counters), sizeof counters);
  out.append(reinterpret_cast<const char*>(&measured_s), sizeof measured_s);
  out.append(reinterpret_cast<const char*>(&join_s), sizeof join_s);
  out.append(reinterpret_cast<const char*>(&delivery_span_s), sizeof delivery_span_s);
  message_latency.serialize(out);
  connect_latency.serialize(out);
  ack_latency.serialize(out);
}

bool LoadResult::deserialize(std::span<const uint8_t> in) {
  uint32_t magic = 0;
  if (in.size() < sizeof magic + sizeof counters + 3 * sizeof(double)) return false;
  std::memcpy(&magic, in.data(), sizeof magic);
  if (magic != kResultMagic) return false;
  in = in.subspan(sizeof magic);
  std::memcpy(&counters, in.data(), sizeof counters);
  in = in.subspan(sizeof counters);
  std::memcpy(&measured_s, in.data(), sizeof measured_s);
  in = in.subspan(sizeof measured_s);
  std::memcpy(&join_s, in.data(), sizeof join_s);
  in = in.subspan(sizeof join_s);
  std::memcpy(&delivery_span_s, in.data(), sizeof delivery_span_s);
  in = in.subspan(sizeof delivery_span_s);
  return message_latency.deserialize(in) && connect_latency.deserialize(in) && ack_latency.deserialize(in) &&
         in.empty();
}

// " (TLS, certificate verified)" for wss://, nothing for ws://.
static const char* tls_text(const LoadOptions& o) {
  if (!o.url.secure) return "";
  return o.tls.insecure ? " (TLS, certificate not verified)" : " (TLS, certificate verified)";
}

std::string format_summary(const LoadOptions& o, const LoadResult& r) {
  const LoadCounters& c = r.counters;
  std::string out;
  out += printf_string("parley-load %s %s%s: %s %s, %" PRIu64 " process%s, %s\n", scenario_name(o.scenario),
                       o.url_text.c_str(), tls_text(o), grouped(o.connections).c_str(),
                       connection_noun(o.scenario), o.processes, o.processes == 1 ? "" : "es", mode_text(o).c_str());
  out += printf_string("  measured   %.2f s", r.measured_s);
  if (o.scenario == Scenario::kBroadcast || o.scenario == Scenario::kChat) {
    out += printf_string(" of %s, which began %.2f s after the start (%s of %s %s joined",
                         o.scenario == Scenario::kChat ? "talking" : "publishing", r.join_s,
                         grouped(c.subscribers_measured).c_str(), grouped(o.connections).c_str(),
                         connection_noun(o.scenario));
    if (o.warmup_s > 0) out += printf_string(", then %.2f s of warmup", o.warmup_s);
    out += ")";
  } else if (o.scenario == Scenario::kIdle) {
    out += " of holding, after ";
    out += r.join_s > 0 ? printf_string("a %.2f s ramp", r.join_s) : std::string("a ramp that never finished");
    if (o.warmup_s > 0) out += printf_string(" and %.2f s of warmup", o.warmup_s);
  } else if (o.warmup_s > 0) {
    out += printf_string(" after %.2f s of warmup", o.warmup_s);
  }
  out += "\n";
  if (o.scenario == Scenario::kChat) {
    out += chat_summary(o, r);
  } else if (o.scenario == Scenario::kIdle) {
    out += idle_summary(o, r);
  } else if (o.scenario == Scenario::kBroadcast) {
    out += printf_string("  published  %s msg (%" PRIu64 "-byte text), %s acked, %s refused\n",
                         grouped(c.published).c_str(), o.size, grouped(c.acked).c_str(), grouped(c.refused).c_str());
    if (c.unsent != 0) {
      out += printf_string("  behind     %s messages due in the window were never sent: the in-flight cap (%" PRIu64
                           ") held them back, or their publisher had closed\n",
                           grouped(c.unsent).c_str(), o.max_in_flight);
    }
    out += printf_string("  deliveries %s of %s expected, %s missing, %s deliveries/s over %.2f s\n",
                         grouped(c.deliveries).c_str(), grouped(r.expected_deliveries()).c_str(),
                         grouped(r.missing_deliveries()).c_str(),
                         grouped(static_cast<uint64_t>(deliveries_per_second(r))).c_str(),
                         std::max(r.measured_s, r.delivery_span_s));
    out += "  latency    " + latency_line(r.message_latency) + " (publish to receipt)\n";
    out += "  ack        " + latency_line(r.ack_latency) + " (send to ack: stored)\n";
    out += printf_string("  upgrades   %s of %s", grouped(c.upgrades).c_str(),
                         grouped(o.connections + o.publishers).c_str());
    if (r.connect_latency.count() != 0) out += ", connect to 101: " + latency_line(r.connect_latency);
    out += "\n";
  } else if (o.scenario == Scenario::kEcho) {
    out += printf_string("  messages   %s sent, %s echoed, %s msg/s (%" PRIu64 "-byte %s payloads, %.1f MB/s)\n",
                         grouped(c.sent).c_str(), grouped(c.received).c_str(),
                         grouped(static_cast<uint64_t>(per_second(c.received, r.measured_s))).c_str(), o.size,
                         o.binary ? "binary" : "text", per_second(c.payload_bytes_received, r.measured_s) / 1e6);
    if (c.unsent != 0) {
      out += printf_string("  behind     %s messages due in the window were never sent: the in-flight cap (%" PRIu64
                           ") held them back, so the server did not keep up with the rate\n",
                           grouped(c.unsent).c_str(), o.max_in_flight);
    }
    out += "  latency    " + latency_line(r.message_latency) + "\n";
    out += printf_string("  upgrades   %s of %s", grouped(c.upgrades).c_str(), grouped(o.connections).c_str());
    if (c.connects_started < o.connections) {
      out += printf_string(" (%s never started: the ramp did not finish in time)",
                           grouped(o.connections - c.connects_started).c_str());
    }
    if (r.connect_latency.count() != 0) out += ", connect to 101: " + latency_line(r.connect_latency);
    out += "\n";
  } else {
    out += printf_string("  cycles     %s connect-upgrade-close cycles, %s handshakes/s%s\n",
                         grouped(c.cycles_measured).c_str(),
                         grouped(static_cast<uint64_t>(per_second(c.cycles_measured, r.measured_s))).c_str(),
                         o.close_handshake ? (", " + grouped(c.closes_clean) + " clean close handshakes").c_str()
                                           : "");
    out += "  handshake  " + latency_line(r.connect_latency) + "\n";
  }
  if (o.url.secure) {
    out += printf_string("  tls        %s handshakes, %s of them resumed sessions\n", grouped(c.tls_handshakes).c_str(),
                         grouped(c.tls_resumed).c_str());
  }
  if (c.server_cpu_window_ns != 0) {
    const uint64_t operations = o.scenario == Scenario::kBroadcast || o.scenario == Scenario::kChat ? c.deliveries
                                : o.scenario == Scenario::kEcho                                    ? c.received
                                : o.scenario == Scenario::kIdle                                    ? c.pings
                                                                                                   : c.cycles_measured;
    out += printf_string("  server     %.2f s of CPU over %.2f s (%.1f%% of a core), %.3f us per %s\n",
                         c.server_cpu_ns / 1e9, c.server_cpu_window_ns / 1e9, server_cpu_percent(c),
                         operations != 0 ? c.server_cpu_ns / 1e3 / operations : 0.0,
                         o.scenario == Scenario::kBroadcast || o.scenario == Scenario::kChat ? "delivery"
                         : o.scenario == Scenario::kEcho                                    ? "echo"
                         : o.scenario == Scenario::kIdle                                    ? "ping answered"
                                                                                            : "handshake");
  }
  out += printf_string("  errors     %s", grouped(c.error_total()).c_str());
  for (size_t i = 0; i < kErrorKinds; ++i) {
    if (c.errors[i] != 0) {
      out += printf_string("  %s %s", error_kind_name(static_cast<ErrorKind>(i)), grouped(c.errors[i]).c_str());
    }
  }
  out += "\n";
  return out;
}

std::string format_json(const LoadOptions& o, const LoadResult& r) {
  const LoadCounters& c = r.counters;
  std::string out = "{\n";
  out += printf_string("  \"scenario\": \"%s\",\n", scenario_name(o.scenario));
  out += "  \"url\": \"" + json_escape(o.url_text) + "\",\n";
  out += printf_string("  \"tls\": %s,\n", o.url.secure ? (o.tls.insecure ? "\"unverified\"" : "\"verified\"") : "false");
  out += printf_string("  \"connections\": %" PRIu64 ",\n  \"processes\": %" PRIu64 ",\n", o.connections,
                       o.processes);
  out += printf_string("  \"mode\": \"%s\",\n",
                       o.scenario == Scenario::kConnect ? (o.close_handshake ? "close-frame" : "tcp-close")
                       : o.scenario == Scenario::kIdle  ? "hold"
                       : o.rate != 0                    ? "open-loop"
                                                        : "closed-loop");
  if (o.scenario == Scenario::kChat) {
    out += printf_string("  \"rooms\": %" PRIu64 ",\n  \"rooms_per_user\": %" PRIu64 ",\n", o.rooms, o.rooms_per_user);
    out += printf_string("  \"idle_share\": %.3f,\n  \"reconnect_share\": %.3f,\n", o.idle_share, o.reconnect_share);
    out += printf_string("  \"users_joined\": %" PRIu64 ",\n", c.subscribers_measured);
    out += printf_string("  \"skipped\": %" PRIu64 ",\n  \"deliveries_exact\": %s,\n  \"deliveries_extra\": %" PRIu64
                         ",\n",
                         c.idle_skipped, r.deliveries_exact(o.connections) ? "true" : "false", r.extra_deliveries());
    out += printf_string("  \"reconnects_planned\": %" PRIu64 ",\n  \"reconnects\": %" PRIu64
                         ",\n  \"presence_events\": %" PRIu64 ",\n",
                         c.reconnects_planned, c.reconnects, c.presence_events);
    out += printf_string("  \"resends\": %" PRIu64 ",\n  \"duplicate_acks\": %" PRIu64 ",\n  \"never_acked\": %" PRIu64
                         ",\n  \"connections_lost\": %" PRIu64 ",\n",
                         c.resends, c.duplicate_acks, c.never_acked, c.connections_lost);
  }
  if (o.scenario == Scenario::kIdle) {
    out += printf_string("  \"ramp_s\": %.3f,\n  \"open\": %" PRIu64 ",\n  \"lost\": %" PRIu64
                         ",\n  \"reconnected\": %" PRIu64 ",\n  \"pings\": %" PRIu64 ",\n",
                         r.join_s, c.open_connections, c.lost, c.reconnects, c.pings);
  }
  if (o.scenario == Scenario::kBroadcast || o.scenario == Scenario::kChat) {
    if (o.scenario == Scenario::kBroadcast) {
      out += printf_string("  \"publishers\": %" PRIu64 ",\n  \"subscribers_joined\": %" PRIu64 ",\n", o.publishers,
                           c.subscribers_measured);
    }
    out += printf_string("  \"join_s\": %.3f,\n", r.join_s);
    out += printf_string("  \"published\": %" PRIu64 ",\n  \"acked\": %" PRIu64 ",\n  \"refused\": %" PRIu64 ",\n",
                         c.published, c.acked, c.refused);
    out += printf_string("  \"deliveries\": %" PRIu64 ",\n  \"deliveries_expected\": %" PRIu64
                         ",\n  \"deliveries_missing\": %" PRIu64 ",\n",
                         c.deliveries, r.expected_deliveries(), r.missing_deliveries());
    out += printf_string("  \"deliveries_per_s\": %.1f,\n  \"delivery_span_s\": %.3f,\n", deliveries_per_second(r),
                         r.delivery_span_s);
  }
  out += printf_string("  \"pipeline\": %" PRIu64 ",\n  \"rate\": %" PRIu64 ",\n  \"size\": %" PRIu64 ",\n",
                       o.pipeline, o.rate, o.size);
  out += printf_string("  \"binary\": %s,\n", o.binary ? "true" : "false");
  out += printf_string("  \"warmup_s\": %.3f,\n  \"measured_s\": %.3f,\n", o.warmup_s, r.measured_s);
  out += printf_string("  \"connects_started\": %" PRIu64 ",\n  \"upgrades\": %" PRIu64 ",\n",
                       c.connects_started, c.upgrades);
  out += printf_string("  \"upgrades_measured\": %" PRIu64 ",\n  \"cycles\": %" PRIu64 ",\n",
                       c.upgrades_measured, c.cycles_measured);
  out += printf_string("  \"handshakes_per_s\": %.1f,\n",
                       per_second(o.scenario == Scenario::kConnect ? c.cycles_measured : c.upgrades_measured,
                                  r.measured_s));
  out += printf_string("  \"closes_clean\": %" PRIu64 ",\n", c.closes_clean);
  out += printf_string("  \"messages_sent\": %" PRIu64 ",\n  \"messages_received\": %" PRIu64 ",\n", c.sent,
                       c.received);
  out += printf_string("  \"messages_per_s\": %.1f,\n", per_second(c.received, r.measured_s));
  out += printf_string("  \"payload_bytes_received\": %" PRIu64 ",\n", c.payload_bytes_received);
  out += printf_string("  \"messages_unsent\": %" PRIu64 ",\n", c.unsent);
  out += printf_string("  \"tls_handshakes\": %" PRIu64 ",\n  \"tls_resumed\": %" PRIu64 ",\n", c.tls_handshakes,
                       c.tls_resumed);
  out += printf_string("  \"server_cpu_s\": %.3f,\n  \"server_cpu_window_s\": %.3f,\n  \"server_cpu_percent\": %.1f,\n",
                       c.server_cpu_ns / 1e9, c.server_cpu_window_ns / 1e9, server_cpu_percent(c));
  out += "  \"server_cpu_each_s\": [";
  for (size_t i = 0; i < o.server_pids.size() && i < kMaxServerPids; ++i) {
    out += printf_string("%s%.3f", i == 0 ? "" : ", ", c.server_cpu_each_ns[i] / 1e9);
  }
  out += "],\n";
  out += "  \"latency_us\": " + latency_json(r.message_latency) + ",\n";
  out += "  \"connect_latency_us\": " + latency_json(r.connect_latency) + ",\n";
  out += "  \"ack_latency_us\": " + latency_json(r.ack_latency) + ",\n";
  out += printf_string("  \"errors\": {\"total\": %" PRIu64, c.error_total());
  for (size_t i = 0; i < kErrorKinds; ++i) {
    out += printf_string(", \"%s\": %" PRIu64, error_kind_name(static_cast<ErrorKind>(i)), c.errors[i]);
  }
  out += "}\n}\n";
  return out;
}

}  // namespace tools
