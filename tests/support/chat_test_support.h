#pragma once
// Helpers shared by the /chat tests (chat_app_test, chat_end_to_end_test, chat_limits_test):
// JSON reading by field, a transport that records what each connection would receive, a
// ChatApp fixture over it, and a chat client over WsTestClient for tests against parleyd.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "chat/chat_app.h"
#include "protocol/frame_header.h"
#include "protocol/http_request.h"
#include "tests/support/ws_test_client.h"

namespace parley_test {

using chat::ChatApp;
using chat::ChatConfig;
using protocol::ConnectionId;
using protocol::SendResult;

// ---------------------------------------------------------------------------------------------
// JSON helpers (simdjson): every reply is checked by field, not by exact text.

struct Json {
  explicit Json(std::string_view text) : raw(text) {
    ok = parser.parse(raw).get(root) == simdjson::SUCCESS && root.is_object();
  }
  std::string str(const char* key) const {
    std::string_view value;
    if (!ok || root[key].get_string().get(value) != simdjson::SUCCESS) return "<missing " + std::string(key) + ">";
    return std::string(value);
  }
  uint64_t num(const char* key) const {
    uint64_t value = 0;
    if (!ok || root[key].get_uint64().get(value) != simdjson::SUCCESS) return UINT64_MAX;
    return value;
  }
  bool has(const char* key) const {
    simdjson::dom::element element;
    return ok && root[key].get(element) == simdjson::SUCCESS && !element.is_null();
  }
  bool boolean(const char* key) const {
    bool value = false;
    return ok && root[key].get_bool().get(value) == simdjson::SUCCESS && value;
  }
  std::string type() const { return str("type"); }
  // The "users" array of a who reply.
  std::vector<std::string> users() const {
    std::vector<std::string> out;
    simdjson::dom::array array;
    if (!ok || root["users"].get_array().get(array) != simdjson::SUCCESS) return out;
    for (simdjson::dom::element element : array) out.emplace_back(std::string_view(element.get_string().value_unsafe()));
    return out;
  }
  struct Item {
    uint64_t seq;
    std::string from;
    std::string text;
  };
  // The "messages" array of a history reply.
  std::vector<Item> messages() const {
    std::vector<Item> out;
    simdjson::dom::array array;
    if (!ok || root["messages"].get_array().get(array) != simdjson::SUCCESS) return out;
    for (simdjson::dom::element element : array) {
      Item item;
      item.seq = element["seq"].get_uint64().value_unsafe();
      item.from = std::string(element["from"].get_string().value_unsafe());
      item.text = std::string(element["text"].get_string().value_unsafe());
      out.push_back(item);
    }
    return out;
  }

  simdjson::padded_string raw;
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  bool ok = false;
};

inline std::vector<uint64_t> seqs_of(const std::vector<Json::Item>& items) {
  std::vector<uint64_t> out;
  for (const auto& item : items) out.push_back(item.seq);
  return out;
}

// ---------------------------------------------------------------------------------------------
// In-process: ChatApp against a transport that records what each connection would receive.

class RecordingTransport final : public chat::ChatTransport {
 public:
  SendResult send_text(ConnectionId id, std::string_view text) override {
    if (gone.count(id)) return SendResult::kDropped;
    inbox[id].emplace_back(text);
    return SendResult::kSent;
  }
  SendResult send_encoded(ConnectionId id, reactor::SharedBuffer* frame) override {
    if (gone.count(id)) return SendResult::kDropped;
    protocol::HeaderParse parse = protocol::parse_frame_header(frame->data(), frame->size(), protocol::Sender::kServer);
    EXPECT_EQ(parse.status, protocol::ParseStatus::kOk);
    EXPECT_EQ(parse.header.opcode, protocol::Opcode::kText);
    EXPECT_TRUE(parse.header.fin);
    EXPECT_EQ(parse.header.header_length + parse.header.payload_length, frame->size());
    inbox[id].emplace_back(reinterpret_cast<const char*>(frame->data()) + parse.header.header_length,
                           parse.header.payload_length);
    encoded.push_back({id, frame});
    return SendResult::kBuffered;
  }
  void close(ConnectionId id, uint16_t code, std::string_view) override { closed.push_back({id, code}); }

  // The oldest undelivered message to `id`, or "" when none.
  std::string next(ConnectionId id) {
    auto& queue = inbox[id];
    if (queue.empty()) return "";
    std::string out = queue.front();
    queue.pop_front();
    return out;
  }
  size_t pending(ConnectionId id) { return inbox[id].size(); }

  std::map<ConnectionId, std::deque<std::string>> inbox;
  std::vector<std::pair<ConnectionId, const reactor::SharedBuffer*>> encoded;
  std::vector<std::pair<ConnectionId, uint16_t>> closed;
  std::set<ConnectionId> gone;
};

inline constexpr uint64_t kNow = 1700000000123;
inline uint64_t fixed_clock() { return kNow; }

inline ConnectionId make_id(uint32_t fd, uint32_t generation = 1) { return fd | static_cast<uint64_t>(generation) << 32; }

class ChatAppFixture : public ::testing::Test {
 protected:
  ChatAppFixture() { recreate(ChatConfig{}); }

