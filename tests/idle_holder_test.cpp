// parley-idle's engine (tools/idle_holder.h): option parsing and the summary line; against a
// scripted fake server (source spread, pong payloads, oversized frames skipped, a refused
// upgrade retried); against a forked WsServer and a parleyd with a 100 ms heartbeat (pongs keep
// every connection); against real parleyd processes (N held, and a server killed and restarted
// on the same port is reconnected to); and the parley-idle binary's exit code and summary.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/forked_server.h"
#include "tests/support/parleyd_process.h"
#include "tests/support/tls_test_certs.h"
#include "tools/idle_holder.h"

namespace {

using namespace std::chrono_literals;
using parley_test::ParleydProcess;
using tools::IdleCounters;
using tools::IdleHolder;
using tools::IdleOptions;
using tools::IdleReport;

int parse(std::vector<std::string> args, IdleOptions& out) {
  args.insert(args.begin(), "parley-idle");
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  return tools::parse_idle_options(static_cast<int>(argv.size()), argv.data(), out);
}

IdleOptions options_for(uint16_t port, uint32_t connections) {
  IdleOptions o;
  EXPECT_EQ(parse({"--url", "ws://127.0.0.1:" + std::to_string(port) + "/echo", "-c", std::to_string(connections),
                   "--rate", "2000", "--backoff-min", "20", "--backoff-max", "200", "--connect-timeout", "3000"},
                  o),
            tools::kIdleOptionsOk);
  return o;
}

// Polls `done` every 10 ms for up to `limit`.
bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return done();
}

// Runs an IdleHolder on its own thread; stops and joins it on destruction.
class HolderThread {
 public:
  explicit HolderThread(IdleOptions options) : holder_(std::move(options)) {
    std::string error;
    started_ = holder_.start(error) == 0;
    EXPECT_TRUE(started_) << error;
    if (started_) thread_ = std::thread([this] { final_ = holder_.run({}); });
  }
  ~HolderThread() { finish(); }
  IdleCounters counters() const { return holder_.counters(); }
  // Stops the holder and returns its final report.
  IdleReport finish() {
    holder_.stop();
    if (thread_.joinable()) thread_.join();
    return final_;
  }

 private:
  IdleHolder holder_;
  bool started_ = false;
  std::thread thread_;
  IdleReport final_;
};

TEST(IdleOptions, DefaultsAndValues) {
  IdleOptions o;
  ASSERT_EQ(parse({}, o), tools::kIdleOptionsOk);
  EXPECT_EQ(o.connections, 1000u);
  EXPECT_EQ(o.url.port, 8080);
  EXPECT_EQ(o.url.path, "/echo");
  EXPECT_TRUE(o.reconnect);

  ASSERT_EQ(parse({"--url", "ws://127.0.0.1:9000/chat", "-c", "19500", "--rate", "2k", "--duration", "1.5",
                   "--sources", "50", "--source-base", "127.1.0.1", "--no-reconnect", "--quiet",
                   "--backoff-min", "10", "--backoff-max", "10"},
                  o),
            tools::kIdleOptionsOk);
  EXPECT_EQ(o.connections, 19500u);
  EXPECT_EQ(o.rate, 2000u);
  EXPECT_DOUBLE_EQ(o.duration_s, 1.5);
  EXPECT_EQ(o.sources, 50u);
  EXPECT_EQ(o.source_base, "127.1.0.1");
  EXPECT_FALSE(o.reconnect);
  EXPECT_TRUE(o.quiet);
  EXPECT_EQ(o.url.path, "/chat");
}

TEST(IdleOptions, RejectsBadValues) {
  auto parse_fresh = [](std::vector<std::string> args) {
    IdleOptions o;
    return parse(std::move(args), o);
  };
  EXPECT_EQ(parse_fresh({"-c", "0"}), 2);
  EXPECT_EQ(parse_fresh({"-c", "19501"}), 2);  // beyond one process's file descriptors
  EXPECT_EQ(parse_fresh({"-c"}), 2);
  EXPECT_EQ(parse_fresh({"--rate", "fast"}), 2);
  EXPECT_EQ(parse_fresh({"--duration", "-1"}), 2);
  EXPECT_EQ(parse_fresh({"--url", "http://127.0.0.1:1/"}), 2);
  EXPECT_EQ(parse_fresh({"--backoff-min", "500", "--backoff-max", "100"}), 2);
  EXPECT_EQ(parse_fresh({"--bogus"}), 2);
  EXPECT_EQ(parse_fresh({"--sources", "1", "--help"}), 0);
}

