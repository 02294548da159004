#pragma once
// One connection's TLS layer over its non-blocking socket, driven by edge-triggered readiness:
// the handshake (server or client: the SSL's accept or connect state decides), reads that
// drain OpenSSL until it needs the socket again, gathered writes as TLS records, and
// close_notify. Each call reports, like the socket wrappers, an
// IoResult; a call that stalled remembers which direction it waits for, because TLS can make a
// read wait for the socket to take a write and a write wait for bytes to arrive.
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>

#include "reactor/io_result.h"

typedef struct ssl_st SSL;

namespace reactor {

class TlsStream {
 public:
  // Largest plaintext in one TLS record (RFC 8446 5.1, RFC 5246 6.2.1).
  static constexpr size_t kMaxRecordPlaintext = 16384;

  // Takes ownership of `ssl` (from TlsContext::new_connection or new_client_connection).
  void attach(SSL* ssl);
  // Frees the SSL (without close_notify) and resets the stream; safe when detached.
  void release();
  bool attached() const { return ssl_ != nullptr; }
  // True once the handshake finished.
  bool established() const { return (flags_ & kEstablished) != 0; }
  // The SSL (nullptr when detached), e.g. to read the verify result after a failed handshake.
  SSL* native() const { return ssl_; }

  // Advances the handshake (server side in accept state, client side in connect state): kOk
  // once it is finished, kAgain while it waits for the socket (either direction), kError when
  // it failed (not TLS, no shared version or cipher, a refused certificate).
  IoResult handshake();
  // Finishes the handshake if needed, then decrypts into `buffer` until it is full or OpenSSL
  // needs more bytes from the socket. A short kOk therefore means the socket is drained and
  // nothing is left inside OpenSSL. kClosed at close_notify or end of stream (a kOk carrying the
  // last bytes comes first; saw_end() is then true), kError on a TLS failure.
  IoResult read(void* buffer, size_t capacity);
  // Encrypts and writes the buffers in order, gathering small ones into one record. kOk with
  // fewer bytes than asked, or kAgain, when the socket is full or (write_wants_read()) TLS
  // needs input first. A stalled write must be retried with the same bytes first (they may be
  // at another address), as a write queue does. kError before the handshake finished or on
  // failure.
  IoResult write_vector(const iovec* iov, int count);
  // Sends close_notify (RFC 8446 6.1) best effort, once, if the session is usable.
  void shutdown();

  // The last read stalled until the socket can take a write (EPOLLOUT should retry the read).
  bool read_wants_write() const { return (flags_ & kReadWantsWrite) != 0; }
  // The last write stalled until bytes arrive (EPOLLIN should retry the write).
  bool write_wants_read() const { return (flags_ & kWriteWantsRead) != 0; }
  // close_notify or end of stream was seen; the next read returns kClosed.
  bool saw_end() const { return (flags_ & kEnd) != 0; }

 private:
  enum Flags : uint8_t {
    kNone = 0,
    kEstablished = 1 << 0,
    kReadWantsWrite = 1 << 1,
    kWriteWantsRead = 1 << 2,
    kEnd = 1 << 3,
    kFailed = 1 << 4,  // a fatal error: OpenSSL forbids further calls, close_notify included
    kShutdownSent = 1 << 5,
  };
  // Classifies a failed SSL call; sets the want/end/failed flags.
  IoResult stalled(int rc, Flags want_other_direction);

  SSL* ssl_ = nullptr;
  uint8_t flags_ = 0;
};

}  // namespace reactor
