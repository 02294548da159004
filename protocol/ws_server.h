#pragma once
// The WebSocket server on top of reactor/: accepts TCP connections, runs the HTTP/1.1 upgrade
// (RFC 6455 4.2), reads frames with MessageReader, writes frames, and runs the close handshake
// (RFC 6455 7). Applications attach to paths and see whole messages.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "protocol/admission_pacer.h"
#include "protocol/admission_tables.h"
#include "protocol/frame_header.h"
#include "protocol/heartbeat_budget.h"
#include "protocol/http_request.h"
#include "protocol/message_reader.h"
#include "protocol/permessage_deflate.h"
#include "reactor/event_loop.h"
#include "reactor/memory_budget.h"
#include "reactor/shared_buffer.h"
#include "reactor/socket_ops.h"
#include "reactor/timer_wheel.h"
#include "reactor/uring_batch.h"
#include "reactor/write_queue.h"

namespace reactor {
class TlsContext;
class TlsStream;
}  // namespace reactor

namespace protocol {

struct Connection;
struct ConnectionExtra;

// Names one connection: fd in the low 32 bits, generation above. Stays safe to use after the
// connection is gone (operations on a stale id do nothing).
using ConnectionId = uint64_t;

// What became of a send: written to the kernel (or the loop's cork, or with io_uring the
// iteration's batch), queued for later, or dropped because the connection is closing or gone.
enum class SendResult : uint8_t { kSent, kBuffered, kDropped };

// An application's answer to an upgrade request.
struct UpgradeVerdict {
  int status = 101;              // anything else rejects the upgrade with that HTTP status
  std::string_view reason;       // body of the rejection
  std::string_view subprotocol;  // Sec-WebSocket-Protocol to select (one the client offered)
  uint32_t user_data = 0;        // kept on the connection, see WsServer::user_data()
};

// What runs behind a WebSocket path. Callbacks run on the loop thread; they may call any
// WsServer method, including close() on the connection being served.
class WsApplication {
 public:
  virtual ~WsApplication() = default;
  // Decides on a valid upgrade request (Origin, credentials, subprotocol). Default: accept.
  virtual UpgradeVerdict on_upgrade(ConnectionId, const HttpRequest&) { return {}; }
  // The 101 response is on its way; the connection can send.
  virtual void on_open(ConnectionId) {}
  // A complete data message. `payload` may point into the loop's receive buffer: valid only
  // during the call; the application may modify it in place.
  virtual void on_message(ConnectionId id, Opcode opcode, std::span<uint8_t> payload) = 0;
  // The connection stopped being open: a close was sent or received, or TCP went away.
  // Called once per on_open, at the end of that loop iteration. `code` is the close code
  // exchanged, or 1006 when there was none. Sends to the id are dropped from then on.
  virtual void on_close(ConnectionId, uint16_t) {}
};

// A plain HTTP response for a non-WebSocket path.
struct HttpReply {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::string extra_headers;  // verbatim lines, each ending in \r\n
};
using HttpHandler = std::function<void(const HttpRequest&, HttpReply&)>;

// What to do with a connection whose write queue passed WsServerConfig::max_buffered.
enum class SlowConsumerPolicy : uint8_t {
  kClose,  // close it with 1008 (policy violation) after what is already queued
  kDrop,   // drop further messages for it until its queue drains below the cap
};

struct WsServerConfig {
  uint64_t max_message_size = 16u << 20;  // RFC 6455 7.4.1: larger messages get 1009
  uint32_t handshake_timeout_ms = 10000;  // request head must arrive within this (slowloris)
  uint32_t close_timeout_ms = 5000;       // close handshake and TCP shutdown must finish within
  uint32_t ping_interval_ms = 30000;      // RFC 6455 5.5.2 heartbeat; 0 disables
  uint32_t pong_timeout_ms = 10000;       // no frame at all this long after a ping: dead peer
  uint32_t idle_timeout_ms = 0;           // no data message for this long: close 1000; 0 = never
  uint32_t max_pings_per_second = 0;      // heartbeat budget: past it the ping period stretches
                                          // (HeartbeatBudget); 0 = unlimited
  size_t max_buffered = 1u << 20;         // write-queue cap per connection (a message that
                                          // starts below the cap is queued whole)
  SlowConsumerPolicy slow_consumer = SlowConsumerPolicy::kClose;
  uint32_t max_connections = 0;           // beyond: the oldest incomplete handshake is closed
                                          // to make room, else HTTP 503; 0 = fd limit
  // Per peer address (IPv6: per /64), per process: beyond, HTTP 503 before the upgrade;
  // 0 = unlimited. On by default; 1000 leaves room for a NAT'd office or campus.
  uint32_t max_connections_per_ip = 1000;
  // Incomplete handshakes (TCP accepted, no 101 or response yet) per peer address: beyond, the
  // address's oldest one is closed (slowloris, RFC 9112 9.3 lets a server close idle
  // connections); 0 = unlimited. Clients send their request at once, so few are ever open.
  uint32_t max_handshakes_per_ip = 32;
  // Incomplete handshakes in all: beyond, the oldest one is closed; 0 = a quarter of the fd
  // limit. Running out of fds closes the oldest too, so real clients still get in.
  uint32_t max_handshakes = 0;
  uint32_t timer_tick_ms = 10;
  bool deflate = true;                    // accept permessage-deflate offers (RFC 7692)
  size_t deflate_threshold = kDefaultDeflateThreshold;  // smaller messages go uncompressed
  // Budget for the heap bytes all write queues pin together (each shared frame once), plus the
  // input buffered for incomplete request heads and messages; 0 = off. From 7/8 of it new
  // WebSocket upgrades get HTTP 503 (plain HTTP routes still answer); at it the largest queues
  // are closed (1008) until 3/4 is left, and sends that would queue more are dropped (issue 13).
  size_t max_memory = 0;
  // Under overload (timers firing more than 1 s late, pong deadlines deferred),
  // accept new connections at an adaptive pace and leave the rest in the kernel's accept queue
  // (AdmissionPacer). false: always accept up to the per-iteration budget.
  bool pace_admission = true;
  // Plain (non-TLS) output of a loop iteration leaves in one io_uring submission instead of one
  // sendmsg per connection (reactor/uring_batch.h, issue 18). Falls back to sendmsg when the
  // ring cannot be set up (see WsServer::io_uring_error()).
  bool io_uring = false;
};

// Counters for /metrics.
struct WsServerStats {
  uint64_t connections = 0;  // open TCP connections, any state
  uint64_t accepted = 0;
  uint64_t accept_rejected = 0;  // dropped at accept for lack of file descriptors
  uint64_t upgrades = 0;
  uint64_t http_responses = 0;
  uint64_t messages_in = 0;
  uint64_t messages_out = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  uint64_t protocol_errors = 0;
  uint64_t timeouts = 0;           // handshake and close-handshake timeouts
  uint64_t pings_sent = 0;
  uint64_t pongs_received = 0;
  uint64_t dead_peers = 0;         // closed for missing the pong deadline
  uint64_t pong_deadlines_deferred = 0;  // deadlines given more time: the server was behind
  uint64_t pings_deferred = 0;     // pings scheduled later than ping_interval_ms (the budget)
  uint64_t ping_interval_effective_ms = 0;  // the ping period in use; 0 before the first ping
  uint64_t idle_closed = 0;
  uint64_t slow_consumers_closed = 0;
  uint64_t messages_dropped = 0;   // by the kDrop policy
  uint64_t busy_rejected = 0;      // 503 for max_connections / max_connections_per_ip
  uint64_t memory_accounted = 0;   // gauge: heap bytes pinned by write queues (max_memory's count)
  uint64_t memory_budget = 0;      // gauge: max_memory, 0 = off
  uint64_t memory_shed_closed = 0; // connections closed (1008) to get back under max_memory
  uint64_t memory_dropped = 0;     // messages not queued while over max_memory
  uint64_t memory_rejected = 0;    // 503 from 7/8 of max_memory
  uint64_t heap_trims = 0;         // free heap given back to the kernel after a burst of frees
  uint64_t heap_trim_us = 0;       // microseconds those took in all
  uint64_t handshakes = 0;         // incomplete handshakes now (gauge)
  uint64_t handshakes_evicted = 0;  // oldest incomplete handshakes closed to make room
                                    // (fds, max_connections, max_handshakes[_per_ip])
  uint64_t bad_requests = 0;       // request heads refused with 400 (garbage, bad syntax)
  uint64_t admission_paced = 0;    // times accept pacing started (the server fell behind)
  uint64_t accept_paced = 0;       // accept rounds stopped at the pace, leaving connections queued
  uint64_t accept_pace = 0;        // gauge: accepts per second allowed now, 0 = not pacing
  uint64_t extra_memory = 0;       // gauge: bytes of partial request heads and messages (in
                                   // memory_accounted too)
};

class WsServer : public reactor::EventHandler {
 public:
  WsServer(reactor::EventLoop& loop, WsServerConfig config = {});
  ~WsServer() override;
  WsServer(const WsServer&) = delete;
  WsServer& operator=(const WsServer&) = delete;

