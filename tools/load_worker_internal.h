#pragma once
// parley-load's worker loop, shared by its source files: load_worker.cpp (the epoll loop,
// connections, echo and connect), load_broadcast.cpp (the broadcast scenario, and the join
// barrier chat shares) and load_chat_scenario.cpp (the chat scenario). Not an API: only those
// include it.
#include <csignal>
#include <cstdint>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "reactor/socket_ops.h"
#include "reactor/tls_context.h"
#include "reactor/tls_stream.h"
#include "tools/load_client.h"
#include "tools/load_worker.h"
#include "tools/rate_limiter.h"

namespace tools::load_detail {

inline constexpr uint64_t kMs = 1'000'000;
inline constexpr uint64_t kSecond = 1'000'000'000;
inline constexpr size_t kReadBufferSize = 512 * 1024;  // one per loop (DESIGN.md "The hot path")
inline constexpr int kReadRounds = 4;                   // full reads per event before yielding to others
inline constexpr int kMaxEvents = 512;
inline constexpr uint64_t kHandshakeTimeout = 5 * kSecond;
inline constexpr uint64_t kCloseTimeout = 2 * kSecond;
inline constexpr uint64_t kDrainTime = 2 * kSecond;   // for echoes still in flight after the measurement
inline constexpr uint64_t kTickInterval = 100 * kMs;  // timeout scans
inline constexpr uint64_t kMaxConnecting = 1000;      // handshakes in progress when --ramp is unlimited
inline constexpr uint64_t kRetryDelay = 100 * kMs;    // before reusing a connector whose socket() failed
// Broadcast: how long every subscriber may take to connect and join. Each join is announced to
// every member already in the room, so joining N subscribers costs the server O(N^2) deliveries.
inline constexpr uint64_t kJoinTimeout = 90 * kSecond;
// Broadcast: deliveries still arriving after the last publish (the server's fan-out backlog).
inline constexpr uint64_t kBroadcastDrainTime = 5 * kSecond;
// Broadcast: how often a worker looks at the shared barrier while nothing else wakes it.
inline constexpr uint64_t kBarrierPoll = 5 * kMs;
// Chat: when the expected deliveries are not exact (reconnects), the drain ends once no delivery
// has arrived anywhere for this long.
inline constexpr uint64_t kChatQuietTime = 250 * kMs;
// Chat: planned reconnects start within this share of the talking time, so they are back before
// it ends.
inline constexpr double kReconnectSpan = 0.6;

enum class RunPhase : uint8_t {
  kRunning,   // ramping and sending until the end of the measurement window
  kDraining,  // no new messages or connections; waiting for what is in flight
  kClosing,   // echo: close frames sent, waiting for the server's
  kDone,
};

// Slots are never freed while the worker runs: closing one bumps its generation and sets fd to
// -1, so a slot closed inside its own event handling is safe, and stale events are dropped.
struct Slot {
  LoadClient client;
  ByteBuffer backlog;  // bytes the kernel did not take yet (always written before new ones)
  reactor::TlsStream tls;  // wss:// only; detached (no SSL, no memory) for ws://
  OpenLoopPacer pacer;
  uint64_t deadline_ns = 0;  // handshake or close deadline; 0 = none
  int fd = -1;
  uint32_t generation = 0;  // in every epoll event, so events for an earlier socket are dropped
  bool connecting = false;  // TCP connect not known to have completed (wss: nor the TLS handshake)
  bool handshaking = false; // counted in connecting_
  bool in_ready = false;
  bool in_dirty = false;
  bool reconnecting = false;  // chat: a reconnect is under way (closing, or joining again)
  bool was_joined = false;    // chat: joined once, so a lost connection comes back (and resends)
};

class Worker {
 public:
  Worker(const LoadOptions& options, const WorkerPlan& plan,
         const std::function<void(const LoadCounters&)>& on_progress, const volatile std::sig_atomic_t* stop);

  // Runs the whole scenario; see run_load_worker().
  LoadResult run();

