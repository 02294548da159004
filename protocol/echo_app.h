#pragma once
// The /echo endpoint: every complete message goes back with the same opcode. Used by
// conformance suites (Autobahn|Testsuite) and the echo benchmarks.
#include "protocol/ws_server.h"

namespace protocol {

class EchoApp final : public WsApplication {
 public:
  explicit EchoApp(WsServer& server) : server_(server) {}
  void on_message(ConnectionId id, Opcode opcode, std::span<uint8_t> payload) override {
    server_.send(id, opcode, payload);
  }

 private:
  WsServer& server_;
};

}  // namespace protocol
