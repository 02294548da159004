#include "chat/chat_app.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <string>

#include "chat/upgrade_auth.h"
#include "chat/chat_app_internal.h"
#include "protocol/close_code.h"

// ChatApp's access control and abuse limits (issue 7): handshake rate per address, Origin,
// tokens, per-connection message rate, token room grants.

namespace chat {

namespace detail {

// IPv4: the address (top bit set, so it cannot equal an IPv6 key of ours); IPv6: its /64, as
// --max-connections-per-ip does (one host usually owns a whole /64). IPv4-mapped IPv6 is IPv4.
bool peer_key_from_socket(protocol::ConnectionId id, uint64_t& key) {
  sockaddr_storage address{};
  socklen_t length = sizeof address;
  if (getpeername(static_cast<int>(static_cast<uint32_t>(id)), reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    return false;
  }
  if (address.ss_family == AF_INET) {
    key = (uint64_t{1} << 63) | ntohl(reinterpret_cast<const sockaddr_in&>(address).sin_addr.s_addr);
    return true;
  }
  if (address.ss_family == AF_INET6) {
    const uint8_t* bytes = reinterpret_cast<const sockaddr_in6&>(address).sin6_addr.s6_addr;
    static constexpr uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::equal(bytes, bytes + 12, kMappedPrefix)) {
      key = (uint64_t{1} << 63) | uint64_t{bytes[12]} << 24 | uint64_t{bytes[13]} << 16 |
            uint64_t{bytes[14]} << 8 | bytes[15];
      return true;
    }
    key = 0;
    for (int i = 0; i < 8; ++i) key = key << 8 | bytes[i];
    key &= ~(uint64_t{1} << 63);
    return true;
  }
  return false;
}


}  // namespace detail

namespace {

// The most peers whose handshake buckets are kept; past it, full (idle) buckets are dropped.
constexpr size_t kMaxHandshakePeers = 65536;

}  // namespace

using detail::fd_of;
using detail::peer_key_from_socket;

bool ChatApp::peer_key_of(protocol::ConnectionId id, uint64_t& key) const {
  return config_.peer_key != nullptr ? config_.peer_key(id, key) : peer_key_from_socket(id, key);
}
using detail::without_hash;

bool ChatApp::take_handshake(protocol::ConnectionId id, uint64_t now, uint64_t& retry_after_ms) {
  uint64_t key = 0;
  if (!peer_key_of(id, key)) return true;
  if (handshake_buckets_.size() >= kMaxHandshakePeers && !handshake_buckets_.contains(key)) {
    // Forget peers whose bucket has refilled: they are indistinguishable from new ones. If
    // too few were idle, forget everyone: a limit that fails open under a many-address flood
    // rather than refusing all newcomers.
    handshake_buckets_.erase_if([&](const uint64_t&, TokenBucket& bucket) {
      return bucket.ms_until_available(*handshake_rate_, now, config_.handshake_burst) == 0;
    });
    if (handshake_buckets_.size() >= kMaxHandshakePeers * 3 / 4) handshake_buckets_.clear();
  }
  auto [bucket, inserted] = handshake_buckets_.try_emplace(key, *handshake_rate_, now);
  if (bucket->try_take(*handshake_rate_, now)) return true;
  retry_after_ms = bucket->ms_until_available(*handshake_rate_, now);
  return false;
}

bool ChatApp::check_access(protocol::ConnectionId id, const protocol::HttpRequest& request,
                           ChatAuthDecision& decision, std::string_view& subprotocol) {
  // Cheapest first, and the rate before anything else so rejected attempts count too.
  if (handshake_rate_) {
    uint64_t retry_after_ms = 0;
    if (!take_handshake(id, monotonic_now(), retry_after_ms)) {
      ++access_stats_.handshakes_limited;
      uint64_t seconds = std::max<uint64_t>(1, (retry_after_ms + 999) / 1000);
      decision.status = 429;
      decision.reason = "too many handshakes from your address; retry after " + std::to_string(seconds) + " s";
      return false;
    }
  }
  // RFC 6455 10.2: a browser always sends Origin; refuse pages of sites not on the list.
  if (config_.origins && !config_.origins->allows(request.header("Origin"))) {
    ++access_stats_.forbidden_origins;
    decision.status = 403;
    decision.reason = request.has_header("Origin") ? "origin not allowed" : "an Origin header is required";
    return false;
  }
  if (config_.token_secret.empty()) return true;
  UpgradeTokenCheck check = check_upgrade_token(request, config_.token_secret, now_ms() / 1000);
  if (!check.ok) {
    ++access_stats_.unauthorized;
    decision.status = 401;
    decision.reason = std::move(check.reason);
    return false;
  }
  decision.user = std::move(check.token.subject);
  decision.restrict_rooms = check.token.has_rooms;
  decision.rooms = std::move(check.token.rooms);
  subprotocol = check.subprotocol;
  return true;
}

bool ChatApp::take_message(protocol::ConnectionId id) {
  uint32_t fd = fd_of(id);
  if (fd >= rate_by_fd_.size()) return true;  // not opened through on_open: nothing to limit
  RateState& state = rate_by_fd_[fd];
  if (state.bucket.try_take(*message_rate_, monotonic_now())) {
    state.violations = 0;
    return true;
  }
  ++access_stats_.rate_limited;
  if (config_.rate_violations_to_close != 0 && ++state.violations >= config_.rate_violations_to_close) {
    ++access_stats_.rate_closed;
    state.violations = 0;
    transport_.close(id, protocol::kClosePolicyViolation, "message rate limit exceeded");
    return false;
  }
  // chat_codec.h has no rate_limited code (yet): "rejected" with a reason that starts with a
  // stable token clients can match.
  send_error(id, ChatError::kRejected, "rate_limited: too many messages; this one was dropped", {});
  return false;
}

bool ChatApp::name_allowed(protocol::ConnectionId id, std::string_view name, std::string& reason) {
  if (hooks_ == nullptr || hooks_->allow_name(id, name, reason)) return true;
  if (reason.empty()) reason = "this user name is not allowed";
  return false;
}

bool ChatApp::room_allowed(uint32_t session, std::string_view room) const {
  const Grant* grant = grants_.find(session);
  if (grant == nullptr || !grant->restrict_rooms) return true;
  std::string_view bare = without_hash(room);
  return std::find(grant->rooms.begin(), grant->rooms.end(), bare) != grant->rooms.end();
}

}  // namespace chat
