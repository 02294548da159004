#pragma once
// One parley-load worker process: a single-threaded, edge-triggered epoll loop driving its share
// of the connections through a scenario (echo or connect) for a bounded time.
#include <csignal>
#include <cstdint>
#include <functional>

#include "tools/load_options.h"
#include "tools/load_report.h"

namespace tools {

// CLOCK_MONOTONIC in nanoseconds; the same clock in every worker, so they share a start time.
uint64_t monotonic_ns();

// One worker's share of a run.
struct WorkerPlan {
  uint32_t index = 0;        // 0-based, < count
  uint32_t count = 1;        // -j
  uint64_t connections = 0;  // this worker's connections (echo) or connectors (connect)
  uint64_t rate = 0;         // this worker's messages/s (0 = closed loop)
  uint64_t ramp = 0;         // this worker's new connections/s (0 = as fast as possible)
  uint64_t start_ns = 0;     // when the run starts, on monotonic_ns()'s clock
};

// Splits `options` evenly across `count` workers (remainders to the first ones).
WorkerPlan plan_worker(const LoadOptions& options, uint32_t index, uint32_t count, uint64_t start_ns);

// Runs a worker until its run ends: warmup, measurement, then draining replies still in flight
// and closing (each bounded in time). Calls on_progress with the counters about once a second.
// `*stop` becoming non-zero (a signal handler) ends the measurement early. Never throws; failures
// to set up (epoll) are reported on stderr and counted as socket errors.
LoadResult run_load_worker(const LoadOptions& options, const WorkerPlan& plan,
                           const std::function<void(const LoadCounters&)>& on_progress,
                           const volatile std::sig_atomic_t* stop);

}  // namespace tools
