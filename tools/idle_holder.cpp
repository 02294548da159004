#include "tools/idle_holder.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "protocol/frame_header.h"
#include "reactor/event_loop.h"
#include "reactor/tls_stream.h"
#include "tools/backoff.h"
#include "tools/tls_io.h"

namespace tools {

// An upgraded connection needs room for one control frame (2 + 125 bytes) plus the start of the
// next; the 101 response must fit whole. Larger data frames are skipped, not buffered.
struct IdleHolder::Slot {
  int fd = -1;
  uint32_t generation = 0;  // bumped on every close: stale events and deadlines are ignored
  Phase phase = Phase::kIdle;
  uint8_t failures = 0;     // attempts failed or short-lived in a row, for the backoff
  bool ever_open = false;   // the next upgrade of this slot is a reconnection
  uint64_t opened_ms = 0;   // when the last upgrade completed
  uint16_t have = 0;        // bytes in buffer
  uint64_t skip = 0;        // payload bytes of an oversized data frame still to discard
  reactor::TlsStream tls;   // wss:// only; detached for ws://
  uint8_t buffer[256];
};

namespace {

constexpr uint64_t kMaxWaitMs = 50;
// A connection that held this long was a success: its loss restarts the backoff (like
// parley-cli's BackoffPolicy::stable_after).
constexpr uint64_t kStableMs = 2000;

bool parse_count(std::string_view text, uint64_t& out) {
  uint64_t multiplier = 1;
  if (!text.empty() && (text.back() == 'k' || text.back() == 'K')) {
    multiplier = 1000;
    text.remove_suffix(1);
  } else if (!text.empty() && (text.back() == 'm' || text.back() == 'M')) {
    multiplier = 1'000'000;
    text.remove_suffix(1);
  }
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return false;
  out = value * multiplier;
  return true;
}

bool parse_seconds(std::string_view text, double& out) {
  std::string copy(text);
  char* end = nullptr;
  double value = std::strtod(copy.c_str(), &end);
  if (copy.empty() || end != copy.c_str() + copy.size() || !std::isfinite(value) || value < 0) return false;
  out = value;
  return true;
}

int usage_error(const std::string& message) {
  std::fprintf(stderr, "parley-idle: %s (see --help)\n", message.c_str());
  return 2;
}

bool is_ipv4_loopback(const reactor::SocketAddress& address) {
  if (address.storage.ss_family != AF_INET) return false;
  const auto* in = reinterpret_cast<const sockaddr_in*>(&address.storage);
  return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
}

}  // namespace

void print_idle_usage() {
  std::puts(
      "usage: parley-idle [options]\n"
      "\n"
      "Opens -c upgraded WebSocket connections at up to --rate per second, holds them for\n"
      "--duration seconds after the ramp while answering the server's pings, reconnects what it\n"
      "loses (with backoff), prints one status line per --report-interval, then a summary and a\n"
      "machine-readable 'summary key=value ...' line, and exits. SIGINT/SIGTERM end it early\n"
      "(with the summary).\n"
      "\n"
      "Options:\n"
      "  --url ws://HOST:PORT/PATH  server (default ws://127.0.0.1:8080/echo; numeric host);\n"
      "                       wss://HOST:PORT/PATH for TLS, the certificate verified\n"
      "  --ca-file FILE       wss://: trust the certificates in this PEM file instead of the\n"
      "                       system's (e.g. a self-signed build/certs/cert.pem)\n"
      "  -k, --insecure       wss://: do not verify the server's certificate (tests only)\n"
      "  -c, --connections N  connections to hold, at most 19500 per process (default 1000)\n"
      "  --rate R             connection attempts per second, first ones and reconnects\n"
      "                       together (default 5000)\n"
      "  --max-pending N      connects and handshakes in progress at once (default 1000)\n"
      "  --duration S         seconds to hold after the ramp (default 30; fractions allowed)\n"
      "  --ramp-timeout S     start the hold after S seconds even if not all are open\n"
      "                       (default: connections / rate + 30)\n"
      "  --connect-timeout MS connect + upgrade deadline per attempt (default 10000)\n"
      "  --backoff-min MS     reconnect delays are uniform in [0, min(max, MS * 2^n)], n = failed or\n"
      "                       short-lived (< 2 s) connections in a row (default 100)\n"
      "  --backoff-max MS     largest reconnect delay ceiling (default 2000)\n"
      "  --no-reconnect       leave lost connections closed\n"
      "  --sources N          loopback targets: spread source addresses over N consecutive\n"
      "                       addresses from --source-base, each with its own ephemeral ports\n"
      "                       (default 200; 0 = let the kernel pick 127.0.0.1)\n"
      "  --source-base ADDR   first source address, inside 127.0.0.0/8 (default 127.0.0.2)\n"
      "  --report-interval S  seconds between status lines (default 1)\n"
      "  --quiet              no status lines, only the summary\n"
      "\n"
      "Counts take k/M suffixes. Exit status: 0 when nothing was lost and all connections were\n"
      "open at the end, 1 otherwise, 2 on bad usage or when it cannot start.");
}

int parse_idle_options(int argc, char** argv, IdleOptions& out) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    auto value = [&](std::string_view& v) {
      if (i + 1 >= argc) return false;
      v = argv[++i];
      return true;
    };
    std::string_view v;
    uint64_t count = 0;
    auto count_option = [&](uint64_t min, uint64_t max, uint32_t& target) {
      if (!value(v)) return usage_error("missing value for " + std::string(arg));
      if (!parse_count(v, count) || count < min || count > max) {
        return usage_error("bad value for " + std::string(arg) + ": '" + std::string(v) + "' (" +
                           std::to_string(min) + " to " + std::to_string(max) + ")");
      }
      target = static_cast<uint32_t>(count);
      return kIdleOptionsOk;
    };
    auto seconds_option = [&](double& target) {
      if (!value(v)) return usage_error("missing value for " + std::string(arg));
      if (!parse_seconds(v, target)) return usage_error("bad seconds for " + std::string(arg) + ": '" + std::string(v) + "'");
      return kIdleOptionsOk;
    };
    int rc = kIdleOptionsOk;
    if (arg == "--help" || arg == "-h") {
      print_idle_usage();
      return 0;
    } else if (arg == "--url") {
      if (!value(v)) return usage_error("missing value for --url");
      out.url_text = v;
    } else if (arg == "-c" || arg == "--connections") {
      rc = count_option(1, kMaxIdleConnectionsPerProcess, out.connections);
    } else if (arg == "--rate") {
      rc = count_option(1, 10'000'000, out.rate);
    } else if (arg == "--max-pending") {
      rc = count_option(1, kMaxIdleConnectionsPerProcess, out.max_pending);
    } else if (arg == "--duration") {
      rc = seconds_option(out.duration_s);
    } else if (arg == "--ramp-timeout") {
      rc = seconds_option(out.ramp_timeout_s);
    } else if (arg == "--connect-timeout") {
      rc = count_option(1, 3'600'000, out.connect_timeout_ms);
    } else if (arg == "--backoff-min") {
      rc = count_option(1, 3'600'000, out.backoff_min_ms);
    } else if (arg == "--backoff-max") {
      rc = count_option(1, 3'600'000, out.backoff_max_ms);
    } else if (arg == "--insecure" || arg == "-k") {
      out.tls.insecure = true;
    } else if (arg == "--ca-file") {
      if (!value(v) || v.empty()) return usage_error("missing value for --ca-file");
      out.tls.ca_file = v;
    } else if (arg == "--no-reconnect") {
      out.reconnect = false;
    } else if (arg == "--sources") {
      rc = count_option(0, 1u << 24, out.sources);
    } else if (arg == "--source-base") {
      if (!value(v)) return usage_error("missing value for --source-base");
      out.source_base = v;
    } else if (arg == "--report-interval") {
      rc = seconds_option(out.report_interval_s);
      if (rc == kIdleOptionsOk && out.report_interval_s < 0.01) return usage_error("--report-interval must be at least 0.01");
    } else if (arg == "--quiet") {
      out.quiet = true;
    } else {
      return usage_error("unknown option '" + std::string(arg) + "'");
    }
    if (rc != kIdleOptionsOk) return rc;
  }
  if (!parse_ws_url(out.url_text, out.url)) {
    return usage_error("cannot use --url '" + out.url_text + "' (expected ws://HOST:PORT/PATH or wss://...)");
  }
  if (!out.url.secure && (out.tls.insecure || !out.tls.ca_file.empty())) {
    return usage_error("--insecure and --ca-file apply to wss:// URLs only");
  }
  if (out.backoff_max_ms < out.backoff_min_ms) return usage_error("--backoff-max is below --backoff-min");
  return kIdleOptionsOk;
}

