// WsServer, output: sending frames (cork, direct writev, queues, deferred fan-out flush, and
// with config io_uring the iteration's plain output in one io_uring submission) and the close
// handshake (RFC 6455 7).
#include <sys/socket.h>

#include <cstring>
#include <new>

#include "protocol/close_code.h"
#include "protocol/ws_connection.h"
#include "protocol/ws_server.h"
#include "protocol/ws_server_internal.h"

namespace protocol {

using namespace ws_internal;

namespace {

// io_uring output waits for the end of the iteration; a connection that has this much waiting
// already (a long pipelined read) writes it at once, as the sendmsg path writes each full cork:
// the write-queue cap must see what the kernel would have taken, not a whole read's replies.
constexpr size_t kBatchFlushBytes = 64 * 1024;
// A write at least this large goes out at once (sendmsg) even with io_uring: it gains nothing
// from sharing a submission (one syscall already carries kilobytes), and deferring it meant a
// copy into a write queue freed after the submission, a heap that grew and shrank by the
// iteration's output (brk and page faults: pipelined 1 KiB echo ran at 0.42x the sendmsg path's
// throughput at the same CPU before this cut).
constexpr size_t kBatchDirectBytes = 4 * 1024;

}  // namespace

bool WsServer::over_buffer_cap(Connection& c) {
  if (memory_exhausted() && memory_refuses(c)) return true;
  // A message is accepted whole while the queue is under the cap, so the cap bounds memory to
  // max_buffered + one message, and a single large message can still go out. The cap applies
  // to the heap bytes the queue pins (allocations, a shared frame in full), not to the bytes
  // left to write: a small private frame behind a shared one costs its allocation.
  if (c.out == nullptr || c.out->memory() < config_.max_buffered) return false;
  if (config_.slow_consumer == SlowConsumerPolicy::kDrop) {
    ++stats_.messages_dropped;
  } else {
    ++stats_.slow_consumers_closed;
    send_close(c, kClosePolicyViolation, "slow consumer: write queue full");
  }
  return true;
}

SendResult WsServer::send(ConnectionId id, Opcode opcode, std::span<const uint8_t> payload) {
  Connection* c = find(id);
  if (c == nullptr || c->state != ConnectionState::kOpen || (c->flags & kCloseSent)) return SendResult::kDropped;
  if (!is_control(opcode) && over_buffer_cap(*c)) return SendResult::kDropped;
  std::span<const uint8_t> compressed;
  if (!is_control(opcode) && (c->flags2 & kDeflate) &&
      deflate_.compress(static_cast<uint8_t>(c->flags2 >> kDeflateWindowShift), payload, compressed)) {
    return send_frame(*c, opcode, compressed.data(), compressed.size(), true);
  }
  return send_frame(*c, opcode, payload.data(), payload.size());
}

SendResult WsServer::send_text(ConnectionId id, std::string_view text) {
  return send(id, Opcode::kText, {reinterpret_cast<const uint8_t*>(text.data()), text.size()});
}

SendResult WsServer::send_encoded(ConnectionId id, reactor::SharedBuffer* frame) {
  Connection* c = find(id);
  if (c == nullptr || c->state != ConnectionState::kOpen || (c->flags & kCloseSent)) return SendResult::kDropped;
  if (over_buffer_cap(*c)) return SendResult::kDropped;
  // Compressed once per frame and window class, then shared like the plain frame.
  if (c->flags2 & kDeflate) frame = deflate_.compressed_frame(frame, static_cast<uint8_t>(c->flags2 >> kDeflateWindowShift));
  ++stats_.messages_out;
  // The connection being read gathers its output in the cork anyway.
  if (corked_ == c) return write_bytes(*c, frame->data(), frame->size(), nullptr, 0);
  if (c->out == nullptr) c->out = acquire_queue();
  if (c->out == nullptr) {
    destroy(*c, kCloseInternalError);
    return SendResult::kDropped;
  }
  note_queue(*c);
  c->out->push(frame, 0, frame->size());
  schedule_flush(*c);
  return SendResult::kBuffered;
}

void WsServer::schedule_flush(Connection& c) {
  if (c.flags & kOnFlushList) return;
  c.flags |= kOnFlushList;
  flush_.push_back(&c);
}

void WsServer::flush_pending() {
  // Fan-out writes are deferred to here: a subscriber that got several frames this iteration
  // receives them in one writev instead of one syscall per frame. Taken out of flush_ first:
  // a flush may schedule another (the before-sleep hook runs until flush_ stays empty).
  flushing_.swap(flush_);
  if (uring_.is_open()) {
    flush_batched(flushing_);
  } else {
    for (Connection* c : flushing_) {
      c->flags &= ~kOnFlushList;
      if (c->state == ConnectionState::kClosed || c->state == ConnectionState::kFree) continue;
      on_writable(*c);
    }
  }
  flushing_.clear();
}

bool WsServer::batches_output(const Connection& c) const {
  // TLS output goes through OpenSSL's own writes (records, renegotiation state): unbatched.
  return uring_.is_open() && !uses_tls(c);
}

void WsServer::flush_batched(std::vector<Connection*>& connections) {
  // Every connection's queue leaves in one io_uring submission (a new one only per
  // UringBatch::kEntries sends) instead of one sendmsg each: issue 18, fewer kernel crossings.
  // The iovecs point into the queues, which nothing touches until complete() has returned.
  for (Connection* c : connections) {
    c->flags &= ~kOnFlushList;
    if (c->state == ConnectionState::kClosed || c->state == ConnectionState::kFree || c->out == nullptr) continue;
    // A big queue (closed-loop fan-out: hundreds of frames a connection) goes by sendmsg, as a
    // big write does in write_bytes: sharing a submission saves nothing on a write that big,
    // io_uring adds its own per-send work, and one io_uring send gathers 64 slices where
    // sendmsg gathers 1,024 (closed-loop fan-out to 10,000 cost 0.169 us per delivery with
    // every queue batched, 0.106 by sendmsg).
    if (!batches_output(*c) || c->out->bytes() >= kBatchDirectBytes ||
        c->out->slices() > static_cast<size_t>(reactor::UringBatch::kMaxIov)) {
      on_writable(*c);
      continue;
    }
    iovec iov[reactor::UringBatch::kMaxIov];
    size_t requested = 0;
    int count = c->out->gather(iov, reactor::UringBatch::kMaxIov, requested);
    if (uring_sends_.size() == reactor::UringBatch::kEntries) {
      uring_.complete(&WsServer::on_send_complete, this);
      uring_sends_.clear();
      if (!uring_.is_open()) {  // the ring failed: this and later flushes go by sendmsg
        on_writable(*c);
        continue;
      }
    }
    uring_.add_send(fd_of(*c), iov, count, uring_sends_.size());
    uring_sends_.push_back({id_of(*c), requested});
  }
  uring_.complete(&WsServer::on_send_complete, this);
  uring_sends_.clear();
}

void WsServer::on_send_complete(void* context, uint64_t index, reactor::IoResult result) {
  auto* server = static_cast<WsServer*>(context);
  const UringSend& send = server->uring_sends_[index];
  Connection* c = server->find(send.id);
  if (c == nullptr || c->out == nullptr) return;
  if (result.status == reactor::IoStatus::kOk) {
    // As WriteQueue::flush() after a sendmsg: a short write leaves the rest for the EPOLLOUT
    // edge; a full one with more queued (more slices than one send gathers) goes again.
    result.status = c->out->consume(result.bytes, send.requested);
    if (result.status == reactor::IoStatus::kOk && !c->out->empty()) server->schedule_flush(*c);
  }
  server->finish_flush(*c, result);
}

void WsServer::finish_flush(Connection& c, reactor::IoResult r) {
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
  if ((c.flags2 & kReadPaused) && (c.out == nullptr || c.out->memory() < config_.max_buffered / 2)) {
    c.flags2 &= ~kReadPaused;
    if (!(c.flags & kOnReadyList)) {
      c.flags |= kOnReadyList;
      loop_.mark_ready(fd_of(c), handler_id_, c.generation);
    }
  }
}

SendResult WsServer::send_frame(Connection& c, Opcode opcode, const uint8_t* payload, size_t length, bool rsv1) {
  uint8_t header[kMaxFrameHeaderLength];
  size_t header_length = encode_frame_header(header, opcode, length, true, rsv1);
  if (!is_control(opcode)) ++stats_.messages_out;
  return write_bytes(c, header, header_length, payload, length);
}

SendResult WsServer::write_bytes(Connection& c, const uint8_t* a, size_t a_length, const uint8_t* b,
                                 size_t b_length) {
  // Order is preserved: once anything is queued, everything after it queues too.
  if (c.out != nullptr) {
    if (batches_output(c)) {
      defer_output(c, a, a_length, b, b_length);
    } else {
      queue_copy(c, a, a_length, b, b_length);
    }
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
      queue_copy(c, a, a_length, b, b_length);
      return SendResult::kBuffered;
    }
  }
  if (total < kBatchDirectBytes && batches_output(c)) {
    // Written with the iteration's other output in one io_uring submission (flush_pending);
    // as good as sent, like the cork. A large write (a full cork, a big payload) still goes at
    // once, uncopied.
    defer_output(c, a, a_length, b, b_length);
    return c.state == ConnectionState::kClosed ? SendResult::kDropped : SendResult::kSent;
  }
  iovec iov[2] = {{const_cast<uint8_t*>(a), a_length}, {const_cast<uint8_t*>(b), b_length}};
  reactor::IoResult r = write_output(c, iov, b_length == 0 ? 1 : 2);
  if (r.status == reactor::IoStatus::kError) {
    destroy(c, kCloseAbnormal);
    return SendResult::kDropped;
  }
  size_t written = r.status == reactor::IoStatus::kOk ? r.bytes : 0;
  stats_.bytes_out += written;
  if (written == total) return SendResult::kSent;
  if (written < a_length) {
    queue_copy(c, a + written, a_length - written, b, b_length);
  } else {
    queue_copy(c, b + (written - a_length), total - written, nullptr, 0);
  }
  return SendResult::kBuffered;
}

