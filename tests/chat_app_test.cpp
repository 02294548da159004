// The /chat application (chat/chat_app.h): first in-process against a recording transport (every
// message type and error path, encode-once fan-out, hooks, random input against the room
// invariants), then end to end against a real parleyd with several clients on loopback.
#include "chat/chat_app.h"

#include <gtest/gtest.h>
#include <malloc.h>
#include <simdjson.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "chat/auth_token.h"
#include "chat/parleyd_options.h"
#include "protocol/frame_header.h"
#include "protocol/http_request.h"
#include "tests/support/parleyd_process.h"
#include "tests/support/ws_test_client.h"

namespace {

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

std::vector<uint64_t> seqs_of(const std::vector<Json::Item>& items) {
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

constexpr uint64_t kNow = 1700000000123;
uint64_t fixed_clock() { return kNow; }

ConnectionId make_id(uint32_t fd, uint32_t generation = 1) { return fd | static_cast<uint64_t>(generation) << 32; }

class ChatAppTest : public ::testing::Test {
 protected:
  ChatAppTest() { recreate(ChatConfig{}); }

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

TEST_F(ChatAppTest, HelloGetsWelcome) {
  connect(alice, "alice");
  EXPECT_EQ(app->user_of(alice), "alice");
  EXPECT_EQ(app->connection_of("alice"), alice);
  EXPECT_EQ(app->users(), 1u);
  expect_quiet(alice);
}

TEST_F(ChatAppTest, NothingIsAllocatedBeforeHello) {
  app->on_open(alice);
  EXPECT_EQ(app->sessions().live(), 0u);
  EXPECT_EQ(app->user_of(alice), "");
  app->on_close(alice, 1000);
}

TEST_F(ChatAppTest, SecondHelloIsAnError) {
  connect(alice, "alice");
  send(alice, R"({"type":"hello","name":"alice2","id":"h2"})");
  expect_error(alice, "already_identified", "h2");
  EXPECT_EQ(app->user_of(alice), "alice");
}

TEST_F(ChatAppTest, NameTakenAndInvalidName) {
  connect(alice, "alice");
  app->on_open(bob);
  send(bob, R"({"type":"hello","name":"alice"})");
  expect_error(bob, "name_taken");
  send(bob, R"({"type":"hello","name":"has space"})");
  expect_error(bob, "invalid_name");
  send(bob, R"({"type":"hello","name":""})");
  expect_error(bob, "invalid_name");
  send(bob, R"({"type":"hello","name":")" + std::string(33, 'x') + R"("})");
  expect_error(bob, "invalid_name");
  // Still not identified, and can still pick a free name.
  send(bob, R"({"type":"hello","name":"bob"})");
  EXPECT_EQ(Json(next(bob)).type(), "welcome");
}

TEST_F(ChatAppTest, NameIsFreedOnClose) {
  connect(alice, "alice");
  app->on_close(alice, 1000);
  EXPECT_EQ(app->users(), 0u);
  EXPECT_EQ(app->sessions().live(), 0u);
  connect(bob, "alice");
}

TEST_F(ChatAppTest, EverythingBeforeHelloIsNotIdentified) {
  app->on_open(alice);
  for (std::string json : {R"({"type":"join","room":"r","id":"1"})", R"({"type":"leave","room":"r","id":"1"})",
                           R"({"type":"msg","room":"r","text":"x","id":"1"})", R"({"type":"dm","to":"b","text":"x","id":"1"})",
                           R"({"type":"typing","room":"r","on":true,"id":"1"})", R"({"type":"who","room":"r","id":"1"})",
                           R"({"type":"history","room":"r","id":"1"})", R"({"type":"ping","id":"1"})"}) {
    send(alice, json);
    expect_error(alice, "not_identified", "1");
  }
  EXPECT_EQ(app->rooms().size(), 0u);
}

TEST_F(ChatAppTest, MalformedInputGetsErrorsAndChangesNothing) {
  connect(alice, "alice");
  join(alice, "lobby");
  send(alice, "not json");
  expect_error(alice, "bad_json");
  send(alice, "[1,2,3]");
  expect_error(alice, "bad_json");
  send(alice, "");
  expect_error(alice, "bad_json");
  send(alice, R"({"type":"msg","room":"lobby","text":"x"})", protocol::Opcode::kBinary);
  expect_error(alice, "bad_json");
  send(alice, R"({"type":"shout","id":"7"})");
  expect_error(alice, "unknown_type", "7");
  send(alice, R"({"room":"lobby"})");
  expect_error(alice, "unknown_type");
  send(alice, R"({"type":"msg","room":"lobby","id":"m"})");
  expect_error(alice, "missing_field", "m");
  send(alice, R"({"type":"msg","text":"x"})");
  expect_error(alice, "missing_field");
  send(alice, R"({"type":"join"})");
  expect_error(alice, "missing_field");
  send(alice, R"({"type":"join","room":"bad room!"})");
  expect_error(alice, "invalid_room");
  send(alice, R"({"type":"dm","text":"x"})");
  expect_error(alice, "missing_field");
  send(alice, R"({"type":"typing","room":"lobby"})");
  expect_error(alice, "missing_field");
  expect_quiet(alice);
  EXPECT_EQ(app->rooms().size(), 1u);
  expect_invariants();
  // The connection is still fine.
  send(alice, R"({"type":"ping"})");
  EXPECT_EQ(Json(next(alice)).type(), "pong");
}

TEST_F(ChatAppTest, TextOverTheLimit) {
  ChatConfig config;
  config.max_text_bytes = 10;
  recreate(config);
  connect(alice, "alice");
  connect(bob, "bob");
  join(alice, "r");
  send(alice, R"({"type":"msg","room":"r","text":"0123456789"})");
  EXPECT_EQ(Json(next(alice)).type(), "ack");
  send(alice, R"({"type":"msg","room":"r","text":"0123456789a","id":"long"})");
  expect_error(alice, "text_too_long", "long");
  send(alice, R"({"type":"dm","to":"bob","text":"0123456789a"})");
  expect_error(alice, "text_too_long");
  expect_quiet(bob);
}

TEST_F(ChatAppTest, JoinSendsHistoryToJoinerAndPresenceToOthers) {
  connect(alice, "alice");
  connect(bob, "bob");
  connect(carol, "carol");
  join(alice, "lobby");
  expect_quiet(bob);
  join(bob, "lobby");
  Json joined(next(alice));
  EXPECT_EQ(joined.type(), "joined");
  EXPECT_EQ(joined.str("room"), "lobby");
  EXPECT_EQ(joined.str("user"), "bob");
  expect_quiet(alice);
  expect_quiet(bob);  // no presence about oneself
  expect_quiet(carol);
  join(carol, "lobby");
  EXPECT_EQ(Json(next(alice)).str("user"), "carol");
  EXPECT_EQ(Json(next(bob)).str("user"), "carol");
  expect_invariants();
}

TEST_F(ChatAppTest, JoiningTwiceResendsHistoryOnly) {
  connect(alice, "alice");
  connect(bob, "bob");
  join(alice, "lobby");
  join(bob, "lobby");
  next(alice);  // joined bob
  join(bob, "lobby");
  expect_quiet(alice);
  EXPECT_EQ(app->rooms().room(app->rooms().find("lobby")).size(), 2u);
}

TEST_F(ChatAppTest, RoomNamesWithHash) {
  connect(alice, "alice");
  join(alice, "#general");
  EXPECT_NE(app->rooms().find("#general"), chat::kNoIndex);
}

TEST_F(ChatAppTest, LeaveTellsOthersAndFreesEmptyRooms) {
  connect(alice, "alice");
  connect(bob, "bob");
  join(alice, "lobby");
  join(bob, "lobby");
  next(alice);
  send(bob, R"({"type":"leave","room":"lobby"})");
  Json left(next(alice));
  EXPECT_EQ(left.type(), "left");
  EXPECT_EQ(left.str("room"), "lobby");
  EXPECT_EQ(left.str("user"), "bob");
  expect_quiet(bob);
  send(bob, R"({"type":"leave","room":"lobby","id":"again"})");
  expect_error(bob, "unknown_room", "again");
  send(alice, R"({"type":"leave","room":"lobby"})");
  expect_quiet(alice);
  EXPECT_EQ(app->rooms().size(), 0u);
  send(alice, R"({"type":"leave","room":"never"})");
  expect_error(alice, "unknown_room");
  expect_invariants();
}

TEST_F(ChatAppTest, MessageFansOutToOthersAndAcksTheSender) {
  connect(alice, "alice");
  connect(bob, "bob");
  connect(carol, "carol");
  const ConnectionId dave = make_id(13);
  connect(dave, "dave");  // not in the room
  for (ConnectionId id : {alice, bob, carol}) join(id, "lobby");
  next(alice);
  next(alice);
  next(bob);
  transport->encoded.clear();
  const uint64_t deliveries = app->stats().deliveries;

  send(alice, R"({"type":"msg","room":"lobby","text":"hi \"all\"","id":"m1"})");
  for (ConnectionId id : {bob, carol}) {
    Json msg(next(id));
    EXPECT_EQ(msg.type(), "msg");
    EXPECT_EQ(msg.str("room"), "lobby");
    EXPECT_EQ(msg.str("from"), "alice");
    EXPECT_EQ(msg.str("text"), "hi \"all\"");
    EXPECT_EQ(msg.num("ts"), kNow);
    EXPECT_EQ(msg.num("seq"), 1u);
    expect_quiet(id);
  }
  Json ack(next(alice));
  EXPECT_EQ(ack.type(), "ack");
  EXPECT_EQ(ack.str("id"), "m1");
  EXPECT_EQ(ack.num("seq"), 1u);
  EXPECT_EQ(ack.num("ts"), kNow);
  expect_quiet(alice);
  expect_quiet(dave);

  // Encoded once: both deliveries reference one buffer.
  ASSERT_EQ(transport->encoded.size(), 2u);
  EXPECT_EQ(transport->encoded[0].second, transport->encoded[1].second);
  EXPECT_EQ(app->stats().deliveries - deliveries, 2u);

  send(bob, R"({"type":"msg","room":"lobby","text":"second"})");
  EXPECT_EQ(Json(next(alice)).num("seq"), 2u);
  EXPECT_EQ(Json(next(carol)).num("seq"), 2u);
  Json ack2(next(bob));
  EXPECT_EQ(ack2.type(), "ack");
  EXPECT_EQ(ack2.num("seq"), 2u);
}

TEST_F(ChatAppTest, MessageToARoomNotJoined) {
  connect(alice, "alice");
  connect(bob, "bob");
  join(bob, "lobby");
  send(alice, R"({"type":"msg","room":"lobby","text":"x","id":"q"})");
  expect_error(alice, "unknown_room", "q");
  send(alice, R"({"type":"msg","room":"nowhere","text":"x"})");
  expect_error(alice, "unknown_room");
  expect_quiet(bob);
}

TEST_F(ChatAppTest, AloneInARoomStillGetsAnAck) {
  connect(alice, "alice");
  join(alice, "solo");
  transport->encoded.clear();
  send(alice, R"({"type":"msg","room":"solo","text":"echo?"})");
  EXPECT_EQ(Json(next(alice)).type(), "ack");
  expect_quiet(alice);
  EXPECT_TRUE(transport->encoded.empty());
}

TEST_F(ChatAppTest, DirectMessageOnlyToItsTarget) {
  connect(alice, "alice");
  connect(bob, "bob");
  connect(carol, "carol");
  join(alice, "lobby");
  join(carol, "lobby");
  next(alice);
  send(alice, R"({"type":"dm","to":"bob","text":"psst","id":"d1"})");
  Json dm(next(bob));
  EXPECT_EQ(dm.type(), "dm");
  EXPECT_EQ(dm.str("from"), "alice");
  EXPECT_EQ(dm.str("to"), "bob");
  EXPECT_EQ(dm.str("text"), "psst");
  EXPECT_EQ(dm.num("ts"), kNow);
  Json ack(next(alice));
  EXPECT_EQ(ack.type(), "ack");
  EXPECT_EQ(ack.str("id"), "d1");
  EXPECT_EQ(ack.num("seq"), 0u);
  expect_quiet(carol);
  expect_quiet(bob);
  send(alice, R"({"type":"dm","to":"nobody","text":"x","id":"d2"})");
  expect_error(alice, "unknown_user", "d2");
}

TEST_F(ChatAppTest, TypingGoesToOtherMembers) {
  connect(alice, "alice");
  connect(bob, "bob");
  join(alice, "lobby");
  join(bob, "lobby");
  next(alice);
  send(alice, R"({"type":"typing","room":"lobby","on":true})");
  Json typing(next(bob));
  EXPECT_EQ(typing.type(), "typing");
  EXPECT_EQ(typing.str("room"), "lobby");
  EXPECT_EQ(typing.str("user"), "alice");
  EXPECT_TRUE(typing.boolean("on"));
  send(alice, R"({"type":"typing","room":"lobby","on":false})");
  EXPECT_FALSE(Json(next(bob)).boolean("on"));
  expect_quiet(alice);
  send(alice, R"({"type":"typing","room":"elsewhere","on":true,"id":"t"})");
  expect_error(alice, "unknown_room", "t");
}

TEST_F(ChatAppTest, WhoListsEveryMember) {
  connect(alice, "alice");
  connect(bob, "bob");
  connect(carol, "carol");
  for (ConnectionId id : {alice, bob, carol}) join(id, "lobby");
  transport->inbox.clear();
  send(bob, R"({"type":"who","room":"lobby"})");
  Json who(next(bob));
  EXPECT_EQ(who.type(), "who");
  EXPECT_EQ(who.str("room"), "lobby");
  std::vector<std::string> users = who.users();
  std::sort(users.begin(), users.end());
  EXPECT_EQ(users, (std::vector<std::string>{"alice", "bob", "carol"}));
  expect_quiet(alice);
  send(bob, R"({"type":"who","room":"other","id":"w"})");
  expect_error(bob, "unknown_room", "w");
}

TEST_F(ChatAppTest, HistoryOnJoinAndOnRequest) {
  ChatConfig config;
  config.history_size = 5;
  recreate(config);
  connect(alice, "alice");
  connect(bob, "bob");
  join(alice, "lobby");
  for (int i = 1; i <= 8; ++i) {
    send(alice, R"({"type":"msg","room":"lobby","text":"m)" + std::to_string(i) + R"("})");
    next(alice);
  }
  send(bob, R"({"type":"join","room":"lobby"})");
  Json history(next(bob));
  ASSERT_EQ(history.type(), "history");
  EXPECT_EQ(history.str("room"), "lobby");
  std::vector<Json::Item> items = history.messages();
  EXPECT_EQ(seqs_of(items), (std::vector<uint64_t>{4, 5, 6, 7, 8}));
  ASSERT_EQ(items.size(), 5u);
  EXPECT_EQ(items[0].from, "alice");
  EXPECT_EQ(items[0].text, "m4");
  EXPECT_EQ(items[4].text, "m8");

  send(bob, R"({"type":"history","room":"lobby","limit":2})");
  EXPECT_EQ(seqs_of(Json(next(bob)).messages()), (std::vector<uint64_t>{7, 8}));
  send(bob, R"({"type":"history","room":"lobby","before_seq":7})");
  EXPECT_EQ(seqs_of(Json(next(bob)).messages()), (std::vector<uint64_t>{4, 5, 6}));
  send(bob, R"({"type":"history","room":"lobby","before_seq":7,"limit":1})");
  EXPECT_EQ(seqs_of(Json(next(bob)).messages()), (std::vector<uint64_t>{6}));
  send(bob, R"({"type":"history","room":"lobby","before_seq":4})");
  EXPECT_TRUE(Json(next(bob)).messages().empty());
  send(bob, R"({"type":"history","room":"lobby","limit":1000})");
  EXPECT_EQ(Json(next(bob)).messages().size(), 5u);
  send(carol, R"({"type":"history","room":"lobby"})");
  expect_error(carol, "not_identified");
  connect(carol, "carol");
  send(carol, R"({"type":"history","room":"lobby","id":"h"})");
  expect_error(carol, "unknown_room", "h");
}

TEST_F(ChatAppTest, HistoryDisabled) {
  ChatConfig config;
  config.history_size = 0;
  recreate(config);
  connect(alice, "alice");
  join(alice, "r");
  send(alice, R"({"type":"msg","room":"r","text":"x"})");
  next(alice);
  send(alice, R"({"type":"history","room":"r"})");
  Json history(next(alice));
  EXPECT_EQ(history.type(), "history");
  EXPECT_TRUE(history.messages().empty());
}

TEST_F(ChatAppTest, TooManyRooms) {
  ChatConfig config;
  config.max_rooms_per_connection = 2;
  recreate(config);
  connect(alice, "alice");
  join(alice, "a");
  join(alice, "b");
  send(alice, R"({"type":"join","room":"c","id":"j"})");
  expect_error(alice, "too_many_rooms", "j");
  EXPECT_EQ(app->rooms().find("c"), chat::kNoIndex);
  send(alice, R"({"type":"leave","room":"a"})");
  join(alice, "c");
}

TEST_F(ChatAppTest, PingGetsPong) {
  connect(alice, "alice");
  send(alice, R"({"type":"ping"})");
  Json pong(next(alice));
  EXPECT_EQ(pong.type(), "pong");
  EXPECT_EQ(pong.num("ts"), kNow);
}

TEST_F(ChatAppTest, CloseTellsEveryRoomAndFreesEverything) {
  connect(alice, "alice");
  connect(bob, "bob");
  connect(carol, "carol");
  for (int i = 0; i < 6; ++i) join(alice, "r" + std::to_string(i));  // spills past the inline 4
  join(bob, "r1");
  join(carol, "r1");
  join(carol, "r4");
  transport->inbox.clear();
  app->on_close(alice, 1006);
  Json to_bob(next(bob));
  EXPECT_EQ(to_bob.type(), "left");
  EXPECT_EQ(to_bob.str("room"), "r1");
  EXPECT_EQ(to_bob.str("user"), "alice");
  std::set<std::string> carol_rooms;
  for (int i = 0; i < 2; ++i) {
    Json left(next(carol));
    EXPECT_EQ(left.type(), "left");
    EXPECT_EQ(left.str("user"), "alice");
    carol_rooms.insert(left.str("room"));
  }
  EXPECT_EQ(carol_rooms, (std::set<std::string>{"r1", "r4"}));
  expect_quiet(bob);
  expect_quiet(carol);
  EXPECT_EQ(app->rooms().size(), 2u);  // r1 and r4 live on
  EXPECT_EQ(app->users(), 2u);
  EXPECT_EQ(app->sessions().live(), 2u);
  expect_invariants();
  app->on_close(alice, 1006);  // twice: nothing happens
  app->on_close(make_id(99), 1006);
  expect_invariants();
}

TEST_F(ChatAppTest, StaleConnectionIdsAreIgnored) {
  connect(alice, "alice");
  join(alice, "r");
  const ConnectionId reused = make_id(10, 2);  // same fd, a later connection
  app->on_open(reused);
  send(reused, R"({"type":"msg","room":"r","text":"x"})");
  expect_error(reused, "not_identified");
  app->on_close(reused, 1000);  // must not tear down alice
  EXPECT_EQ(app->user_of(alice), "alice");
  EXPECT_EQ(app->rooms().size(), 1u);
  expect_invariants();
}

TEST_F(ChatAppTest, PublishReachesEveryMemberAndHistory) {
  connect(alice, "alice");
  connect(bob, "bob");
  join(alice, "news");
  join(bob, "news");
  next(alice);
  EXPECT_EQ(app->publish("news", "server", "breaking"), 1u);
  for (ConnectionId id : {alice, bob}) {
    Json msg(next(id));
    EXPECT_EQ(msg.type(), "msg");
    EXPECT_EQ(msg.str("from"), "server");
    EXPECT_EQ(msg.str("text"), "breaking");
    EXPECT_EQ(msg.num("seq"), 1u);
  }
  EXPECT_EQ(app->publish("empty-room", "server", "x"), 0u);
  send(bob, R"({"type":"msg","room":"news","text":"after"})");
  EXPECT_EQ(Json(next(alice)).num("seq"), 2u);
  send(alice, R"({"type":"history","room":"news"})");
  std::vector<Json::Item> items = Json(next(alice)).messages();
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].from, "server");
}