std::string format_idle_report(const IdleReport& r) {
  char line[256];
  const IdleCounters& c = r.counters;
  std::snprintf(line, sizeof line,
                "t=%llus open=%llu pending=%llu failed=%llu lost=%llu reconnected=%llu pings=%llu phase=%s",
                static_cast<unsigned long long>(r.elapsed_ms / 1000), static_cast<unsigned long long>(c.open),
                static_cast<unsigned long long>(c.pending), static_cast<unsigned long long>(c.failed),
                static_cast<unsigned long long>(c.lost), static_cast<unsigned long long>(c.reconnected),
                static_cast<unsigned long long>(c.pings), r.holding ? "hold" : "ramp");
  return line;
}

std::string format_idle_summary(const IdleOptions& options, const IdleReport& r) {
  char line[384];
  const IdleCounters& c = r.counters;
  std::snprintf(line, sizeof line,
                "summary target=%u open=%llu peak_open=%llu attempts=%llu failed=%llu lost=%llu "
                "reconnected=%llu pings=%llu ramp_ms=%llu elapsed_ms=%llu complete=%d",
                options.connections, static_cast<unsigned long long>(c.open),
                static_cast<unsigned long long>(c.peak_open), static_cast<unsigned long long>(c.attempts),
                static_cast<unsigned long long>(c.failed), static_cast<unsigned long long>(c.lost),
                static_cast<unsigned long long>(c.reconnected), static_cast<unsigned long long>(c.pings),
                static_cast<unsigned long long>(r.ramp_ms), static_cast<unsigned long long>(r.elapsed_ms),
                c.open == options.connections ? 1 : 0);
  return line;
}

