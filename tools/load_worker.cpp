#include "tools/load_worker.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "reactor/socket_ops.h"
#include "tools/load_worker_internal.h"
#include "tools/process_cpu.h"
#include "tools/tls_io.h"

namespace tools {
namespace load_detail {

Worker::Worker(const LoadOptions& options, const WorkerPlan& plan,
               const std::function<void(const LoadCounters&)>& on_progress, const volatile std::sig_atomic_t* stop)
    : options_(options),
      plan_(plan),
      on_progress_(on_progress),
      stop_(stop),
      payload_(options.size, options.binary),
      rng_(0x9E3779B97F4A7C15ULL ^ (uint64_t{plan.index} << 32) ^ plan.start_ns),
      read_buffer_(new uint8_t[kReadBufferSize]) {}

bool Worker::setup() {
  // Timer slack defaults to 50 us, which would show up in open-loop latency as our own lateness.
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
  const std::string address = options_.url.host + ":" + std::to_string(options_.url.port);
  if (reactor::parse_address(address, server_) != 0) {
    std::fprintf(stderr, "parley-load: the host must be a numeric address: '%s'\n", options_.url.host.c_str());
    return false;
  }
  if (server_.storage.ss_family == AF_INET && options_.sources > 1) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&server_.storage);
    spread_sources_ = (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    source_base_ = 0x7f000002u;
  }
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) {
    std::fprintf(stderr, "parley-load: epoll_create1: %s\n", std::strerror(errno));
    return false;
  }
  if (options_.url.secure) {
    std::string error;
    tls_context_ = reactor::TlsContext::create_client(options_.tls, error);
    if (!tls_context_) {
      std::fprintf(stderr, "parley-load: %s\n", error.c_str());
      return false;
    }
  }

  const uint64_t start = plan_.start_ns;
  window_start_ = start + static_cast<uint64_t>(options_.warmup_s * kSecond);
  window_end_ = window_start_ + static_cast<uint64_t>(options_.duration_s * kSecond);
  next_tick_ = start + kTickInterval;
  next_progress_ = start + kSecond;

  context_.payload = &payload_;
  context_.result = &result_;
  context_.rng = &rng_;
  context_.path = options_.url.path;
  context_.host = host_header_value(options_.url);
  context_.window_start_ns = window_start_;
  context_.window_end_ns = window_end_;
  // Echo and broadcast runs usually ramp during the warmup; their connect latency is worth seeing anyway.
  context_.all_connects = !connect_scenario();

  const uint64_t n = plan_.connections;
  slots_ = std::vector<Slot>(n);
  if (chat_protocol()) {
    setup_broadcast();
  } else {
    if (echo()) ring_size_ = std::bit_ceil(static_cast<uint32_t>(open_loop() ? options_.max_in_flight : options_.pipeline));
    rings_.assign(n * ring_size_, 0);
    for (uint64_t i = 0; i < n; ++i) {
      slots_[i].client.attach_ring(&rings_[i * ring_size_], ring_size_ - 1);
      if (open_loop()) slots_[i].pacer = OpenLoopPacer(start, plan_.rate, n, i);
    }
  }
  if (open_loop()) message_pacer_ = OpenLoopPacer(start, plan_.rate);
  if (plan_.ramp != 0) ramp_pacer_ = OpenLoopPacer(start, plan_.ramp);
  out_.prepare(64 * 1024);
  return true;
}

void Worker::start_connections() {
  if (phase_ != RunPhase::kRunning || window_open_) return;
  const uint64_t n = plan_.connections;
  const uint64_t target = plan_.ramp != 0 ? std::min(n, ramp_pacer_.due(now_)) : n;
  while (started_ < target && (plan_.ramp != 0 || connecting_ < kMaxConnecting)) open_slot(static_cast<uint32_t>(started_++));
  if (!retry_.empty()) {
    size_t kept = 0;
    for (auto [when, index] : retry_) {
      if (when <= now_) {
        open_slot(index);
      } else {
        retry_[kept++] = {when, index};
      }
    }
    retry_.resize(kept);
  }
}

