// parleyd with a SQLite store (issue 14), against the real binary: open errors are one line and
// exit 1; history, seqs and client ids survive a restart; the crash test (SIGKILL at a random
// moment while a client sends as fast as it can, 3 runs: every acked message stored once, seqs
// gap-free, a reader sees every message once across the crash); a full disk (a small tmpfs)
// answers unavailable while the server keeps serving and counts it in /metrics. Also the
// embedding API's store.
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "chat/parley.h"
#include "tests/support/chat_test_support.h"
#include "tests/support/parleyd_process.h"
#include "tests/support/room_log_test_support.h"

namespace parley_test {
namespace {

using room_log_test::TempDir;

// parleyd on `store`, without the per-connection rate limit (the crash test floods).
std::unique_ptr<ParleydProcess> start_server(const std::string& store, std::vector<std::string> extra = {}) {
  std::vector<std::string> args{"--store", store, "--rate-limit", "0", "--drain-timeout", "200"};
  args.insert(args.end(), extra.begin(), extra.end());
  return std::make_unique<ParleydProcess>(args);
}

std::unique_ptr<ChatClient> client(uint16_t port, std::string_view name) {
  auto chat = std::make_unique<ChatClient>();
  EXPECT_TRUE(chat->connect(port));
  chat->hello(name);
  return chat;
}

// Rows of room `room` in the store file: seq -> client id, read with the SQLite API.
std::map<uint64_t, std::string> stored_rows(const std::string& path, const std::string& room) {
  std::map<uint64_t, std::string> rows;
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << "cannot open " << path;
    sqlite3_close(db);
    return rows;
  }
  sqlite3_stmt* statement = nullptr;
  const char* sql =
      "SELECT m.seq, m.client_id FROM messages m JOIN conversations c ON m.conversation = c.id "
      "WHERE c.name = ?1 ORDER BY m.seq";
  EXPECT_EQ(sqlite3_prepare_v2(db, sql, -1, &statement, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  sqlite3_bind_text(statement, 1, room.c_str(), -1, SQLITE_TRANSIENT);
  while (sqlite3_step(statement) == SQLITE_ROW) {
    auto seq = static_cast<uint64_t>(sqlite3_column_int64(statement, 0));
    const unsigned char* id = sqlite3_column_text(statement, 1);
    EXPECT_TRUE(rows.emplace(seq, id == nullptr ? "" : reinterpret_cast<const char*>(id)).second) << seq;
  }
  sqlite3_finalize(statement);
  sqlite3_close(db);
  return rows;
}

TEST(DurableStoreTest, OpenErrorsAreOneLineAndExitOne) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  std::string garbage = dir.file("garbage.db");
  std::ofstream(garbage) << std::string(8192, 'x');
  std::string newer = dir.file("newer.db");
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(newer.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE t(x); PRAGMA user_version = 999;", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  for (const std::string& path : {garbage, newer, dir.path() + "/missing/dir/x.db"}) {
    ParleydProcess server({"--store", path});
    EXPECT_FALSE(server.ok()) << path;
    EXPECT_EQ(server.status_text(), "exited with status 1") << path;
    std::string stderr_text = server.stderr_text();
    size_t line = stderr_text.find("parleyd: store ");
    ASSERT_NE(line, std::string::npos) << stderr_text;
    // One line, naming the file.
    EXPECT_NE(stderr_text.find(path, line), std::string::npos) << stderr_text;
    EXPECT_EQ(stderr_text.find('\n', line), stderr_text.size() - 1) << stderr_text;
  }
}

TEST(DurableStoreTest, HistorySeqsAndClientIdsSurviveARestart) {
  TempDir dir;
  std::string store = dir.file("parley.db");
  uint64_t first_ts = 0;
  {
    auto server = start_server(store);
    ASSERT_TRUE(server->ok()) << server->error();
    auto alice = client(server->port(), "alice");
    alice->join("lobby");
    for (int i = 1; i <= 3; ++i) {
      ASSERT_TRUE(alice->send(R"({"type":"msg","room":"lobby","text":"m)" + std::to_string(i) + R"(","id":"a)" +
                              std::to_string(i) + R"("})"));
      Json ack(alice->recv());
      ASSERT_EQ(ack.type(), "ack") << ack.raw;
      EXPECT_EQ(ack.num("seq"), static_cast<uint64_t>(i));
      if (i == 1) first_ts = ack.num("ts");
    }
    EXPECT_EQ(parleyd_metric(server->port(), "parley_store_messages_total"), 3);
    EXPECT_GE(parleyd_metric(server->port(), "parley_store_commits_total"), 1);
    EXPECT_EQ(server->stop(), 0);
  }
  auto server = start_server(store);
  ASSERT_TRUE(server->ok()) << server->error();
  auto bob = client(server->port(), "bob");
  Json history(bob->join("lobby"));
  EXPECT_EQ(seqs_of(history.messages()), (std::vector<uint64_t>{1, 2, 3}));
  ASSERT_EQ(history.messages().size(), 3u);
  EXPECT_EQ(history.messages()[0].text, "m1");
  ASSERT_TRUE(bob->send(R"({"type":"msg","room":"lobby","text":"m4"})"));
  EXPECT_EQ(Json(bob->recv()).num("seq"), 4u);
  // alice resends a1 (its ack was "lost"): the original ack, and bob gets nothing.
  auto alice = client(server->port(), "alice");
  alice->join("lobby");
  Json joined(bob->recv());
  EXPECT_EQ(joined.type(), "joined");
  ASSERT_TRUE(alice->send(R"({"type":"msg","room":"lobby","text":"m1","id":"a1"})"));
  Json again(alice->recv());
  EXPECT_EQ(again.type(), "ack");
  EXPECT_EQ(again.num("seq"), 1u);
  EXPECT_EQ(again.num("ts"), first_ts);
  bob->expect_quiet();
  // Recovery after the restart: since_seq 1 gets 2..4.
  Json recovered(bob->ws().send_frame(kOpText, R"({"type":"join","room":"lobby","since_seq":1})") ? bob->recv() : "");
  EXPECT_EQ(seqs_of(recovered.messages()), (std::vector<uint64_t>{2, 3, 4}));
  EXPECT_TRUE(recovered.boolean("recovered")) << recovered.raw;
  EXPECT_EQ(parleyd_metric(server->port(), "parley_store_duplicates_total"), 1);
}

// One crash run's clients: a writer sending numbered messages with ids, a reader recording
// every seq it sees (live or recovered).
struct CrashState {
  std::map<std::string, uint64_t> acked;   // client id -> seq
  std::vector<std::string> unacked;        // sent, no ack yet, in send order
  std::vector<uint64_t> reader_seen;       // every seq the reader got, in arrival order
  uint64_t writer_next = 0;
  size_t resent = 0;                       // ids sent again after a crash
};

// Reads what is there for the reader without waiting long; false when the connection died.
bool drain_reader(WsTestClient& reader, CrashState& state, milliseconds wait) {
  for (;;) {
    Received message = reader.recv_message(wait);
    if (message.status == RecvStatus::kTimeout) return true;
    if (!message.ok()) return false;
    Json json(message.payload);
    if (json.type() == "msg") {
      state.reader_seen.push_back(json.num("seq"));
    } else if (json.type() == "history") {
      for (uint64_t seq : seqs_of(json.messages())) state.reader_seen.push_back(seq);
    }
    wait = milliseconds(0);
  }
}

// Handles one writer reply; false when it is not an ack.
void take_ack(const Json& ack, CrashState& state) {
  ASSERT_EQ(ack.type(), "ack") << ack.raw;
  std::string id = ack.str("id");
  auto [it, inserted] = state.acked.emplace(id, ack.num("seq"));
  if (!inserted) {
    EXPECT_EQ(it->second, ack.num("seq")) << "two acks for " << id << " with different seqs";
  }
  std::erase(state.unacked, id);
}

TEST(DurableStoreTest, CrashTestEveryAckedMessageOnceAndNoGap) {
  TempDir dir;
  std::string store = dir.file("crash.db");
  CrashState state;
  const std::vector<std::string> keep_all{"--history-keep", "0", "--recovery-limit", "1000000"};
  std::mt19937 random(std::random_device{}());
  for (int run = 0; run < 3; ++run) {
    auto server = start_server(store, keep_all);
    ASSERT_TRUE(server->ok()) << server->error();
    // Reconnect: the reader recovers from the last seq it saw, the writer resends its unacked ids.
    WsTestClient reader;
    ASSERT_TRUE(reader.connect("127.0.0.1", server->port(), "/chat"));
    ASSERT_TRUE(reader.send_frame(kOpText, R"({"type":"hello","name":"reader"})"));
    ASSERT_EQ(Json(reader.recv_message(kChatTimeout).payload).type(), "welcome");
    uint64_t since = state.reader_seen.empty() ? 0 : state.reader_seen.back();
    ASSERT_TRUE(reader.send_frame(kOpText, R"({"type":"join","room":"crash","since_seq":)" + std::to_string(since) + "}"));
    Received recovery = reader.recv_message(kChatTimeout);
    ASSERT_TRUE(recovery.ok());
    Json recovered(recovery.payload);
    ASSERT_EQ(recovered.type(), "history") << recovered.raw;
    EXPECT_TRUE(recovered.boolean("recovered")) << recovered.raw;
    for (uint64_t seq : seqs_of(recovered.messages())) state.reader_seen.push_back(seq);

    WsTestClient writer;
    ASSERT_TRUE(writer.connect("127.0.0.1", server->port(), "/chat"));
    ASSERT_TRUE(writer.send_frame(kOpText, R"({"type":"hello","name":"writer"})"));
    ASSERT_EQ(Json(writer.recv_message(kChatTimeout).payload).type(), "welcome");
    ASSERT_TRUE(writer.send_frame(kOpText, R"({"type":"join","room":"crash","since_seq":0})"));
    ASSERT_EQ(Json(writer.recv_message(kChatTimeout).payload).type(), "history");
    state.resent += state.unacked.size();
    for (const std::string& id : std::vector<std::string>(state.unacked)) {
      ASSERT_TRUE(writer.send_frame(kOpText, R"({"type":"msg","room":"crash","text":"resend","id":")" + id + R"("})"));
    }
    // The last run is not killed: it ends with everything acked. In the others a thread
    // SIGKILLs parleyd at a random moment while this loop keeps sending: whatever was in
    // flight then is never acked and is resent in the next run.
    bool kill_this_run = run < 2;
    std::thread killer;
    if (kill_this_run) {
      milliseconds delay(100 + random() % 400);
      pid_t pid = server->pid();
      killer = std::thread([delay, pid] {
        std::this_thread::sleep_for(delay);
        ::kill(pid, SIGKILL);
      });
    }
    auto end_at = std::chrono::steady_clock::now() + milliseconds(kill_this_run ? 10000 : 600);
    bool alive = true;
    while (alive && std::chrono::steady_clock::now() < end_at) {
      // A window of 32 messages in flight, as fast as the acks come.
      while (state.unacked.size() < 32) {
        std::string id = "m" + std::to_string(state.writer_next++);
        state.unacked.push_back(id);
        if (!writer.send_frame(kOpText, R"({"type":"msg","room":"crash","text":"n","id":")" + id + R"("})")) {
          alive = false;
          break;
        }
      }
      Received reply = writer.recv_message(milliseconds(5));
      if (reply.ok()) {
        take_ack(Json(reply.payload), state);
      } else if (reply.status != RecvStatus::kTimeout) {
        alive = false;
      }
      if (!drain_reader(reader, state, milliseconds(0))) alive = false;
    }
    if (killer.joinable()) killer.join();
    EXPECT_EQ(alive, !kill_this_run) << "run " << run;
    if (!kill_this_run) {
      // Collect every outstanding ack and every delivery.
      auto deadline = std::chrono::steady_clock::now() + milliseconds(10000);
      while (!state.unacked.empty() && std::chrono::steady_clock::now() < deadline) {
        Received reply = writer.recv_message(milliseconds(200));
        if (reply.ok()) take_ack(Json(reply.payload), state);
      }
      EXPECT_TRUE(state.unacked.empty()) << state.unacked.size() << " never acked";
      ASSERT_TRUE(writer.send_frame(kOpText, R"({"type":"ping"})"));
      ASSERT_EQ(Json(writer.recv_message(kChatTimeout).payload).type(), "pong");
      ASSERT_TRUE(reader.send_frame(kOpText, R"({"type":"ping"})"));
      drain_reader(reader, state, milliseconds(500));
      EXPECT_EQ(server->stop(), 0);
    } else {
      // The connections died with the server; the reader's last deliveries were read above.
      server->stop();
    }
  }
  // Every acked message is stored exactly once, under its ack's seq, and the seqs have no gap.
  std::map<uint64_t, std::string> rows = stored_rows(store, "crash");
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows.begin()->first, 1u);
  EXPECT_EQ(rows.rbegin()->first, rows.size()) << "a gap in the seqs";
  std::set<std::string> ids;
  for (const auto& [seq, id] : rows) EXPECT_TRUE(ids.insert(id).second) << "stored twice: " << id;
  for (const auto& [id, seq] : state.acked) {
    auto row = rows.find(seq);
    ASSERT_NE(row, rows.end()) << id << " acked with seq " << seq << " but not stored";
    EXPECT_EQ(row->second, id);
  }
  EXPECT_EQ(state.acked.size(), rows.size());
  // The reader saw every message exactly once, in seq order.
  std::vector<uint64_t> expected;
  for (uint64_t seq = 1; seq <= rows.size(); ++seq) expected.push_back(seq);
  EXPECT_EQ(state.reader_seen, expected);
  RecordProperty("messages", static_cast<int>(rows.size()));
  RecordProperty("resent", static_cast<int>(state.resent));
  // Two kills while sending: what was in flight then was never acked and went again.
  EXPECT_GT(state.resent, 0u);
}