int idle_exit_code(const IdleOptions& options, const IdleReport& report) {
  return report.counters.lost == 0 && report.counters.open == options.connections ? 0 : 1;
}

IdleHolder::IdleHolder(IdleOptions options) : options_(std::move(options)) {}

IdleHolder::~IdleHolder() {
  if (slots_) {
    // An abortive close: a million holders' sockets in TIME_WAIT would outlive the test.
    const linger reset{1, 0};
    for (uint32_t i = 0; i < options_.connections; ++i) {
      slots_[i].tls.release();  // TlsStream frees nothing by itself
      if (slots_[i].fd < 0) continue;
      setsockopt(slots_[i].fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
      close(slots_[i].fd);
    }
  }
  if (epoll_fd_ >= 0) close(epoll_fd_);
}

void IdleHolder::bump(std::atomic<uint64_t>& counter, int64_t by) {
  // Single writer (the run() thread): a plain load and store, no locked read-modify-write.
  counter.store(counter.load(std::memory_order_relaxed) + static_cast<uint64_t>(by), std::memory_order_relaxed);
}

IdleCounters IdleHolder::counters() const {
  IdleCounters c;
  c.open = shared_.open.load(std::memory_order_relaxed);
  c.pending = shared_.pending.load(std::memory_order_relaxed);
  c.peak_open = shared_.peak_open.load(std::memory_order_relaxed);
  c.attempts = shared_.attempts.load(std::memory_order_relaxed);
  c.failed = shared_.failed.load(std::memory_order_relaxed);
  c.lost = shared_.lost.load(std::memory_order_relaxed);
  c.reconnected = shared_.reconnected.load(std::memory_order_relaxed);
  c.pings = shared_.pings.load(std::memory_order_relaxed);
  return c;
}

int IdleHolder::start(std::string& error) {
  if (options_.url.host.empty() && !parse_ws_url(options_.url_text, options_.url)) {
    error = "cannot parse --url '" + options_.url_text + "'";
    return -EINVAL;
  }
  const std::string& host = options_.url.host;
  const std::string authority = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  if (reactor::parse_address(authority + ":" + std::to_string(options_.url.port), server_) != 0) {
    error = "the host must be a numeric address: '" + host + "'";
    return -EINVAL;
  }
  if (options_.sources > 0 && is_ipv4_loopback(server_)) {
    in_addr base{};
    if (inet_pton(AF_INET, options_.source_base.c_str(), &base) != 1) {
      error = "bad --source-base '" + options_.source_base + "'";
      return -EINVAL;
    }
    source_base_ = ntohl(base.s_addr);
    const uint64_t last = static_cast<uint64_t>(source_base_) + options_.sources - 1;
    if ((source_base_ >> 24) != 127 || (last >> 24) != 127) {
      error = "--source-base .. + --sources must stay inside 127.0.0.0/8";
      return -EINVAL;
    }
    bind_sources_ = true;
  }
  // Use the whole hard limit; it cannot be raised beyond it.
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY &&
      static_cast<uint64_t>(options_.connections) + 16 > limit.rlim_cur) {
    error = std::to_string(options_.connections) + " connections do not fit under the file-descriptor limit of " +
            std::to_string(limit.rlim_cur) + "; run more processes";
    return -EMFILE;
  }
  if (options_.url.secure) {
    tls_context_ = reactor::TlsContext::create_client(options_.tls, error);
    if (!tls_context_) return -EINVAL;
  }
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) {
    error = std::string("epoll_create1: ") + std::strerror(errno);
    return -errno;
  }
  request_ = "GET " + options_.url.path + " HTTP/1.1\r\nHost: " + authority + ":" + std::to_string(options_.url.port) +
             "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  slots_ = std::make_unique<Slot[]>(options_.connections);
  rng_ ^= static_cast<uint64_t>(getpid()) * 0x2545f4914f6cdd1dull;
  return 0;
}

