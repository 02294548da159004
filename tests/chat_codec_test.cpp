// Tests for the chat wire-protocol codec (chat/chat_codec.h): client message parsing and
// validation, and byte-exact server message writers that round-trip through simdjson.
#include "chat/chat_codec.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace chat {
namespace {

using namespace std::string_literals;

constexpr size_t kLimit = 4096;

class ChatCodecTest : public ::testing::Test {
 protected:
  ParseResult parse(std::string_view json, size_t max_text_bytes = kLimit) {
    return parser_.parse(json, max_text_bytes, message_);
  }

  ChatParser parser_;
  ClientMessage message_;
};

std::string json_quoted(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Every client type, valid.

TEST_F(ChatCodecTest, Hello) {
  ParseResult r = parse(R"({"type":"hello","name":"alice"})");
  ASSERT_EQ(r.error, ChatError::kNone) << r.reason;
  EXPECT_EQ(message_.type, ClientType::kHello);
  EXPECT_EQ(message_.name, "alice");
  EXPECT_TRUE(message_.id.empty());
  EXPECT_TRUE(r.id.empty());
}

TEST_F(ChatCodecTest, JoinLeaveWho) {
  ASSERT_EQ(parse(R"({"type":"join","room":"lobby"})").error, ChatError::kNone);
  EXPECT_EQ(message_.type, ClientType::kJoin);
  EXPECT_EQ(message_.room, "lobby");
  ASSERT_EQ(parse(R"({"type":"leave","room":"#lobby"})").error, ChatError::kNone);
  EXPECT_EQ(message_.type, ClientType::kLeave);
  EXPECT_EQ(message_.room, "#lobby");
  ASSERT_EQ(parse(R"({"type":"who","room":"lobby"})").error, ChatError::kNone);
  EXPECT_EQ(message_.type, ClientType::kWho);
  EXPECT_EQ(message_.room, "lobby");
}

// Issue 18: a who page (limit, after) and the batched presence event.
TEST_F(ChatCodecTest, WhoPage) {
  ASSERT_EQ(parse(R"({"type":"who","room":"lobby","limit":20,"after":"bob"})").error, ChatError::kNone);
  EXPECT_EQ(message_.type, ClientType::kWho);
  EXPECT_EQ(message_.limit, 20u);
  EXPECT_EQ(message_.after, "bob");
  ASSERT_EQ(parse(R"({"type":"who","room":"lobby"})").error, ChatError::kNone);
  EXPECT_EQ(message_.limit, 0u);
  EXPECT_TRUE(message_.after.empty());
  for (std::string_view bad : {R"({"type":"who","room":"r","limit":0})", R"({"type":"who","room":"r","limit":1001})",
                               R"({"type":"who","room":"r","limit":"5"})", R"({"type":"who","room":"r","after":5})",
                               R"({"type":"who","room":"r","after":"a b"})", R"({"type":"who","room":"r","after":""})"}) {
    ParseResult r = parse(bad);
    EXPECT_EQ(r.error, ChatError::kMissingField) << bad;
    EXPECT_FALSE(r.reason.empty()) << bad;
  }
  // "after" belongs to who: other types ignore it.
  EXPECT_EQ(parse(R"({"type":"join","room":"r","after":5})").error, ChatError::kNone);
}

TEST_F(ChatCodecTest, MembersEventAndPagedWhoEnd) {
  std::string out;
  std::vector<std::string_view> joined{"alice", "b\"ob"};
  std::vector<std::string_view> left{"carol"};
  write_members(out, "lobby", {joined, left, {}, {}}, 12);
  EXPECT_EQ(out, R"({"type":"members","room":"lobby","joined":["alice","b\"ob"],"left":["carol"],"count":12})");
  out.clear();
  write_members(out, "lobby", {}, 0);
  EXPECT_EQ(out, R"({"type":"members","room":"lobby","joined":[],"left":[],"count":0})");
  out.clear();
  std::vector<std::string_view> away{"dave"};
  std::vector<std::string_view> back{"erin", "frank"};
  write_members(out, "lobby", {{}, {}, away, back}, 12);
  EXPECT_EQ(out, R"({"type":"members","room":"lobby","joined":[],"left":[],"away":["dave"],"back":["erin","frank"],"count":12})");
  out.clear();
  write_members_counts(out, "big", {57, 3, 0, 0}, 10000);
  EXPECT_EQ(out, R"({"type":"members","room":"big","joined_count":57,"left_count":3,"count":10000})");
  out.clear();
  write_members_counts(out, "big", {0, 0, 4000, 2}, 10000);
  EXPECT_EQ(out, R"({"type":"members","room":"big","joined_count":0,"left_count":0,"away_count":4000,"back_count":2,"count":10000})");
  out.clear();
  write_who_begin(out, "big");
  write_who_user(out, "a", true);
  write_who_end_paged(out, 2000, "a");
  EXPECT_EQ(out, R"({"type":"who","room":"big","users":["a"],"count":2000,"next":"a"})");
  out.clear();
  write_who_begin(out, "big");
  write_who_end_paged(out, 0, {});
  EXPECT_EQ(out, R"({"type":"who","room":"big","users":[],"count":0})");
}

TEST_F(ChatCodecTest, Msg) {
  ParseResult r = parse(R"({"type":"msg","room":"lobby","text":"hi","id":"c1"})");
  ASSERT_EQ(r.error, ChatError::kNone) << r.reason;
  EXPECT_EQ(message_.type, ClientType::kMsg);
  EXPECT_EQ(message_.room, "lobby");
  EXPECT_EQ(message_.text, "hi");
  EXPECT_EQ(message_.id, "c1");
  EXPECT_EQ(r.id, "c1");
}

TEST_F(ChatCodecTest, Dm) {
  ParseResult r = parse(R"({"type":"dm","to":"bob","text":"psst","id":"c2"})");
  ASSERT_EQ(r.error, ChatError::kNone) << r.reason;
  EXPECT_EQ(message_.type, ClientType::kDm);
  EXPECT_EQ(message_.to, "bob");
  EXPECT_EQ(message_.text, "psst");
  EXPECT_EQ(message_.id, "c2");
}

TEST_F(ChatCodecTest, Typing) {
  ASSERT_EQ(parse(R"({"type":"typing","room":"lobby","on":true})").error, ChatError::kNone);
  EXPECT_EQ(message_.type, ClientType::kTyping);
  EXPECT_EQ(message_.room, "lobby");
  EXPECT_TRUE(message_.on);
  ASSERT_EQ(parse(R"({"type":"typing","room":"lobby","on":false})").error, ChatError::kNone);
  EXPECT_FALSE(message_.on);
}

TEST_F(ChatCodecTest, History) {
  ASSERT_EQ(parse(R"({"type":"history","room":"lobby","before_seq":7,"limit":20})").error, ChatError::kNone);
  EXPECT_EQ(message_.type, ClientType::kHistory);
  EXPECT_EQ(message_.room, "lobby");
  EXPECT_EQ(message_.before_seq, 7u);
  EXPECT_EQ(message_.limit, 20u);

  ASSERT_EQ(parse(R"({"type":"history","room":"lobby"})").error, ChatError::kNone);
  EXPECT_EQ(message_.before_seq, 0u);
  EXPECT_EQ(message_.limit, 0u);

  ASSERT_EQ(parse(R"({"type":"history","room":"a","limit":1})").error, ChatError::kNone);
  EXPECT_EQ(message_.limit, 1u);
  ASSERT_EQ(parse(R"({"type":"history","room":"a","limit":1000})").error, ChatError::kNone);
  EXPECT_EQ(message_.limit, 1000u);
  ASSERT_EQ(parse(R"({"type":"history","room":"a","before_seq":18446744073709551615})").error, ChatError::kNone);
  EXPECT_EQ(message_.before_seq, std::numeric_limits<uint64_t>::max());
  ASSERT_EQ(parse(R"({"type":"history","room":"a","before_seq":0})").error, ChatError::kNone);
  EXPECT_EQ(message_.before_seq, 0u);
}

TEST_F(ChatCodecTest, Ping) {
  ASSERT_EQ(parse(R"({"type":"ping"})").error, ChatError::kNone);
  EXPECT_EQ(message_.type, ClientType::kPing);
  ParseResult r = parse(R"({"type":"ping","id":"p1"})");
  ASSERT_EQ(r.error, ChatError::kNone);
  EXPECT_EQ(message_.id, "p1");
  EXPECT_EQ(r.id, "p1");
}

TEST_F(ChatCodecTest, WhitespaceAndFieldOrderDoNotMatter) {
  ParseResult r = parse(" \n{ \"text\" : \"hi\" ,\t\"id\":\"c1\", \"room\":\"lobby\", \"type\" : \"msg\" } \r\n");
  ASSERT_EQ(r.error, ChatError::kNone) << r.reason;
  EXPECT_EQ(message_.type, ClientType::kMsg);
  EXPECT_EQ(message_.room, "lobby");
  EXPECT_EQ(message_.text, "hi");
  EXPECT_EQ(message_.id, "c1");
}

TEST_F(ChatCodecTest, UnknownFieldsAreIgnored) {
  ParseResult r = parse(R"({"type":"join","room":"lobby","x":{"y":[1,2.5,null,{"z":"w"}]},"v":2,"w":null})");
  ASSERT_EQ(r.error, ChatError::kNone) << r.reason;
  EXPECT_EQ(message_.room, "lobby");
  // Fields of other types are not validated either.
  ASSERT_EQ(parse(R"({"type":"ping","room":5,"text":"","name":"bad name","limit":0})").error, ChatError::kNone);
  // A repeated unknown field is not ambiguous for us.
  ASSERT_EQ(parse(R"({"type":"ping","x":1,"x":2})").error, ChatError::kNone);
}

TEST_F(ChatCodecTest, FieldsOfOtherTypesAreLeftEmpty) {
  ASSERT_EQ(parse(R"({"type":"join","room":"lobby","text":"t","name":"n","to":"x","on":true,"limit":5})").error,
            ChatError::kNone);
  EXPECT_TRUE(message_.text.empty());
  EXPECT_TRUE(message_.name.empty());
  EXPECT_TRUE(message_.to.empty());
  EXPECT_FALSE(message_.on);
  EXPECT_EQ(message_.limit, 0u);
}

TEST_F(ChatCodecTest, PreviousMessageIsCleared) {
  ASSERT_EQ(parse(R"({"type":"msg","room":"lobby","text":"hi","id":"c1"})").error, ChatError::kNone);
  ASSERT_EQ(parse(R"({"type":"ping"})").error, ChatError::kNone);
  EXPECT_TRUE(message_.room.empty());
  EXPECT_TRUE(message_.text.empty());
  EXPECT_TRUE(message_.id.empty());
}

// ---------------------------------------------------------------------------------------------
// Missing and wrong-typed fields.

struct FieldCase {
  const char* json;
  ChatError error;
  const char* reason_contains;  // the field the reason must name
};

class ChatFieldErrorTest : public ChatCodecTest, public ::testing::WithParamInterface<FieldCase> {};

TEST_P(ChatFieldErrorTest, Rejected) {
  const FieldCase& c = GetParam();
  ParseResult r = parse(c.json);
  EXPECT_EQ(r.error, c.error) << c.json << " -> " << chat_error_code(r.error) << ": " << r.reason;
  EXPECT_NE(r.reason.find(c.reason_contains), std::string_view::npos) << c.json << " -> " << r.reason;
}

INSTANTIATE_TEST_SUITE_P(
    MissingOrWrongType, ChatFieldErrorTest,
    ::testing::Values(
        FieldCase{R"({"type":"hello"})", ChatError::kMissingField, "name"},
        FieldCase{R"({"type":"hello","name":5})", ChatError::kMissingField, "name"},
        FieldCase{R"({"type":"hello","name":null})", ChatError::kMissingField, "name"},
        FieldCase{R"({"type":"hello","name":["alice"]})", ChatError::kMissingField, "name"},
        FieldCase{R"({"type":"join"})", ChatError::kMissingField, "room"},
        FieldCase{R"({"type":"join","room":1})", ChatError::kMissingField, "room"},
        FieldCase{R"({"type":"leave"})", ChatError::kMissingField, "room"},
        FieldCase{R"({"type":"leave","room":{}})", ChatError::kMissingField, "room"},
        FieldCase{R"({"type":"who"})", ChatError::kMissingField, "room"},
        FieldCase{R"({"type":"who","room":true})", ChatError::kMissingField, "room"},
        FieldCase{R"({"type":"history"})", ChatError::kMissingField, "room"},
        FieldCase{R"({"type":"history","room":false})", ChatError::kMissingField, "room"},
        FieldCase{R"({"type":"msg","text":"hi"})", ChatError::kMissingField, "room"},
        FieldCase{R"({"type":"msg","room":2,"text":"hi"})", ChatError::kMissingField, "room"},
        FieldCase{R"({"type":"msg","room":"lobby"})", ChatError::kMissingField, "text"},
        FieldCase{R"({"type":"msg","room":"lobby","text":5})", ChatError::kMissingField, "text"},
        FieldCase{R"({"type":"msg","room":"lobby","text":null})", ChatError::kMissingField, "text"},
        FieldCase{R"({"type":"msg","room":"lobby","text":""})", ChatError::kMissingField, "text"},
        FieldCase{R"({"type":"dm","text":"hi"})", ChatError::kMissingField, "to"},
        FieldCase{R"({"type":"dm","to":["bob"],"text":"hi"})", ChatError::kMissingField, "to"},
        FieldCase{R"({"type":"dm","to":"bob"})", ChatError::kMissingField, "text"},
        FieldCase{R"({"type":"dm","to":"bob","text":{}})", ChatError::kMissingField, "text"},
        FieldCase{R"({"type":"dm","to":"bob","text":""})", ChatError::kMissingField, "text"},
        FieldCase{R"({"type":"typing","on":true})", ChatError::kMissingField, "room"},
        FieldCase{R"({"type":"typing","room":"lobby"})", ChatError::kMissingField, "on"},
        FieldCase{R"({"type":"typing","room":"lobby","on":"yes"})", ChatError::kMissingField, "on"},
        FieldCase{R"({"type":"typing","room":"lobby","on":1})", ChatError::kMissingField, "on"},
        FieldCase{R"({"type":"typing","room":"lobby","on":null})", ChatError::kMissingField, "on"},
        FieldCase{R"({"type":"history","room":"a","before_seq":-1})", ChatError::kMissingField, "before_seq"},
        FieldCase{R"({"type":"history","room":"a","before_seq":1.5})", ChatError::kMissingField, "before_seq"},
        FieldCase{R"({"type":"history","room":"a","before_seq":7.0})", ChatError::kMissingField, "before_seq"},
        FieldCase{R"({"type":"history","room":"a","before_seq":"7"})", ChatError::kMissingField, "before_seq"},
        FieldCase{R"({"type":"history","room":"a","before_seq":null})", ChatError::kMissingField, "before_seq"},
        FieldCase{R"({"type":"history","room":"a","limit":0})", ChatError::kMissingField, "limit"},
        FieldCase{R"({"type":"history","room":"a","limit":1001})", ChatError::kMissingField, "limit"},
        FieldCase{R"({"type":"history","room":"a","limit":-3})", ChatError::kMissingField, "limit"},
        FieldCase{R"({"type":"history","room":"a","limit":"5"})", ChatError::kMissingField, "limit"},
        FieldCase{R"({"type":"history","room":"a","limit":2.0})", ChatError::kMissingField, "limit"},
        FieldCase{R"({"type":"history","room":"a","limit":4294967297})", ChatError::kMissingField, "limit"},
        FieldCase{R"({"type":"ping","id":5})", ChatError::kMissingField, "id"},
        FieldCase{R"({"type":"msg","room":"a","text":"t","id":null})", ChatError::kMissingField, "id"},
        FieldCase{R"({"type":"msg","room":"a","text":"t","id":{"x":1}})", ChatError::kMissingField, "id"},
        // Type problems.
        FieldCase{R"({})", ChatError::kUnknownType, "type"},
        FieldCase{R"({"room":"lobby"})", ChatError::kUnknownType, "type"},
        FieldCase{R"({"type":5})", ChatError::kUnknownType, "type"},
        FieldCase{R"({"type":null})", ChatError::kUnknownType, "type"},
        FieldCase{R"({"type":["msg"]})", ChatError::kUnknownType, "type"},
        FieldCase{R"({"type":"nope"})", ChatError::kUnknownType, "type"},
        FieldCase{R"({"type":""})", ChatError::kUnknownType, "type"},
        FieldCase{R"({"type":"MSG"})", ChatError::kUnknownType, "type"},
        FieldCase{R"({"type":"msg "})", ChatError::kUnknownType, "type"},
        FieldCase{R"({"type":"pin"})", ChatError::kUnknownType, "type"},
        FieldCase{R"({"type":"pings"})", ChatError::kUnknownType, "type"},
        FieldCase{R"({"Type":"ping"})", ChatError::kUnknownType, "type"}));

TEST_F(ChatCodecTest, HistoryNumberBeyondUint64IsRejected) {
  ParseResult r = parse(R"({"type":"history","room":"a","before_seq":18446744073709551616})");
  EXPECT_NE(r.error, ChatError::kNone);
}

TEST_F(ChatCodecTest, IdLimit) {
  std::string id64(64, 'x');
  ParseResult r = parse(R"({"type":"ping","id":")" + id64 + R"("})");
  ASSERT_EQ(r.error, ChatError::kNone) << r.reason;
  EXPECT_EQ(message_.id, id64);

  std::string id65(65, 'x');
  r = parse(R"({"type":"msg","room":"lobby","text":"hi","id":")" + id65 + R"("})");
  EXPECT_EQ(r.error, ChatError::kMissingField);
  EXPECT_NE(r.reason.find("id"), std::string_view::npos);
  EXPECT_TRUE(r.id.empty());  // too long to echo

  // An empty id is the same as none.
  r = parse(R"({"type":"ping","id":""})");
  ASSERT_EQ(r.error, ChatError::kNone);
  EXPECT_TRUE(message_.id.empty());
}

TEST_F(ChatCodecTest, IdCountsUnescapedBytes) {
  // 32 two-byte characters = 64 bytes: at the limit; written escaped, far longer than 64.
  std::string id;
  for (int i = 0; i < 32; ++i) id += "\\u00e9";
  ParseResult r = parse(R"({"type":"ping","id":")" + id + R"("})");
  ASSERT_EQ(r.error, ChatError::kNone) << r.reason;
  EXPECT_EQ(message_.id.size(), 64u);
  r = parse(R"({"type":"ping","id":")" + id + R"(x"})");
  EXPECT_EQ(r.error, ChatError::kMissingField);
}

TEST_F(ChatCodecTest, IdIsExtractedWhenTheRestFails) {
  ParseResult r = parse(R"({"type":"msg","room":"lobby","text":"","id":"c9"})");
  EXPECT_EQ(r.error, ChatError::kMissingField);
  EXPECT_EQ(r.id, "c9");

  r = parse(R"({"id":"c10","type":"shout"})");
  EXPECT_EQ(r.error, ChatError::kUnknownType);
  EXPECT_EQ(r.id, "c10");

  r = parse(R"({"type":"msg","room":"bad room","text":"x","id":"c11"})");
  EXPECT_EQ(r.error, ChatError::kInvalidRoom);
  EXPECT_EQ(r.id, "c11");

  r = parse(std::string(R"({"type":"msg","room":"a","text":")") + std::string(20, 'x') + R"(","id":"c12"})", 10);
  EXPECT_EQ(r.error, ChatError::kTextTooLong);
  EXPECT_EQ(r.id, "c12");

  r = parse(R"({"type":"hello","name":"a","id":"c13","name":"b"})");
  EXPECT_EQ(r.error, ChatError::kBadJson);
  EXPECT_EQ(r.id, "c13");

  // Nothing can be read from a document that does not parse.
  r = parse(R"({"type":"msg","id":"c14",)");
  EXPECT_EQ(r.error, ChatError::kBadJson);
  EXPECT_TRUE(r.id.empty());
}

// ---------------------------------------------------------------------------------------------
// Not JSON, or not one JSON object.

class ChatBadJsonTest : public ChatCodecTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(ChatBadJsonTest, Rejected) {
  ParseResult r = parse(GetParam());
  EXPECT_EQ(r.error, ChatError::kBadJson) << GetParam() << " -> " << chat_error_code(r.error);
  EXPECT_FALSE(r.reason.empty());
}

INSTANTIATE_TEST_SUITE_P(
    Variants, ChatBadJsonTest,
    ::testing::Values(""s, " "s, "\n\t "s, "{"s, "}"s, R"({"type":"msg","room":"lo)"s,
                      R"({"type":"msg","room":"lobby","text":"hi")"s, R"({"type":"ping",})"s,
                      R"({"type":"ping" "x":1})"s, R"({"type" "ping"})"s, R"({type:"ping"})"s,
                      R"({'type':'ping'})"s, "[]"s, R"([{"type":"ping"}])"s, "5"s, "-1.5e3"s,
                      R"("ping")"s, "null"s, "true"s, "false"s,
                      R"({"type":"ping"} x)"s, R"({"type":"ping"}{})"s, R"({"type":"ping"},)"s,
                      R"({"type":"ping"}})"s, R"(x{"type":"ping"})"s,
                      R"({"type":"ping","x":tru})"s, R"({"type":"ping","x":[1,2,]})"s,
                      R"({"type":"ping","x":01})"s, R"({"type":"ping","x":NaN})"s,
                      R"({"type":"ping","x":"\q"})"s, R"({"type":"ping","x":"\u12"})"s,
                      "{\"type\":\"ping\",\"x\":\"a\nb\"}"s,          // raw control char in a string
                      "{\"type\":\"ping\"}\0"s,                      // trailing NUL
                      "{\"type\":\"msg\",\"room\":\"a\",\"text\":\"\xff\"}"s,  // invalid UTF-8
                      "{\"type\":\"ping\",\"x\":\"\xc3\"}"s,                // truncated sequence
                      "{\"type\":\"ping\",\"x\":\"\xc0\x80\"}"s,            // overlong NUL
                      "{\"type\":\"ping\",\"x\":\"\xed\xa0\x80\"}"s,        // UTF-8 surrogate
                      "{\"type\":\"ping\",\"x\":\"\xf4\x90\x80\x80\"}"s,    // above U+10FFFF
                      "{\"type\":\"ping\"}\xff"s,                            // invalid UTF-8 after
                      std::string(200, '[') + std::string(200, ']'),
                      R"({"type":"ping","x":)" + std::string(100, '[') + std::string(100, ']') + "}",
                      R"({"type":"hello","name":"alice","name":"bob"})"s,
                      R"({"type":"ping","type":"ping"})"s));

TEST_F(ChatCodecTest, ModerateNestingInIgnoredFieldsIsAccepted) {
  std::string json = R"({"type":"ping","x":)" + std::string(32, '[') + std::string(32, ']') + "}";
  EXPECT_EQ(parse(json).error, ChatError::kNone);
}

TEST_F(ChatCodecTest, InputWithEmbeddedNulInStringIsRejectedButEscapedNulIsText) {
  EXPECT_EQ(parse("{\"type\":\"msg\",\"room\":\"a\",\"text\":\"a\0b\"}"s).error, ChatError::kBadJson);
  ASSERT_EQ(parse(R"({"type":"msg","room":"a","text":"a\u0000b"})").error, ChatError::kNone);
  EXPECT_EQ(message_.text, "a\0b"s);
}

TEST_F(ChatCodecTest, ParserRecoversAfterErrors) {
  EXPECT_EQ(parse("{").error, ChatError::kBadJson);
  EXPECT_EQ(parse(std::string(200, '[')).error, ChatError::kBadJson);
  ASSERT_EQ(parse(R"({"type":"join","room":"lobby"})").error, ChatError::kNone);
  EXPECT_EQ(message_.room, "lobby");
}

// ---------------------------------------------------------------------------------------------
// Names and rooms.

TEST(ChatNames, UserNames) {
  EXPECT_TRUE(is_valid_user_name("a"));
  EXPECT_TRUE(is_valid_user_name(std::string(32, 'a')));
  EXPECT_TRUE(is_valid_user_name("Alice_B.c-9"));
  EXPECT_TRUE(is_valid_user_name("..."));
  EXPECT_FALSE(is_valid_user_name(""));
  EXPECT_FALSE(is_valid_user_name(std::string(33, 'a')));
  EXPECT_FALSE(is_valid_user_name("al ice"));
  EXPECT_FALSE(is_valid_user_name("#alice"));
  EXPECT_FALSE(is_valid_user_name("alice@home"));
  EXPECT_FALSE(is_valid_user_name("al/ice"));
  EXPECT_FALSE(is_valid_user_name("élise"));
  EXPECT_FALSE(is_valid_user_name("a\0b"s));
  EXPECT_FALSE(is_valid_user_name("a\nb"));
  EXPECT_FALSE(is_valid_user_name("a+b"));
}

TEST(ChatNames, RoomNames) {
  EXPECT_TRUE(is_valid_room_name("a"));
  EXPECT_TRUE(is_valid_room_name("#a"));
  EXPECT_TRUE(is_valid_room_name(std::string(64, 'r')));
  EXPECT_TRUE(is_valid_room_name("#" + std::string(64, 'r')));
  EXPECT_TRUE(is_valid_room_name("room-1.2_x"));
  EXPECT_FALSE(is_valid_room_name(""));
  EXPECT_FALSE(is_valid_room_name("#"));
  EXPECT_FALSE(is_valid_room_name("##a"));
  EXPECT_FALSE(is_valid_room_name("a#b"));
  EXPECT_FALSE(is_valid_room_name("a#"));
  EXPECT_FALSE(is_valid_room_name(std::string(65, 'r')));
  EXPECT_FALSE(is_valid_room_name("#" + std::string(65, 'r')));
  EXPECT_FALSE(is_valid_room_name("the lobby"));
  EXPECT_FALSE(is_valid_room_name("lobby!"));
  EXPECT_FALSE(is_valid_room_name("café"));
}

TEST_F(ChatCodecTest, NameValidationThroughParse) {
  EXPECT_EQ(parse(R"({"type":"hello","name":"a"})").error, ChatError::kNone);
  EXPECT_EQ(parse(R"({"type":"hello","name":")" + std::string(32, 'n') + R"("})").error, ChatError::kNone);
  EXPECT_EQ(parse(R"({"type":"hello","name":")" + std::string(33, 'n') + R"("})").error, ChatError::kInvalidName);
  EXPECT_EQ(parse(R"({"type":"hello","name":""})").error, ChatError::kInvalidName);
  EXPECT_EQ(parse(R"({"type":"hello","name":"al ice"})").error, ChatError::kInvalidName);
  EXPECT_EQ(parse(R"({"type":"hello","name":"#alice"})").error, ChatError::kInvalidName);
  EXPECT_EQ(parse(R"({"type":"hello","name":"\u00e9"})").error, ChatError::kInvalidName);
  // An escape that unescapes to a valid character is fine.
  EXPECT_EQ(parse(R"({"type":"hello","name":"\u0061"})").error, ChatError::kNone);
  EXPECT_EQ(message_.name, "a");
  // dm's "to" is a user name.
  EXPECT_EQ(parse(R"({"type":"dm","to":"#bob","text":"x"})").error, ChatError::kInvalidName);
  EXPECT_EQ(parse(R"({"type":"dm","to":"","text":"x"})").error, ChatError::kInvalidName);
  EXPECT_EQ(parse(R"({"type":"dm","to":")" + std::string(33, 'b') + R"(","text":"x"})").error,
            ChatError::kInvalidName);
  ParseResult r = parse(R"({"type":"dm","to":"b b","text":"x"})");
  EXPECT_NE(r.reason.find("to"), std::string_view::npos);
}

TEST_F(ChatCodecTest, RoomValidationThroughParse) {
  for (const char* type : {"join", "leave", "who", "history"}) {
    std::string prefix = std::string(R"({"type":")") + type + R"(","room":")";
    EXPECT_EQ(parse(prefix + R"(r"})").error, ChatError::kNone) << type;
    EXPECT_EQ(parse(prefix + "#" + std::string(64, 'r') + R"("})").error, ChatError::kNone) << type;
    EXPECT_EQ(parse(prefix + std::string(64, 'r') + R"("})").error, ChatError::kNone) << type;
    EXPECT_EQ(parse(prefix + std::string(65, 'r') + R"("})").error, ChatError::kInvalidRoom) << type;
    EXPECT_EQ(parse(prefix + R"("})").error, ChatError::kInvalidRoom) << type;
    EXPECT_EQ(parse(prefix + R"(#"})").error, ChatError::kInvalidRoom) << type;
    EXPECT_EQ(parse(prefix + R"(a b"})").error, ChatError::kInvalidRoom) << type;
  }
  EXPECT_EQ(parse(R"({"type":"msg","room":"a/b","text":"x"})").error, ChatError::kInvalidRoom);
  EXPECT_EQ(parse(R"({"type":"typing","room":"##a","on":true})").error, ChatError::kInvalidRoom);
}

TEST_F(ChatCodecTest, RoomIsCheckedBeforeText) {
  EXPECT_EQ(parse(R"({"type":"msg","room":"a b","text":""})").error, ChatError::kInvalidRoom);
  EXPECT_EQ(parse(R"({"type":"dm","to":"a b","text":""})").error, ChatError::kInvalidName);
}

// ---------------------------------------------------------------------------------------------
// Text length.

std::string msg_with_text(std::string_view escaped_text) {
  return std::string(R"({"type":"msg","room":"lobby","text":")") + std::string(escaped_text) + R"("})";
}

TEST_F(ChatCodecTest, TextAtLimitAndOneOver) {
  ParseResult r = parse(msg_with_text(std::string(100, 'x')), 100);
  ASSERT_EQ(r.error, ChatError::kNone) << r.reason;
  EXPECT_EQ(message_.text.size(), 100u);
  r = parse(msg_with_text(std::string(101, 'x')), 100);
  EXPECT_EQ(r.error, ChatError::kTextTooLong);
  EXPECT_NE(r.reason.find("101"), std::string_view::npos) << r.reason;
  EXPECT_NE(r.reason.find("100"), std::string_view::npos) << r.reason;

  EXPECT_EQ(parse(R"({"type":"dm","to":"bob","text":"abc"})", 3).error, ChatError::kNone);
  EXPECT_EQ(parse(R"({"type":"dm","to":"bob","text":"abcd"})", 3).error, ChatError::kTextTooLong);
}

TEST_F(ChatCodecTest, TextLimitCountsUtf8Bytes) {
  // "é" is two bytes, "€" three, "😀" four.
  EXPECT_EQ(parse(msg_with_text("éééé"), 8).error, ChatError::kNone);
  EXPECT_EQ(parse(msg_with_text("éééé"), 7).error, ChatError::kTextTooLong);
  EXPECT_EQ(parse(msg_with_text("€€"), 6).error, ChatError::kNone);
  EXPECT_EQ(parse(msg_with_text("€€"), 5).error, ChatError::kTextTooLong);
  EXPECT_EQ(parse(msg_with_text("😀"), 4).error, ChatError::kNone);
  EXPECT_EQ(parse(msg_with_text("😀"), 3).error, ChatError::kTextTooLong);
}

TEST_F(ChatCodecTest, TextLimitCountsUnescapedBytes) {
  // Six bytes of escape, one byte of text.
  EXPECT_EQ(parse(msg_with_text(R"(\u0041)"), 1).error, ChatError::kNone);
  EXPECT_EQ(message_.text, "A");
  EXPECT_EQ(parse(msg_with_text(R"(\u00e9)"), 2).error, ChatError::kNone);
  EXPECT_EQ(parse(msg_with_text(R"(\u00e9)"), 1).error, ChatError::kTextTooLong);
  EXPECT_EQ(parse(msg_with_text(R"(\ud83d\ude00)"), 4).error, ChatError::kNone);
  EXPECT_EQ(parse(msg_with_text(R"(\ud83d\ude00)"), 3).error, ChatError::kTextTooLong);
}

TEST_F(ChatCodecTest, LargeTextAfterSmallAndBack) {
  std::string big(200000, 'b');
  ASSERT_EQ(parse(R"({"type":"ping"})").error, ChatError::kNone);
  ASSERT_EQ(parse(msg_with_text(big), big.size()).error, ChatError::kNone);
  EXPECT_EQ(message_.text, big);
  ASSERT_EQ(parse(msg_with_text("small")).error, ChatError::kNone);
  EXPECT_EQ(message_.text, "small");
}

TEST_F(ChatCodecTest, MessageFarOverTheTextLimitIsRefusedUnparsed) {
  // Limit 10: at most 6 * 10 + 16 KiB bytes of JSON can hold a valid message.
  std::string padding(16 * 1024, ' ');
  std::string fits = R"({"type":"msg","room":"lobby","text":"hi")" + padding + "}";
  ASSERT_LE(fits.size(), 6u * 10 + 16 * 1024);
  EXPECT_EQ(parse(fits, 10).error, ChatError::kNone);
  std::string too_long = R"({"type":"msg","room":"lobby","text":"hi","id":"c1",)" + padding + padding + "}";
  ParseResult r = parse(too_long, 10);
  EXPECT_EQ(r.error, ChatError::kTextTooLong);
  EXPECT_TRUE(r.id.empty());
  // Not JSON either, but refused for its size first.
  EXPECT_EQ(parse(std::string(100000, 'x'), 10).error, ChatError::kTextTooLong);
  // A text of only escapes may be 6 bytes of JSON per byte of text.
  std::string escapes;
  for (int i = 0; i < 4096; ++i) escapes += "\\u0001";
  r = parse(msg_with_text(escapes), 4096);
  ASSERT_EQ(r.error, ChatError::kNone) << r.reason;
  EXPECT_EQ(message_.text.size(), 4096u);
  // No limit at all does not overflow the size check.
  EXPECT_EQ(parse(msg_with_text("x"), SIZE_MAX).error, ChatError::kNone);
}

// ---------------------------------------------------------------------------------------------
// Unescaping and view lifetime.

TEST_F(ChatCodecTest, EscapesAreUnescaped) {
  ASSERT_EQ(parse(msg_with_text(R"(caf\u00e9\n\t\"q\" \\ \/ \b\f\r \u20ac \ud83d\ude00)")).error, ChatError::kNone);
  EXPECT_EQ(message_.text, "café\n\t\"q\" \\ / \b\f\r € 😀");
  ASSERT_EQ(parse(msg_with_text(R"(\u00E9)")).error, ChatError::kNone);
  EXPECT_EQ(message_.text, "é");
  ASSERT_EQ(parse(R"({"type":"join","room":"\u006cobby"})").error, ChatError::kNone);
  EXPECT_EQ(message_.room, "lobby");
}

TEST_F(ChatCodecTest, RawUtf8PassesThrough) {
  ASSERT_EQ(parse(msg_with_text("привет 世界 😀")).error, ChatError::kNone);
  EXPECT_EQ(message_.text, "привет 世界 😀");
}

TEST_F(ChatCodecTest, EscapedKeysAreMatched) {
  ASSERT_EQ(parse(R"({"\u0074ype":"join","r\u006fom":"lobby"})").error, ChatError::kNone);
  EXPECT_EQ(message_.type, ClientType::kJoin);
  EXPECT_EQ(message_.room, "lobby");
}

TEST_F(ChatCodecTest, ViewsDoNotPointIntoTheInput) {
  std::string input = R"({"type":"msg","room":"lobby","text":"hello there","id":"c1"})";
  ASSERT_EQ(parse(input).error, ChatError::kNone);
  ClientMessage copy = message_;
  // Destroy the input: the views must survive it.
  std::fill(input.begin(), input.end(), 'X');
  input.clear();
  input.shrink_to_fit();
  EXPECT_EQ(copy.room, "lobby");
  EXPECT_EQ(copy.text, "hello there");
  EXPECT_EQ(copy.id, "c1");
  EXPECT_EQ(copy.type, ClientType::kMsg);
}

TEST_F(ChatCodecTest, ViewsStayValidUntilTheNextParseOnTheSameParser) {
  ASSERT_EQ(parse(R"({"type":"msg","room":"lobby","text":"first","id":"a"})").error, ChatError::kNone);
  ClientMessage first = message_;
  // Another parser's work must not disturb ours.
  ChatParser other;
  ClientMessage other_message;
  ASSERT_EQ(other.parse(R"({"type":"msg","room":"zzzzz","text":"other","id":"b"})", kLimit, other_message).error,
            ChatError::kNone);
  // Nor must writing replies built from the views.
  std::string out;
  write_msg(out, first.room, "alice", first.text, 1, 2);
  write_ack(out, first.id, 2, 1);
  EXPECT_EQ(first.room, "lobby");
  EXPECT_EQ(first.text, "first");
  EXPECT_EQ(first.id, "a");
  EXPECT_EQ(other_message.text, "other");
}

// ---------------------------------------------------------------------------------------------
// append_json_string.

TEST(ChatJsonString, PlainAndUtf8PassThrough) {
  EXPECT_EQ(json_quoted(""), R"("")");
  EXPECT_EQ(json_quoted("hello"), R"("hello")");
  EXPECT_EQ(json_quoted("café 😀 世界"), "\"café 😀 世界\"");
  EXPECT_EQ(json_quoted("\x7f"), "\"\x7f\"");
  EXPECT_EQ(json_quoted("a/b http://x/y"), R"("a/b http://x/y")");
  EXPECT_EQ(json_quoted("<b>"), R"("<b>")");
}

TEST(ChatJsonString, QuotesAndBackslash) {
  EXPECT_EQ(json_quoted(R"(say "hi")"), R"("say \"hi\"")");
  EXPECT_EQ(json_quoted(R"(C:\path\)"), R"("C:\\path\\")");
  EXPECT_EQ(json_quoted(R"(\")"), R"("\\\"")");
}

TEST(ChatJsonString, EveryControlCharacter) {
  const char* expected[0x20] = {
      R"(\u0000)", R"(\u0001)", R"(\u0002)", R"(\u0003)", R"(\u0004)", R"(\u0005)", R"(\u0006)", R"(\u0007)",
      R"(\b)",     R"(\t)",     R"(\n)",     R"(\u000b)", R"(\f)",     R"(\r)",     R"(\u000e)", R"(\u000f)",
      R"(\u0010)", R"(\u0011)", R"(\u0012)", R"(\u0013)", R"(\u0014)", R"(\u0015)", R"(\u0016)", R"(\u0017)",
      R"(\u0018)", R"(\u0019)", R"(\u001a)", R"(\u001b)", R"(\u001c)", R"(\u001d)", R"(\u001e)", R"(\u001f)",
  };
  std::string all;
  std::string all_expected = "\"";
  for (int c = 0; c < 0x20; ++c) {
    std::string one(1, static_cast<char>(c));
    EXPECT_EQ(json_quoted(one), std::string("\"") + expected[c] + "\"") << "byte " << c;
    EXPECT_EQ(json_quoted("ab" + one + "cd"), std::string("\"ab") + expected[c] + "cd\"") << "byte " << c;
    all += one;
    all_expected += expected[c];
  }
  all_expected += "\"";
  EXPECT_EQ(json_quoted(all), all_expected);
  EXPECT_EQ(json_quoted(" "), R"(" ")");
}

TEST(ChatJsonString, ScriptClose) {
  EXPECT_EQ(json_quoted("</script>"), R"("<\/script>")");
  EXPECT_EQ(json_quoted("x</script><script>alert(1)</script>"), R"("x<\/script><script>alert(1)<\/script>")");
  EXPECT_EQ(json_quoted("</"), R"("<\/")");
  EXPECT_EQ(json_quoted("/"), R"("/")");
  EXPECT_EQ(json_quoted("/<"), R"("/<")");
  EXPECT_EQ(json_quoted("<</"), R"("<<\/")");
  // '<' and '/' on either side of every 8-byte boundary the writer scans in.
  for (size_t pad = 0; pad < 20; ++pad) {
    std::string in = std::string(pad, 'a') + "</";
    EXPECT_EQ(json_quoted(in), "\"" + std::string(pad, 'a') + R"(<\/")") << pad;
  }
}

TEST(ChatJsonString, AppendsToExistingContent) {
  std::string out = "prefix:";
  append_json_string(out, "a\"b");
  EXPECT_EQ(out, R"(prefix:"a\"b")");
}

// A byte-at-a-time reference for the escaping rules.
std::string reference_quote(std::string_view s) {
  static const char* kHex = "0123456789abcdef";
  std::string out = "\"";
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '/': out += (i > 0 && s[i - 1] == '<') ? "\\/" : "/"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 0xF];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

TEST(ChatJsonString, MatchesReferenceOnRandomInput) {
  std::mt19937 rng(12345);
  const char alphabet[] = {'a', 'b', '<', '/', '"', '\\', '\n', '\x01', '\x1f', ' ', '\x7f', 'z', '0'};
  for (int round = 0; round < 3000; ++round) {
    size_t length = rng() % 100;  // past two 16-byte blocks
    std::string s;
    for (size_t i = 0; i < length; ++i) {
      // Mostly plain bytes, so that clean 8-byte words occur too.
      s += (rng() % 4 == 0) ? alphabet[rng() % sizeof alphabet] : static_cast<char>('a' + rng() % 26);
    }
    ASSERT_EQ(json_quoted(s), reference_quote(s)) << s;
  }
}

TEST(ChatJsonString, EscapeHeavyTextGrowsTheOutput) {
  // Every byte expands (up to 6x): the writer must grow past its first estimate, repeatedly.
  std::string text;
  for (int i = 0; i < 5000; ++i) text += static_cast<char>(i % 0x20);
  text += "tail</";
  std::string out = "head";
  append_json_string(out, text);
  EXPECT_EQ(out, "head" + reference_quote(text));

  std::string msg = "prefix";
  write_msg(msg, "r", "u", text, 1, 2);
  EXPECT_EQ(msg, R"(prefix{"type":"msg","room":"r","from":"u","text":)" + reference_quote(text) + R"(,"ts":1,"seq":2})");
}

TEST(ChatJsonString, EscapeAtEveryPositionOfLongText) {
  for (size_t length : {15u, 16u, 17u, 31u, 32u, 33u, 64u, 100u}) {
    for (size_t at = 0; at < length; ++at) {
      for (char special : {'"', '\\', '\n', '\x1f', '/'}) {
        std::string s(length, 'x');
        s[at] = special;
        if (special == '/' && at > 0) s[at - 1] = '<';
        ASSERT_EQ(json_quoted(s), reference_quote(s)) << length << " " << at << " " << int(special);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Writers, byte-exact.

TEST(ChatWriters, Welcome) {
  std::string out;
  write_welcome(out, "alice");
  EXPECT_EQ(out, R"({"type":"welcome","name":"alice"})");
}

TEST(ChatWriters, Presence) {
  std::string out;
  write_presence(out, true, "lobby", "bob");
  EXPECT_EQ(out, R"({"type":"joined","room":"lobby","user":"bob"})");
  out.clear();
  write_presence(out, false, "lobby", "bob");
  EXPECT_EQ(out, R"({"type":"left","room":"lobby","user":"bob"})");
}

TEST(ChatWriters, Msg) {
  std::string out;
  write_msg(out, "lobby", "alice", "hi", 1732190000000, 7);
  EXPECT_EQ(out, R"({"type":"msg","room":"lobby","from":"alice","text":"hi","ts":1732190000000,"seq":7})");
  out.clear();
  write_msg(out, "#l", "a", "say \"x\"\n</script>", 0, std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(out,
            R"({"type":"msg","room":"#l","from":"a","text":"say \"x\"\n<\/script>","ts":0,"seq":18446744073709551615})");
}

TEST(ChatWriters, Dm) {
  std::string out;
  write_dm(out, "alice", "bob", "psst", 1732190000001);
  EXPECT_EQ(out, R"({"type":"dm","from":"alice","to":"bob","text":"psst","ts":1732190000001})");
}

TEST(ChatWriters, Typing) {
  std::string out;
  write_typing(out, "lobby", "alice", true);
  EXPECT_EQ(out, R"({"type":"typing","room":"lobby","user":"alice","on":true})");
  out.clear();
  write_typing(out, "lobby", "alice", false);
  EXPECT_EQ(out, R"({"type":"typing","room":"lobby","user":"alice","on":false})");
}

TEST(ChatWriters, Ack) {
  std::string out;
  write_ack(out, "c1", 7, 1732190000000);
  EXPECT_EQ(out, R"({"type":"ack","id":"c1","seq":7,"ts":1732190000000})");
  out.clear();
  write_ack(out, "", 7, 1732190000000);
  EXPECT_EQ(out, R"({"type":"ack","seq":7,"ts":1732190000000})");
}

TEST(ChatWriters, Error) {
  std::string out;
  write_error(out, ChatError::kTextTooLong, "text is 5000 bytes", "c1");
  EXPECT_EQ(out, R"({"type":"error","code":"text_too_long","reason":"text is 5000 bytes","id":"c1"})");
  out.clear();
  write_error(out, ChatError::kBadJson, "invalid \"JSON\"", "");
  EXPECT_EQ(out, R"({"type":"error","code":"bad_json","reason":"invalid \"JSON\""})");
}

TEST(ChatWriters, Pong) {
  std::string out;
  write_pong(out, 1732190000000);
  EXPECT_EQ(out, R"({"type":"pong","ts":1732190000000})");
}

TEST(ChatWriters, Who) {
  std::string out;
  write_who_begin(out, "lobby");
  write_who_end(out);
  EXPECT_EQ(out, R"({"type":"who","room":"lobby","users":[]})");
  out.clear();
  write_who_begin(out, "lobby");
  write_who_user(out, "alice", true);
  write_who_user(out, "bob", false);
  write_who_end(out);
  EXPECT_EQ(out, R"({"type":"who","room":"lobby","users":["alice","bob"]})");
}

TEST(ChatWriters, History) {
  std::string out;
  write_history_begin(out, "lobby");
  write_history_end(out);
  EXPECT_EQ(out, R"({"type":"history","room":"lobby","messages":[]})");
  out.clear();
  write_history_begin(out, "lobby");
  write_history_item(out, "alice", "hi", 100, 7, true);
  write_history_item(out, "bob", "yo\t", 101, 8, false);
  write_history_end(out);
  EXPECT_EQ(out, R"({"type":"history","room":"lobby","messages":[{"from":"alice","text":"hi","ts":100,"seq":7},)"
                 R"({"from":"bob","text":"yo\t","ts":101,"seq":8}]})");
}

TEST(ChatWriters, AppendRatherThanReplace) {
  std::string out = "X";
  write_pong(out, 1);
  write_pong(out, 2);
  EXPECT_EQ(out, R"(X{"type":"pong","ts":1}{"type":"pong","ts":2})");
}

TEST(ChatWriters, LongWhoListGrowsCorrectly) {
  std::string out;
  std::string expected = R"({"type":"who","room":"r","users":[)";
  write_who_begin(out, "r");
  for (int i = 0; i < 5000; ++i) {
    std::string user = "user" + std::to_string(i);
    write_who_user(out, user, i == 0);
    expected += (i == 0 ? "" : ",") + ("\"" + user + "\"");
  }
  write_who_end(out);
  expected += "]}";
  EXPECT_EQ(out, expected);
}

TEST(ChatErrorCodes, StableStrings) {
  EXPECT_EQ(chat_error_code(ChatError::kBadJson), "bad_json");
  EXPECT_EQ(chat_error_code(ChatError::kUnknownType), "unknown_type");
  EXPECT_EQ(chat_error_code(ChatError::kMissingField), "missing_field");
  EXPECT_EQ(chat_error_code(ChatError::kInvalidName), "invalid_name");
  EXPECT_EQ(chat_error_code(ChatError::kInvalidRoom), "invalid_room");
  EXPECT_EQ(chat_error_code(ChatError::kTextTooLong), "text_too_long");
  EXPECT_EQ(chat_error_code(ChatError::kNameTaken), "name_taken");
  EXPECT_EQ(chat_error_code(ChatError::kNotIdentified), "not_identified");
  EXPECT_EQ(chat_error_code(ChatError::kAlreadyIdentified), "already_identified");
  EXPECT_EQ(chat_error_code(ChatError::kUnknownRoom), "unknown_room");
  EXPECT_EQ(chat_error_code(ChatError::kUnknownUser), "unknown_user");
  EXPECT_EQ(chat_error_code(ChatError::kTooManyRooms), "too_many_rooms");
  EXPECT_EQ(chat_error_code(ChatError::kRejected), "rejected");
}

// ---------------------------------------------------------------------------------------------
// Round trips: writer output is valid JSON that gives back the values written.

// Nasty but valid UTF-8: every control character, quotes, backslash, "</", multi-byte text.
std::string nasty_text() {
  std::string s;
  for (int c = 0; c < 0x20; ++c) s += static_cast<char>(c);
  s += "\"\\/</script>é€😀\x7f end";
  return s;
}

class ChatRoundTrip : public ::testing::Test {
 protected:
  simdjson::dom::object parse_object(const std::string& json) {
    simdjson::dom::element root;
    EXPECT_EQ(parser_.parse(json).get(root), simdjson::SUCCESS) << json;
    simdjson::dom::object object;
    EXPECT_EQ(root.get_object().get(object), simdjson::SUCCESS) << json;
    return object;
  }
  static std::string_view str(simdjson::dom::object o, std::string_view key) {
    std::string_view value;
    EXPECT_EQ(o[key].get_string().get(value), simdjson::SUCCESS) << key;
    return value;
  }
  static uint64_t num(simdjson::dom::object o, std::string_view key) {
    uint64_t value = 0;
    EXPECT_EQ(o[key].get_uint64().get(value), simdjson::SUCCESS) << key;
    return value;
  }
  static std::vector<std::string_view> keys(simdjson::dom::object o) {
    std::vector<std::string_view> out;
    for (auto member : o) out.push_back(member.key);
    return out;
  }

  simdjson::dom::parser parser_;
  const std::string text_ = nasty_text();
};

using Keys = std::vector<std::string_view>;

TEST_F(ChatRoundTrip, Msg) {
  std::string out;
  write_msg(out, "#lobby", "alice", text_, 1732190000000, 18446744073709551615u);
  auto o = parse_object(out);
  EXPECT_EQ(keys(o), (Keys{"type", "room", "from", "text", "ts", "seq"}));
  EXPECT_EQ(str(o, "type"), "msg");
  EXPECT_EQ(str(o, "room"), "#lobby");
  EXPECT_EQ(str(o, "from"), "alice");
  EXPECT_EQ(str(o, "text"), text_);
  EXPECT_EQ(num(o, "ts"), 1732190000000u);
  EXPECT_EQ(num(o, "seq"), 18446744073709551615u);
}

TEST_F(ChatRoundTrip, DmWelcomePresenceTypingPong) {
  std::string out;
  write_dm(out, "alice", "bob", text_, 5);
  auto o = parse_object(out);
  EXPECT_EQ(keys(o), (Keys{"type", "from", "to", "text", "ts"}));
  EXPECT_EQ(str(o, "type"), "dm");
  EXPECT_EQ(str(o, "to"), "bob");
  EXPECT_EQ(str(o, "text"), text_);
  EXPECT_EQ(num(o, "ts"), 5u);

  out.clear();
  write_welcome(out, "alice");
  o = parse_object(out);
  EXPECT_EQ(keys(o), (Keys{"type", "name"}));
  EXPECT_EQ(str(o, "name"), "alice");

  out.clear();
  write_presence(out, false, "r", "u");
  o = parse_object(out);
  EXPECT_EQ(keys(o), (Keys{"type", "room", "user"}));
  EXPECT_EQ(str(o, "type"), "left");

  out.clear();
  write_typing(out, "r", "u", true);
  o = parse_object(out);
  bool on = false;
  EXPECT_EQ(o["on"].get_bool().get(on), simdjson::SUCCESS);
  EXPECT_TRUE(on);

  out.clear();
  write_pong(out, 0);
  o = parse_object(out);
  EXPECT_EQ(num(o, "ts"), 0u);
}

TEST_F(ChatRoundTrip, AckAndError) {
  std::string out;
  write_ack(out, text_.substr(0, 40), 3, 4);
  auto o = parse_object(out);
  EXPECT_EQ(keys(o), (Keys{"type", "id", "seq", "ts"}));
  EXPECT_EQ(str(o, "id"), text_.substr(0, 40));
  EXPECT_EQ(num(o, "seq"), 3u);

  out.clear();
  write_error(out, ChatError::kInvalidRoom, text_, "c1");
  o = parse_object(out);
  EXPECT_EQ(keys(o), (Keys{"type", "code", "reason", "id"}));
  EXPECT_EQ(str(o, "code"), "invalid_room");
  EXPECT_EQ(str(o, "reason"), text_);
  EXPECT_EQ(str(o, "id"), "c1");
}

TEST_F(ChatRoundTrip, WhoAndHistory) {
  std::string out;
  write_who_begin(out, "r");
  write_who_user(out, "a", true);
  write_who_user(out, "b", false);
  write_who_end(out);
  auto o = parse_object(out);
  simdjson::dom::array users;
  ASSERT_EQ(o["users"].get_array().get(users), simdjson::SUCCESS);
  std::vector<std::string_view> names;
  for (auto user : users) names.push_back(user.get_string().value_unsafe());
  EXPECT_EQ(names, (Keys{"a", "b"}));

  out.clear();
  write_history_begin(out, "r");
  write_history_item(out, "a", text_, 10, 1, true);
  write_history_item(out, "b", "two", 11, 2, false);
  write_history_end(out);
  o = parse_object(out);
  simdjson::dom::array messages;
  ASSERT_EQ(o["messages"].get_array().get(messages), simdjson::SUCCESS);
  ASSERT_EQ(messages.size(), 2u);
  simdjson::dom::object first = messages.at(0).get_object().value_unsafe();
  EXPECT_EQ(keys(first), (Keys{"from", "text", "ts", "seq"}));
  EXPECT_EQ(str(first, "text"), text_);
  EXPECT_EQ(num(first, "seq"), 1u);
  simdjson::dom::object second = messages.at(1).get_object().value_unsafe();
  EXPECT_EQ(str(second, "from"), "b");
  EXPECT_EQ(num(second, "ts"), 11u);
}

TEST_F(ChatCodecTest, ClientMessagesBuiltWithAppendJsonStringRoundTrip) {
  std::string text = nasty_text();
  std::string json = R"({"type":"msg","room":"lobby","text":)" + json_quoted(text) + R"(,"id":)" + json_quoted("c\n1") + "}";
  ParseResult r = parse(json);
  ASSERT_EQ(r.error, ChatError::kNone) << r.reason;
  EXPECT_EQ(message_.text, text);
  EXPECT_EQ(message_.id, "c\n1");
  // And the parsed text written back as a server message gives the same text again.
  std::string out;
  write_msg(out, message_.room, "alice", message_.text, 1, 2);
  simdjson::dom::parser dom;
  std::string_view again;
  ASSERT_EQ(dom.parse(out)["text"].get_string().get(again), simdjson::SUCCESS);
  EXPECT_EQ(again, text);
}

}  // namespace
}  // namespace chat
