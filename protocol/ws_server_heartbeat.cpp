// WsServer, timers: the one deadline per connection (handshake, close, heartbeat) and the
// RFC 6455 5.5.2 heartbeat, which degrades under overload instead of collapsing (issue 13): a
// peer is not declared dead while the server is behind on reading, and a ping budget stretches
// the ping period rather than letting heartbeats take the CPU.
#include <sys/ioctl.h>

#include <algorithm>
#include <cstddef>

#include "protocol/close_code.h"
#include "protocol/ws_connection.h"
#include "protocol/ws_server.h"

namespace protocol {

void WsServer::on_timer(void* context, reactor::TimerNode* node) {
  auto* server = static_cast<WsServer*>(context);
  // How late the loop runs its deadlines: admission pacing's main sign of being behind.
  server->iteration_lateness_ms_ = std::max(server->iteration_lateness_ms_, server->wheel_.lateness_ms());
  if (node == &server->drain_timer_) {
    server->finish_drain();
    return;
  }
  if (node == &server->pace_timer_) {
    server->accept_ready();
    return;
  }
  // Every other node is a Connection's `timer` member.
  auto* c = reinterpret_cast<Connection*>(reinterpret_cast<char*>(node) - offsetof(Connection, timer));
  server->on_timeout(*c);
}

uint32_t WsServer::ping_period() {
  const uint32_t period = heartbeat_budget_.period_for(stats_.connections);
  stats_.ping_interval_effective_ms = period;
  if (period > config_.ping_interval_ms) ++stats_.pings_deferred;
  if (heartbeat_budget_.take_change() && budget_listener_) {
    budget_listener_(heartbeat_budget_.stretching(), period, stats_.connections);
  }
  return period;
}

void WsServer::start_heartbeat(Connection& c) {
  if (config_.ping_interval_ms == 0) {
    c.timer_purpose = TimerPurpose::kNone;
    return;
  }
  // The first ping lands at a random point of the period, so connections that arrived
  // together (a reconnect storm) are not all pinged in the same millisecond afterwards.
  random_state_ ^= random_state_ << 13;
  random_state_ ^= random_state_ >> 7;
  random_state_ ^= random_state_ << 17;
  c.timer_purpose = TimerPurpose::kPing;
  wheel_.schedule(&c.timer, 1 + random_state_ % ping_period());
}

bool WsServer::behind_on_reading(const Connection& c) const {
  // The read budget ran out: more of this peer's input is queued for the next iteration.
  if (c.flags & kOnReadyList) return true;
  // The deadline fires more than half a pong timeout late: the process was stopped or starved
  // of CPU for much of the window, and the ping may not even have left the machine in time.
  if (wheel_.lateness_ms() > config_.pong_timeout_ms / 2) return true;
  // Bytes wait in the socket, unread: the peer did answer (any input counts, as kHeardFrom
  // does), we have not read it yet (more ready fds than one epoll_wait returns, or a loop
  // busy elsewhere). Not for a peer whose input we hold back because it does not read ours
  // (kReadPaused): those bytes stay by our choice and say nothing about being behind. One
  // ioctl, only for a peer silent past its deadline.
  if (c.flags2 & kReadPaused) return false;
  int unread = 0;
  return ioctl(fd_of(c), FIONREAD, &unread) == 0 && unread > 0;
}

void WsServer::on_heartbeat(Connection& c, bool pong_deadline) {
  if (c.state != ConnectionState::kOpen) return;
  if (pong_deadline) {
    if (!(c.flags & kHeardFrom)) {
      if (behind_on_reading(c)) {
        // Overload costs latency, not connections: a whole new window, counted from now,
        // in which the loop reads what is waiting (a pong sets kHeardFrom).
        ++stats_.pong_deadlines_deferred;
        wheel_.schedule(&c.timer, config_.pong_timeout_ms);
        c.timer_purpose = TimerPurpose::kPong;
        return;
      }
      // RFC 6455 5.5.2: a ping unanswered for pong_timeout: the peer is gone.
      ++stats_.dead_peers;
      if (refusal_listener_) refusal_listener_(id_of(c), kCloseAbnormal, "no pong (heartbeat dead)");
      destroy(c, kCloseAbnormal);
      return;
    }
    c.timer_purpose = TimerPurpose::kPing;
    const uint32_t period = ping_period();
    wheel_.schedule(&c.timer, period > config_.pong_timeout_ms ? period - config_.pong_timeout_ms : 1);
    return;
  }
  if (config_.idle_timeout_ms != 0) {
    c.idle_heartbeats = (c.flags & kDataSeen) ? 0 : static_cast<uint8_t>(std::min(c.idle_heartbeats + 1, 255));
    // Heartbeats count time at the period in use (stretched by the budget or not).
    if (static_cast<uint64_t>(c.idle_heartbeats) * heartbeat_budget_.effective_ms() >= config_.idle_timeout_ms) {
      ++stats_.idle_closed;
      send_close(c, kCloseNormal, "idle timeout");
      return;
    }
  }
  c.flags &= ~(kHeardFrom | kDataSeen);
  ++stats_.pings_sent;
  send_frame(c, Opcode::kPing, nullptr, 0);
  if (c.state != ConnectionState::kOpen) return;
  c.timer_purpose = TimerPurpose::kPong;
  wheel_.schedule(&c.timer, config_.pong_timeout_ms);
}

void WsServer::on_timeout(Connection& c) {
  ++stats_.timeouts;
  TimerPurpose purpose = c.timer_purpose;
  c.timer_purpose = TimerPurpose::kNone;
  if (purpose == TimerPurpose::kHandshake && c.state == ConnectionState::kHandshake) {
    // Slowloris: the request head did not arrive in time.
    respond_http(c, 408, "text/plain", "request timeout\n");
    if (c.state != ConnectionState::kClosed) {
      c.timer_purpose = TimerPurpose::kClose;
      wheel_.schedule(&c.timer, std::min<uint32_t>(config_.close_timeout_ms, 1000));
    }
    return;
  }
  if (purpose == TimerPurpose::kPing || purpose == TimerPurpose::kPong) {
    --stats_.timeouts;  // heartbeats are counted apart
    on_heartbeat(c, purpose == TimerPurpose::kPong);
    return;
  }
  // The close handshake or the peer's EOF did not come: give up (RFC 6455 7.1.1 allows it).
  destroy(c, (c.flags & kCloseReceived) ? c.close_code : kCloseAbnormal);
}

}  // namespace protocol
