// The embedding API's host-side calls (chat/parley.h, issue 17), made from the test's thread
// (another thread than the loop's) and from hooks: who is online, kick, send, publish, stats,
// metrics, and what they answer while the server is not running. Only parley.h drives the server.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "chat/parley.h"
#include "tests/embed_support.h"

namespace parley_test {
namespace {

using Names = std::vector<std::string>;

TEST(EmbedHostTest, WhoIsOnlineFromAnotherThread) {
  ServerThread server({}, {});
  ASSERT_EQ(server.start_rc(), 0) << server.server().error();
  parley::Server& host = server.server();
  EXPECT_TRUE(host.users().empty());
  auto alice = server.hello("alice");
  auto bob = server.hello("bob");
  ServerThread::join(*alice, "lobby");
  ServerThread::join(*bob, "lobby");
  ServerThread::join(*bob, "games");
  EXPECT_EQ(host.users(), (Names{"alice", "bob"}));
  EXPECT_EQ(host.rooms(), (Names{"games", "lobby"}));
  EXPECT_EQ(host.members("lobby"), (Names{"alice", "bob"}));
  EXPECT_EQ(host.members("games"), (Names{"bob"}));
  EXPECT_TRUE(host.members("nowhere").empty());
  EXPECT_EQ(host.rooms_of("bob"), (Names{"games", "lobby"}));
  EXPECT_TRUE(host.rooms_of("nobody").empty());
  EXPECT_NE(host.client_of("alice"), 0u);
  EXPECT_EQ(host.client_of("nobody"), 0u);
  parley::Stats stats = host.stats();
  EXPECT_EQ(stats.users, 2u);
  EXPECT_EQ(stats.rooms, 2u);
  EXPECT_EQ(stats.connections, 2u);
  std::string metrics = host.metrics();
  EXPECT_NE(metrics.find("parley_chat_rooms 2"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("parley_connections"), std::string::npos) << metrics;
}

TEST(EmbedHostTest, KickUserAndConnectionWithCodeAndReason) {
  EventLog log;
  parley::Hooks hooks;
  hooks.on_disconnect = [&](const parley::Client& c) {
    log.add("disconnect " + std::string(c.user) + " " + std::to_string(c.code));
  };
  ServerThread server({}, hooks);
  ASSERT_EQ(server.start_rc(), 0) << server.server().error();
  parley::Server& host = server.server();
  auto alice = server.hello("alice");
  auto bob = server.hello("bob");
  // Refused before reaching the loop: codes the protocol owns, a reason over 123 bytes.
  EXPECT_FALSE(host.kick_user("bob", 1002, "no"));
  EXPECT_FALSE(host.kick_user("bob", 2999, "no"));
  EXPECT_FALSE(host.kick_user("bob", 4000, std::string(124, 'x')));
  EXPECT_FALSE(host.kick_user("nobody", 4000, "no"));
  EXPECT_FALSE(host.kick(12345678, 4000, "no"));

  ASSERT_TRUE(host.kick_user("bob", 4001, "spamming"));
  CloseResult closed = bob->expect_close();
  EXPECT_TRUE(closed.close_received) << closed.error;
  EXPECT_EQ(closed.code, 4001);
  EXPECT_EQ(closed.reason, "spamming");
  EXPECT_TRUE(log.wait_for("disconnect bob 4001"));

  ASSERT_TRUE(host.kick(host.client_of("alice"), 1000, "bye"));
  closed = alice->expect_close();
  EXPECT_EQ(closed.code, 1000);
  EXPECT_EQ(closed.reason, "bye");
  EXPECT_TRUE(log.wait_for("disconnect alice 1000"));
  EXPECT_TRUE(host.users().empty());
}

TEST(EmbedHostTest, SendAndPublishFromAnotherThread) {
  ServerThread server({}, {});
  ASSERT_EQ(server.start_rc(), 0) << server.server().error();
  parley::Server& host = server.server();
  auto alice = server.hello("alice");
  auto bob = server.hello("bob");
  ServerThread::join(*bob, "lobby");
  EXPECT_TRUE(host.send_to_user("alice", R"({"type":"notice","text":"to alice"})"));
  EXPECT_EQ(json_field(next_text(*alice), "text"), "to alice");
  EXPECT_TRUE(host.send(host.client_of("bob"), R"({"type":"notice","text":"to bob"})"));
  EXPECT_EQ(json_field(next_of_type(*bob, "notice"), "text"), "to bob");
  EXPECT_FALSE(host.send_to_user("nobody", "{}"));
  EXPECT_FALSE(host.send(host.client_of("alice"), std::string("\xff", 1)));  // not UTF-8 (RFC 6455 8.1)
  EXPECT_TRUE(host.publish("lobby", "maintenance at noon", "ops"));
  std::string message = next_of_type(*bob, "msg");
  EXPECT_EQ(json_field(message, "from"), "ops");
  EXPECT_EQ(json_field(message, "text"), "maintenance at noon");
}

TEST(EmbedHostTest, CallsFromHooksActAtOnce) {
  parley::Server* host = nullptr;
  parley::Hooks hooks;
  // A greeting sent from on_connect, and the member list read from on_join.
  hooks.on_connect = [&](const parley::Client& c) {
    host->send(c.client, R"({"type":"greeting","members":")" + std::to_string(host->users().size()) + R"("})");
  };
  std::vector<std::string> seen;
  hooks.on_join = [&](const parley::RoomEvent& e) {
    for (const std::string& m : host->members(e.room)) seen.push_back(m);
  };
  ServerThread server({}, hooks);
  ASSERT_EQ(server.start_rc(), 0) << server.server().error();
  host = &server.server();
  WsTestClient client;
  ASSERT_TRUE(client.connect("127.0.0.1", server.port(), "/chat"));
  ASSERT_TRUE(client.send_frame(kOpText, R"({"type":"hello","name":"gina"})"));
  EXPECT_EQ(json_field(next_text(client), "type"), "welcome");
  std::string greeting = next_text(client);
  EXPECT_EQ(json_field(greeting, "type"), "greeting") << greeting;
  EXPECT_EQ(json_field(greeting, "members"), "1") << greeting;
  ServerThread::join(client, "lobby");
  client.disconnect();
  server.stop();  // joins the loop thread: `seen` is ours again
  EXPECT_EQ(seen, (Names{"gina"}));
}

TEST(EmbedHostTest, NotRunningQueriesAnswerEmptyAndActionsFalse) {
  parley::Config config;
  config.listen = "127.0.0.1:0";
  parley::Server server(config);
  ASSERT_EQ(server.start(), 0);
  EXPECT_TRUE(server.users().empty());
  EXPECT_TRUE(server.rooms().empty());
  EXPECT_FALSE(server.kick_user("x"));
  EXPECT_FALSE(server.send_to_user("x", "{}"));
  EXPECT_EQ(server.stats().connections, 0u);
  EXPECT_TRUE(server.metrics().empty());
  // publish alone queues before run() (delivered when run() starts).
  EXPECT_TRUE(server.publish("lobby", "early"));
  server.stop();
  EXPECT_EQ(server.run(), 0);
  EXPECT_TRUE(server.users().empty());
  EXPECT_FALSE(server.send(1, "{}"));
}

TEST(EmbedHostTest, CallsRacingStopAreAnsweredNeverHung) {
  ServerThread server({}, {});
  ASSERT_EQ(server.start_rc(), 0) << server.server().error();
  parley::Server& host = server.server();
  std::atomic<bool> done{false};
  std::atomic<int> answered{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&] {
      while (!done.load()) {
        host.users();
        host.stats();
        ++answered;
      }
    });
  }
  std::this_thread::sleep_for(milliseconds(50));
  server.stop();  // run() returns while the callers keep calling
  std::this_thread::sleep_for(milliseconds(50));
  done = true;
  for (std::thread& caller : callers) caller.join();  // hangs (test timeout) if a call was lost
  EXPECT_GT(answered.load(), 0);
}

}  // namespace
}  // namespace parley_test