// Hooks: authorization with a user name, veto, custom types.
class TestHooks final : public chat::ChatHooks {
 public:
  void authorize(ConnectionId, const protocol::HttpRequest& request, chat::ChatAuthDecision& decision) override {
    ++authorized;
    std::string_view query = request.query;
    if (query == "deny") {
      decision.status = 403;
      decision.reason = "go away";
    } else if (query.substr(0, 5) == "user=") {
      decision.user = std::string(query.substr(5));
    }
  }
  bool allow_message(const chat::ChatMessageEvent& event) override {
    seen.push_back(std::string(event.room.empty() ? "dm:" + std::string(event.to) : std::string(event.room)) + ":" +
                   std::string(event.text));
    return event.text.find("forbidden") == std::string_view::npos;
  }
  bool on_custom(ConnectionId id, std::string_view user, std::string_view type, std::string_view json) override {
    custom.push_back(std::string(user) + ":" + std::string(type) + ":" + std::string(json));
    if (type != "roll") return false;
    app->send_to(id, R"({"type":"rolled","value":4})");
    return true;
  }
  int authorized = 0;
  std::vector<std::string> seen;
  std::vector<std::string> custom;
  ChatApp* app = nullptr;
};

protocol::HttpRequest request_for(std::string& storage, std::string_view target) {
  storage = "GET " + std::string(target) +
            " HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  protocol::HttpRequest request;
  EXPECT_EQ(protocol::parse_http_request(storage, request), protocol::HttpParseStatus::kComplete);
  return request;
}

