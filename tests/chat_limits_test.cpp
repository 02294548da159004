// Issue 13, chat level: presence as one shared frame, the history memory budget, room caps,
// text_too_long below the hard message size (1009 past it), welcome's max_text, --echo and the
// token gate on /echo. In process first, then against a real parleyd.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "chat/auth_token.h"
#include "chat/chat_app.h"
#include "chat/parleyd_options.h"
#include "chat/upgrade_auth.h"
#include "tests/support/chat_test_support.h"
#include "tests/support/parleyd_process.h"

namespace parley_test {
namespace {

class ChatLimitsTest : public ChatAppFixture {
 protected:
  // Sends a msg of `size` bytes of text to `room` and expects the ack.
  void say(ConnectionId id, std::string_view room, size_t size) {
    send(id, R"({"type":"msg","room":")" + std::string(room) + R"(","text":")" + std::string(size, 'x') + R"("})");
    Json ack(next(id));
    ASSERT_EQ(ack.type(), "ack") << ack.raw;
  }
};

// The join and the disconnect presence notices both go out as one encoded frame shared by every
// member, never as a private copy each (a copy per member cost each a 16 KiB write-queue chunk).
TEST_F(ChatLimitsTest, PresenceIsOneSharedFrameOnJoinLeaveAndDisconnect) {
  constexpr uint32_t kMembers = 50;
  for (uint32_t i = 0; i < kMembers; ++i) {
    ConnectionId id = make_id(100 + i);
    connect(id, "m" + std::to_string(i));
    join(id, "lobby");
  }
  connect(alice, "alice");
  transport->encoded.clear();
  transport->inbox.clear();
  join(alice, "lobby");
  std::set<const reactor::SharedBuffer*> frames;
  for (const auto& [id, frame] : transport->encoded) frames.insert(frame);
  EXPECT_EQ(transport->encoded.size(), kMembers);
  EXPECT_EQ(frames.size(), 1u);

  for (ConnectionId id : {ConnectionId{alice}, ConnectionId{make_id(100)}}) {
    transport->encoded.clear();
    transport->inbox.clear();
    if (id == alice) {
      app->on_close(id, 1006);  // disconnect
    } else {
      send(id, R"({"type":"leave","room":"lobby"})");
    }
    frames.clear();
    std::set<ConnectionId> told;
    for (const auto& [to, frame] : transport->encoded) {
      frames.insert(frame);
      told.insert(to);
    }
    EXPECT_EQ(frames.size(), 1u);
    EXPECT_EQ(told.size(), transport->encoded.size());
    EXPECT_FALSE(told.count(id));
    // Every remaining member got exactly the left notice, through send_encoded only.
    size_t texts = 0;
    for (auto& [to, queue] : transport->inbox) texts += queue.size();
    EXPECT_EQ(texts, transport->encoded.size());
    Json left(next(make_id(101)));
    EXPECT_EQ(left.type(), "left");
  }
  EXPECT_EQ(transport->encoded.size(), kMembers - 1);
  expect_invariants();
}

TEST_F(ChatLimitsTest, WelcomeCarriesTheTextLimit) {
  ChatConfig config;
  config.max_text_bytes = 1234;
  recreate(config);
  app->on_open(alice);
  send(alice, R"({"type":"hello","name":"alice"})");
  Json welcome(next(alice));
  EXPECT_EQ(welcome.type(), "welcome");
  EXPECT_EQ(welcome.num("max_text"), 1234u);
}

// Many rooms fill their history with big messages: the bytes the app reports stay under the
// budget at every step, the newest messages survive, and a quiet room keeps all of its history.
TEST_F(ChatLimitsTest, HistoryMemoryStaysUnderTheBudget) {
  ChatConfig config;
  config.history_memory = 512 * 1024;
  config.max_text_bytes = 4096;
  recreate(config);
  connect(alice, "alice");
  connect(bob, "bob");
  join(bob, "quiet");
  say(bob, "quiet", 10);
  say(bob, "quiet", 10);
  constexpr int kRooms = 32;
  constexpr int kMessages = 50;
  for (int room = 0; room < kRooms; ++room) join(alice, "r" + std::to_string(room));
  size_t peak = 0;
  for (int message = 0; message < kMessages; ++message) {
    for (int room = 0; room < kRooms; ++room) {
      say(alice, "r" + std::to_string(room), 4000);
      chat::ChatRoomStats stats = app->room_stats();
      ASSERT_LE(stats.history_bytes, config.history_memory);
      peak = std::max(peak, stats.history_bytes);
    }
  }
  chat::ChatRoomStats stats = app->room_stats();
  // Without the budget this would be 32 x 50 x 4000 = 6.4 MB of text alone.
  EXPECT_GT(peak, config.history_memory * 3 / 4);
  EXPECT_GT(stats.history_evictions, 0u);
  EXPECT_EQ(stats.rooms, kRooms + 1u);
  EXPECT_EQ(stats.history_memory, config.history_memory);
  expect_invariants();
  // The newest message of a busy room is still there; the quiet room still has both.
  send(alice, R"({"type":"history","room":"r7"})");
  std::vector<Json::Item> items = Json(next(alice)).messages();
  ASSERT_FALSE(items.empty());
  EXPECT_EQ(items.back().seq, static_cast<uint64_t>(kMessages));
  EXPECT_LT(items.size(), static_cast<size_t>(kMessages));
  send(bob, R"({"type":"history","room":"quiet"})");
  EXPECT_EQ(Json(next(bob)).messages().size(), 2u);
  // Everyone leaves: every room and every history byte is freed.
  app->on_close(alice, 1000);
  app->on_close(bob, 1000);
  EXPECT_EQ(app->room_stats().rooms, 0u);
  EXPECT_EQ(app->room_stats().history_bytes, 0u);
}

uint64_t g_peer_key_base = 0;
// Connections with fd below 50 come from address 1, the others from address 2.
bool test_peer_key(ConnectionId id, uint64_t& key) {
  key = g_peer_key_base + (static_cast<uint32_t>(id) < 50 ? 1 : 2);
  return true;
}

TEST_F(ChatLimitsTest, RoomCapsAnswerRoomLimit) {
  ChatConfig config;
  config.max_rooms = 4;
  config.max_rooms_per_ip = 2;
  config.peer_key = &test_peer_key;
  recreate(config);
  connect(alice, "alice");          // fd 10: address 1
  connect(bob, "bob");              // fd 11: address 1
  const ConnectionId dave = make_id(60);  // address 2
  connect(dave, "dave");
  join(alice, "a1");
  join(bob, "a2");
  send(bob, R"({"type":"join","room":"a3","id":"j1"})");
  expect_error(bob, "room_limit", "j1");
  join(bob, "a1");  // an existing room: no limit
  EXPECT_EQ(Json(next(alice)).type(), "joined");
  join(dave, "d1");
  join(dave, "d2");
  send(dave, R"({"type":"join","room":"d3"})");
  expect_error(dave, "room_limit");  // per address again
  send(bob, R"({"type":"leave","room":"a2"})");  // freed: address 1 may create one more
  join(alice, "a3");
  EXPECT_EQ(app->room_stats().rooms, 4u);
  const ConnectionId erin = make_id(61);
  connect(erin, "erin");
  g_peer_key_base = 100;  // erin's address is new, but the server holds its 4 rooms
  send(erin, R"({"type":"join","room":"e1"})");
  expect_error(erin, "room_limit");
  g_peer_key_base = 0;
  join(erin, "d1");
  EXPECT_EQ(app->access_stats().room_limit, 3u);
  expect_invariants();
}

// A message over the text limit but under the hard size: text_too_long, connection untouched.
TEST_F(ChatLimitsTest, HardMessageSizeLeavesRoomForTextTooLong) {
  EXPECT_EQ(chat::chat_hard_message_size(4096), 65536u);
  EXPECT_EQ(chat::chat_hard_message_size(100), 65536u);
  EXPECT_EQ(chat::chat_hard_message_size(16384), 262144u);
  for (uint64_t text : {1ull, 100ull, 4096ull, 10000ull, 1ull << 20}) {
    // Every text under the limit, fully escaped, plus the envelope, fits below the hard size.
    EXPECT_GE(chat::chat_hard_message_size(text), 6 * text + 16 * 1024) << text;
  }
  connect(alice, "alice");
  join(alice, "lobby");
  send(alice, R"({"type":"msg","room":"lobby","text":")" + std::string(50000, 'x') + R"(","id":"big"})");
  expect_error(alice, "text_too_long");
  EXPECT_TRUE(transport->closed.empty());
}

TEST(TokenGatedAppTest, RefusesWithoutAValidTokenAndForwardsOtherwise) {
  class Inner final : public protocol::WsApplication {
   public:
    void on_open(ConnectionId) override { ++opened; }
    void on_message(ConnectionId, protocol::Opcode, std::span<uint8_t> payload) override {
      last.assign(payload.begin(), payload.end());
    }
    void on_close(ConnectionId, uint16_t) override { ++closed; }
    int opened = 0;
    int closed = 0;
    std::string last;
  } inner;
  constexpr char kSecret[] = "token-gated-app-test-secret-0123456789";
  chat::TokenGatedApp gate(inner, kSecret, [] { return uint64_t{1700000000}; });
  std::string storage;
  protocol::UpgradeVerdict verdict = gate.on_upgrade(1, request_with(storage, "/echo", {}));
  EXPECT_EQ(verdict.status, 401);
  EXPECT_NE(std::string(verdict.reason).find("token is required"), std::string::npos);
  std::string forged = chat::mint_token("alice", {}, 1700000600, "another-secret-0123456789abcdef-xx");
  verdict = gate.on_upgrade(1, request_with(storage, "/echo", {"Authorization: Bearer " + forged}));
  EXPECT_EQ(verdict.status, 401);
  EXPECT_EQ(std::string(verdict.reason).find(forged), std::string::npos);  // never echoes the token
  std::string expired = chat::mint_token("alice", {}, 1699999999, kSecret);
  verdict = gate.on_upgrade(1, request_with(storage, "/echo", {"Authorization: Bearer " + expired}));
  EXPECT_EQ(verdict.status, 401);
  EXPECT_EQ(gate.unauthorized(), 3u);
  std::string good = chat::mint_token("alice", {}, 1700000600, kSecret);
  verdict = gate.on_upgrade(1, request_with(storage, "/echo?token=" + good, {}));
  EXPECT_EQ(verdict.status, 101);
  verdict = gate.on_upgrade(1, request_with(storage, "/echo", {"Sec-WebSocket-Protocol: parley.token." + good}));
  EXPECT_EQ(verdict.status, 101);
  EXPECT_EQ(verdict.subprotocol, "parley.token." + good);  // RFC 6455 4.2.2: one the client offered
  gate.on_open(1);
  std::string payload = "hi";
  gate.on_message(1, protocol::Opcode::kText, {reinterpret_cast<uint8_t*>(payload.data()), payload.size()});
  gate.on_close(1, 1000);
  EXPECT_EQ(inner.opened, 1);
  EXPECT_EQ(inner.last, "hi");
  EXPECT_EQ(inner.closed, 1);
}

TEST(ParleydLimitOptionsTest, DefaultsValuesAndErrors) {
  chat::ParleydOptions options;
  std::string error;
  ASSERT_TRUE(chat::parse_parleyd_options({}, options, error)) << error;
  EXPECT_EQ(options.history_memory, 64u << 20);
  EXPECT_EQ(options.max_rooms, 100000u);
  EXPECT_EQ(options.max_rooms_per_ip, 1000u);
  EXPECT_TRUE(options.echo);
  ASSERT_TRUE(chat::parse_parleyd_options({"--history-memory", "8M", "--max-rooms", "10", "--max-rooms-per-ip", "0",
                                           "--echo", "off"},
                                          options, error))
      << error;
  EXPECT_EQ(options.history_memory, 8u << 20);
  EXPECT_EQ(options.max_rooms, 10u);
  EXPECT_EQ(options.max_rooms_per_ip, 0u);
  EXPECT_FALSE(options.echo);
  for (std::vector<std::string> bad : std::vector<std::vector<std::string>>{
           {"--history-memory", "lots"}, {"--history-memory", "2T"}, {"--max-rooms", "-1"},
           {"--max-rooms-per-ip", "x"}, {"--echo", "maybe"}, {"--echo"}}) {
    chat::ParleydOptions ignored;
    error.clear();
    EXPECT_FALSE(chat::parse_parleyd_options(bad, ignored, error)) << bad[0];
    EXPECT_NE(error.find(bad[0]), std::string::npos) << error;
  }
  const std::string usage = chat::parleyd_usage();
  for (const char* option : {"--history-memory", "--max-rooms ", "--max-rooms-per-ip", "--echo on|off", "1009"}) {
    EXPECT_NE(usage.find(option), std::string::npos) << option;
  }
}

// ---------------------------------------------------------------------------------------------
// Against parleyd.

std::unique_ptr<ChatClient> chat_client(uint16_t port, std::string_view name) {
  auto client = std::make_unique<ChatClient>();
  EXPECT_TRUE(client->connect(port)) << client->ws().error();
  client->hello(name);
  return client;
}

// Below the hard size (64 KiB with the default --max-text 4096) an over-long text is answered
// and the connection keeps working; past it the server closes with 1009 (RFC 6455 7.4.1).
TEST(ChatLimitsEndToEndTest, TextTooLongStaysOpenThen1009PastTheHardSize) {
  ParleydProcess server({"--rate-limit", "0"});
  ASSERT_TRUE(server.ok()) << server.error();
  auto alice = chat_client(server.port(), "alice");
  alice->join("lobby");
  // 50,000 bytes: over the old 40,960-byte route limit that closed with 1009.
  for (size_t size : {size_t{5000}, size_t{50000}, size_t{65000}}) {
    std::string json = R"({"type":"msg","room":"lobby","text":")" + std::string(size, 'x') + R"(","id":"m1"})";
    ASSERT_LE(json.size(), 65536u);
    ASSERT_TRUE(alice->send(json));
    Json error(alice->recv());
    EXPECT_EQ(error.type(), "error") << size;
    EXPECT_EQ(error.str("code"), "text_too_long") << size;
    alice->sync();  // still open and answering
  }
  ASSERT_TRUE(alice->send(R"({"type":"msg","room":"lobby","text":"fits","id":"m2"})"));
  EXPECT_EQ(Json(alice->recv()).type(), "ack");
  // One byte past the hard size.
  std::string json = R"({"type":"msg","room":"lobby","text":")" + std::string(65536, 'x') + R"("})";
  json.resize(65537, ' ');
  alice->ws().send_frame(kOpText, json);
  CloseResult close = alice->ws().expect_close();
  EXPECT_TRUE(close.close_received) << close.error;
  EXPECT_EQ(close.code, 1009);
}

TEST(ChatLimitsEndToEndTest, EchoOffRemovesTheRoute) {
  ParleydProcess server({"--echo", "off"});
  ASSERT_TRUE(server.ok()) << server.error();
  WsTestClient echo;
  EXPECT_FALSE(echo.connect("127.0.0.1", server.port(), "/echo"));
  EXPECT_EQ(echo.handshake_response().status, 404) << echo.error();
  ChatClient chat;  // /chat is still served
  EXPECT_TRUE(chat.connect(server.port())) << chat.ws().error();
}

// A temporary secret file for --auth-secret, removed with the object.
class SecretFile {
 public:
  explicit SecretFile(std::string_view secret) {
    char pattern[] = "/tmp/parley-limits-XXXXXX";
    if (const char* made = mkdtemp(pattern)) dir_ = made;
    std::ofstream(path()) << secret << "\n";
  }
  ~SecretFile() {
    std::error_code ignored;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
  }
  std::string path() const { return dir_ + "/secret"; }

