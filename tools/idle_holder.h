#pragma once
// parley-idle's engine: holds N upgraded WebSocket connections open for a bounded time, answers
// the server's pings, spreads source addresses over 127.0.0.0/8, ramps at a controlled rate and
// reconnects what it loses (exponential backoff with full jitter, tools/backoff.h). One thread, one epoll instance, no
// allocation per connection after start() on ws:// (wss:// makes an OpenSSL session per attempt).
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <queue>
#include <string>
#include <vector>

#include "reactor/socket_ops.h"
#include "reactor/tls_context.h"
#include "tools/ws_url.h"

namespace tools {

// The per-process file-descriptor limit here is 20,000 and cannot be raised: the epoll fd,
// stdio and a little headroom must fit beside the connections.
inline constexpr uint32_t kMaxIdleConnectionsPerProcess = 19'500;

struct IdleOptions {
  std::string url_text = "ws://127.0.0.1:8080/echo";
  WsUrl url;                         // parsed from url_text by parse_idle_options()
  reactor::TlsClientOptions tls;     // wss://: --insecure, --ca-file
  uint32_t connections = 1000;       // connections to hold
  uint32_t rate = 5000;              // connection attempts per second, first ones and reconnects
  uint32_t max_pending = 1000;       // connects and handshakes in progress at once
  double duration_s = 30;            // hold time after the ramp, then stop
  double ramp_timeout_s = 0;         // the hold starts after this even if not all are open;
                                     // 0 = connections / rate + 30 s
  uint32_t connect_timeout_ms = 10000;  // connect + upgrade must finish within this, else retry
  uint32_t backoff_min_ms = 100;     // ceiling of the first reconnect delay (full jitter); doubles
                                     // per failed or short-lived connection in a row
  uint32_t backoff_max_ms = 2000;
  bool reconnect = true;             // false: a lost connection stays lost
  std::string source_base = "127.0.0.2";  // first source address (loopback targets only)
  uint32_t sources = 200;            // consecutive source addresses used from source_base; 0 = none
  double report_interval_s = 1;      // on_report period
  bool quiet = false;                // main(): no per-interval lines, only the summary
};

// parse_idle_options() result meaning "run": anything else is an exit code.
inline constexpr int kIdleOptionsOk = -1;

// Parses argv into `out`. Returns kIdleOptionsOk to go on, otherwise the exit code to leave
// with (0 after --help, 2 on a bad option, with a one-line message on stderr).
int parse_idle_options(int argc, char** argv, IdleOptions& out);

// Prints the usage text to stdout.
void print_idle_usage();

// A snapshot of the holder's counters. All but open/pending/peak_open only grow.
struct IdleCounters {
  uint64_t open = 0;         // upgraded connections held now
  uint64_t pending = 0;      // connects and handshakes in progress now
  uint64_t peak_open = 0;    // the most held at once
  uint64_t attempts = 0;     // connect() calls
  uint64_t failed = 0;       // attempts that did not reach an upgraded connection
  uint64_t lost = 0;         // upgraded connections that closed or broke while held
  uint64_t reconnected = 0;  // upgraded connections that replaced a lost one
  uint64_t pings = 0;        // server pings answered with a pong
};

// One periodic report (and the final one).
struct IdleReport {
  uint64_t elapsed_ms = 0;    // since run() began
  bool holding = false;       // the ramp is over (all open, or the ramp timeout passed)
  uint64_t ramp_ms = 0;       // how long the ramp took to reach all connections; 0 until then
  IdleCounters counters;
};

// "t=12s open=.. pending=.. failed=.. lost=.. reconnected=.. pings=.." (one status line).
std::string format_idle_report(const IdleReport& report);
// "summary target=N open=.. peak_open=.. failed=.. lost=.. reconnected=.. pings=.. ramp_ms=..
// elapsed_ms=.. complete=0|1": the machine-readable last line of parley-idle.
std::string format_idle_summary(const IdleOptions& options, const IdleReport& report);
// parley-idle's exit status for a final report: 0 when nothing was lost and all connections
// were open at the end, else 1.
int idle_exit_code(const IdleOptions& options, const IdleReport& report);

class IdleHolder {
 public:
  explicit IdleHolder(IdleOptions options);
  // Closes every connection (with a TCP reset, so no TIME_WAIT is left behind).
  ~IdleHolder();
  IdleHolder(const IdleHolder&) = delete;
  IdleHolder& operator=(const IdleHolder&) = delete;

