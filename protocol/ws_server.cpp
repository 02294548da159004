#include "protocol/ws_server.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <new>

#include "protocol/close_code.h"
#include "protocol/handshake.h"
#include "protocol/ws_connection.h"
#include "reactor/socket_ops.h"

namespace protocol {

namespace {

constexpr size_t kCorkSize = 512 * 1024;
// Payloads at least this large skip the cork and go out with writev straight from their buffer.
constexpr size_t kCorkBypass = 16 * 1024;
// Per readiness event, read at most this much before yielding to other connections.
constexpr size_t kReadBudget = 4 * reactor::EventLoop::kReceiveBufferSize;
constexpr int kAcceptBudget = 256;
constexpr size_t kMaxSpareExtras = 256;
constexpr size_t kMaxSpareQueues = 4096;
// A buffered unfinished message larger than this is freed rather than kept for reuse.
constexpr size_t kKeepPendingCapacity = 64 * 1024;

size_t table_capacity() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return 1 << 20;
  return static_cast<size_t>(limit.rlim_cur);
}

}  // namespace

// Feeds one connection's frames to its application.
class WsServer::Reader final : public MessageSink {
 public:
  Reader(WsServer& server, Connection& c, WsApplication* app) : server_(server), c_(c), app_(app) {}

  bool on_data(Opcode opcode, std::span<uint8_t> piece, bool first, bool last) override {
    // RFC 6455 7.1.2: once our close is sent, data is no longer delivered.
    if (c_.flags & kCloseSent) return true;
    if (first && last) {
      deliver(opcode, piece);
      return c_.state != ConnectionState::kClosed;
    }
    ConnectionExtra* extra = server_.extra_for(c_);
    if (extra == nullptr) return false;
    extra->pending.insert(extra->pending.end(), piece.begin(), piece.end());
    if (last) {
      deliver(opcode, {extra->pending.data(), extra->pending.size()});
      if (extra->pending.capacity() > kKeepPendingCapacity) {
        std::vector<uint8_t>().swap(extra->pending);
      } else {
        extra->pending.clear();
      }
    }
    return c_.state != ConnectionState::kClosed;
  }

  bool on_control(Opcode opcode, std::span<const uint8_t> payload) override {
    if (opcode == Opcode::kPing) {
      // RFC 6455 5.5.2/5.5.3: answer with a pong carrying the same payload, unless closing.
      if (!(c_.flags & kCloseSent)) server_.send_frame(c_, Opcode::kPong, payload.data(), payload.size());
      return true;
    }
    if (opcode == Opcode::kPong) return true;  // RFC 6455 5.5.3: unsolicited pongs are ignored
    // RFC 6455 5.5.1: answer a close with a close (echoing the code), then the server closes
    // the TCP connection (RFC 6455 7.1.1). Anything after the close frame is ignored.
    c_.flags |= kCloseReceived;
    uint16_t code = close_payload_code(payload.data(), payload.size());
    c_.close_code = code;
    if (!(c_.flags & kCloseSent)) {
      c_.flags |= kCloseSent;
      uint8_t header[kMaxFrameHeaderLength];
      size_t header_length = encode_frame_header(header, Opcode::kClose, payload.size());
      server_.write_bytes(c_, header, header_length, payload.data(), payload.size());
      if (c_.state == ConnectionState::kClosed) return false;
      c_.state = ConnectionState::kClosing;
      server_.wheel_.schedule(&c_.timer, server_.config_.close_timeout_ms);
      c_.timer_purpose = TimerPurpose::kClose;
    }
    server_.maybe_shutdown(c_);
    return false;
  }

 private:
  void deliver(Opcode opcode, std::span<uint8_t> payload) {
    ++server_.stats_.messages_in;
    if (app_ != nullptr) app_->on_message(server_.id_of(c_), opcode, payload);
  }

  WsServer& server_;
  Connection& c_;
  WsApplication* app_;
};

