// The SQLite engine's threading (chat/store/sqlite_room_log.h): completions through the
// eventfd, group commit, the bounded queue, a full disk at run time, and kill -9 of a process
// in the middle of appending.
#include "chat/store/sqlite_room_log.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "chat/store/sqlite_store.h"
#include "tests/support/room_log_test_support.h"

namespace {

using chat::AppendResult;
using chat::LogStatus;
using chat::Submit;
using room_log_test::message;
using room_log_test::pump;

class SqliteRoomLogTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(loop_.open(), 0); }

  std::unique_ptr<chat::SqliteRoomLog> open(const chat::RoomLogConfig& config) {
    std::string error;
    std::unique_ptr<chat::SqliteRoomLog> log = chat::SqliteRoomLog::open(config, loop_, error);
    EXPECT_NE(log, nullptr) << error;
    if (log != nullptr) log->set_client(&client_);
    return log;
  }

  chat::RoomLogConfig config(const std::string& path) const {
    chat::RoomLogConfig config;
    config.path = path;
    return config;
  }

  // Holds the store's write lock from another connection until release().
  class LockHolder {
   public:
    explicit LockHolder(const std::string& path) {
      sqlite3_open(path.c_str(), &db_);
      held_ = sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK;
    }
    ~LockHolder() {
      release();
      sqlite3_close(db_);
    }
    bool held() const { return held_; }
    void release() {
      if (held_) sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
      held_ = false;
    }

   private:
    sqlite3* db_ = nullptr;
    bool held_ = false;
  };

  room_log_test::TempDir dir_;
  reactor::EventLoop loop_;
  room_log_test::RecordingClient client_;
};

TEST_F(SqliteRoomLogTest, OpenErrorsComeBackAsOneLine) {
  std::string error;
  chat::RoomLogConfig settings = config(dir_.file("missing/parley.db"));
  EXPECT_EQ(chat::open_room_log(settings, loop_, error), nullptr);
  EXPECT_EQ(error.rfind("store " + settings.path + ": cannot open", 0), 0u) << error;
}

TEST_F(SqliteRoomLogTest, GroupCommitPutsWhatQueuedDuringACommitIntoOneTransaction) {
  chat::RoomLogConfig settings = config(dir_.file("parley.db"));
  settings.max_batch = 512;
  settings.busy_timeout_ms = 20000;
  auto log = open(settings);
  ASSERT_NE(log, nullptr);
  // The writer takes the first append(s) and blocks on the lock; the rest queue behind it.
  LockHolder lock(settings.path);
  ASSERT_TRUE(lock.held());
  constexpr size_t kMessages = 2000;
  for (size_t i = 0; i < kMessages; ++i) {
    ASSERT_EQ(log->append(message("general", "alice", 1000 + i, "m" + std::to_string(i))), Submit::kAccepted);
  }
  EXPECT_EQ(log->stats().queue_depth, kMessages);
  lock.release();
  ASSERT_TRUE(pump(loop_, client_, [&] { return client_.appended.size() == kMessages; }));
  for (size_t i = 0; i < kMessages; ++i) {
    ASSERT_EQ(client_.appended[i].status, LogStatus::kOk);
    ASSERT_EQ(client_.appended[i].seq, i + 1);
    ASSERT_EQ(client_.appended[i].request.text, "m" + std::to_string(i));
  }
  chat::RoomLogStats stats = log->stats();
  EXPECT_EQ(stats.messages, kMessages);
  // At most: the small first batch, then ceil(rest / max_batch).
  EXPECT_LE(stats.commits, 1 + (kMessages + 511) / 512);
  EXPECT_EQ(stats.max_batch, 512u);
  EXPECT_EQ(stats.batches, stats.commits);
  EXPECT_EQ(stats.errors, 0u);
  EXPECT_EQ(stats.queue_depth, 0u);
  EXPECT_EQ(log->last_seq("general"), kMessages);
  for (const std::thread::id& id : client_.threads) ASSERT_EQ(id, std::this_thread::get_id());
}

