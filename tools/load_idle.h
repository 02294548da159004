#pragma once
// parley-load's idle scenario: one worker's share of the connections held by parley-idle's engine
// (tools/idle_holder.h), its options mapped from parley-load's, its counters reported in
// parley-load's terms (tools/load_report.h).
#include <csignal>
#include <functional>

#include "tools/idle_holder.h"
#include "tools/load_options.h"
#include "tools/load_report.h"
#include "tools/load_worker.h"

namespace tools {

// The holder's options for worker `plan`: its connections; --ramp (split) as connection attempts
// per second, first ones and reconnects (0 = no pacing beyond the holder's pending cap); the hold
// is --warmup + --duration; sources spread from 127.0.0.2; no ramp timeout beyond the holder's.
IdleOptions idle_options_for(const LoadOptions& options, const WorkerPlan& plan);

// The holder's counters as parley-load's: open and pings answered, lost and reconnected over
// the measurement (`at_end` minus `at_start`, the snapshot after the warmup); failed attempts
// are connect errors, lost connections closed errors, connections not open at the end timeouts.
LoadCounters idle_counters(const IdleCounters& at_start, const IdleCounters& at_end, uint64_t target);

// Runs worker `plan`'s holder until its hold ends (or `*stop` turns non-zero); calls
// on_progress about once a second. Failure to start is reported on stderr and counted as a
// socket error.
LoadResult run_idle_worker(const LoadOptions& options, const WorkerPlan& plan,
                           const std::function<void(const LoadCounters&)>& on_progress,
                           const volatile std::sig_atomic_t* stop);

}  // namespace tools
