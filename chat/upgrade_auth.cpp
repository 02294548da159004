#include "chat/upgrade_auth.h"

#include <time.h>

namespace chat {

bool offers_subprotocol(const protocol::HttpRequest& request, std::string_view name) {
  // RFC 6455 4.1: the header may be repeated; each is a comma-separated list.
  for (size_t i = 0; i < request.header_count; ++i) {
    if (protocol::equals_ignore_case(request.headers[i].name, "Sec-WebSocket-Protocol") &&
        protocol::header_has_token(request.headers[i].value, name)) {
      return true;
    }
  }
  return false;
}

UpgradeTokenCheck check_upgrade_token(const protocol::HttpRequest& request, std::string_view secret,
                                      uint64_t now_s) {
  UpgradeTokenCheck check;
  ExtractedToken extracted = extract_token(request);
  if (extracted.source == TokenSource::kNone || extracted.token.empty()) {
    check.reason =
        "a token is required (Authorization: Bearer, Sec-WebSocket-Protocol parley.token.<token>, or ?token=)";
    return check;
  }
  // Never echo the token: the reason names only the failure class.
  check.token = verify_token(extracted.token, secret, now_s);
  if (check.token.status != TokenStatus::kOk) {
    check.reason = "invalid token: " + std::string(token_status_name(check.token.status));
    return check;
  }
  check.ok = true;
  // RFC 6455 4.2.2: select the protocol the token came in, the only one we know the client
  // offered; a browser fails the connection when none is selected.
  check.subprotocol = extracted.subprotocol;
  return check;
}

protocol::UpgradeVerdict TokenGatedApp::on_upgrade(protocol::ConnectionId id, const protocol::HttpRequest& request) {
  if (secret_.empty()) return inner_.on_upgrade(id, request);  // no --auth-secret (yet)
  uint64_t now_s;
  if (wall_clock_s_ != nullptr) {
    now_s = wall_clock_s_();
  } else {
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    now_s = static_cast<uint64_t>(ts.tv_sec);
  }
  UpgradeTokenCheck check = check_upgrade_token(request, secret_, now_s);
  if (!check.ok) {
    ++unauthorized_;
    reason_ = std::move(check.reason);
    protocol::UpgradeVerdict verdict;
    verdict.status = 401;
    verdict.reason = reason_;
    return verdict;
  }
  protocol::UpgradeVerdict verdict = inner_.on_upgrade(id, request);
  if (verdict.status == 101 && verdict.subprotocol.empty()) verdict.subprotocol = check.subprotocol;
  return verdict;
}

}  // namespace chat