WsServer::WsServer(reactor::EventLoop& loop, WsServerConfig config)
    : loop_(loop), config_(config), wheel_(loop.now_ms(), &WsServer::on_timer, this, config.timer_tick_ms) {
  limits_.max_message_size = config_.max_message_size;
  limits_.sender = Sender::kClient;
  handler_id_ = loop_.add_handler(this);
  loop_.add_timer_wheel(&wheel_);
  loop_.add_before_sleep([this] {
    flush_pending();
    free_closed();
  });
  capacity_ = table_capacity();
  // MAP_NORESERVE: the table costs memory only for the pages of fds actually in use.
  void* memory = mmap(nullptr, capacity_ * sizeof(Connection), PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  table_ = memory == MAP_FAILED ? nullptr : static_cast<Connection*>(memory);
  cork_.resize(kCorkSize);
  reserve_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

WsServer::~WsServer() {
  if (table_ != nullptr) {
    for (size_t fd = 0; fd < capacity_; ++fd) {
      Connection& c = table_[fd];
      if (c.state == ConnectionState::kFree) continue;
      wheel_.cancel(&c.timer);
      delete c.out;
      delete c.extra;
      ::close(static_cast<int>(fd));
      c.~Connection();
    }
    munmap(table_, capacity_ * sizeof(Connection));
  }
  for (ConnectionExtra* extra : spare_extras_) delete extra;
  for (reactor::WriteQueue* queue : spare_queues_) delete queue;
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (reserve_fd_ >= 0) ::close(reserve_fd_);
}

int WsServer::listen(const reactor::SocketAddress& address, const reactor::ListenOptions& options) {
  if (table_ == nullptr) return -ENOMEM;
  if (handler_id_ < 0) return -EMFILE;
  int fd = reactor::listen_tcp(address, options);
  if (fd < 0) return fd;
  int rc = reactor::local_address(fd, bound_);
  if (rc == 0) rc = loop_.watch(fd, handler_id_, 0, EPOLLIN | EPOLLET);
  if (rc != 0) {
    ::close(fd);
    return rc;
  }
  listen_fd_ = fd;
  return 0;
}

void WsServer::add_websocket_route(std::string path, WsApplication* app) {
  routes_.push_back({std::move(path), app, nullptr});
}

void WsServer::add_http_route(std::string path, HttpHandler handler) {
  routes_.push_back({std::move(path), nullptr, std::move(handler)});
}

Connection* WsServer::find(ConnectionId id) const {
  size_t fd = static_cast<uint32_t>(id);
  if (fd >= capacity_) return nullptr;
  Connection& c = table_[fd];
  if (c.generation != static_cast<uint32_t>(id >> 32)) return nullptr;
  if (c.state == ConnectionState::kFree || c.state == ConnectionState::kClosed) return nullptr;
  return &c;
}

ConnectionId WsServer::id_of(const Connection& c) const {
  return static_cast<uint32_t>(fd_of(c)) | static_cast<uint64_t>(c.generation) << 32;
}

int WsServer::fd_of(const Connection& c) const { return static_cast<int>(&c - table_); }

bool WsServer::is_open(ConnectionId id) const {
  Connection* c = find(id);
  return c != nullptr && c->state == ConnectionState::kOpen;
}

uint32_t WsServer::user_data(ConnectionId id) const {
  Connection* c = find(id);
  return c == nullptr ? 0 : c->user_data;
}

size_t WsServer::buffered_bytes(ConnectionId id) const {
  Connection* c = find(id);
  return c == nullptr || c->out == nullptr ? 0 : c->out->bytes();
}

void WsServer::on_event(int fd, uint32_t tag, uint32_t events) {
  if (fd == listen_fd_) {
    accept_ready();
    return;
  }
  if (fd < 0 || static_cast<size_t>(fd) >= capacity_) return;
  Connection& c = table_[fd];
  // Stale-event guard: the event was for an earlier connection on this fd.
  if (c.generation != tag || c.state == ConnectionState::kFree || c.state == ConnectionState::kClosed) return;
  if (events & EPOLLOUT) on_writable(c);
  if (c.state == ConnectionState::kClosed) return;
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) on_readable(c, events);
}

void WsServer::accept_ready() {
  for (int i = 0; i < kAcceptBudget; ++i) {
    reactor::SocketAddress peer;
    int fd = reactor::accept_connection(listen_fd_, &peer);
    if (fd < 0) {
      if (fd == -EAGAIN) return;
      if (fd == -EINTR || fd == -ECONNABORTED || fd == -EPROTO) continue;
      if ((fd == -EMFILE || fd == -ENFILE) && reserve_fd_ >= 0) {
        // Out of fds: the pending connection would keep the listener readable forever. Spend
        // the reserve fd to take it off the queue and close it (libuv's trick).
        ::close(reserve_fd_);
        int dropped = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (dropped >= 0) ::close(dropped);
        ++stats_.accept_rejected;
        reserve_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (dropped >= 0) continue;
      }
      return;
    }
    if (static_cast<size_t>(fd) >= capacity_) {
      ::close(fd);
      ++stats_.accept_rejected;
      continue;
    }
    reactor::set_no_delay(fd);
    Connection& c = table_[fd];
    uint32_t generation = (c.generation + 1) & reactor::EventLoop::kMaxTag;
    new (&c) Connection();
    c.generation = generation;
    c.state = ConnectionState::kHandshake;
    c.timer_purpose = TimerPurpose::kHandshake;
    wheel_.schedule(&c.timer, config_.handshake_timeout_ms);
    ++stats_.accepted;
    ++stats_.connections;
    if (loop_.watch(fd, handler_id_, generation) != 0) destroy(c, kCloseAbnormal);
  }
  // Budget spent with connections possibly still queued: come back next iteration.
  loop_.mark_ready(listen_fd_, handler_id_, 0);
}

void WsServer::on_readable(Connection& c, uint32_t events) {
  c.flags &= ~kOnReadyList;
  int fd = fd_of(c);
  std::span<uint8_t> buffer = loop_.receive_buffer();
  size_t total = 0;
  corked_ = &c;
  for (;;) {
    reactor::IoResult r = reactor::read_some(fd, buffer.data(), buffer.size());
    if (r.status == reactor::IoStatus::kAgain) break;
    if (r.status != reactor::IoStatus::kOk) {
      uncork();
      // End of stream or reset. After our shutdown this is the clean end of the close
      // handshake; otherwise the peer vanished (RFC 6455 7.1.5: code 1006).
      destroy(c, (c.flags & kCloseReceived) ? c.close_code : kCloseAbnormal);
      return;
    }
    stats_.bytes_in += r.bytes;
    total += r.bytes;
    process_input(c, buffer.data(), r.bytes);
    if (c.state == ConnectionState::kClosed) {
      corked_ = nullptr;
      return;
    }
    // A short read drained the socket; new data will raise a new edge. With RDHUP/HUP pending,
    // read on to collect the end of stream.
    if (r.bytes < buffer.size() && !(events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))) break;
    if (total >= kReadBudget) {
      if (!(c.flags & kOnReadyList)) {
        c.flags |= kOnReadyList;
        loop_.mark_ready(fd, handler_id_, c.generation);
      }
      break;
    }
  }
  uncork();
}

