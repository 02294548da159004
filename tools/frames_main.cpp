// parley-frames: times the Autobahn|Testsuite performance shapes that stress a server's input
// path (issue 18, goal 3), against one or more echo endpoints, with a C++ client so the client is
// not what is measured. The shapes:
//   chop-*   9.5.x / 9.6.x: a 1 MiB frame written in small send()s (TCP_NODELAY), echoed back;
//   frag-*   9.3.x / 9.4.x style: a 1 MiB message as many small frames, written as one stream;
//            (both 8 times in a row, each waiting for its echo);
//   rtt-*    9.7.x / 9.8.x: 1,000 sequential round trips of one-frame messages;
//   rttf-*   the same with each message in 4 fragments, rttc-* with each frame chopped in writes.
// Rounds alternate between the targets (case by case, in turns) so machine noise hits them alike;
// it prints per-case medians of wall time and, for targets given a pid, of server CPU time (the
// sum of /proc/<pid>/task/*/schedstat on-CPU time, ns resolution; /proc/<pid>/stat otherwise).
// Every echo is compared byte for byte. Exit status: 0 ok, 1 a case failed, 2 bad usage.
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "protocol/frame_header.h"
#include "tools/process_cpu.h"

namespace {

using protocol::Opcode;

constexpr size_t kMiB = 1 << 20;
constexpr size_t kReadChunk = 256 * 1024;
// A fragmented stream is handed to the kernel in writes of at most this much (chop 0).
constexpr size_t kStreamWrite = 64 * 1024;
// Autobahn sends its 1 MiB message once; one takes about a millisecond here, too little to time
// on a busy machine, so the chop-* and frag-* cases send it this many times in a row.
constexpr int kLargeRepeat = 8;

struct Target {
  std::string name;
  uint16_t port = 0;
  int pid = 0;  // 0: no server CPU figures
};

// One timed shape: `count` sequential round trips of a `message`-byte message, sent as frames of
// `frame` payload bytes (0: one frame) whose wire bytes are written `chop` bytes per send()
// (0: in large writes).
struct Case {
  std::string name;
  Opcode opcode;
  size_t message;
  size_t frame;
  size_t chop;
  int count;
};

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (Opcode op : {Opcode::kText, Opcode::kBinary}) {
    const char* kind = op == Opcode::kText ? "text" : "binary";
    for (size_t chop : {64, 128, 256, 512, 1024, 2048, 4096}) {
      cases.push_back({"chop-" + std::string(kind) + "-" + std::to_string(chop), op, kMiB, 0, chop, kLargeRepeat});
    }
    for (size_t frame : {64, 256, 1024, 4096, 16384, 131072}) {
      cases.push_back({"frag-" + std::string(kind) + "-" + std::to_string(frame), op, kMiB, frame, 0, kLargeRepeat});
    }
    for (size_t size : {0, 16, 64, 256, 1024, 4096}) {
      cases.push_back({"rtt-" + std::string(kind) + "-" + std::to_string(size), op, size, 0, 0, 1000});
    }
    cases.push_back({"rttf-" + std::string(kind) + "-4096", op, 4096, 1024, 0, 1000});
    cases.push_back({"rttc-" + std::string(kind) + "-4096", op, 4096, 0, 256, 1000});
  }
  return cases;
}

uint64_t now_ns() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

// Server CPU time in ns: all threads' schedstat on-CPU time, or utime+stime from stat.
uint64_t server_cpu_ns(int pid) {
  if (pid <= 0) return 0;
  const std::string base = "/proc/" + std::to_string(pid);
  uint64_t total = 0;
  bool any = false;
  if (DIR* dir = opendir((base + "/task").c_str())) {
    while (dirent* entry = readdir(dir)) {
      if (entry->d_name[0] == '.') continue;
      std::ifstream in(base + "/task/" + entry->d_name + "/schedstat");
      uint64_t on_cpu = 0;
      if (in >> on_cpu) {
        total += on_cpu;
        any = true;
      }
    }
    closedir(dir);
  }
  if (any) return total;
  // No schedstat (a kernel without CONFIG_SCHED_INFO): utime+stime, in clock ticks.
  uint64_t ns = 0;
  return tools::process_cpu_ns(pid, ns) ? ns : 0;
}