// Issue 7 in process: tokens, Origin, rate limits, room size.
protocol::HttpRequest request_with(std::string& storage, std::string_view target, const std::vector<std::string>& headers) {
  storage = "GET " + std::string(target) +
            " HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
  for (const std::string& header : headers) storage += header + "\r\n";
  storage += "\r\n";
  protocol::HttpRequest request;
  EXPECT_EQ(protocol::parse_http_request(storage, request), protocol::HttpParseStatus::kComplete);
  return request;
}

constexpr char kTestSecret[] = "chat-app-test-secret-0123456789abcdef";

std::string test_token(std::string_view user, const std::vector<std::string>& rooms = {}, int64_t ttl_s = 600,
                       std::string_view secret = kTestSecret) {
  return chat::mint_token(user, rooms, static_cast<uint64_t>(static_cast<int64_t>(kNow / 1000) + ttl_s), secret);
}

uint64_t g_monotonic_ms = 5000;
uint64_t test_monotonic() { return g_monotonic_ms; }

TEST_F(ChatAppTest, TokenAuthRefusesBadTokensAndIdentifiesAtOpen) {
  ChatConfig config;
  config.token_secret = kTestSecret;
  recreate(config);
  std::string storage;
  struct Case {
    std::vector<std::string> headers;
    std::string target;
    std::string why;
  };
  std::string expired = test_token("alice", {}, -1);
  std::vector<Case> refused = {
      {{}, "/chat", "token is required"},
      {{"Authorization: Bearer " + test_token("alice", {}, 600, "another-secret-0123456789abcdef0123")}, "/chat",
       "bad_signature"},
      {{"Authorization: Bearer " + expired}, "/chat", "expired"},
      {{}, "/chat?token=abc.def", "malformed"},
  };
  for (const Case& c : refused) {
    protocol::UpgradeVerdict verdict = app->on_upgrade(alice, request_with(storage, c.target, c.headers));
    EXPECT_EQ(verdict.status, 401) << c.why;
    EXPECT_NE(verdict.reason.find(c.why), std::string_view::npos) << verdict.reason;
    EXPECT_EQ(verdict.reason.find(expired.substr(expired.rfind('.') + 1)), std::string_view::npos);
  }
  EXPECT_EQ(app->access_stats().unauthorized, refused.size());

  std::string token = test_token("alice", {"general"});
  protocol::UpgradeVerdict verdict =
      app->on_upgrade(alice, request_with(storage, "/chat", {"Sec-WebSocket-Protocol: x, parley.token." + token}));
  ASSERT_EQ(verdict.status, 101) << verdict.reason;
  EXPECT_EQ(verdict.subprotocol, "parley.token." + token);
  app->on_open(alice);
  Json welcome(next(alice));
  EXPECT_EQ(welcome.type(), "welcome");
  EXPECT_EQ(welcome.str("name"), "alice");
  send(alice, R"({"type":"hello","name":"alice"})");
  EXPECT_EQ(Json(next(alice)).str("name"), "alice");
  send(alice, R"({"type":"hello","name":"eve","id":"h"})");
  expect_error(alice, "already_identified", "h");

  join(alice, "general");
  join(alice, "#general");
  send(alice, R"({"type":"join","room":"other","id":"j"})");
  std::string reply = next(alice);
  EXPECT_EQ(Json(reply).str("code"), "rejected") << reply;
  EXPECT_EQ(Json(reply).str("reason").rfind("forbidden_room", 0), 0u) << reply;
  EXPECT_EQ(app->rooms().find("other"), chat::kNoIndex);

  // A query token without rooms: any room. And the grant goes away with the connection.
  verdict = app->on_upgrade(bob, request_with(storage, "/chat?token=" + test_token("bob"), {}));
  ASSERT_EQ(verdict.status, 101) << verdict.reason;
  EXPECT_TRUE(verdict.subprotocol.empty());
  app->on_open(bob);
  EXPECT_EQ(Json(next(bob)).str("name"), "bob");
  join(bob, "other");
  app->on_close(alice, 1000);
  app->on_close(bob, 1000);
  EXPECT_EQ(app->users(), 0u);
  expect_invariants();
}