void WsServer::on_writable(Connection& c) {
  if (c.out == nullptr) return;
  reactor::IoResult r = c.out->flush(fd_of(c));
  stats_.bytes_out += r.bytes;
  if (r.status == reactor::IoStatus::kError) {
    destroy(c, kCloseAbnormal);
    return;
  }
  if (c.out->empty()) {
    release_queue(c.out);
    c.out = nullptr;
    maybe_shutdown(c);
  }
}

void WsServer::process_input(Connection& c, uint8_t* data, size_t length) {
  switch (c.state) {
    case ConnectionState::kHandshake:
      process_request_head(c, data, length);
      break;
    case ConnectionState::kOpen:
      process_frames(c, data, length);
      break;
    case ConnectionState::kClosing:
      // After a failure or the peer's close, input is discarded (RFC 6455 7.1.7, 5.5.1);
      // while waiting for the peer's close, its control frames still count.
      if (!(c.flags & (kCloseReceived | kShutdownSent)) && (c.flags & kOpenNotified)) {
        process_frames(c, data, length);
      }
      break;
    case ConnectionState::kFree:
    case ConnectionState::kClosed:
      break;
  }
}

ConnectionExtra* WsServer::extra_for(Connection& c) {
  if (c.extra != nullptr) return c.extra;
  if (!spare_extras_.empty()) {
    c.extra = spare_extras_.back();
    spare_extras_.pop_back();
  } else {
    c.extra = new (std::nothrow) ConnectionExtra();
  }
  return c.extra;
}

