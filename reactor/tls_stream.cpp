#include "reactor/tls_stream.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cstring>

namespace reactor {

void TlsStream::attach(SSL* ssl) {
  release();
  ssl_ = ssl;
}

void TlsStream::release() {
  if (ssl_ != nullptr) SSL_free(ssl_);
  ssl_ = nullptr;
  flags_ = 0;
}

IoResult TlsStream::stalled(int rc, Flags want_other_direction) {
  int error = SSL_get_error(ssl_, rc);
  switch (error) {
    case SSL_ERROR_WANT_READ:
      if (want_other_direction == kWriteWantsRead) flags_ |= kWriteWantsRead;
      return {IoStatus::kAgain, 0, EAGAIN};
    case SSL_ERROR_WANT_WRITE:
      if (want_other_direction == kReadWantsWrite) flags_ |= kReadWantsWrite;
      return {IoStatus::kAgain, 0, EAGAIN};
    case SSL_ERROR_ZERO_RETURN:
      flags_ |= kEnd;
      return {IoStatus::kClosed, 0, 0};
    case SSL_ERROR_SYSCALL:
      // errno 0: the peer closed TCP without close_notify. Either way the session is over.
      flags_ |= kFailed | kEnd;
      ERR_clear_error();
      return errno == 0 ? IoResult{IoStatus::kClosed, 0, 0} : IoResult{IoStatus::kError, 0, errno};
    default:
      // SSL_ERROR_SSL and the rest: a protocol failure (plain HTTP on the TLS port, a bad
      // record, OpenSSL 3's unexpected-EOF). The error queue is per thread: empty it so the
      // next connection's SSL_get_error is not misled.
      flags_ |= kFailed | kEnd;
      ERR_clear_error();
      return {IoStatus::kError, 0, EPROTO};
  }
}

IoResult TlsStream::handshake() {
  if (established()) return {IoStatus::kOk, 0, 0};
  if (flags_ & kFailed) return {IoStatus::kError, 0, EPROTO};
  errno = 0;
  int rc = SSL_do_handshake(ssl_);
  if (rc == 1) {
    flags_ |= kEstablished;
    return {IoStatus::kOk, 0, 0};
  }
  IoResult r = stalled(rc, kNone);
  // An end of stream in the middle of the handshake is a failed handshake, not a clean close.
  if (r.status == IoStatus::kClosed) r = {IoStatus::kError, 0, ECONNRESET};
  return r;
}

IoResult TlsStream::read(void* buffer, size_t capacity) {
  if (flags_ & kEnd) return {(flags_ & kFailed) ? IoStatus::kError : IoStatus::kClosed, 0, 0};
  if (!established()) {
    IoResult r = handshake();
    if (r.status != IoStatus::kOk) return r;
  }
  flags_ &= ~kReadWantsWrite;
  auto* out = static_cast<uint8_t*>(buffer);
  size_t total = 0;
  // Edge-triggered: keep going until OpenSSL has to wait for the socket, so no decrypted or
  // buffered record is left behind without a new edge to announce it (SSL_pending, read-ahead).
  while (total < capacity) {
    size_t got = 0;
    errno = 0;
    int rc = SSL_read_ex(ssl_, out + total, capacity - total, &got);
    if (rc == 1) {
      total += got;
      continue;
    }
    IoResult r = stalled(rc, kReadWantsWrite);
    if (total == 0) return r;
    break;  // deliver what arrived; kEnd (if set) makes the next call report the end
  }
  return {IoStatus::kOk, total, 0};
}

IoResult TlsStream::write_vector(const iovec* iov, int count) {
  if (!established() || (flags_ & kFailed)) return {IoStatus::kError, 0, ENOTCONN};
  flags_ &= ~kWriteWantsRead;
  // Small buffers (a frame header, a short frame) go out gathered into one record: a record
  // per iovec would cost a syscall and ~22 bytes of TLS overhead each. Per thread, because
  // several single-threaded loops may share a process.
  thread_local uint8_t staging[kMaxRecordPlaintext];
  size_t total = 0;
  int index = 0;
  size_t offset = 0;  // into iov[index]
  while (index < count) {
    if (offset == iov[index].iov_len) {
      ++index;
      offset = 0;
      continue;
    }
    const uint8_t* data = static_cast<const uint8_t*>(iov[index].iov_base) + offset;
    size_t length = iov[index].iov_len - offset;
    if (length < kMaxRecordPlaintext) {
      // A retry after WANT_WRITE must offer at least the bytes of the pending record: it
      // gathers from the same position, and the queue only grows, so it does.
      length = 0;
      size_t at = offset;
      for (int i = index; i < count && length < kMaxRecordPlaintext; ++i, at = 0) {
        size_t take = std::min(iov[i].iov_len - at, kMaxRecordPlaintext - length);
        std::memcpy(staging + length, static_cast<const uint8_t*>(iov[i].iov_base) + at, take);
        length += take;
      }
      data = staging;
    }
    size_t written = 0;
    errno = 0;
    int rc = SSL_write_ex(ssl_, data, length, &written);
    if (rc != 1) {
      IoResult r = stalled(rc, kWriteWantsRead);
      if (r.status == IoStatus::kClosed) r = {IoStatus::kError, 0, EPIPE};
      if (r.status == IoStatus::kAgain && total > 0) return {IoStatus::kOk, total, 0};
      r.bytes = total;
      return r;
    }
    total += written;
    while (written > 0) {
      size_t take = std::min(written, iov[index].iov_len - offset);
      written -= take;
      offset += take;
      if (offset == iov[index].iov_len && written > 0) {
        ++index;
        offset = 0;
      }
    }
  }
  return {IoStatus::kOk, total, 0};
}

void TlsStream::shutdown() {
  if (ssl_ == nullptr || !established() || (flags_ & (kFailed | kShutdownSent))) return;
  flags_ |= kShutdownSent;
  // One attempt: a full socket drops the alert, which the TCP FIN that follows makes moot.
  if (SSL_shutdown(ssl_) < 0) ERR_clear_error();
}

}  // namespace reactor
