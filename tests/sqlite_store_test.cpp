// The SQLite file behind the SQLite room log (chat/store/sqlite_store.h), driven synchronously:
// open checks (newer schema, corrupt, foreign, unwritable), round trips through a real file,
// restart, dedup across reopen, retention, and a failed batch taking no seq.
#include "chat/store/sqlite_store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "tests/support/room_log_test_support.h"

namespace {

using chat::AppendResult;
using chat::LogStatus;
using chat::ReadResult;
using chat::SqliteStore;
using room_log_test::message;

class SqliteStoreTest : public ::testing::Test {
 protected:
  chat::RoomLogConfig config(const std::string& name = "parley.db") const {
    chat::RoomLogConfig config;
    config.path = dir_.file(name);
    return config;
  }

  std::unique_ptr<SqliteStore> open(const chat::RoomLogConfig& config) {
    std::string error;
    std::unique_ptr<SqliteStore> store = SqliteStore::open(config, error);
    EXPECT_NE(store, nullptr) << error;
    return store;
  }

  std::string open_error(const chat::RoomLogConfig& config) {
    std::string error;
    std::unique_ptr<SqliteStore> store = SqliteStore::open(config, error);
    EXPECT_EQ(store, nullptr);
    EXPECT_EQ(error.find('\n'), std::string::npos) << "one line: " << error;
    return error;
  }

  // Appends `requests` as one batch; returns the results.
  static std::vector<AppendResult> append(SqliteStore& store, std::vector<chat::AppendRequest> requests,
                                          bool expect_ok = true) {
    std::vector<AppendResult> results(requests.size());
    std::vector<AppendResult*> batch;
    for (size_t i = 0; i < requests.size(); ++i) {
      results[i].request = std::move(requests[i]);
      batch.push_back(&results[i]);
    }
    std::string error;
    EXPECT_EQ(store.append_batch(batch, error), expect_ok) << error;
    return results;
  }

  static ReadResult read(SqliteStore& store, chat::ReadKind kind, const std::string& conversation, uint64_t bound,
                         size_t limit) {
    ReadResult result;
    result.kind = kind;
    result.conversation = conversation;
    EXPECT_TRUE(store.read(bound, limit, result));
    return result;
  }

  // Runs one SQL statement on `path` through a separate connection; returns its first column.
  static std::string sql(const std::string& path, const std::string& statement) {
    sqlite3* db = nullptr;
    std::string out;
    if (sqlite3_open(path.c_str(), &db) == SQLITE_OK) {
      sqlite3_exec(
          db, statement.c_str(),
          [](void* text, int columns, char** values, char**) {
            if (columns > 0 && values[0] != nullptr) *static_cast<std::string*>(text) = values[0];
            return 0;
          },
          &out, nullptr);
    }
    sqlite3_close(db);
    return out;
  }

