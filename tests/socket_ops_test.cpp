#include "reactor/socket_ops.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>

namespace {

using reactor::IoResult;
using reactor::IoStatus;
using reactor::ListenOptions;
using reactor::SocketAddress;

// Closes an fd at scope exit.
struct Fd {
  explicit Fd(int value = -1) : fd(value) {}
  ~Fd() {
    if (fd >= 0) close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int fd;
};

SocketAddress parsed(const std::string& text) {
  SocketAddress address;
  EXPECT_EQ(reactor::parse_address(text, address), 0) << text;
  return address;
}

// A blocking client connected to `address`; -1 on failure.
int connect_to(const SocketAddress& address) {
  int fd = socket(address.storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (connect(fd, address.get(), address.length) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Waits up to `ms` for `fd` to become readable (a pending connection on a listener).
bool wait_readable(int fd, int ms) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, ms) == 1;
}

bool ipv6_available() {
  int fd = socket(AF_INET6, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in6 in6{};
  in6.sin6_family = AF_INET6;
  in6.sin6_addr = in6addr_loopback;
  bool ok = bind(fd, reinterpret_cast<sockaddr*>(&in6), sizeof in6) == 0;
  close(fd);
  return ok;
}

TEST(ParseAddressTest, Ipv4) {
  SocketAddress address;
  ASSERT_EQ(reactor::parse_address("127.0.0.1:8080", address), 0);
  EXPECT_EQ(address.storage.ss_family, AF_INET);
  EXPECT_EQ(address.length, sizeof(sockaddr_in));
  EXPECT_EQ(address.port(), 8080);
  auto* in = reinterpret_cast<const sockaddr_in*>(&address.storage);
  EXPECT_EQ(ntohl(in->sin_addr.s_addr), 0x7F000001u);
  EXPECT_EQ(ntohs(in->sin_port), 8080);
}

TEST(ParseAddressTest, Ipv4Extremes) {
  EXPECT_EQ(parsed("0.0.0.0:0").port(), 0);
  EXPECT_EQ(parsed("255.255.255.255:65535").port(), 65535);
  EXPECT_EQ(parsed("10.1.2.3:1").to_string(), "10.1.2.3:1");
}

TEST(ParseAddressTest, Ipv6InBrackets) {
  SocketAddress address;
  ASSERT_EQ(reactor::parse_address("[::1]:9000", address), 0);
  EXPECT_EQ(address.storage.ss_family, AF_INET6);
  EXPECT_EQ(address.length, sizeof(sockaddr_in6));
  EXPECT_EQ(address.port(), 9000);
  auto* in6 = reinterpret_cast<const sockaddr_in6*>(&address.storage);
  EXPECT_TRUE(IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr));

  ASSERT_EQ(reactor::parse_address("[::]:80", address), 0);
  EXPECT_TRUE(IN6_IS_ADDR_UNSPECIFIED(&reinterpret_cast<const sockaddr_in6*>(&address.storage)->sin6_addr));
  ASSERT_EQ(reactor::parse_address("[2001:db8::42]:443", address), 0);
  EXPECT_EQ(address.to_string(), "[2001:db8::42]:443");
}

TEST(ParseAddressTest, Localhost) {
  SocketAddress address;
  ASSERT_EQ(reactor::parse_address("localhost:1234", address), 0);
  EXPECT_EQ(address.storage.ss_family, AF_INET);
  EXPECT_EQ(address.to_string(), "127.0.0.1:1234");
}

TEST(ParseAddressTest, RejectsBadInput) {
  const char* bad[] = {
      "",                   // empty
      ":",                  // nothing at all
      "127.0.0.1",          // missing port
      "127.0.0.1:",         // empty port
      ":8080",              // missing host
      "127.0.0.1:65536",    // port too large
      "127.0.0.1:99999999999999999999",  // port overflows
      "127.0.0.1:-1",       // negative port
      "127.0.0.1:+80",      // sign
      "127.0.0.1:80a",      // junk after the port
      "127.0.0.1: 80",      // space
      "127.0.0.1:0x50",     // hex
      "example.com:80",     // names other than localhost are not resolved
      "256.0.0.1:80",       // octet out of range
      "1.2.3:80",           // short dotted quad
      "junk:80",            // junk host
      "[::1]",              // bracketed, no port
      "[::1]:",             // bracketed, empty port
      "[::1]80",            // no colon after the bracket
      "[::1:80",            // unclosed bracket
      "[]:80",              // empty brackets
      "[::g]:80",           // bad IPv6
      "[::1]:65536",        // port too large, IPv6
  };
  for (const char* text : bad) {
    SocketAddress address;
    EXPECT_EQ(reactor::parse_address(text, address), -EINVAL) << "'" << text << "'";
  }
}

TEST(ParseAddressTest, ToStringRoundTrips) {
  for (const char* text : {"127.0.0.1:8080", "0.0.0.0:0", "192.168.1.20:65535", "[::1]:8080", "[::]:1",
                           "[fe80::1:2]:7"}) {
    EXPECT_EQ(parsed(text).to_string(), text);
  }
}

TEST(ParseAddressTest, PortOfAnEmptyAddressIsZero) {
  SocketAddress address;
  EXPECT_EQ(address.port(), 0);
}

TEST(ListenTcpTest, PortZeroPicksAFreePort) {
  Fd listener(reactor::listen_tcp(parsed("127.0.0.1:0"), ListenOptions{}));
  ASSERT_GE(listener.fd, 0) << std::strerror(-listener.fd);
  SocketAddress bound;
  ASSERT_EQ(reactor::local_address(listener.fd, bound), 0);
  EXPECT_EQ(bound.storage.ss_family, AF_INET);
  EXPECT_NE(bound.port(), 0);
  EXPECT_EQ(bound.to_string(), "127.0.0.1:" + std::to_string(bound.port()));
  // Non-blocking and close-on-exec, as documented.
  EXPECT_TRUE(fcntl(listener.fd, F_GETFL) & O_NONBLOCK);
  EXPECT_TRUE(fcntl(listener.fd, F_GETFD) & FD_CLOEXEC);
}

TEST(ListenTcpTest, Ipv6Loopback) {
  if (!ipv6_available()) GTEST_SKIP() << "no IPv6 loopback here";
  Fd listener(reactor::listen_tcp(parsed("[::1]:0"), ListenOptions{}));
  ASSERT_GE(listener.fd, 0) << std::strerror(-listener.fd);
  SocketAddress bound;
  ASSERT_EQ(reactor::local_address(listener.fd, bound), 0);
  EXPECT_EQ(bound.storage.ss_family, AF_INET6);
  EXPECT_NE(bound.port(), 0);
  EXPECT_EQ(bound.to_string(), "[::1]:" + std::to_string(bound.port()));
  Fd client(connect_to(bound));
  ASSERT_GE(client.fd, 0);
  ASSERT_TRUE(wait_readable(listener.fd, 1000));
  Fd server(reactor::accept_connection(listener.fd, nullptr));
  EXPECT_GE(server.fd, 0);
}

TEST(ListenTcpTest, BusyPortFailsWithErrno) {
  Fd first(reactor::listen_tcp(parsed("127.0.0.1:0"), ListenOptions{}));
  ASSERT_GE(first.fd, 0);
  SocketAddress bound;
  ASSERT_EQ(reactor::local_address(first.fd, bound), 0);
  Fd second(reactor::listen_tcp(bound, ListenOptions{}));
  EXPECT_EQ(second.fd, -EADDRINUSE);
}

TEST(ListenTcpTest, ReusePortLetsTwoListenersShareAPort) {
  ListenOptions options;
  options.reuse_port = true;
  Fd first(reactor::listen_tcp(parsed("127.0.0.1:0"), options));
  ASSERT_GE(first.fd, 0) << std::strerror(-first.fd);
  SocketAddress bound;
  ASSERT_EQ(reactor::local_address(first.fd, bound), 0);
  Fd second(reactor::listen_tcp(bound, options));
  ASSERT_GE(second.fd, 0) << "SO_REUSEPORT bind failed: " << std::strerror(-second.fd);
  SocketAddress second_bound;
  ASSERT_EQ(reactor::local_address(second.fd, second_bound), 0);
  EXPECT_EQ(second_bound.port(), bound.port());

  // Connections to the port are accepted by one listener or the other.
  constexpr int kClients = 16;
  Fd clients[kClients];
  for (auto& client : clients) {
    client.fd = connect_to(bound);
    ASSERT_GE(client.fd, 0);
  }
  int accepted = 0;
  for (int attempt = 0; attempt < 100 && accepted < kClients; ++attempt) {
    for (int listener : {first.fd, second.fd}) {
      int fd = reactor::accept_connection(listener, nullptr);
      if (fd >= 0) {
        ++accepted;
        close(fd);
      } else {
        EXPECT_EQ(fd, -EAGAIN);
      }
    }
    if (accepted < kClients) usleep(1000);
  }
  EXPECT_EQ(accepted, kClients);
}

TEST(ListenTcpTest, WithoutReusePortASecondListenerIsRefused) {
  ListenOptions options;
  options.reuse_port = true;
  Fd first(reactor::listen_tcp(parsed("127.0.0.1:0"), options));
  ASSERT_GE(first.fd, 0);
  SocketAddress bound;
  ASSERT_EQ(reactor::local_address(first.fd, bound), 0);
  Fd second(reactor::listen_tcp(bound, ListenOptions{}));  // this one does not ask to share
  EXPECT_EQ(second.fd, -EADDRINUSE);
}

TEST(LocalAddressTest, BadFd) {
  SocketAddress address;
  EXPECT_EQ(reactor::local_address(-1, address), -EBADF);
}

TEST(AcceptConnectionTest, EmptyQueueIsAgainThenAClientIsAccepted) {
  Fd listener(reactor::listen_tcp(parsed("127.0.0.1:0"), ListenOptions{}));
  ASSERT_GE(listener.fd, 0);
  SocketAddress bound;
  ASSERT_EQ(reactor::local_address(listener.fd, bound), 0);
  SocketAddress peer;
  EXPECT_EQ(reactor::accept_connection(listener.fd, &peer), -EAGAIN);
  EXPECT_EQ(reactor::accept_connection(listener.fd, nullptr), -EAGAIN);

  Fd client(connect_to(bound));
  ASSERT_GE(client.fd, 0);
  ASSERT_TRUE(wait_readable(listener.fd, 1000));
  Fd server(reactor::accept_connection(listener.fd, &peer));
  ASSERT_GE(server.fd, 0) << std::strerror(-server.fd);
  EXPECT_TRUE(fcntl(server.fd, F_GETFL) & O_NONBLOCK);
  EXPECT_TRUE(fcntl(server.fd, F_GETFD) & FD_CLOEXEC);

  // The peer address is the client's own.
  SocketAddress client_address;
  ASSERT_EQ(reactor::local_address(client.fd, client_address), 0);
  EXPECT_EQ(peer.length, sizeof(sockaddr_in));
  EXPECT_EQ(peer.to_string(), client_address.to_string());

  EXPECT_EQ(reactor::accept_connection(listener.fd, nullptr), -EAGAIN);
}

TEST(AcceptConnectionTest, BadListenerIsAnError) {
  EXPECT_EQ(reactor::accept_connection(-1, nullptr), -EBADF);
}

class SocketIoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    signal(SIGPIPE, SIG_IGN);
    listener_.fd = reactor::listen_tcp(parsed("127.0.0.1:0"), ListenOptions{});
    ASSERT_GE(listener_.fd, 0);
    SocketAddress bound;
    ASSERT_EQ(reactor::local_address(listener_.fd, bound), 0);
    client_.fd = connect_to(bound);
    ASSERT_GE(client_.fd, 0);
    ASSERT_TRUE(wait_readable(listener_.fd, 1000));
    server_.fd = reactor::accept_connection(listener_.fd, nullptr);
    ASSERT_GE(server_.fd, 0);
  }
  Fd listener_;
  Fd client_;
  Fd server_;
};

TEST_F(SocketIoTest, ReadSomeAgainThenDataThenClosed) {
  char buffer[64];
  IoResult r = reactor::read_some(server_.fd, buffer, sizeof buffer);
  EXPECT_EQ(r.status, IoStatus::kAgain);
  EXPECT_EQ(r.bytes, 0u);

  ASSERT_EQ(write(client_.fd, "hello", 5), 5);
  pollfd p{server_.fd, POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 1000), 1);
  r = reactor::read_some(server_.fd, buffer, sizeof buffer);
  EXPECT_EQ(r.status, IoStatus::kOk);
  ASSERT_EQ(r.bytes, 5u);
  EXPECT_EQ(std::string(buffer, 5), "hello");