TEST(IdleOptions, SecureUrlAndTlsOptions) {
  IdleOptions o;
  ASSERT_EQ(parse({"--url", "wss://127.0.0.1:8443/echo", "--ca-file", "cert.pem"}, o), tools::kIdleOptionsOk);
  EXPECT_TRUE(o.url.secure);
  EXPECT_EQ(o.tls.ca_file, "cert.pem");
  EXPECT_FALSE(o.tls.insecure);
  IdleOptions k;
  ASSERT_EQ(parse({"-k", "--url", "wss://127.0.0.1:8443/echo"}, k), tools::kIdleOptionsOk);
  EXPECT_TRUE(k.tls.insecure);
  IdleOptions plain;
  EXPECT_EQ(parse({"--insecure"}, plain), 2);  // ws:// (the default URL) has nothing to verify
  IdleOptions no_file;
  EXPECT_EQ(parse({"--url", "wss://127.0.0.1:8443/echo", "--ca-file"}, no_file), 2);
}

TEST(IdleOptions, StartRejectsAnUnreadableCaFile) {
  IdleOptions o;
  ASSERT_EQ(parse({"--url", "wss://127.0.0.1:8443/echo", "--ca-file", "/nonexistent/ca.pem"}, o),
            tools::kIdleOptionsOk);
  std::string error;
  EXPECT_EQ(IdleHolder(o).start(error), -EINVAL);
  EXPECT_NE(error.find("cannot read CA file '/nonexistent/ca.pem'"), std::string::npos) << error;
}

TEST(IdleOptions, StartRejectsNamesAndSourcesOutsideLoopback) {
  IdleOptions o;
  ASSERT_EQ(parse({"--url", "ws://chat.example:9000/echo"}, o), tools::kIdleOptionsOk);
  std::string error;
  EXPECT_EQ(IdleHolder(o).start(error), -EINVAL);
  EXPECT_NE(error.find("numeric"), std::string::npos) << error;

  ASSERT_EQ(parse({"--url", "ws://127.0.0.1:9000/echo", "--source-base", "127.255.255.250", "--sources", "10"}, o),
            tools::kIdleOptionsOk);
  EXPECT_EQ(IdleHolder(o).start(error), -EINVAL);
}

TEST(IdleReportFormat, SummaryLineAndExitCode) {
  IdleOptions o;
  o.connections = 10;
  IdleReport r;
  r.elapsed_ms = 2500;
  r.ramp_ms = 120;
  r.holding = true;
  r.counters.open = 10;
  r.counters.peak_open = 10;
  r.counters.attempts = 12;
  r.counters.failed = 2;
  r.counters.pings = 7;
  EXPECT_EQ(tools::format_idle_summary(o, r),
            "summary target=10 open=10 peak_open=10 attempts=12 failed=2 lost=0 reconnected=0 pings=7 "
            "ramp_ms=120 elapsed_ms=2500 complete=1");
  EXPECT_EQ(tools::format_idle_report(r), "t=2s open=10 pending=0 failed=2 lost=0 reconnected=0 pings=7 phase=hold");
  EXPECT_EQ(tools::idle_exit_code(o, r), 0);
  r.counters.lost = 1;
  r.counters.reconnected = 1;
  EXPECT_EQ(tools::idle_exit_code(o, r), 1);  // reconnected, but something was lost
  r.counters.lost = 0;
  r.counters.open = 9;
  EXPECT_EQ(tools::idle_exit_code(o, r), 1);  // not all held
}