reactor::WriteQueue* WsServer::acquire_queue() {
  if (spare_queues_.empty()) return new (std::nothrow) reactor::WriteQueue();
  reactor::WriteQueue* queue = spare_queues_.back();
  spare_queues_.pop_back();
  return queue;
}

void WsServer::release_queue(reactor::WriteQueue* queue) {
  // Fan-out creates and drains queues every iteration; keep a bounded pool of empty ones.
  if (spare_queues_.size() < kMaxSpareQueues) {
    spare_queues_.push_back(queue);
  } else {
    delete queue;
  }
}

void WsServer::release_extra_if_idle(Connection& c) {
  ConnectionExtra* extra = c.extra;
  if (extra == nullptr || !extra->reader.idle() || !extra->pending.empty()) return;
  c.extra = nullptr;
  if (spare_extras_.size() < kMaxSpareExtras && extra->pending.capacity() <= kKeepPendingCapacity) {
    extra->reader = ReaderState();
    spare_extras_.push_back(extra);
  } else {
    delete extra;
  }
}

void WsServer::process_frames(Connection& c, uint8_t* data, size_t length) {
  WsApplication* app = c.route < routes_.size() ? routes_[c.route].app : nullptr;
  Reader reader(*this, c, app);
  // Most reads start and end on frame boundaries: such connections keep no reader state, and
  // borrow the scratch state for the duration of the call.
  bool had_state = c.extra != nullptr;
  ReaderState& state = had_state ? c.extra->reader : scratch_reader_;
  if (!had_state) state = ReaderState();
  FeedResult result = feed_messages(state, data, length, limits_, reader);
  if (c.state == ConnectionState::kClosed) return;
  if (result.error != ProtocolError::kNone) {
    fail(c, result.error);
    return;
  }
  if (!had_state && !state.idle()) {
    ConnectionExtra* extra = extra_for(c);
    if (extra == nullptr) {
      destroy(c, kCloseInternalError);
      return;
    }
    extra->reader = state;
  }
  release_extra_if_idle(c);
}

void WsServer::process_request_head(Connection& c, uint8_t* data, size_t length) {
  std::string_view head(reinterpret_cast<const char*>(data), length);
  if (c.extra != nullptr && !c.extra->pending.empty()) {
    // Bounded: a head still incomplete past kMaxRequestHead is refused below (431).
    std::vector<uint8_t>& pending = c.extra->pending;
    pending.insert(pending.end(), data, data + length);
    head = std::string_view(reinterpret_cast<const char*>(pending.data()), pending.size());
  }
  HttpRequest request;
  HttpParseStatus status = parse_http_request(head, request);
  switch (status) {
    case HttpParseStatus::kNeedMore: {
      if (c.extra == nullptr || c.extra->pending.empty()) {
        ConnectionExtra* extra = extra_for(c);
        if (extra == nullptr) {
          destroy(c, kCloseInternalError);
          return;
        }
        extra->pending.assign(data, data + length);
      }
      return;
    }
    case HttpParseStatus::kBadRequest:
      respond_http(c, 400, "text/plain", "malformed HTTP request\n");
      return;
    case HttpParseStatus::kTooLarge:
      respond_http(c, 431, "text/plain", "request head too large\n");
      return;
    case HttpParseStatus::kBadVersion:
      respond_http(c, 505, "text/plain", "only HTTP/1.1 is supported\n");
      return;
    case HttpParseStatus::kComplete:
      break;
  }
  const Route* route = nullptr;
  for (const Route& r : routes_) {
    if (r.path == request.path) route = &r;
  }
  if (route == nullptr || route->app == nullptr) {
    serve_http(c, request, route);
    return;
  }
  if (!is_upgrade_request(request)) {
    respond_http(c, 426, "text/plain", "this path speaks WebSocket only\n",
                 "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n");
    return;
  }
  // Bytes after the head (a client that did not wait for the 101) are frames.
  size_t rest = head.size() - request.head_length;
  std::vector<uint8_t> head_copy;
  uint8_t* rest_data = nullptr;
  if (c.extra != nullptr && !c.extra->pending.empty()) {
    head_copy.swap(c.extra->pending);  // the request's views point into this; keep it alive
    rest_data = head_copy.data() + request.head_length;
  } else {
    rest_data = data + request.head_length;
  }
  upgrade(c, request, *route);
  if (c.state == ConnectionState::kOpen) {
    release_extra_if_idle(c);
    if (rest > 0) process_frames(c, rest_data, rest);
  }
}

