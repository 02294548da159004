// tools/chat_display.h: how parley-cli's chat mode shows each server message. The inputs are
// written with the server's own writers (chat/chat_codec.h), so the two cannot drift apart.
#include "tools/chat_display.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "chat/chat_codec.h"

namespace {

using tools::cli::ServerEvent;
using tools::cli::ServerMessageFormatter;

TEST(ChatDisplay, EveryServerMessageType) {
  ServerMessageFormatter formatter;
  std::string json;
  chat::write_welcome(json, "alice");
  EXPECT_EQ(formatter.format(json).display, "* welcome alice\n");

  json.clear();
  chat::write_presence(json, true, "lobby", "bob");
  ServerEvent event = formatter.format(json);
  EXPECT_EQ(event.type, "joined");
  EXPECT_EQ(event.room, "lobby");
  EXPECT_EQ(event.display, "* bob joined lobby\n");

  json.clear();
  chat::write_presence(json, false, "lobby", "bob");
  EXPECT_EQ(formatter.format(json).display, "* bob left lobby\n");

  json.clear();
  chat::write_msg(json, "lobby", "alice", "hi", 1732190000000, 7);
  EXPECT_EQ(formatter.format(json).display, "[lobby] alice: hi\n");

  json.clear();
  chat::write_dm(json, "alice", "bob", "psst", 1732190000000);
  EXPECT_EQ(formatter.format(json).display, "(dm) alice: psst\n");

  json.clear();
  chat::write_typing(json, "lobby", "alice", true);
  EXPECT_EQ(formatter.format(json).display, "* alice is typing in lobby\n");
  json.clear();
  chat::write_typing(json, "lobby", "alice", false);
  EXPECT_EQ(formatter.format(json).display, "* alice stopped typing in lobby\n");

  json.clear();
  chat::write_who_begin(json, "lobby");
  chat::write_who_user(json, "alice", true);
  chat::write_who_user(json, "bob", false);
  chat::write_who_end(json);
  EXPECT_EQ(formatter.format(json).display, "* in lobby: alice, bob\n");

  // Issue 18: a page of a big room's who, and the batched presence event in both forms.
  json.clear();
  chat::write_who_begin(json, "big");
  chat::write_who_user(json, "alice", true);
  chat::write_who_user(json, "bob", false);
  chat::write_who_end_paged(json, 5000, "bob");
  EXPECT_EQ(formatter.format(json).display, "* in big: alice, bob\n* 2 of 5000 members shown; more: /who big bob\n");
  json.clear();
  std::vector<std::string_view> joined{"a", "b"};
  std::vector<std::string_view> left{"c"};
  chat::write_members(json, "big", {joined, left, {}, {}}, 150);
  event = formatter.format(json);
  EXPECT_EQ(event.type, "members");
  EXPECT_EQ(event.room, "big");
  EXPECT_EQ(event.display, "* a, b joined big (150 here)\n* c left big (150 here)\n");
  json.clear();
  std::vector<std::string> many;
  for (int i = 0; i < 12; ++i) many.push_back("u" + std::to_string(i));
  std::vector<std::string_view> many_views(many.begin(), many.end());
  chat::write_members(json, "big", {many_views, {}, {}, {}}, 200);
  EXPECT_EQ(formatter.format(json).display, "* u0, u1, u2, u3, u4, u5, u6, u7, u8, u9 and 2 more joined big (200 here)\n");
  json.clear();
  std::vector<std::string_view> away{"d", "e"};
  std::vector<std::string_view> back{"f"};
  chat::write_members(json, "big", {{}, left, away, back}, 150);
  EXPECT_EQ(formatter.format(json).display,
            "* d, e are away from big (150 here)\n* f is back in big (150 here)\n* c left big (150 here)\n");
  json.clear();
  chat::write_members_counts(json, "big", {57, 3, 0, 0}, 10000);
  EXPECT_EQ(formatter.format(json).display, "* 57 joined, 3 left big (10000 here)\n");
  json.clear();
  chat::write_members_counts(json, "big", {0, 1, 4000, 2}, 10000);
  EXPECT_EQ(formatter.format(json).display, "* 0 joined, 1 left, 4000 away, 2 back big (10000 here)\n");
  EXPECT_EQ(formatter.format(R"({"type":"members","room":"big"})").display, "? {\"type\":\"members\",\"room\":\"big\"}\n");

  json.clear();
  chat::write_history_begin(json, "lobby");
  chat::write_history_item(json, "alice", "one", 1, 1, true);
  chat::write_history_item(json, "bob", "two", 2, 2, false);
  chat::write_history_end(json);
  event = formatter.format(json);
  EXPECT_EQ(event.type, "history");
  EXPECT_EQ(event.room, "lobby");
  EXPECT_EQ(event.display, "* history of lobby: 2 messages\n[lobby] alice: one\n[lobby] bob: two\n");

  json.clear();
  chat::write_history_begin(json, "empty");
  chat::write_history_end(json);
  EXPECT_EQ(formatter.format(json).display, "* history of empty: 0 messages\n");

  json.clear();
  chat::write_ack(json, "c1", 7, 1);
  event = formatter.format(json);
  EXPECT_EQ(event.type, "ack");
  EXPECT_EQ(event.display, "");  // one's own message went through: nothing to show

  json.clear();
  chat::write_error(json, chat::ChatError::kTextTooLong, "text is 5000 bytes, over the limit of 4096", "c1");
  EXPECT_EQ(formatter.format(json).display, "! error text_too_long: text is 5000 bytes, over the limit of 4096\n");

  json.clear();
  chat::write_pong(json, 1);
  EXPECT_EQ(formatter.format(json).display, "* pong\n");
}

TEST(ChatDisplay, EmptyWhoSaysNobody) {
  ServerMessageFormatter formatter;
  EXPECT_EQ(formatter.format(R"({"type":"who","room":"x","users":[]})").display, "* in x: nobody\n");
}

TEST(ChatDisplay, EscapedTextIsUnescaped) {
  ServerMessageFormatter formatter;
  std::string json;
  chat::write_msg(json, "lobby", "alice", "caf\xc3\xa9 \"q\" <\\/x> \xf0\x9f\x98\x80", 1, 1);
  EXPECT_EQ(formatter.format(json).display, "[lobby] alice: caf\xc3\xa9 \"q\" <\\/x> \xf0\x9f\x98\x80\n");
}

TEST(ChatDisplay, ControlCharactersCannotReachTheTerminal) {
  ServerMessageFormatter formatter;
  std::string json;
  chat::write_msg(json, "lobby", "mallory", "line1\nline2\r\x1b[2J\x7f\tend", 1, 1);
  EXPECT_EQ(formatter.format(json).display, "[lobby] mallory: line1\\nline2\\r\\x1b[2J\\x7f\tend\n");
  EXPECT_EQ(tools::cli::printable(std::string("a\0b", 3)), "a\\x00b");
}

TEST(ChatDisplay, MalformedOrUnknownIsShownRaw) {
  ServerMessageFormatter formatter;
  ServerEvent event = formatter.format("not json");
  EXPECT_EQ(event.type, "");
  EXPECT_EQ(event.display, "? not json\n");
  EXPECT_EQ(formatter.format("[1,2]").display, "? [1,2]\n");
  EXPECT_EQ(formatter.format(R"({"no":"type"})").display, "? {\"no\":\"type\"}\n");
  event = formatter.format(R"({"type":"future","x":1})");
  EXPECT_EQ(event.type, "future");
  EXPECT_EQ(event.display, "? {\"type\":\"future\",\"x\":1}\n");
  // A known type missing a field it needs.
  EXPECT_EQ(formatter.format(R"({"type":"msg","room":"lobby"})").display, "? {\"type\":\"msg\",\"room\":\"lobby\"}\n");
  EXPECT_EQ(formatter.format("{\"type\":\"x\",\"bad\":\"\x1b\"}").display, "? {\"type\":\"x\",\"bad\":\"\\x1b\"}\n");
}

TEST(ChatDisplay, FormatterIsReusable) {
  ServerMessageFormatter formatter;
  std::string big(100000, 'x');
  std::string json;
  chat::write_msg(json, "r", "u", big, 1, 1);
  EXPECT_EQ(formatter.format(json).display.size(), big.size() + 8);
  EXPECT_EQ(formatter.format(R"({"type":"pong","ts":1})").display, "* pong\n");
}

}  // namespace