  // Binds and listens; 0 or -errno. May be called once.
  int listen(const reactor::SocketAddress& address, const reactor::ListenOptions& options = {});
  // The bound address (with the real port when 0 was asked for).
  const reactor::SocketAddress& address() const { return bound_; }
  // Serves TLS (wss://, https) with `context` (not owned, must outlive the server) on every
  // connection accepted from now on; call before listen(). 0, or -ENOMEM. TLS records are sent
  // with MSG_NOSIGNAL (reactor/socket_bio.h), so a vanished peer never raises SIGPIPE.
  int use_tls(const reactor::TlsContext* context);

  // Serves WebSocket upgrades on `path` with `app` (not owned, must outlive the server).
  // `max_message_size` overrides the server-wide limit for this path (0: the server's).
  // False when kMaxRoutes routes exist already.
  bool add_websocket_route(std::string path, WsApplication* app, uint64_t max_message_size = 0);
  // Serves GET (and HEAD) on `path` with `handler`. False when kMaxRoutes routes exist already.
  bool add_http_route(std::string path, HttpHandler handler);
  static constexpr size_t kMaxRoutes = 255;  // a connection stores its route in one byte

  // Encodes and sends one unfragmented message. kDropped if the connection is not open.
  SendResult send(ConnectionId id, Opcode opcode, std::span<const uint8_t> payload);
  SendResult send_text(ConnectionId id, std::string_view text);
  // Sends a frame already encoded (header + payload) in a shared buffer, e.g. one broadcast
  // encoded once. The buffer is referenced, not copied, and written at the end of the loop
  // iteration, so several frames to one connection leave in one writev (kBuffered).
  SendResult send_encoded(ConnectionId id, reactor::SharedBuffer* frame);
  // Starts the close handshake with `code` and `reason` (RFC 6455 7.1.2).
  void close(ConnectionId id, uint16_t code, std::string_view reason = {});
  // Starts the close handshake on every open connection.
  void close_all(uint16_t code, std::string_view reason = {});
  // Graceful shutdown: stops accepting, sends close 1001 to every connection after what is
  // already queued, and calls `on_drained` once all are gone or `timeout_ms` has passed.
  void drain(uint32_t timeout_ms, std::function<void()> on_drained);

