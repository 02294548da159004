#pragma once
// The SQLite engine of the room log (room_log.h), the embedded default. The reactor thread
// never touches the disk:
//
//   loop thread                        writer thread (owns the SqliteStore)
//   append/history/since --incoming--> take everything queued; appends in transactions of up
//   (bounded: queue_limit requests       to max_batch (group commit: what queues during one
//    in flight, else Submit::kFull)      commit rides in the next), then the reads
//   RoomLogClient <--done + eventfd--  completions, one eventfd write per empty->non-empty
//
// The bound counts requests from submission until their completion is delivered, so the
// memory held by both queues together is bounded. A failed transaction (disk full, I/O error,
// a lock held past busy_timeout_ms) completes every append in it with kUnavailable and takes no
// seq; the writer keeps going, and the next batch tries again.
//
// Durability (RoomLogConfig::sync_full): an append's completion is delivered only after its
// transaction committed. WAL + synchronous=NORMAL: committed = written to the OS, so it
// survives kill -9 of the process but not power loss / an OS crash; FULL survives those too.
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "chat/flat_map.h"
#include "chat/store/room_log.h"
#include "reactor/event_loop.h"

namespace chat {

class SqliteStore;

class SqliteRoomLog final : public RoomLog, private reactor::EventHandler {
 public:
  // Opens config.path (SqliteStore::open: one-line `error` and null on failure), loads every
  // conversation's last seq, starts the writer and registers its eventfd on `loop` (open, and
  // outliving this object). Call on the loop thread, before serving: it reads the disk.
  static std::unique_ptr<SqliteRoomLog> open(const RoomLogConfig& config, reactor::EventLoop& loop,
                                             std::string& error);
  // On the loop thread, not from a completion: commits what is queued, stops the writer and
  // delivers the remaining completions to the client (set_client(nullptr) first to drop them).
  ~SqliteRoomLog() override;

  void set_client(RoomLogClient* client) override { client_ = client; }
  Submit append(AppendRequest request) override;
  Submit history(std::string_view conversation, uint64_t before_seq, size_t limit, uint64_t cookie) override;
  Submit since(std::string_view conversation, uint64_t since_seq, size_t limit, uint64_t cookie) override;
  uint64_t last_seq(std::string_view conversation) const override;
  RoomLogStats stats() const override;

  // The last write error, empty while writes succeed. Any thread.
  std::string last_error() const;
  // Runs the retention sweep (max_age_ms, dedup window) on the writer now instead of at its
  // next interval; the call returns at once. For tests and an operator's command.
  void sweep_soon();

 private:
  // A request travelling to the writer and back as its completion.
  struct Job {
    enum class Kind : uint8_t { kAppend, kRead } kind = Kind::kAppend;
    AppendResult append;
    ReadResult read;
    uint64_t bound = 0;  // read: before_seq (history) or since_seq (since)
    size_t limit = 0;
  };

  SqliteRoomLog(const RoomLogConfig& config, reactor::EventLoop& loop);
  Submit submit(Job&& job);
  Submit read(ReadKind kind, std::string_view conversation, uint64_t bound, size_t limit, uint64_t cookie);
  // Loop thread: the eventfd fired.
  void on_event(int fd, uint32_t tag, uint32_t events) override;
  // Loop thread: hands every finished job to the client.
  void deliver();
  // Writer thread.
  void writer_main();
  void process(std::vector<Job>& work);
  // Writer thread: moves the finished jobs of `work` at `indexes` to done_, waking the loop.
  void post(std::vector<Job>& work, const std::vector<size_t>& indexes);
  void note_write(bool ok, const std::string& error);

  RoomLogConfig config_;
  reactor::EventLoop& loop_;
  std::unique_ptr<SqliteStore> store_;  // the writer's alone once it runs
  int wake_fd_ = -1;
  std::thread writer_;

  mutable std::mutex mutex_;
  std::condition_variable work_ready_;
  std::vector<Job> incoming_;  // guarded by mutex_
  std::vector<Job> done_;      // guarded by mutex_
  bool stopping_ = false;      // guarded by mutex_
  bool sweep_requested_ = false;  // guarded by mutex_
  std::string last_error_;     // guarded by mutex_

  // Loop thread only.
  RoomLogClient* client_ = nullptr;
  std::vector<Job> delivering_;
  size_t in_flight_ = 0;
  bool refused_ = false;  // a request got kFull since the last on_writable
  FlatMap<std::string, uint64_t> last_seq_;
  uint64_t rejected_full_ = 0;
  uint64_t messages_ = 0;
  uint64_t unavailable_ = 0;
  uint64_t duplicates_ = 0;
  uint64_t reads_ = 0;

  // Written by the writer, read by stats().
  std::atomic<uint64_t> commits_{0};
  std::atomic<uint64_t> batches_{0};
  std::atomic<uint64_t> errors_{0};
  std::atomic<uint64_t> max_batch_{0};
};

}  // namespace chat
