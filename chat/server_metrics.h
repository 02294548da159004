#pragma once
// The /metrics endpoint: server counters in the Prometheus text exposition format.
#include <cstdint>
#include <string>

#include "protocol/ws_server.h"

namespace chat {

// Renders `stats` plus the process's resident memory as Prometheus text.
std::string render_metrics(const protocol::WsServerStats& stats, uint64_t loop_iterations);

// Resident set size of this process in bytes (from /proc/self/statm), 0 if unknown.
uint64_t resident_bytes();

}  // namespace chat