void IdleHolder::try_connect(uint32_t index, uint64_t now) {
  Slot& s = slots_[index];
  bump(shared_.attempts);
  bump(shared_.pending);
  s.phase = Phase::kConnecting;
  s.have = 0;
  s.skip = 0;
  s.fd = socket(server_.storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s.fd < 0) {
    drop(index, now);
    return;
  }
  if (bind_sources_) {
    sockaddr_in source{};
    source.sin_family = AF_INET;
    source.sin_addr.s_addr = htonl(source_base_ + static_cast<uint32_t>(source_counter_++ % options_.sources));
    const int one = 1;
    // The port is chosen at connect() time, unique per 4-tuple: each source address brings a
    // whole ephemeral range of its own (instead of bind() reserving the port for every peer).
    setsockopt(s.fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    if (bind(s.fd, reinterpret_cast<sockaddr*>(&source), sizeof source) != 0) {
      drop(index, now);
      return;
    }
  }
  if (connect(s.fd, server_.get(), server_.length) != 0 && errno != EINPROGRESS) {
    drop(index, now);
    return;
  }
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u64 = (static_cast<uint64_t>(s.generation) << 32) | index;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, s.fd, &ev) != 0) {
    drop(index, now);
    return;
  }
  if (tls_context_) {
    SSL* ssl = tls_context_->new_client_connection(s.fd, options_.url.host);
    if (ssl == nullptr) {
      drop(index, now);
      return;
    }
    s.tls.attach(ssl);
  }
  deadlines_.push_back({now + options_.connect_timeout_ms, index, s.generation});
}

bool IdleHolder::secure_request(Slot& s, bool& failed) {
  const reactor::IoResult r = s.tls.handshake();
  if (r.status != reactor::IoStatus::kOk) {
    failed = r.status != reactor::IoStatus::kAgain;
    if (failed && first_tls_error_.empty()) {
      first_tls_error_ = r.error == EPROTO ? reactor::describe_client_handshake_failure(
                                                 s.tls.native(), "failed (is the server speaking TLS?)")
                                           : std::strerror(r.error);
    }
    return false;
  }
  failed = transmit(s, request_.data(), request_.size()) != static_cast<ssize_t>(request_.size());
  return !failed;
}

ssize_t IdleHolder::receive(Slot& s, void* buffer, size_t size) {
  return s.tls.attached() ? tls_read(s.tls, buffer, size) : read(s.fd, buffer, size);
}

