// The /chat application end to end: a real parleyd, several clients over loopback (presence on
// join, leave and disconnect, history, DMs, typing, broadcast order, errors, options).
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/chat_test_support.h"
#include "tests/support/parleyd_process.h"

namespace parley_test {
namespace {

class ChatEndToEndTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<ParleydProcess>(args());
    ASSERT_TRUE(server_->ok()) << server_->error();
  }
  // These tests push bursts bigger than the default per-connection rate limit (20/s, burst 40)
  // to test fan-out and ordering; security_integration_test covers the limit itself.
  virtual std::vector<std::string> args() { return {"--rate-limit", "0"}; }
  std::unique_ptr<ChatClient> client(std::string_view name) {
    auto c = std::make_unique<ChatClient>();
    EXPECT_TRUE(c->connect(server_->port())) << c->ws().error();
    c->hello(name);
    return c;
  }
  std::unique_ptr<ParleydProcess> server_;
};

TEST_F(ChatEndToEndTest, JoinPresenceAndWho) {
  auto alice = client("alice");
  auto bob = client("bob");
  Json history(alice->join("lobby"));
  EXPECT_TRUE(history.messages().empty());
  bob->join("lobby");
  Json joined(alice->recv());
  EXPECT_EQ(joined.type(), "joined");
  EXPECT_EQ(joined.str("room"), "lobby");
  EXPECT_EQ(joined.str("user"), "bob");
  ASSERT_TRUE(bob->send(R"({"type":"who","room":"lobby"})"));
  Json who(bob->recv());
  std::vector<std::string> users = who.users();
  std::sort(users.begin(), users.end());
  EXPECT_EQ(users, (std::vector<std::string>{"alice", "bob"}));
  bob->expect_quiet();
}

TEST_F(ChatEndToEndTest, PresenceOnAbruptDisconnect) {
  auto alice = client("alice");
  auto bob = client("bob");
  alice->join("lobby");
  bob->join("lobby");
  alice->recv();  // joined bob
  bob->ws().disconnect();  // TCP gone without a close frame
  Json left(alice->recv());
  EXPECT_EQ(left.type(), "left");
  EXPECT_EQ(left.str("room"), "lobby");
  EXPECT_EQ(left.str("user"), "bob");
  // The name is free again.
  auto bob2 = client("bob");
  bob2->join("lobby");
  EXPECT_EQ(Json(alice->recv()).str("user"), "bob");
}

TEST_F(ChatEndToEndTest, PresenceOnCloseHandshake) {
  auto alice = client("alice");
  auto bob = client("bob");
  alice->join("a");
  alice->join("b");
  bob->join("a");
  bob->join("b");
  alice->recv();
  alice->recv();
  // A well-behaved client: close, wait for the server's close and FIN, then close TCP. The
  // server reports the connection gone (and so the presence) once TCP is closed.
  ASSERT_TRUE(bob->ws().send_close(1000));
  CloseResult closed = bob->ws().expect_close();
  EXPECT_TRUE(closed.close_received) << closed.error;
  EXPECT_EQ(closed.code, 1000);
  bob->ws().disconnect();
  std::set<std::string> rooms;
  for (int i = 0; i < 2; ++i) {
    Json left(alice->recv());
    EXPECT_EQ(left.type(), "left");
    EXPECT_EQ(left.str("user"), "bob");
    rooms.insert(left.str("room"));
  }
  EXPECT_EQ(rooms, (std::set<std::string>{"a", "b"}));
}

