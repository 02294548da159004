#pragma once
// Runs a private redis-server for tests (issue 15): on a free loopback port (never 6379, never
// the system service), no RDB snapshots, AOF on or off, its files in a temporary directory that
// is removed at the end. Stopped and reaped by the destructor, so a failing test leaks nothing.
// Test support only.
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>

namespace reactor {
class EventLoop;
}

namespace parley_test {

// Runs `loop` until `until` holds (checked at the end of every iteration) or `timeout_ms`
// passes; returns until(). Each call adds one before-sleep hook to the loop (inert afterwards).
bool run_until(reactor::EventLoop& loop, std::function<bool()> until, int timeout_ms = 15000);

// A loopback TCP port that was free a moment ago (bound to port 0, then released).
uint16_t free_tcp_port();

class RedisProcess {
 public:
  // Starts redis-server on 127.0.0.1 and a free port; `appendonly` turns the AOF on with
  // appendfsync always (so an acked write survives a kill -9 of Redis). Never throws: ok() says.
  explicit RedisProcess(bool appendonly = false);
  // Stops the server (SIGTERM, then SIGKILL) and removes its directory.
  ~RedisProcess();
  RedisProcess(const RedisProcess&) = delete;
  RedisProcess& operator=(const RedisProcess&) = delete;

  // True when the server answered PING after the last start().
  bool ok() const { return ok_; }
  // Why the last start failed (empty when ok()).
  const std::string& error() const { return error_; }
  uint16_t port() const { return port_; }
  // "redis://127.0.0.1:PORT" (plus "/DB" when db != 0).
  std::string url(int db = 0) const;

  // Stops the server: SIGKILL when `kill_nine` (no shutdown save), else SIGTERM and wait.
  void stop(bool kill_nine = false);
  // Starts it again on the same port and directory (the AOF, when on, is replayed); ok() says.
  bool start();

 private:
  bool appendonly_;
  std::string dir_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
  bool ok_ = false;
  std::string error_;
};

}  // namespace parley_test
