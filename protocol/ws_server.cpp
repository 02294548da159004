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
#include "protocol/ws_server_internal.h"
#include "reactor/socket_ops.h"
#include "reactor/tls_stream.h"

namespace protocol {

using namespace ws_internal;

namespace {

// The answer to a connection over max_connections / max_connections_per_ip.
constexpr std::string_view kBusyBody = "server busy: connection limit reached\n";
constexpr std::string_view kBusyHeaders = "Retry-After: 5\r\n";
// The spare pools' bounds in bytes (issue 13: pools must not hold memory a wave left behind).
constexpr size_t kMaxSpareQueueMemory = 1 << 20;
constexpr size_t kMaxSparePendingCapacity = 4096;

size_t table_capacity() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return 1 << 20;
  return static_cast<size_t>(limit.rlim_cur);
}

}  // namespace

// Feeds one connection's frames to its application.
class WsServer::Reader final : public MessageSink {
 public:
  // `state`: the reader state feed_messages runs with (it tells assemble_piece the frame's rest).
  Reader(WsServer& server, Connection& c, WsApplication* app, const ReaderState& state)
      : server_(server), c_(c), app_(app), state_(state) {}

  bool on_data(Opcode opcode, std::span<uint8_t> piece, bool first, bool last) override {
    return collect(opcode, piece, first, last, false);
  }

  bool on_compressed_data(Opcode opcode, std::span<uint8_t> piece, bool first, bool last) override {
    return collect(opcode, piece, first, last, true);
  }

  // Why the sink stopped the reader, if it found the message itself bad (inflate, UTF-8, size).
  ProtocolError error() const { return error_; }

  bool on_control(Opcode opcode, std::span<const uint8_t> payload) override {
    if (opcode == Opcode::kPing) {
      // RFC 6455 5.5.2/5.5.3: answer with a pong carrying the same payload, unless closing.
      // A peer that pings but does not read gets no pongs past the write-queue cap (5.5.3
      // allows answering only the latest ping), so pings cannot grow our memory.
      bool full = c_.out != nullptr && c_.out->memory() >= server_.config_.max_buffered;
      if (!(c_.flags & kCloseSent) && !full) {
        server_.send_frame(c_, Opcode::kPong, payload.data(), payload.size());
      }
      return c_.state != ConnectionState::kClosed;
    }
    if (opcode == Opcode::kPong) {
      ++server_.stats_.pongs_received;  // liveness was noted on read; unsolicited ones are fine
      return true;
    }
    // RFC 6455 5.5.1: answer a close with a close (echoing the code), then the server closes
    // the TCP connection (RFC 6455 7.1.1). Anything after the close frame is ignored.
    c_.flags |= kCloseReceived;
    // Nothing after the close in this read, and the read drained the socket: a peer that sends
    // nothing after its close (5.5.1) may be closed outright (see maybe_shutdown()).
    if (payload.data() + payload.size() == server_.input_end_) c_.flags2 |= kPeerCloseFrame;
    uint16_t code = close_payload_code(payload.data(), payload.size());
    c_.close_code = code;
    server_.queue_close_notice(c_);
    if (!(c_.flags & kCloseSent)) {
      uint8_t header[kMaxFrameHeaderLength];
      size_t header_length = encode_frame_header(header, Opcode::kClose, payload.size());
      server_.write_bytes(c_, header, header_length, payload.data(), payload.size());
      if (c_.state == ConnectionState::kClosed) return false;
      // Marked sent only now: shutdown (both flags set) must never overtake the close frame.
      c_.flags |= kCloseSent;
      c_.state = ConnectionState::kClosing;
      server_.wheel_.schedule(&c_.timer, server_.config_.close_timeout_ms);
      c_.timer_purpose = TimerPurpose::kClose;
    }
    server_.maybe_shutdown(c_);
    return false;
  }

