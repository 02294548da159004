#pragma once
// The room log (issue 14, DESIGN.md "Where chat state lives"): the one interface that assigns a
// conversation's seq, keeps its history, answers recovery (`since_seq`) and exactly-once sends
// (client ids). ChatApp talks to this interface only; engines live beside it, each in its own
// files: memory_room_log.h (tests, `--store none`) and sqlite_room_log.h (the embedded default).
//
// Usage sketch (loop thread):
//
//   std::string error;
//   std::unique_ptr<chat::RoomLog> log = chat::open_room_log(config, loop, error);
//   if (!log) { fprintf(stderr, "parleyd: %s\n", error.c_str()); return 1; }
//   log->set_client(&app);                       // app implements RoomLogClient
//   AppendRequest request{"general", "alice", ts, "hi", "c-17", /*cookie=*/connection_id};
//   if (log->append(std::move(request)) == Submit::kFull) { /* refuse or stop reading */ }
//   // ... later, on the loop thread: app.on_appended(result) with result.seq, result.ts_ms.
//
// Threading and order, for every engine:
//  - Every call is made on the loop thread; every completion is delivered on the loop thread.
//  - A completion may be delivered inside the call that submitted it (the memory engine does
//    this) or in a later loop iteration (SQLite): callers must keep nothing borrowed across the
//    call and must handle both.
//  - Completions arrive in the order the engine executed the requests: appends in submission
//    order; a read's result holds exactly the successful appends of its conversation whose
//    completions were delivered before it. So a caller that fans out on completion can join a
//    reader to live traffic at the moment the read completes, with no gap and no duplicate.
//  - Seqs are per conversation, 1, 2, 3, ... with no gap: a failed append takes no seq.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace reactor {
class EventLoop;
}