  // True while `id` names an upgraded connection that has not started closing.
  bool is_open(ConnectionId id) const;
  // The value the application gave in UpgradeVerdict::user_data, 0 for a stale id.
  uint32_t user_data(ConnectionId id) const;
  // Replaces that value; no-op for a stale id.
  void set_user_data(ConnectionId id, uint32_t value);
  // Bytes waiting in `id`'s write queue.
  size_t buffered_bytes(ConnectionId id) const;

  // Called when the heartbeat budget starts stretching the ping period (`stretching`) or stops,
  // with the period now in use and the connection count that decided it (for a log line).
  using HeartbeatBudgetListener = std::function<void(bool stretching, uint32_t period_ms, uint64_t connections)>;
  void on_heartbeat_budget(HeartbeatBudgetListener listener) { budget_listener_ = std::move(listener); }

  // Called when admission pacing starts (`pacing`, at `rate` accepts per second) or stops,
  // with the connection count at that moment (for a log line).
  using AdmissionPacingListener = std::function<void(bool pacing, uint32_t rate, uint64_t connections)>;
  void on_admission_pacing(AdmissionPacingListener listener) { pacing_listener_ = std::move(listener); }

  // Called when the server refuses a request with an HTTP error (400, 401, 403, 408, 409, 429,
  // 431, 503: anything >= 400 but 404/405) or closes a connection on its own initiative: a close
  // frame it started (`code` 1008 slow consumer or rate limit, 1009, 1011...) or a dead peer
  // (1006, missed pong). `reason` is the body or close reason sent. For log lines (issue 16);
  // runs on the loop thread, before the connection's fd is closed.
  using RefusalListener = std::function<void(ConnectionId id, int code, std::string_view reason)>;
  void on_refusal(RefusalListener listener) { refusal_listener_ = std::move(listener); }

