#pragma once
// Tuning constants shared by the WsServer translation units (not part of the public API).
#include <cstddef>

#include "reactor/event_loop.h"

namespace protocol::ws_internal {

inline constexpr size_t kCorkSize = 512 * 1024;
// Payloads at least this large skip the cork and go out with writev straight from their buffer.
inline constexpr size_t kCorkBypass = 16 * 1024;
// Per readiness event, read at most this much before yielding to other connections.
inline constexpr size_t kReadBudget = 4 * reactor::EventLoop::kReceiveBufferSize;
inline constexpr int kAcceptBudget = 256;
inline constexpr size_t kMaxSpareExtras = 256;
inline constexpr size_t kMaxSpareQueues = 4096;
inline constexpr size_t kMaxPooledSlices = 256;
// A connection refused at a limit gets its 503 and this long to go away.
inline constexpr uint32_t kRejectLingerMs = 1000;
// A buffered unfinished message larger than this is freed rather than kept for reuse.
inline constexpr size_t kKeepPendingCapacity = 64 * 1024;

}  // namespace protocol::ws_internal