namespace chat {

// The conversation key of the direct messages between `a` and `b`: "dm:" + the two names
// lowercased (names are unique case-insensitively), sorted, joined by ':'. Room names cannot
// contain ':' (is_valid_room_name), so no room key equals a DM key.
std::string dm_conversation(std::string_view a, std::string_view b);

// `name` lowercased (ASCII), the key under which a sender's client ids are deduplicated.
std::string user_key(std::string_view name);

// How a request ended.
enum class LogStatus : uint8_t {
  kOk,           // append: committed with a new seq; read: answered
  kDuplicate,    // append: (sender, client_id) was committed before; seq and ts are the original ack's
  kUnavailable,  // the store failed (write error, disk full, lock timeout, closed); nothing was stored
};

// The name of `status` for logs and error replies ("ok", "duplicate", "unavailable").
const char* log_status_name(LogStatus status);

// What append() or a read did with the request right away.
enum class Submit : uint8_t {
  kAccepted,  // a completion will be delivered (maybe already was, inside the call)
  kFull,      // the bounded queue is full: nothing queued, no completion will come. The caller
              // refuses the message (`unavailable`) or stops reading the publisher until
              // RoomLogClient::on_writable.
};

// One message to store.
struct AppendRequest {
  std::string conversation;  // a room name or dm_conversation()
  std::string sender;
  uint64_t ts_ms = 0;        // wall-clock ms since the epoch, chosen by the caller
  std::string text;
  std::string client_id;     // empty: no dedup
  uint64_t cookie = 0;       // the caller's own value, handed back (e.g. the sender's connection)
  // A DM's recipient as the sender wrote it; delivering engines (RoomLog::delivers) route the
  // message to the node holding that user. Empty for room messages. (The braces keep brace
  // initialisers that predate the field free of -Wmissing-field-initializers.)
  std::string recipient{};
  // The loop's monotonic ms when the message arrived (0: not from a client, or no loop clock),
  // handed back for the publish-to-delivery histogram; stores carry it, never persist it.
  uint64_t arrival_ms{};
};

// The completion of an append: the request handed back with its outcome.
struct AppendResult {
  LogStatus status = LogStatus::kOk;
  uint64_t seq = 0;    // kOk: the new seq; kDuplicate: the original one; else 0
  uint64_t ts_ms = 0;  // kOk: the request's ts; kDuplicate: the original one
  // kDuplicate: the conversation of the original message (client ids are per sender, not per
  // conversation, so a resend to another room still gets the original ack).
  std::string original_conversation;
  AppendRequest request;
};

// One stored message.
struct StoredMessage {
  uint64_t seq = 0;
  uint64_t ts_ms = 0;
  std::string sender;
  std::string text;
  std::string client_id;
};

// A committed message handed to the client for local fan-out by a delivering engine
// (RoomLog::delivers): every message of a watched conversation, from any node, in seq order.
struct DeliveredMessage {
  std::string_view conversation;  // a room name, or dm_conversation() for a DM
  uint64_t seq = 0;
  uint64_t ts_ms = 0;
  std::string_view sender;
  std::string_view text;
  std::string_view recipient;  // DMs: the recipient as the sender wrote it
  // The request's cookie when this node appended the message (so the caller can skip the
  // sender, who gets an ack instead); 0 for a message from another node.
  uint64_t origin_cookie = 0;
};

enum class ReadKind : uint8_t { kHistory, kSince };

// The completion of history() or since().
struct ReadResult {
  LogStatus status = LogStatus::kOk;  // kOk or kUnavailable
  ReadKind kind = ReadKind::kHistory;
  uint64_t cookie = 0;
  std::string conversation;
  std::vector<StoredMessage> messages;  // ascending seq, contiguous for since()
  // since(): true when `messages` holds every message after since_seq (none missing, none
  // trimmed, none cut by the limit). False also when since_seq is beyond last_seq (a client
  // from the future: the store lost or never had what it saw).
  bool complete = false;
  // since(): the seq of the first message returned, or last_seq + 1 when none is.
  uint64_t first_seq = 0;
  // The newest seq of the conversation when the read ran, 0 for none.
  uint64_t last_seq = 0;
};

// Counters for /metrics; a snapshot, read on the loop thread.
struct RoomLogStats {
  uint64_t commits = 0;       // transactions committed
  uint64_t messages = 0;      // appends committed (kOk)
  uint64_t batches = 0;       // transactions attempted (committed or failed)
  uint64_t errors = 0;        // transactions failed (every append in them got kUnavailable)
  uint64_t unavailable = 0;   // appends completed kUnavailable
  uint64_t duplicates = 0;    // appends answered kDuplicate
  uint64_t rejected_full = 0; // requests refused with Submit::kFull
  uint64_t reads = 0;         // history/since reads answered
  uint64_t max_batch = 0;     // most appends in one transaction
  uint64_t queue_depth = 0;   // requests submitted and not yet completed
  uint64_t queue_limit = 0;   // the bound on queue_depth (0: unbounded, synchronous engine)
};

// Receives completions, on the loop thread.
class RoomLogClient {
 public:
  virtual ~RoomLogClient() = default;
  // An append finished. `result` is valid only during the call.
  virtual void on_appended(AppendResult& result) = 0;
  // A history() or since() read finished. `result` is valid only during the call.
  virtual void on_read(ReadResult& result) = 0;
  // The queue has room again after a request was refused with Submit::kFull (called once per
  // refusal episode, when the depth has fallen to half the limit).
  virtual void on_writable() {}
  // Delivering engines only: a message to fan out to local members (room) or to the local
  // recipient (DM). `message` is valid only during the call.
  virtual void on_delivered(const DeliveredMessage& /*message*/) {}
};

class RoomLog {
 public:
  virtual ~RoomLog() = default;

  // Where completions go; null drops them. Set before the first request.
  virtual void set_client(RoomLogClient* client) = 0;

  // Stores a message: assigns the conversation's next seq, or finds the original when
  // (user_key(sender), client_id) was committed within the dedup window (which survives
  // restarts in the SQLite engine). See Submit for kFull.
  virtual Submit append(AppendRequest request) = 0;

  // Reads the newest `limit` (0: all) messages with seq < before_seq (0: no bound) of
  // `conversation`.
  virtual Submit history(std::string_view conversation, uint64_t before_seq, size_t limit, uint64_t cookie) = 0;

  // Reads the messages after `since_seq`: all of them if at most `limit` (0: no limit), else
  // the newest `limit` (so they join live traffic without a gap), with complete/first_seq.
  virtual Submit since(std::string_view conversation, uint64_t since_seq, size_t limit, uint64_t cookie) = 0;

  // The newest committed seq of `conversation` as the loop knows it (loaded at open, advanced by
  // each delivered completion); 0 for an unknown conversation. The next message gets last + 1.
  virtual uint64_t last_seq(std::string_view conversation) const = 0;

