// WsServer, lifecycle: deferred destruction of connections and their timers.
#include <fcntl.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <cstddef>
#include <new>

#include "protocol/close_code.h"
#include "protocol/ws_connection.h"
#include "protocol/ws_server.h"

namespace protocol {

void WsServer::destroy(Connection& c, uint16_t code) {
  if (c.state == ConnectionState::kClosed || c.state == ConnectionState::kFree) return;
  if (!(c.flags & kCloseReceived) || c.close_code == 0) c.close_code = code;
  c.state = ConnectionState::kClosed;
  wheel_.cancel(&c.timer);
  if (corked_ == &c) {
    corked_ = nullptr;
    cork_length_ = 0;
  }
  closed_.push_back(&c);
}

void WsServer::queue_close_notice(Connection& c) {
  if (!(c.flags & kOpenNotified) || (c.flags2 & kCloseNoticeQueued)) return;
  c.flags2 |= kCloseNoticeQueued;
  close_notices_.push_back(&c);
}

void WsServer::deliver_close_notices() {
  // The application hears on_close as soon as the connection stops being open (a close sent
  // or received), not when TCP finally goes, so presence does not wait for the close
  // handshake or its timeout. Delivered here, never inside the connection's own callbacks.
  std::vector<Connection*> notices;
  notices.swap(close_notices_);
  for (Connection* c : notices) {
    c->flags2 &= ~kCloseNoticeQueued;
    if (!(c->flags & kOpenNotified)) continue;
    c->flags &= ~kOpenNotified;
    WsApplication* app = c->route < routes_.size() ? routes_[c->route].app : nullptr;
    if (app != nullptr) app->on_close(id_of(*c), c->close_code == 0 ? kCloseAbnormal : c->close_code);
  }
}

void WsServer::free_closed() {
  // Connections die here, outside their own callbacks (DESIGN.md: never free a connection
  // inside its own callback). on_close may close others; loop until none are left.
  while (!closed_.empty()) {
    std::vector<Connection*> closing;
    closing.swap(closed_);
    for (Connection* c : closing) release_slot(*c);
  }
  if (reserve_fd_ < 0) reserve_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (draining_ && stats_.connections == 0) finish_drain();
}

void WsServer::release_slot(Connection& c) {
  int fd = fd_of(c);
  if (c.flags & kOpenNotified) {
    WsApplication* app = c.route < routes_.size() ? routes_[c.route].app : nullptr;
    if (app != nullptr) app->on_close(id_of(c), c.close_code == 0 ? kCloseAbnormal : c.close_code);
  }
  wheel_.cancel(&c.timer);
  if (c.out != nullptr) {
    c.out->clear();
    release_queue(c.out);
    c.out = nullptr;
  }
  if (c.extra != nullptr) {
    c.extra->pending.clear();
    c.extra->reader = ReaderState();
    release_extra_if_idle(c);
  }
  uint32_t generation = c.generation;
  c.~Connection();
  new (&c) Connection();
  c.generation = generation;
  forget_peer(fd);
  end_tls(fd);
  ::close(fd);
  --stats_.connections;
}

void WsServer::on_timer(void* context, reactor::TimerNode* node) {
  auto* server = static_cast<WsServer*>(context);
  if (node == &server->drain_timer_) {
    server->finish_drain();
    return;
  }
  // Every other node is a Connection's `timer` member.
  auto* c = reinterpret_cast<Connection*>(reinterpret_cast<char*>(node) - offsetof(Connection, timer));
  server->on_timeout(*c);
}

void WsServer::start_heartbeat(Connection& c) {
  if (config_.ping_interval_ms == 0) {
    c.timer_purpose = TimerPurpose::kNone;
    return;
  }
  // The first ping lands at a random point of the interval, so connections that arrived
  // together (a reconnect storm) are not all pinged in the same millisecond afterwards.
  random_state_ ^= random_state_ << 13;
  random_state_ ^= random_state_ >> 7;
  random_state_ ^= random_state_ << 17;
  c.timer_purpose = TimerPurpose::kPing;
  wheel_.schedule(&c.timer, 1 + random_state_ % config_.ping_interval_ms);
}

void WsServer::on_heartbeat(Connection& c, bool pong_deadline) {
  if (c.state != ConnectionState::kOpen) return;
  if (pong_deadline) {
    if (!(c.flags & kHeardFrom)) {
      // RFC 6455 5.5.2: a ping unanswered for pong_timeout: the peer is gone.
      ++stats_.dead_peers;
      destroy(c, kCloseAbnormal);
      return;
    }
    c.timer_purpose = TimerPurpose::kPing;
    uint32_t rest = config_.ping_interval_ms > config_.pong_timeout_ms
                        ? config_.ping_interval_ms - config_.pong_timeout_ms
                        : 1;
    wheel_.schedule(&c.timer, rest);
    return;
  }
  if (config_.idle_timeout_ms != 0) {
    c.idle_heartbeats = (c.flags & kDataSeen) ? 0 : static_cast<uint8_t>(std::min(c.idle_heartbeats + 1, 255));
    if (static_cast<uint64_t>(c.idle_heartbeats) * config_.ping_interval_ms >= config_.idle_timeout_ms) {
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

void WsServer::drain(uint32_t timeout_ms, std::function<void()> on_drained) {
  if (draining_) return;
  draining_ = true;
  on_drained_ = std::move(on_drained);
  if (listen_fd_ >= 0) {
    // Closing the listener makes the kernel refuse (or, with SO_REUSEPORT, hand to the
    // other workers) new connections, while the established ones finish.
    ::close(listen_fd_);
    listen_fd_ = -1;
  }
  close_all(kCloseGoingAway, "server shutting down");
  wheel_.schedule(&drain_timer_, timeout_ms);
  if (stats_.connections == 0) finish_drain();
}

void WsServer::finish_drain() {
  if (!on_drained_) return;
  // Taken first: free_closed() below calls back here when the last connection goes.
  std::function<void()> done = std::move(on_drained_);
  on_drained_ = nullptr;
  wheel_.cancel(&drain_timer_);
  for (size_t fd = 0; fd < capacity_; ++fd) {
    Connection& c = table_[fd];
    if (c.state != ConnectionState::kFree && c.state != ConnectionState::kClosed) {
      destroy(c, (c.flags & kCloseReceived) ? c.close_code : kCloseGoingAway);
    }
  }
  free_closed();
  done();
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