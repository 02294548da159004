#include "tools/load_idle.h"

#include <algorithm>
#include <cstdio>
#include <string>

#include "tools/process_cpu.h"

namespace tools {
namespace {

// The holder reports this often, so a stop signal and the warmup's end are seen within it.
constexpr double kPollInterval_s = 0.1;
constexpr uint64_t kProgressEvery_ms = 1000;
// --ramp 0 (as fast as possible): the holder still paces; its pending cap is the real limit.
constexpr uint32_t kUnpacedRate = 10'000'000;

}  // namespace

IdleOptions idle_options_for(const LoadOptions& options, const WorkerPlan& plan) {
  IdleOptions idle;
  idle.url_text = options.url_text;
  idle.url = options.url;
  idle.tls = options.tls;
  idle.connections = static_cast<uint32_t>(plan.connections);
  idle.rate = plan.ramp != 0 ? static_cast<uint32_t>(std::min<uint64_t>(plan.ramp, kUnpacedRate)) : kUnpacedRate;
  idle.duration_s = options.warmup_s + options.duration_s;
  idle.sources = static_cast<uint32_t>(options.sources);
  idle.report_interval_s = kPollInterval_s;
  idle.quiet = true;
  return idle;
}

LoadCounters idle_counters(const IdleCounters& at_start, const IdleCounters& at_end, uint64_t target) {
  LoadCounters c;
  c.connects_started = at_end.attempts;
  // Every upgraded connection is either still open or was lost.
  c.upgrades = at_end.open + at_end.lost;
  c.open_connections = at_end.open;
  c.lost = at_end.lost - at_start.lost;
  c.reconnects = at_end.reconnected - at_start.reconnected;
  c.pings = at_end.pings - at_start.pings;
  c.errors[static_cast<size_t>(ErrorKind::kConnect)] = at_end.failed;
  c.errors[static_cast<size_t>(ErrorKind::kClosed)] = at_end.lost;
  c.errors[static_cast<size_t>(ErrorKind::kTimeout)] = target > at_end.open ? target - at_end.open : 0;
  return c;
}

LoadResult run_idle_worker(const LoadOptions& options, const WorkerPlan& plan,
                           const std::function<void(const LoadCounters&)>& on_progress,
                           const volatile std::sig_atomic_t* stop) {
  LoadResult result;
  if (plan.connections == 0) return result;
  IdleHolder holder(idle_options_for(options, plan));
  std::string error;
  if (holder.start(error) != 0) {
    std::fprintf(stderr, "parley-load: idle: %s\n", error.c_str());
    ++result.counters.errors[static_cast<size_t>(ErrorKind::kSocket)];
    return result;
  }
  const bool sample_cpu = plan.index == 0 && !options.server_pids.empty();
  const size_t pids = options.server_pids.size();
  const auto warmup_ms = static_cast<uint64_t>(options.warmup_s * 1000);
  IdleCounters at_start;
  bool measuring = false;
  uint64_t hold_start_ms = 0;
  uint64_t measure_start_ms = 0;
  uint64_t next_progress_ms = kProgressEvery_ms;
  uint64_t cpu_start_ns[kMaxServerPids] = {};
  uint64_t cpu_wall_start_ns = 0;
  bool cpu_ok = false;
  const IdleReport final_report = holder.run([&](const IdleReport& report) {
    if (stop != nullptr && *stop != 0) holder.stop();
    if (report.holding && hold_start_ms == 0) hold_start_ms = std::max<uint64_t>(1, report.elapsed_ms);
    if (!measuring && hold_start_ms != 0 && report.elapsed_ms >= hold_start_ms + warmup_ms) {
      measuring = true;
      at_start = report.counters;
      measure_start_ms = report.elapsed_ms;
      if (sample_cpu) {
        cpu_ok = processes_cpu_ns(options.server_pids.data(), pids, cpu_start_ns);
        cpu_wall_start_ns = monotonic_ns();
      }
    }
    if (report.elapsed_ms >= next_progress_ms && on_progress) {
      next_progress_ms += kProgressEvery_ms;
      // Connections still ramping are no error yet: the progress line counts no timeouts.
      on_progress(idle_counters(IdleCounters{}, report.counters, 0));
    }
  });
  if (!measuring) {
    at_start = final_report.counters;
    measure_start_ms = final_report.elapsed_ms;
  }
  if (!holder.first_tls_error().empty()) {
    std::fprintf(stderr, "parley-load: first TLS handshake error: %s\n", holder.first_tls_error().c_str());
  }
  result.counters = idle_counters(at_start, final_report.counters, plan.connections);
  result.measured_s = static_cast<double>(final_report.elapsed_ms - measure_start_ms) / 1000;
  result.join_s = static_cast<double>(final_report.ramp_ms) / 1000;
  uint64_t cpu_end_ns[kMaxServerPids] = {};
  if (sample_cpu && !cpu_ok) {
    std::fprintf(stderr, "parley-load: cannot read /proc/PID/stat of every --server-pid: no server CPU figures\n");
  } else if (cpu_ok && processes_cpu_ns(options.server_pids.data(), pids, cpu_end_ns)) {
    record_server_cpu(result.counters, pids, cpu_start_ns, cpu_end_ns, monotonic_ns() - cpu_wall_start_ns);
  }
  return result;
}

}  // namespace tools