  room_log_test::TempDir dir_;
};

TEST_F(SqliteStoreTest, CreatesAVersionedWalStoreAndRoundTrips) {
  chat::RoomLogConfig settings = config();
  {
    auto store = open(settings);
    ASSERT_NE(store, nullptr);
    auto results = append(*store, {message("general", "alice", 1000, "hello \"world\" \xC3\xA9", "c1"),
                                   message("general", "bob", 1001, "hi"),
                                   message(chat::dm_conversation("alice", "bob"), "bob", 1002, "psst")});
    EXPECT_EQ(results[0].seq, 1u);
    EXPECT_EQ(results[1].seq, 2u);
    EXPECT_EQ(results[2].seq, 1u);
    EXPECT_EQ(results[2].status, LogStatus::kOk);
    ReadResult history = read(*store, chat::ReadKind::kHistory, "general", 0, 0);
    ASSERT_EQ(history.messages.size(), 2u);
    EXPECT_EQ(history.messages[0].text, "hello \"world\" \xC3\xA9");
    EXPECT_EQ(history.messages[0].client_id, "c1");
    EXPECT_EQ(history.messages[1].sender, "bob");
    EXPECT_EQ(history.messages[1].client_id, "");
    EXPECT_EQ(history.last_seq, 2u);
  }
  EXPECT_EQ(sql(settings.path, "PRAGMA user_version"), std::to_string(SqliteStore::kSchemaVersion));
  EXPECT_EQ(sql(settings.path, "PRAGMA journal_mode"), "wal");
  EXPECT_EQ(sql(settings.path, "SELECT count(*) FROM messages"), "3");
}

TEST_F(SqliteStoreTest, RestartRecoversNextSeqAndHistory) {
  chat::RoomLogConfig settings = config();
  {
    auto store = open(settings);
    for (int i = 0; i < 7; ++i) append(*store, {message("general", "alice", 1000 + i, "m" + std::to_string(i))});
    append(*store, {message("random", "alice", 2000, "r")});
  }
  auto store = open(settings);
  ASSERT_NE(store, nullptr);
  auto conversations = store->conversations();
  std::sort(conversations.begin(), conversations.end());
  ASSERT_EQ(conversations.size(), 2u);
  EXPECT_EQ(conversations[0], (std::pair<std::string, uint64_t>{"general", 7}));
  EXPECT_EQ(conversations[1], (std::pair<std::string, uint64_t>{"random", 1}));
  EXPECT_EQ(append(*store, {message("general", "bob", 3000, "after restart")})[0].seq, 8u);
  ReadResult since = read(*store, chat::ReadKind::kSince, "general", 5, 0);
  ASSERT_EQ(since.messages.size(), 3u);
  EXPECT_EQ(since.messages[0].text, "m5");
  EXPECT_EQ(since.messages[2].text, "after restart");
  EXPECT_TRUE(since.complete);
}

TEST_F(SqliteStoreTest, NewerSchemaVersionIsAnOpenError) {
  chat::RoomLogConfig settings = config();
  { ASSERT_NE(open(settings), nullptr); }
  sql(settings.path, "PRAGMA user_version=" + std::to_string(SqliteStore::kSchemaVersion + 1));
  std::string error = open_error(settings);
  EXPECT_NE(error.find("store " + settings.path + ": schema version 2 is newer"), std::string::npos) << error;
}

TEST_F(SqliteStoreTest, GarbageFileIsAnOpenError) {
  chat::RoomLogConfig settings = config();
  {
    std::ofstream out(settings.path, std::ios::binary);
    std::mt19937 random(7);
    for (int i = 0; i < 8192; ++i) out.put(static_cast<char>(random()));
  }
  std::string error = open_error(settings);
  EXPECT_NE(error.find("not a SQLite database or corrupt"), std::string::npos) << error;
}

TEST_F(SqliteStoreTest, DamagedPageIsAnOpenError) {
  chat::RoomLogConfig settings = config();
  {
    auto store = open(settings);
    for (int i = 0; i < 200; ++i) {
      append(*store, {message("room" + std::to_string(i % 5), "alice", 1000 + i, std::string(300, 'x'))});
    }
  }
  ASSERT_EQ(sql(settings.path, "PRAGMA journal_mode"), "wal");  // closed cleanly: WAL checkpointed
  // Overwrite the middle of the file (B-tree pages of the messages table), not the header.
  int fd = ::open(settings.path.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  off_t size = lseek(fd, 0, SEEK_END);
  ASSERT_GT(size, 8 * 4096);
  std::vector<char> junk(3 * 4096, '\x5a');
  ASSERT_EQ(pwrite(fd, junk.data(), junk.size(), 4 * 4096), static_cast<ssize_t>(junk.size()));
  close(fd);
  std::string error = open_error(settings);
  EXPECT_NE(error.find("corrupt"), std::string::npos) << error;
}

TEST_F(SqliteStoreTest, ForeignSqliteDatabaseIsAnOpenError) {
  chat::RoomLogConfig settings = config();
  sql(settings.path, "CREATE TABLE accounts(id INTEGER)");
  std::string error = open_error(settings);
  EXPECT_NE(error.find("not a parley store"), std::string::npos) << error;
}

TEST_F(SqliteStoreTest, UnwritablePathsAreOpenErrors) {
  chat::RoomLogConfig missing_dir;
  missing_dir.path = dir_.file("no/such/dir/parley.db");
  EXPECT_NE(open_error(missing_dir).find("cannot open"), std::string::npos);

  chat::RoomLogConfig directory;
  directory.path = dir_.path();
  EXPECT_NE(open_error(directory).find("store " + dir_.path() + ": "), std::string::npos);

  // A read-only file system: as root, file modes do not stop us, a read-only mount does.
  std::string mount_point = dir_.file("ro");
  ASSERT_EQ(mkdir(mount_point.c_str(), 0755), 0);
  if (mount("tmpfs", mount_point.c_str(), "tmpfs", MS_RDONLY, "size=64k") != 0) {
    GTEST_SKIP() << "cannot mount a read-only tmpfs (" << std::strerror(errno) << "); needs root";
  }
  chat::RoomLogConfig read_only;
  read_only.path = mount_point + "/parley.db";
  std::string error = open_error(read_only);
  umount(mount_point.c_str());
  EXPECT_NE(error.find("store " + read_only.path + ": "), std::string::npos) << error;
}

TEST_F(SqliteStoreTest, ExistingReadOnlyStoreIsAnOpenError) {
  std::string mount_point = dir_.file("mnt");
  ASSERT_EQ(mkdir(mount_point.c_str(), 0755), 0);
  if (mount("tmpfs", mount_point.c_str(), "tmpfs", 0, "size=1m") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs (" << std::strerror(errno) << "); needs root";
  }
  chat::RoomLogConfig settings;
  settings.path = mount_point + "/parley.db";
  { ASSERT_NE(open(settings), nullptr); }
  ASSERT_EQ(mount("tmpfs", mount_point.c_str(), "tmpfs", MS_REMOUNT | MS_RDONLY, "size=1m"), 0);
  std::string error = open_error(settings);
  umount(mount_point.c_str());
  EXPECT_NE(error.find("read-only"), std::string::npos) << error;
}

TEST_F(SqliteStoreTest, DedupSurvivesReopenAndWorksWithinABatch) {
  chat::RoomLogConfig settings = config();
  const uint64_t now = chat::room_log_realtime_ms();
  {
    auto store = open(settings);
    auto results = append(*store, {message("general", "alice", now, "one", "c1"),
                                   message("general", "Alice", now + 5, "one again", "c1")});
    EXPECT_EQ(results[0].status, LogStatus::kOk);
    EXPECT_EQ(results[1].status, LogStatus::kDuplicate);
    EXPECT_EQ(results[1].seq, 1u);
    EXPECT_EQ(results[1].ts_ms, now);
  }
  auto store = open(settings);
  auto results = append(*store, {message("random", "ALICE", now + 9, "resent", "c1"),
                                 message("general", "bob", now + 9, "mine", "c1")});
  EXPECT_EQ(results[0].status, LogStatus::kDuplicate);
  EXPECT_EQ(results[0].seq, 1u);
  EXPECT_EQ(results[0].ts_ms, now);
  EXPECT_EQ(results[0].original_conversation, "general");
  EXPECT_EQ(results[1].status, LogStatus::kOk);
  EXPECT_EQ(results[1].seq, 2u);
}

TEST_F(SqliteStoreTest, HistoryKeepTrimsButSeqsContinue) {
  chat::RoomLogConfig settings = config();
  settings.history_keep = 5;
  auto store = open(settings);
  for (int i = 1; i <= 12; ++i) append(*store, {message("general", "alice", 1000, "m" + std::to_string(i))});
  EXPECT_EQ(sql(settings.path, "SELECT count(*) FROM messages"), "5");
  ReadResult since = read(*store, chat::ReadKind::kSince, "general", 0, 0);
  ASSERT_EQ(since.messages.size(), 5u);
  EXPECT_EQ(since.messages.front().seq, 8u);
  EXPECT_FALSE(since.complete);
  EXPECT_EQ(since.first_seq, 8u);
}

TEST_F(SqliteStoreTest, SweepAppliesMaxAgeAndTheDedupWindow) {
  chat::RoomLogConfig settings = config();
  settings.max_age_ms = 10'000;
  settings.dedup_window_ms = 60'000;
  auto store = open(settings);
  append(*store, {message("general", "alice", 100'000, "old", "c1"), message("general", "alice", 105'000, "mid", "c2"),
                  message("general", "alice", 120'000, "new", "c3"), message("quiet", "bob", 100'000, "q")});
  std::string error;
  ASSERT_TRUE(store->sweep(116'000, error)) << error;  // cutoff 106'000: old and mid and q go
  ReadResult general = read(*store, chat::ReadKind::kHistory, "general", 0, 0);
  ASSERT_EQ(general.messages.size(), 1u);
  EXPECT_EQ(general.messages[0].text, "new");
  EXPECT_TRUE(read(*store, chat::ReadKind::kHistory, "quiet", 0, 0).messages.empty());
  EXPECT_EQ(read(*store, chat::ReadKind::kHistory, "quiet", 0, 0).last_seq, 1u);
  // Client ids inside the window still deduplicate even though their messages expired.
  EXPECT_EQ(append(*store, {message("general", "alice", 116'000, "old?", "c1")})[0].status, LogStatus::kDuplicate);
  ASSERT_TRUE(store->sweep(165'000, error)) << error;  // dedup cutoff 105'000: c1 goes, c2 stays
  EXPECT_EQ(sql(settings.path, "SELECT count(*) FROM dedup"), "2");
  auto again = append(*store, {message("general", "alice", 165'000, "old again", "c1"),
                               message("general", "alice", 165'000, "mid again", "c2")});
  EXPECT_EQ(again[0].status, LogStatus::kOk);
  EXPECT_EQ(again[0].seq, 4u);  // the seq survived retention
  EXPECT_EQ(again[1].status, LogStatus::kDuplicate);
}

TEST_F(SqliteStoreTest, AFailedBatchTakesNoSeqAndCreatesNothing) {
  chat::RoomLogConfig settings = config();
  settings.busy_timeout_ms = 50;
  auto store = open(settings);
  append(*store, {message("general", "alice", 1, "a")});
  // Another connection holds the write lock past the busy timeout.
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(settings.path.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  auto failed = append(*store, {message("general", "alice", 2, "b"), message("fresh", "alice", 2, "c")}, false);
  EXPECT_EQ(failed[0].status, LogStatus::kUnavailable);
  EXPECT_EQ(failed[1].status, LogStatus::kUnavailable);
  EXPECT_EQ(failed[0].seq, 0u);
  sqlite3_exec(other, "COMMIT", nullptr, nullptr, nullptr);
  sqlite3_close(other);
  auto retried = append(*store, {message("general", "alice", 3, "b"), message("fresh", "alice", 3, "c")});
  EXPECT_EQ(retried[0].seq, 2u);
  EXPECT_EQ(retried[1].seq, 1u);
}

TEST_F(SqliteStoreTest, TwoConnectionsSharingAFileNeverReuseASeq) {
  chat::RoomLogConfig settings = config();
  auto first = open(settings);
  auto second = open(settings);
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(append(*first, {message("general", "a", 1, "x")})[0].seq, 1u);
  EXPECT_EQ(append(*second, {message("general", "b", 1, "y")})[0].seq, 2u);
  EXPECT_EQ(append(*first, {message("general", "a", 1, "z")})[0].seq, 3u);
}

}  // namespace
