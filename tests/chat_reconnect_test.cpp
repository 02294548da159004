// parley-cli's reconnect bookkeeping (tools/chat_reconnect.h, issue 14): ids on msg/dm, the
// resume token, since_seq per room, and the resend of unacked messages after a reconnect, each
// exactly once and only after its room's recovery.
#include "tools/chat_reconnect.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

using tools::cli::ChatCommand;
using tools::cli::ChatCommandKind;
using tools::cli::ChatReconnect;
using tools::cli::ServerEvent;
using tools::cli::ServerMessageFormatter;

ChatCommand say(std::string room, std::string text) {
  ChatCommand command;
  command.kind = ChatCommandKind::kSay;
  command.room = std::move(room);
  command.text = std::move(text);
  return command;
}

class ChatReconnectTest : public ::testing::Test {
 protected:
  std::vector<std::string> feed(const std::string& json) {
    ServerEvent event = formatter_.format(json);
    return state_.on_event(event, "bob", rooms_);
  }

  ServerMessageFormatter formatter_;
  ChatReconnect state_{"p-"};
  std::vector<std::string> rooms_{"lobby", "dev"};
};

TEST_F(ChatReconnectTest, MessagesCarryFreshIdsAndAcksForgetThem) {
  EXPECT_EQ(state_.send(say("lobby", "a")), R"({"type":"msg","room":"lobby","text":"a","id":"p-1"})");
  EXPECT_EQ(state_.send(say("lobby", "b")), R"({"type":"msg","room":"lobby","text":"b","id":"p-2"})");
  EXPECT_EQ(state_.unacked(), 2u);
  EXPECT_TRUE(feed(R"({"type":"ack","id":"p-1","seq":4,"ts":1})").empty());
  EXPECT_EQ(state_.unacked(), 1u);
  feed(R"({"type":"error","code":"unavailable","reason":"x","id":"p-2"})");
  EXPECT_EQ(state_.unacked(), 1u);  // not stored: resent after the next reconnect
  feed(R"({"type":"error","code":"text_too_long","reason":"x","id":"p-2"})");
  EXPECT_EQ(state_.unacked(), 0u);  // final
  ChatCommand who;
  who.kind = ChatCommandKind::kWho;
  who.room = "lobby";
  EXPECT_EQ(state_.send(who), R"({"type":"who","room":"lobby"})");
}

TEST_F(ChatReconnectTest, AReconnectResumesRejoinsWithSinceSeqAndResendsEachRoomAfterItsRecovery) {
  EXPECT_EQ(state_.hello("bob"), R"({"type":"hello","name":"bob"})");
  feed(R"({"type":"welcome","name":"bob","resume":"tok1"})");
  EXPECT_TRUE(state_.ready());
  feed(R"({"type":"history","room":"lobby","messages":[{"from":"a","text":"x","ts":1,"seq":6},{"from":"a","text":"y","ts":1,"seq":7}]})");
  feed(R"({"type":"msg","room":"lobby","from":"a","text":"z","ts":1,"seq":8})");
  EXPECT_EQ(state_.last_seq("lobby"), 8u);
  std::string to_lobby = state_.send(say("lobby", "m1"));
  std::string to_dev = state_.send(say("dev", "m2"));
  ChatCommand dm;
  dm.kind = ChatCommandKind::kDm;
  dm.user = "alice";
  dm.text = "psst";
  std::string direct = state_.send(dm);

  state_.on_connection_lost();
  EXPECT_FALSE(state_.ready());
  EXPECT_EQ(state_.hello("bob"), R"({"type":"hello","name":"bob","resume":"tok1"})");
  // The token failed (server restarted): plain hello, nothing else yet.
  EXPECT_EQ(feed(R"({"type":"error","code":"resume_failed","reason":"gone"})"),
            std::vector<std::string>{R"({"type":"hello","name":"bob"})"});
  EXPECT_EQ(state_.hello("bob"), R"({"type":"hello","name":"bob"})");
  std::vector<std::string> after_welcome = feed(R"({"type":"welcome","name":"bob","resume":"tok2"})");
  EXPECT_EQ(after_welcome, (std::vector<std::string>{R"({"type":"join","room":"lobby","since_seq":8})",
                                                     R"({"type":"join","room":"dev"})", direct}));
  EXPECT_FALSE(state_.ready());
  EXPECT_EQ(feed(R"({"type":"history","room":"dev","messages":[]})"), std::vector<std::string>{to_dev});
  EXPECT_EQ(feed(R"({"type":"history","room":"lobby","messages":[],"recovered":true})"),
            std::vector<std::string>{to_lobby});
  EXPECT_TRUE(state_.ready());
  // A later history of the same room (a /history) resends nothing again.
  EXPECT_TRUE(feed(R"({"type":"history","room":"lobby","messages":[]})").empty());
  EXPECT_EQ(state_.resume_token(), "tok2");
}

}  // namespace

namespace {

TEST(ChatReconnectDisplay, PresenceAndResumedWelcomeAreShown) {
  tools::cli::ServerMessageFormatter formatter;
  EXPECT_EQ(formatter.format(R"({"type":"presence","room":"lobby","user":"bob","status":"away"})").display,
            "* bob is away from lobby\n");
  EXPECT_EQ(formatter.format(R"({"type":"presence","room":"lobby","user":"bob","status":"back"})").display,
            "* bob is back in lobby\n");
  tools::cli::ServerEvent welcome =
      formatter.format(R"({"type":"welcome","name":"bob","resume":"abc","resumed":true,"rooms":["lobby"]})");
  EXPECT_EQ(welcome.display, "* welcome bob (session resumed)\n");
  EXPECT_EQ(welcome.resume, "abc");
  EXPECT_FALSE(tools::cli::random_id_prefix().empty());
  EXPECT_NE(tools::cli::random_id_prefix(), tools::cli::random_id_prefix());
}

}  // namespace
