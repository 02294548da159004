#pragma once
// A TLS session read and written with the conventions of read() and send(), so the tools' I/O
// loops keep their plain-socket shape and take the TLS path with one `if` per call (wss://).
#include <sys/types.h>

#include <cstddef>

#include "reactor/tls_stream.h"

namespace tools {

// Like read(): bytes decrypted (up to `size`; fewer means OpenSSL has nothing left and the
// socket is drained), 0 at the end of the stream, or -1 with errno: EAGAIN while the session
// waits for the socket (either direction), else the socket's error or EPROTO for a TLS failure.
ssize_t tls_read(reactor::TlsStream& tls, void* buffer, size_t size);

// Like send(): bytes taken (possibly fewer), or -1 with errno: EAGAIN when the socket is full or
// the session needs input first, else the socket's error (EPIPE at the end of the stream). A
// write that stalled must be retried starting with the same bytes (TlsStream::write_vector).
ssize_t tls_write(reactor::TlsStream& tls, const void* data, size_t size);

}  // namespace tools
