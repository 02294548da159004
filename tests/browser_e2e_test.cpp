// The browser page (chat/web/, served by parleyd at /) in a real browser: runs
// tests/browser/chat_e2e.mjs (playwright-core driving Debian's Chromium) against a parleyd on an
// ephemeral port, and restarts that parleyd on the same port when the script asks, to prove the
// page reconnects by itself. Installs what is missing first: the chromium package (apt-get) and
// the script's node modules (npm ci). A machine that cannot get Chromium fails with the reason.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/browser_support.h"
#include "tests/support/parleyd_process.h"
#include "tests/support/shell_command.h"

namespace {

namespace fs = std::filesystem;
using parley_test::ParleydProcess;
using parley_test::run_shell;
using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;

using parley_test::ensure_chromium;
using parley_test::ensure_node_modules;
using parley_test::kChromium;
constexpr const char* kScript = "tests/browser/chat_e2e.mjs";
constexpr const char* kRestartLine = "@@restart-parleyd";
constexpr seconds kNodeTimeout{240};

fs::path repo_root() { return parley_test::find_repo_root(kScript); }


// Starts parleyd on exactly `port` (after a restart), retrying briefly in case the port is not
// free yet.
std::unique_ptr<ParleydProcess> start_on_port(uint16_t port, std::string& error) {
  for (int attempt = 0; attempt < 10; ++attempt) {
    auto server = std::make_unique<ParleydProcess>(
        std::vector<std::string>{"--listen", "127.0.0.1:" + std::to_string(port)});
    if (server->ok()) return server;
    error = server->error();
    std::this_thread::sleep_for(milliseconds(200));
  }
  return nullptr;
}

struct NodeResult {
  int exit_status = -1;  // -1: killed or did not run
  bool timed_out = false;
  int restarts = 0;
  std::string output;
};

// Runs the node script against `server`, answering its restart requests: stops `server` and
// starts a new one on the same port. Kills node (and its Chromium) after kNodeTimeout.
NodeResult run_script(const fs::path& root, std::unique_ptr<ParleydProcess>& server, const fs::path& shots) {
  NodeResult result;
  const uint16_t port = server->port();
  int to_child[2];
  int from_child[2];
  if (pipe2(to_child, O_CLOEXEC) != 0 || pipe2(from_child, O_CLOEXEC) != 0) {
    result.output = "pipe2 failed";
    return result;
  }
  const std::string url = "http://127.0.0.1:" + std::to_string(port);
  pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);  // node and its Chromium in one group, killed together on timeout
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(to_child[0], STDIN_FILENO);
    dup2(from_child[1], STDOUT_FILENO);
    dup2(from_child[1], STDERR_FILENO);
    if (chdir(root.c_str()) != 0) _exit(126);
    execlp("node", "node", kScript, "--url", url.c_str(), "--chromium", kChromium, "--screenshots", shots.c_str(),
           static_cast<char*>(nullptr));
    _exit(127);
  }
  close(to_child[0]);
  close(from_child[1]);
  if (pid < 0) {
    close(to_child[1]);
    close(from_child[0]);
    result.output = "fork failed";
    return result;
  }
  setpgid(pid, pid);
  const auto deadline = steady_clock::now() + kNodeTimeout;
  std::string line;
  for (;;) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - steady_clock::now()).count();
    if (left <= 0) {
      result.timed_out = true;
      kill(-pid, SIGKILL);
      break;
    }
    pollfd p{from_child[0], POLLIN, 0};
    int ready = poll(&p, 1, static_cast<int>(std::min<long long>(left, 1000)));
    if (ready <= 0) continue;
    char buffer[4096];
    ssize_t n = read(from_child[0], buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // node closed its output: it is exiting
    result.output.append(buffer, static_cast<size_t>(n));
    line.append(buffer, static_cast<size_t>(n));
    for (size_t newline; (newline = line.find('\n')) != std::string::npos; line.erase(0, newline + 1)) {
      if (line.compare(0, newline, kRestartLine) != 0) continue;
      server->stop();
      std::string error;
      server = start_on_port(port, error);
      ++result.restarts;
      std::string answer = server ? "ok\n" : "fail: " + error + "\n";
      if (!server) result.output += "[test] restarting parleyd on port " + std::to_string(port) + " failed: " + error + "\n";
      if (write(to_child[1], answer.data(), answer.size()) < 0) break;
      if (!server) break;
    }
  }
  close(to_child[1]);
  close(from_child[0]);
  int status = 0;
  if (result.timed_out) kill(-pid, SIGKILL);
  waitpid(pid, &status, 0);
  kill(-pid, SIGKILL);  // any Chromium process node left behind
  if (WIFEXITED(status)) result.exit_status = WEXITSTATUS(status);
  return result;
}

TEST(BrowserE2eTest, TwoUsersChatInChromiumAndSurviveARestart) {
  const fs::path root = repo_root();
  ASSERT_FALSE(root.empty()) << "cannot find " << kScript << " above " << fs::current_path()
                             << "; run the tests from the repository";
  const std::string chromium_problem = ensure_chromium();
  ASSERT_TRUE(chromium_problem.empty()) << chromium_problem;
  const std::string node_problem = ensure_node_modules(root);
  ASSERT_TRUE(node_problem.empty()) << node_problem;

  auto server = std::make_unique<ParleydProcess>();
  ASSERT_TRUE(server->ok()) << server->error();
  fs::path shots = fs::path(parley_test::build_dir()) / "screenshots";
  if (shots.is_relative()) shots = fs::current_path() / shots;

  NodeResult result = run_script(root, server, shots);
  const std::string server_log = server ? "parleyd " + server->status_text() + "; stderr:\n" + server->stderr_text()
                                         : std::string("(no parleyd: the restart failed)");
  EXPECT_FALSE(result.timed_out) << "the browser test did not finish within " << kNodeTimeout.count()
                                 << " s; its output:\n" << result.output;
  ASSERT_EQ(result.exit_status, 0) << "the browser test failed; its output:\n"
                                   << result.output << "\n" << server_log;
  EXPECT_EQ(result.restarts, 1) << result.output;
  EXPECT_NE(result.output.find("browser e2e: all "), std::string::npos) << result.output;
  EXPECT_EQ(result.output.find("not ok"), std::string::npos) << result.output;
  for (const char* file : {"login.png", "alice.png", "bob.png", "carol-375px.png", "bob-markup-as-text.png",
                           "alice-after-restart.png"}) {
    EXPECT_TRUE(fs::exists(shots / file)) << "missing screenshot " << (shots / file);
  }
  std::printf("%s", result.output.c_str());
}

}  // namespace