void WsServer::upgrade(Connection& c, const HttpRequest& request, const Route& route) {
  UpgradeCheck check = check_upgrade_request(request);
  if (check.status != 101) {
    std::string body = std::string(check.reason) + "\n";
    respond_http(c, check.status, "text/plain", body,
                 check.status == 426 ? "Sec-WebSocket-Version: 13\r\n" : "");
    return;
  }
  ConnectionId id = id_of(c);
  UpgradeVerdict verdict = route.app->on_upgrade(id, request);
  if (find(id) == nullptr) return;
  if (verdict.status != 101) {
    std::string body = std::string(verdict.reason) + "\n";
    respond_http(c, verdict.status, "text/plain", body);
    return;
  }
  char response[1024];
  size_t length = write_upgrade_response(response, sizeof response, check.key, verdict.subprotocol);
  if (length == 0) {
    respond_http(c, 500, "text/plain", "upgrade response too large\n");
    return;
  }
  c.state = ConnectionState::kOpen;
  c.user_data = verdict.user_data;
  c.route = static_cast<uint8_t>(&route - routes_.data());
  c.flags |= kOpenNotified;
  wheel_.cancel(&c.timer);
  c.timer_purpose = TimerPurpose::kNone;
  ++stats_.upgrades;
  write_bytes(c, reinterpret_cast<const uint8_t*>(response), length, nullptr, 0);
  if (c.state == ConnectionState::kOpen) route.app->on_open(id);
}

void WsServer::serve_http(Connection& c, const HttpRequest& request, const Route* route) {
  bool head_only = request.method == "HEAD";
  if (request.method != "GET" && !head_only) {
    respond_http(c, 405, "text/plain", "method not allowed\n", "Allow: GET, HEAD\r\n");
    return;
  }
  if (route == nullptr || !route->handler) {
    respond_http(c, 404, "text/plain", "not found\n");
    return;
  }
  HttpReply reply;
  route->handler(request, reply);
  if (head_only) {
    // RFC 9110 9.3.2: HEAD gets the GET headers (with the body's length) and no body.
    std::string headers = reply.extra_headers;
    respond_http(c, reply.status, reply.content_type, {}, headers);
    return;
  }
  respond_http(c, reply.status, reply.content_type, reply.body, reply.extra_headers);
}

void WsServer::respond_http(Connection& c, int status, std::string_view content_type, std::string_view body,
                            std::string_view extra_headers) {
  std::string response(body.size() + extra_headers.size() + 256, '\0');
  size_t length = write_http_response(response.data(), response.size(), status, content_type, body, extra_headers);
  ++stats_.http_responses;
  wheel_.cancel(&c.timer);
  // The response is the last thing on this connection: flush, shut down, wait for EOF.
  c.flags |= kCloseSent | kCloseReceived;
  c.state = ConnectionState::kClosing;
  c.close_code = kCloseAbnormal;
  c.timer_purpose = TimerPurpose::kClose;
  wheel_.schedule(&c.timer, config_.close_timeout_ms);
  if (c.extra != nullptr) {
    c.extra->pending.clear();
    c.extra->reader = ReaderState();
  }
  write_bytes(c, reinterpret_cast<const uint8_t*>(response.data()), length, nullptr, 0);
  if (c.state != ConnectionState::kClosed) {
    release_extra_if_idle(c);
    maybe_shutdown(c);
  }
}

SendResult WsServer::send(ConnectionId id, Opcode opcode, std::span<const uint8_t> payload) {
  Connection* c = find(id);
  if (c == nullptr || c->state != ConnectionState::kOpen || (c->flags & kCloseSent)) return SendResult::kDropped;
  return send_frame(*c, opcode, payload.data(), payload.size());
}

SendResult WsServer::send_text(ConnectionId id, std::string_view text) {
  return send(id, Opcode::kText, {reinterpret_cast<const uint8_t*>(text.data()), text.size()});
}