 private:
  // Delivers a message whole in one piece at once, and gathers the pieces of any other.
  bool collect(Opcode opcode, std::span<uint8_t> piece, bool first, bool last, bool compressed) {
    // RFC 6455 7.1.2: once our close is sent, data is no longer delivered.
    if (c_.flags & kCloseSent) return true;
    if (first && last) {
      deliver(opcode, piece, compressed);
      return error_ == ProtocolError::kNone && c_.state != ConnectionState::kClosed;
    }
    ConnectionExtra* extra = server_.extra_for(c_);
    if (extra == nullptr) return false;
    MessageBuffer& message = extra->message;
    if (!assemble_piece(message, piece, state_)) {
      error_ = ProtocolError::kMessageTooBig;  // out of memory: too big to process (1009)
      return false;
    }
    if (last) {
      deliver(opcode, {message.data(), message.size()}, compressed);
      if (message.capacity() > kKeepPendingCapacity) {
        message.release();
      } else {
        message.clear();
      }
    }
    return error_ == ProtocolError::kNone && c_.state != ConnectionState::kClosed;
  }

  void deliver(Opcode opcode, std::span<uint8_t> payload, bool compressed) {
    if (compressed) {
      // RFC 7692 7.2.2: inflate the whole message; the limit applies to the inflated size.
      const InflateResult inflated = server_.deflate_.inflate(payload, server_.limits_.max_message_size, payload);
      if (inflated != InflateResult::kOk) {
        // Out of memory counts as too big to process (1009).
        error_ = inflated == InflateResult::kInvalidData ? ProtocolError::kInvalidCompressedData
                                                         : ProtocolError::kMessageTooBig;
        return;
      }
      // RFC 6455 8.1 applies to the text itself, which the reader could not see compressed.
      if (opcode == Opcode::kText && utf8_feed(kUtf8Accept, payload.data(), payload.size()) != kUtf8Accept) {
        error_ = ProtocolError::kInvalidUtf8;
        return;
      }
    }
    ++server_.stats_.messages_in;
    c_.flags |= kDataSeen;
    if (app_ != nullptr) app_->on_message(server_.id_of(c_), opcode, payload);
    if (compressed) server_.deflate_.release_large_buffers();
  }

  WsServer& server_;
  Connection& c_;
  WsApplication* app_;
  const ReaderState& state_;
  ProtocolError error_ = ProtocolError::kNone;
};