void Worker::open_slot(uint32_t index) {
  Slot& slot = slots_[index];
  const uint64_t attempt = attempts_++;
  const int fd = socket(server_.storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    context_.count_error(ErrorKind::kSocket, std::string("socket: ") + std::strerror(errno));
    if (connect_scenario()) retry_.push_back({now_ + kRetryDelay, index});
    if (chat_protocol()) on_subscriber_lost(index);
    if (chat() && slot.was_joined) restart_reconnect(index, false);  // the server may be restarting
    return;
  }
  reactor::set_no_delay(fd);
  if (spread_sources_) {
    // The kernel picks the port at connect() time per destination, so every source address has
    // its own ephemeral range (IP_BIND_ADDRESS_NO_PORT), and the workers' attempts interleave.
    const uint64_t global = attempt * plan_.count + plan_.index;
    sockaddr_in source{};
    source.sin_family = AF_INET;
    source.sin_addr.s_addr = htonl(source_base_ + static_cast<uint32_t>(global % options_.sources));
    int one = 1;
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    if (bind(fd, reinterpret_cast<const sockaddr*>(&source), sizeof source) != 0) {
      context_.count_error(ErrorKind::kSocket, std::string("bind: ") + std::strerror(errno));
      ::close(fd);
      if (connect_scenario()) retry_.push_back({now_ + kRetryDelay, index});
      if (chat_protocol()) on_subscriber_lost(index);
      if (chat() && slot.was_joined) restart_reconnect(index, false);  // the server may be restarting
      return;
    }
  }
  const int rc = connect(fd, server_.get(), server_.length);
  if (rc != 0 && errno != EINPROGRESS) {
    const int error = errno;
    ++result_.counters.connects_started;
    context_.count_error(error == EADDRNOTAVAIL ? ErrorKind::kSocket : ErrorKind::kConnect,
                         std::string("connect: ") + std::strerror(error));
    ::close(fd);
    if (connect_scenario()) retry_.push_back({now_ + kRetryDelay, index});
    if (chat_protocol()) on_subscriber_lost(index);
    if (chat() && slot.was_joined) restart_reconnect(index, false);  // the server may be restarting
    return;
  }
  epoll_event event{};
  event.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  event.data.u64 = (uint64_t{slot.generation} << 32) | index;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) != 0) {
    context_.count_error(ErrorKind::kSocket, std::string("epoll_ctl: ") + std::strerror(errno));
    ::close(fd);
    if (chat_protocol()) on_subscriber_lost(index);
    if (chat() && slot.was_joined) restart_reconnect(index, false);  // the server may be restarting
    return;
  }
  if (tls_context_) {
    SSL* ssl = tls_context_->new_client_connection(fd, options_.url.host);
    if (ssl == nullptr) {
      context_.count_error(ErrorKind::kSocket, "cannot create a TLS session: out of memory");
      ::close(fd);
      if (chat_protocol()) on_subscriber_lost(index);
      if (chat() && slot.was_joined) restart_reconnect(index, false);  // the server may be restarting
      return;
    }
    slot.tls.attach(ssl);
  }
  slot.fd = fd;
  slot.connecting = rc != 0 || tls_context_ != nullptr;
  slot.handshaking = true;
  slot.deadline_ns = now_ + kHandshakeTimeout;
  ++connecting_;
  ++active_;
  slot.client.start(context_, now_, slot.backlog);
  // Try the request at once: on loopback the TCP handshake has completed inside connect(), which
  // saves a wakeup per connection; elsewhere send() says EAGAIN and EPOLLOUT follows.
  flush_backlog(index);
}

void Worker::close_slot(uint32_t index, bool planned) {
  Slot& slot = slots_[index];
  if (slot.fd < 0) return;
  if (chat_protocol() && !slot.client.chat_joined()) on_subscriber_lost(index);
  if (!chat()) lost_ += slot.client.in_flight();  // a chat user keeps its unacked msg to resend
  slot.client.abandon(context_);
  // close_notify (RFC 8446 6.1), best effort: OpenSSL also stops offering the session of a
  // connection freed without one, which would end the resumption of later connections.
  slot.tls.shutdown();
  slot.tls.release();
  ::close(slot.fd);  // also removes it from the epoll set
  slot.fd = -1;
  ++slot.generation;
  slot.backlog.release();
  slot.connecting = false;
  slot.deadline_ns = 0;
  if (slot.handshaking) {
    slot.handshaking = false;
    --connecting_;
  }
  --active_;
  if (connect_scenario() && phase_ == RunPhase::kRunning) restart_.push_back(index);
  if (chat() && slot.was_joined) restart_reconnect(index, planned && slot.reconnecting);
}