TEST_F(ChatAppTest, OriginPolicyAndHandshakeRate) {
  ChatConfig config;
  chat::OriginPolicy origins;
  std::string error;
  ASSERT_TRUE(origins.parse("https://*.example.com", error)) << error;
  origins.set_missing_origin(chat::OriginPolicy::MissingOrigin::kDeny);
  config.origins = origins;
  config.handshake_rate = 1;
  config.handshake_burst = 2;
  config.monotonic_ms = &test_monotonic;
  config.peer_key = [](ConnectionId id, uint64_t& key) {
    key = static_cast<uint32_t>(id) % 2;  // even and odd fds: two addresses
    return true;
  };
  recreate(config);
  g_monotonic_ms = 5000;
  std::string storage;
  EXPECT_EQ(app->on_upgrade(make_id(20), request_with(storage, "/chat", {"Origin: https://a.example.com"})).status, 101);
  EXPECT_EQ(app->on_upgrade(make_id(22), request_with(storage, "/chat", {"Origin: https://evil.test"})).status, 403);
  // The even address spent its burst of 2 (refused attempts count too).
  protocol::UpgradeVerdict verdict =
      app->on_upgrade(make_id(24), request_with(storage, "/chat", {"Origin: https://a.example.com"}));
  EXPECT_EQ(verdict.status, 429);
  EXPECT_NE(verdict.reason.find("retry after 1 s"), std::string_view::npos) << verdict.reason;
  EXPECT_EQ(app->on_upgrade(make_id(21), request_with(storage, "/chat", {})).status, 403);  // no Origin
  g_monotonic_ms += 1000;
  EXPECT_EQ(app->on_upgrade(make_id(24), request_with(storage, "/chat", {"Origin: https://b.example.com"})).status,
            101);
  EXPECT_EQ(app->access_stats().handshakes_limited, 1u);
  EXPECT_EQ(app->access_stats().forbidden_origins, 2u);
}

