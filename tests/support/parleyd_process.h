#pragma once
// Runs parleyd as a child process for integration tests: starts it on a free port, waits for its
// "listening on HOST:PORT" line, and always stops and reaps it (destructor), so a failing test
// never leaks a server. Test support only.
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace parley_test {

// The directory holding parleyd and the tools: $PARLEY_BUILD_DIR, or "build" when unset or empty.
std::string build_dir();

// The value of the unlabelled series `name` in the /metrics of the server on 127.0.0.1:`port`,
// or -1 when the request fails or the series is absent.
long parleyd_metric(uint16_t port, const std::string& name);

// Resource limits set in the child before exec; 0 leaves the inherited value.
struct ProcessLimits {
  uint64_t nofile_soft = 0;  // RLIMIT_NOFILE soft limit
  uint64_t nofile_hard = 0;  // RLIMIT_NOFILE hard limit (at most the test's own hard limit)
};

class ParleydProcess {
 public:
  static constexpr std::chrono::milliseconds kDefaultReadyTimeout{10000};
  static constexpr std::chrono::milliseconds kDefaultStopGrace{3000};

  // Starts `<build_dir()>/parleyd --listen 127.0.0.1:0 --ping-interval 0 --store none
  // --resume-window 0 <extra_args...>` (no default --listen, --ping-interval, --store or
  // --resume-window when extra_args has one) and waits up to `ready_timeout` for the listening line. Never throws:
  // on failure ok() is false, error() says why, and the child is already stopped.
  explicit ParleydProcess(std::vector<std::string> extra_args = {},
                          std::chrono::milliseconds ready_timeout = kDefaultReadyTimeout);
  // The same, with `limits` applied to the child (e.g. a small fd limit, to run out of fds).
  ParleydProcess(std::vector<std::string> extra_args, const ProcessLimits& limits,
                 std::chrono::milliseconds ready_timeout = kDefaultReadyTimeout);
  // Stops the server as stop() does.
  ~ParleydProcess();
  ParleydProcess(const ParleydProcess&) = delete;
  ParleydProcess& operator=(const ParleydProcess&) = delete;

  // True when the server printed its listening line and no start-up error occurred.
  bool ok() const { return port_ != 0 && error_.empty(); }
  // Why start-up failed (binary missing, early exit with its stderr, timeout); empty when ok().
  const std::string& error() const { return error_; }
  // The TCP port parleyd listens on; 0 when not ok().
  uint16_t port() const { return port_; }
  // The child's pid, or -1 when it was never started.
  pid_t pid() const { return pid_; }

  // True while the child has not exited. Reaps it (and records its status) once it has.
  bool running();
  // Sends SIGTERM, waits up to `grace`, then SIGKILLs, and reaps the child. Returns the raw
  // waitpid status, or -1 when no child was started. Idempotent.
  int stop(std::chrono::milliseconds grace = kDefaultStopGrace);
  // "exited with status N" / "killed by signal N" / "running", for failure messages.
  std::string status_text();

  // Everything the child wrote to stdout / stderr so far (kept in unlinked temporary files, so
  // the child can never block on a full pipe).
  std::string stdout_text() const;
  std::string stderr_text() const;

 private:
  void start(const std::vector<std::string>& extra_args, const ProcessLimits& limits,
             std::chrono::milliseconds ready_timeout);
  bool try_parse_port();

  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  int stderr_fd_ = -1;
  uint16_t port_ = 0;
  bool reaped_ = false;
  int wait_status_ = 0;
  std::string error_;
};

}  // namespace parley_test