TEST_F(SqliteRoomLogTest, AFullQueueRefusesThenSignalsWritable) {
  chat::RoomLogConfig settings = config(dir_.file("parley.db"));
  settings.queue_limit = 8;
  settings.busy_timeout_ms = 20000;
  auto log = open(settings);
  ASSERT_NE(log, nullptr);
  LockHolder lock(settings.path);
  for (int i = 0; i < 8; ++i) ASSERT_EQ(log->append(message("general", "alice", 1, "m")), Submit::kAccepted);
  EXPECT_EQ(log->append(message("general", "alice", 1, "refused")), Submit::kFull);
  EXPECT_EQ(log->since("general", 0, 10, 0), Submit::kFull);
  chat::RoomLogStats stats = log->stats();
  EXPECT_EQ(stats.rejected_full, 2u);
  EXPECT_EQ(stats.queue_depth, 8u);
  EXPECT_EQ(stats.queue_limit, 8u);
  lock.release();
  ASSERT_TRUE(pump(loop_, client_, [&] { return client_.appended.size() == 8; }));
  EXPECT_EQ(client_.writable, 1);
  for (const AppendResult& result : client_.appended) EXPECT_EQ(result.status, LogStatus::kOk);
  EXPECT_EQ(client_.appended.back().seq, 8u);  // the refused one took no seq
  EXPECT_EQ(log->append(message("general", "alice", 1, "accepted again")), Submit::kAccepted);
  ASSERT_TRUE(pump(loop_, client_, [&] { return client_.appended.size() == 9; }));
  EXPECT_EQ(client_.appended.back().seq, 9u);
}

TEST_F(SqliteRoomLogTest, DestructionCommitsWhatIsQueuedAndRestartRecoversIt) {
  chat::RoomLogConfig settings = config(dir_.file("parley.db"));
  {
    auto log = open(settings);
    ASSERT_NE(log, nullptr);
    for (int i = 0; i < 100; ++i) log->append(message("general", "alice", 1000 + i, "m" + std::to_string(i)));
    log->append(message(chat::dm_conversation("alice", "bob"), "alice", 5000, "psst"));
  }
  EXPECT_EQ(client_.appended.size(), 101u) << "completions delivered by the destructor";
  auto log = open(settings);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->last_seq("general"), 100u);
  EXPECT_EQ(log->last_seq("dm:alice:bob"), 1u);
  log->history("general", 0, 3, 0);
  ASSERT_TRUE(pump(loop_, client_, [&] { return client_.reads.size() == 1; }));
  ASSERT_EQ(client_.reads[0].messages.size(), 3u);
  EXPECT_EQ(client_.reads[0].messages[2].text, "m99");
  log->append(message("general", "alice", 9000, "after restart"));
  ASSERT_TRUE(pump(loop_, client_, [&] { return client_.appended.size() == 102; }));
  EXPECT_EQ(client_.appended.back().seq, 101u);
}

// A full disk at run time: the appends of the failing transactions get kUnavailable, the log
// keeps serving, and once space is back the seqs go on without a gap; nothing acked is lost.
TEST_F(SqliteRoomLogTest, AFullDiskCompletesUnavailableAndTheLogRecovers) {
  std::string mount_point = dir_.file("small");
  ASSERT_EQ(mkdir(mount_point.c_str(), 0755), 0);
  if (mount("tmpfs", mount_point.c_str(), "tmpfs", 0, "size=512k") != 0) {
    GTEST_SKIP() << "cannot mount a small tmpfs (" << std::strerror(errno) << "); needs root";
  }
  struct Unmount {
    std::string path;
    ~Unmount() { umount2(path.c_str(), MNT_DETACH); }
  } unmount{mount_point};
  chat::RoomLogConfig settings = config(mount_point + "/parley.db");
  settings.verify_on_open = false;
  std::map<uint64_t, std::string> acked;  // seq -> text
  {
    auto log = open(settings);
    ASSERT_NE(log, nullptr);
    // Fill what is left of the file system.
    std::string filler = mount_point + "/filler";
    int fd = ::open(filler.c_str(), O_WRONLY | O_CREAT, 0644);
    ASSERT_GE(fd, 0);
    std::vector<char> block(4096, 'f');
    while (write(fd, block.data(), block.size()) > 0) {
    }
    close(fd);
    // Append until the store runs out of room (the WAL may still have some).
    std::string text(2000, 'x');
    int sent = 0;
    while (sent < 2000 && log->stats().unavailable == 0) {
      log->append(message("general", "alice", 1, text + std::to_string(sent), "id" + std::to_string(sent)));
      ++sent;
      ASSERT_TRUE(pump(loop_, client_, [&] { return client_.appended.size() == static_cast<size_t>(sent); }));
    }
    ASSERT_GT(log->stats().unavailable, 0u) << "the disk never filled";
    EXPECT_GT(log->stats().errors, 0u);
    EXPECT_FALSE(log->last_error().empty());
    // Still failing while full, and still answering.
    log->append(message("general", "alice", 1, "while full"));
    ASSERT_TRUE(pump(loop_, client_, [&] { return client_.appended.size() == static_cast<size_t>(sent) + 1; }));
    EXPECT_EQ(client_.appended.back().status, LogStatus::kUnavailable);
    for (const AppendResult& result : client_.appended) {
      if (result.status == LogStatus::kOk) acked[result.seq] = result.request.text;
    }
    // Space comes back: the same log carries on, with the next seq.
    ASSERT_EQ(unlink(filler.c_str()), 0);
    log->append(message("general", "alice", 1, "after"));
    ASSERT_TRUE(pump(loop_, client_, [&] { return client_.appended.size() == static_cast<size_t>(sent) + 2; }));
    ASSERT_EQ(client_.appended.back().status, LogStatus::kOk);
    EXPECT_EQ(client_.appended.back().seq, acked.size() + 1);
    acked[client_.appended.back().seq] = "after";
    EXPECT_TRUE(log->last_error().empty());
  }
  std::string error;
  auto store = chat::SqliteStore::open(settings, error);
  ASSERT_NE(store, nullptr) << error;
  chat::ReadResult all;
  all.kind = chat::ReadKind::kSince;
  all.conversation = "general";
  ASSERT_TRUE(store->read(0, 0, all));
  ASSERT_EQ(all.messages.size(), acked.size());
  for (const chat::StoredMessage& stored : all.messages) EXPECT_EQ(acked[stored.seq], stored.text);
}