ssize_t IdleHolder::transmit(Slot& s, const void* data, size_t size) {
  if (!s.tls.attached()) return write(s.fd, data, size);
  const ssize_t n = tls_write(s.tls, data, size);
  // A stalled TLS write would have to be retried with the same bytes: reported as a failure
  // (EPIPE), which drops the connection, rather than EAGAIN, which the callers let pass.
  if (n < 0 && errno == EAGAIN) errno = EPIPE;
  return n;
}

void IdleHolder::drop(uint32_t index, uint64_t now) {
  Slot& s = slots_[index];
  const bool was_open = s.phase == Phase::kOpen;
  if (was_open) {
    bump(shared_.open, -1);
    bump(shared_.lost);
  } else if (s.phase != Phase::kIdle) {
    bump(shared_.pending, -1);
    bump(shared_.failed);
  }
  // close_notify, best effort: OpenSSL stops offering the session of a connection freed
  // without one, and it may be the session kept for reconnects.
  s.tls.shutdown();
  s.tls.release();
  if (s.fd >= 0) close(s.fd);
  s.fd = -1;
  s.phase = Phase::kIdle;
  ++s.generation;
  if (was_open && !options_.reconnect) return;
  // Full jitter (tools/backoff.h): each delay uniform over [0, min(max, min * 2^n)], so a mass
  // disconnect comes back spread over the whole window rather than as one burst. n counts the
  // failed attempts AND the connections lost within kStableMs of their upgrade: a server that
  // accepts and then drops (overloaded, shedding) sees this holder back off instead of
  // feeding a reconnect storm at the minimum delay. A connection that held longer starts over.
  if (was_open && now - s.opened_ms >= kStableMs) s.failures = 0;
  const uint64_t ceiling = cli::backoff_ceiling_ms(options_.backoff_min_ms, options_.backoff_max_ms, s.failures);
  if (s.failures < 255) ++s.failures;
  rng_ ^= rng_ << 13;
  rng_ ^= rng_ >> 7;
  rng_ ^= rng_ << 17;
  retries_.push({now + cli::full_jitter_ms(ceiling, rng_), index});
}

void IdleHolder::expire_deadlines(uint64_t now) {
  while (!deadlines_.empty() && deadlines_.front().at_ms <= now) {
    const Deadline d = deadlines_.front();
    deadlines_.pop_front();
    Slot& s = slots_[d.slot];
    if (s.generation == d.generation && (s.phase == Phase::kConnecting || s.phase == Phase::kHandshake)) {
      drop(d.slot, now);
    }
  }
}

