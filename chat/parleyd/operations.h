#pragma once
// What one parleyd worker does for its operator (issue 16): the log (chat::Logger on stderr,
// flushed at the end of every loop iteration), a rate-limited warn line per refusal, debug lines
// per connection, SIGHUP reload of the live options, /healthz, /readyz and the process figures
// of /metrics, optionally on a second, metrics-only listener (--metrics-listen).
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "chat/histogram.h"
#include "chat/parleyd/log.h"
#include "chat/parleyd_options.h"
#include "protocol/ws_server.h"
#include "reactor/timer_wheel.h"

namespace chat {

class ChatApp;
class TokenGatedApp;
struct ChatConfig;

// How a worker was started, for reloads and labels.
struct WorkerRuntime {
  std::vector<std::string> args;  // the command line, read again (with env and file) on SIGHUP
  uint32_t index = 0;             // this worker's number, 0 to --workers - 1
  bool labelled = false;          // --workers > 1: every /metrics sample carries worker="index"
  // --metrics-listen with its port resolved by the supervisor (so that every worker binds the
  // same one when port 0 was asked for); empty: the option's own value.
  std::string metrics_address;
};

// The Prometheus text of this process: build info (version, git commit), CPU seconds, resident
// bytes, open and maximum fds, start time, and `log`'s dropped and suppressed lines (may be null).
std::string render_process_metrics(const Logger* log);

// The chat figures of `chat`: users online, room members, messages and DMs accepted, room
// deliveries, error replies (O(rooms) for the member count, once per scrape).
std::string render_chat_metrics(const ChatApp& chat);

// Adds `label` (e.g. worker="2") to every sample line of Prometheus `text`.
std::string label_metrics(std::string_view text, std::string_view label);

// Forwards a WsApplication and writes a debug line per connection open and close (with the peer
// address and close code). One indirect call per message, none of them formats unless debug.
class LoggedApp final : public protocol::WsApplication {
 public:
  // `inner` and `log` must outlive this; `route` names the path in the lines.
  LoggedApp(protocol::WsApplication& inner, Logger& log, std::string route)
      : inner_(inner), log_(log), route_(std::move(route)) {}
  protocol::UpgradeVerdict on_upgrade(protocol::ConnectionId id, const protocol::HttpRequest& request) override {
    return inner_.on_upgrade(id, request);
  }
  void on_open(protocol::ConnectionId id) override;
  void on_message(protocol::ConnectionId id, protocol::Opcode opcode, std::span<uint8_t> payload) override {
    inner_.on_message(id, opcode, payload);
  }
  void on_close(protocol::ConnectionId id, uint16_t code) override;

 private:
  protocol::WsApplication& inner_;
  Logger& log_;
  std::string route_;
};

// The peer address of connection `id` ("203.0.113.9:51234"), "unknown" when getpeername fails.
std::string peer_of(protocol::ConnectionId id);

class WorkerOperations {
 public:
  // Opens the log on stderr at options.log_level / log_format. `loop` must outlive this.
  WorkerOperations(const ParleydOptions& options, WorkerRuntime runtime, reactor::EventLoop& loop);
  ~WorkerOperations();

  Logger& log() { return *log_; }
  const ParleydOptions& options() const { return options_; }
  const WorkerRuntime& runtime() const { return runtime_; }

  // Logs `server`'s refusals (warn_limited, key = the status or close code: at most
  // LoggerOptions::warn_lines_per_key_per_second lines per code and second, then one summary),
  // and flushes the log and ticks its rate limiter at the end of every loop iteration.
  void watch(protocol::WsServer& server);
  // The server and app a SIGHUP reload changes; `server` is also the one whose drain /readyz
  // reports. Both must outlive this.
  void manage(protocol::WsServer& server, ChatApp& chat) {
    server_ = &server;
    chat_ = &chat;
  }
  // /echo's token gate, whose secret a reload rotates along with /chat's. Must outlive this.
  void manage_echo_gate(TokenGatedApp& gate) { echo_gate_ = &gate; }
  // /readyz: 503 while draining or while `ready` (if set) says a required store is down.
  void set_ready_check(std::function<bool(std::string& why)> ready) { ready_ = std::move(ready); }
  void set_draining() { draining_ = true; }

  // Adds /healthz, /readyz and (when `metrics` is set) /metrics to `server`.
  void add_routes(protocol::WsServer& server, std::function<std::string()> metrics);
  // With --metrics-listen: a second server on the loop serving only /healthz, /readyz and
  // /metrics on that address. 0, or -errno after one error line.
  int listen_metrics(std::function<std::string()> metrics);

  // The loop iteration time histogram in Prometheus text (parley_loop_iteration_seconds).
  void render_loop_metrics(std::string& out) const {
    iteration_time_.render(out, "parley_loop_iteration_seconds",
                           "Busy time of one event loop iteration, from epoll_wait's return to the end of its "
                           "work (1 ms resolution: the start is the loop's own millisecond clock read).");
  }

  // SIGHUP: reads the command line, environment and file again, applies the live options that
  // changed (WsServer admission caps, ChatApp limits, the token secret -- read again even when
  // its path is the same --, the Origin policy, the log level) and logs what changed and what
  // needs a restart. A configuration that does not load is logged and the running one kept.
  void reload();

 private:
  ParleydOptions options_;
  WorkerRuntime runtime_;
  reactor::EventLoop& loop_;
  std::unique_ptr<Logger> log_;
  protocol::WsServer* server_ = nullptr;
  ChatApp* chat_ = nullptr;
  TokenGatedApp* echo_gate_ = nullptr;
  std::unique_ptr<protocol::WsServer> metrics_server_;
  std::function<bool(std::string&)> ready_;
  bool draining_ = false;
  // Once a second: the log rate limiter's summaries go out even when nothing else happens.
  static void on_tick(void* context, reactor::TimerNode* node);
  reactor::TimerWheel tick_wheel_;
  Histogram iteration_time_{1000, 2000, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000};
  uint64_t measured_iteration_ = 0;
  reactor::TimerNode tick_timer_;
};

// Fills the access-control fields of `config` from `options` (token secret read from its file,
// Origin policy). False with `error` (one line) when the secret or the policy is bad.
bool chat_access_from_options(const ParleydOptions& options, ChatConfig& config, std::string& error);

// The WebSocket server's settings for one worker of `options` (sizes, timeouts, the heartbeat
// budget split over options.workers, the memory budget's share, caps); parleyd's workers and
// parley::Server both build theirs here, so the two cannot drift.
protocol::WsServerConfig ws_server_config_from_options(const ParleydOptions& options);

}  // namespace chat
