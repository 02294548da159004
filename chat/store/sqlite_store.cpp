#include "chat/store/sqlite_store.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <initializer_list>

namespace chat {

namespace {

constexpr const char* kCreateSchema = R"sql(
CREATE TABLE conversations (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  last_seq INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE messages (
  conversation INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  ts INTEGER NOT NULL,
  sender TEXT NOT NULL,
  text TEXT NOT NULL,
  client_id TEXT,
  PRIMARY KEY (conversation, seq)
) WITHOUT ROWID;
CREATE TABLE dedup (
  id INTEGER PRIMARY KEY,
  user TEXT NOT NULL,
  client_id TEXT NOT NULL,
  conversation INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  ts INTEGER NOT NULL,
  UNIQUE (user, client_id)
);
)sql";

int64_t to_sql(uint64_t value) { return value > INT64_MAX ? INT64_MAX : static_cast<int64_t>(value); }

}  // namespace

// A prepared statement, reset (and its bindings cleared) by Use when a use ends.
class SqliteStore::Statement {
 public:
  Statement(sqlite3* db, const char* sql, int& rc) {
    rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &statement_, nullptr);
  }
  ~Statement() { sqlite3_finalize(statement_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // One execution: binds, steps, and resets at scope exit. Bound text must outlive it
  // (SQLITE_STATIC: no copy).
  class Use {
   public:
    explicit Use(Statement& statement) : statement_(statement.statement_) {}
    ~Use() {
      sqlite3_reset(statement_);
      sqlite3_clear_bindings(statement_);
    }
    Use(const Use&) = delete;
    Use& operator=(const Use&) = delete;
    Use& bind(int index, int64_t value) {
      sqlite3_bind_int64(statement_, index, value);
      return *this;
    }
    Use& bind(int index, std::string_view text) {
      sqlite3_bind_text(statement_, index, text.data(), static_cast<int>(text.size()), SQLITE_STATIC);
      return *this;
    }
    Use& bind_null(int index) {
      sqlite3_bind_null(statement_, index);
      return *this;
    }
    // SQLITE_ROW, SQLITE_DONE or an error code.
    int step() { return sqlite3_step(statement_); }
    int64_t integer(int column) const { return sqlite3_column_int64(statement_, column); }
    std::string_view text(int column) const {
      const unsigned char* data = sqlite3_column_text(statement_, column);
      return data == nullptr ? std::string_view()
                             : std::string_view(reinterpret_cast<const char*>(data),
                                                static_cast<size_t>(sqlite3_column_bytes(statement_, column)));
    }

   private:
    sqlite3_stmt* statement_;
  };

 private:
  sqlite3_stmt* statement_ = nullptr;
};

SqliteStore::SqliteStore(const RoomLogConfig& config) : config_(config) {}

SqliteStore::~SqliteStore() {
  // Statements first: sqlite3_close refuses a connection with unfinalized statements. Closing
  // the last connection checkpoints the WAL into the main file and removes it.
  find_conversation_.reset();
  insert_conversation_.reset();
  get_last_seq_.reset();
  set_last_seq_.reset();
  find_dedup_.reset();
  insert_dedup_.reset();
  insert_message_.reset();
  trim_messages_.reset();
  select_before_.reset();
  select_after_.reset();
  if (db_ != nullptr) sqlite3_close(db_);
}

std::string SqliteStore::describe(int code) const {
  std::string text = db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(code);
  int system = db_ != nullptr ? sqlite3_system_errno(db_) : 0;
  if (system != 0) text += std::string(" (") + std::strerror(system) + ")";
  return text;
}

bool SqliteStore::exec(const char* sql, std::string& error) {
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
  if (rc == SQLITE_OK) return true;
  error = describe(rc);
  return false;
}

std::unique_ptr<SqliteStore> SqliteStore::open(const RoomLogConfig& config, std::string& error) {
  std::unique_ptr<SqliteStore> store(new SqliteStore(config));
  auto fail = [&](const std::string& why) {
    error = "store " + config.path + ": " + why;
    std::replace(error.begin(), error.end(), '\n', ' ');  // quick_check reports span lines
    return nullptr;
  };
  // NOMUTEX: one thread uses the connection at a time (see the class comment).
  int rc = sqlite3_open_v2(config.path.c_str(), &store->db_,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) return fail("cannot open: " + store->describe(rc));
  sqlite3* db = store->db_;
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, static_cast<int>(config.busy_timeout_ms));
  // SQLite silently falls back to read-only when the file cannot be written (e.g. EROFS).
  if (sqlite3_db_readonly(db, "main") == 1) return fail("cannot write it (read-only file or file system)");

  // The first statement reads the header: a file that is not a database fails here.
  int version = 0;
  {
    sqlite3_stmt* statement = nullptr;
    rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &statement, nullptr);
    if (rc == SQLITE_OK) rc = sqlite3_step(statement);
    if (rc == SQLITE_ROW) version = sqlite3_column_int(statement, 0);
    std::string why = rc == SQLITE_ROW ? std::string() : store->describe(rc);
    sqlite3_finalize(statement);
    if (rc != SQLITE_ROW) {
      int primary = rc & 0xff;
      if (primary == SQLITE_NOTADB || primary == SQLITE_CORRUPT) {
        return fail("not a SQLite database or corrupt (" + why + ")");
      }
      return fail("cannot read: " + why);
    }
  }
  if (version > kSchemaVersion) {
    return fail("schema version " + std::to_string(version) + " is newer than this parley's (" +
                std::to_string(kSchemaVersion) + "); run a newer parleyd or use another file");
  }