 private:
  bool setup();
  void start_connections();
  void open_slot(uint32_t index);
  // Closes the socket; a chat user that had joined comes back (restart_reconnect(), planned when
  // `planned`: a finished close handshake).
  void close_slot(uint32_t index, bool planned = false);
  void dispatch(uint32_t index, uint32_t events);
  void on_readable(uint32_t index, bool until_again);
  void on_upgraded(uint32_t index);
  void finish_cycle(uint32_t index);
  void send_out(uint32_t index);
  void flush_backlog(uint32_t index);
  void write_failed(uint32_t index, int error);
  // send()/read() on the slot's socket, through its TLS layer for wss:// (same return and
  // errno conventions, so the plain path keeps its single syscall).
  ssize_t write_slot(Slot& slot, const uint8_t* data, size_t size);
  ssize_t read_slot(Slot& slot);
  // wss://: drives the TLS handshake; true once it is done. On failure the error is counted
  // (the certificate check's verdict when that was the cause) and the slot closed.
  bool advance_tls_handshake(uint32_t index);
  void pump(uint32_t index);
  // Open loop: takes the next message `slot`'s schedule has due by now into `intended`; false
  // when none is due, the in-flight cap or the connection's state holds it back, or it falls
  // after the window.
  bool take_due(Slot& slot, uint64_t& intended);
  void schedule_due();
  void flush_dirty();
  void tick();
  void advance_phase();
  uint64_t next_wakeup() const;
  uint64_t outstanding() const {
    const LoadCounters& c = result_.counters;
    return c.sent_total - c.received_total - lost_;
  }
  bool echo() const { return options_.scenario == Scenario::kEcho; }
  bool connect_scenario() const { return options_.scenario == Scenario::kConnect; }
  bool broadcast() const { return options_.scenario == Scenario::kBroadcast; }
  bool chat() const { return options_.scenario == Scenario::kChat; }
  // Broadcast and chat: chat clients behind the shared join barrier.
  bool chat_protocol() const { return broadcast() || chat(); }
  bool open_loop() const { return echo() && plan_.rate != 0; }
  // --server-pid: the server's CPU time at the start of the measurement, then the difference.
  void sample_server_cpu_begin();
  void sample_server_cpu_end();

  // ---- broadcast (load_broadcast.cpp) ----
  // Roles and names for the slots; the room and text size for the clients.
  void setup_broadcast();
  bool is_publisher(uint32_t index) const { return index < plan_.publishers; }
  // Sends hello as this slot's unique name.
  void on_chat_upgraded(uint32_t index);
  // Acts on what a read brought a chat client: a finished join, acks for a publisher.
  void on_chat_feed(uint32_t index, const LoadClient::Feed& feed);
  // A subscriber closed, or failed to open, before it joined: the barrier stops waiting for it.
  void on_subscriber_lost(uint32_t index);
  // The barrier (worker 0 opens it), the publishing window and the drain.
  void advance_broadcast();
  // Worker 0: opens the publishing window at `start_ns` for every worker.
  void open_window(uint64_t start_ns);
  // Every worker, on seeing the window: fixes its joined subscribers and gives up on the rest.
  void enter_window(uint64_t start_ns);
  // Publisher `index` sends what is due (open loop) or refills its pipeline (closed loop).
  void publish(uint32_t index);
  // Every open publisher (chat: user) has had an answer (ack or refusal) to each msg it sent.
  bool publishers_answered() const;
  // Worker 0 posted its count, and this worker's subscribers got all of it (and, in worker 0,
  // every publisher has its answers).
  bool broadcast_drained() const;
  uint64_t next_broadcast_wakeup() const;
  // Writes name of slot `index` ("p3_tag", "s1_42_tag") to `out`; returns its length (< 32).
  size_t chat_name(uint32_t index, char* out) const;

