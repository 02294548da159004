#include "tests/support/redis_process.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>
#include <vector>

#include <memory>

#include "chat/cluster/redis_link.h"
#include "reactor/event_loop.h"
#include "tests/support/loop_watchdog.h"

namespace parley_test {

bool run_until(reactor::EventLoop& loop, std::function<bool()> until, int timeout_ms) {
  if (until()) return true;
  auto active = std::make_shared<bool>(true);
  loop.add_before_sleep([active, until, &loop] {
    if (*active && until()) loop.stop();
  });
  run_loop_at_most(loop, timeout_ms);
  *active = false;
  return until();
}

uint16_t free_tcp_port() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  uint16_t port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  close(fd);
  return port == 6379 ? free_tcp_port() : port;
}

RedisProcess::RedisProcess(bool appendonly) : appendonly_(appendonly) {
  char pattern[] = "/tmp/parley-redis-XXXXXX";
  if (mkdtemp(pattern) == nullptr) {
    error_ = std::string("mkdtemp: ") + std::strerror(errno);
    return;
  }
  dir_ = pattern;
  port_ = free_tcp_port();
  start();
}

RedisProcess::~RedisProcess() {
  stop(true);
  std::error_code ignored;
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
}

std::string RedisProcess::url(int db) const {
  return "redis://127.0.0.1:" + std::to_string(port_) + (db != 0 ? "/" + std::to_string(db) : "");
}

bool RedisProcess::start() {
  ok_ = false;
  error_.clear();
  if (dir_.empty() || port_ == 0) {
    if (error_.empty()) error_ = "no directory or port";
    return false;
  }
  std::vector<std::string> args = {"redis-server", "--port", std::to_string(port_), "--bind", "127.0.0.1",
                                   "--save", "", "--appendonly", appendonly_ ? "yes" : "no",
                                   "--appendfsync", "always", "--dir", dir_, "--daemonize", "no",
                                   "--logfile", dir_ + "/redis.log", "--protected-mode", "no"};
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_ = fork();
  if (pid_ < 0) {
    error_ = std::string("fork: ") + std::strerror(errno);
    return false;
  }
  if (pid_ == 0) {
    int null_fd = open("/dev/null", O_RDWR);
    if (null_fd >= 0) {
      dup2(null_fd, 1);
      dup2(null_fd, 2);
    }
    execvp("redis-server", argv.data());
    _exit(127);
  }
  chat::RedisEndpoint endpoint;
  endpoint.port = port_;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  std::string probe_error;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      error_ = "redis-server exited at start (see " + dir_ + "/redis.log)";
      return false;
    }
    if (chat::probe_redis(endpoint, 500, probe_error)) {
      ok_ = true;
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  error_ = "redis-server did not answer PING: " + probe_error;
  stop(true);
  return false;
}

void RedisProcess::stop(bool kill_nine) {
  ok_ = false;
  if (pid_ <= 0) return;
  kill(pid_, kill_nine ? SIGKILL : SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  int status = 0;
  while (waitpid(pid_, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  pid_ = -1;
}

}  // namespace parley_test