bool send_all(int fd, const uint8_t* data, size_t len) {
  while (len > 0) {
    ssize_t n = ::send(fd, data, len, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

// A connected, upgraded client socket; reads echo frames (unmasked, RFC 6455 5.1) into `in_`.
class Client {
 public:
  ~Client() {
    if (fd_ >= 0) ::close(fd_);
  }

  bool connect_to(uint16_t port, std::string& error) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      error = std::string("connect: ") + std::strerror(errno);
      return false;
    }
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    timeval timeout{30, 0};  // a server that stops answering fails the case, not the run
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    const std::string request =
        "GET /echo HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
        "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    if (!send_all(fd_, reinterpret_cast<const uint8_t*>(request.data()), request.size())) {
      error = "send of the upgrade request failed";
      return false;
    }
    std::string head;
    while (head.find("\r\n\r\n") == std::string::npos) {
      char c;
      if (::recv(fd_, &c, 1, 0) != 1) {
        error = "no upgrade response";
        return false;
      }
      head.push_back(c);
    }
    // RFC 6455 1.3's sample key, so the accept value is the RFC's too.
    if (head.compare(0, 12, "HTTP/1.1 101") != 0 || head.find("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == std::string::npos) {
      error = "upgrade refused: " + head.substr(0, head.find("\r\n"));
      return false;
    }
    return true;
  }

  bool send_bytes(const uint8_t* data, size_t len) { return send_all(fd_, data, len); }

  // Reads one whole data message and checks it equals `expected` with `opcode`.
  bool expect_message(Opcode opcode, const uint8_t* expected, size_t size, std::string& error) {
    size_t got = 0;
    bool first = true;
    for (;;) {
      protocol::HeaderParse parse;
      while ((parse = protocol::parse_frame_header(in_.data() + head_, in_.size() - head_, protocol::Sender::kServer))
                 .status == protocol::ParseStatus::kNeedMore) {
        if (!fill(error)) return false;
      }
      if (parse.status == protocol::ParseStatus::kError) {
        error = "bad frame header from the server";
        return false;
      }
      const protocol::FrameHeader& h = parse.header;
      if (h.opcode != (first ? opcode : Opcode::kContinuation)) {
        error = "unexpected opcode " + std::to_string(static_cast<int>(h.opcode));
        return false;
      }
      head_ += h.header_length;
      if (got + h.payload_length > size) {
        error = "echo longer than the message";
        return false;
      }
      uint64_t left = h.payload_length;
      while (left > 0) {
        if (head_ == in_.size() && !fill(error)) return false;
        size_t take = static_cast<size_t>(std::min<uint64_t>(left, in_.size() - head_));
        if (std::memcmp(in_.data() + head_, expected + got, take) != 0) {
          error = "echo differs from the message";
          return false;
        }
        head_ += take;
        got += take;
        left -= take;
      }
      first = false;
      if (h.fin) break;
    }
    if (got != size) {
      error = "echo shorter than the message";
      return false;
    }
    return true;
  }

  // Sends a close (1000) and waits for the server's close or end of stream.
  void close_cleanly() {
    const uint8_t mask[4] = {1, 2, 3, 4};
    uint8_t frame[protocol::kMaxFrameHeaderLength + 2];
    size_t n = protocol::encode_masked_frame_header(frame, Opcode::kClose, 2, mask);
    frame[n] = 0x03 ^ mask[0];
    frame[n + 1] = 0xE8 ^ mask[1];
    send_all(fd_, frame, n + 2);
    uint8_t sink[4096];
    while (::recv(fd_, sink, sizeof sink, 0) > 0) {
    }
  }

 private:
  bool fill(std::string& error) {
    if (head_ > 0) {
      in_.erase(in_.begin(), in_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
    size_t old = in_.size();
    in_.resize(old + kReadChunk);
    ssize_t n;
    do {
      n = ::recv(fd_, in_.data() + old, kReadChunk, 0);
    } while (n < 0 && errno == EINTR);
    in_.resize(old + static_cast<size_t>(std::max<ssize_t>(n, 0)));
    if (n <= 0) {
      error = n == 0 ? "server closed the connection" : std::string("recv: ") + std::strerror(errno);
      return false;
    }
    return true;
  }

  int fd_ = -1;
  std::vector<uint8_t> in_;
  size_t head_ = 0;
};

// The message's wire bytes: masked frames of at most c.frame payload bytes each.
std::vector<uint8_t> encode_message(const Case& c, const std::vector<uint8_t>& payload) {
  std::vector<uint8_t> wire;
  const size_t frame = c.frame == 0 ? std::max<size_t>(c.message, 1) : c.frame;
  size_t at = 0;
  uint32_t seed = 0x9E3779B9u;
  do {
    const size_t len = std::min(frame, c.message - at);
    uint8_t mask[4];
    seed = seed * 1664525u + 1013904223u;
    std::memcpy(mask, &seed, 4);
    uint8_t header[protocol::kMaxFrameHeaderLength];
    const bool fin = at + len == c.message;
    size_t n = protocol::encode_masked_frame_header(header, at == 0 ? c.opcode : Opcode::kContinuation, len, mask, fin);
    wire.insert(wire.end(), header, header + n);
    size_t start = wire.size();
    wire.insert(wire.end(), payload.begin() + static_cast<std::ptrdiff_t>(at),
                payload.begin() + static_cast<std::ptrdiff_t>(at + len));
    protocol::unmask(wire.data() + start, len, mask, 0);
    at += len;
  } while (at < c.message);
  return wire;
}

std::vector<uint8_t> make_payload(const Case& c) {
  std::vector<uint8_t> payload(c.message);
  // Text: ASCII with a 2-, 3- and 4-byte code point every 64 bytes, so validation is not only the
  // ASCII fast path and frame / write boundaries fall inside code points. Binary: any bytes.
  static const uint8_t kText[64 + 1] =
      "parley frames \xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80 0123456789abcdefghijklmnopqrstuvwxyz....";
  for (size_t i = 0; i < c.message; ++i) {
    payload[i] = c.opcode == Opcode::kText ? kText[i % 64] : static_cast<uint8_t>(i * 131 + (i >> 8));
  }
  if (c.opcode == Opcode::kText) {
    // Do not end the message inside a code point.
    size_t end = c.message;
    while (end > 0 && (payload[end - 1] & 0x80)) payload[--end] = '.';
  }
  return payload;
}

struct Sample {
  uint64_t wall_ns = 0;
  uint64_t cpu_ns = 0;
};

// Runs one case against one target on a fresh connection.
std::optional<Sample> run_case(const Case& c, const Target& t, const std::vector<uint8_t>& payload,
                               const std::vector<uint8_t>& wire, std::string& error) {
  Client client;
  if (!client.connect_to(t.port, error)) return std::nullopt;
  const uint64_t cpu0 = server_cpu_ns(t.pid);
  const uint64_t t0 = now_ns();
  for (int i = 0; i < c.count; ++i) {
    const size_t unit = c.chop == 0 ? kStreamWrite : c.chop;
    for (size_t at = 0; at < wire.size(); at += unit) {
      if (!client.send_bytes(wire.data() + at, std::min(unit, wire.size() - at))) {
        error = std::string("send: ") + std::strerror(errno);
        return std::nullopt;
      }
    }
    if (!client.expect_message(c.opcode, payload.data(), payload.size(), error)) return std::nullopt;
  }
  Sample s;
  s.wall_ns = now_ns() - t0;
  s.cpu_ns = server_cpu_ns(t.pid) - cpu0;
  client.close_cleanly();
  return s;
}

uint64_t median(std::vector<uint64_t> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

void usage(FILE* out) {
  std::fprintf(out,
               "usage: parley-frames --target NAME=PORT[:PID] [--target ...] [--rounds N] [--warmup N]\n"
               "                     [--cases SUBSTR[,SUBSTR...]] [--verbose] [--list]\n"
               "Times Autobahn 9.3-9.8-like shapes against ws://127.0.0.1:PORT/echo; with several\n"
               "targets, rounds alternate between them and ratios are the first over each other\n(above 1: the first is slower).\n");
}

bool parse_target(const std::string& spec, Target& t) {
  size_t eq = spec.find('=');
  if (eq == std::string::npos || eq == 0) return false;
  t.name = spec.substr(0, eq);
  std::string rest = spec.substr(eq + 1);
  size_t colon = rest.find(':');
  char* end = nullptr;
  unsigned long port = std::strtoul(rest.c_str(), &end, 10);
  if (port == 0 || port > 65535 || (*end != '\0' && *end != ':')) return false;
  t.port = static_cast<uint16_t>(port);
  if (colon != std::string::npos) {
    t.pid = std::atoi(rest.c_str() + colon + 1);
    if (t.pid <= 0) return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<Target> targets;
  std::vector<std::string> filters;
  int rounds = 5, warmup = 1;
  bool verbose = false, list = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        usage(stderr);
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--target") {
      Target t;
      if (!parse_target(value(), t)) {
        std::fprintf(stderr, "parley-frames: bad --target (want NAME=PORT[:PID])\n");
        return 2;
      }
      targets.push_back(t);
    } else if (arg == "--rounds") {
      rounds = std::atoi(value().c_str());
    } else if (arg == "--warmup") {
      warmup = std::atoi(value().c_str());
    } else if (arg == "--cases") {
      std::stringstream list_in(value());
      for (std::string f; std::getline(list_in, f, ',');) filters.push_back(f);
    } else if (arg == "--verbose") {
      verbose = true;
    } else if (arg == "--list") {
      list = true;
    } else if (arg == "--help" || arg == "-h") {
      usage(stdout);
      return 0;
    } else {
      std::fprintf(stderr, "parley-frames: unknown argument %s\n", arg.c_str());
      usage(stderr);
      return 2;
    }
  }
  std::vector<Case> cases;
  for (const Case& c : all_cases()) {
    bool keep = filters.empty();
    for (const std::string& f : filters) keep = keep || c.name.find(f) != std::string::npos;
    if (keep) cases.push_back(c);
  }
  if (list) {
    for (const Case& c : cases) std::printf("%s\n", c.name.c_str());
    return 0;
  }
  if (targets.empty() || rounds < 1 || warmup < 0 || cases.empty()) {
    usage(stderr);
    return 2;
  }

  // samples[case][target]
  std::vector<std::vector<std::vector<Sample>>> samples(cases.size(), std::vector<std::vector<Sample>>(targets.size()));
  int failures = 0;
  for (size_t k = 0; k < cases.size(); ++k) {
    const Case& c = cases[k];
    const std::vector<uint8_t> payload = make_payload(c);
    const std::vector<uint8_t> wire = encode_message(c, payload);
    for (int round = 0; round < warmup + rounds; ++round) {
      for (size_t j = 0; j < targets.size(); ++j) {
        // Alternate the order each round: neither target always runs right after the other.
        const size_t ti = round % 2 == 0 ? j : targets.size() - 1 - j;
        std::string error;
        std::optional<Sample> s = run_case(c, targets[ti], payload, wire, error);
        if (!s) {
          std::fprintf(stderr, "%s on %s: %s\n", c.name.c_str(), targets[ti].name.c_str(), error.c_str());
          ++failures;
          continue;
        }
        if (verbose) {
          std::printf("  %-20s %-10s round %d: wall %.3f ms cpu %.3f ms%s\n", c.name.c_str(), targets[ti].name.c_str(),
                      round, s->wall_ns / 1e6, s->cpu_ns / 1e6, round < warmup ? " (warmup)" : "");
        }
        if (round >= warmup) samples[k][ti].push_back(*s);
      }
    }
  }

  std::printf("medians of %d rounds (after %d warmup), ms; ratios: %s over each other target\n", rounds, warmup, targets[0].name.c_str());
  std::printf("%-20s", "case");
  for (const Target& t : targets) std::printf(" %12s %10s", (t.name + ".wall").c_str(), (t.name + ".cpu").c_str());
  for (size_t j = 1; j < targets.size(); ++j) {
    const std::string ratio = targets[0].name + "/" + targets[j].name;
    std::printf(" %14s %14s", (ratio + ".wall").c_str(), (ratio + ".cpu").c_str());
  }
  std::printf("\n");
  for (size_t k = 0; k < cases.size(); ++k) {
    std::printf("%-20s", cases[k].name.c_str());
    std::vector<uint64_t> wall(targets.size()), cpu(targets.size());
    for (size_t j = 0; j < targets.size(); ++j) {
      std::vector<uint64_t> w, u;
      for (const Sample& s : samples[k][j]) {
        w.push_back(s.wall_ns);
        u.push_back(s.cpu_ns);
      }
      wall[j] = median(w);
      cpu[j] = median(u);
      std::printf(" %12.3f %10.3f", wall[j] / 1e6, targets[j].pid ? cpu[j] / 1e6 : 0.0);
    }
    for (size_t j = 1; j < targets.size(); ++j) {
      std::printf(" %14.2f %14.2f", wall[j] ? double(wall[0]) / wall[j] : 0.0, cpu[j] ? double(cpu[0]) / cpu[j] : 0.0);
    }
    std::printf("\n");
  }
  return failures == 0 ? 0 : 1;
}