  // Counters; queue_depth counts requests not yet completed.
  virtual RoomLogStats stats() const = 0;
  // Appends the engine's own figures to a /metrics body in Prometheus text (the Redis engine's
  // connection state, reconnects and gap fills); those every engine has are stats().
  virtual void render_engine_metrics(std::string& /*out*/) const {}
  // False while the engine cannot take messages (Redis unreachable: appends answer
  // kUnavailable); /readyz then says not ready.
  virtual bool available() const { return true; }

  // The caller no longer needs `conversation` (memory-only chat frees an emptied room with its
  // history). Engines that keep nothing durable may drop it, seq included; durable ones ignore it.
  virtual void forget(std::string_view /*conversation*/) {}

  // Engines shared by several processes (Redis) return true: they hand every committed message
  // of a watched conversation (appended here or on another node) to RoomLogClient::on_delivered,
  // in seq order, and the caller fans out from there; on_appended then only acks. The others
  // return false and the caller fans out on on_appended, as they need no watch calls.
  virtual bool delivers() const { return false; }
  // Delivering engines: this process has local members in room `conversation` and has shown
  // them everything up to `after_seq`: deliver every later message. A reader's read of a watched
  // conversation holds exactly the messages delivered before it completes.
  virtual void watch(std::string_view /*conversation*/, uint64_t /*after_seq*/) {}
  // Delivering engines: no local member is left in `conversation`.
  virtual void unwatch(std::string_view /*conversation*/) {}
  // Delivering engines: user `name` is connected here; deliver DMs addressed to them.
  virtual void watch_user(std::string_view /*name*/) {}
  // Delivering engines: user `name` is gone from this process.
  virtual void unwatch_user(std::string_view /*name*/) {}
};

// Which engine and how it keeps messages.
struct RoomLogConfig {
  // "none" or empty: the memory engine. Otherwise a SQLite file (created when missing).
  std::string path = "parley.db";
  // Retention, applied by the engine: the newest history_keep messages per conversation
  // (0: no count limit) and/or none older than max_age_ms (0: no age limit). With both 0 the
  // memory engine grows without bound.
  size_t history_keep = 10000;
  uint64_t max_age_ms = 0;
  // A committed client id is recognised for at least this long (also across restarts in SQLite).
  uint64_t dedup_window_ms = 10 * 60 * 1000;
  // SQLite `synchronous` in WAL mode. false = NORMAL: a commit is in the OS page cache when
  // acked; it survives kill -9 of the process, the last commits may be lost on power loss or an
  // OS crash. true = FULL: each commit is fsynced before the ack; it survives power loss too.
  bool sync_full = false;
  // Requests submitted and not yet completed, at most (SQLite). Past it, Submit::kFull.
  size_t queue_limit = 16384;
  // Most appends in one transaction; a longer queue is committed in several.
  size_t max_batch = 4096;
  // How long the writer waits for a lock held by another connection before failing a batch.
  uint32_t busy_timeout_ms = 5000;
  // How often the writer applies max_age_ms and prunes expired client ids.
  uint64_t sweep_interval_ms = 60 * 1000;
  // Runs PRAGMA quick_check at open (reads the whole file: a corrupt page is an open() error
  // rather than a failure at run time).
  bool verify_on_open = true;
  // Wall-clock ms for retention and the dedup window; null means CLOCK_REALTIME. Called from the
  // store's thread: must be thread-safe.
  uint64_t (*wall_clock_ms)() = nullptr;
};

// Opens the engine `config.path` names, its completions delivered on `loop` (which must outlive
// it and be open). Null, with `error` set to one line ("store parley.db: ..."), when the file is
// unwritable, corrupt, not a parley store or from a newer version.
std::unique_ptr<RoomLog> open_room_log(const RoomLogConfig& config, reactor::EventLoop& loop, std::string& error);

// CLOCK_REALTIME in ms, the default wall clock.
uint64_t room_log_realtime_ms();

// For engines: sets complete and first_seq of a since() result from its messages (the newest
// ones after `since_seq`, ascending) and last_seq, so every engine draws the seams alike.
void finish_since(ReadResult& result, uint64_t since_seq);

}  // namespace chat
