// The chat codec's issue-14 additions: join since_seq, history with (a DM conversation), the
// unavailable error code, the dm seq and the recovery fields of a history reply.
#include <gtest/gtest.h>

#include <string>

#include "chat/chat_codec.h"

namespace {

using chat::ChatError;
using chat::ChatParser;
using chat::ClientMessage;
using chat::ClientType;

TEST(DurableCodecTest, JoinSinceSeq) {
  ChatParser parser;
  ClientMessage message;
  ASSERT_EQ(parser.parse(R"({"type":"join","room":"lobby","since_seq":41})", 4096, message).error, ChatError::kNone);
  EXPECT_EQ(message.type, ClientType::kJoin);
  EXPECT_TRUE(message.has_since_seq);
  EXPECT_EQ(message.since_seq, 41u);
  ASSERT_EQ(parser.parse(R"({"type":"join","room":"lobby","since_seq":0})", 4096, message).error, ChatError::kNone);
  EXPECT_TRUE(message.has_since_seq);
  EXPECT_EQ(message.since_seq, 0u);
  ASSERT_EQ(parser.parse(R"({"type":"join","room":"lobby"})", 4096, message).error, ChatError::kNone);
  EXPECT_FALSE(message.has_since_seq);
  for (const char* bad : {R"({"type":"join","room":"x","since_seq":-1})", R"({"type":"join","room":"x","since_seq":"4"})",
                          R"({"type":"join","room":"x","since_seq":1.5})"}) {
    chat::ParseResult result = parser.parse(bad, 4096, message);
    EXPECT_EQ(result.error, ChatError::kMissingField) << bad;
    EXPECT_NE(std::string(result.reason).find("since_seq"), std::string::npos) << result.reason;
  }
  EXPECT_EQ(parser.parse(R"({"type":"join","room":"x","since_seq":1,"since_seq":2})", 4096, message).error,
            ChatError::kBadJson);
}

TEST(DurableCodecTest, HistoryWith) {
  ChatParser parser;
  ClientMessage message;
  ASSERT_EQ(parser.parse(R"({"type":"history","with":"bob","limit":5})", 4096, message).error, ChatError::kNone);
  EXPECT_EQ(message.with, "bob");
  EXPECT_TRUE(message.room.empty());
  EXPECT_EQ(message.limit, 5u);
  EXPECT_EQ(parser.parse(R"({"type":"history","with":"no body"})", 4096, message).error, ChatError::kInvalidName);
  EXPECT_EQ(parser.parse(R"({"type":"history","with":7})", 4096, message).error, ChatError::kMissingField);  // wrong JSON type
  // room wins when both are given; neither is a missing room.
  ASSERT_EQ(parser.parse(R"({"type":"history","room":"r","with":"bob"})", 4096, message).error, ChatError::kNone);
  EXPECT_EQ(message.room, "r");
  EXPECT_TRUE(message.with.empty());
  EXPECT_EQ(parser.parse(R"({"type":"history"})", 4096, message).error, ChatError::kMissingField);
}

TEST(DurableCodecTest, Writers) {
  EXPECT_EQ(chat::chat_error_code(ChatError::kUnavailable), "unavailable");
  std::string out;
  chat::write_dm(out, "alice", "bob", "hi", 5, 3);
  EXPECT_EQ(out, R"({"type":"dm","from":"alice","to":"bob","text":"hi","ts":5,"seq":3})");
  out.clear();
  chat::write_dm(out, "alice", "bob", "hi", 5);
  EXPECT_EQ(out, R"({"type":"dm","from":"alice","to":"bob","text":"hi","ts":5})");
  out.clear();
  chat::write_history_begin(out, "lobby");
  chat::write_history_item(out, "a", "x", 1, 42, true);
  chat::write_history_end_recovery(out, true, 0);
  EXPECT_EQ(out, R"({"type":"history","room":"lobby","messages":[{"from":"a","text":"x","ts":1,"seq":42}],"recovered":true})");
  out.clear();
  chat::write_history_begin_dm(out, "bob");
  chat::write_history_end_recovery(out, false, 2003);
  EXPECT_EQ(out, R"({"type":"history","with":"bob","messages":[],"recovered":false,"first_seq":2003})");
}

}  // namespace
