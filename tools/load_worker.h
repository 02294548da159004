#pragma once
// One parley-load worker process: a single-threaded, edge-triggered epoll loop driving its share
// of the connections through a scenario (echo, connect or broadcast) for a bounded time.
#include <atomic>
#include <csignal>
#include <cstdint>
#include <functional>

#include "tools/load_options.h"
#include "tools/load_report.h"

namespace tools {

// CLOCK_MONOTONIC in nanoseconds; the same clock in every worker, so they share a start time.
uint64_t monotonic_ns();

// What the workers of a broadcast or chat run share, in memory mapped before fork(): the join
// barrier and the publishing window. Lock-free atomics, so they work across processes.
struct BroadcastShared {
  std::atomic<uint64_t> joined{0};            // subscribers (chat: users) whose joins were answered
  std::atomic<uint64_t> lost{0};              // subscribers (chat: users) that closed or failed before joining
  std::atomic<uint64_t> publish_start_ns{0};  // set once by worker 0: the window opens (0 = not yet)
  std::atomic<uint64_t> published{0};         // msg the server accepted (worker 0), stored before ...
  std::atomic<uint64_t> publish_end_ns{0};    // ... this: publishing is over (0 = not yet)
  // Chat: every worker sends and receives, so the drain needs everyone's figures.
  std::atomic<uint64_t> expected{0};          // deliveries the acks imply, added by each worker ...
  std::atomic<uint64_t> answered_workers{0};  // ... before it counts itself here (all answers in)
  std::atomic<uint64_t> deliveries{0};        // deliveries received so far, every worker
};
static_assert(std::atomic<uint64_t>::is_always_lock_free, "BroadcastShared lives in shared memory");

// Maps a zeroed BroadcastShared shared with every process forked afterwards; nullptr when mmap
// fails (errno says why). Never unmapped: it lives as long as the run.
BroadcastShared* map_broadcast_shared();

// One worker's share of a run.
struct WorkerPlan {
  uint32_t index = 0;        // 0-based, < count
  uint32_t count = 1;        // -j
  uint64_t connections = 0;  // this worker's connections (echo) or connectors (connect)
  uint64_t rate = 0;         // this worker's messages/s (0 = closed loop)
  uint64_t ramp = 0;         // this worker's new connections/s (0 = as fast as possible)
  uint64_t start_ns = 0;     // when the run starts, on monotonic_ns()'s clock
  uint64_t publishers = 0;   // broadcast: publishing connections, slots [0, publishers) (worker 0 only)
  uint64_t subscribers = 0;  // broadcast: subscribing connections, the slots after the publishers
  uint64_t first_user = 0;   // chat: global index of this worker's first user (slot 0)
  BroadcastShared* shared = nullptr;  // broadcast: required; owned by the parent
};

// Splits `options` evenly across `count` workers (remainders to the first ones). Broadcast:
// subscribers are split so; the publishers and the whole rate go to worker 0. Chat: users and
// rate are split; first_user numbers the users across workers. `shared` is left for the caller.
WorkerPlan plan_worker(const LoadOptions& options, uint32_t index, uint32_t count, uint64_t start_ns);

// Runs a worker until its run ends: warmup, measurement, then draining replies still in flight
// and closing (each bounded in time). Calls on_progress with the counters about once a second.
// `*stop` becoming non-zero (a signal handler) ends the measurement early. Never throws; failures
// to set up (epoll) are reported on stderr and counted as socket errors.
LoadResult run_load_worker(const LoadOptions& options, const WorkerPlan& plan,
                           const std::function<void(const LoadCounters&)>& on_progress,
                           const volatile std::sig_atomic_t* stop);

}  // namespace tools
