#pragma once
// parley-idle as a child process of a test (so the test can stop, resume and kill it), holding
// connections to a parleyd on loopback. Killed and reaped on destruction. Test support only.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/parleyd_process.h"

namespace parley_test {

// Polls `done` every 20 ms for up to `limit`; its last answer.
inline bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return done();
}

class IdleProcess {
 public:
  // Holds `connections` connections to ws://127.0.0.1:`port`/echo for up to two minutes.
  // `options` are parley-idle options; by default a lost connection stays lost (so the
  // server's count tells whether any was lost) and attempts go at 5,000 a second.
  IdleProcess(uint16_t port, uint32_t connections,
              std::vector<std::string> options = {"--rate", "5000", "--no-reconnect"}) {
    const std::string idle = build_dir() + "/parley-idle";
    std::vector<std::string> args = {idle, "--url", "ws://127.0.0.1:" + std::to_string(port) + "/echo", "-c",
                                     std::to_string(connections), "--duration", "120", "--quiet"};
    args.insert(args.end(), options.begin(), options.end());
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    pid_ = fork();
    if (pid_ == 0) {
      setpgid(0, 0);  // never an orphaned group when stopped: see ParleydProcess::start
      execv(idle.c_str(), argv.data());
      _exit(127);
    }
  }
  ~IdleProcess() {
    if (pid_ <= 0) return;
    kill(pid_, SIGCONT);
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  IdleProcess(const IdleProcess&) = delete;
  IdleProcess& operator=(const IdleProcess&) = delete;
  // The child's pid (-1 if fork failed).
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

}  // namespace parley_test
