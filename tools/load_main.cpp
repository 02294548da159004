// parley-load: an epoll WebSocket load generator. The parent forks -j workers (each a
// single-threaded epoll loop with at most 19,000 sockets), prints one progress line a second from
// the counters they send over pipes, merges their final counters and histograms, and prints a
// summary (and JSON). Exit status: 0 without errors, 1 with errors, 2 on bad usage.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "tools/load_idle.h"
#include "tools/load_options.h"
#include "tools/load_report.h"
#include "tools/load_worker.h"

namespace {

using tools::LoadCounters;
using tools::LoadOptions;
using tools::LoadResult;

volatile std::sig_atomic_t g_stop = 0;

void on_stop_signal(int) { g_stop = 1; }

// Worker-to-parent records: a header, then `length` bytes.
enum class RecordType : uint32_t { kProgress = 1, kResult = 2 };
struct RecordHeader {
  RecordType type;
  uint32_t length;
};

bool write_all(int fd, const void* data, size_t length) {
  const auto* bytes = static_cast<const char*>(data);
  while (length != 0) {
    const ssize_t n = write(fd, bytes, length);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes += n;
    length -= static_cast<size_t>(n);
  }
  return true;
}

bool write_record(int fd, RecordType type, const void* data, size_t length) {
  const RecordHeader header{type, static_cast<uint32_t>(length)};
  return write_all(fd, &header, sizeof header) && write_all(fd, data, length);
}

[[noreturn]] void run_child(const LoadOptions& options, uint32_t index, uint64_t start_ns,
                            tools::BroadcastShared* shared, int pipe_fd) {
  g_stop = 0;
  prctl(PR_SET_PDEATHSIG, SIGTERM);  // never outlive the parent
  tools::WorkerPlan plan = tools::plan_worker(options, index, static_cast<uint32_t>(options.processes), start_ns);
  plan.shared = shared;
  auto progress = [pipe_fd](const LoadCounters& counters) {
    write_record(pipe_fd, RecordType::kProgress, &counters, sizeof counters);
  };
  const LoadResult result = options.scenario == tools::Scenario::kIdle
                                ? tools::run_idle_worker(options, plan, progress, &g_stop)
                                : tools::run_load_worker(options, plan, progress, &g_stop);
  std::string bytes;
  result.serialize(bytes);
  const bool ok = write_record(pipe_fd, RecordType::kResult, bytes.data(), bytes.size());
  close(pipe_fd);
  std::fflush(stderr);
  _exit(ok ? 0 : 3);
}

struct WorkerState {
  pid_t pid = -1;
  int fd = -1;
  std::string pending;  // bytes of an incomplete record
  LoadCounters latest;
  uint64_t reports = 0;
  bool have_result = false;
  LoadResult result;
};

// Consumes whole records from `worker.pending`.
void take_records(WorkerState& worker) {
  size_t at = 0;
  while (worker.pending.size() - at >= sizeof(RecordHeader)) {
    RecordHeader header;
    std::memcpy(&header, worker.pending.data() + at, sizeof header);
    if (worker.pending.size() - at - sizeof header < header.length) break;
    const auto* body = reinterpret_cast<const uint8_t*>(worker.pending.data() + at + sizeof header);
    if (header.type == RecordType::kProgress && header.length == sizeof(LoadCounters)) {
      std::memcpy(&worker.latest, body, sizeof(LoadCounters));
      ++worker.reports;
    } else if (header.type == RecordType::kResult) {
      worker.have_result = worker.result.deserialize(std::span<const uint8_t>(body, header.length));
      if (worker.have_result) worker.latest = worker.result.counters;
    }
    at += sizeof header + header.length;
  }
  worker.pending.erase(0, at);
}

void print_progress(const LoadOptions& options, uint64_t second, const LoadCounters& now, const LoadCounters& before) {
  const char* stage = static_cast<double>(second) <= options.warmup_s ? " warmup" : "";
  if (options.scenario == tools::Scenario::kChat) {
    std::printf("[%4" PRIu64 "s] users joined %" PRIu64 "/%" PRIu64 " | %" PRIu64 " sent/s | %" PRIu64
                " deliveries/s | reconnects %" PRIu64 " | errors %" PRIu64 "\n",
                second, now.subscribers_joined, options.connections, now.published - before.published,
                now.deliveries - before.deliveries, now.reconnects, now.error_total());
  } else if (options.scenario == tools::Scenario::kIdle) {
    std::printf("[%4" PRIu64 "s] open %" PRIu64 "/%" PRIu64 " | %" PRIu64 " pings/s | lost %" PRIu64
                " | reconnected %" PRIu64 " | errors %" PRIu64 "\n",
                second, now.open_connections, options.connections, now.pings - before.pings, now.lost,
                now.reconnects, now.error_total());
  } else if (options.scenario == tools::Scenario::kBroadcast) {
    std::printf("[%4" PRIu64 "s] subscribers joined %" PRIu64 "/%" PRIu64 " | %" PRIu64 " published/s | %" PRIu64
                " deliveries/s | errors %" PRIu64 "\n",
                second, now.subscribers_joined, options.connections, now.published - before.published,
                now.deliveries - before.deliveries, now.error_total());
  } else if (options.scenario == tools::Scenario::kEcho) {
    std::printf("[%4" PRIu64 "s%s] connections %" PRIu64 " open | %" PRIu64 " msg/s | %" PRIu64
                " upgrades/s | errors %" PRIu64 "\n",
                second, stage, now.open_connections, now.received_total - before.received_total,
                now.upgrades - before.upgrades, now.error_total());
  } else {
    std::printf("[%4" PRIu64 "s%s] %" PRIu64 " handshakes/s | %" PRIu64 " clean closes/s | open %" PRIu64
                " | errors %" PRIu64 "\n",
                second, stage, now.upgrades - before.upgrades, now.closes_clean - before.closes_clean,
                now.open_connections, now.error_total());
  }
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  LoadOptions options;
  if (const int rc = tools::parse_load_options(argc, argv, options); rc != tools::kOptionsOk) return rc;
  signal(SIGPIPE, SIG_IGN);
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);