void IdleHolder::on_event(uint64_t data, uint32_t events, uint64_t now) {
  const uint32_t index = static_cast<uint32_t>(data);
  if (index >= options_.connections) return;
  Slot& s = slots_[index];
  if (s.generation != static_cast<uint32_t>(data >> 32) || s.phase == Phase::kIdle) return;
  if (s.phase == Phase::kConnecting) {
    if (events & (EPOLLERR | EPOLLHUP)) {
      drop(index, now);
      return;
    }
    if (s.tls.attached()) {
      bool failed = false;
      if (!secure_request(s, failed)) {
        if (failed) drop(index, now);
        return;
      }
    } else {
      if (!(events & EPOLLOUT)) return;
      // A fresh socket's send buffer takes the whole request at once.
      if (write(s.fd, request_.data(), request_.size()) != static_cast<ssize_t>(request_.size())) {
        drop(index, now);
        return;
      }
    }
    s.phase = Phase::kHandshake;
  }
  // TLS: the handshake's last read may have brought application bytes along (read-ahead).
  if (!(events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) && !s.tls.attached()) return;
  if (!on_readable(s, (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0)) drop(index, now);
}

// Reads until the socket is drained; false when the connection must be dropped (EOF, error,
// bad response). A short read means drained, and saves the read that would return EAGAIN (a
// quarter of the syscalls of a ping): new bytes raise a new edge. With a hang-up pending
// (`until_eof`), it reads on to see the EOF, which will raise no further edge.
bool IdleHolder::on_readable(Slot& s, bool until_eof) {
  for (;;) {
    if (s.skip > 0) {
      uint8_t scratch[4096];
      const ssize_t got = receive(s, scratch, std::min<uint64_t>(s.skip, sizeof scratch));
      if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) return false;
      s.skip -= static_cast<uint64_t>(got);
      continue;
    }
    // Invariant: have < sizeof buffer here (the handshake fails and on_frames skips otherwise),
    // so a read of 0 bytes always means EOF.
    const ssize_t got = receive(s, s.buffer + s.have, sizeof s.buffer - s.have);
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    // TLS: a short read also means drained, unless the stream ended behind those bytes.
    const bool drained = !until_eof && static_cast<size_t>(got) < sizeof s.buffer - s.have && !s.tls.saw_end();
    s.have = static_cast<uint16_t>(s.have + got);
    if (s.phase == Phase::kHandshake) {
      const std::string_view seen(reinterpret_cast<const char*>(s.buffer), s.have);
      const size_t end = seen.find("\r\n\r\n");
      if (end == std::string_view::npos) {
        if (s.have == sizeof s.buffer) return false;
        if (drained) return true;
        continue;
      }
      // RFC 6455 4.1: anything but 101 means the upgrade failed.
      if (seen.substr(0, 13) != "HTTP/1.1 101 ") return false;
      s.phase = Phase::kOpen;
      // wss: reconnects offer this session (its ticket came before the 101).
      if (s.tls.attached()) tls_context_->keep_session(s.tls.native());
      bump(shared_.pending, -1);
      bump(shared_.open);
      const uint64_t open = shared_.open.load(std::memory_order_relaxed);
      if (open > shared_.peak_open.load(std::memory_order_relaxed)) shared_.peak_open.store(open, std::memory_order_relaxed);
      if (s.ever_open) bump(shared_.reconnected);
      s.ever_open = true;
      s.opened_ms = reactor::monotonic_ms();
      const size_t rest = s.have - (end + 4);
      std::memmove(s.buffer, s.buffer + end + 4, rest);
      s.have = static_cast<uint16_t>(rest);
    }
    if (!on_frames(s)) return false;
    if (drained && s.skip == 0) return true;
  }
}

