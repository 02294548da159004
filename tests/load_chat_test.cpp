#include "tools/load_chat.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "chat/chat_codec.h"

namespace tools {
namespace {

std::string stamped(uint64_t stamp_ns, size_t size) {
  std::string text(stamped_text_length(stamp_ns, size), '\0');
  text.resize(write_stamped_text(stamp_ns, size, text.data()));
  return text;
}

TEST(StampedText, RoundTripsEveryMagnitudeAndSize) {
  const std::vector<uint64_t> stamps = {0, 1, 9, 10, 999, 1'000'000'007, 5'820'123'456'789, UINT64_MAX - 1, UINT64_MAX};
  for (uint64_t stamp : stamps) {
    for (size_t size : {0, 1, 4, 20, 23, 24, 100, 1024}) {
      const std::string text = stamped(stamp, size);
      const std::string digits = std::to_string(stamp);
      EXPECT_EQ(text.size(), std::max(size, digits.size() + 3)) << stamp << " " << size;
      EXPECT_EQ(text.substr(0, digits.size() + 3), "t=" + digits + ";");
      EXPECT_EQ(text.find_first_not_of(kTextFiller, digits.size() + 3), std::string::npos) << text;
      uint64_t parsed = 1;
      ASSERT_TRUE(parse_stamp(text, parsed)) << text;
      EXPECT_EQ(parsed, stamp);
    }
  }
  EXPECT_EQ(stamped(42, 10), "t=42;xxxxx");
  EXPECT_EQ(stamped(123456, 3), "t=123456;");  // the stamp is never cut short
}

TEST(StampedText, ParseRejectsAnythingElse) {
  uint64_t stamp = 7;
  for (const char* text : {"", "t", "t=", "t=;", "t=12", "t=12x;", "t= 1;", "t=-1;", "T=1;", "x=1;", "tt=1;",
                           " t=1;", "t=18446744073709551616;", "t=99999999999999999999999;"}) {
    EXPECT_FALSE(parse_stamp(text, stamp)) << text;
  }
  EXPECT_EQ(stamp, 7u);  // untouched on failure
  EXPECT_TRUE(parse_stamp("t=007;", stamp));
  EXPECT_EQ(stamp, 7u);
  EXPECT_TRUE(parse_stamp("t=1;and then anything", stamp));
  EXPECT_EQ(stamp, 1u);
}

TEST(ServerMessages, ClassifiesEveryKindParleydWrites) {
  std::string m;
  chat::write_welcome(m, "alice");
  EXPECT_EQ(classify_server_message(m), ServerKind::kWelcome);
  m.clear();
  chat::write_presence(m, true, "lobby", "bob");
  EXPECT_EQ(classify_server_message(m), ServerKind::kJoined);
  m.clear();
  chat::write_presence(m, false, "lobby", "bob");
  EXPECT_EQ(classify_server_message(m), ServerKind::kLeft);
  m.clear();
  chat::write_msg(m, "lobby", "bob", "hi", 1, 2);
  EXPECT_EQ(classify_server_message(m), ServerKind::kMsg);
  m.clear();
  chat::write_ack(m, "c1", 2, 1);
  EXPECT_EQ(classify_server_message(m), ServerKind::kAck);
  m.clear();
  chat::write_error(m, chat::ChatError::kNameTaken, "taken", "");
  EXPECT_EQ(classify_server_message(m), ServerKind::kError);
  m.clear();
  chat::write_history_begin(m, "lobby");
  chat::write_history_end(m);
  EXPECT_EQ(classify_server_message(m), ServerKind::kHistory);
  m.clear();
  chat::write_pong(m, 1);
  EXPECT_EQ(classify_server_message(m), ServerKind::kOther);
  m.clear();
  chat::write_typing(m, "lobby", "bob", true);
  EXPECT_EQ(classify_server_message(m), ServerKind::kOther);
}

TEST(ServerMessages, OtherLayoutsFallBackToAKeySearch) {
  EXPECT_EQ(classify_server_message("{ \"seq\": 1, \"type\" : \"msg\", \"text\": \"t=5;\" }"), ServerKind::kMsg);
  // A value that looks like the key is skipped.
  EXPECT_EQ(classify_server_message("{\"room\":\"type\",\"type\":\"ack\"}"), ServerKind::kAck);
  EXPECT_EQ(classify_server_message("{\"type\":\"msg"), ServerKind::kOther);  // truncated
  EXPECT_EQ(classify_server_message("not json"), ServerKind::kOther);
  EXPECT_EQ(classify_server_message(""), ServerKind::kOther);
  EXPECT_EQ(string_field_tail("{\"a\":\"text\",\"text\": \"v\"}", "text"), "v\"}");
  EXPECT_EQ(string_field_tail("{\"text\":5}", "text"), "");
}

TEST(ServerMessages, FindsTheStampInParleydsMsg) {
  std::string m;
  chat::write_msg(m, "t=9", "t.x-1", stamped(5'820'123'456'789, 64), 1732190000000, 7);
  uint64_t stamp = 0;
  ASSERT_TRUE(find_stamp(m, stamp)) << m;
  EXPECT_EQ(stamp, 5'820'123'456'789u);
  EXPECT_TRUE(find_stamp("{\"type\": \"msg\", \"text\" : \"t=12;\"}", stamp));
  EXPECT_EQ(stamp, 12u);
  m.clear();
  chat::write_msg(m, "lobby", "bob", "no stamp t=1;", 1, 1);
  EXPECT_FALSE(find_stamp(m, stamp));
  EXPECT_FALSE(find_stamp("{\"type\":\"msg\"}", stamp));
}

TEST(ServerMessages, FieldEqualsMatchesWholeValuesOnly) {
  std::string m;
  chat::write_msg(m, "r-1", "u12_ab", "from \"u1\"", 1, 2);
  EXPECT_TRUE(field_equals(m, "from", "u12_ab"));
  EXPECT_FALSE(field_equals(m, "from", "u12"));
  EXPECT_FALSE(field_equals(m, "from", "u12_abc"));
  EXPECT_TRUE(field_equals(m, "room", "r-1"));
  EXPECT_FALSE(field_equals(m, "room", "r-"));
  EXPECT_FALSE(field_equals(m, "to", "u12_ab"));
  EXPECT_FALSE(field_equals("{\"from\":\"u1", "from", "u1"));  // truncated
}

TEST(ChatRoomPlan, UsersHaveDistinctRoomsAndRoomsEvenMembers) {
  for (const ChatRoomPlan plan : {ChatRoomPlan{1, 1, 1}, ChatRoomPlan{5, 3, 2}, ChatRoomPlan{7, 10, 3},
                                  ChatRoomPlan{100, 10, 10}, ChatRoomPlan{101, 7, 4}}) {
    std::vector<uint64_t> counted(plan.rooms, 0);
    for (uint64_t user = 0; user < plan.users; ++user) {
      std::vector<uint64_t> mine;
      for (uint64_t k = 0; k < plan.per_user; ++k) {
        const uint64_t room = plan.room_of(user, k);
        ASSERT_LT(room, plan.rooms);
        EXPECT_EQ(std::count(mine.begin(), mine.end(), room), 0) << "user " << user << " twice in " << room;
        mine.push_back(room);
        ++counted[room];
      }
    }
    uint64_t total = 0;
    for (uint64_t room = 0; room < plan.rooms; ++room) {
      EXPECT_EQ(plan.members(room), counted[room]) << plan.users << "/" << plan.rooms << "/" << plan.per_user;
      total += plan.members(room);
    }
    EXPECT_EQ(total, plan.users * plan.per_user);
    const auto [low, high] = std::minmax_element(counted.begin(), counted.end());
    EXPECT_LE(*high - *low, 1u);
  }
}

TEST(ChatUserChoices, IdleSecondsComeInTheirShare) {
  for (double share : {0.0, 0.1, 0.5, 0.9}) {
    uint64_t idle = 0;
    for (uint64_t user = 0; user < 200; ++user) {
      for (uint64_t second = 0; second < 100; ++second) idle += chat_user_idle(42, user, second, share) ? 1 : 0;
    }
    EXPECT_NEAR(static_cast<double>(idle) / 20000, share, 0.02) << share;
  }
  // The same answer in every process, and another for another run.
  EXPECT_EQ(chat_user_idle(7, 3, 9, 0.5), chat_user_idle(7, 3, 9, 0.5));
  uint64_t differ = 0;
  for (uint64_t user = 0; user < 100; ++user) differ += chat_user_idle(1, user, 0, 0.5) != chat_user_idle(2, user, 0, 0.5);
  EXPECT_GT(differ, 20u);
}

TEST(ChatUserChoices, ReconnectingUsersComeInTheirShareAtSpreadTimes) {
  for (double share : {0.0, 0.05, 0.5, 1.0}) {
    uint64_t chosen = 0;
    double earliest = 1, latest = 0;
    for (uint64_t user = 0; user < 10000; ++user) {
      double at = -1;
      if (!chat_user_reconnects(99, user, share, at)) continue;
      ++chosen;
      ASSERT_GE(at, 0.0);
      ASSERT_LT(at, 1.0);
      earliest = std::min(earliest, at);
      latest = std::max(latest, at);
    }
    EXPECT_NEAR(static_cast<double>(chosen) / 10000, share, 0.02) << share;
    if (share >= 0.5) {
      EXPECT_LT(earliest, 0.01);
      EXPECT_GT(latest, 0.99);
    }
  }
}

TEST(ClientMessages, AreWhatTheServerParserAccepts) {
  chat::ChatParser parser;
  chat::ClientMessage message;
  std::string hello;
  append_hello(hello, "s12_345_abcde");
  ASSERT_EQ(parser.parse(hello, 4096, message).error, chat::ChatError::kNone) << hello;
  EXPECT_EQ(message.type, chat::ClientType::kHello);
  EXPECT_EQ(message.name, "s12_345_abcde");
  std::string join;
  append_join(join, "#load-1");
  ASSERT_EQ(parser.parse(join, 4096, message).error, chat::ChatError::kNone) << join;
  EXPECT_EQ(message.type, chat::ClientType::kJoin);
  EXPECT_EQ(message.room, "#load-1");
  for (size_t size : {0, 20, 1024, 4096}) {
    std::string publish(publish_length("lobby", 99, size), '\0');
    ASSERT_EQ(write_publish("lobby", 99, size, publish.data()), publish.size());
    ASSERT_EQ(parser.parse(publish, 4096, message).error, chat::ChatError::kNone) << publish;
    EXPECT_EQ(message.type, chat::ClientType::kMsg);
    EXPECT_EQ(message.room, "lobby");
    EXPECT_EQ(message.text, stamped(99, size));
  }
}

TEST(ClientMessages, ResumeTokenAndIdsAreWhatTheServerParserAccepts) {
  chat::ChatParser parser;
  chat::ClientMessage message;
  std::string hello;
  append_hello(hello, "u0", "0000002a9f0c0000002a9f0c0000002a");
  ASSERT_EQ(parser.parse(hello, 4096, message).error, chat::ChatError::kNone) << hello;
  EXPECT_EQ(message.resume, "0000002a9f0c0000002a9f0c0000002a");
  // Ids of every length a user's counter reaches; 0 writes none.
  for (uint64_t id : {uint64_t{0}, uint64_t{1}, uint64_t{10}, uint64_t{123456789}, UINT64_MAX}) {
    std::string publish(publish_length("r-1", 99, 30, id), '\0');
    ASSERT_EQ(write_publish("r-1", 99, 30, publish.data(), id), publish.size());
    ASSERT_EQ(parser.parse(publish, 4096, message).error, chat::ChatError::kNone) << publish;
    EXPECT_EQ(message.id, id == 0 ? std::string() : std::to_string(id)) << publish;
    EXPECT_EQ(message.text, stamped(99, 30));
  }
}

TEST(ServerMessages, LastSeqFieldReadsAnAcksSeqAndAHistorysNewest) {
  std::string ack;
  chat::write_ack(ack, "17", 42, 1732190000000);
  EXPECT_EQ(last_seq_field(ack), 42u);
  std::string history;
  chat::write_history_begin(history, "r-0");
  EXPECT_EQ(last_seq_field(history + "]}"), 0u);  // an empty room: no seq yet
  chat::write_history_item(history, "u1", "t=5;\"seq\":99", 1, 7, true);  // the seq field follows the text
  chat::write_history_item(history, "u2", "t=6;", 2, 8, false);
  chat::write_history_end(history);
  EXPECT_EQ(last_seq_field(history), 8u);
}

}  // namespace
}  // namespace tools