void Worker::write_failed(uint32_t index, int error) {
  Slot& slot = slots_[index];
  if (slot.client.phase() == ClientPhase::kHandshake && !slot.backlog.empty()) {
    context_.count_error(ErrorKind::kConnect, std::string("connect: ") + std::strerror(error));
  } else if (slot.client.phase() == ClientPhase::kHandshake) {
    context_.count_error(ErrorKind::kHandshake, std::string("write before the 101: ") + std::strerror(error));
  } else {
    context_.count_error(ErrorKind::kClosed, std::string("write: ") + std::strerror(error));
  }
  close_slot(index);
}

ssize_t Worker::write_slot(Slot& slot, const uint8_t* data, size_t size) {
  // A TLS write that stalled is retried from the backlog, which starts at the same bytes.
  return slot.tls.attached() ? tls_write(slot.tls, data, size) : ::send(slot.fd, data, size, MSG_NOSIGNAL);
}

ssize_t Worker::read_slot(Slot& slot) {
  return slot.tls.attached() ? tls_read(slot.tls, read_buffer_.get(), kReadBufferSize)
                             : ::read(slot.fd, read_buffer_.get(), kReadBufferSize);
}

bool Worker::advance_tls_handshake(uint32_t index) {
  Slot& slot = slots_[index];
  const reactor::IoResult r = slot.tls.handshake();
  if (r.status == reactor::IoStatus::kOk) {
    slot.connecting = false;
    ++result_.counters.tls_handshakes;
    if (reactor::TlsContext::resumed(slot.tls.native())) ++result_.counters.tls_resumed;
    return true;
  }
  if (r.status == reactor::IoStatus::kAgain) return false;
  if (r.error == ECONNREFUSED || r.error == ETIMEDOUT || r.error == ENETUNREACH || r.error == EHOSTUNREACH) {
    context_.count_error(ErrorKind::kConnect, std::string("connect: ") + std::strerror(r.error));
  } else {
    context_.count_error(ErrorKind::kHandshake,
                         "TLS handshake: " + reactor::describe_client_handshake_failure(
                                                 slot.tls.native(), "failed (is the server speaking TLS?)"));
  }
  close_slot(index);
  return false;
}