TEST_F(ChatAppTest, MessageRateLimitDropsThenCloses) {
  ChatConfig config;
  config.message_rate = 2;
  config.message_burst = 3;
  config.rate_violations_to_close = 4;
  config.monotonic_ms = &test_monotonic;
  recreate(config);
  g_monotonic_ms = 5000;
  connect(alice, "alice");  // 1 of 3
  connect(bob, "bob");
  join(alice, "r");         // 2 of 3
  join(bob, "r");
  next(alice);
  send(alice, R"({"type":"msg","room":"r","text":"1"})");  // 3 of 3
  EXPECT_EQ(Json(next(alice)).type(), "ack");
  EXPECT_EQ(Json(next(bob)).str("text"), "1");
  for (int i = 0; i < 3; ++i) {
    send(alice, R"({"type":"msg","room":"r","text":"dropped"})");
    std::string reply = next(alice);
    EXPECT_EQ(Json(reply).str("code"), "rejected") << reply;
    EXPECT_EQ(Json(reply).str("reason").rfind("rate_limited", 0), 0u) << reply;
  }
  expect_quiet(bob);
  g_monotonic_ms += 500;  // one token back; an accepted message resets the violation count
  send(alice, R"({"type":"msg","room":"r","text":"2"})");
  EXPECT_EQ(Json(next(alice)).type(), "ack");
  EXPECT_EQ(Json(next(bob)).str("text"), "2");
  EXPECT_TRUE(transport->closed.empty());
  for (int i = 0; i < 4; ++i) send(alice, R"({"type":"ping"})");
  ASSERT_EQ(transport->closed.size(), 1u);
  EXPECT_EQ(transport->closed[0], std::make_pair(alice, uint16_t{1008}));
  EXPECT_EQ(app->access_stats().rate_closed, 1u);
  EXPECT_EQ(app->access_stats().rate_limited, 7u);
  // Bob has his own bucket, and a new connection on alice's fd starts full.
  send(bob, R"({"type":"ping"})");
  EXPECT_EQ(Json(next(bob)).type(), "pong");
  app->on_close(alice, 1008);
  const ConnectionId again = make_id(10, 2);
  connect(again, "alice2");
}

