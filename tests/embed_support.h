#pragma once
// Shared by the embedding API's tests (tests/embed_*_test.cpp): a parley::Server on its own
// thread, and small JSON readers for what its clients receive. Uses only chat/parley.h of the
// server; the clients are the tests' WebSocket client. Test support only.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "chat/parley.h"
#include "tests/support/ws_test_client.h"

namespace parley_test {

inline constexpr milliseconds kEmbedTimeout{5000};

// The string `key` of a JSON object, or "<missing KEY>" / "<bad json>".
inline std::string json_field(std::string_view json, const char* key) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(json);
  simdjson::dom::element root;
  std::string_view value;
  if (parser.parse(padded).get(root) != simdjson::SUCCESS) return "<bad json>";
  if (root[key].get_string().get(value) != simdjson::SUCCESS) return "<missing " + std::string(key) + ">";
  return std::string(value);
}

// The unsigned number `key` of a JSON object, or UINT64_MAX when missing or not one.
inline uint64_t json_number(std::string_view json, const char* key) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(json);
  simdjson::dom::element root;
  uint64_t value = 0;
  if (parser.parse(padded).get(root) != simdjson::SUCCESS) return UINT64_MAX;
  if (root[key].get_uint64().get(value) != simdjson::SUCCESS) return UINT64_MAX;
  return value;
}

// The next text message, or "" (and a test failure) when none came in time.
inline std::string next_text(WsTestClient& client, milliseconds timeout = kEmbedTimeout) {
  Received message = client.recv_message(timeout);
  if (!message.ok()) {
    ADD_FAILURE() << "no message: " << message.error;
    return "";
  }
  return message.payload;
}

// Messages until one of `type` arrives (others skipped); "" and a failure when none does.
inline std::string next_of_type(WsTestClient& client, std::string_view type) {
  for (int i = 0; i < 20; ++i) {
    std::string text = next_text(client);
    if (text.empty()) return text;
    if (json_field(text, "type") == type) return text;
  }
  ADD_FAILURE() << "no " << type << " message";
  return "";
}

// A parley::Server started on 127.0.0.1:0 and run on its own thread; stopped and joined on
// destruction.
class ServerThread {
 public:
  ServerThread(parley::Config config, parley::Hooks hooks) {
    config.listen = "127.0.0.1:0";
    server_ = std::make_unique<parley::Server>(std::move(config), std::move(hooks));
    start_rc_ = server_->start();
    if (start_rc_ == 0) thread_ = std::thread([this] { run_rc_ = server_->run(); });
  }
  ~ServerThread() { stop(); }

  // Stops the server and waits for run() to return.
  void stop() {
    server_->stop();
    if (thread_.joinable()) thread_.join();
  }

  int start_rc() const { return start_rc_; }
  int run_rc() const { return run_rc_.load(); }
  parley::Server& server() { return *server_; }
  uint16_t port() const { return server_->port(); }

  // A client on the chat path that said hello as `name` and got its welcome.
  std::unique_ptr<WsTestClient> hello(std::string_view name) {
    auto client = std::make_unique<WsTestClient>();
    EXPECT_TRUE(client->connect("127.0.0.1", port(), "/chat")) << client->error();
    EXPECT_TRUE(client->send_frame(kOpText, R"({"type":"hello","name":")" + std::string(name) + R"("})"));
    std::string welcome = next_text(*client);
    EXPECT_EQ(json_field(welcome, "type"), "welcome") << welcome;
    return client;
  }

  // Joins `room` and waits for its history.
  static void join(WsTestClient& client, std::string_view room) {
    ASSERT_TRUE(client.send_frame(kOpText, R"({"type":"join","room":")" + std::string(room) + R"("})"));
    ASSERT_EQ(json_field(next_of_type(client, "history"), "type"), "history");
  }

 private:
  std::unique_ptr<parley::Server> server_;
  std::thread thread_;
  int start_rc_ = -1;
  std::atomic<int> run_rc_{-1};
};

// A thread-safe list of what hooks saw, in order.
class EventLog {
 public:
  void add(std::string event) {
    std::lock_guard<std::mutex> lock(mutex_);
    events_.push_back(std::move(event));
  }
  std::vector<std::string> events() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return events_;
  }
  // Waits (polling, up to `timeout`) until `event` was seen; true when it was.
  bool wait_for(const std::string& event, milliseconds timeout = kEmbedTimeout) const {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    do {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        for (const std::string& seen : events_) {
          if (seen == event) return true;
        }
      }
      std::this_thread::sleep_for(milliseconds(5));
    } while (std::chrono::steady_clock::now() < deadline);
    return false;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> events_;
};

}  // namespace parley_test