  void recreate(ChatConfig config, chat::ChatHooks* hooks = nullptr) {
    config.wall_clock_ms = &fixed_clock;
    app.reset();
    transport = std::make_unique<RecordingTransport>();
    app = std::make_unique<ChatApp>(*transport, config, hooks);
  }

  void send(ConnectionId id, std::string_view json, protocol::Opcode opcode = protocol::Opcode::kText) {
    std::vector<uint8_t> bytes(json.begin(), json.end());
    app->on_message(id, opcode, {bytes.data(), bytes.size()});
  }
  // Opens `id` and says hello as `name`; expects the welcome.
  void connect(ConnectionId id, std::string_view name) {
    app->on_open(id);
    send(id, R"({"type":"hello","name":")" + std::string(name) + R"("})");
    Json welcome(next(id));
    ASSERT_EQ(welcome.type(), "welcome");
    ASSERT_EQ(welcome.str("name"), name);
  }
  // Joins `room` and consumes the history reply.
  void join(ConnectionId id, std::string_view room) {
    send(id, R"({"type":"join","room":")" + std::string(room) + R"("})");
    Json history(next(id));
    ASSERT_EQ(history.type(), "history") << history.raw;
    ASSERT_EQ(history.str("room"), room);
  }
  std::string next(ConnectionId id) { return transport->next(id); }
  // Expects an error reply with `code` (and `id` when given).
  void expect_error(ConnectionId id, std::string_view code, std::string_view message_id = {}) {
    std::string reply = next(id);
    Json json(reply);
    EXPECT_EQ(json.type(), "error") << reply;
    EXPECT_EQ(json.str("code"), code) << reply;
    EXPECT_FALSE(json.str("reason").empty());
    if (!message_id.empty()) {
      EXPECT_EQ(json.str("id"), message_id) << reply;
    }
  }
  void expect_quiet(ConnectionId id) { EXPECT_EQ(transport->pending(id), 0u) << next(id); }
  void expect_invariants() {
    std::string why;
    EXPECT_TRUE(app->rooms().check_invariants(&why)) << why;
  }

  std::unique_ptr<RecordingTransport> transport;
  std::unique_ptr<ChatApp> app;
  const ConnectionId alice = make_id(10);
  const ConnectionId bob = make_id(11);
  const ConnectionId carol = make_id(12);
};

// An upgrade request for `target` with `headers` ("Name: value"), parsed; `storage` holds its bytes.
// Issue 7 in process: tokens, Origin, rate limits, room size.
inline protocol::HttpRequest request_with(std::string& storage, std::string_view target, const std::vector<std::string>& headers) {
  storage = "GET " + std::string(target) +
            " HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
  for (const std::string& header : headers) storage += header + "\r\n";
  storage += "\r\n";
  protocol::HttpRequest request;
  EXPECT_EQ(protocol::parse_http_request(storage, request), protocol::HttpParseStatus::kComplete);
  return request;
}

// ---------------------------------------------------------------------------------------------
// Against a real parleyd.

inline constexpr milliseconds kChatTimeout{3000};
inline constexpr milliseconds kChatQuiet{150};

// A chat client over WsTestClient: JSON text in, JSON text out.
class ChatClient {
 public:
  bool connect(uint16_t port) { return ws_.connect("127.0.0.1", port, "/chat"); }
  bool send(std::string_view json) { return ws_.send_frame(kOpText, json); }
  // The next text message, or "" (with a failure) when none came.
  std::string recv(milliseconds timeout = kChatTimeout) {
    Received message = ws_.recv_message(timeout);
    if (!message.ok()) {
      ADD_FAILURE() << "no message: status " << static_cast<int>(message.status) << " " << message.error;
      return "";
    }
    EXPECT_EQ(message.opcode, kOpText);
    return message.payload;
  }
  // True when nothing arrives for `quiet` (round-trip checked with a ping first).
  void expect_quiet(milliseconds quiet = kChatQuiet) {
    Received message = ws_.recv_message(quiet);
    EXPECT_EQ(message.status, RecvStatus::kTimeout) << "unexpected: " << message.payload;
  }
  // Says hello and checks the welcome.
  void hello(std::string_view name) {
    ASSERT_TRUE(send(R"({"type":"hello","name":")" + std::string(name) + R"("})"));
    Json welcome(recv());
    ASSERT_EQ(welcome.type(), "welcome") << welcome.raw;
  }
  // Joins and returns the history reply.
  std::string join(std::string_view room) {
    EXPECT_TRUE(send(R"({"type":"join","room":")" + std::string(room) + R"("})"));
    std::string reply = recv();
    EXPECT_EQ(Json(reply).type(), "history") << reply;
    return reply;
  }
  // Sends a ping and waits for its pong: everything the server sent before is now readable.
  void sync() {
    ASSERT_TRUE(send(R"({"type":"ping"})"));
    Json pong(recv());
    ASSERT_EQ(pong.type(), "pong") << pong.raw;
  }
  WsTestClient& ws() { return ws_; }

 private:
  WsTestClient ws_;
};


}  // namespace parley_test
