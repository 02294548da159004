// ChatApp with a Presence (chat/chat_presence.cpp, issue 15) in process, against a fake that
// records what the app asked and lets the test answer: hello waits for the claim, every answer
// (ok, taken, unavailable, refused at submit) gets its reply, a claim answered after its
// connection closed is given back, presence events go out and come in, `who` merges the other
// nodes' members. The Redis engine itself is tested end to end in redis_presence_test.cpp.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "chat/cluster/presence.h"
#include "tests/support/chat_test_support.h"

namespace parley_test {
namespace {

class FakePresence final : public chat::Presence {
 public:
  void set_client(chat::PresenceClient* client) override { client_ = client; }
  bool claim(std::string_view name, uint64_t cookie) override {
    if (refuse) return false;
    claims.emplace_back(std::string(name), cookie);
    return true;
  }
  void adopt(std::string_view name) override { adopted.emplace_back(name); }
  void release(std::string_view name) override { released.emplace_back(name); }
  void joined(std::string_view room, std::string_view user) override {
    events.push_back("j " + std::string(room) + " " + std::string(user));
  }
  void left(std::string_view room, std::string_view user) override {
    events.push_back("l " + std::string(room) + " " + std::string(user));
  }
  void typing(std::string_view room, std::string_view user, bool on) override {
    events.push_back(std::string(on ? "t " : "s ") + std::string(room) + " " + std::string(user));
  }
  bool members(std::string_view, uint64_t cookie) override {
    who_cookies.push_back(cookie);
    return true;
  }

  bool refuse = false;
  std::vector<std::pair<std::string, uint64_t>> claims;
  std::vector<std::string> adopted, released, events;
  std::vector<uint64_t> who_cookies;
  chat::PresenceClient* client_ = nullptr;
};

class ChatPresenceTest : public ChatAppFixture {
 protected:
  ChatPresenceTest() { app->set_presence(&presence); }
  // Opens `id`, says hello as `name` and answers its claim with `result`.
  void hello(ConnectionId id, const std::string& name, chat::ClaimResult result = chat::ClaimResult::kOk) {
    app->on_open(id);
    send(id, R"({"type":"hello","name":")" + name + R"(","id":"h"})");
    ASSERT_FALSE(presence.claims.empty());
    EXPECT_EQ(transport->pending(id), 0u) << "answered before the claim";
    app->on_claimed(presence.claims.back().second, name, result);
  }
  FakePresence presence;
};

TEST_F(ChatPresenceTest, HelloIsAnsweredByTheClaim) {
  hello(alice, "alice");
  EXPECT_EQ(Json(next(alice)).type(), "welcome");
  hello(bob, "bob", chat::ClaimResult::kTaken);
  expect_error(bob, "name_taken", "h");
  hello(carol, "carol", chat::ClaimResult::kUnavailable);
  expect_error(carol, "unavailable", "h");
  // Refused at submit (Redis away, too many claims pending): answered at once.
  presence.refuse = true;
  send(carol, R"({"type":"hello","name":"carol","id":"h2"})");
  expect_error(carol, "unavailable", "h2");
  EXPECT_EQ(app->users(), 1u);
}

TEST_F(ChatPresenceTest, AClaimAnsweredAfterItsConnectionClosedIsGivenBack) {
  app->on_open(alice);
  send(alice, R"({"type":"hello","name":"alice"})");
  send(alice, R"({"type":"hello","name":"alice","id":"again"})");
  expect_error(alice, "rejected", "again");  // one claim per connection at a time
  ASSERT_EQ(presence.claims.size(), 1u);
  app->on_close(alice, 1006);
  ConnectionId reused = make_id(10, 2);  // the same fd, a new connection
  app->on_open(reused);
  app->on_claimed(presence.claims[0].second, "alice", chat::ClaimResult::kOk);
  expect_quiet(reused);
  EXPECT_EQ(presence.released, std::vector<std::string>{"alice"});
  EXPECT_EQ(app->users(), 0u);
}

TEST_F(ChatPresenceTest, EventsGoOutAndComeInAndWhoMergesOtherNodes) {
  hello(alice, "alice");
  next(alice);
  join(alice, "lobby");
  send(alice, R"({"type":"typing","room":"lobby","on":true})");
  app->on_remote_presence("lobby", "zed", chat::PresenceEvent::kJoined);
  Json joined(next(alice));
  EXPECT_EQ(joined.type(), "joined");
  EXPECT_EQ(joined.str("user"), "zed");
  app->on_remote_presence("lobby", "zed", chat::PresenceEvent::kTypingOff);
  Json typing(next(alice));
  EXPECT_EQ(typing.type(), "typing");
  EXPECT_FALSE(typing.boolean("on"));
  app->on_remote_presence("nowhere", "zed", chat::PresenceEvent::kLeft);  // no such room here
  expect_quiet(alice);

  send(alice, R"({"type":"who","room":"lobby"})");
  expect_quiet(alice);  // waits for the other nodes
  ASSERT_EQ(presence.who_cookies.size(), 1u);
  app->on_members(presence.who_cookies[0], true, {"zed"});
  EXPECT_EQ(Json(next(alice)).users(), (std::vector<std::string>{"alice", "zed"}));
  send(alice, R"({"type":"who","room":"lobby"})");
  app->on_members(presence.who_cookies[1], false, {});  // Redis away: this node's members
  EXPECT_EQ(Json(next(alice)).users(), (std::vector<std::string>{"alice"}));

  app->on_close(alice, 1000);  // ends the session: leaves its rooms, gives its name back
  EXPECT_EQ(presence.events, (std::vector<std::string>{"j lobby alice", "t lobby alice", "l lobby alice"}));
  EXPECT_EQ(presence.released, std::vector<std::string>{"alice"});
}

}  // namespace
}  // namespace parley_test