SendResult WsServer::send_encoded(ConnectionId id, reactor::SharedBuffer* frame) {
  Connection* c = find(id);
  if (c == nullptr || c->state != ConnectionState::kOpen || (c->flags & kCloseSent)) return SendResult::kDropped;
  ++stats_.messages_out;
  // The connection being read gathers its output in the cork anyway.
  if (corked_ == c) return write_bytes(*c, frame->data(), frame->size(), nullptr, 0);
  if (c->out == nullptr) c->out = acquire_queue();
  if (c->out == nullptr) {
    destroy(*c, kCloseInternalError);
    return SendResult::kDropped;
  }
  c->out->push(frame, 0, frame->size());
  if (!(c->flags & kOnFlushList)) {
    c->flags |= kOnFlushList;
    flush_.push_back(c);
  }
  return SendResult::kBuffered;
}

void WsServer::flush_pending() {
  // Fan-out writes are deferred to here: a subscriber that got several frames this iteration
  // receives them in one writev instead of one syscall per frame.
  for (Connection* c : flush_) {
    c->flags &= ~kOnFlushList;
    if (c->state == ConnectionState::kClosed || c->state == ConnectionState::kFree) continue;
    on_writable(*c);
  }
  flush_.clear();
}

SendResult WsServer::send_frame(Connection& c, Opcode opcode, const uint8_t* payload, size_t length) {
  uint8_t header[kMaxFrameHeaderLength];
  size_t header_length = encode_frame_header(header, opcode, length);
  if (!is_control(opcode)) ++stats_.messages_out;
  return write_bytes(c, header, header_length, payload, length);
}

SendResult WsServer::write_bytes(Connection& c, const uint8_t* a, size_t a_length, const uint8_t* b,
                                 size_t b_length) {
  // Order is preserved: once anything is queued, everything after it queues too.
  if (c.out != nullptr) {
    queue_copy(c, a, a_length);
    queue_copy(c, b, b_length);
    return SendResult::kBuffered;
  }
  size_t total = a_length + b_length;
  if (corked_ == &c) {
    if (b_length < kCorkBypass && cork_length_ + total <= cork_.size()) {
      std::memcpy(cork_.data() + cork_length_, a, a_length);
      if (b_length != 0) std::memcpy(cork_.data() + cork_length_ + a_length, b, b_length);
      cork_length_ += total;
      return SendResult::kSent;
    }
    uncork();
    corked_ = &c;
    if (c.state == ConnectionState::kClosed) return SendResult::kDropped;
    if (c.out != nullptr) {
      queue_copy(c, a, a_length);
      queue_copy(c, b, b_length);
      return SendResult::kBuffered;
    }
  }
  iovec iov[2] = {{const_cast<uint8_t*>(a), a_length}, {const_cast<uint8_t*>(b), b_length}};
  reactor::IoResult r = reactor::write_vector(fd_of(c), iov, b_length == 0 ? 1 : 2);
  if (r.status == reactor::IoStatus::kError) {
    destroy(c, kCloseAbnormal);
    return SendResult::kDropped;
  }
  size_t written = r.status == reactor::IoStatus::kOk ? r.bytes : 0;
  stats_.bytes_out += written;
  if (written == total) return SendResult::kSent;
  if (written < a_length) {
    queue_copy(c, a + written, a_length - written);
    queue_copy(c, b, b_length);
  } else {
    queue_copy(c, b + (written - a_length), total - written);
  }
  return SendResult::kBuffered;
}

void WsServer::queue_copy(Connection& c, const uint8_t* data, size_t length) {
  if (length == 0) return;
  if (c.out == nullptr) c.out = acquire_queue();
  if (c.out == nullptr || !c.out->push_copy(data, length)) destroy(c, kCloseInternalError);
}

void WsServer::uncork() {
  Connection* c = corked_;
  corked_ = nullptr;
  size_t length = cork_length_;
  cork_length_ = 0;
  if (c == nullptr || length == 0 || c->state == ConnectionState::kClosed) return;
  write_bytes(*c, cork_.data(), length, nullptr, 0);
  if (c->state != ConnectionState::kClosed) maybe_shutdown(*c);
}

void WsServer::close(ConnectionId id, uint16_t code, std::string_view reason) {
  Connection* c = find(id);
  if (c == nullptr || (c->flags & kCloseSent)) return;
  if (c->state != ConnectionState::kOpen) {
    destroy(*c, code);
    return;
  }
  send_close(*c, code, reason);
}

