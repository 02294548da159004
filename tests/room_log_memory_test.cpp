// The memory engine (chat/store/memory_room_log.h) and the room-log helpers; the behaviour it
// shares with SQLite is in room_log_contract_test.cpp.
#include "chat/store/memory_room_log.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>

#include "tests/support/room_log_test_support.h"

namespace {

using chat::LogStatus;
using room_log_test::message;

std::atomic<uint64_t> fake_now{0};
uint64_t fake_clock() { return fake_now.load(); }

TEST(RoomLogKeys, DmConversationIsOnePerPairWhateverTheOrderAndCase) {
  EXPECT_EQ(chat::dm_conversation("bob", "alice"), "dm:alice:bob");
  EXPECT_EQ(chat::dm_conversation("Alice", "BOB"), "dm:alice:bob");
  EXPECT_NE(chat::dm_conversation("alice", "bob"), chat::dm_conversation("alice", "bobby"));
  EXPECT_EQ(chat::dm_conversation("x.y", "x"), "dm:x:x.y");
  EXPECT_EQ(chat::user_key("MiXed_Case-1"), "mixed_case-1");
  EXPECT_STREQ(chat::log_status_name(LogStatus::kUnavailable), "unavailable");
  EXPECT_STREQ(chat::log_status_name(LogStatus::kDuplicate), "duplicate");
}

TEST(MemoryRoomLog, CompletesInsideTheCall) {
  chat::MemoryRoomLog log(chat::RoomLogConfig{});
  room_log_test::RecordingClient client;
  log.set_client(&client);
  EXPECT_EQ(log.append(message("general", "alice", 5, "hi", "c1", 3)), chat::Submit::kAccepted);
  ASSERT_EQ(client.appended.size(), 1u);
  EXPECT_EQ(client.appended[0].seq, 1u);
  EXPECT_EQ(client.appended[0].request.cookie, 3u);
  EXPECT_EQ(log.since("general", 0, 10, 0), chat::Submit::kAccepted);
  ASSERT_EQ(client.reads.size(), 1u);
  EXPECT_EQ(client.reads[0].messages.size(), 1u);
  EXPECT_EQ(log.stats().queue_limit, 0u);
  log.set_client(nullptr);  // completions are dropped, seqs still advance
  log.append(message("general", "alice", 6, "hi"));
  EXPECT_EQ(log.last_seq("general"), 2u);
}

TEST(MemoryRoomLog, MaxAgeDropsOldMessagesButNeverTheSeq) {
  chat::RoomLogConfig config;
  config.max_age_ms = 1000;
  config.wall_clock_ms = fake_clock;
  fake_now = 10'000;
  chat::MemoryRoomLog log(config);
  room_log_test::RecordingClient client;
  log.set_client(&client);
  log.append(message("general", "alice", 9'500, "old"));
  log.append(message("general", "alice", 10'000, "new"));
  fake_now = 10'800;  // "old" is now 1300 ms old
  log.history("general", 0, 0, 0);
  ASSERT_EQ(client.reads.back().messages.size(), 1u);
  EXPECT_EQ(client.reads.back().messages[0].text, "new");
  fake_now = 20'000;
  log.since("general", 0, 0, 0);
  EXPECT_TRUE(client.reads.back().messages.empty());
  EXPECT_FALSE(client.reads.back().complete);
  log.append(message("general", "alice", 20'000, "later"));
  EXPECT_EQ(client.appended.back().seq, 3u);
}

TEST(MemoryRoomLog, ClientIdsAreForgottenAfterTheDedupWindow) {
  chat::RoomLogConfig config;
  config.dedup_window_ms = 60'000;
  config.wall_clock_ms = fake_clock;
  fake_now = 100'000;
  chat::MemoryRoomLog log(config);
  room_log_test::RecordingClient client;
  log.set_client(&client);
  log.append(message("general", "alice", 100'000, "hi", "c1"));
  fake_now = 159'000;
  log.append(message("general", "alice", 159'000, "hi", "c1"));
  EXPECT_EQ(client.appended.back().status, LogStatus::kDuplicate);
  fake_now = 161'000;
  log.append(message("general", "alice", 161'000, "hi", "c1"));
  EXPECT_EQ(client.appended.back().status, LogStatus::kOk);
  EXPECT_EQ(client.appended.back().seq, 2u);
}

TEST(MemoryRoomLog, HistoryKeepZeroMeansNoCountLimit) {
  chat::RoomLogConfig config;
  config.history_keep = 0;
  chat::MemoryRoomLog log(config);
  room_log_test::RecordingClient client;
  log.set_client(&client);
  for (int i = 0; i < 300; ++i) log.append(message("general", "alice", 1, "a"));
  log.since("general", 0, 0, 0);
  EXPECT_EQ(client.reads.back().messages.size(), 300u);
  EXPECT_TRUE(client.reads.back().complete);
}

}  // namespace