TEST_F(ChatAppTest, MaxRoomMembers) {
  ChatConfig config;
  config.max_room_members = 2;
  recreate(config);
  connect(alice, "alice");
  connect(bob, "bob");
  connect(carol, "carol");
  join(alice, "r");
  join(bob, "r");
  send(carol, R"({"type":"join","room":"r","id":"c"})");
  std::string reply = next(carol);
  EXPECT_EQ(Json(reply).str("code"), "rejected") << reply;
  EXPECT_EQ(Json(reply).str("reason").rfind("room_full", 0), 0u) << reply;
  EXPECT_EQ(Json(reply).str("id"), "c");
  next(alice);
  join(alice, "r");  // already a member: fine
  send(bob, R"({"type":"leave","room":"r"})");
  join(carol, "r");
  expect_invariants();
}

TEST_F(ChatAppTest, HooksAuthorizeVetoAndCustomTypes) {
  TestHooks hooks;
  recreate(ChatConfig{}, &hooks);
  hooks.app = app.get();
  std::string storage;

  protocol::UpgradeVerdict verdict = app->on_upgrade(alice, request_for(storage, "/chat?deny"));
  EXPECT_EQ(verdict.status, 403);
  EXPECT_EQ(verdict.reason, "go away");

  verdict = app->on_upgrade(alice, request_for(storage, "/chat?user=alice"));
  EXPECT_EQ(verdict.status, 101);
  app->on_open(alice);
  Json welcome(next(alice));
  EXPECT_EQ(welcome.type(), "welcome");
  EXPECT_EQ(welcome.str("name"), "alice");
  // Named at the handshake: a hello with the same name gets the welcome again, another name an
  // error.
  send(alice, R"({"type":"hello","name":"alice"})");
  EXPECT_EQ(Json(next(alice)).type(), "welcome");
  send(alice, R"({"type":"hello","name":"alicia"})");
  expect_error(alice, "already_identified");

  // The name is taken now: another upgrade asking for it is refused at the handshake.
  verdict = app->on_upgrade(bob, request_for(storage, "/chat?user=alice"));
  EXPECT_EQ(verdict.status, 409);
  verdict = app->on_upgrade(bob, request_for(storage, "/chat?user=bad%20name"));
  EXPECT_EQ(verdict.status, 500);
  verdict = app->on_upgrade(bob, request_for(storage, "/chat"));
  EXPECT_EQ(verdict.status, 101);
  connect(bob, "bob");  // no user from the hook: hello as usual

  join(alice, "r");
  join(bob, "r");
  next(alice);
  send(alice, R"({"type":"msg","room":"r","text":"this is forbidden","id":"v"})");
  expect_error(alice, "rejected", "v");
  expect_quiet(bob);
  send(alice, R"({"type":"dm","to":"bob","text":"forbidden dm"})");
  expect_error(alice, "rejected");
  expect_quiet(bob);
  send(alice, R"({"type":"msg","room":"r","text":"fine"})");
  EXPECT_EQ(Json(next(bob)).num("seq"), 1u);  // vetoed messages take no seq
  EXPECT_EQ(hooks.seen, (std::vector<std::string>{"r:this is forbidden", "dm:bob:forbidden dm", "r:fine"}));
  EXPECT_EQ(app->stats().vetoed, 2u);
  next(alice);

  send(alice, R"({"type":"roll","sides":6})");
  EXPECT_EQ(Json(next(alice)).type(), "rolled");
  send(alice, R"({"type":"dance","id":"x"})");
  expect_error(alice, "unknown_type", "x");
  ASSERT_EQ(hooks.custom.size(), 2u);
  EXPECT_EQ(hooks.custom[0], R"(alice:roll:{"type":"roll","sides":6})");

  // Custom types need identification, like everything else.
  app->on_open(carol);
  send(carol, R"({"type":"roll"})");
  expect_error(carol, "not_identified");
  EXPECT_EQ(hooks.custom.size(), 2u);
}

