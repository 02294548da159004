// WsServer, transport: the bytes of a connection go over its socket, or over TLS on that
// socket when use_tls() was called. TLS state sits in a side table indexed by fd, so a plain
// connection's Connection is unchanged and an idle TLS connection adds one 16-byte slot plus
// what OpenSSL keeps per session (its buffers are released while idle).
#include <errno.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "protocol/ws_connection.h"
#include "protocol/ws_server.h"
#include "reactor/socket_ops.h"
#include "reactor/tls_context.h"
#include "reactor/tls_stream.h"

namespace protocol {

namespace {

reactor::IoResult write_tls(void* stream, const iovec* iov, int count) {
  return static_cast<reactor::TlsStream*>(stream)->write_vector(iov, count);
}

}  // namespace

int WsServer::use_tls(const reactor::TlsContext* context) {
  if (tls_streams_ == nullptr) {
    // MAP_NORESERVE and zero-filled: a page costs memory only once an fd in it is used, and
    // a zeroed TlsStream is a detached one.
    void* memory = mmap(nullptr, capacity_ * sizeof(reactor::TlsStream), PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (memory == MAP_FAILED) return -ENOMEM;
    tls_streams_ = static_cast<reactor::TlsStream*>(memory);
  }
  tls_ = context;
  return 0;
}

bool WsServer::uses_tls(const Connection& c) const {
  return tls_streams_ != nullptr && tls_streams_[fd_of(c)].attached();
}

bool WsServer::start_tls(int fd) {
  SSL* ssl = tls_->new_connection(fd);
  if (ssl == nullptr) return false;
  tls_streams_[fd].attach(ssl);
  return true;
}

void WsServer::end_tls(int fd) {
  if (tls_streams_ != nullptr) tls_streams_[fd].release();
}

uint32_t WsServer::tls_events(int fd, uint32_t events) {
  const reactor::TlsStream& stream = tls_streams_[fd];
  if (!stream.attached()) return events;
  // TLS couples the directions: the handshake and a read may wait for the socket to take a
  // write, and a write may wait for input. Edge-triggered, the edge that unblocks them is
  // reported once, so it is routed to the side that is waiting.
  if ((events & EPOLLOUT) && (!stream.established() || stream.read_wants_write())) events |= EPOLLIN;
  if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) && stream.write_wants_read()) events |= EPOLLOUT;
  return events;
}

reactor::IoResult WsServer::read_input(Connection& c, uint8_t* buffer, size_t capacity) {
  int fd = fd_of(c);
  if (!uses_tls(c)) return reactor::read_some(fd, buffer, capacity);
  reactor::TlsStream& stream = tls_streams_[fd];
  reactor::IoResult r = stream.read(buffer, capacity);
  // The last bytes came with close_notify or EOF: a short read usually ends the read loop,
  // but the end must still be collected, so read on as after RDHUP.
  if (r.status == reactor::IoStatus::kOk && stream.saw_end()) c.flags2 |= kPeerHungUp;
  return r;
}

reactor::IoResult WsServer::write_output(Connection& c, const iovec* iov, int count) {
  int fd = fd_of(c);
  if (!uses_tls(c)) return reactor::write_vector(fd, iov, count);
  // Before the handshake finished there is no session to write in (a 408 or 503 for a client
  // that never completed TLS): the error makes the caller drop the connection.
  return tls_streams_[fd].write_vector(iov, count);
}

reactor::IoResult WsServer::flush_output(Connection& c) {
  int fd = fd_of(c);
  if (!uses_tls(c)) return c.out->flush(fd);
  return c.out->flush(write_tls, &tls_streams_[fd]);
}

void WsServer::shutdown_output(Connection& c) {
  int fd = fd_of(c);
  // RFC 8446 6.1: close_notify before the TCP FIN, so the peer can tell our end from a cut.
  if (tls_streams_ != nullptr) tls_streams_[fd].shutdown();
  ::shutdown(fd, SHUT_WR);
}

}  // namespace protocol