// The child: appends "m<i>" with client id "k<i>" as fast as the store acks, keeping a window in
// flight, and writes "<i> <seq>\n" to `out` for every ack, until it is killed.
[[noreturn]] void append_until_killed(const std::string& path, uint64_t first, int out) {
  reactor::EventLoop loop;
  if (loop.open() != 0) _exit(3);
  chat::RoomLogConfig settings;
  settings.path = path;
  settings.history_keep = 0;
  std::string error;
  std::unique_ptr<chat::RoomLog> log = chat::open_room_log(settings, loop, error);
  if (log == nullptr) {
    dprintf(out, "error %s\n", error.c_str());
    _exit(4);
  }
  struct Appender : chat::RoomLogClient {
    chat::RoomLog* log = nullptr;
    uint64_t next = 0;
    int out = -1;
    void send() {
      std::string i = std::to_string(next++);
      log->append(message("general", "writer", chat::room_log_realtime_ms(), "m" + i, "k" + i));
    }
    void on_appended(chat::AppendResult& result) override {
      if (result.status == LogStatus::kOk) {
        char line[64];
        int length = snprintf(line, sizeof line, "%s %llu\n", result.request.client_id.c_str() + 1,
                              static_cast<unsigned long long>(result.seq));
        if (write(out, line, static_cast<size_t>(length)) != length) _exit(5);  // < PIPE_BUF: atomic
      }
      send();
    }
    void on_read(chat::ReadResult&) override {}
  } appender;
  appender.log = log.get();
  appender.next = first;
  appender.out = out;
  log->set_client(&appender);
  for (int i = 0; i < 64; ++i) appender.send();
  loop.run();
  _exit(6);
}