  // A common start a little ahead, so every worker's schedule and window line up.
  const uint64_t start_ns = tools::monotonic_ns() + 20'000'000;
  tools::BroadcastShared* shared = nullptr;
  if (options.scenario == tools::Scenario::kBroadcast || options.scenario == tools::Scenario::kChat) {
    shared = tools::map_broadcast_shared();
    if (shared == nullptr) {
      std::fprintf(stderr, "parley-load: mmap: %s\n", std::strerror(errno));
      return 1;
    }
  }
  std::vector<WorkerState> workers(options.processes);
  std::fflush(stdout);
  std::fflush(stderr);
  for (uint32_t w = 0; w < options.processes; ++w) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
      std::fprintf(stderr, "parley-load: pipe: %s\n", std::strerror(errno));
      return 1;
    }
    const pid_t pid = fork();
    if (pid < 0) {
      std::fprintf(stderr, "parley-load: fork: %s\n", std::strerror(errno));
      return 1;
    }
    if (pid == 0) {
      close(fds[0]);
      for (uint32_t other = 0; other < w; ++other) close(workers[other].fd);
      run_child(options, w, start_ns, shared, fds[1]);
    }
    close(fds[1]);
    workers[w].pid = pid;
    workers[w].fd = fds[0];
  }

  bool forwarded = false;
  uint64_t printed = 0;
  LoadCounters previous;
  size_t open_pipes = workers.size();
  std::vector<pollfd> polls;
  while (open_pipes != 0) {
    if (g_stop && !forwarded) {
      forwarded = true;
      for (WorkerState& worker : workers) kill(worker.pid, SIGTERM);
    }
    polls.clear();
    for (WorkerState& worker : workers) {
      if (worker.fd >= 0) polls.push_back({worker.fd, POLLIN, 0});
    }
    const int n = poll(polls.data(), polls.size(), 1000);
    if (n < 0 && errno != EINTR) break;
    for (WorkerState& worker : workers) {
      if (worker.fd < 0) continue;
      const auto it = std::find_if(polls.begin(), polls.end(), [&](const pollfd& p) { return p.fd == worker.fd; });
      if (it == polls.end() || it->revents == 0) continue;
      char buffer[65536];
      const ssize_t got = read(worker.fd, buffer, sizeof buffer);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) {
        close(worker.fd);
        worker.fd = -1;
        --open_pipes;
        continue;
      }
      worker.pending.append(buffer, static_cast<size_t>(got));
      take_records(worker);
    }
    // One line per second, once every worker still running has reported that second.
    uint64_t reported = UINT64_MAX;
    for (const WorkerState& worker : workers) {
      if (!worker.have_result) reported = std::min(reported, worker.reports);
    }
    if (reported == UINT64_MAX) continue;
    while (printed < reported) {
      ++printed;
      LoadCounters total;
      for (const WorkerState& worker : workers) total.add(worker.latest);
      if (options.progress) print_progress(options, printed, total, previous);
      previous = total;
    }
  }

  bool all_results = true;
  LoadResult merged;
  for (WorkerState& worker : workers) {
    int status = 0;
    while (waitpid(worker.pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!worker.have_result) {
      all_results = false;
      std::fprintf(stderr, "parley-load: worker %d ended without a result (status %d)\n", static_cast<int>(worker.pid),
                   status);
      continue;
    }
    merged.merge(worker.result);
  }
  merged.chat = options.scenario == tools::Scenario::kChat;
  if (options.scenario == tools::Scenario::kBroadcast || merged.chat) merged.count_missing_deliveries(options.connections);

  const std::string summary = tools::format_summary(options, merged);
  std::fputs(summary.c_str(), options.json_path == "-" ? stderr : stdout);
  if (!options.json_path.empty()) {
    const std::string json = tools::format_json(options, merged);
    if (options.json_path == "-") {
      std::fputs(json.c_str(), stdout);
    } else {
      FILE* file = std::fopen(options.json_path.c_str(), "w");
      if (file == nullptr || std::fputs(json.c_str(), file) < 0 || std::fclose(file) != 0) {
        std::fprintf(stderr, "parley-load: cannot write %s: %s\n", options.json_path.c_str(), std::strerror(errno));
        return 1;
      }
    }
  }
  return all_results && merged.counters.error_total() == 0 ? 0 : 1;
}