// A store on a 1 MiB tmpfs: once it is full, senders get unavailable, the server keeps serving
// and /metrics counts the failures.
TEST(DurableStoreTest, FullDiskAnswersUnavailableAndKeepsServing) {
  TempDir dir;
  std::string mount_point = dir.file("disk");
  ASSERT_EQ(::mkdir(mount_point.c_str(), 0700), 0);
  if (::mount("tmpfs", mount_point.c_str(), "tmpfs", 0, "size=1m") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs (" << std::strerror(errno) << "): disk-fault test skipped";
  }
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{mount_point};
  auto server = start_server(mount_point + "/parley.db", {"--max-text", "16K"});
  ASSERT_TRUE(server->ok()) << server->error();
  auto alice = client(server->port(), "alice");
  auto bob = client(server->port(), "bob");
  alice->join("lobby");
  bob->join("lobby");
  alice->recv();  // bob joined
  std::string text(12000, 'x');
  int acked = 0;
  int unavailable = 0;
  for (int i = 0; i < 400 && unavailable < 5; ++i) {
    ASSERT_TRUE(alice->send(R"({"type":"msg","room":"lobby","text":")" + text + R"(","id":"f)" + std::to_string(i) + R"("})"));
    Json reply(alice->recv(milliseconds(10000)));
    if (reply.type() == "ack") {
      ++acked;
    } else {
      EXPECT_EQ(reply.type(), "error") << reply.raw;
      EXPECT_EQ(reply.str("code"), "unavailable") << reply.raw;
      EXPECT_EQ(reply.str("id"), "f" + std::to_string(i));
      ++unavailable;
    }
  }
  EXPECT_GT(acked, 0);
  ASSERT_GE(unavailable, 5) << "the 1 MiB disk never filled";
  // bob got exactly the acked messages.
  int delivered = 0;
  for (;;) {
    Received message = bob->ws().recv_message(milliseconds(300));
    if (!message.ok()) break;
    if (Json(message.payload).type() == "msg") ++delivered;
  }
  EXPECT_EQ(delivered, acked);
  // Still serving: a new client, a join, a ping.
  auto carol = client(server->port(), "carol");
  carol->join("other");
  carol->sync();
  EXPECT_GE(parleyd_metric(server->port(), "parley_store_errors_total"), 1);
  EXPECT_GE(parleyd_metric(server->port(), "parley_chat_unavailable_total"), unavailable);
  EXPECT_EQ(parleyd_metric(server->port(), "parley_store_messages_total"), acked);
  EXPECT_GE(parleyd_metric(server->port(), "parley_store_queue_depth"), 0);
  EXPECT_NE(server->stderr_text().find("senders get 'unavailable'"), std::string::npos) << server->stderr_text();
}

TEST(DurableStoreTest, EmbeddingApiOpensTheStoreOrSaysWhy) {
  TempDir dir;
  std::ofstream(dir.file("bad.db")) << std::string(8192, 'x');
  parley::Config config;
  config.listen = "127.0.0.1:0";
  config.store = dir.file("bad.db");
  parley::Server bad(config);
  EXPECT_EQ(bad.start(), -EIO);
  EXPECT_NE(bad.error().find("store "), std::string::npos) << bad.error();
  config.store = dir.file("good.db");
  parley::Server good(config);
  EXPECT_EQ(good.start(), 0) << good.error();
  EXPECT_TRUE(good.error().empty());
  struct stat info;
  EXPECT_EQ(::stat(dir.file("good.db").c_str(), &info), 0);
}

}  // namespace
}  // namespace parley_test