// A blocking, scripted WebSocket "server" for what a real one will not do on demand.
class FakeServer {
 public:
  FakeServer() {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 && listen(listen_fd_, 64) == 0 &&
        getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
      port_ = ntohs(address.sin_port);
    }
  }
  ~FakeServer() {
    for (int fd : accepted_) close(fd);
    close(listen_fd_);
  }
  uint16_t port() const { return port_; }

  // Accepts one connection within 5 s and reads its request head; -1 on timeout. `peer` gets
  // the client's address.
  int accept_upgrade(std::string& peer) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (poll(&p, 1, 5000) != 1) return -1;
    sockaddr_in address{};
    socklen_t length = sizeof address;
    const int fd = accept4(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length, SOCK_CLOEXEC);
    if (fd < 0) return -1;
    accepted_.push_back(fd);
    char text[INET_ADDRSTRLEN] = {};
    inet_ntop(AF_INET, &address.sin_addr, text, sizeof text);
    peer = text;
    std::string head;
    while (head.find("\r\n\r\n") == std::string::npos) {
      char buffer[512];
      if (!readable(fd)) return -1;
      const ssize_t got = read(fd, buffer, sizeof buffer);
      if (got <= 0) return -1;
      head.append(buffer, static_cast<size_t>(got));
    }
    return head.rfind("GET /echo HTTP/1.1\r\n", 0) == 0 ? fd : -1;
  }

  static bool readable(int fd) {
    pollfd p{fd, POLLIN, 0};
    return poll(&p, 1, 5000) == 1;
  }
  static bool send_all(int fd, const std::string& bytes) {
    return write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size());
  }
  // Reads exactly `n` bytes within 5 s.
  static std::string read_exactly(int fd, size_t n) {
    std::string out;
    while (out.size() < n) {
      if (!readable(fd)) break;
      char buffer[256];
      const ssize_t got = read(fd, buffer, std::min(sizeof buffer, n - out.size()));
      if (got <= 0) break;
      out.append(buffer, static_cast<size_t>(got));
    }
    return out;
  }

 private:
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::vector<int> accepted_;
};