WsServer::WsServer(reactor::EventLoop& loop, WsServerConfig config)
    : loop_(loop),
      config_(config),
      wheel_(loop.now_ms(), &WsServer::on_timer, this, config.timer_tick_ms),
      deflate_(config.deflate_threshold) {
  limits_.sender = Sender::kClient;
  handler_id_ = loop_.add_handler(this);
  random_state_ ^= (static_cast<uint64_t>(getpid()) << 32) ^ loop_.now_ms();
  if (random_state_ == 0) random_state_ = 1;
  loop_.add_timer_wheel(&wheel_);
  loop_.add_timer_wheel(&memory_wheel_);
  stats_.memory_budget = config_.max_memory;
  loop_.add_before_sleep([this] {
    // Each step can feed the others (on_close may send or close; a failed flush destroys),
    // so run them until all are empty: nothing queued may wait for an unrelated wakeup.
    while (!close_notices_.empty() || !flush_.empty() || !closed_.empty()) {
      deliver_close_notices();
      flush_pending();
      free_closed();
    }
    tend_memory();
    tend_admission();
  });
  capacity_ = table_capacity();
  // MAP_NORESERVE: the table costs memory only for the pages of fds actually in use.
  void* memory = mmap(nullptr, capacity_ * sizeof(Connection), PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  table_ = memory == MAP_FAILED ? nullptr : static_cast<Connection*>(memory);
  if (table_ != nullptr && !map_admission_words()) {
    munmap(table_, capacity_ * sizeof(Connection));
    table_ = nullptr;
  }
  cork_.resize(kCorkSize);
  if (config_.io_uring) uring_error_ = uring_.open();
  reserve_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

WsServer::~WsServer() {
  wheel_.cancel(&pace_timer_);
  if (table_ != nullptr) {
    for (size_t fd = 0; fd < capacity_; ++fd) {
      Connection& c = table_[fd];
      if (c.state == ConnectionState::kFree) continue;
      wheel_.cancel(&c.timer);
      end_tls(static_cast<int>(fd));
      delete c.out;
      delete c.extra;
      ::close(static_cast<int>(fd));
      c.~Connection();
    }
    munmap(table_, capacity_ * sizeof(Connection));
    unmap_admission_words();
  }
  if (tls_streams_ != nullptr) munmap(tls_streams_, capacity_ * sizeof(reactor::TlsStream));
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

bool WsServer::add_websocket_route(std::string path, WsApplication* app, uint64_t max_message_size) {
  if (routes_.size() >= kMaxRoutes) return false;
  routes_.push_back({std::move(path), app, nullptr, max_message_size != 0 ? max_message_size : config_.max_message_size});
  return true;
}

bool WsServer::add_http_route(std::string path, HttpHandler handler) {
  if (routes_.size() >= kMaxRoutes) return false;
  routes_.push_back({std::move(path), nullptr, std::move(handler), 0});
  return true;
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

void WsServer::set_user_data(ConnectionId id, uint32_t value) {
  if (Connection* c = find(id)) c->user_data = value;
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
  if (tls_streams_ != nullptr) events = tls_events(fd, events);
  if (events & EPOLLOUT) on_writable(c);
  if (c.state == ConnectionState::kClosed) return;
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) on_readable(c, events);
}

void WsServer::accept_ready() {
  if (listen_fd_ < 0) return;  // drained (a pace timer may still fire)
  // Paced while the server is behind (ws_server_admission.cpp): what is not accepted now waits
  // in the kernel's accept queue, and the pace timer comes back for it.
  uint32_t budget = kAcceptBudget;
  const bool paced = pacer_.pacing();
  if (paced) budget = std::min<uint32_t>(budget, pacer_.allowance(loop_.now_ms()));
  for (uint32_t i = 0; i < budget; ++i) {
    reactor::SocketAddress peer;
    int fd = reactor::accept_connection(listen_fd_, &peer);
    // Linux allocates the fd before looking at the queue: EMFILE may mean nothing is waiting.
    if (fd == -EMFILE || fd == -ENFILE) fd = accept_without_fds(&peer);
    if (fd < 0) {
      if (fd == -EINTR || fd == -ECONNABORTED || fd == -EPROTO || fd == -ECANCELED) continue;
      return;  // -EAGAIN: the queue is empty
    }
    if (static_cast<size_t>(fd) >= capacity_) {
      ::close(fd);
      ++stats_.accept_rejected;
      continue;
    }
    Connection& c = table_[fd];
    uint32_t generation = (c.generation + 1) & reactor::EventLoop::kMaxTag;
    new (&c) Connection();
    c.generation = generation;
    c.state = ConnectionState::kHandshake;
    c.timer_purpose = TimerPurpose::kHandshake;
    wheel_.schedule(&c.timer, config_.handshake_timeout_ms);
    ++stats_.accepted;
    ++stats_.connections;
    if (paced) pacer_.take(1);
    // Over a limit: still read the request, then answer 503 (a reset would lose the reason).
    // Near the memory budget, WebSocket upgrades are refused once their path is known
    // (process_request_head), so that /metrics and /healthz still answer there.
    bool admitted = admit(fd, peer);
    if (loop_.watch(fd, handler_id_, generation) != 0 || (tls_ != nullptr && !start_tls(fd))) {
      destroy(c, kCloseAbnormal);
      continue;
    }
    if (!admitted) {
      // Refused at once, so an address over its limit holds fds for about a second, not for
      // the handshake timeout.
      ++stats_.busy_rejected;
      // Under TLS the 503 can only go out inside the session: it is sent on the first input.
      if (tls_ != nullptr) c.flags2 |= kRejectBusy;
      else respond_http(c, 503, "text/plain", kBusyBody, kBusyHeaders);
      if (c.state != ConnectionState::kClosed) wheel_.schedule(&c.timer, kRejectLingerMs);
      continue;
    }
    // Clients send the request head right after connecting, so it is usually here already:
    // read it now. A head that completes never counts as an incomplete handshake, and one that
    // does not joins them as the newest (which may close older ones over a cap).
    on_readable(c, EPOLLIN);
    if (c.state == ConnectionState::kHandshake) enter_handshake(c);
  }
  if (paced && budget < static_cast<uint32_t>(kAcceptBudget)) {
    // Stopped at the pace with connections possibly still queued: the timer comes back when
    // the next accept is allowed (the ready list would spin the loop instead of sleeping).
    ++stats_.accept_paced;
    if (!pace_timer_.armed()) wheel_.schedule(&pace_timer_, pacer_.ms_until_next());
    return;
  }
  // Budget spent with connections possibly still queued: come back next iteration.
  loop_.mark_ready(listen_fd_, handler_id_, 0);
}

void WsServer::on_readable(Connection& c, uint32_t events) {
  c.flags &= ~kOnReadyList;
  // Latched: a ready-list redelivery carries only EPOLLIN, and the kernel reports the FIN once.
  if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) c.flags2 |= kPeerHungUp;
  // A peer that does not read what we send is not read either: its bytes stay in the kernel
  // and TCP flow control slows it down. on_writable resumes reading once the queue drains.
  if (c.out != nullptr && c.out->memory() >= config_.max_buffered && c.state == ConnectionState::kOpen) {
    c.flags2 |= kReadPaused;
    return;
  }
  int fd = fd_of(c);
  const std::span<uint8_t> receive = loop_.receive_buffer();
  size_t total = 0;
  corked_ = &c;
  for (;;) {
    // Mid-way through a large frame, the bytes go straight into the message being assembled.
    std::span<uint8_t> buffer = direct_read_window(c);
    if (buffer.empty()) buffer = receive;
    reactor::IoResult r = read_input(c, buffer.data(), buffer.size());
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
    c.flags |= kHeardFrom;
    // A full buffer may have more behind it in the kernel.
    input_end_ = r.bytes < buffer.size() ? buffer.data() + r.bytes : nullptr;
    process_input(c, buffer.data(), r.bytes);
    input_end_ = nullptr;
    // What the input left buffered (a partial head or message) counts against max_memory.
    if (c.extra != nullptr) charge_extra(*c.extra);
    if (c.state == ConnectionState::kClosed) {
      corked_ = nullptr;
      return;
    }
    // A short read drained the socket; new data will raise a new edge. With RDHUP/HUP pending,
    // read on to collect the end of stream.
    if (r.bytes < buffer.size() && !(c.flags2 & kPeerHungUp)) break;
    if (total >= kReadBudget) {
      if (!(c.flags & kOnReadyList)) {
        c.flags |= kOnReadyList;
        loop_.mark_ready(fd, handler_id_, c.generation);
      }
      break;
    }
  }
  uncork();
  if (c.state != ConnectionState::kClosed) maybe_shutdown(c);
}

void WsServer::on_writable(Connection& c) {
  if (c.out == nullptr) return;
  finish_flush(c, flush_output(c));
}

std::span<uint8_t> WsServer::direct_read_window(Connection& c) {
  // Only where the frames are read and their data delivered (not while closing).
  if (c.extra == nullptr || c.state != ConnectionState::kOpen || (c.flags & kCloseSent)) return {};
  const size_t capacity = c.extra->message.capacity();
  std::span<uint8_t> window = protocol::direct_read_window(c.extra->reader, c.extra->message);
  // Charged before the read, which may find nothing and end the loop.
  if (c.extra->message.capacity() != capacity) charge_extra(*c.extra);
  return window;
}

void WsServer::process_input(Connection& c, uint8_t* data, size_t length) {
  switch (c.state) {
    case ConnectionState::kHandshake:
      if (c.flags2 & kRejectBusy) {
        respond_http(c, 503, "text/plain", kBusyBody, kBusyHeaders);
        break;
      }
      process_request_head(c, data, length);
      break;
    case ConnectionState::kOpen:
      process_frames(c, data, length);
      break;
    case ConnectionState::kClosing:
      // After a failure or the peer's close, input is discarded (RFC 6455 7.1.7, 5.5.1);
      // while waiting for the peer's close, its control frames still count.
      if (!(c.flags & (kCloseReceived | kShutdownSent)) && (c.flags2 & kUpgraded)) {
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
  if (c.extra != nullptr) charge_extra(*c.extra);
  return c.extra;
}

reactor::WriteQueue* WsServer::acquire_queue() {
  if (spare_queues_.empty()) return new (std::nothrow) reactor::WriteQueue(&memory_);
  reactor::WriteQueue* queue = spare_queues_.back();
  spare_queues_.pop_back();
  spare_queue_memory_ -= queue->memory();
  return queue;
}

void WsServer::release_queue(reactor::WriteQueue* queue) {
  // Fan-out creates and drains queues every iteration; keep a bounded pool of small empty
  // ones (a queue that once held many slices keeps their array: not worth pooling), bounded
  // in bytes too, and emptied when the heap is trimmed.
  if (spare_queues_.size() < kMaxSpareQueues && queue->slice_capacity() <= kMaxPooledSlices &&
      spare_queue_memory_ + queue->memory() <= kMaxSpareQueueMemory) {
    spare_queue_memory_ += queue->memory();
    spare_queues_.push_back(queue);
  } else {
    delete queue;
  }
}

void WsServer::release_extra_if_idle(Connection& c) {
  ConnectionExtra* extra = c.extra;
  if (extra == nullptr || !extra->reader.idle() || !extra->pending.empty()) return;
  // With no message open, what the message buffer holds is a failed or abandoned message.
  extra->message.clear();
  c.extra = nullptr;
  memory_.remove(extra->charged);
  stats_.extra_memory -= extra->charged;
  extra->charged = 0;
  if (spare_extras_.size() < kMaxSpareExtras && extra->pending.capacity() <= kKeepPendingCapacity &&
      extra->message.capacity() <= kKeepPendingCapacity) {
    extra->reader = ReaderState();
    // A pooled extra keeps at most small buffers: the pool must not pin 256 large ones.
    if (extra->pending.capacity() > kMaxSparePendingCapacity) std::vector<uint8_t>().swap(extra->pending);
    if (extra->message.capacity() > kMaxSparePendingCapacity) extra->message.release();
    spare_extras_.push_back(extra);
  } else {
    delete extra;
  }
}

void WsServer::process_frames(Connection& c, uint8_t* data, size_t length) {
  WsApplication* app = c.route < routes_.size() ? routes_[c.route].app : nullptr;
  limits_.max_message_size = c.route < routes_.size() ? routes_[c.route].max_message_size : config_.max_message_size;
  limits_.allowed_rsv = (c.flags2 & kDeflate) ? kRsv1 : 0;
  // Most reads start and end on frame boundaries: such connections keep no reader state, and
  // borrow the scratch state for the duration of the call.
  bool had_state = c.extra != nullptr;
  ReaderState& state = had_state ? c.extra->reader : scratch_reader_;
  if (!had_state) state = ReaderState();
  Reader reader(*this, c, app, state);
  FeedResult result = feed_messages(state, data, length, limits_, reader);
  if (c.state == ConnectionState::kClosed) return;
  if (result.error == ProtocolError::kNone) result.error = reader.error();
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


}  // namespace protocol
