// The embedding API's hooks (chat/parley.h, issue 17): the name policy on every identification
// path (hello, Authorization::user, token), the statuses of refused names, and the connect,
// disconnect, join and leave notifications. Only parley.h drives the server; tokens are minted
// with chat/auth_token.h as the host's own issuer would.
#include <gtest/gtest.h>
#include <time.h>

#include <chrono>
#include <string>
#include <vector>

#include "chat/auth_token.h"
#include "chat/parley.h"
#include "tests/embed_support.h"

namespace parley_test {
namespace {

constexpr char kSecret[] = "0123456789abcdef0123456789abcdef-embed17";

// Hooks whose name policy reserves "admin", and whose authorize names the connection after
// ?user= when given.
parley::Hooks reserving_hooks() {
  parley::Hooks hooks;
  hooks.allow_name = [](std::string_view name) -> std::string {
    return name == "admin" ? "the name admin is reserved" : "";
  };
  hooks.authorize = [](const parley::Handshake& handshake) {
    parley::Authorization answer;
    answer.user = std::string(handshake.query_param("user"));
    return answer;
  };
  return hooks;
}

// An upgrade to `path` that the server refuses with HTTP: its status line and body.
HttpResponse refused(uint16_t port, const std::string& path, const std::vector<std::string>& headers = {}) {
  WsTestClient client;
  EXPECT_FALSE(client.connect("127.0.0.1", port, path, headers));
  return client.handshake_response();
}

TEST(EmbedHooksTest, ReservedNameHoldsOnHelloAuthorizeAndToken) {
  parley::Config config;
  config.token_secret = kSecret;
  ServerThread server(config, reserving_hooks());
  ASSERT_EQ(server.start_rc(), 0) << server.server().error();
  const uint64_t exp = static_cast<uint64_t>(::time(nullptr)) + 3600;
  const std::string admin_token = chat::mint_token("admin", {}, exp, kSecret);
  const std::string carol_token = chat::mint_token("carol", {}, exp, kSecret);

  // A token naming admin: refused 403 with the policy's reason, before any frame.
  HttpResponse response = refused(server.port(), "/chat", {"Authorization: Bearer " + admin_token});
  EXPECT_EQ(response.status, 403);
  EXPECT_EQ(response.reason, "Forbidden");
  EXPECT_NE(response.body.find("the name admin is reserved"), std::string::npos) << response.body;

  // A valid token whose authorize hook asks for admin: the hook's name is checked too.
  response = refused(server.port(), "/chat?user=admin", {"Authorization: Bearer " + carol_token});
  EXPECT_EQ(response.status, 403);

  // A token for carol: a later hello as admin on that connection cannot rename it (a plain
  // hello without a token is PlainHelloCannotTakeAReservedName, the bypass of issue 17).
  WsTestClient carol;
  ASSERT_TRUE(carol.connect("127.0.0.1", server.port(), "/chat", {"Authorization: Bearer " + carol_token}));
  EXPECT_EQ(json_field(next_text(carol), "name"), "carol");
  ASSERT_TRUE(carol.send_frame(kOpText, R"({"type":"hello","name":"admin"})"));
  EXPECT_EQ(json_field(next_text(carol), "code"), "already_identified");
  EXPECT_EQ(server.server().users(), std::vector<std::string>{"carol"});
}

TEST(EmbedHooksTest, PlainHelloCannotTakeAReservedName) {
  ServerThread server({}, reserving_hooks());
  ASSERT_EQ(server.start_rc(), 0) << server.server().error();
  WsTestClient client;
  ASSERT_TRUE(client.connect("127.0.0.1", server.port(), "/chat"));
  ASSERT_TRUE(client.send_frame(kOpText, R"({"type":"hello","name":"admin","id":"h1"})"));
  std::string reply = next_text(client);
  EXPECT_EQ(json_field(reply, "type"), "error") << reply;
  EXPECT_EQ(json_field(reply, "code"), "invalid_name") << reply;
  EXPECT_EQ(json_field(reply, "reason"), "the name admin is reserved") << reply;
  // The connection stays usable: another name is welcome.
  ASSERT_TRUE(client.send_frame(kOpText, R"({"type":"hello","name":"dana"})"));
  EXPECT_EQ(json_field(next_text(client), "name"), "dana");
  EXPECT_EQ(server.server().users(), std::vector<std::string>{"dana"});
  // And ?user=admin through authorize is refused 403 with the reason.
  HttpResponse response = refused(server.port(), "/chat?user=admin");
  EXPECT_EQ(response.status, 403);
  EXPECT_NE(response.body.find("reserved"), std::string::npos) << response.body;
}

TEST(EmbedHooksTest, HookChosenNamesAreClientErrors) {
  ServerThread server({}, reserving_hooks());
  ASSERT_EQ(server.start_rc(), 0) << server.server().error();
  // Invalid: 400 Bad Request (was 500).
  HttpResponse response = refused(server.port(), "/chat?user=bad%20name");
  EXPECT_EQ(response.status, 400);
  EXPECT_EQ(response.reason, "Bad Request");
  // Taken: 409 Conflict (was "409 Unknown").
  WsTestClient erin;
  ASSERT_TRUE(erin.connect("127.0.0.1", server.port(), "/chat?user=erin"));
  EXPECT_EQ(json_field(next_text(erin), "name"), "erin");
  response = refused(server.port(), "/chat?user=erin");
  EXPECT_EQ(response.status, 409);
  EXPECT_EQ(response.reason, "Conflict");
  // A client that offers parley.chat (the page) learns the same in-band: 101, then close 4409.
  WsTestClient page;
  ASSERT_TRUE(page.connect("127.0.0.1", server.port(), "/chat?user=erin", {"Sec-WebSocket-Protocol: parley.chat"}))
      << page.error();
  EXPECT_EQ(page.handshake_response().header("Sec-WebSocket-Protocol").value_or(""), "parley.chat");
  CloseResult closed = page.expect_close();
  EXPECT_TRUE(closed.close_received) << closed.error;
  EXPECT_EQ(closed.code, 4409);
  EXPECT_EQ(closed.reason, "user name taken");
  EXPECT_TRUE(closed.frames_before.empty()) << "a refused connection got messages";
}

TEST(EmbedHooksTest, ConnectJoinLeaveDisconnectAreReported) {
  EventLog log;
  parley::Hooks hooks;
  hooks.on_connect = [&](const parley::Client& c) { log.add("connect " + std::string(c.user)); };
  hooks.on_disconnect = [&](const parley::Client& c) {
    log.add("disconnect " + std::string(c.user) + " " + std::to_string(c.code));
  };
  hooks.on_join = [&](const parley::RoomEvent& e) { log.add("join " + std::string(e.user) + " " + std::string(e.room)); };
  hooks.on_leave = [&](const parley::RoomEvent& e) {
    log.add("leave " + std::string(e.user) + " " + std::string(e.room));
  };
  ServerThread server({}, hooks);
  ASSERT_EQ(server.start_rc(), 0) << server.server().error();
  auto alice = server.hello("alice");
  ServerThread::join(*alice, "lobby");
  ServerThread::join(*alice, "lobby");  // again: no second join event
  ServerThread::join(*alice, "games");
  ASSERT_TRUE(alice->send_frame(kOpText, R"({"type":"leave","room":"lobby"})"));
  ASSERT_TRUE(log.wait_for("leave alice lobby"));
  ASSERT_TRUE(alice->send_close(1000, "bye"));
  ASSERT_TRUE(log.wait_for("disconnect alice 1000"));
  EXPECT_EQ(log.events(), (std::vector<std::string>{"connect alice", "join alice lobby", "join alice games",
                                                    "leave alice lobby", "leave alice games",
                                                    "disconnect alice 1000"}));
}

TEST(EmbedHooksTest, ThrowingHooksRefuseOrAreIgnored) {
  parley::Hooks hooks;
  hooks.allow_name = [](std::string_view) -> std::string { throw std::runtime_error("policy down"); };
  hooks.on_connect = [](const parley::Client&) { throw std::runtime_error("ignored"); };
  ServerThread server({}, hooks);
  ASSERT_EQ(server.start_rc(), 0) << server.server().error();
  WsTestClient client;
  ASSERT_TRUE(client.connect("127.0.0.1", server.port(), "/chat"));
  ASSERT_TRUE(client.send_frame(kOpText, R"({"type":"hello","name":"frank"})"));
  std::string reply = next_text(client);
  EXPECT_EQ(json_field(reply, "code"), "invalid_name") << reply;
  EXPECT_EQ(json_field(reply, "reason"), "name check failed") << reply;
  EXPECT_TRUE(server.server().users().empty());
}

TEST(EmbedHooksTest, TokenRefusalsAreInBandForClientsOfferingParleyChat) {
  parley::Config config;
  config.token_secret = kSecret;
  ServerThread server(config, {});
  ASSERT_EQ(server.start_rc(), 0) << server.server().error();
  const uint64_t now = static_cast<uint64_t>(::time(nullptr));
  struct Case {
    std::string offer;
    std::string reason_prefix;
  };
  const std::vector<Case> cases = {
      {"parley.chat", "a token is required"},
      {"parley.chat, parley.token." + chat::mint_token("hana", {}, now - 60, kSecret), "invalid token: expired"},
      {"parley.chat, parley.token.garbage", "invalid token: malformed"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.reason_prefix);
    WsTestClient client;
    ASSERT_TRUE(client.connect("127.0.0.1", server.port(), "/chat", {"Sec-WebSocket-Protocol: " + c.offer}))
        << client.error();
    EXPECT_EQ(client.handshake_response().header("Sec-WebSocket-Protocol").value_or(""), "parley.chat");
    // Whatever it sends is not read: no hello can get through.
    ASSERT_TRUE(client.send_frame(kOpText, R"({"type":"hello","name":"intruder"})"));
    CloseResult closed = client.expect_close();
    EXPECT_TRUE(closed.close_received) << closed.error;
    EXPECT_EQ(closed.code, 4401);
    EXPECT_EQ(closed.reason.rfind(c.reason_prefix, 0), 0u) << closed.reason;
    EXPECT_TRUE(closed.frames_before.empty());
  }
  EXPECT_TRUE(server.server().users().empty());
  EXPECT_EQ(server.server().stats().unauthorized, 3u);
  // Without parley.chat: the plain 401, as before.
  HttpResponse response = refused(server.port(), "/chat");
  EXPECT_EQ(response.status, 401);
  // And a valid token with parley.chat: parley.chat selected, welcome as the token's user.
  WsTestClient ok;
  ASSERT_TRUE(ok.connect("127.0.0.1", server.port(), "/chat",
                         {"Sec-WebSocket-Protocol: parley.chat, parley.token." +
                          chat::mint_token("hana", {}, now + 600, kSecret)}))
      << ok.error();
  EXPECT_EQ(ok.handshake_response().header("Sec-WebSocket-Protocol").value_or(""), "parley.chat");
  EXPECT_EQ(json_field(next_text(ok), "name"), "hana");
}

// A lost connection (no close frame: 1006) holds its session for Config::resume_window_seconds:
// the host hears the disconnect at once and the leaves only when the window has passed, from the
// same expiry timer parleyd runs.
TEST(EmbedHooksTest, ALostSessionIsHeldForTheResumeWindowThenLeaves) {
  EventLog log;
  parley::Hooks hooks;
  hooks.on_disconnect = [&](const parley::Client& c) {
    log.add("disconnect " + std::string(c.user) + " " + std::to_string(c.code));
  };
  hooks.on_leave = [&](const parley::RoomEvent& e) {
    log.add("leave " + std::string(e.user) + " " + std::string(e.room));
  };
  parley::Config config;
  config.resume_window_seconds = 1;
  ServerThread server(config, hooks);
  ASSERT_EQ(server.start_rc(), 0) << server.server().error();
  auto alice = server.hello("alice");
  ServerThread::join(*alice, "lobby");
  const auto lost_at = std::chrono::steady_clock::now();
  alice->disconnect();
  ASSERT_TRUE(log.wait_for("disconnect alice 1006"));
  ASSERT_TRUE(log.wait_for("leave alice lobby", std::chrono::milliseconds(10000)));
  // Held for the window (1 s), ended by the one-second tick: never before the window passed.
  EXPECT_GE(std::chrono::steady_clock::now() - lost_at, std::chrono::milliseconds(900));
  EXPECT_EQ(log.events(), (std::vector<std::string>{"disconnect alice 1006", "leave alice lobby"}));
}

}  // namespace
}  // namespace parley_test
