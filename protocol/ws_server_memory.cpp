// WsServer, memory: the server-wide budget for write-queue memory (WsServerConfig::max_memory)
// and giving freed heap back to the kernel after a wave (issue 13). The budget sheds load
// before the kernel's OOM killer would: the connections pinning the most are closed first,
// further queueing is refused, and new connections get 503 until the total is back under it.
#include <sys/socket.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "protocol/close_code.h"
#include "protocol/ws_connection.h"
#include "protocol/ws_server.h"
#include "reactor/memory_budget.h"

namespace protocol {

namespace {

// Shedding stops at this share of the budget, so one shed buys room for a while instead of
// running again on the next message.
constexpr size_t kShedTargetNumerator = 3;
constexpr size_t kShedTargetDenominator = 4;
// A heap trim is worth it once queue memory fell this far below its peak, or this many
// connections went away (their chat state and buffers are not in the account).
constexpr size_t kTrimAfterFreedBytes = 4 << 20;
constexpr uint64_t kTrimAfterClosedConnections = 512;
// Trims wait for the burst of frees to settle and are at least this far apart: malloc_trim
// walks the whole heap (cost: see the heap_trim_us metric).
constexpr uint32_t kTrimDelayMs = 200;
constexpr uint64_t kMinTrimIntervalMs = 1000;

}  // namespace

void WsServer::charge_extra(ConnectionExtra& extra) {
  // Input buffered for an incomplete request head or message pins heap like a write queue
  // does: a peer trickling a 16 MiB message holds 16 MiB (issue 13: the count must be exact).
  const size_t now = sizeof(ConnectionExtra) + extra.pending.capacity() + extra.message.capacity();
  if (now >= extra.charged) {
    memory_.add(now - extra.charged);
    stats_.extra_memory += now - extra.charged;
  } else {
    memory_.remove(extra.charged - now);
    stats_.extra_memory -= extra.charged - now;
  }
  extra.charged = now;
}

void WsServer::note_queue(const Connection& c) {
  size_t fd = static_cast<size_t>(fd_of(c));
  if (fd > highest_queued_fd_) highest_queued_fd_ = fd;
}

bool WsServer::memory_refuses(Connection& c) {
  shed_memory();
  if (c.state == ConnectionState::kClosed) return true;  // it was one of the largest
  // A connection with nothing queued writes straight to the kernel and pins nothing here.
  if (c.out == nullptr || !memory_exhausted()) return false;
  ++stats_.memory_dropped;
  return true;
}

void WsServer::shed_memory() {
  // One scan per iteration at most: a broadcast over budget must not scan once per member.
  if (shed_iteration_ == loop_.iterations()) return;
  shed_iteration_ = loop_.iterations();
  std::vector<std::pair<size_t, Connection*>> queued;
  size_t end = std::min(highest_queued_fd_ + 1, capacity_);
  for (size_t fd = 0; fd < end; ++fd) {
    Connection& c = table_[fd];
    if (c.out == nullptr || c.state == ConnectionState::kFree || c.state == ConnectionState::kClosed) continue;
    queued.emplace_back(c.out->memory(), &c);
  }
  std::sort(queued.begin(), queued.end(), [](const auto& x, const auto& y) { return x.first > y.first; });
  const size_t target = config_.max_memory / kShedTargetDenominator * kShedTargetNumerator;
  for (const auto& [memory, c] : queued) {
    if (memory_.bytes() <= target) break;
    // Closed at once rather than after its queue (the 1008 close frame would wait behind the
    // very bytes the peer is not reading): the queue is freed now, the application hears 1008.
    // SO_LINGER 0 makes the close a reset: the kernel drops the socket's unsent bytes too
    // instead of keeping them (and the FIN behind them) for a peer that never reads.
    ++stats_.memory_shed_closed;
    linger abort{1, 0};
    setsockopt(fd_of(*c), SOL_SOCKET, SO_LINGER, &abort, sizeof abort);
    c->out->clear();
    release_queue(c->out);
    c->out = nullptr;
    destroy(*c, kClosePolicyViolation);
  }
  stats_.memory_accounted = memory_.bytes();
}

void WsServer::tend_memory() {
  size_t accounted = memory_.bytes();
  stats_.memory_accounted = accounted;
  if (memory_exhausted()) shed_memory();
  memory_peak_ = std::max(memory_peak_, accounted);
  connections_peak_ = std::max(connections_peak_, stats_.connections);
  bool freed = memory_peak_ - accounted >= kTrimAfterFreedBytes ||
               connections_peak_ - stats_.connections >= kTrimAfterClosedConnections;
  if (!freed || trim_timer_.armed()) return;
  uint64_t since = loop_.now_ms() - last_trim_ms_;
  uint64_t delay = std::max<uint64_t>(kTrimDelayMs, since >= kMinTrimIntervalMs ? 0 : kMinTrimIntervalMs - since);
  memory_wheel_.schedule(&trim_timer_, static_cast<uint32_t>(delay));
}

void WsServer::on_trim_timer(void* context, reactor::TimerNode*) { static_cast<WsServer*>(context)->trim_memory(); }

void WsServer::trim_memory() {
  // The pools were sized for the wave that just ended: empty them so the heap can shrink.
  for (ConnectionExtra* extra : spare_extras_) delete extra;
  spare_extras_.clear();
  spare_extras_.shrink_to_fit();
  for (reactor::WriteQueue* queue : spare_queues_) delete queue;
  spare_queues_.clear();
  spare_queues_.shrink_to_fit();
  spare_queue_memory_ = 0;
  ++stats_.heap_trims;
  stats_.heap_trim_us += reactor::return_free_heap();
  last_trim_ms_ = loop_.now_ms();
  memory_peak_ = memory_.bytes();
  connections_peak_ = stats_.connections;
  stats_.memory_accounted = memory_.bytes();
}

}  // namespace protocol