TEST_F(ChatEndToEndTest, HistoryOnJoinAndRequest) {
  auto alice = client("alice");
  alice->join("lobby");
  for (int i = 1; i <= 3; ++i) {
    ASSERT_TRUE(alice->send(R"({"type":"msg","room":"lobby","text":"m)" + std::to_string(i) + R"("})"));
    Json ack(alice->recv());
    ASSERT_EQ(ack.type(), "ack");
    EXPECT_EQ(ack.num("seq"), static_cast<uint64_t>(i));
  }
  auto bob = client("bob");
  Json history(bob->join("lobby"));
  std::vector<Json::Item> items = history.messages();
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(seqs_of(items), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(items[0].text, "m1");
  EXPECT_EQ(items[2].from, "alice");
  ASSERT_TRUE(bob->send(R"({"type":"history","room":"lobby","before_seq":3,"limit":1})"));
  EXPECT_EQ(seqs_of(Json(bob->recv()).messages()), (std::vector<uint64_t>{2}));
}

TEST_F(ChatEndToEndTest, DirectMessageOnlyToItsTarget) {
  auto alice = client("alice");
  auto bob = client("bob");
  auto carol = client("carol");
  ASSERT_TRUE(alice->send(R"({"type":"dm","to":"bob","text":"secret","id":"x"})"));
  Json dm(bob->recv());
  EXPECT_EQ(dm.type(), "dm");
  EXPECT_EQ(dm.str("from"), "alice");
  EXPECT_EQ(dm.str("text"), "secret");
  Json ack(alice->recv());
  EXPECT_EQ(ack.type(), "ack");
  EXPECT_EQ(ack.str("id"), "x");
  EXPECT_EQ(ack.num("seq"), 1u);  // the conversation's seq (issue 14)
  carol->expect_quiet();
  bob->expect_quiet();
}

TEST_F(ChatEndToEndTest, TypingReachesOthersOnly) {
  auto alice = client("alice");
  auto bob = client("bob");
  alice->join("r");
  bob->join("r");
  alice->recv();
  ASSERT_TRUE(alice->send(R"({"type":"typing","room":"r","on":true})"));
  Json typing(bob->recv());
  EXPECT_EQ(typing.type(), "typing");
  EXPECT_EQ(typing.str("user"), "alice");
  EXPECT_TRUE(typing.boolean("on"));
  alice->expect_quiet();
}

// Every member gets every other member's messages exactly once, in seq order, and never its
// own; each sender gets one ack per message.
TEST_F(ChatEndToEndTest, BroadcastReachesEveryoneButTheSenderExactlyOnceInOrder) {
  constexpr int kClients = 5;
  constexpr int kPerClient = 40;
  std::vector<std::unique_ptr<ChatClient>> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(client("user" + std::to_string(i)));
    clients.back()->join("room");
  }
  // Drain the presence events: client i saw kClients - 1 - i joins.
  for (int i = 0; i < kClients; ++i) {
    for (int k = i + 1; k < kClients; ++k) ASSERT_EQ(Json(clients[i]->recv()).type(), "joined");
  }
  // Interleave the senders: round r, every client sends one message.
  for (int r = 0; r < kPerClient; ++r) {
    for (int i = 0; i < kClients; ++i) {
      ASSERT_TRUE(clients[i]->send(R"({"type":"msg","room":"room","text":"c)" + std::to_string(i) + "-" +
                                   std::to_string(r) + R"(","id":")" + std::to_string(r) + R"("})"));
    }
  }
  const int total = kClients * kPerClient;
  std::vector<std::set<uint64_t>> acked(kClients);
  std::vector<std::vector<uint64_t>> seen(kClients);
  for (int i = 0; i < kClients; ++i) {
    std::map<std::string, int> next_round;  // per sender: the next round expected
    int expected_messages = total - kPerClient + kPerClient;  // others' messages + own acks
    for (int n = 0; n < expected_messages; ++n) {
      std::string raw = clients[i]->recv();
      Json message(raw);
      if (message.type() == "ack") {
        acked[i].insert(message.num("seq"));
        continue;
      }
      ASSERT_EQ(message.type(), "msg") << raw;
      std::string from = message.str("from");
      ASSERT_NE(from, "user" + std::to_string(i)) << "a sender got its own message";
      std::string text = message.str("text");
      std::string expect = "c" + from.substr(4) + "-" + std::to_string(next_round[from]++);
      ASSERT_EQ(text, expect) << "out of order from " << from;
      seen[i].push_back(message.num("seq"));
    }
    clients[i]->expect_quiet();
  }
  std::set<uint64_t> all_acked;
  for (int i = 0; i < kClients; ++i) {
    ASSERT_EQ(acked[i].size(), static_cast<size_t>(kPerClient));
    all_acked.insert(acked[i].begin(), acked[i].end());
    // Seqs strictly increasing as each receiver sees them.
    EXPECT_TRUE(std::is_sorted(seen[i].begin(), seen[i].end()));
    EXPECT_EQ(std::adjacent_find(seen[i].begin(), seen[i].end()), seen[i].end());
    // Exactly the others' messages.
    std::set<uint64_t> expected;
    for (int k = 0; k < kClients; ++k) {
      if (k != i) expected.insert(acked[k].begin(), acked[k].end());
    }
    EXPECT_EQ(std::set<uint64_t>(seen[i].begin(), seen[i].end()), expected);
    EXPECT_EQ(seen[i].size(), expected.size());
  }
  // Seqs 1..total, each handed out once.
  ASSERT_EQ(all_acked.size(), static_cast<size_t>(total));
  EXPECT_EQ(*all_acked.begin(), 1u);
  EXPECT_EQ(*all_acked.rbegin(), static_cast<uint64_t>(total));
}

