#pragma once
// The token check of a WebSocket upgrade, shared by /chat (ChatApp) and /echo (TokenGatedApp):
// find the token (auth_token.h extract_token), verify it, and say what to answer.
#include <cstdint>
#include <string>
#include <string_view>

#include "chat/auth_token.h"
#include "protocol/http_request.h"
#include "protocol/ws_server.h"

namespace chat {

// The outcome of check_upgrade_token.
struct UpgradeTokenCheck {
  bool ok = false;
  std::string reason;             // set when !ok: the 401 body (never contains token bytes)
  TokenResult token;              // the verified claims when ok (subject, rooms)
  std::string_view subprotocol;   // when ok: the offered protocol that carried the token, if any
};

// The subprotocol by which a client says it reads refusals in-band (docs/protocol.md "Refusals a
// browser can read"): its upgrade is accepted with this protocol even when refused, then closed
// with code 4000 + the HTTP status and the refusal's reason, since a browser learns nothing of a
// failed handshake (the WebSocket API reports close code 1006 and no HTTP status).
inline constexpr std::string_view kChatSubprotocol = "parley.chat";
// The first close code of in-band refusals: 4000 + HTTP status (4401, 4403, 4409, 4429).
inline constexpr uint16_t kRefusalCloseBase = 4000;

// True when `request`'s Sec-WebSocket-Protocol lists `name` (RFC 6455 4.1: a comma-separated
// list, possibly repeated).
bool offers_subprotocol(const protocol::HttpRequest& request, std::string_view name);

// Verifies the token of `request` against `secret` at `now_s` (seconds since the epoch). !ok
// (with a reason for a 401) when no token is present or it does not verify.
UpgradeTokenCheck check_upgrade_token(const protocol::HttpRequest& request, std::string_view secret, uint64_t now_s);

// Wraps a WebSocket application so that its upgrades need a valid token (HTTP 401 otherwise),
// exactly as /chat does with --auth-secret. Used for /echo, which otherwise would accept
// anyone's 16 MiB messages on a server that asks /chat for tokens (issue 13).
class TokenGatedApp final : public protocol::WsApplication {
 public:
  // `inner` must outlive this; `secret` is copied. `wall_clock_s` (null: CLOCK_REALTIME) is
  // for tests.
  TokenGatedApp(protocol::WsApplication& inner, std::string secret, uint64_t (*wall_clock_s)() = nullptr)
      : inner_(inner), secret_(std::move(secret)), wall_clock_s_(wall_clock_s) {}

  // The secret for upgrades from now on (SIGHUP key rotation); open connections stay. Empty:
  // no token is asked for, every upgrade goes straight to `inner`.
  void set_secret(std::string secret) { secret_ = std::move(secret); }

  protocol::UpgradeVerdict on_upgrade(protocol::ConnectionId id, const protocol::HttpRequest& request) override;
  void on_open(protocol::ConnectionId id) override { inner_.on_open(id); }
  void on_message(protocol::ConnectionId id, protocol::Opcode opcode, std::span<uint8_t> payload) override {
    inner_.on_message(id, opcode, payload);
  }
  void on_close(protocol::ConnectionId id, uint16_t code) override { inner_.on_close(id, code); }

  // Upgrades refused with 401.
  uint64_t unauthorized() const { return unauthorized_; }

 private:
  protocol::WsApplication& inner_;
  std::string secret_;
  uint64_t (*wall_clock_s_)();
  std::string reason_;  // UpgradeVerdict::reason points here until the next upgrade
  uint64_t unauthorized_ = 0;
};

}  // namespace chat
