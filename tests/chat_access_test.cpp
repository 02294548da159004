// ChatApp's access control and abuse limits (issue 7) in process: tokens, Origin, handshake and
// message rates, room size, and the embedding hooks (authorize, veto, custom types).
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "chat/auth_token.h"
#include "chat/chat_app.h"
#include "tests/support/chat_test_support.h"

namespace parley_test {
namespace {

class ChatAccessTest : public ChatAppFixture {};

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


constexpr char kTestSecret[] = "chat-app-test-secret-0123456789abcdef";

std::string test_token(std::string_view user, const std::vector<std::string>& rooms = {}, int64_t ttl_s = 600,
                       std::string_view secret = kTestSecret) {
  return chat::mint_token(user, rooms, static_cast<uint64_t>(static_cast<int64_t>(kNow / 1000) + ttl_s), secret);
}

uint64_t g_monotonic_ms = 5000;
uint64_t test_monotonic() { return g_monotonic_ms; }

TEST_F(ChatAccessTest, TokenAuthRefusesBadTokensAndIdentifiesAtOpen) {
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

TEST_F(ChatAccessTest, OriginPolicyAndHandshakeRate) {
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

TEST_F(ChatAccessTest, MessageRateLimitDropsThenCloses) {
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

TEST_F(ChatAccessTest, MaxRoomMembers) {
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

TEST_F(ChatAccessTest, HooksAuthorizeVetoAndCustomTypes) {
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
  // Issue 17: a name the hook took from the client is the client's problem: 400, not 500.
  verdict = app->on_upgrade(bob, request_for(storage, "/chat?user=bad%20name"));
  EXPECT_EQ(verdict.status, 400);
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

TEST_F(ChatAccessTest, PendingAuthorizedNameIsDroppedWhenTheUpgradeNeverOpens) {
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

}  // namespace
}  // namespace parley_test