// Consumes the whole frames in the buffer; false when the connection must be dropped.
bool IdleHolder::on_frames(Slot& s) {
  size_t offset = 0;
  while (offset < s.have) {
    const auto parsed = protocol::parse_frame_header(s.buffer + offset, s.have - offset, protocol::Sender::kServer);
    if (parsed.status == protocol::ParseStatus::kError) return false;
    if (parsed.status == protocol::ParseStatus::kNeedMore) break;
    const protocol::FrameHeader& h = parsed.header;
    const uint64_t frame = h.header_length + h.payload_length;
    if (frame > s.have - offset) {
      if (frame <= sizeof s.buffer) break;
      // Control frames always fit (RFC 6455 5.5: payload <= 125); a data frame this large is
      // of no interest to an idle holder: discard it as it arrives.
      s.skip = frame - (s.have - offset);
      offset = s.have;
      break;
    }
    const uint8_t* payload = s.buffer + offset + h.header_length;
    if (h.opcode == protocol::Opcode::kPing) {
      // RFC 6455 5.5.3: a pong echoes the ping's payload; RFC 6455 5.3: clients mask.
      uint8_t pong[protocol::kMaxFrameHeaderLength + protocol::kMaxControlPayload];
      rng_ ^= rng_ << 13;
      rng_ ^= rng_ >> 7;
      rng_ ^= rng_ << 17;
      uint8_t mask[4];
      std::memcpy(mask, &rng_, sizeof mask);
      const size_t header = protocol::encode_masked_frame_header(pong, protocol::Opcode::kPong, h.payload_length, mask);
      std::memcpy(pong + header, payload, h.payload_length);
      protocol::unmask(pong + header, h.payload_length, mask, 0);
      const ssize_t sent = transmit(s, pong, header + h.payload_length);
      // An idle connection's send buffer is empty, so the pong goes out whole.
      if (sent < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return false;
      bump(shared_.pings);
    } else if (h.opcode == protocol::Opcode::kClose) {
      return false;
    }
    offset += frame;
  }
  std::memmove(s.buffer, s.buffer + offset, s.have - offset);
  s.have = static_cast<uint16_t>(s.have - offset);
  return true;
}

IdleReport IdleHolder::report(uint64_t now) const {
  IdleReport r;
  r.elapsed_ms = now - start_ms_;
  r.holding = hold_start_ms_ != 0;
  r.ramp_ms = ramp_done_ms_;
  r.counters = counters();
  return r;
}

IdleReport IdleHolder::run(const std::function<void(const IdleReport&)>& on_report) {
  const uint64_t connections = options_.connections;
  start_ms_ = reactor::monotonic_ms();
  last_refill_ms_ = start_ms_;
  tokens_ = 1;
  const double ramp_timeout_s =
      options_.ramp_timeout_s > 0 ? options_.ramp_timeout_s : static_cast<double>(connections) / options_.rate + 30;
  const uint64_t ramp_deadline = start_ms_ + static_cast<uint64_t>(ramp_timeout_s * 1000);
  const uint64_t hold_ms = static_cast<uint64_t>(options_.duration_s * 1000);
  const uint64_t report_every = std::max<uint64_t>(10, static_cast<uint64_t>(options_.report_interval_s * 1000));
  uint64_t next_report = start_ms_ + report_every;
  const double burst = std::max(1.0, options_.rate / 20.0);
  epoll_event events[1024];

  for (;;) {
    uint64_t now = reactor::monotonic_ms();
    tokens_ = std::min(burst, tokens_ + static_cast<double>(now - last_refill_ms_) * options_.rate / 1000.0);
    last_refill_ms_ = now;
    // Reconnects first (they are older), then slots never tried; both spend the same tokens.
    while (tokens_ >= 1 && shared_.pending.load(std::memory_order_relaxed) < options_.max_pending) {
      if (!retries_.empty() && retries_.top().due_ms <= now) {
        const uint32_t index = retries_.top().slot;
        retries_.pop();
        try_connect(index, now);
      } else if (next_new_ < connections) {
        try_connect(next_new_++, now);
      } else {
        break;
      }
      tokens_ -= 1;
    }
    expire_deadlines(now);
    if (hold_start_ms_ == 0) {
      if (shared_.open.load(std::memory_order_relaxed) == connections) {
        ramp_done_ms_ = std::max<uint64_t>(1, now - start_ms_);
        hold_start_ms_ = now;
      } else if (now >= ramp_deadline) {
        hold_start_ms_ = now;
      }
    }
    // After the ramp check, so a stop right after the last upgrade still reports the ramp.
    if (stop_requested_.load(std::memory_order_relaxed)) break;
    if (hold_start_ms_ != 0 && now - hold_start_ms_ >= hold_ms) break;
    if (now >= next_report) {
      next_report += report_every;
      if (next_report <= now) next_report = now + report_every;
      if (on_report) on_report(report(now));
    }

    // Sleep until the next token, retry, deadline or report, but never past kMaxWaitMs, so
    // stop() is noticed quickly.
    uint64_t wait = std::min<uint64_t>(kMaxWaitMs, next_report - now);
    const bool can_start = shared_.pending.load(std::memory_order_relaxed) < options_.max_pending;
    if (can_start && (next_new_ < connections || (!retries_.empty() && retries_.top().due_ms <= now))) {
      wait = std::min<uint64_t>(wait, tokens_ >= 1 ? 0 : static_cast<uint64_t>(std::ceil((1 - tokens_) * 1000.0 / options_.rate)));
    } else if (can_start && !retries_.empty()) {
      wait = std::min<uint64_t>(wait, retries_.top().due_ms - now);
    }
    if (!deadlines_.empty()) wait = std::min<uint64_t>(wait, deadlines_.front().at_ms > now ? deadlines_.front().at_ms - now : 0);
    const int n = epoll_wait(epoll_fd_, events, 1024, static_cast<int>(wait));
    if (n < 0 && errno != EINTR) break;
    now = reactor::monotonic_ms();
    for (int i = 0; i < n; ++i) on_event(events[i].data.u64, events[i].events, now);
  }
  return report(reactor::monotonic_ms());
}

}  // namespace tools
