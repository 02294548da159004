#include "reactor/socket_ops.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <charconv>
#include <cstring>

namespace reactor {

namespace {

IoResult from_syscall(ssize_t n) {
  if (n >= 0) return {IoStatus::kOk, static_cast<size_t>(n), 0};
  if (errno == EAGAIN || errno == EWOULDBLOCK) return {IoStatus::kAgain, 0, 0};
  if (errno == EINTR) return {IoStatus::kAgain, 0, EINTR};
  return {IoStatus::kError, 0, errno};
}

}  // namespace

std::string SocketAddress::to_string() const {
  char host[INET6_ADDRSTRLEN] = "?";
  if (storage.ss_family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(&storage);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    return std::string(host) + ":" + std::to_string(port());
  }
  auto* in6 = reinterpret_cast<const sockaddr_in6*>(&storage);
  inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
  return "[" + std::string(host) + "]:" + std::to_string(port());
}

uint16_t SocketAddress::port() const {
  if (storage.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
  if (storage.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
  return 0;
}

int parse_address(std::string_view text, SocketAddress& out) {
  std::string_view host;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') return -EINVAL;
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return -EINVAL;
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port > 65535 || port_text.empty()) {
    return -EINVAL;
  }
  if (host == "localhost") host = "127.0.0.1";
  std::string host_z(host);
  out = SocketAddress{};
  auto* in = reinterpret_cast<sockaddr_in*>(&out.storage);
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
  if (inet_pton(AF_INET, host_z.c_str(), &in->sin_addr) == 1) {
    in->sin_family = AF_INET;
    in->sin_port = htons(static_cast<uint16_t>(port));
    out.length = sizeof(sockaddr_in);
    return 0;
  }
  out.storage = {};
  if (inet_pton(AF_INET6, host_z.c_str(), &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(static_cast<uint16_t>(port));
    out.length = sizeof(sockaddr_in6);
    return 0;
  }
  return -EINVAL;
}

int listen_tcp(const SocketAddress& address, const ListenOptions& options) {
  int fd = socket(address.storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int one = 1;
  // SO_REUSEADDR: restart while old connections sit in TIME_WAIT.
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (options.reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    int err = errno;
    close(fd);
    return -err;
  }
  // Accepted sockets inherit TCP_NODELAY from the listener: one setsockopt instead of one
  // per connection (frames are written whole; Nagle would only add latency).
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (bind(fd, address.get(), address.length) != 0 || listen(fd, options.backlog) != 0) {
    int err = errno;
    close(fd);
    return -err;
  }
  return fd;
}

int local_address(int fd, SocketAddress& out) {
  out.length = sizeof(out.storage);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&out.storage), &out.length) != 0) return -errno;
  return 0;
}

int accept_connection(int listen_fd, SocketAddress* peer) {
  sockaddr_storage storage;
  socklen_t length = sizeof storage;
  int fd = accept4(listen_fd, reinterpret_cast<sockaddr*>(&storage), &length, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) return -errno;
  if (peer != nullptr) {
    peer->storage = storage;
    peer->length = length;
  }
  return fd;
}

void set_no_delay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

IoResult read_some(int fd, void* buffer, size_t capacity) {
  ssize_t n = read(fd, buffer, capacity);
  if (n == 0) return {IoStatus::kClosed, 0, 0};
  return from_syscall(n);
}

// sendmsg/send with MSG_NOSIGNAL: a vanished peer yields EPIPE without a SIGPIPE, so an
// embedding process keeps its own SIGPIPE disposition.
IoResult write_vector(int fd, const iovec* iov, int count) {
  msghdr message{};
  message.msg_iov = const_cast<iovec*>(iov);
  message.msg_iovlen = static_cast<size_t>(count);
  return from_syscall(sendmsg(fd, &message, MSG_NOSIGNAL));
}

IoResult write_some(int fd, const void* data, size_t length) {
  return from_syscall(send(fd, data, length, MSG_NOSIGNAL));
}

}  // namespace reactor
