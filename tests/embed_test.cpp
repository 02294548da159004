// The embedding API (chat/parley.h): a parley::Server run on a thread of this process on port 0,
// driven by real WebSocket clients over loopback. The shipped examples are embed_examples_test.cpp.
#include "chat/parley.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <simdjson.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/embed_support.h"
#include "tests/support/parleyd_process.h"
#include "tests/support/ws_test_client.h"

namespace parley_test {
namespace {

constexpr milliseconds kTimeout{3000};

std::string recv_text(WsTestClient& client, milliseconds timeout = kTimeout) {
  Received message = client.recv_message(timeout);
  if (!message.ok()) {
    ADD_FAILURE() << "no message: " << message.error;
    return "";
  }
  return message.payload;
}

// A parley::Server on its own thread, with hooks that count and can veto.
class EmbedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    parley::Config config;
    config.listen = "127.0.0.1:0";
    config.history_size = 10;
    config.close_timeout_ms = 1000;
    hooks_.authorize = [this](const parley::Handshake& handshake) {
      ++authorized_;
      parley::Authorization answer;
      if (handshake.header("X-Deny") == "yes") {
        answer.accept = false;
        answer.status = 401;
        answer.reason = "no entry";
      }
      answer.user = std::string(handshake.query_param("user"));
      return answer;
    };
    hooks_.on_message = [this](const parley::Message& message) {
      ++messages_seen_;
      if (message.direct()) ++direct_seen_;
      return message.text.find("veto") == std::string_view::npos;
    };
    hooks_.on_custom = [this](const parley::CustomMessage& message) {
      if (message.type == "echo-user") {
        // From a hook, publish is delivered before it returns, and send works.
        server_->send(message.client, R"({"type":"you","user":")" + std::string(message.user) + R"("})");
        return true;
      }
      if (message.type == "announce") return server_->publish("lobby", "announced by hook");
      if (message.type == "shutdown") {
        server_->stop();
        return true;
      }
      if (message.type == "throw") throw std::runtime_error("hook failure");
      return false;
    };
    server_ = std::make_unique<parley::Server>(config, hooks_);
    ASSERT_EQ(server_->start(), 0);
    ASSERT_NE(server_->port(), 0);
    thread_ = std::thread([this] { run_rc_ = server_->run(); });
  }

  void TearDown() override {
    if (server_ != nullptr) server_->stop();
    if (thread_.joinable()) thread_.join();
  }

  // A client identified by the authorize hook as `user` (welcome without hello).
  std::unique_ptr<WsTestClient> connect_as(std::string_view user) {
    auto client = std::make_unique<WsTestClient>();
    EXPECT_TRUE(client->connect("127.0.0.1", server_->port(), "/chat?user=" + std::string(user))) << client->error();
    std::string welcome = recv_text(*client);
    EXPECT_EQ(json_field(welcome, "type"), "welcome") << welcome;
    EXPECT_EQ(json_field(welcome, "name"), user);
    return client;
  }

  void join(WsTestClient& client, std::string_view room) {
    ASSERT_TRUE(client.send_frame(kOpText, R"({"type":"join","room":")" + std::string(room) + R"("})"));
    ASSERT_EQ(json_field(recv_text(client), "type"), "history");
  }

  parley::Hooks hooks_;
  std::unique_ptr<parley::Server> server_;
  std::thread thread_;
  std::atomic<int> run_rc_{-1};
  std::atomic<int> authorized_{0};
  std::atomic<int> messages_seen_{0};
  std::atomic<int> direct_seen_{0};
};

TEST_F(EmbedTest, AuthorizeIdentifiesOrRejects) {
  auto alice = connect_as("alice");
  EXPECT_EQ(authorized_.load(), 1);
  // A hello is no longer needed, nor accepted.
  ASSERT_TRUE(alice->send_frame(kOpText, R"({"type":"hello","name":"x"})"));
  EXPECT_EQ(json_field(recv_text(*alice), "code"), "already_identified");

  WsTestClient denied;
  ASSERT_TRUE(denied.connect_tcp("127.0.0.1", server_->port()));
  EXPECT_FALSE(denied.upgrade("/chat", {"X-Deny: yes"}));
  EXPECT_EQ(denied.handshake_response().status, 401);
  EXPECT_NE(denied.handshake_response().body.find("no entry"), std::string::npos);

  WsTestClient taken;
  ASSERT_TRUE(taken.connect_tcp("127.0.0.1", server_->port()));
  EXPECT_FALSE(taken.upgrade("/chat?user=alice"));
  EXPECT_EQ(taken.handshake_response().status, 409);

  // No user from the hook: the usual hello.
  WsTestClient plain;
  ASSERT_TRUE(plain.connect("127.0.0.1", server_->port(), "/chat"));
  ASSERT_TRUE(plain.send_frame(kOpText, R"({"type":"hello","name":"plain"})"));
  EXPECT_EQ(json_field(recv_text(plain), "type"), "welcome");
  EXPECT_EQ(authorized_.load(), 4);
}

