#include "tools/tls_io.h"

#include <sys/uio.h>

#include <cerrno>

namespace tools {

ssize_t tls_read(reactor::TlsStream& tls, void* buffer, size_t size) {
  const reactor::IoResult r = tls.read(buffer, size);
  switch (r.status) {
    case reactor::IoStatus::kOk:
      return static_cast<ssize_t>(r.bytes);
    case reactor::IoStatus::kClosed:
      return 0;
    case reactor::IoStatus::kAgain:
      errno = EAGAIN;
      return -1;
    default:
      errno = r.error != 0 ? r.error : EPROTO;
      return -1;
  }
}

ssize_t tls_write(reactor::TlsStream& tls, const void* data, size_t size) {
  const iovec iov{const_cast<void*>(data), size};
  const reactor::IoResult r = tls.write_vector(&iov, 1);
  if (r.status == reactor::IoStatus::kOk) return static_cast<ssize_t>(r.bytes);
  errno = r.status == reactor::IoStatus::kAgain ? EAGAIN : (r.error != 0 ? r.error : EPIPE);
  return -1;
}

}  // namespace tools