TEST_F(SqliteRoomLogTest, KillNineLosesNoAckedMessageAndResendsDeduplicate) {
  const std::string path = dir_.file("crash.db");
  std::random_device device;
  const unsigned seed = device();
  std::mt19937 random(seed);
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::map<uint64_t, uint64_t> acked;  // i -> seq, over every round
  for (int round = 0; round < 3; ++round) {
    const uint64_t first = static_cast<uint64_t>(round) * 1'000'000;
    const size_t kill_after = std::uniform_int_distribution<size_t>(1, 3000)(random);
    uint64_t highest_i = first;
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      close(fds[0]);
      append_until_killed(path, first, fds[1]);
    }
    close(fds[1]);
    // Read acks until kill_after of them (or 20 s), then SIGKILL at that random moment.
    std::string pending;
    size_t round_acks = 0;
    bool killed = false;
    auto take_lines = [&] {
      size_t newline;
      while ((newline = pending.find('\n')) != std::string::npos) {
        std::string line = pending.substr(0, newline);
        pending.erase(0, newline + 1);
        ASSERT_NE(line.rfind("error", 0), 0u) << line;
        uint64_t i = 0;
        unsigned long long seq = 0;
        ASSERT_EQ(sscanf(line.c_str(), "%lu %llu", &i, &seq), 2) << line;
        ASSERT_TRUE(acked.emplace(i, seq).second) << "acked twice: " << i;
        highest_i = std::max(highest_i, i);
        ++round_acks;
      }
    };
    uint64_t deadline = reactor::monotonic_ms() + 20000;
    char buffer[4096];
    while (true) {
      if (!killed && (round_acks >= kill_after || reactor::monotonic_ms() > deadline)) {
        kill(child, SIGKILL);
        killed = true;
      }
      pollfd poll_fd{fds[0], POLLIN, 0};
      if (poll(&poll_fd, 1, 100) <= 0) continue;
      ssize_t n = read(fds[0], buffer, sizeof buffer);
      if (n <= 0) break;  // EOF: the child is gone and every ack it wrote is read
      pending.append(buffer, static_cast<size_t>(n));
      take_lines();
    }
    close(fds[0]);
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "the child died on its own: " << status;
    ASSERT_GT(round_acks, 0u);

    // Reopen: every acked message is there, at its seq, once; seqs are 1..N without a gap.
    std::string error;
    chat::RoomLogConfig settings;
    settings.path = path;
    settings.history_keep = 0;
    auto store = chat::SqliteStore::open(settings, error);
    ASSERT_NE(store, nullptr) << error;
    chat::ReadResult all;
    all.kind = chat::ReadKind::kSince;
    all.conversation = "general";
    ASSERT_TRUE(store->read(0, 0, all));
    ASSERT_TRUE(all.complete);
    std::map<uint64_t, uint64_t> stored_i;  // seq -> i
    std::set<std::string> texts;
    for (size_t index = 0; index < all.messages.size(); ++index) {
      const chat::StoredMessage& stored = all.messages[index];
      ASSERT_EQ(stored.seq, index + 1) << "gap-free";
      ASSERT_TRUE(texts.insert(stored.text).second) << "stored twice: " << stored.text;
      ASSERT_EQ("k" + stored.text.substr(1), stored.client_id);
      stored_i[stored.seq] = std::stoull(stored.text.substr(1));
    }
    for (const auto& [i, seq] : acked) {
      ASSERT_TRUE(stored_i.count(seq)) << "acked seq " << seq << " lost";
      ASSERT_EQ(stored_i[seq], i);
    }

    // The client resends everything it may have sent in this round: acked ones come back as
    // duplicates with the original seq, the rest are stored now. Then each i is there once.
    std::vector<AppendResult> resent(highest_i - first + 65);
    std::vector<AppendResult*> batch;
    for (size_t k = 0; k < resent.size(); ++k) {
      std::string i = std::to_string(first + k);
      resent[k].request = message("general", "writer", chat::room_log_realtime_ms(), "m" + i, "k" + i);
      batch.push_back(&resent[k]);
    }
    ASSERT_TRUE(store->append_batch(batch, error)) << error;
    for (size_t k = 0; k < resent.size(); ++k) {
      auto original = acked.find(first + k);
      if (original != acked.end()) {
        ASSERT_EQ(resent[k].status, LogStatus::kDuplicate);
        ASSERT_EQ(resent[k].seq, original->second);
      }
      if (resent[k].status == LogStatus::kOk) acked[first + k] = resent[k].seq;
    }
    chat::ReadResult after;
    after.kind = chat::ReadKind::kSince;
    after.conversation = "general";
    ASSERT_TRUE(store->read(0, 0, after));
    std::set<std::string> unique;
    for (size_t index = 0; index < after.messages.size(); ++index) {
      ASSERT_EQ(after.messages[index].seq, index + 1);
      ASSERT_TRUE(unique.insert(after.messages[index].text).second);
    }
    for (size_t k = 0; k < resent.size(); ++k) ASSERT_TRUE(unique.count("m" + std::to_string(first + k)));
    // The next round's child appends after these, on the same file.
    std::fprintf(stderr, "round %d: killed after %zu acks, %zu messages stored\n", round, round_acks,
                 after.messages.size());
  }
}

}  // namespace