TEST_F(EmbedTest, OnMessageSeesAndVetoes) {
  auto alice = connect_as("alice");
  auto bob = connect_as("bob");
  join(*alice, "lobby");
  join(*bob, "lobby");
  EXPECT_EQ(json_field(recv_text(*alice), "type"), "joined");

  ASSERT_TRUE(alice->send_frame(kOpText, R"({"type":"msg","room":"lobby","text":"please veto me","id":"a1"})"));
  std::string error = recv_text(*alice);
  EXPECT_EQ(json_field(error, "code"), "rejected");
  EXPECT_EQ(json_field(error, "id"), "a1");
  ASSERT_TRUE(alice->send_frame(kOpText, R"({"type":"msg","room":"lobby","text":"fine"})"));
  std::string msg = recv_text(*bob);  // bob never saw the vetoed one
  EXPECT_EQ(json_field(msg, "text"), "fine");
  EXPECT_EQ(json_number(msg, "seq"), 1u);
  EXPECT_EQ(json_field(recv_text(*alice), "type"), "ack");

  ASSERT_TRUE(alice->send_frame(kOpText, R"({"type":"dm","to":"bob","text":"veto dm"})"));
  EXPECT_EQ(json_field(recv_text(*alice), "code"), "rejected");
  ASSERT_TRUE(alice->send_frame(kOpText, R"({"type":"dm","to":"bob","text":"ok dm"})"));
  EXPECT_EQ(json_field(recv_text(*bob), "text"), "ok dm");
  EXPECT_EQ(messages_seen_.load(), 4);
  EXPECT_EQ(direct_seen_.load(), 2);
  Received extra = bob->recv_message(milliseconds(100));
  EXPECT_EQ(extra.status, RecvStatus::kTimeout) << extra.payload;
}

TEST_F(EmbedTest, CustomTypes) {
  auto alice = connect_as("alice");
  ASSERT_TRUE(alice->send_frame(kOpText, R"({"type":"echo-user"})"));
  std::string reply = recv_text(*alice);
  EXPECT_EQ(json_field(reply, "type"), "you");
  EXPECT_EQ(json_field(reply, "user"), "alice");
  ASSERT_TRUE(alice->send_frame(kOpText, R"({"type":"nobody-handles-this","id":"n"})"));
  EXPECT_EQ(json_field(recv_text(*alice), "code"), "unknown_type");
  ASSERT_TRUE(alice->send_frame(kOpText, R"({"type":"throw"})"));
  EXPECT_EQ(json_field(recv_text(*alice), "code"), "unknown_type");  // contained, connection stays up
  join(*alice, "lobby");
  auto bob = connect_as("bob");
  join(*bob, "lobby");
  recv_text(*alice);  // joined bob
  ASSERT_TRUE(bob->send_frame(kOpText, R"({"type":"announce"})"));
  for (WsTestClient* client : {alice.get(), bob.get()}) {
    std::string msg = recv_text(*client);
    EXPECT_EQ(json_field(msg, "type"), "msg");
    EXPECT_EQ(json_field(msg, "text"), "announced by hook");
    EXPECT_EQ(json_field(msg, "from"), "server");
  }
}

