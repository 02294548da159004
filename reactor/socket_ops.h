#pragma once
// Thin syscall wrappers for TCP sockets. They return -errno (or an IoResult) and never throw.
#include <sys/socket.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "reactor/io_result.h"

namespace reactor {

struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;

  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
  // "127.0.0.1:8080" or "[::1]:8080".
  std::string to_string() const;
  // The port in host byte order.
  uint16_t port() const;
};

// Parses "HOST:PORT" or "[V6]:PORT" with a numeric host or "localhost". Returns 0 or -EINVAL.
int parse_address(std::string_view text, SocketAddress& out);

struct ListenOptions {
  int backlog = 4096;
  bool reuse_port = false;  // SO_REUSEPORT: several processes share one port (kernel balances)
};

// A non-blocking, close-on-exec listening TCP socket bound to `address`; fd or -errno.
int listen_tcp(const SocketAddress& address, const ListenOptions& options);

// The address a socket is bound to (for port 0); 0 or -errno.
int local_address(int fd, SocketAddress& out);

// accept4 with SOCK_NONBLOCK|SOCK_CLOEXEC; fd or -errno (-EAGAIN when the queue is empty).
int accept_connection(int listen_fd, SocketAddress* peer);

// TCP_NODELAY: frames are written whole, Nagle only adds latency.
void set_no_delay(int fd);

// One read(); kClosed on end of stream.
IoResult read_some(int fd, void* buffer, size_t capacity);

// One gathered write of up to `count` buffers; EPIPE rather than SIGPIPE on a dead peer.
IoResult write_vector(int fd, const iovec* iov, int count);

// One send(); EPIPE rather than SIGPIPE on a dead peer.
IoResult write_some(int fd, const void* data, size_t length);

}  // namespace reactor
