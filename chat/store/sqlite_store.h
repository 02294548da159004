#pragma once
// The SQLite file behind SqliteRoomLog (sqlite_room_log.h): schema, open checks and the
// statements, used from one thread at a time (the store's writer thread once running; the
// opening thread before that). Synchronous: every call touches the disk.
//
// Schema (PRAGMA user_version = kSchemaVersion):
//   conversations(id, name UNIQUE, last_seq)   a row per room / DM pair, never deleted, so a
//                                              conversation's seq survives retention
//   messages(conversation, seq, ts, sender, text, client_id)  PRIMARY KEY (conversation, seq)
//   dedup(id, user, client_id, conversation, seq, ts)   UNIQUE (user, client_id); id is the
//                                              insertion order, so pruning reads expired rows only
// Kept apart from messages so that history_keep trimming a busy room never forgets a client id
// still inside the dedup window.
#include <sqlite3.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "chat/flat_map.h"
#include "chat/store/room_log.h"

namespace chat {

class SqliteStore {
 public:
  // The schema this build writes; a file with a larger user_version is refused.
  static constexpr int kSchemaVersion = 1;

  // Opens (creating when missing) the store at config.path: WAL, synchronous per sync_full,
  // schema checked or created, write access proven. Null with `error` set to one line
  // ("store FILE: ...") when it is unwritable, corrupt, not a parley store or newer.
  static std::unique_ptr<SqliteStore> open(const RoomLogConfig& config, std::string& error);
  ~SqliteStore();
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  // Every conversation and its last seq.
  std::vector<std::pair<std::string, uint64_t>> conversations() const;

  // Stores `batch` in one transaction (BEGIN IMMEDIATE ... COMMIT), setting each result's
  // status, seq and ts (duplicates found through the dedup table, also within the batch), then
  // applies history_keep to the conversations it touched. On any failure the transaction is
  // rolled back, every result is kUnavailable, and false is returned with `error` set.
  bool append_batch(std::span<AppendResult*> batch, std::string& error);

  // Answers a read into `result` (conversation, kind and cookie set by the caller): history
  // reads the newest `limit` with seq < bound (0: none), since the newest `limit` after bound
  // (limit 0: all). False (result kUnavailable) on a read error.
  bool read(uint64_t bound, size_t limit, ReadResult& result);

  // Applies max_age_ms to every conversation and forgets client ids older than the dedup
  // window, relative to `now_ms`. False with `error` on failure (nothing changed).
  bool sweep(uint64_t now_ms, std::string& error);

 private:
  class Statement;
  explicit SqliteStore(const RoomLogConfig& config);
  bool exec(const char* sql, std::string& error);
  // The id of conversation `name`, creating its row when `create`; 0 when absent (or on error,
  // with `failed` set).
  int64_t conversation_id(std::string_view name, bool create, bool& failed);
  std::string describe(int code) const;

  RoomLogConfig config_;
  sqlite3* db_ = nullptr;
  std::unique_ptr<Statement> find_conversation_;
  std::unique_ptr<Statement> insert_conversation_;
  std::unique_ptr<Statement> get_last_seq_;
  std::unique_ptr<Statement> set_last_seq_;
  std::unique_ptr<Statement> find_dedup_;
  std::unique_ptr<Statement> insert_dedup_;
  std::unique_ptr<Statement> insert_message_;
  std::unique_ptr<Statement> trim_messages_;
  std::unique_ptr<Statement> select_before_;
  std::unique_ptr<Statement> select_after_;
  // Conversation ids by name: rows are never deleted, so an id never goes stale. Entries made
  // in a transaction that rolls back are erased (created_in_batch_).
  FlatMap<std::string, int64_t> ids_;
  std::vector<std::string> created_in_batch_;
};

}  // namespace chat