  // Changes the connection caps of a running server (SIGHUP reload) for connections and
  // handshakes from now on. Per-address counts are kept only while a per-address cap is on, so
  // the caller must not switch both per-address caps between 0 and non-zero (restart instead).
  void set_admission_limits(uint32_t max_connections, uint32_t max_connections_per_ip, uint32_t max_handshakes_per_ip,
                            uint32_t max_handshakes) {
    config_.max_connections = max_connections;
    config_.max_connections_per_ip = max_connections_per_ip;
    config_.max_handshakes_per_ip = max_handshakes_per_ip;
    config_.max_handshakes = max_handshakes;
  }

  // True while output is batched through io_uring (config io_uring and the ring is up).
  bool io_uring_active() const { return uring_.is_open(); }
  // Why io_uring was asked for but is not used: the ring's setup error (-errno), else 0.
  int io_uring_error() const { return uring_error_; }
  // The io_uring batches: submissions (one io_uring_enter each) and sends completed.
  const reactor::UringBatch& uring_batch() const { return uring_; }

  const WsServerStats& stats() const { return stats_; }
  const WsServerConfig& config() const { return config_; }
  reactor::EventLoop& loop() { return loop_; }

  void on_event(int fd, uint32_t tag, uint32_t events) override;

 private:
  class Reader;  // MessageSink feeding the application
  friend class Reader;
  struct Route {
    std::string path;
    WsApplication* app = nullptr;
    HttpHandler handler;
    uint64_t max_message_size = 0;
  };

  Connection* find(ConnectionId id) const;
  ConnectionId id_of(const Connection& c) const;
  int fd_of(const Connection& c) const;

  void accept_ready();
  void on_readable(Connection& c, uint32_t events);
  void on_writable(Connection& c);
  // Spare room of the message being assembled to read the next bytes into, or empty for the
  // loop's receive buffer (message_assembly.h).
  std::span<uint8_t> direct_read_window(Connection& c);
  void process_input(Connection& c, uint8_t* data, size_t length);
  void process_request_head(Connection& c, uint8_t* data, size_t length);
  void process_frames(Connection& c, uint8_t* data, size_t length);
  void upgrade(Connection& c, const HttpRequest& request, const Route& route);
  void respond_http(Connection& c, int status, std::string_view content_type, std::string_view body,
                    std::string_view extra_headers = {});
  void serve_http(Connection& c, const HttpRequest& request, const Route* route);

  SendResult send_frame(Connection& c, Opcode opcode, const uint8_t* payload, size_t length, bool rsv1 = false);
  SendResult write_bytes(Connection& c, const uint8_t* a, size_t a_length, const uint8_t* b, size_t b_length);
  void queue_copy(Connection& c, const uint8_t* a, size_t a_length, const uint8_t* b, size_t b_length);
  void uncork();
  void send_close(Connection& c, uint16_t code, std::string_view reason);
  void fail(Connection& c, ProtocolError error);
  void maybe_shutdown(Connection& c);
  void destroy(Connection& c, uint16_t code);
  void free_closed();
  void flush_pending();
  // After a write of `c`'s queue: counts it, closes on error, frees the emptied queue (then a
  // pending shutdown may go), and resumes reading a peer paused for not reading (kReadPaused).
  void finish_flush(Connection& c, reactor::IoResult r);
  // Output through io_uring (ws_server_output.cpp): whether `c`'s writes are batched, putting
  // `c` on the end-of-iteration flush list, and flushing that list in batches.
  bool batches_output(const Connection& c) const;
  void schedule_flush(Connection& c);
  // Queues a write of a batched connection for the end of the iteration (flushing at once past
  // kBatchFlushBytes waiting).
  void defer_output(Connection& c, const uint8_t* a, size_t a_length, const uint8_t* b, size_t b_length);
  void flush_batched(std::vector<Connection*>& connections);
  static void on_send_complete(void* context, uint64_t id, reactor::IoResult result);
  void queue_close_notice(Connection& c);
  void deliver_close_notices();

  ConnectionExtra* extra_for(Connection& c);
  reactor::WriteQueue* acquire_queue();
  void release_queue(reactor::WriteQueue* queue);
  void release_extra_if_idle(Connection& c);