 private:
  std::string dir_;
};

TEST(ChatLimitsEndToEndTest, EchoAsksForTheChatTokenWithAuthSecret) {
  constexpr char kSecret[] = "0123456789abcdef0123456789abcdef-issue13";
  SecretFile secret(kSecret);
  ParleydProcess server({"--auth-secret", secret.path()});
  ASSERT_TRUE(server.ok()) << server.error();
  {
    WsTestClient anonymous;
    EXPECT_FALSE(anonymous.connect("127.0.0.1", server.port(), "/echo"));
    EXPECT_EQ(anonymous.handshake_response().status, 401) << anonymous.error();
  }
  {
    WsTestClient forged;
    std::string token = chat::mint_token("eve", {}, static_cast<uint64_t>(::time(nullptr)) + 600,
                                         "fedcba9876543210fedcba9876543210-other");
    EXPECT_FALSE(forged.connect("127.0.0.1", server.port(), "/echo", {"Authorization: Bearer " + token}));
    EXPECT_EQ(forged.handshake_response().status, 401);
  }
  WsTestClient client;
  std::string token = chat::mint_token("alice", {}, static_cast<uint64_t>(::time(nullptr)) + 600, kSecret);
  ASSERT_TRUE(client.connect("127.0.0.1", server.port(), "/echo", {"Authorization: Bearer " + token}))
      << client.error();
  ASSERT_TRUE(client.send_frame(kOpText, "ping me"));
  Received echoed = client.recv_message();
  ASSERT_TRUE(echoed.ok()) << echoed.error;
  EXPECT_EQ(echoed.payload, "ping me");
}

uint64_t metric(const std::string& body, const std::string& name) {
  size_t at = body.find("\n" + name + " ");
  if (at == std::string::npos) return UINT64_MAX;
  return std::stoull(body.substr(at + name.size() + 2));
}

// The report's attack (one address, many rooms, big messages) against a 1 MiB budget: the
// history bytes /metrics reports stay under it while the rooms fill.
TEST(ChatLimitsEndToEndTest, HistoryMemoryCapHoldsInMetrics) {
  constexpr uint64_t kBudget = 1 << 20;
  ParleydProcess server({"--rate-limit", "0", "--history-memory", "1M"});
  ASSERT_TRUE(server.ok()) << server.error();
  const std::string get = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  std::vector<std::unique_ptr<ChatClient>> clients;
  for (int c = 0; c < 4; ++c) {
    clients.push_back(chat_client(server.port(), "c" + std::to_string(c)));
    for (int room = 0; room < 32; ++room) clients.back()->join("c" + std::to_string(c) + "r" + std::to_string(room));
  }
  const std::string text(4000, 'h');
  uint64_t peak = 0;
  for (int round = 0; round < 10; ++round) {
    for (size_t c = 0; c < clients.size(); ++c) {
      for (int room = 0; room < 32; ++room) {
        ASSERT_TRUE(clients[c]->send(R"({"type":"msg","room":"c)" + std::to_string(c) + "r" + std::to_string(room) +
                                     R"(","text":")" + text + R"("})"));
      }
      for (int room = 0; room < 32; ++room) ASSERT_EQ(Json(clients[c]->recv()).type(), "ack");
    }
    HttpResponse metrics = http_request("127.0.0.1", server.port(), get);
    uint64_t bytes = metric(metrics.body, "parley_chat_history_bytes");
    ASSERT_NE(bytes, UINT64_MAX) << metrics.body;
    EXPECT_LE(bytes, kBudget) << "round " << round;
    peak = std::max(peak, bytes);
  }
  HttpResponse metrics = http_request("127.0.0.1", server.port(), get);
  // 4 x 32 rooms x 10 messages x 4000 bytes = 5.1 MB sent; the budget held it to 1 MiB.
  EXPECT_GT(peak, kBudget / 2);
  EXPECT_GT(metric(metrics.body, "parley_chat_history_evictions_total"), 0u) << metrics.body;
  EXPECT_EQ(metric(metrics.body, "parley_chat_history_memory_bytes"), kBudget);
  EXPECT_EQ(metric(metrics.body, "parley_chat_rooms"), 128u);
  clients.clear();  // everyone disconnects: the rooms and their history are freed
  bool freed = false;
  for (int i = 0; i < 100 && !freed; ++i) {
    metrics = http_request("127.0.0.1", server.port(), get);
    freed = metric(metrics.body, "parley_chat_rooms") == 0 && metric(metrics.body, "parley_chat_history_bytes") == 0;
    if (!freed) usleep(20000);
  }
  EXPECT_TRUE(freed) << metrics.body;
}

}  // namespace
}  // namespace parley_test
