#include "chat/server_metrics.h"

#include <unistd.h>

#include <cstdio>

#include "chat/prometheus_text.h"

namespace chat {

uint64_t resident_bytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long long size = 0;
  unsigned long long resident = 0;
  int n = std::fscanf(f, "%llu %llu", &size, &resident);
  std::fclose(f);
  return n == 2 ? resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE)) : 0;
}

std::string render_metrics(const protocol::WsServerStats& stats, uint64_t loop_iterations) {
  std::string out;
  auto metric = [&out](const char* name, const char* type, const char* help, uint64_t value) {
    append_metric(out, name, type, help, value);
  };
  metric("parley_connections", "gauge", "Open TCP connections in any state.", stats.connections);
  metric("parley_accepted_total", "counter", "TCP connections accepted.", stats.accepted);
  metric("parley_accept_rejected_total", "counter", "Connections dropped for lack of file descriptors.",
         stats.accept_rejected);
  metric("parley_upgrades_total", "counter", "Successful WebSocket upgrades.", stats.upgrades);
  metric("parley_http_responses_total", "counter", "Plain HTTP responses sent.", stats.http_responses);
  metric("parley_messages_received_total", "counter", "WebSocket data messages received.", stats.messages_in);
  metric("parley_messages_sent_total", "counter", "WebSocket data messages sent.", stats.messages_out);
  metric("parley_bytes_received_total", "counter", "Bytes read from sockets.", stats.bytes_in);
  metric("parley_bytes_sent_total", "counter", "Bytes written to sockets.", stats.bytes_out);
  metric("parley_protocol_errors_total", "counter", "Connections failed for protocol errors.", stats.protocol_errors);
  metric("parley_timeouts_total", "counter", "Handshake and close timeouts.", stats.timeouts);
  metric("parley_pings_sent_total", "counter", "Heartbeat pings sent.", stats.pings_sent);
  metric("parley_pongs_received_total", "counter", "Pongs received.", stats.pongs_received);
  metric("parley_dead_peers_total", "counter", "Connections closed for a missed pong.", stats.dead_peers);
  metric("parley_pong_deadlines_deferred_total", "counter",
         "Pong deadlines extended because the server was behind on reading.", stats.pong_deadlines_deferred);
  metric("parley_pings_deferred_total", "counter", "Pings scheduled late by the heartbeat budget.",
         stats.pings_deferred);
  metric("parley_ping_interval_effective_ms", "gauge", "Ping period in use (stretched by the heartbeat budget).",
         stats.ping_interval_effective_ms);
  metric("parley_idle_closed_total", "counter", "Connections closed by the idle timeout.", stats.idle_closed);
  metric("parley_slow_consumers_closed_total", "counter", "Connections closed with 1008 at the write-queue cap.",
         stats.slow_consumers_closed);
  metric("parley_messages_dropped_total", "counter", "Messages dropped at the write-queue cap (drop policy).",
         stats.messages_dropped);
  metric("parley_busy_rejected_total", "counter", "Upgrades refused with 503 at a connection limit.",
         stats.busy_rejected);
  metric("parley_memory_accounted_bytes", "gauge",
         "Heap bytes pinned by write queues (each shared frame once), as --max-memory counts them.",
         stats.memory_accounted);
  metric("parley_memory_budget_bytes", "gauge", "The --max-memory budget, 0 = off.", stats.memory_budget);
  metric("parley_memory_shed_closed_total", "counter",
         "Connections closed with 1008 (largest queues first) to get back under --max-memory.",
         stats.memory_shed_closed);
  metric("parley_memory_dropped_total", "counter", "Messages not queued while over --max-memory.",
         stats.memory_dropped);
  metric("parley_memory_rejected_total", "counter", "Connections refused with 503 near (7/8 of) --max-memory.",
         stats.memory_rejected);
  metric("parley_heap_trims_total", "counter", "Times freed heap memory was given back to the kernel.",
         stats.heap_trims);
  metric("parley_heap_trim_microseconds_total", "counter", "Time spent giving heap memory back.",
         stats.heap_trim_us);
  metric("parley_handshakes", "gauge", "Incomplete handshakes (request head not yet complete).", stats.handshakes);
  metric("parley_handshakes_evicted_total", "counter",
         "Oldest incomplete handshakes closed to make room (fds, --max-handshakes[-per-ip], --max-connections).",
         stats.handshakes_evicted);
  metric("parley_bad_requests_total", "counter", "Request heads refused with 400.", stats.bad_requests);
  metric("parley_admission_paced_total", "counter", "Times accept pacing started (the server fell behind).",
         stats.admission_paced);
  metric("parley_accept_paced_total", "counter", "Accept rounds stopped at the pace, leaving connections queued.",
         stats.accept_paced);
  metric("parley_accept_pace_per_second", "gauge", "Accepts per second allowed while pacing, 0 = not pacing.",
         stats.accept_pace);
  metric("parley_memory_input_bytes", "gauge", "Bytes buffered for incomplete request heads and messages.",
         stats.extra_memory);
  metric("parley_loop_iterations_total", "counter", "Event loop iterations.", loop_iterations);
  metric("parley_resident_bytes", "gauge", "Resident set size of the process.", resident_bytes());
  return out;
}

}  // namespace chat