  close(client_.fd);
  client_.fd = -1;
  ASSERT_EQ(poll(&p, 1, 1000), 1);
  r = reactor::read_some(server_.fd, buffer, sizeof buffer);
  EXPECT_EQ(r.status, IoStatus::kClosed);
  EXPECT_EQ(r.bytes, 0u);
}

TEST_F(SocketIoTest, ReadSomeErrorCarriesErrno) {
  char buffer[8];
  IoResult r = reactor::read_some(-1, buffer, sizeof buffer);
  EXPECT_EQ(r.status, IoStatus::kError);
  EXPECT_EQ(r.error, EBADF);
}

TEST_F(SocketIoTest, WriteSomeAndWriteVector) {
  IoResult r = reactor::write_some(server_.fd, "abc", 3);
  EXPECT_EQ(r.status, IoStatus::kOk);
  EXPECT_EQ(r.bytes, 3u);
  char one[] = "de";
  char two[] = "fgh";
  iovec iov[2] = {{one, 2}, {two, 3}};
  r = reactor::write_vector(server_.fd, iov, 2);
  EXPECT_EQ(r.status, IoStatus::kOk);
  EXPECT_EQ(r.bytes, 5u);
  std::string received;
  char buffer[16];
  while (received.size() < 8) {
    pollfd p{client_.fd, POLLIN, 0};
    ASSERT_EQ(poll(&p, 1, 1000), 1);
    ssize_t n = read(client_.fd, buffer, sizeof buffer);
    ASSERT_GT(n, 0);
    received.append(buffer, static_cast<size_t>(n));
  }
  EXPECT_EQ(received, "abcdefgh");
}