  // ---- chat (load_chat_scenario.cpp) ----
  // Room names and the room plan; every slot a kUser.
  void setup_chat();
  // At the window's opening: the talking schedule and the planned reconnects.
  void start_talking();
  // User `index` sends what is due, skipping what falls in its idle seconds.
  void talk(uint32_t index);
  // A user's joins were all answered: the barrier counts it, or a planned reconnect is complete.
  void on_user_joined(uint32_t index);
  // chat: brings user `index` back after its connection closed: at once after a planned close
  // (`planned`), after kRetryDelay after a loss (the server restarted), so it can resend.
  void restart_reconnect(uint32_t index, bool planned);
  // chat, --reconnect-abrupt: closes the socket with an RST (SO_LINGER 0: no close frame, no FIN).
  void drop_slot(uint32_t index);
  // While talking (advance_broadcast() has seen the window and any stop signal): what is due now
  // (messages, planned reconnects); then the drain.
  void advance_chat();
  uint64_t next_chat_wakeup() const;

  const LoadOptions& options_;
  const WorkerPlan plan_;
  const std::function<void(const LoadCounters&)>& on_progress_;
  const volatile std::sig_atomic_t* stop_;

  EchoPayload payload_;
  FastRng rng_;
  LoadResult result_;
  ClientContext context_;
  reactor::SocketAddress server_;
  bool spread_sources_ = false;
  uint32_t source_base_ = 0;  // host order, 127.0.0.2

  int epoll_fd_ = -1;
  std::unique_ptr<reactor::TlsContext> tls_context_;  // wss:// only
  std::unique_ptr<uint8_t[]> read_buffer_;
  ByteBuffer out_;  // frames built for one connection, written once per event
  std::vector<Slot> slots_;
  std::vector<uint64_t> rings_;
  std::vector<uint32_t> ready_;    // read budget ran out: the kernel will not report them again
  std::vector<uint32_t> dirty_;    // open loop: messages due
  std::vector<uint32_t> restart_;  // connect: connectors to start again
  std::vector<std::pair<uint64_t, uint32_t>> retry_;  // connectors waiting after a local failure

  RunPhase phase_ = RunPhase::kRunning;
  uint64_t now_ = 0;
  uint64_t window_start_ = 0;
  uint64_t window_end_ = 0;
  uint64_t phase_deadline_ = 0;
  uint64_t next_tick_ = 0;
  uint64_t next_progress_ = 0;
  uint64_t attempts_ = 0;  // connection attempts, for spreading source addresses
  uint64_t started_ = 0;   // slots started by the ramp
  uint64_t connecting_ = 0;
  uint64_t active_ = 0;    // slots with a socket
  uint64_t lost_ = 0;      // echoes in flight on connections that went away
  uint32_t ring_size_ = 1;
  OpenLoopPacer ramp_pacer_;
  OpenLoopPacer message_pacer_;  // the worker's whole schedule; message m goes to slot m % n
  uint64_t cursor_ = 0;          // next message_pacer_ index to hand to its slot

  bool server_cpu_started_ = false;
  bool server_cpu_done_ = false;
  uint64_t server_cpu_begin_ns_[kMaxServerPids] = {};  // each --server-pid's CPU time at the start
  uint64_t server_cpu_begin_wall_ = 0;

  // Broadcast state. window_start_/window_end_ stay at UINT64_MAX until the window opens.
  bool window_open_ = false;      // this worker has seen the window
  uint64_t published_final_ = 0;  // every publisher's msg count, once worker 0 stopped publishing
  bool publishing_done_ = false;  // published_final_ is known
  char run_tag_[8] = {};          // in every chat name, so runs against one server never collide

  // Chat state.
  std::vector<std::pair<uint64_t, uint32_t>> reconnect_plan_;  // (when, slot), in time order
  std::vector<std::pair<uint64_t, uint32_t>> chat_retry_;      // chat: (when, slot) lost users come back
  size_t reconnect_cursor_ = 0;   // next planned reconnect to start
  bool chat_answered_ = false;    // this worker's expected deliveries are posted
  uint64_t deliveries_posted_ = 0;  // of this worker's deliveries, added to the shared count
  uint64_t shared_seen_ = 0;      // the shared delivery count when last looked at ...
  uint64_t quiet_since_ = 0;      // ... and since when it has not moved
};

}  // namespace tools::load_detail