TEST_F(ChatAppTest, PendingAuthorizedNameIsDroppedWhenTheUpgradeNeverOpens) {
  TestHooks hooks;
  recreate(ChatConfig{}, &hooks);
  std::string storage;
  EXPECT_EQ(app->on_upgrade(alice, request_for(storage, "/chat?user=alice")).status, 101);
  // The connection died before on_open; a later connection on the same fd opens without a name.
  const ConnectionId later = make_id(10, 2);
  app->on_open(later);
  EXPECT_EQ(app->user_of(later), "");
  expect_quiet(later);
  connect(bob, "alice");  // the name was never taken
}

// Random input from several connections, including closes and reconnects: no crash, and the
// room structure stays consistent after every step.
TEST_F(ChatAppTest, RandomTrafficKeepsInvariants) {
  ChatConfig config;
  config.max_rooms_per_connection = 5;
  config.history_size = 4;
  config.max_text_bytes = 20;
  recreate(config);
  std::mt19937_64 random(99);
  const std::vector<std::string> rooms = {"a", "b", "c", "d", "e", "f", "g"};
  const std::vector<std::string> names = {"u0", "u1", "u2", "u3", "u4", "u5"};
  std::vector<uint32_t> generation(8, 1);
  auto pick = [&](const std::vector<std::string>& from) { return from[random() % from.size()]; };
  for (uint32_t fd = 0; fd < generation.size(); ++fd) app->on_open(make_id(fd + 20, generation[fd]));
  for (int step = 0; step < 20000; ++step) {
    uint32_t fd = static_cast<uint32_t>(random() % generation.size());
    ConnectionId id = make_id(fd + 20, generation[fd]);
    std::string json;
    switch (random() % 14) {
      case 0: json = R"({"type":"hello","name":")" + pick(names) + R"("})"; break;
      case 1: case 2: json = R"({"type":"join","room":")" + pick(rooms) + R"("})"; break;
      case 3: json = R"({"type":"leave","room":")" + pick(rooms) + R"("})"; break;
      case 4: case 5:
        json = R"({"type":"msg","room":")" + pick(rooms) + R"(","text":")" + std::string(random() % 25, 'x') + R"("})";
        break;
      case 6: json = R"({"type":"dm","to":")" + pick(names) + R"(","text":"hi"})"; break;
      case 7: json = R"({"type":"typing","room":")" + pick(rooms) + R"(","on":true})"; break;
      case 8: json = R"({"type":"who","room":")" + pick(rooms) + R"("})"; break;
      case 9: json = R"({"type":"history","room":")" + pick(rooms) + R"(","before_seq":)" + std::to_string(random() % 30) + "}"; break;
      case 10: json = std::string(R"({"type":"msg","room":)").substr(0, random() % 20); break;  // truncated
      case 11: json = "\x01\xff{{"; break;
      case 12:
        app->on_close(id, 1006);
        ++generation[fd];
        app->on_open(make_id(fd + 20, generation[fd]));
        break;
      default: json = R"({"type":"ping"})"; break;
    }
    if (!json.empty()) send(id, json);
    std::string why;
    ASSERT_TRUE(app->rooms().check_invariants(&why)) << "step " << step << ": " << why;
    ASSERT_EQ(app->users(), app->sessions().live());
    if (step % 256 == 0) transport->inbox.clear();
  }
  // Every message any connection got is a JSON object with a type.
  for (auto& [id, queue] : transport->inbox) {
    for (const std::string& message : queue) EXPECT_TRUE(Json(message).has("type")) << message;
  }
}