TEST_F(SocketIoTest, WriteUntilFullIsAgain) {
  int size = 4096;
  setsockopt(server_.fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  std::string chunk(65536, 'x');
  IoResult r;
  size_t total = 0;
  for (int i = 0; i < 10000; ++i) {
    r = reactor::write_some(server_.fd, chunk.data(), chunk.size());
    if (r.status != IoStatus::kOk) break;
    total += r.bytes;
  }
  EXPECT_EQ(r.status, IoStatus::kAgain);
  EXPECT_GT(total, 0u);
}

TEST_F(SocketIoTest, WriteToAResetPeerIsAnError) {
  // SO_LINGER 0: the client's close sends RST, so the server's writes fail (EPIPE/ECONNRESET).
  linger lin{1, 0};
  setsockopt(client_.fd, SOL_SOCKET, SO_LINGER, &lin, sizeof lin);
  close(client_.fd);
  client_.fd = -1;
  IoResult r;
  for (int i = 0; i < 100; ++i) {
    r = reactor::write_some(server_.fd, "x", 1);
    if (r.status == IoStatus::kError) break;
    usleep(1000);
  }
  ASSERT_EQ(r.status, IoStatus::kError);
  EXPECT_TRUE(r.error == EPIPE || r.error == ECONNRESET) << std::strerror(r.error);
}

TEST_F(SocketIoTest, SetNoDelay) {
  reactor::set_no_delay(server_.fd);
  int value = 0;
  socklen_t length = sizeof value;
  ASSERT_EQ(getsockopt(server_.fd, IPPROTO_TCP, TCP_NODELAY, &value, &length), 0);
  EXPECT_NE(value, 0);
}

}  // namespace