void Worker::flush_backlog(uint32_t index) {
  Slot& slot = slots_[index];
  // wss://: the upgrade request waits in the backlog until the TLS handshake is done.
  if (slot.tls.attached() && !slot.tls.established() && !advance_tls_handshake(index)) return;
  while (!slot.backlog.empty()) {
    const ssize_t n = write_slot(slot, slot.backlog.data(), slot.backlog.size());
    if (n > 0) {
      slot.connecting = false;
      slot.backlog.consume(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;  // EPOLLOUT will come
    write_failed(index, n < 0 ? errno : EPIPE);
    return;
  }
  if (slot.backlog.capacity() > 64 * 1024) slot.backlog.release();
}

void Worker::send_out(uint32_t index) {
  Slot& slot = slots_[index];
  if (out_.empty()) return;
  if (slot.fd < 0) {
    out_.clear();
    return;
  }
  if (!slot.backlog.empty() || slot.connecting) {
    slot.backlog.append(out_.data(), out_.size());
    out_.clear();
    if (!slot.connecting) flush_backlog(index);
    return;
  }
  // One write for everything this event produced (all of a connection's pipelined frames).
  size_t done = 0;
  while (done < out_.size()) {
    const ssize_t n = write_slot(slot, out_.data() + done, out_.size() - done);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      slot.backlog.append(out_.data() + done, out_.size() - done);
      break;
    }
    out_.clear();
    write_failed(index, n < 0 ? errno : EPIPE);
    return;
  }
  out_.clear();
}

void Worker::dispatch(uint32_t index, uint32_t events) {
  Slot& slot = slots_[index];
  if (slot.connecting && (events & (EPOLLERR | EPOLLHUP))) {
    int error = 0;
    socklen_t length = sizeof error;
    getsockopt(slot.fd, SOL_SOCKET, SO_ERROR, &error, &length);
    // wss: a hang-up during the TLS handshake (TCP up) is the handshake's failure: read it.
    if (error == 0 && slot.tls.attached()) {
      on_readable(index, true);
      return;
    }
    context_.count_error(ErrorKind::kConnect, std::string("connect: ") + std::strerror(error ? error : ECONNREFUSED));
    close_slot(index);
    return;
  }
  if (events & EPOLLOUT) {
    if (!slot.tls.attached()) slot.connecting = false;  // wss: only once the TLS handshake is done
    if (!slot.backlog.empty()) flush_backlog(index);
    if (slot.fd < 0) return;
    // TLS: a read that stalled on a full socket goes on now.
    if (slot.tls.read_wants_write() && !(events & EPOLLIN)) events |= EPOLLIN;
  }
  if ((events & EPOLLIN) && slot.tls.write_wants_read() && !slot.backlog.empty()) {
    flush_backlog(index);  // TLS: a write that waited for bytes from the server
    if (slot.fd < 0) return;
  }
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
    // After the peer's FIN no new edge will come: read to the end, not just to a short read.
    on_readable(index, (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0);
  }
}

void Worker::on_readable(uint32_t index, bool until_again) {
  Slot& slot = slots_[index];
  if (slot.tls.attached() && !slot.tls.established()) {
    // The handshake's reply arrived: finish it, then the upgrade request goes out.
    flush_backlog(index);
    if (slot.fd < 0 || !slot.tls.established()) return;
  }
  for (int round = 0; round < kReadRounds; ++round) {
    const ssize_t n = read_slot(slot);
    if (n > 0) {
      // A clock read per read(), not per iteration: a latency sample must not include the time
      // spent on the connections handled before this one.
      now_ = monotonic_ns();
      const LoadClient::Feed feed =
          slot.client.feed(context_, std::span<uint8_t>(read_buffer_.get(), static_cast<size_t>(n)), now_, out_);
      if (feed.status != LoadClient::Status::kOk) {
        send_out(index);  // best effort: a close frame we owe
        if (feed.status == LoadClient::Status::kDone) {
          finish_cycle(index);
        } else {
          close_slot(index);
        }
        return;
      }
      if (feed.upgraded) {
        on_upgraded(index);
        if (slot.fd < 0) return;
      }
      if (feed.joined || feed.acks != 0) on_chat_feed(index, feed);
      if (feed.echoes != 0 && phase_ == RunPhase::kRunning) {
        if (open_loop()) {
          pump(index);
        } else if (now_ < window_end_) {
          while (slot.client.in_flight() < options_.pipeline) slot.client.send_message(context_, now_, out_);
        }
      }
      send_out(index);
      if (slot.fd < 0) return;
      // A short read drained the socket; data arriving later raises a new edge. TLS: unless the
      // stream ended behind the bytes just delivered (the next read reports it).
      if (static_cast<size_t>(n) < kReadBufferSize && !until_again && !slot.tls.saw_end()) return;
      continue;
    }
    if (n == 0) {
      if (slot.client.on_end_of_stream(context_) == LoadClient::Status::kDone) {
        finish_cycle(index);
      } else {
        close_slot(index);
      }
      return;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    const int error = errno;
    if (slot.client.phase() == ClientPhase::kHandshake) {
      context_.count_error(slot.connecting ? ErrorKind::kConnect : ErrorKind::kHandshake,
                           std::string("read: ") + std::strerror(error));
    } else if (slot.client.phase() != ClientPhase::kIdle) {
      context_.count_error(ErrorKind::kClosed, std::string("read: ") + std::strerror(error));
    }
    close_slot(index);
    return;
  }
  if (!slot.in_ready) {
    slot.in_ready = true;
    ready_.push_back(index);
  }
}

void Worker::on_upgraded(uint32_t index) {
  Slot& slot = slots_[index];
  // wss: the server's session ticket came before its 101; the next connections resume it
  // (a reconnecting client's abbreviated handshake, which the connect scenario then measures).
  if (tls_context_) tls_context_->keep_session(slot.tls.native());
  slot.handshaking = false;
  --connecting_;
  slot.deadline_ns = 0;
  if (chat_protocol()) {
    on_chat_upgraded(index);
    return;
  }
  if (echo()) {
    if (phase_ != RunPhase::kRunning) return;
    if (open_loop()) {
      // Start on the schedule from now, not owing the sends that fell due while connecting.
      slot.pacer.skip_to(now_);
      pump(index);
    } else if (now_ < window_end_) {
      for (uint64_t i = 0; i < options_.pipeline; ++i) slot.client.send_message(context_, now_, out_);
    }
    return;
  }
  if (options_.close_handshake) {
    slot.client.send_close(context_, out_);
    slot.deadline_ns = now_ + kCloseTimeout;
    return;
  }
  finish_cycle(index);
}

void Worker::finish_cycle(uint32_t index) {
  Slot& slot = slots_[index];
  if (connect_scenario() && context_.in_window(slot.client.connect_start_ns())) ++result_.counters.cycles_measured;
  close_slot(index, true);
}

void Worker::pump(uint32_t index) {
  if (chat()) {
    talk(index);
    return;
  }
  Slot& slot = slots_[index];
  uint64_t intended = 0;
  while (take_due(slot, intended)) slot.client.send_message(context_, intended, out_);
}

bool Worker::take_due(Slot& slot, uint64_t& intended) {
  if (slot.pacer.owed(now_) == 0 || !slot.client.can_send() || slot.client.in_flight() >= options_.max_in_flight) {
    return false;
  }
  intended = slot.pacer.next_intended();
  if (intended >= window_end_) return false;
  slot.pacer.take();
  return true;
}

void Worker::schedule_due() {
  const uint64_t n = plan_.connections;
  const uint64_t due = message_pacer_.due(now_);
  if (due > cursor_ + n) cursor_ = due - n;  // every slot is due anyway; each marked once
  for (; cursor_ < due; ++cursor_) {
    const auto index = static_cast<uint32_t>(cursor_ % n);
    Slot& slot = slots_[index];
    if (!slot.in_dirty && slot.fd >= 0) {
      slot.in_dirty = true;
      dirty_.push_back(index);
    }
  }
}

void Worker::flush_dirty() {
  for (uint32_t index : dirty_) {
    Slot& slot = slots_[index];
    slot.in_dirty = false;
    if (slot.fd < 0) continue;
    pump(index);
    send_out(index);
  }
  dirty_.clear();
}

void Worker::sample_server_cpu_begin() {
  if (plan_.index != 0 || options_.server_pids.empty() || server_cpu_started_) return;
  server_cpu_started_ = true;
  if (!processes_cpu_ns(options_.server_pids.data(), options_.server_pids.size(), server_cpu_begin_ns_)) {
    std::fprintf(stderr, "parley-load: cannot read /proc/PID/stat of every --server-pid: no server CPU figures\n");
    server_cpu_done_ = true;
    return;
  }
  server_cpu_begin_wall_ = monotonic_ns();
}

void Worker::sample_server_cpu_end() {
  if (!server_cpu_started_ || server_cpu_done_) return;
  server_cpu_done_ = true;
  uint64_t end_ns[kMaxServerPids] = {};
  if (!processes_cpu_ns(options_.server_pids.data(), options_.server_pids.size(), end_ns)) return;
  record_server_cpu(result_.counters, options_.server_pids.size(), server_cpu_begin_ns_, end_ns,
                    monotonic_ns() - server_cpu_begin_wall_);
}

void Worker::tick() {
  if (now_ >= next_tick_) {
    next_tick_ = now_ + kTickInterval;
    for (uint32_t i = 0; i < slots_.size(); ++i) {
      Slot& slot = slots_[i];
      if (slot.fd < 0 || slot.deadline_ns == 0 || now_ < slot.deadline_ns) continue;
      context_.count_error(ErrorKind::kTimeout, slot.tls.attached() && !slot.tls.established()
                                                    ? "no TLS handshake within 5 s of connecting"
                                                : slot.client.phase() == ClientPhase::kHandshake
                                                    ? "no 101 within 5 s of connecting"
                                                    : "no close frame and end of stream within 2 s of ours");
      close_slot(i);
    }
  }
  if (now_ >= next_progress_) {
    next_progress_ += kSecond;
    if (on_progress_) on_progress_(result_.counters);
  }
}

void Worker::advance_phase() {
  if (chat_protocol()) {
    advance_broadcast();
    return;
  }
  if (phase_ == RunPhase::kRunning && now_ >= window_start_) sample_server_cpu_begin();
  if (phase_ == RunPhase::kRunning && stop_ != nullptr && *stop_ != 0 && now_ < window_end_) {
    window_end_ = std::max(now_, window_start_);
    context_.window_end_ns = window_end_;
  }
  if (phase_ == RunPhase::kRunning && now_ >= window_end_) {
    sample_server_cpu_end();
    phase_ = RunPhase::kDraining;
    phase_deadline_ = now_ + kDrainTime;
    for (Slot& slot : slots_) slot.in_dirty = false;
    dirty_.clear();
    restart_.clear();
    retry_.clear();
  }
  if (phase_ == RunPhase::kDraining) {
    const bool drained = echo() ? outstanding() == 0 : active_ == 0;
    if (!drained && now_ < phase_deadline_) return;
    if (!echo()) {
      phase_ = RunPhase::kDone;
      return;
    }
    // RFC 6455 7.1.2: start the close handshake on every upgraded connection.
    phase_ = RunPhase::kClosing;
    phase_deadline_ = now_ + kCloseTimeout;
    for (uint32_t i = 0; i < slots_.size(); ++i) {
      Slot& slot = slots_[i];
      if (slot.fd < 0 || slot.client.phase() != ClientPhase::kOpen) continue;
      slot.client.send_close(context_, out_);
      slot.deadline_ns = now_ + kCloseTimeout;
      send_out(i);
    }
  }
  if (phase_ == RunPhase::kClosing && (active_ == 0 || now_ >= phase_deadline_)) phase_ = RunPhase::kDone;
}

uint64_t Worker::next_wakeup() const {
  if (!ready_.empty() || !restart_.empty()) return now_;
  uint64_t at = std::min(next_tick_, next_progress_);
  if (chat()) return std::min(at, next_chat_wakeup());
  if (broadcast()) return std::min(at, next_broadcast_wakeup());
  if (phase_ == RunPhase::kRunning) {
    at = std::min(at, window_end_);
    if (open_loop()) at = std::min(at, message_pacer_.intended(cursor_));
    if (plan_.ramp != 0 && started_ < plan_.connections) at = std::min(at, ramp_pacer_.intended(started_));
  } else {
    at = std::min(at, phase_deadline_);
  }
  return at;
}

LoadResult Worker::run() {
  if (!setup()) {
    ++result_.counters.errors[static_cast<size_t>(ErrorKind::kSocket)];
    return std::move(result_);
  }
  epoll_event events[kMaxEvents];
  now_ = monotonic_ns();
  while (now_ < plan_.start_ns) {
    const uint64_t wait = plan_.start_ns - now_;
    timespec ts{static_cast<time_t>(wait / kSecond), static_cast<long>(wait % kSecond)};
    nanosleep(&ts, nullptr);
    now_ = monotonic_ns();
  }
  bool have_pwait2 = true;
  for (;;) {
    now_ = monotonic_ns();
    advance_phase();
    if (phase_ == RunPhase::kDone) break;
    start_connections();
    if (!restart_.empty()) {
      std::vector<uint32_t> restart;
      restart.swap(restart_);
      for (uint32_t index : restart) open_slot(index);
    }
    if (open_loop() && phase_ == RunPhase::kRunning) {
      schedule_due();
      flush_dirty();
    }
    tick();

    const uint64_t wake = next_wakeup();
    const uint64_t wait = wake > now_ ? wake - now_ : 0;
    int n;
    if (have_pwait2) {
      timespec ts{static_cast<time_t>(wait / kSecond), static_cast<long>(wait % kSecond)};
      n = epoll_pwait2(epoll_fd_, events, kMaxEvents, &ts, nullptr);
      if (n < 0 && errno == ENOSYS) {
        have_pwait2 = false;
        continue;
      }
    } else {
      n = epoll_wait(epoll_fd_, events, kMaxEvents, static_cast<int>((wait + kMs - 1) / kMs));
    }
    if (n < 0 && errno != EINTR) {
      std::fprintf(stderr, "parley-load: epoll_wait: %s\n", std::strerror(errno));
      break;
    }
    now_ = monotonic_ns();
    for (int i = 0; i < n; ++i) {
      const auto index = static_cast<uint32_t>(events[i].data.u64 & 0xffffffffu);
      const auto generation = static_cast<uint32_t>(events[i].data.u64 >> 32);
      if (index >= slots_.size() || slots_[index].generation != generation || slots_[index].fd < 0) continue;
      dispatch(index, events[i].events);
    }
    if (!ready_.empty()) {
      std::vector<uint32_t> ready;
      ready.swap(ready_);
      for (uint32_t index : ready) {
        slots_[index].in_ready = false;
        if (slots_[index].fd >= 0) on_readable(index, false);
      }
    }
  }
  if (open_loop()) {
    // Sends the schedule called for in the window that the in-flight cap never let out.
    for (const Slot& slot : slots_) {
      if (slot.client.sent() == 0 && slot.fd < 0) continue;  // never connected: counted as errors
      const uint64_t first = std::max(slot.pacer.taken(), window_start_ > 0 ? slot.pacer.due(window_start_ - 1) : 0);
      const uint64_t last = slot.pacer.due(window_end_ - 1);
      if (last > first) result_.counters.unsent += last - first;
    }
  }
  // chat: what is still unacked now was never answered, resends included.
  if (chat()) {
    for (const Slot& slot : slots_) result_.counters.never_acked += slot.client.in_flight();
  }
  for (uint32_t i = 0; i < slots_.size(); ++i) {
    Slot& slot = slots_[i];
    if (slot.fd < 0) continue;
    // Broadcast ends with a plain TCP close: every close makes the server tell the remaining
    // members (O(N^2) `left` deliveries), and waiting on that is no part of the measurement.
    if (echo()) {
      context_.count_error(ErrorKind::kTimeout, slot.tls.attached() && !slot.tls.established()
                                                    ? "still no TLS handshake at the end of the run"
                                                : slot.client.phase() == ClientPhase::kHandshake
                                                    ? "still no 101 at the end of the run"
                                                    : "the server did not finish the close handshake in time");
    }
    close_slot(i);
  }
  ::close(epoll_fd_);
  LoadCounters& counters = result_.counters;
  if (counters.sent > counters.received) {
    counters.errors[static_cast<size_t>(ErrorKind::kUnanswered)] += counters.sent - counters.received;
  }
  if (counters.published > counters.acked + counters.refused) {
    counters.errors[static_cast<size_t>(ErrorKind::kUnanswered)] += counters.published - counters.acked - counters.refused;
  }
  if (chat_protocol()) {
    result_.measured_s = window_open_ ? static_cast<double>(window_end_ - window_start_) / kSecond : 0;
    if (window_open_ && context_.last_delivery_ns > window_start_) {
      result_.delivery_span_s = static_cast<double>(context_.last_delivery_ns - window_start_) / kSecond;
    }
  } else {
    result_.measured_s = static_cast<double>(window_end_ - window_start_) / kSecond;
  }
  return std::move(result_);
}

}  // namespace load_detail

uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * load_detail::kSecond + static_cast<uint64_t>(ts.tv_nsec);
}