  // WAL: readers never block the writer, and a commit is one append to the log (plus an fsync
  // with synchronous=FULL). Needs the -wal and -shm files next to it, so an unwritable
  // directory fails here.
  {
    sqlite3_stmt* statement = nullptr;
    rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &statement, nullptr);
    if (rc == SQLITE_OK) rc = sqlite3_step(statement);
    std::string mode = rc == SQLITE_ROW ? reinterpret_cast<const char*>(sqlite3_column_text(statement, 0)) : "";
    std::string why = rc == SQLITE_ROW ? std::string() : store->describe(rc);
    sqlite3_finalize(statement);
    if (rc != SQLITE_ROW) return fail("cannot switch to WAL mode: " + why);
    if (mode != "wal") return fail("cannot switch to WAL mode (journal_mode is " + mode + ")");
  }
  // WAL + NORMAL: a commit is durable against a crash of the process (it is in the OS's page
  // cache), not against power loss; FULL fsyncs the WAL at every commit.
  if (!store->exec(config.sync_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL", error)) {
    return fail("cannot set synchronous: " + error);
  }
  // A burst can grow the WAL far past the auto-checkpoint size (1000 pages); once checkpointed,
  // truncate it back to this rather than keeping the high-water mark on disk.
  if (!store->exec("PRAGMA journal_size_limit=67108864", error)) return fail("cannot set journal_size_limit: " + error);

  if (version == 0) {
    sqlite3_stmt* statement = nullptr;
    int tables = 0;
    rc = sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master", -1, &statement, nullptr);
    if (rc == SQLITE_OK) rc = sqlite3_step(statement);
    if (rc == SQLITE_ROW) tables = sqlite3_column_int(statement, 0);
    sqlite3_finalize(statement);
    if (rc != SQLITE_ROW) return fail("cannot read: " + store->describe(rc));
    if (tables != 0) return fail("not a parley store (a SQLite database with other tables and no schema version)");
    std::string create = std::string("BEGIN IMMEDIATE;") + kCreateSchema + "PRAGMA user_version=" +
                         std::to_string(kSchemaVersion) + ";COMMIT;";
    if (!store->exec(create.c_str(), error)) {
      sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
      return fail("cannot create the schema: " + error);
    }
  } else {
    // Proves write access now rather than at the first message: rewrites the header page.
    std::string touch = "BEGIN IMMEDIATE;PRAGMA user_version=" + std::to_string(version) + ";COMMIT;";
    if (!store->exec(touch.c_str(), error)) {
      sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
      return fail("cannot write: " + error);
    }
  }

  if (config.verify_on_open) {
    sqlite3_stmt* statement = nullptr;
    rc = sqlite3_prepare_v2(db, "PRAGMA quick_check(1)", -1, &statement, nullptr);
    if (rc == SQLITE_OK) rc = sqlite3_step(statement);
    std::string verdict = rc == SQLITE_ROW ? reinterpret_cast<const char*>(sqlite3_column_text(statement, 0))
                                           : store->describe(rc);
    sqlite3_finalize(statement);
    if (verdict != "ok") return fail("corrupt (quick_check: " + verdict + ")");
  }

  struct Prepared {
    std::unique_ptr<Statement>& slot;
    const char* sql;
  };
  const Prepared statements[] = {
      {store->find_conversation_, "SELECT id FROM conversations WHERE name=?1"},
      {store->insert_conversation_, "INSERT INTO conversations(name, last_seq) VALUES(?1, 0)"},
      {store->get_last_seq_, "SELECT last_seq FROM conversations WHERE id=?1"},
      {store->set_last_seq_, "UPDATE conversations SET last_seq=?2 WHERE id=?1"},
      {store->find_dedup_,
       "SELECT c.name, d.seq, d.ts FROM dedup d JOIN conversations c ON c.id=d.conversation "
       "WHERE d.user=?1 AND d.client_id=?2"},
      {store->insert_dedup_, "INSERT INTO dedup(user, client_id, conversation, seq, ts) VALUES(?1, ?2, ?3, ?4, ?5)"},
      {store->insert_message_,
       "INSERT INTO messages(conversation, seq, ts, sender, text, client_id) VALUES(?1, ?2, ?3, ?4, ?5, ?6)"},
      {store->trim_messages_, "DELETE FROM messages WHERE conversation=?1 AND seq<=?2"},
      {store->select_before_,
       "SELECT seq, ts, sender, text, client_id FROM messages WHERE conversation=?1 AND seq<?2 "
       "ORDER BY seq DESC LIMIT ?3"},
      {store->select_after_,
       "SELECT seq, ts, sender, text, client_id FROM messages WHERE conversation=?1 AND seq>?2 "
       "ORDER BY seq DESC LIMIT ?3"},
  };
  for (const Prepared& prepared : statements) {
    prepared.slot = std::make_unique<Statement>(db, prepared.sql, rc);
    if (rc != SQLITE_OK) return fail("not a parley store of version " + std::to_string(version) + " (" +
                                     store->describe(rc) + ")");
  }

  sqlite3_stmt* statement = nullptr;
  rc = sqlite3_prepare_v2(db, "SELECT name, id FROM conversations", -1, &statement, nullptr);
  while (rc == SQLITE_OK && (rc = sqlite3_step(statement)) == SQLITE_ROW) {
    store->ids_.insert_or_assign(std::string(reinterpret_cast<const char*>(sqlite3_column_text(statement, 0))),
                                 sqlite3_column_int64(statement, 1));
    rc = SQLITE_OK;
  }
  std::string why = rc == SQLITE_DONE ? std::string() : store->describe(rc);
  sqlite3_finalize(statement);
  if (rc != SQLITE_DONE) return fail("cannot read conversations: " + why);
  return store;
}

