// The /chat application (chat/chat_app.h) in process, against a recording transport: every
// message type and error path, encode-once fan-out, hooks, random input against the room
// invariants. End to end against parleyd: chat_end_to_end_test.cpp; limits: chat_limits_test.cpp.
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

#include "chat/parleyd_options.h"
#include "protocol/frame_header.h"
#include "protocol/http_request.h"
#include "tests/support/chat_test_support.h"

namespace parley_test {
namespace {

class ChatAppTest : public ChatAppFixture {};

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
  EXPECT_EQ(ack.num("seq"), 1u);  // the conversation's seq (issue 14)
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
  EXPECT_TRUE(app->publish("news", "server", "breaking"));
  for (ConnectionId id : {alice, bob}) {
    Json msg(next(id));
    EXPECT_EQ(msg.type(), "msg");
    EXPECT_EQ(msg.str("from"), "server");
    EXPECT_EQ(msg.str("text"), "breaking");
    EXPECT_EQ(msg.num("seq"), 1u);
  }
  EXPECT_FALSE(app->publish("empty-room", "server", "x"));
  send(bob, R"({"type":"msg","room":"news","text":"after"})");
  EXPECT_EQ(Json(next(alice)).num("seq"), 2u);
  send(alice, R"({"type":"history","room":"news"})");
  std::vector<Json::Item> items = Json(next(alice)).messages();
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].from, "server");
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
}  // namespace parley_test
