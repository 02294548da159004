#pragma once
// Runs a WsServer with an arbitrary WsServerConfig, /echo and /fanout (each message to every
// other connection on /fanout, encoded once) in a forked child,
// so tests can exercise server settings parleyd has no flag for. SIGTERM makes the child drain
// (WsServer::drain) and exit 0. Test support only.
#include <sys/types.h>

#include <chrono>
#include <cstdint>

#include "protocol/ws_server.h"

namespace parley_test {

class ForkedServer {
 public:
  // Starts the child and waits for its port; ok() tells whether that worked.
  explicit ForkedServer(const protocol::WsServerConfig& config, uint32_t drain_timeout_ms = 2000);
  // SIGKILLs the child if it still runs, and reaps it.
  ~ForkedServer();
  ForkedServer(const ForkedServer&) = delete;
  ForkedServer& operator=(const ForkedServer&) = delete;

  bool ok() const { return port_ != 0; }
  uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }
  // Sends SIGTERM and waits up to `timeout` for the child; returns its waitpid status, or -1
  // if it had to be killed.
  int terminate(std::chrono::milliseconds timeout);

 private:
  pid_t pid_ = -1;
  uint16_t port_ = 0;
};

}  // namespace parley_test