TEST_F(EmbedTest, PublishFromAnotherThreadReachesMembersAndHistory) {
  auto alice = connect_as("alice");
  auto bob = connect_as("bob");
  join(*alice, "news");
  join(*bob, "news");
  recv_text(*alice);
  EXPECT_TRUE(server_->publish("news", "first", "editor"));
  EXPECT_TRUE(server_->publish("news", "second"));
  EXPECT_FALSE(server_->publish("bad room!", "x"));
  EXPECT_FALSE(server_->publish("news", "x", "not a name"));
  EXPECT_FALSE(server_->publish("news", std::string(5000, 'x')));
  EXPECT_FALSE(server_->publish("news", "\xff\xfe"));
  for (WsTestClient* client : {alice.get(), bob.get()}) {
    std::string first = recv_text(*client);
    EXPECT_EQ(json_field(first, "from"), "editor");
    EXPECT_EQ(json_field(first, "text"), "first");
    EXPECT_EQ(json_number(first, "seq"), 1u);
    std::string second = recv_text(*client);
    EXPECT_EQ(json_field(second, "from"), "server");
    EXPECT_EQ(json_number(second, "seq"), 2u);
  }
  auto carol = connect_as("carol");
  ASSERT_TRUE(carol->send_frame(kOpText, R"({"type":"join","room":"news"})"));
  std::string history = recv_text(*carol);
  EXPECT_NE(history.find("first"), std::string::npos) << history;
  EXPECT_NE(history.find("second"), std::string::npos) << history;
  EXPECT_EQ(json_field(recv_text(*alice), "type"), "joined");
  // Many publishes from several threads: all arrive, seqs in order.
  std::vector<std::thread> publishers;
  for (int t = 0; t < 4; ++t) {
    publishers.emplace_back([this] {
      for (int i = 0; i < 50; ++i) EXPECT_TRUE(server_->publish("news", "bulk"));
    });
  }
  for (auto& thread : publishers) thread.join();
  uint64_t last = 2;
  for (int i = 0; i < 200; ++i) {
    std::string msg = recv_text(*alice);
    ASSERT_EQ(json_number(msg, "seq"), last + 1) << msg;
    last = json_number(msg, "seq");
  }
}

TEST_F(EmbedTest, StopFromAnotherThreadClosesClients) {
  auto alice = connect_as("alice");
  auto bob = connect_as("bob");
  auto start = std::chrono::steady_clock::now();
  server_->stop();
  // run() serves the close handshakes: clients that answer and close let it return at once.
  for (WsTestClient* client : {alice.get(), bob.get()}) {
    CloseResult closed = client->expect_close();
    EXPECT_TRUE(closed.close_received) << closed.error;
    EXPECT_EQ(closed.code, 1001);
    EXPECT_TRUE(closed.tcp_closed);
    client->disconnect();
  }
  thread_.join();
  EXPECT_EQ(run_rc_.load(), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}

TEST_F(EmbedTest, StopWaitsAtMostTheCloseTimeoutForSilentClients) {
  WsTestClient silent;
  ASSERT_TRUE(silent.connect("127.0.0.1", server_->port(), "/chat"));
  auto start = std::chrono::steady_clock::now();
  server_->stop();
  thread_.join();  // the client never answers the close: the close timeout (1 s here) ends it
  EXPECT_EQ(run_rc_.load(), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(4));
}

TEST_F(EmbedTest, StopFromAHook) {
  auto alice = connect_as("alice");
  ASSERT_TRUE(alice->send_frame(kOpText, R"({"type":"shutdown"})"));
  CloseResult closed = alice->expect_close();
  EXPECT_TRUE(closed.close_received) << closed.error;
  alice->disconnect();
  thread_.join();
  EXPECT_EQ(run_rc_.load(), 0);
}

TEST(EmbedServerTest, StopBeforeRunReturnsAtOnce) {
  parley::Config config;
  config.listen = "127.0.0.1:0";
  parley::Server server(config);
  server.stop();
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(server.run(), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}

TEST(EmbedServerTest, StartErrors) {
  parley::Config config;
  config.listen = "not an address";
  parley::Server bad(config);
  EXPECT_EQ(bad.start(), -EINVAL);
  EXPECT_EQ(bad.port(), 0);
  EXPECT_EQ(bad.address(), "");

  config.listen = "127.0.0.1:0";
  parley::Server first(config);
  ASSERT_EQ(first.start(), 0);
  EXPECT_EQ(first.start(), 0);  // idempotent
  config.listen = first.address();
  parley::Server second(config);
  EXPECT_EQ(second.start(), -EADDRINUSE);
  EXPECT_NE(second.run(), 0);
}

TEST(EmbedServerTest, HealthzAndDestroyWithoutRun) {
  parley::Config config;
  config.listen = "127.0.0.1:0";
  auto server = std::make_unique<parley::Server>(config);
  ASSERT_EQ(server->start(), 0);
  std::thread loop([&] { server->run(); });
  HttpResponse response =
      http_request("127.0.0.1", server->port(), "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(response.status, 200);
  server->stop();
  loop.join();
  server.reset();
  parley::Server never_run(config);  // destroyed without start or run
}

}  // namespace
}  // namespace parley_test