WorkerPlan plan_worker(const LoadOptions& options, uint32_t index, uint32_t count, uint64_t start_ns) {
  auto share = [&](uint64_t total) { return total / count + (index < total % count ? 1 : 0); };
  WorkerPlan plan;
  plan.index = index;
  plan.count = count;
  plan.connections = share(options.connections);
  plan.rate = options.rate != 0 ? std::max<uint64_t>(share(options.rate), 1) : 0;
  plan.ramp = options.ramp != 0 ? std::max<uint64_t>(share(options.ramp), 1) : 0;
  plan.start_ns = start_ns;
  plan.first_user = index * (options.connections / count) + std::min<uint64_t>(index, options.connections % count);
  if (options.scenario == Scenario::kChat) plan.subscribers = plan.connections;
  if (options.scenario == Scenario::kBroadcast) {
    plan.subscribers = plan.connections;
    plan.publishers = index == 0 ? options.publishers : 0;
    plan.connections = plan.subscribers + plan.publishers;
    plan.rate = index == 0 ? options.rate : 0;
  }
  return plan;
}

BroadcastShared* map_broadcast_shared() {
  void* memory = mmap(nullptr, sizeof(BroadcastShared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) return nullptr;
  return new (memory) BroadcastShared();
}

LoadResult run_load_worker(const LoadOptions& options, const WorkerPlan& plan,
                           const std::function<void(const LoadCounters&)>& on_progress,
                           const volatile std::sig_atomic_t* stop) {
  auto worker = std::make_unique<load_detail::Worker>(options, plan, on_progress, stop);
  return worker->run();
}

}  // namespace tools