std::vector<std::pair<std::string, uint64_t>> SqliteStore::conversations() const {
  std::vector<std::pair<std::string, uint64_t>> out;
  sqlite3_stmt* statement = nullptr;
  if (sqlite3_prepare_v2(db_, "SELECT name, last_seq FROM conversations", -1, &statement, nullptr) != SQLITE_OK) {
    return out;
  }
  while (sqlite3_step(statement) == SQLITE_ROW) {
    out.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(statement, 0)),
                     static_cast<uint64_t>(sqlite3_column_int64(statement, 1)));
  }
  sqlite3_finalize(statement);
  return out;
}

int64_t SqliteStore::conversation_id(std::string_view name, bool create, bool& failed) {
  failed = false;
  if (const int64_t* id = ids_.find(name); id != nullptr) return *id;
  // Not cached: another process sharing the file may have created it.
  {
    Statement::Use find(*find_conversation_);
    int rc = find.bind(1, name).step();
    if (rc == SQLITE_ROW) {
      int64_t id = find.integer(0);
      ids_.insert_or_assign(std::string(name), id);
      return id;
    }
    if (rc != SQLITE_DONE) {
      failed = true;
      return 0;
    }
  }
  if (!create) return 0;
  Statement::Use insert(*insert_conversation_);
  if (insert.bind(1, name).step() != SQLITE_DONE) {
    failed = true;
    return 0;
  }
  int64_t id = sqlite3_last_insert_rowid(db_);
  ids_.insert_or_assign(std::string(name), id);
  created_in_batch_.emplace_back(name);
  return id;
}