void WsServer::queue_copy(Connection& c, const uint8_t* a, size_t a_length, const uint8_t* b, size_t b_length) {
  if (a_length + b_length == 0) return;
  if (c.out == nullptr) {
    c.out = acquire_queue();
    if (c.out != nullptr) note_queue(c);
  }
  // Header and payload in one call: a new private buffer is sized for the whole frame.
  if (c.out == nullptr || !c.out->push_copy(a, a_length, b, b_length)) destroy(c, kCloseInternalError);
}

void WsServer::defer_output(Connection& c, const uint8_t* a, size_t a_length, const uint8_t* b, size_t b_length) {
  const bool fresh = c.out == nullptr;
  const size_t before = fresh ? 0 : c.out->bytes();
  queue_copy(c, a, a_length, b, b_length);
  if (c.state == ConnectionState::kClosed || c.out == nullptr) return;
  if (before < kBatchFlushBytes && c.out->bytes() >= kBatchFlushBytes) {
    on_writable(c);  // a short write leaves the rest for the EPOLLOUT edge, as ever
    return;
  }
  // A queue that was there already is on the flush list, or waits for EPOLLOUT (socket full).
  if (fresh) schedule_flush(c);
}

void WsServer::uncork() {
  Connection* c = corked_;
  corked_ = nullptr;
  size_t length = cork_length_;
  cork_length_ = 0;
  if (c == nullptr || length == 0 || c->state == ConnectionState::kClosed) return;
  // No shutdown from here: uncork() also runs in the middle of a read (cork full), when a
  // close frame may be about to be written; on_readable shuts down once the read is done.
  write_bytes(*c, cork_.data(), length, nullptr, 0);
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
  // Only closes the server starts (not the echo of a peer's close) and not a plain goodbye.
  if (refusal_listener_ && !(c.flags & kCloseReceived) && code != kCloseNormal && code != kCloseGoingAway) {
    refusal_listener_(id_of(c), code, reason);
  }
  c.flags |= kCloseSent;
  c.close_code = code;
  c.state = ConnectionState::kClosing;
  queue_close_notice(c);
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
  constexpr uint8_t kPeerClosedUpgraded = kUpgraded | kPeerCloseFrame;
  if ((c.flags2 & kPeerClosedUpgraded) == kPeerClosedUpgraded && !uses_tls(c)) {
    // Both close frames are exchanged, the peer's ended a read that drained the socket, and a
    // peer sends nothing after its close (RFC 6455 5.5.1): our receive queue is empty, so
    // close() is as graceful as shutdown(): the kernel sends our queued bytes, then the FIN,
    // and we still close first (7.1.1). It saves the shutdown(), the wakeup and read() for the
    // peer's FIN, and frees the fd at once. Hazard: a peer that breaks 5.5.1 with bytes still
    // in flight gets a reset. Bytes seen after its close keep the lingering close below, and
    // so does TLS (the peer's close_notify would arrive on a closed socket).
    destroy(c, c.close_code);
    return;
  }
  c.flags |= kShutdownSent;
  shutdown_output(c);
  wheel_.schedule(&c.timer, config_.close_timeout_ms);
  c.timer_purpose = TimerPurpose::kClose;
}


}  // namespace protocol