  // Resolves the target and source addresses and creates the epoll instance (and, for wss://,
  // the TLS context); 0, or -errno (-EINVAL for a non-numeric host, a bad source base or an
  // unreadable CA file, -EMFILE when `connections` does not fit under the file-descriptor
  // limit). `error` gets one line for the user.
  int start(std::string& error);

  // Ramps, holds for duration_s, and returns the final report. Calls `on_report` (may be empty)
  // every report_interval_s on this thread. Returns early after stop().
  IdleReport run(const std::function<void(const IdleReport&)>& on_report);

  // Makes run() return within ~50 ms. Safe from any thread and from a signal handler.
  void stop() { stop_requested_.store(true, std::memory_order_relaxed); }

  // The current counters; safe from any thread while run() runs.
  IdleCounters counters() const;
  // wss://: why the first failed TLS handshake failed ("certificate verify failed: ..."), empty
  // when none did. Read it after run() returned.
  const std::string& first_tls_error() const { return first_tls_error_; }

 private:
  enum class Phase : uint8_t { kIdle, kConnecting, kHandshake, kOpen };
  struct Slot;
  struct Retry {
    uint64_t due_ms;
    uint32_t slot;
    bool operator>(const Retry& other) const { return due_ms > other.due_ms; }
  };
  struct Deadline {
    uint64_t at_ms;
    uint32_t slot;
    uint32_t generation;
  };
  // Counters written only by the run() thread, read by anyone.
  struct Shared {
    std::atomic<uint64_t> open{0}, pending{0}, peak_open{0}, attempts{0}, failed{0}, lost{0},
        reconnected{0}, pings{0};
  };

  void try_connect(uint32_t index, uint64_t now);
  void on_event(uint64_t data, uint32_t events, uint64_t now);
  bool on_readable(Slot& slot, bool until_eof);
  bool on_frames(Slot& slot);
  void finish_attempt(Slot& slot, bool success);
  // wss://: advances the TLS handshake and then sends the upgrade request; true once sent,
  // false while waiting (`failed` set when the connection must be dropped).
  bool secure_request(Slot& slot, bool& failed);
  // read()/write() on the slot's socket, through its TLS session for wss:// (same results and
  // errno, so the plain path stays one syscall).
  ssize_t receive(Slot& slot, void* buffer, size_t size);
  ssize_t transmit(Slot& slot, const void* data, size_t size);
  void drop(uint32_t index, uint64_t now);
  void expire_deadlines(uint64_t now);
  IdleReport report(uint64_t now) const;
  static void bump(std::atomic<uint64_t>& counter, int64_t by = 1);

  IdleOptions options_;
  reactor::SocketAddress server_;
  uint32_t source_base_ = 0;  // host order; 0 = no source binding
  bool bind_sources_ = false;
  int epoll_fd_ = -1;
  std::unique_ptr<reactor::TlsContext> tls_context_;  // wss:// only
  std::string request_;
  std::unique_ptr<Slot[]> slots_;
  uint32_t next_new_ = 0;       // slots never tried yet are [next_new_, connections)
  uint64_t source_counter_ = 0;
  std::priority_queue<Retry, std::vector<Retry>, std::greater<Retry>> retries_;
  std::deque<Deadline> deadlines_;  // connect deadlines, in time order (constant timeout)
  double tokens_ = 1;
  uint64_t start_ms_ = 0;
  uint64_t last_refill_ms_ = 0;
  uint64_t ramp_done_ms_ = 0;
  uint64_t hold_start_ms_ = 0;
  uint64_t rng_ = 0x9e3779b97f4a7c15ull;
  Shared shared_;
  std::atomic<bool> stop_requested_{false};
  std::string first_tls_error_;
};

}  // namespace tools
