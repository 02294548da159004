// parley-idle: opens N upgraded WebSocket connections and holds them, answering pings, for a
// bounded time. Source addresses are spread over 127.0.0.0/8 so one holder is not limited to
// one address's ephemeral ports. Prints one status line per second.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "protocol/frame_header.h"
#include "reactor/event_loop.h"
#include "reactor/socket_ops.h"
#include "tools/ws_url.h"

namespace {

struct Options {
  std::string url = "ws://127.0.0.1:8080/echo";
  int connections = 1000;
  int rate = 5000;          // new connections per second
  int duration_s = 30;      // hold time after the ramp, then exit
  int source_spread = 200;  // number of 127.0.0.x source addresses (1 = no spread)
};

enum class Phase : uint8_t { kFree, kConnecting, kHandshake, kOpen };

struct Client {
  Phase phase = Phase::kFree;
  uint16_t have = 0;  // bytes of the 101 response or of a partial frame
  char buffer[256];
};

constexpr char kRequestTemplate[] =
    "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

void usage() {
  std::puts(
      "usage: parley-idle [--url ws://HOST:PORT/PATH] [-c CONNECTIONS] [--rate PER_SECOND]\n"
      "                   [--duration SECONDS] [--sources N]\n"
      "Opens CONNECTIONS WebSocket connections at up to PER_SECOND, holds them for SECONDS after\n"
      "the ramp (answering pings), prints open/failed/lost once a second, then exits.");
}

bool parse(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (a == "--help" || a == "-h") {
      usage();
      std::exit(0);
    } else if (a == "--url" && (v = next())) {
      o.url = v;
    } else if (a == "-c" && (v = next())) {
      o.connections = std::atoi(v);
    } else if (a == "--rate" && (v = next())) {
      o.rate = std::atoi(v);
    } else if (a == "--duration" && (v = next())) {
      o.duration_s = std::atoi(v);
    } else if (a == "--sources" && (v = next())) {
      o.source_spread = std::atoi(v);
    } else {
      std::fprintf(stderr, "parley-idle: bad or incomplete option '%s' (see --help)\n", a.c_str());
      return false;
    }
  }
  if (o.connections <= 0 || o.rate <= 0 || o.duration_s < 0 || o.source_spread <= 0 || o.source_spread > 250) {
    std::fprintf(stderr, "parley-idle: counts must be positive (sources 1-250)\n");
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  if (!parse(argc, argv, options)) return 2;
  tools::WsUrl url;
  if (!tools::parse_ws_url(options.url, url)) {
    std::fprintf(stderr, "parley-idle: cannot parse --url '%s' (ws://HOST:PORT/PATH)\n", options.url.c_str());
    return 2;
  }
  reactor::SocketAddress server;
  if (reactor::parse_address(url.host + ":" + std::to_string(url.port), server) != 0) {
    std::fprintf(stderr, "parley-idle: host must be a numeric address: '%s'\n", url.host.c_str());
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  char request[1024];
  int request_length = std::snprintf(request, sizeof request, kRequestTemplate, url.path.c_str(), url.host.c_str());

  int epfd = epoll_create1(EPOLL_CLOEXEC);
  std::vector<Client> clients(1 << 16);
  int started = 0, open = 0, failed = 0, lost = 0, pings = 0;
  uint64_t start = reactor::monotonic_ms();
  uint64_t next_report = start + 1000;
  uint64_t ramp_done = 0;
  epoll_event events[512];

  auto drop = [&](int fd, bool was_open) {
    Client& c = clients[fd];
    if (was_open) {
      --open;
      ++lost;
    } else {
      ++failed;
    }
    c.phase = Phase::kFree;
    c.have = 0;
    close(fd);
  };

  for (;;) {
    uint64_t now = reactor::monotonic_ms();
    // Ramp: open as many as the rate allows by now.
    int due = static_cast<int>(std::min<uint64_t>(options.connections, (now - start) * options.rate / 1000 + 1));
    while (started < due) {
      ++started;
      int fd = socket(server.storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0 || fd >= static_cast<int>(clients.size())) {
        if (fd >= 0) close(fd);
        ++failed;
        continue;
      }
      if (server.storage.ss_family == AF_INET && options.source_spread > 1) {
        sockaddr_in source{};
        source.sin_family = AF_INET;
        source.sin_addr.s_addr = htonl(0x7f000001u + static_cast<uint32_t>(started % options.source_spread) * 1u + 1u);
        int one = 1;
        // Let the kernel pick the port at connect() time, per destination (4-tuple reuse).
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        bind(fd, reinterpret_cast<sockaddr*>(&source), sizeof source);
      }
      int rc = connect(fd, server.get(), server.length);
      if (rc != 0 && errno != EINPROGRESS) {
        close(fd);
        ++failed;
        continue;
      }
      clients[fd].phase = Phase::kConnecting;
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
      ev.data.fd = fd;
      epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
    }
    if (started == options.connections && ramp_done == 0 && open + failed + lost >= options.connections) {
      ramp_done = now;
    }
    if (ramp_done != 0 && now - ramp_done >= static_cast<uint64_t>(options.duration_s) * 1000) break;

    int n = epoll_wait(epfd, events, 512, 50);
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      Client& c = clients[fd];
      if (c.phase == Phase::kConnecting && (events[i].events & EPOLLOUT)) {
        if (write(fd, request, request_length) != request_length) {
          drop(fd, false);
          continue;
        }
        c.phase = Phase::kHandshake;
      }
      if (!(events[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) continue;
      for (;;) {
        ssize_t got = read(fd, c.buffer + c.have, sizeof c.buffer - c.have);
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (got <= 0) {
          drop(fd, c.phase == Phase::kOpen);
          break;
        }
        c.have += static_cast<uint16_t>(got);
        if (c.phase == Phase::kHandshake) {
          std::string_view seen(c.buffer, c.have);
          size_t end = seen.find("\r\n\r\n");
          if (end == std::string_view::npos) {
            if (c.have == sizeof c.buffer) {
              drop(fd, false);
              break;
            }
            continue;
          }
          if (seen.substr(0, 12) != "HTTP/1.1 101") {
            drop(fd, false);
            break;
          }
          c.phase = Phase::kOpen;
          ++open;
          std::memmove(c.buffer, c.buffer + end + 4, c.have - (end + 4));
          c.have = static_cast<uint16_t>(c.have - (end + 4));
        }
        // Frames from the server: answer pings with masked pongs (RFC 6455 5.5.2), skip others.
        for (;;) {
          auto parsed = protocol::parse_frame_header(reinterpret_cast<uint8_t*>(c.buffer), c.have,
                                                     protocol::Sender::kServer);
          if (parsed.status != protocol::ParseStatus::kOk) break;
          size_t frame = parsed.header.header_length + parsed.header.payload_length;
          if (frame > sizeof c.buffer) {
            drop(fd, true);
            break;
          }
          if (frame > c.have) break;
          if (parsed.header.opcode == protocol::Opcode::kPing) {
            ++pings;
            uint8_t pong[protocol::kMaxFrameHeaderLength + protocol::kMaxControlPayload];
            const uint8_t mask[4] = {0x12, 0x34, 0x56, 0x78};
            size_t h = protocol::encode_masked_frame_header(pong, protocol::Opcode::kPong,
                                                            parsed.header.payload_length, mask);
            std::memcpy(pong + h, c.buffer + parsed.header.header_length, parsed.header.payload_length);
            protocol::unmask(pong + h, parsed.header.payload_length, mask, 0);
            if (write(fd, pong, h + parsed.header.payload_length) < 0) {
              drop(fd, true);
              break;
            }
          } else if (parsed.header.opcode == protocol::Opcode::kClose) {
            drop(fd, true);
            break;
          }
          std::memmove(c.buffer, c.buffer + frame, c.have - frame);
          c.have = static_cast<uint16_t>(c.have - frame);
        }
        if (clients[fd].phase == Phase::kFree) break;
      }
    }
    now = reactor::monotonic_ms();
    if (now >= next_report) {
      next_report += 1000;
      std::printf("t=%llus open=%d failed=%d lost=%d pings=%d\n",
                  static_cast<unsigned long long>((now - start) / 1000), open, failed, lost, pings);
      std::fflush(stdout);
    }
  }
  std::printf("done: open=%d failed=%d lost=%d pings=%d\n", open, failed, lost, pings);
  return lost == 0 && failed == 0 ? 0 : 1;
}