// Memory of the chat layer per identified, idle connection in one room (DESIGN.md "State per
// connection"): session, users entry, room member entry, fd slot. Measured with mallinfo2, with
// a transport that drops everything (each join's presence goes to every earlier member).
class DiscardingTransport final : public chat::ChatTransport {
 public:
  SendResult send_text(ConnectionId, std::string_view) override { return SendResult::kSent; }
  SendResult send_encoded(ConnectionId, reactor::SharedBuffer*) override { return SendResult::kBuffered; }
  void close(ConnectionId, uint16_t, std::string_view) override {}
};

TEST(ChatAppMemoryTest, IdleIdentifiedConnectionsAreSmall) {
  constexpr uint32_t kConnections = 10000;
  DiscardingTransport transport;
  ChatApp app(transport);
  std::vector<std::string> hellos;
  for (uint32_t i = 0; i < kConnections; ++i) hellos.push_back(R"({"type":"hello","name":"user)" + std::to_string(i) + R"("})");
  std::string join_json = R"({"type":"join","room":"lobby"})";
  auto send = [&](ConnectionId id, std::string& json) {
    app.on_message(id, protocol::Opcode::kText, {reinterpret_cast<uint8_t*>(json.data()), json.size()});
  };
  // Warm up the parser and scratch strings outside the measurement.
  std::string warmup = R"({"type":"hello","name":"warmup"})";
  send(make_id(5), warmup);
  send(make_id(5), join_json);
  size_t before = mallinfo2().uordblks;
  for (uint32_t i = 0; i < kConnections; ++i) {
    ConnectionId id = make_id(100 + i);
    app.on_open(id);
    send(id, hellos[i]);
    send(id, join_json);
  }
  size_t after = mallinfo2().uordblks;
  double per_connection = static_cast<double>(after - before) / kConnections;
  RecordProperty("bytes_per_connection", std::to_string(per_connection));
  std::printf("chat state per identified idle connection in one room: %.1f bytes\n", per_connection);
  EXPECT_LT(per_connection, 200.0);
  EXPECT_EQ(app.users(), kConnections + 1);
  EXPECT_EQ(app.rooms().room(app.rooms().find("lobby")).size(), kConnections + 1);
}

// ---------------------------------------------------------------------------------------------
// parleyd options for the chat core.

TEST(ParleydChatOptionsTest, DefaultsAndValues) {
  chat::ParleydOptions options;
  std::string error;
  ASSERT_TRUE(chat::parse_parleyd_options({}, options, error)) << error;
  EXPECT_EQ(options.history_size, 50u);
  EXPECT_EQ(options.max_text_bytes, 4096u);
  EXPECT_EQ(options.max_rooms_per_connection, 32u);
  ASSERT_TRUE(chat::parse_parleyd_options({"--history", "0", "--max-text", "16K", "--max-rooms-per-connection", "3"},
                                          options, error))
      << error;
  EXPECT_EQ(options.history_size, 0u);
  EXPECT_EQ(options.max_text_bytes, 16384u);
  EXPECT_EQ(options.max_rooms_per_connection, 3u);
  for (std::vector<std::string> bad : std::vector<std::vector<std::string>>{
           {"--history", "-1"}, {"--history", "x"}, {"--history", "100001"}, {"--history"},
           {"--max-text", "0"}, {"--max-text", "1G"}, {"--max-rooms-per-connection", "0"},
           {"--max-rooms-per-connection", "5x"}}) {
    chat::ParleydOptions ignored;
    error.clear();
    EXPECT_FALSE(chat::parse_parleyd_options(bad, ignored, error)) << bad[0];
    EXPECT_NE(error.find(bad[0]), std::string::npos) << error;
  }
  const std::string usage = chat::parleyd_usage();
  for (const char* option : {"--history", "--max-text", "--max-rooms-per-connection", "/chat"}) {
    EXPECT_NE(usage.find(option), std::string::npos) << option;
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// End to end: a real parleyd, several clients over loopback.

namespace parley_test {
namespace {

constexpr milliseconds kTimeout{3000};
constexpr milliseconds kQuiet{150};

// A chat client over WsTestClient: JSON text in, JSON text out.
class ChatClient {
 public:
  bool connect(uint16_t port) { return ws_.connect("127.0.0.1", port, "/chat"); }
  bool send(std::string_view json) { return ws_.send_frame(kOpText, json); }
  // The next text message, or "" (with a failure) when none came.
  std::string recv(milliseconds timeout = kTimeout) {
    Received message = ws_.recv_message(timeout);
    if (!message.ok()) {
      ADD_FAILURE() << "no message: status " << static_cast<int>(message.status) << " " << message.error;
      return "";
    }
    EXPECT_EQ(message.opcode, kOpText);
    return message.payload;
  }
  // True when nothing arrives for `quiet` (round-trip checked with a ping first).
  void expect_quiet(milliseconds quiet = kQuiet) {
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
  EXPECT_EQ(ack.num("seq"), 0u);
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