  static void on_timer(void* context, reactor::TimerNode* node);
  void on_timeout(Connection& c);
  void start_heartbeat(Connection& c);
  void on_heartbeat(Connection& c, bool pong_deadline);
  // Heartbeats (ws_server_heartbeat.cpp): the ping period the budget allows now, and whether
  // a silent peer's answer may be waiting unread because the server is behind on reading.
  uint32_t ping_period();
  bool behind_on_reading(const Connection& c) const;
  bool over_buffer_cap(Connection& c);
  void finish_drain();
  // Admission (ws_server_admission.cpp). Records `fd`'s peer; false when the connection is
  // over max_connections(_per_ip) and must be refused (503).
  bool admit(int fd, const reactor::SocketAddress& peer);

  // Memory budget and giving memory back (ws_server_memory.cpp, issue 13).
  bool memory_exhausted() const { return config_.max_memory != 0 && memory_.bytes() >= config_.max_memory; }
  // Near the budget (7/8): new connections would only add to it, so they are refused.
  bool memory_nearly_exhausted() const {
    return config_.max_memory != 0 && memory_.bytes() >= config_.max_memory - config_.max_memory / 8;
  }
  // Over budget: sheds the largest queues; true if `c` must not queue this message.
  bool memory_refuses(Connection& c);
  // Closes the connections with the largest queues until 3/4 of the budget is left.
  void shed_memory();
  // End of iteration: updates the gauges, sheds, and arms a heap trim after a burst of frees.
  void tend_memory();
  // Empties the spare pools and gives the heap's free pages back to the kernel.
  void trim_memory();
  static void on_trim_timer(void* context, reactor::TimerNode* node);
  // Records that `c` has a write queue (shed_memory() scans up to the highest such fd).
  void note_queue(const Connection& c);
  // Undoes admit() and leave_handshake() for an fd being freed.
  void forget_peer(int fd);
  // Links `c` (just accepted, still reading its head) as the newest incomplete handshake, then
  // closes the oldest ones over max_handshakes_per_ip / max_handshakes.
  void enter_handshake(Connection& c);
  // Unlinks `c` from the incomplete handshakes (its 101 or response is going out); no-op if
  // it is not linked.
  void leave_handshake(Connection& c);
  // Closes the oldest incomplete handshake (of PeerTable entry `peer` unless kNoIndex) now,
  // freeing its fd before this returns. False when there is none (other than `keep_fd`).
  bool evict_oldest_handshake(int keep_fd, uint32_t peer = kNoIndex);
  // Frees `c`'s slot and fd now: the body of free_closed(), also used by eviction (which
  // never picks a connection on closed_, flush_ or close_notices_).
  void release_slot(Connection& c);
  uint32_t handshake_cap() const;
  // End of iteration: tells the pacer whether the server fell behind in it (timers fired more
  // than kBehindLatenessMs late, or a pong deadline was deferred).
  void tend_admission();
  // Charges `extra`'s current size to the memory account (it has grown or shrunk since).
  void charge_extra(ConnectionExtra& extra);
  // accept() failed for lack of fds: takes the waiting connection with the reserve fd. Returns
  // its fd when the oldest incomplete handshake gave way for it, -ECANCELED when it was dropped
  // (no handshake to close), or accept's error (-EAGAIN: nothing was waiting).
  int accept_without_fds(reactor::SocketAddress* peer);

  // Transport (ws_server_tls.cpp): the socket itself, or TLS over it when use_tls() was called.
  reactor::IoResult read_input(Connection& c, uint8_t* buffer, size_t capacity);
  reactor::IoResult write_output(Connection& c, const iovec* iov, int count);
  reactor::IoResult flush_output(Connection& c);
  void shutdown_output(Connection& c);
  // True when `c`'s bytes go through a TLS session rather than straight to its socket.
  bool uses_tls(const Connection& c) const;
  bool start_tls(int fd);
  void end_tls(int fd);
  uint32_t tls_events(int fd, uint32_t events);

  reactor::EventLoop& loop_;
  WsServerConfig config_;
  ReaderLimits limits_;
  reactor::TimerWheel wheel_;
  int handler_id_ = -1;
  int listen_fd_ = -1;
  int reserve_fd_ = -1;  // spare fd: freed to accept-and-close when the process runs out (EMFILE)
  reactor::SocketAddress bound_;
  std::vector<Route> routes_;

  Connection* table_ = nullptr;  // indexed by fd; pages are touched only when an fd is used
  size_t capacity_ = 0;
  std::vector<Connection*> closed_;  // destroyed at the end of the iteration, never in a callback
  std::vector<Connection*> flush_;   // connections with deferred output (send_encoded)
  std::vector<Connection*> flushing_;  // flush_ while flush_pending() works through it
  std::vector<Connection*> close_notices_;  // on_close due at the end of the iteration
  std::vector<ConnectionExtra*> spare_extras_;
  std::vector<reactor::WriteQueue*> spare_queues_;

