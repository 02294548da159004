// WsServer, lifecycle: deferred destruction of connections and draining.
// (Timers and heartbeats: ws_server_heartbeat.cpp; admission: ws_server_admission.cpp.)
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

}  // namespace protocol