constexpr char kSwitching[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";

// An unmasked server frame (RFC 6455 5.2), payload up to 65535 bytes.
std::string server_frame(uint8_t opcode, const std::string& payload) {
  std::string frame(1, static_cast<char>(0x80 | opcode));
  if (payload.size() < 126) {
    frame += static_cast<char>(payload.size());
  } else {
    frame += static_cast<char>(126);
    frame += static_cast<char>(payload.size() >> 8);
    frame += static_cast<char>(payload.size() & 0xff);
  }
  return frame + payload;
}

TEST(IdleHolderFake, SpreadsSourcesSkipsBigFramesAndEchoesPingPayloads) {
  FakeServer server;
  ASSERT_NE(server.port(), 0);
  IdleOptions o = options_for(server.port(), 8);
  o.sources = 4;
  o.source_base = "127.0.0.2";
  HolderThread holder(o);
  std::set<std::string> peers;
  for (int i = 0; i < 8; ++i) {
    std::string peer;
    const int fd = server.accept_upgrade(peer);
    ASSERT_GE(fd, 0) << "connection " << i;
    peers.insert(peer);
    // The 101 and a 1000-byte binary frame (larger than the holder's per-connection buffer)
    // arrive together with a ping: the big frame must be skipped, the ping answered.
    const std::string payload = "ping-" + std::to_string(i);
    ASSERT_TRUE(FakeServer::send_all(fd, std::string(kSwitching) + server_frame(0x2, std::string(1000, 'b')) +
                                             server_frame(0x9, payload)));
    const std::string pong = FakeServer::read_exactly(fd, 2 + 4 + payload.size());
    ASSERT_EQ(pong.size(), 6 + payload.size()) << "connection " << i;
    EXPECT_EQ(static_cast<uint8_t>(pong[0]), 0x8A);  // FIN + pong
    EXPECT_EQ(static_cast<uint8_t>(pong[1]), 0x80 | payload.size());  // masked (RFC 6455 5.3)
    std::string unmasked;
    for (size_t k = 0; k < payload.size(); ++k) unmasked += static_cast<char>(pong[6 + k] ^ pong[2 + k % 4]);
    EXPECT_EQ(unmasked, payload);
  }
  EXPECT_EQ(peers, (std::set<std::string>{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"}));
  ASSERT_TRUE(wait_until([&] { return holder.counters().open == 8; }, 5s));
  const IdleReport r = holder.finish();
  EXPECT_EQ(r.counters.open, 8u);
  EXPECT_EQ(r.counters.pings, 8u);
  EXPECT_EQ(r.counters.lost, 0u);
  EXPECT_EQ(r.counters.failed, 0u);
  EXPECT_GT(r.ramp_ms, 0u);
}

TEST(IdleHolderFake, RetriesARefusedUpgradeAndCountsACloseFrameAsLost) {
  FakeServer server;
  ASSERT_NE(server.port(), 0);
  HolderThread holder(options_for(server.port(), 1));
  std::string peer;
  int fd = server.accept_upgrade(peer);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(FakeServer::send_all(fd, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"));
  fd = server.accept_upgrade(peer);  // the retry, after the backoff
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(FakeServer::send_all(fd, kSwitching));
  ASSERT_TRUE(wait_until([&] { return holder.counters().open == 1; }, 5s));
  EXPECT_EQ(holder.counters().failed, 1u);
  // RFC 6455 1001 going away: the connection is lost, and reconnected.
  ASSERT_TRUE(FakeServer::send_all(fd, server_frame(0x8, std::string("\x03\xe9", 2))));
  fd = server.accept_upgrade(peer);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(FakeServer::send_all(fd, kSwitching));
  ASSERT_TRUE(wait_until([&] { return holder.counters().reconnected == 1; }, 5s));
  const IdleReport r = holder.finish();
  EXPECT_EQ(r.counters.open, 1u);
  EXPECT_EQ(r.counters.lost, 1u);
  EXPECT_EQ(r.counters.reconnected, 1u);
  EXPECT_EQ(r.counters.attempts, 3u);
}

// A server that upgrades and at once closes (overloaded, shedding) must see the holder back off
// exponentially with full jitter, not come back at the minimum delay every time: that is how a
// client feeds a reconnect storm. With a 20 ms minimum, a fixed delay would bring about 80
// reconnections in 2 s; doubling ceilings (20, 40, ... 2,000 ms) bring about 8.
TEST(IdleHolderFake, ConnectionsDroppedRightAfterTheUpgradeBackOff) {
  FakeServer server;
  ASSERT_NE(server.port(), 0);
  IdleOptions o = options_for(server.port(), 1);
  o.backoff_max_ms = 2000;
  HolderThread holder(o);
  const auto start = std::chrono::steady_clock::now();
  int upgrades = 0;
  while (std::chrono::steady_clock::now() - start < 2s) {
    std::string peer;
    const int fd = server.accept_upgrade(peer);
    ASSERT_GE(fd, 0) << "no reconnection after " << upgrades;
    ++upgrades;
    // RFC 6455 7.4.1 1013 try again later, right after the 101.
    ASSERT_TRUE(FakeServer::send_all(fd, std::string(kSwitching) + server_frame(0x8, std::string("\x03\xf5", 2))));
  }
  const IdleReport r = holder.finish();
  std::printf("[ info     ] %d upgrades in 2 s, each closed at once\n", upgrades);
  EXPECT_GE(upgrades, 3);
  EXPECT_LE(upgrades, 25);
  EXPECT_GE(r.counters.lost, static_cast<uint64_t>(upgrades - 1));
}

TEST(IdleHolderFake, RampIsPacedByTheRate) {
  FakeServer server;
  ASSERT_NE(server.port(), 0);
  IdleOptions o = options_for(server.port(), 40);
  o.rate = 100;  // a burst of 5, then one every 10 ms: 40 take at least ~350 ms
  HolderThread holder(o);
  const auto begin = std::chrono::steady_clock::now();
  for (int i = 0; i < 40; ++i) {
    std::string peer;
    const int fd = server.accept_upgrade(peer);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(FakeServer::send_all(fd, kSwitching));
  }
  EXPECT_GE(std::chrono::steady_clock::now() - begin, 300ms);
  ASSERT_TRUE(wait_until([&] { return holder.counters().open == 40; }, 5s));
}

// With pings every 100 ms and a 700 ms pong deadline, a holder that did not answer would lose
// every connection within a second (the deadline leaves room for a loaded machine).
TEST(IdleHolderServer, AnsweredPingsKeepEveryConnection) {
  protocol::WsServerConfig config;
  config.ping_interval_ms = 100;
  config.pong_timeout_ms = 700;
  parley_test::ForkedServer server(config);
  ASSERT_TRUE(server.ok());
  IdleOptions o = options_for(server.port(), 200);
  o.duration_s = 2;
  o.report_interval_s = 0.25;
  IdleHolder holder(o);
  std::string error;
  ASSERT_EQ(holder.start(error), 0) << error;
  int reports = 0;
  const IdleReport r = holder.run([&](const IdleReport&) { ++reports; });
  EXPECT_EQ(r.counters.open, 200u);
  EXPECT_EQ(r.counters.lost, 0u);
  EXPECT_EQ(r.counters.failed, 0u);
  // The server arms one timer per connection: the next ping follows the pong deadline.
  EXPECT_GE(r.counters.pings, 200u * 2);
  EXPECT_TRUE(r.holding);
  EXPECT_GE(r.elapsed_ms, 2000u);
  EXPECT_GE(reports, 1);
  EXPECT_EQ(tools::idle_exit_code(o, r), 0);
}

TEST(IdleHolderParleyd, HoldsAllAndReconnectsAfterARestartOnTheSamePort) {
  auto first = std::make_unique<ParleydProcess>(std::vector<std::string>{"--reuseport"});
  ASSERT_TRUE(first->ok()) << first->error();
  const uint16_t port = first->port();
  constexpr uint32_t kConnections = 300;
  HolderThread holder(options_for(port, kConnections));
  ASSERT_TRUE(wait_until([&] { return holder.counters().open == kConnections; }, 10s))
      << "open=" << holder.counters().open;
  EXPECT_EQ(holder.counters().lost, 0u);

  kill(first->pid(), SIGKILL);
  first->stop();
  ASSERT_TRUE(wait_until([&] { return holder.counters().lost == kConnections; }, 10s))
      << "lost=" << holder.counters().lost;
  EXPECT_EQ(holder.counters().open, 0u);

  ParleydProcess second({"--listen", "127.0.0.1:" + std::to_string(port), "--reuseport"});
  ASSERT_TRUE(second.ok()) << second.error();
  ASSERT_TRUE(wait_until([&] { return holder.counters().reconnected == kConnections; }, 15s))
      << "reconnected=" << holder.counters().reconnected << " open=" << holder.counters().open;
  const IdleReport r = holder.finish();
  EXPECT_EQ(r.counters.open, kConnections);
  EXPECT_EQ(r.counters.peak_open, kConnections);
  EXPECT_EQ(r.counters.lost, kConnections);
  EXPECT_EQ(r.counters.reconnected, kConnections);
  EXPECT_EQ(r.counters.attempts, 2 * kConnections + r.counters.failed);
}

// wss://: held through TLS with the certificate trusted by --ca-file; without it, nothing opens
// and the first failure's reason is OpenSSL's verify result.
TEST(IdleHolderParleyd, HoldsWssConnectionsAndNamesARefusedCertificate) {
  parley_test::TestCertificate cert;
  ASSERT_TRUE(cert.ok()) << cert.error();
  ParleydProcess server({"--tls-cert", cert.cert_path(), "--tls-key", cert.key_path()});
  ASSERT_TRUE(server.ok()) << server.error();
  const std::string url = "wss://127.0.0.1:" + std::to_string(server.port()) + "/echo";
  IdleOptions trusted;
  ASSERT_EQ(parse({"--url", url, "--ca-file", cert.cert_path(), "-c", "50", "--duration", "0.2"}, trusted),
            tools::kIdleOptionsOk);
  IdleHolder holder(trusted);
  std::string error;
  ASSERT_EQ(holder.start(error), 0) << error;
  const IdleReport held = holder.run({});
  EXPECT_EQ(held.counters.open, 50u);
  EXPECT_EQ(held.counters.failed, 0u);
  EXPECT_EQ(holder.first_tls_error(), "");

  IdleOptions verifying;
  ASSERT_EQ(parse({"--url", url, "-c", "2", "--duration", "0", "--ramp-timeout", "0.3"}, verifying),
            tools::kIdleOptionsOk);
  IdleHolder refused(verifying);
  ASSERT_EQ(refused.start(error), 0) << error;
  const IdleReport none = refused.run({});
  EXPECT_EQ(none.counters.open, 0u);
  EXPECT_GE(none.counters.failed, 2u);
  EXPECT_EQ(refused.first_tls_error(), "certificate verify failed: self-signed certificate");
}

// parleyd's own heartbeat flags: with a ping every 100 ms and a 700 ms pong deadline, only
// answered pings keep the connections.
TEST(IdleHolderParleyd, AnswersParleydHeartbeats) {
  ParleydProcess server({"--ping-interval", "100", "--pong-timeout", "700"});
  ASSERT_TRUE(server.ok()) << server.error();
  IdleOptions o = options_for(server.port(), 100);
  o.duration_s = 2;
  IdleHolder holder(o);
  std::string error;
  ASSERT_EQ(holder.start(error), 0) << error;
  const IdleReport r = holder.run({});
  EXPECT_EQ(r.counters.open, 100u);
  EXPECT_EQ(r.counters.lost, 0u);
  EXPECT_GE(r.counters.pings, 100u * 2);
}

struct BinaryRun {
  int exit_code = -1;
  std::string output;
};

// Runs <build>/parley-idle with `args`, waiting at most 20 s.
BinaryRun run_idle_binary(std::vector<std::string> args) {
  BinaryRun run;
  char path[] = "/tmp/parley-idle-test-XXXXXX";
  const int out_fd = mkstemp(path);
  if (out_fd < 0) return run;
  args.insert(args.begin(), parley_test::build_dir() + "/parley-idle");
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(out_fd, STDOUT_FILENO);
    dup2(out_fd, STDERR_FILENO);
    execv(argv[0], argv.data());
    _exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  int status = 0;
  for (;;) {
    if (waitpid(pid, &status, WNOHANG) == pid) {
      run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      break;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(20ms);
  }
  close(out_fd);
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  run.output = text.str();
  unlink(path);
  return run;
}

TEST(IdleBinary, HoldsAndEndsWithACleanSummary) {
  ParleydProcess server;
  ASSERT_TRUE(server.ok()) << server.error();
  const BinaryRun run = run_idle_binary({"--url", "ws://127.0.0.1:" + std::to_string(server.port()) + "/echo",
                                         "-c", "500", "--rate", "5000", "--duration", "1.2"});
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("t=1s open=500 "), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("summary target=500 open=500 peak_open=500 attempts=500 failed=0 lost=0 reconnected=0 "),
            std::string::npos)
      << run.output;
  EXPECT_NE(run.output.find(" complete=1\n"), std::string::npos) << run.output;
}

TEST(IdleBinary, FailsWhenConnectionsAreLost) {
  auto server = std::make_unique<ParleydProcess>();
  ASSERT_TRUE(server->ok()) << server->error();
  const std::string url = "ws://127.0.0.1:" + std::to_string(server->port()) + "/echo";
  std::thread killer([&] {
    std::this_thread::sleep_for(700ms);
    server->stop();
  });
  const BinaryRun run = run_idle_binary({"--url", url, "-c", "50", "--duration", "1.5", "--quiet", "--no-reconnect"});
  killer.join();
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_NE(run.output.find("open=0 peak_open=50 attempts=50 failed=0 lost=50 reconnected=0 "), std::string::npos)
      << run.output;
  EXPECT_EQ(run.output.find("t=1s"), std::string::npos) << "--quiet printed status lines: " << run.output;
}

TEST(IdleBinary, RefusesMoreThanOneProcessCanHold) {
  const BinaryRun run = run_idle_binary({"-c", "20000"});
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.output.find("-c"), std::string::npos) << run.output;
}

}  // namespace
