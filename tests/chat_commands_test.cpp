// tools/chat_commands.h: what parley-cli's chat mode makes of each typed line, and the client
// JSON it sends (checked by parsing it back with the server's own parser, chat::ChatParser).
#include "tools/chat_commands.h"

#include <gtest/gtest.h>

#include <string>

#include "chat/chat_codec.h"

namespace {

using tools::cli::ChatCommand;
using tools::cli::ChatCommandKind;
using tools::cli::ChatCommandParse;
using tools::cli::parse_chat_command;
using tools::cli::write_client_message;

ChatCommand parsed(std::string_view line, std::string_view current_room = "lobby") {
  ChatCommandParse parse = parse_chat_command(line, current_room);
  EXPECT_TRUE(parse.ok) << line << ": " << parse.error;
  return parse.command;
}

std::string error_of(std::string_view line, std::string_view current_room = "lobby") {
  ChatCommandParse parse = parse_chat_command(line, current_room);
  EXPECT_FALSE(parse.ok) << line;
  return parse.error;
}

// Parses `json` as the server would; fails the test on any error.
chat::ClientMessage server_view(chat::ChatParser& parser, const std::string& json) {
  chat::ClientMessage message;
  chat::ParseResult result = parser.parse(json, 4096, message);
  EXPECT_EQ(result.error, chat::ChatError::kNone) << json << ": " << result.reason;
  return message;
}

TEST(ChatCommands, PlainTextGoesToTheCurrentRoom) {
  ChatCommand command = parsed("hello  there ");
  EXPECT_EQ(command.kind, ChatCommandKind::kSay);
  EXPECT_EQ(command.room, "lobby");
  EXPECT_EQ(command.text, "hello  there ");  // inner and trailing spaces are the user's
}

TEST(ChatCommands, LineEndingsAreStripped) {
  EXPECT_EQ(parsed("hi\r\n").text, "hi");
  EXPECT_EQ(parsed("hi\r").text, "hi");
}

TEST(ChatCommands, DoubleSlashSaysASlashLine) {
  ChatCommand command = parsed("//join is a command");
  EXPECT_EQ(command.kind, ChatCommandKind::kSay);
  EXPECT_EQ(command.text, "/join is a command");
}

TEST(ChatCommands, PlainTextOutsideARoomIsAnError) {
  EXPECT_NE(error_of("hello", "").find("/join ROOM first"), std::string::npos);
}

TEST(ChatCommands, EmptyAndBlankLinesDoNothing) {
  EXPECT_EQ(parsed("").kind, ChatCommandKind::kNone);
  EXPECT_EQ(parsed("  \t ").kind, ChatCommandKind::kNone);
  EXPECT_EQ(parsed("\r", "").kind, ChatCommandKind::kNone);
}

TEST(ChatCommands, Join) {
  ChatCommand command = parsed("/join #dev-ops", "");
  EXPECT_EQ(command.kind, ChatCommandKind::kJoin);
  EXPECT_EQ(command.room, "#dev-ops");
  EXPECT_EQ(parsed("  /j lobby  ").room, "lobby");
  EXPECT_EQ(error_of("/join"), "usage: /join ROOM");
  EXPECT_EQ(error_of("/join a b"), "usage: /join ROOM");
  EXPECT_NE(error_of("/join bad@room").find("invalid room name \"bad@room\""), std::string::npos);
  EXPECT_NE(error_of("/join " + std::string(65, 'r')).find("invalid room name"), std::string::npos);
}

TEST(ChatCommands, LeaveDefaultsToTheCurrentRoom) {
  EXPECT_EQ(parsed("/leave").room, "lobby");
  ChatCommand command = parsed("/leave other");
  EXPECT_EQ(command.kind, ChatCommandKind::kLeave);
  EXPECT_EQ(command.room, "other");
  EXPECT_NE(error_of("/leave", "").find("not in a room"), std::string::npos);
  EXPECT_EQ(error_of("/leave a b"), "usage: /leave [ROOM]");
}

TEST(ChatCommands, Msg) {
  ChatCommand command = parsed("/msg dev  hello   world", "");
  EXPECT_EQ(command.kind, ChatCommandKind::kMsg);
  EXPECT_EQ(command.room, "dev");
  EXPECT_EQ(command.text, "hello   world");
  EXPECT_EQ(error_of("/msg dev"), "usage: /msg ROOM TEXT");
  EXPECT_EQ(error_of("/msg"), "usage: /msg ROOM TEXT");
  EXPECT_NE(error_of("/msg no/pe hi").find("invalid room name"), std::string::npos);
}

TEST(ChatCommands, Dm) {
  ChatCommand command = parsed("/dm bob psst, over here", "");
  EXPECT_EQ(command.kind, ChatCommandKind::kDm);
  EXPECT_EQ(command.user, "bob");
  EXPECT_EQ(command.text, "psst, over here");
  EXPECT_EQ(error_of("/dm bob"), "usage: /dm USER TEXT");
  EXPECT_NE(error_of("/dm b@b hi").find("invalid user name \"b@b\""), std::string::npos);
  EXPECT_NE(error_of("/dm #bob hi").find("invalid user name"), std::string::npos);  // '#' is for rooms
}

TEST(ChatCommands, Who) {
  EXPECT_EQ(parsed("/who").room, "lobby");
  ChatCommand command = parsed("/who dev");
  EXPECT_EQ(command.kind, ChatCommandKind::kWho);
  EXPECT_EQ(command.room, "dev");
  EXPECT_NE(error_of("/who", "").find("usage: /who ROOM"), std::string::npos);
  // Issue 18: the next page of a big room's who.
  command = parsed("/who dev bob");
  EXPECT_EQ(command.room, "dev");
  EXPECT_EQ(command.after, "bob");
  EXPECT_NE(error_of("/who dev b@b").find("invalid user name"), std::string::npos);
  EXPECT_EQ(error_of("/who dev bob extra"), "usage: /who [ROOM] [AFTER]");
}

TEST(ChatCommands, HistoryWithAndWithoutLimit) {
  ChatCommand command = parsed("/history dev 20");
  EXPECT_EQ(command.kind, ChatCommandKind::kHistory);
  EXPECT_EQ(command.room, "dev");
  EXPECT_EQ(command.limit, 20u);
  EXPECT_EQ(parsed("/history dev").limit, 0u);
  EXPECT_EQ(parsed("/history").room, "lobby");
  EXPECT_EQ(parsed("/history dev 1000").limit, 1000u);
  for (const char* bad : {"0", "1001", "-1", "7.0", "x", "99999999999999999999"}) {
    EXPECT_NE(error_of(std::string("/history dev ") + bad).find("invalid history limit"), std::string::npos) << bad;
  }
  EXPECT_EQ(error_of("/history dev 5 6"), "usage: /history [ROOM] [LIMIT]");
}

TEST(ChatCommands, PingQuitHelp) {
  EXPECT_EQ(parsed("/ping").kind, ChatCommandKind::kPing);
  EXPECT_EQ(parsed("/quit").kind, ChatCommandKind::kQuit);
  EXPECT_EQ(parsed("/exit", "").kind, ChatCommandKind::kQuit);
  EXPECT_EQ(parsed("/help").kind, ChatCommandKind::kHelp);
  EXPECT_EQ(error_of("/quit now"), "usage: /quit");
  EXPECT_NE(tools::cli::chat_help_text().find("/history"), std::string_view::npos);
}

TEST(ChatCommands, UnknownCommandIsNamed) {
  EXPECT_EQ(error_of("/frobnicate x"), "unknown command /frobnicate (try /help)");
  EXPECT_EQ(error_of("/"), "unknown command / (try /help)");
}

TEST(ChatCommands, InvalidUtf8IsRefusedBeforeSending) {
  EXPECT_NE(error_of("caf\xc3").find("not valid UTF-8"), std::string::npos);
  EXPECT_NE(error_of("/msg dev \xff").find("not valid UTF-8"), std::string::npos);
  EXPECT_EQ(parsed("caf\xc3\xa9").text, "caf\xc3\xa9");
}

TEST(ChatCommands, MessagesAreWhatTheServerParses) {
  chat::ChatParser parser;
  chat::ClientMessage message = server_view(parser, tools::cli::write_hello("alice"));
  EXPECT_EQ(message.type, chat::ClientType::kHello);
  EXPECT_EQ(message.name, "alice");

  message = server_view(parser, tools::cli::write_join("#dev"));
  EXPECT_EQ(message.type, chat::ClientType::kJoin);
  EXPECT_EQ(message.room, "#dev");

  message = server_view(parser, write_client_message(parsed("say \"quoted\" \\ </script>\t"), "c7"));
  EXPECT_EQ(message.type, chat::ClientType::kMsg);
  EXPECT_EQ(message.room, "lobby");
  EXPECT_EQ(message.text, "say \"quoted\" \\ </script>\t");
  EXPECT_EQ(message.id, "c7");

  message = server_view(parser, write_client_message(parsed("/msg dev x"), {}));
  EXPECT_EQ(message.type, chat::ClientType::kMsg);
  EXPECT_EQ(message.room, "dev");
  EXPECT_TRUE(message.id.empty());

  message = server_view(parser, write_client_message(parsed("/dm bob \xf0\x9f\x98\x80"), {}));
  EXPECT_EQ(message.type, chat::ClientType::kDm);
  EXPECT_EQ(message.to, "bob");
  EXPECT_EQ(message.text, "\xf0\x9f\x98\x80");

  message = server_view(parser, write_client_message(parsed("/leave"), {}));
  EXPECT_EQ(message.type, chat::ClientType::kLeave);
  EXPECT_EQ(message.room, "lobby");

  message = server_view(parser, write_client_message(parsed("/who dev"), {}));
  EXPECT_EQ(message.type, chat::ClientType::kWho);
  EXPECT_EQ(message.room, "dev");
  EXPECT_TRUE(message.after.empty());
  message = server_view(parser, write_client_message(parsed("/who dev bob"), {}));
  EXPECT_EQ(message.after, "bob");

  message = server_view(parser, write_client_message(parsed("/history dev 20"), {}));
  EXPECT_EQ(message.type, chat::ClientType::kHistory);
  EXPECT_EQ(message.room, "dev");
  EXPECT_EQ(message.limit, 20u);
  message = server_view(parser, write_client_message(parsed("/history"), {}));
  EXPECT_EQ(message.limit, 0u);

  message = server_view(parser, write_client_message(parsed("/ping"), {}));
  EXPECT_EQ(message.type, chat::ClientType::kPing);
}

TEST(ChatCommands, LocalCommandsSendNothing) {
  EXPECT_EQ(write_client_message(parsed("/quit"), "x"), "");
  EXPECT_EQ(write_client_message(parsed("/help"), "x"), "");
  EXPECT_EQ(write_client_message(parsed(""), "x"), "");
}

}  // namespace