bool SqliteStore::append_batch(std::span<AppendResult*> batch, std::string& error) {
  created_in_batch_.clear();
  // Last seq per conversation touched by this batch, read inside the write transaction, so
  // several processes sharing one file still hand out each seq once.
  FlatMap<int64_t, uint64_t> touched;
  auto fail = [&](int rc) {
    error = describe(rc);
    if (sqlite3_get_autocommit(db_) == 0) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    for (const std::string& name : created_in_batch_) ids_.erase(name);
    created_in_batch_.clear();
    for (AppendResult* item : batch) {
      item->status = LogStatus::kUnavailable;
      item->seq = 0;
      item->ts_ms = 0;
      item->original_conversation.clear();
    }
    return false;
  };
  int rc = sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return fail(rc);
  std::string user;
  for (AppendResult* item : batch) {
    const AppendRequest& request = item->request;
    if (!request.client_id.empty()) {
      user = user_key(request.sender);
      Statement::Use find(*find_dedup_);
      rc = find.bind(1, user).bind(2, request.client_id).step();
      if (rc == SQLITE_ROW) {
        item->status = LogStatus::kDuplicate;
        item->original_conversation = find.text(0);
        item->seq = static_cast<uint64_t>(find.integer(1));
        item->ts_ms = static_cast<uint64_t>(find.integer(2));
        continue;
      }
      if (rc != SQLITE_DONE) return fail(rc);
    }
    bool failed = false;
    int64_t id = conversation_id(request.conversation, true, failed);
    if (failed) return fail(sqlite3_errcode(db_));
    auto [last, inserted] = touched.try_emplace(id, 0);
    if (inserted) {
      Statement::Use get(*get_last_seq_);
      rc = get.bind(1, id).step();
      if (rc != SQLITE_ROW) return fail(rc);
      *last = static_cast<uint64_t>(get.integer(0));
    }
    uint64_t seq = ++*last;
    {
      Statement::Use insert(*insert_message_);
      insert.bind(1, id).bind(2, to_sql(seq)).bind(3, to_sql(request.ts_ms));
      insert.bind(4, request.sender).bind(5, request.text);
      if (request.client_id.empty()) {
        insert.bind_null(6);
      } else {
        insert.bind(6, request.client_id);
      }
      rc = insert.step();
      if (rc != SQLITE_DONE) return fail(rc);
    }
    if (!request.client_id.empty()) {
      Statement::Use insert(*insert_dedup_);
      rc = insert.bind(1, user).bind(2, request.client_id).bind(3, id).bind(4, to_sql(seq)).bind(5, to_sql(request.ts_ms)).step();
      if (rc != SQLITE_DONE) return fail(rc);
    }
    item->status = LogStatus::kOk;
    item->seq = seq;
    item->ts_ms = request.ts_ms;
  }
  bool trim_failed = false;
  touched.for_each([&](const int64_t& id, uint64_t& last) {
    if (trim_failed) return;
    Statement::Use set(*set_last_seq_);
    rc = set.bind(1, id).bind(2, to_sql(last)).step();
    if (rc != SQLITE_DONE) {
      trim_failed = true;
      return;
    }
    if (config_.history_keep != 0 && last > config_.history_keep) {
      Statement::Use trim(*trim_messages_);
      rc = trim.bind(1, id).bind(2, to_sql(last - config_.history_keep)).step();
      if (rc != SQLITE_DONE) trim_failed = true;
    }
  });
  if (trim_failed) return fail(rc);
  rc = sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return fail(rc);
  created_in_batch_.clear();
  return true;
}

