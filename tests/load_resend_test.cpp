// parley-load chat's resends (issue 14 "Exactly-once sends") against a real parleyd with a
// --store file: users drop their connections abruptly (--reconnect-abrupt: an RST, messages in
// flight), or parleyd is killed with SIGKILL and restarted on the same store; each user comes
// back, rejoins and resends what was not acked with the same ids. Then the store, read with
// sqlite3 once parleyd stopped, holds every message parley-load counted as acked exactly once:
// per user the ids 1..n, each once, and n summed over the users equals "acked".
#include <signal.h>
#include <sqlite3.h>

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "tests/support/load_run.h"
#include "tests/support/parleyd_process.h"
#include "tests/support/room_log_test_support.h"

namespace {

using parley_test::json_number;
using parley_test::LoadRun;
using parley_test::ParleydProcess;

// What the store holds: rows in all, and whether every sender's ids are exactly 1..n, once each.
struct StoredIds {
  int64_t rows = -1;
  int64_t senders = 0;
  bool each_once = false;
  std::string detail;  // the first sender that breaks the rule
};

StoredIds read_stored_ids(const std::string& path) {
  StoredIds ids;
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    ids.detail = "cannot open " + path;
    sqlite3_close(db);
    return ids;
  }
  sqlite3_stmt* statement = nullptr;
  const char* sql =
      "SELECT sender, COUNT(*), COUNT(DISTINCT client_id), MAX(CAST(client_id AS INTEGER)), "
      "SUM(client_id IS NULL) FROM messages GROUP BY sender";
  if (sqlite3_prepare_v2(db, sql, -1, &statement, nullptr) != SQLITE_OK) {
    ids.detail = sqlite3_errmsg(db);
    sqlite3_close(db);
    return ids;
  }
  ids.rows = 0;
  ids.each_once = true;
  while (sqlite3_step(statement) == SQLITE_ROW) {
    const std::string sender = reinterpret_cast<const char*>(sqlite3_column_text(statement, 0));
    const int64_t count = sqlite3_column_int64(statement, 1);
    const int64_t distinct = sqlite3_column_int64(statement, 2);
    const int64_t max_id = sqlite3_column_int64(statement, 3);
    const int64_t no_id = sqlite3_column_int64(statement, 4);
    ids.rows += count;
    ++ids.senders;
    if (ids.each_once && (count != distinct || count != max_id || no_id != 0)) {
      ids.each_once = false;
      ids.detail = sender + ": " + std::to_string(count) + " rows, " + std::to_string(distinct) +
                   " distinct ids, highest " + std::to_string(max_id) + ", " + std::to_string(no_id) + " without id";
    }
  }
  sqlite3_finalize(statement);
  sqlite3_close(db);
  return ids;
}

// The store check shared by both tests: every acked msg stored once, nothing else stored.
void expect_acked_stored_once(const LoadRun& run, const std::string& store, int users) {
  const StoredIds ids = read_stored_ids(store);
  ASSERT_GE(ids.rows, 0) << ids.detail;
  EXPECT_EQ(ids.senders, users);
  EXPECT_TRUE(ids.each_once) << ids.detail;
  EXPECT_EQ(static_cast<double>(ids.rows), json_number(run.json, "acked")) << run.output;
  EXPECT_EQ(json_number(run.json, "acked"), json_number(run.json, "published")) << run.output;
  EXPECT_EQ(json_number(run.json, "never_acked"), 0) << run.output;
  EXPECT_EQ(json_number(run.json, "refused"), 0) << run.output;
}

TEST(LoadResend, AbruptReconnectsResendAndTheStoreHoldsEachAckedMessageOnce) {
  room_log_test::TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string store = dir.file("parley.db");
  // The default resume window: a dropped user is held, and its hello with the token takes over.
  ParleydProcess server({"--store", store, "--resume-window", "120"});
  ASSERT_TRUE(server.ok()) << server.error();
  const LoadRun run = parley_test::run_load(
      {"chat", "--url", "ws://127.0.0.1:" + std::to_string(server.port()) + "/chat", "-c", "12", "--rooms", "3",
       "--rooms-per-user", "2", "--user-rate", "20", "--reconnect-share", "1", "--reconnect-abrupt", "--duration",
       "1.5", "--quiet"});
  ASSERT_NE(run.exit_code, -1) << run.output;  // it finished; the store is checked either way
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(json_number(run.json, "reconnects_planned"), 12);
  EXPECT_EQ(json_number(run.json, "reconnects"), 12) << run.output;
  EXPECT_EQ(json_number(run.json, "closes_clean"), 0) << run.output;  // no close frame: RSTs
  // Each drop leaves at least the msg sent just before it unacked.
  EXPECT_GE(json_number(run.json, "resends"), 12) << run.output;
  EXPECT_LE(json_number(run.json, "duplicate_acks"), json_number(run.json, "resends")) << run.output;
  EXPECT_EQ(json_number(run.json, "total"), 0) << run.output;
  EXPECT_EQ(server.stop(), 0) << server.stderr_text();
  expect_acked_stored_once(run, store, 12);
}

TEST(LoadResend, ServerKilledAndRestartedOnTheSameStoreUsersComeBackAndResend) {
  room_log_test::TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string store = dir.file("parley.db");
  auto first = std::make_unique<ParleydProcess>(std::vector<std::string>{"--store", store});
  ASSERT_TRUE(first->ok()) << first->error();
  const std::string port = std::to_string(first->port());
  const parley_test::LoadProcess load = parley_test::start_load(
      {"chat", "--url", "ws://127.0.0.1:" + port + "/chat", "-c", "12", "--rooms", "3", "--rooms-per-user", "2",
       "--user-rate", "20", "--duration", "3", "--quiet"});
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  kill(first->pid(), SIGKILL);  // no clean shutdown: whatever was not committed is lost
  first.reset();
  ParleydProcess second({"--listen", "127.0.0.1:" + port, "--store", store});
  ASSERT_TRUE(second.ok()) << second.error();
  const LoadRun run = parley_test::wait_load(load);
  // Exit 1: the losses are errors. They are the only ones: each connection lost once (closed),
  // and perhaps connects refused while the new server was not listening yet.
  ASSERT_EQ(run.exit_code, 1) << run.output;
  EXPECT_EQ(json_number(run.json, "closed"), 12) << run.output;
  EXPECT_EQ(json_number(run.json, "total"), 12 + json_number(run.json, "connect")) << run.output;
  // Every user lost its connection and came back to the new server.
  EXPECT_EQ(json_number(run.json, "connections_lost"), 12) << run.output;
  EXPECT_EQ(json_number(run.json, "reconnects"), 12) << run.output;
  EXPECT_EQ(second.stop(), 0) << second.stderr_text();
  expect_acked_stored_once(run, store, 12);
}

}  // namespace
