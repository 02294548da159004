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

}  // namespace
}  // namespace tools
