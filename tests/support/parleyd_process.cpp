#include "tests/support/parleyd_process.h"

#include "tests/support/ws_test_client.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <thread>
#include <utility>

namespace parley_test {
namespace {

constexpr std::chrono::milliseconds kPollInterval{5};
constexpr std::string_view kListeningPrefix = "listening on ";

// An unlinked temporary file: nothing is left on disk even if the test binary crashes, and the
// child's writes never block the way a pipe nobody drains would.
int open_anonymous_file(const char* tag) {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/parleyd-" + tag + "-XXXXXX";
  int fd = mkostemp(pattern.data(), O_CLOEXEC);
  if (fd >= 0) unlink(pattern.c_str());
  return fd;
}

std::string read_whole(int fd) {
  std::string out;
  if (fd < 0) return out;
  char buf[65536];
  off_t offset = 0;
  for (;;) {
    // pread: the child shares this file description, so its offset must not move under it.
    ssize_t n = pread(fd, buf, sizeof buf, offset);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
    offset += n;
  }
  return out;
}

std::string tail(const std::string& text, size_t max) {
  return text.size() <= max ? text : "..." + text.substr(text.size() - max);
}

}  // namespace

std::string build_dir() {
  const char* dir = std::getenv("PARLEY_BUILD_DIR");
  return dir && *dir ? dir : "build";
}

long parleyd_metric(uint16_t port, const std::string& name) {
  HttpResponse r = http_request("127.0.0.1", port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  size_t at = r.body.find("\n" + name + " ");
  if (at == std::string::npos) return -1;
  return std::stol(r.body.substr(at + name.size() + 2));
}

ParleydProcess::ParleydProcess(std::vector<std::string> extra_args,
                               std::chrono::milliseconds ready_timeout)
    : ParleydProcess(std::move(extra_args), ProcessLimits{}, ready_timeout) {}

ParleydProcess::ParleydProcess(std::vector<std::string> extra_args, const ProcessLimits& limits,
                               std::chrono::milliseconds ready_timeout) {
  start(extra_args, limits, ready_timeout);
  if (!error_.empty()) stop();
}

ParleydProcess::~ParleydProcess() {
  stop();
  if (stdout_fd_ >= 0) close(stdout_fd_);
  if (stderr_fd_ >= 0) close(stderr_fd_);
}

void ParleydProcess::start(const std::vector<std::string>& extra_args, const ProcessLimits& limits,
                           std::chrono::milliseconds ready_timeout) {
  const std::string binary = build_dir() + "/parleyd";
  if (access(binary.c_str(), X_OK) != 0) {
    error_ = binary + " is not an executable (" + std::strerror(errno) +
             "); build it with make or set PARLEY_BUILD_DIR";
    return;
  }
  stdout_fd_ = open_anonymous_file("stdout");
  stderr_fd_ = open_anonymous_file("stderr");
  int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (stdout_fd_ < 0 || stderr_fd_ < 0 || null_fd < 0) {
    error_ = std::string("cannot create output files: ") + std::strerror(errno);
    if (null_fd >= 0) close(null_fd);
    return;
  }

  // Everything the child needs is built before fork: between fork and exec only
  // async-signal-safe calls are allowed (the test binary may have threads).
  std::vector<std::string> args{binary};
  bool has_listen = false;
  bool has_ping_interval = false;
  bool has_store = false;
  bool has_resume_window = false;
  for (const std::string& arg : extra_args) {
    has_listen |= arg == "--listen" || arg.rfind("--listen=", 0) == 0;
    has_ping_interval |= arg == "--ping-interval" || arg.rfind("--ping-interval=", 0) == 0;
    has_store |= arg == "--store";
    has_resume_window |= arg == "--resume-window";
  }
  if (!has_resume_window) {
    // Session resume (issue 14) holds a dropped user for 2 minutes by default: tests that expect
    // `left` at a disconnect, or take a name again at once, ask for resume explicitly.
    args.push_back("--resume-window");
    args.push_back("0");
  }
  if (!has_store) {
    // parleyd's default store is parley.db in the working directory: tests run from the repo
    // root, many servers at once, and must not share (or leave behind) one file.
    args.push_back("--store");
    args.push_back("none");
  }
  if (!has_listen) {
    args.push_back("--listen");
    args.push_back("127.0.0.1:0");
  }
  if (!has_ping_interval) {
    // Heartbeat pings come at random points of the interval: a test reading exact frame
    // sequences would fail whenever one lands inside it. Heartbeat tests ask for an interval.
    args.push_back("--ping-interval");
    args.push_back("0");
  }
  // PARLEY_TEST_IO_URING=1: every parleyd batches its output through io_uring
  // (tests/uring_send_test.cpp re-runs suites so), unless the test chose itself.
  const char* uring = std::getenv("PARLEY_TEST_IO_URING");
  bool has_io_uring = false;
  for (const std::string& arg : extra_args) has_io_uring |= arg == "--io-uring";
  if (uring != nullptr && std::string_view(uring) == "1" && !has_io_uring) {
    args.push_back("--io-uring");
    args.push_back("on");
  }
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  const pid_t parent = getpid();
  rlimit nofile{};
  getrlimit(RLIMIT_NOFILE, &nofile);
  if (limits.nofile_hard != 0) nofile.rlim_max = limits.nofile_hard;
  if (limits.nofile_soft != 0) nofile.rlim_cur = limits.nofile_soft;
  if (nofile.rlim_cur > nofile.rlim_max) nofile.rlim_cur = nofile.rlim_max;
  const bool set_nofile = limits.nofile_soft != 0 || limits.nofile_hard != 0;

  pid_t pid = fork();
  if (pid < 0) {
    error_ = std::string("fork failed: ") + std::strerror(errno);
    close(null_fd);
    return;
  }
  if (pid == 0) {
    // If the test binary dies (crash, SIGKILL) the server must not outlive it.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    // A process group of its own, whose parent (this test) is in another group of the session:
    // never an orphaned group, so a test's SIGSTOP is not answered by the kernel's SIGHUP +
    // SIGCONT to the whole group (POSIX, for a stopped member of an orphaned group), which is
    // what the test binary's own group becomes when the shell that started it has exited.
    setpgid(0, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    if (set_nofile && setrlimit(RLIMIT_NOFILE, &nofile) != 0) _exit(126);
    dup2(null_fd, STDIN_FILENO);
    dup2(stdout_fd_, STDOUT_FILENO);
    dup2(stderr_fd_, STDERR_FILENO);
    execv(argv[0], argv.data());
    static const char kMsg[] = "parleyd_process: execv failed\n";
    ssize_t ignored = write(STDERR_FILENO, kMsg, sizeof kMsg - 1);
    (void)ignored;
    _exit(127);
  }
  close(null_fd);
  pid_ = pid;

  const auto deadline = std::chrono::steady_clock::now() + ready_timeout;
  for (;;) {
    if (try_parse_port()) return;
    if (!running()) {
      error_ = "parleyd " + status_text() + " before printing its listening line; stderr: " +
               tail(stderr_text(), 2000);
      return;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      error_ = "parleyd printed no listening line within " + std::to_string(ready_timeout.count()) +
               " ms; stdout: " + tail(stdout_text(), 500) + " stderr: " + tail(stderr_text(), 2000);
      return;
    }
    std::this_thread::sleep_for(kPollInterval);
  }
}

bool ParleydProcess::try_parse_port() {
  const std::string out = stdout_text();
  size_t at = out.find(kListeningPrefix);
  if (at == std::string::npos) return false;
  size_t end = out.find('\n', at);
  if (end == std::string::npos) return false;  // the line is not complete yet
  const std::string line = out.substr(at, end - at);
  size_t colon = line.rfind(':');
  if (colon == std::string::npos) {
    error_ = "cannot parse listening line: " + line;
    return true;
  }
  char* rest = nullptr;
  unsigned long port = std::strtoul(line.c_str() + colon + 1, &rest, 10);
  if (port == 0 || port > 65535 || rest == line.c_str() + colon + 1) {
    error_ = "cannot parse port in listening line: " + line;
    return true;
  }
  port_ = static_cast<uint16_t>(port);
  return true;
}

bool ParleydProcess::running() {
  if (pid_ < 0 || reaped_) return false;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    reaped_ = true;
    wait_status_ = status;
    return false;
  }
  if (r < 0 && errno == ECHILD) {
    reaped_ = true;  // reaped elsewhere; nothing left to stop
    return false;
  }
  return true;
}

int ParleydProcess::stop(std::chrono::milliseconds grace) {
  if (pid_ < 0) return -1;
  if (running()) {
    kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + grace;
    while (running() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(kPollInterval);
    if (running()) {
      kill(pid_, SIGKILL);
      int status = 0;
      while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
      reaped_ = true;
      wait_status_ = status;
    }
  }
  return wait_status_;
}

std::string ParleydProcess::status_text() {
  if (pid_ < 0) return "not started";
  if (running()) return "running";
  if (WIFEXITED(wait_status_)) return "exited with status " + std::to_string(WEXITSTATUS(wait_status_));
  if (WIFSIGNALED(wait_status_)) {
    return "killed by signal " + std::to_string(WTERMSIG(wait_status_)) + " (" +
           strsignal(WTERMSIG(wait_status_)) + ")";
  }
  return "ended with wait status " + std::to_string(wait_status_);
}

std::string ParleydProcess::stdout_text() const { return read_whole(stdout_fd_); }

std::string ParleydProcess::stderr_text() const { return read_whole(stderr_fd_); }

}  // namespace parley_test