void WsServer::close_all(uint16_t code, std::string_view reason) {
  for (size_t fd = 0; fd < capacity_; ++fd) {
    Connection& c = table_[fd];
    if (c.state == ConnectionState::kOpen && !(c.flags & kCloseSent)) send_close(c, code, reason);
    else if (c.state == ConnectionState::kHandshake) destroy(c, kCloseGoingAway);
  }
}

void WsServer::send_close(Connection& c, uint16_t code, std::string_view reason) {
  uint8_t payload[kMaxControlPayload];
  size_t length = encode_close_payload(payload, code, reason);
  c.flags |= kCloseSent;
  c.close_code = code;
  c.state = ConnectionState::kClosing;
  c.timer_purpose = TimerPurpose::kClose;
  wheel_.schedule(&c.timer, config_.close_timeout_ms);
  send_frame(c, Opcode::kClose, payload, length);
  if (c.state != ConnectionState::kClosed) maybe_shutdown(c);
}

void WsServer::fail(Connection& c, ProtocolError error) {
  // RFC 6455 7.1.7: fail the connection: send a close with the reason, stop reading frames,
  // close TCP without waiting for the peer's close.
  ++stats_.protocol_errors;
  if (c.extra != nullptr) {
    c.extra->pending.clear();
    c.extra->reader = ReaderState();
  }
  if (!(c.flags & kCloseSent)) send_close(c, close_code_for(error), reason_for(error));
  if (c.state == ConnectionState::kClosed) return;
  c.flags |= kCloseReceived;
  release_extra_if_idle(c);
  maybe_shutdown(c);
}

void WsServer::maybe_shutdown(Connection& c) {
  // RFC 6455 7.1.1: the server closes TCP first once both closes are exchanged. shutdown()
  // sends our FIN after the queued bytes; close() would reset the connection if the peer's
  // unread bytes were still in our receive queue, and the peer could lose our close frame.
  constexpr uint8_t kBoth = kCloseSent | kCloseReceived;
  if ((c.flags & kBoth) != kBoth || (c.flags & kShutdownSent) || c.out != nullptr) return;
  if (corked_ == &c && cork_length_ != 0) return;  // uncork() calls back here
  c.flags |= kShutdownSent;
  ::shutdown(fd_of(c), SHUT_WR);
  wheel_.schedule(&c.timer, config_.close_timeout_ms);
  c.timer_purpose = TimerPurpose::kClose;
}

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

void WsServer::free_closed() {
  // Connections die here, outside their own callbacks (DESIGN.md: never free a connection
  // inside its own callback). on_close may close others; loop until none are left.
  while (!closed_.empty()) {
    std::vector<Connection*> closing;
    closing.swap(closed_);
    for (Connection* c : closing) {
      ConnectionId id = id_of(*c);
      int fd = fd_of(*c);
      if (c->flags & kOpenNotified) {
        WsApplication* app = c->route < routes_.size() ? routes_[c->route].app : nullptr;
        if (app != nullptr) app->on_close(id, c->close_code == 0 ? kCloseAbnormal : c->close_code);
      }
      if (c->out != nullptr) {
        c->out->clear();
        release_queue(c->out);
        c->out = nullptr;
      }
      if (c->extra != nullptr) {
        c->extra->pending.clear();
        c->extra->reader = ReaderState();
        release_extra_if_idle(*c);
      }
      uint32_t generation = c->generation;
      c->~Connection();
      new (c) Connection();
      c->generation = generation;
      ::close(fd);
      --stats_.connections;
    }
  }
}

void WsServer::on_timer(void* context, reactor::TimerNode* node) {
  auto* server = static_cast<WsServer*>(context);
  // The node is the first member of Connection.
  auto* c = reinterpret_cast<Connection*>(reinterpret_cast<char*>(node) - offsetof(Connection, timer));
  server->on_timeout(*c);
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
  // The close handshake or the peer's EOF did not come: give up (RFC 6455 7.1.1 allows it).
  destroy(c, (c.flags & kCloseReceived) ? c.close_code : kCloseAbnormal);
}

}  // namespace protocol