  // The cork: frames for the connection whose input is being processed are gathered here and
  // written with one syscall when its input is done (DESIGN.md hot path step 5).
  std::vector<uint8_t> cork_;
  size_t cork_length_ = 0;
  Connection* corked_ = nullptr;

  // Admission: per fd ONE 32-bit word, so an idle upgraded connection pays 4 bytes for it
  // (bench/idle_memory.sh). The word is kNoIndex when the fd holds nothing; while the fd's
  // handshake is incomplete, kInHandshake | its HandshakeList node (which holds the address's
  // PeerTable index); afterwards, its address's PeerTable index (when per-address counts are
  // kept: only while a per-IP cap is set).
  static constexpr uint32_t kInHandshake = 1u << 31;
  bool per_peer() const { return config_.max_connections_per_ip != 0 || config_.max_handshakes_per_ip != 0; }
  // Maps admission_words_ (capacity_ words, MAP_NORESERVE like table_: pages of fds never
  // used cost nothing, and a zero page reads as kNoIndex); false when that fails.
  bool map_admission_words();
  void unmap_admission_words();
  uint32_t* admission_words_ = nullptr;  // indexed by fd, capacity_ of them; see above
  PeerTable peers_;
  HandshakeList handshakes_;

  bool draining_ = false;
  reactor::TimerNode drain_timer_;
  std::function<void()> on_drained_;
  // Spreads first pings over the interval; mixed with the pid and clock at construction, so
  // workers sharing a port (forked from one parent) draw different sequences. Never 0.
  uint64_t random_state_ = 0x853c49e6748fea9bull;
  HeartbeatBudget heartbeat_budget_{config_.ping_interval_ms, config_.max_pings_per_second};
  HeartbeatBudgetListener budget_listener_;
  RefusalListener refusal_listener_;

  // Admission pacing (ws_server_admission.cpp): the pacer, the timer that resumes accepting
  // when its next accept is allowed, and this iteration's signals of being behind.
  AdmissionPacer pacer_;
  reactor::TimerNode pace_timer_;
  uint64_t iteration_lateness_ms_ = 0;  // the latest a wheel_ timer fired in this iteration
  uint64_t deferred_seen_ = 0;          // stats_.pong_deadlines_deferred at the last tend
  AdmissionPacingListener pacing_listener_;

  // TLS: per-fd streams in a side table (like table_), so plain connections stay as small as
  // they were; both null without TLS.
  const reactor::TlsContext* tls_ = nullptr;
  reactor::TlsStream* tls_streams_ = nullptr;

  // The end of the bytes of a read that drained the socket, while they are processed; null
  // otherwise. Only a close frame ending there lets the connection skip the lingering close.
  const uint8_t* input_end_ = nullptr;
  ReaderState scratch_reader_;  // reader state for connections that had none (the usual case)
  PermessageDeflate deflate_;   // zlib streams and buffers shared by all connections
  WsServerStats stats_;

  // Memory accounting (ws_server_memory.cpp): every write queue, pooled or in use, charges it.
  reactor::MemoryAccount memory_;
  size_t highest_queued_fd_ = 0;    // shed_memory() scans the table up to here
  uint64_t shed_iteration_ = ~uint64_t{0};  // one shedding scan per loop iteration at most
  size_t spare_queue_memory_ = 0;   // memory() of the queues in spare_queues_
  // Heap trimming: armed when queue memory or connections fell well below their peak.
  size_t memory_peak_ = 0;
  uint64_t connections_peak_ = 0;
  uint64_t last_trim_ms_ = 0;
  reactor::TimerNode trim_timer_;
  reactor::TimerWheel memory_wheel_{loop_.now_ms(), &WsServer::on_trim_timer, this, 50};

  // io_uring output (config_.io_uring): the batch of this iteration's sends, and the ring's
  // setup error when it could not be used.
  struct UringSend {
    ConnectionId id;
    size_t requested;  // bytes the send was given: fewer written means the socket is full
  };
  reactor::UringBatch uring_;
  std::vector<UringSend> uring_sends_;  // by the batch's user_data, until complete() returns
  int uring_error_ = 0;
};

}  // namespace protocol
