#pragma once
// What a parley-load run measured: counters, error kinds and latency histograms; how workers
// ship them to the parent (binary, over a pipe), how they merge, and how they are reported
// (a human summary and JSON).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "tools/latency_histogram.h"
#include "tools/load_options.h"

namespace tools {

enum class ErrorKind : uint8_t {
  kSocket,      // socket()/bind() failed locally (EMFILE, EADDRNOTAVAIL, ...)
  kConnect,     // the TCP connect failed (refused, reset, unreachable)
  kHandshake,   // the server's answer to the upgrade was not a valid 101 (RFC 6455 4.1)
  kTimeout,     // no upgrade, no answer to a close, or no end of stream in time
  kProtocol,    // the server sent a malformed frame or an unexpected one
  kMismatch,    // an echo came back with another opcode, sequence number or payload
  kClosed,      // the server closed or reset an upgraded connection we did not close
  kUnanswered,  // messages sent during the measurement that never got their echo (broadcast, chat: ack)
  kChat,        // broadcast, chat: the chat server answered with an error message (name_taken, ...)
  kMissing,     // broadcast, chat: deliveries expected (from the acks) that never came
  kExtra,       // chat: deliveries beyond what the acks allow (a message delivered twice, or unacked)
  kCount,
};

// "socket", "connect", ... as used in the summary and the JSON keys.
const char* error_kind_name(ErrorKind kind);

// Plain counters. "Measured" ones cover the measurement window only (messages whose intended
// send time, or connections whose connect started, falls after the warmup and before the end);
// the others are for the progress line.
struct LoadCounters {
  uint64_t connects_started = 0;
  uint64_t upgrades = 0;               // completed handshakes, all time
  uint64_t upgrades_measured = 0;      // completed handshakes that started in the window
  uint64_t cycles_measured = 0;        // connect scenario: connect-upgrade-close cycles finished
  uint64_t closes_clean = 0;           // close handshakes completed (close frame both ways)
  uint64_t open_connections = 0;       // gauge: upgraded and not yet closed
  uint64_t sent_total = 0;             // echo messages, all time
  uint64_t received_total = 0;
  uint64_t sent = 0;                   // echo messages sent in the window
  uint64_t received = 0;               // their echoes
  uint64_t payload_bytes_received = 0; // of measured echoes
  uint64_t unsent = 0;                 // open loop: due in the window, held back by the in-flight cap
  uint64_t subscribers_joined = 0;     // broadcast: subscribers (chat: users) whose joins were answered
  uint64_t subscribers_measured = 0;   // broadcast: subscribers (chat: users) joined when publishing began
  uint64_t published = 0;              // broadcast, chat: msg sent (all in the window)
  uint64_t acked = 0;                  // broadcast, chat: acks for them
  uint64_t refused = 0;                // broadcast, chat: msg the server answered with an error instead
  uint64_t deliveries = 0;             // broadcast, chat: stamped msg events received
  uint64_t deliveries_expected = 0;    // chat: for each ack, the members of its room but the sender
  uint64_t idle_skipped = 0;           // chat: messages due while their user was idle or away, not sent
  uint64_t presence_events = 0;        // chat: joined/left events received
  uint64_t reconnects_planned = 0;     // chat: users that close and come back once during the run
  uint64_t reconnects = 0;             // chat: of those, back and joined again; idle: lost ones replaced
  uint64_t resends = 0;                // chat: unacked msg sent again (same id) after a reconnect
  uint64_t duplicate_acks = 0;         // chat: acks of resends the server had stored already (dedup)
  uint64_t never_acked = 0;            // chat: msg still unacked at the end (kept for resend, never answered)
  uint64_t connections_lost = 0;       // chat: user connections lost unplanned (then reconnected)
  uint64_t lost = 0;                   // idle: upgraded connections lost while held (after the warmup)
  uint64_t pings = 0;                  // idle: server pings answered (after the warmup)
  uint64_t tls_handshakes = 0;         // wss: TLS handshakes finished
  uint64_t tls_resumed = 0;            // wss: of those, resumed sessions (abbreviated handshakes)
  uint64_t server_cpu_ns = 0;          // --server-pid: the server's user + system CPU time ...
  uint64_t server_cpu_window_ns = 0;   // ... over this much wall time (the measurement)
  uint64_t server_cpu_each_ns[kMaxServerPids] = {};  // the same per --server-pid process, in order
  uint64_t errors[static_cast<size_t>(ErrorKind::kCount)] = {};

  uint64_t error_total() const;
  void add(const LoadCounters& other);
};

// Stores in `c` the CPU time each of `count` --server-pid processes used from `begin_ns` to
// `end_ns` (its /proc figures at the two ends), their sum, and the wall time between them.
void record_server_cpu(LoadCounters& c, size_t count, const uint64_t* begin_ns, const uint64_t* end_ns,
                       uint64_t window_ns);

struct LoadResult {
  LoadCounters counters;
  LatencyHistogram message_latency;  // ns, echo round trip from the intended send time
  LatencyHistogram connect_latency;  // ns, connect() to a verified 101 (echo: every connection)
  // ns, broadcast and chat: a msg's send (its stamp) to its ack, i.e. to the commit of its group
  // with a store (issue 14); msgs sent in the measurement window only.
  LatencyHistogram ack_latency;
  double measured_s = 0;             // length of the measurement window
  double join_s = 0;                 // broadcast, chat: start to publishing (all joined); idle: the ramp
  double delivery_span_s = 0;        // broadcast, chat: first publish to the last delivery received
  bool chat = false;                 // a chat run: expected_deliveries() comes from the acks

  // Adds another worker's result (counters, histograms; the windows and spans are the longest).
  void merge(const LoadResult& other);
  // Broadcast: every subscriber joined when publishing began should get every message the server
  // accepted (every msg not refused). Chat: the sum over the acks (see LoadCounters).
  uint64_t expected_deliveries() const {
    if (chat) return counters.deliveries_expected;
    return (counters.published - std::min(counters.refused, counters.published)) * counters.subscribers_measured;
  }
  uint64_t missing_deliveries() const {
    return counters.deliveries < expected_deliveries() ? expected_deliveries() - counters.deliveries : 0;
  }
  uint64_t extra_deliveries() const {
    return counters.deliveries > expected_deliveries() ? counters.deliveries - expected_deliveries() : 0;
  }
  // Chat: the expectation is exact only when every user joined before the talking began and
  // nobody reconnected (a user away misses messages nobody here can name); else an upper bound.
  bool deliveries_exact(uint64_t users) const {
    return !chat || (counters.reconnects_planned == 0 && counters.connections_lost == 0 &&
                     counters.subscribers_measured == users);
  }
  // Broadcast, chat, once every worker's result is merged: counts the missing deliveries (when
  // the expectation is exact) and, in chat, those beyond it as errors.
  void count_missing_deliveries(uint64_t users = 0);
  // Binary form for the worker-to-parent pipe (same binary on both ends).
  void serialize(std::string& out) const;
  // Reads what serialize() wrote; false when malformed.
  bool deserialize(std::span<const uint8_t> in);
};

// The multi-line human summary.
std::string format_summary(const LoadOptions& options, const LoadResult& result);
// The same as a JSON object (counts, rates, latency in microseconds, errors by kind).
std::string format_json(const LoadOptions& options, const LoadResult& result);

}  // namespace tools