TEST_F(ChatEndToEndTest, ErrorsKeepTheConnectionUp) {
  auto alice = std::make_unique<ChatClient>();
  ASSERT_TRUE(alice->connect(server_->port()));
  ASSERT_TRUE(alice->send(R"({"type":"join","room":"r"})"));
  EXPECT_EQ(Json(alice->recv()).str("code"), "not_identified");
  alice->hello("alice");
  for (auto [json, code] : std::vector<std::pair<std::string, std::string>>{
           {"{oops", "bad_json"},
           {R"({"type":"fly"})", "unknown_type"},
           {R"({"type":"msg","room":"r"})", "missing_field"},
           {R"({"type":"msg","room":"r","text":"x"})", "unknown_room"},
           {R"({"type":"dm","to":"ghost","text":"x"})", "unknown_user"},
           {R"({"type":"hello","name":"again"})", "already_identified"},
           {R"({"type":"msg","room":"r","text":")" + std::string(5000, 'y') + R"("})", "text_too_long"}}) {
    ASSERT_TRUE(alice->send(json));
    Json error(alice->recv());
    EXPECT_EQ(error.type(), "error");
    EXPECT_EQ(error.str("code"), code) << json.substr(0, 60);
  }
  ASSERT_TRUE(alice->ws().send_frame(kOpBinary, R"({"type":"ping"})"));
  EXPECT_EQ(Json(alice->recv()).str("code"), "bad_json");
  alice->sync();
}

class ChatEndToEndOptionsTest : public ChatEndToEndTest {
 protected:
  std::vector<std::string> args() override {
    return {"--history", "2", "--max-text", "8", "--max-rooms-per-connection", "1"};
  }
};

TEST_F(ChatEndToEndOptionsTest, OptionsApply) {
  auto alice = client("alice");
  alice->join("r");
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(alice->send(R"({"type":"msg","room":"r","text":"t)" + std::to_string(i) + R"("})"));
    ASSERT_EQ(Json(alice->recv()).type(), "ack");
  }
  ASSERT_TRUE(alice->send(R"({"type":"msg","room":"r","text":"123456789"})"));
  EXPECT_EQ(Json(alice->recv()).str("code"), "text_too_long");
  ASSERT_TRUE(alice->send(R"({"type":"join","room":"s"})"));
  EXPECT_EQ(Json(alice->recv()).str("code"), "too_many_rooms");
  auto bob = client("bob");
  EXPECT_EQ(seqs_of(Json(bob->join("r")).messages()), (std::vector<uint64_t>{3, 4}));
}

}  // namespace
}  // namespace parley_test