bool SqliteStore::read(uint64_t bound, size_t limit, ReadResult& result) {
  auto fail = [&]() {
    if (sqlite3_get_autocommit(db_) == 0) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    result.status = LogStatus::kUnavailable;
    result.messages.clear();
    return false;
  };
  // One read transaction: last_seq and the messages come from the same snapshot.
  if (sqlite3_exec(db_, "BEGIN", nullptr, nullptr, nullptr) != SQLITE_OK) return fail();
  bool failed = false;
  int64_t id = conversation_id(result.conversation, false, failed);
  if (failed) return fail();
  result.status = LogStatus::kOk;
  result.messages.clear();
  result.last_seq = 0;
  if (id != 0) {
    {
      Statement::Use get(*get_last_seq_);
      if (get.bind(1, id).step() != SQLITE_ROW) return fail();
      result.last_seq = static_cast<uint64_t>(get.integer(0));
    }
    bool since = result.kind == ReadKind::kSince;
    Statement::Use select(since ? *select_after_ : *select_before_);
    int64_t sql_bound = since ? to_sql(bound) : (bound == 0 ? INT64_MAX : to_sql(bound));
    select.bind(1, id).bind(2, sql_bound).bind(3, limit == 0 ? -1 : to_sql(limit));
    int rc;
    while ((rc = select.step()) == SQLITE_ROW) {
      StoredMessage& message = result.messages.emplace_back();
      message.seq = static_cast<uint64_t>(select.integer(0));
      message.ts_ms = static_cast<uint64_t>(select.integer(1));
      message.sender = select.text(2);
      message.text = select.text(3);
      message.client_id = select.text(4);
    }
    if (rc != SQLITE_DONE) return fail();
    std::reverse(result.messages.begin(), result.messages.end());
  }
  if (sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) return fail();
  if (result.kind == ReadKind::kSince) {
    finish_since(result, bound);
  } else {
    result.complete = true;
    result.first_seq = result.messages.empty() ? result.last_seq + 1 : result.messages.front().seq;
  }
  return true;
}

bool SqliteStore::sweep(uint64_t now_ms, std::string& error) {
  bool prune_dedup = now_ms > config_.dedup_window_ms;
  bool expire = config_.max_age_ms != 0 && now_ms > config_.max_age_ms;
  if (!prune_dedup && !expire) return true;
  if (!exec("BEGIN IMMEDIATE", error)) return false;
  auto fail = [&](int rc) {
    error = describe(rc);
    if (sqlite3_get_autocommit(db_) == 0) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    return false;
  };
  // Binds `params` to ?1, ?2, ... and steps once: SQLITE_OK with `out` set to the first column
  // of the first row (or `none` when there is no row), else the error.
  auto step_once = [&](const char* sql, std::initializer_list<int64_t> params, int64_t none, int64_t& out) {
    sqlite3_stmt* statement = nullptr;
    int rc = sqlite3_prepare_v2(db_, sql, -1, &statement, nullptr);
    if (rc == SQLITE_OK) {
      int index = 0;
      for (int64_t param : params) sqlite3_bind_int64(statement, ++index, param);
      rc = sqlite3_step(statement);
      out = rc == SQLITE_ROW ? sqlite3_column_int64(statement, 0) : none;
    }
    sqlite3_finalize(statement);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
  };
  // Each "first young row" query walks from the oldest row and stops at the first one still
  // inside its window: it reads only what the DELETE after it removes.
  int64_t ignored = 0;
  if (prune_dedup) {
    int64_t cut = 0;
    int rc = step_once("SELECT id FROM dedup WHERE ts>=?1 ORDER BY id LIMIT 1",
                       {to_sql(now_ms - config_.dedup_window_ms)}, INT64_MAX, cut);
    if (rc == SQLITE_OK) rc = step_once("DELETE FROM dedup WHERE id<?1", {cut}, 0, ignored);
    if (rc != SQLITE_OK) return fail(rc);
  }
  if (expire) {
    int64_t cutoff = to_sql(now_ms - config_.max_age_ms);
    std::vector<std::pair<int64_t, int64_t>> all;  // id, last_seq
    sqlite3_stmt* statement = nullptr;
    int rc = sqlite3_prepare_v2(db_, "SELECT id, last_seq FROM conversations", -1, &statement, nullptr);
    while (rc == SQLITE_OK && (rc = sqlite3_step(statement)) == SQLITE_ROW) {
      all.emplace_back(sqlite3_column_int64(statement, 0), sqlite3_column_int64(statement, 1));
      rc = SQLITE_OK;
    }
    sqlite3_finalize(statement);
    if (rc != SQLITE_DONE) return fail(rc);
    for (const auto& [id, last] : all) {
      int64_t cut = 0;
      rc = step_once("SELECT seq FROM messages WHERE conversation=?1 AND ts>=?2 ORDER BY seq LIMIT 1", {id, cutoff},
                     last + 1, cut);
      if (rc == SQLITE_OK) rc = step_once("DELETE FROM messages WHERE conversation=?1 AND seq<?2", {id, cut}, 0, ignored);
      if (rc != SQLITE_OK) return fail(rc);
    }
  }
  int rc = sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return fail(rc);
  return true;
}

}  // namespace chat
