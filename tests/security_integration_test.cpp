// Issue 7 end to end: parleyd's --auth-secret, --allow-origin / --deny-missing-origin,
// --rate-limit / --rate-burst, --handshake-rate, --max-room-members and --max-connections-per-ip,
// against a real parleyd over real sockets. Tokens are minted here with chat::mint_token and a secret file in a
// temporary directory.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <simdjson.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "chat/auth_token.h"
#include "tests/support/parleyd_process.h"
#include "tests/support/ws_test_client.h"

namespace {

using parley_test::ParleydProcess;
using parley_test::WsTestClient;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr char kSecret[] = "0123456789abcdef0123456789abcdef-issue7";   // >= 32 bytes
constexpr char kOtherSecret[] = "fedcba9876543210fedcba9876543210-other";

uint64_t now_s() { return static_cast<uint64_t>(::time(nullptr)); }

std::string mint(std::string_view user, const std::vector<std::string>& rooms = {}, int64_t ttl_s = 3600,
                 std::string_view secret = kSecret) {
  return chat::mint_token(user, rooms, static_cast<uint64_t>(static_cast<int64_t>(now_s()) + ttl_s), secret);
}

// One field of a JSON object, or "<missing>".
std::string field(std::string_view json, const char* key) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(json);
  simdjson::dom::element root;
  std::string_view value;
  if (parser.parse(padded).get(root) != simdjson::SUCCESS || root[key].get_string().get(value) != simdjson::SUCCESS) {
    return "<missing>";
  }
  return std::string(value);
}

// A temporary directory with the secret file, removed at the end of the test program.
class SecretDir {
 public:
  SecretDir() {
    char pattern[] = "/tmp/parley-security-XXXXXX";
    const char* made = mkdtemp(pattern);
    if (made != nullptr) dir_ = made;
    std::ofstream(path()) << kSecret << "\n";
  }
  ~SecretDir() {
    std::error_code ignored;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
  }
  std::string path() const { return dir_ + "/secret"; }

 private:
  std::string dir_;
};

// A client upgraded to /chat (or refused: check handshake_response()).
struct Client {
  WsTestClient ws;
  bool ok = false;

  Client(uint16_t port, std::string_view path, const std::vector<std::string>& headers = {}) {
    ok = ws.connect("127.0.0.1", port, path, headers);
  }
  int status() const { return ws.handshake_response().status; }
  void send(std::string_view json) { ASSERT_TRUE(ws.send_frame(parley_test::kOpText, json)) << ws.error(); }
  // The next text message of `type`, skipping others; "" on timeout or close.
  std::string next(std::string_view type, milliseconds timeout = milliseconds(3000)) {
    auto deadline = steady_clock::now() + timeout;
    while (steady_clock::now() < deadline) {
      auto left = std::chrono::duration_cast<milliseconds>(deadline - steady_clock::now());
      parley_test::Received received = ws.recv_message(left);
      if (!received.ok() || received.opcode != parley_test::kOpText) return "";
      if (field(received.payload, "type") == type) return received.payload;
    }
    return "";
  }
  void hello(std::string_view name) {
    send(R"({"type":"hello","name":")" + std::string(name) + R"("})");
    ASSERT_EQ(field(next("welcome"), "name"), name);
  }
  void join(std::string_view room) {
    send(R"({"type":"join","room":")" + std::string(room) + R"("})");
    ASSERT_EQ(field(next("history"), "room"), room);
  }
};

// ---------------------------------------------------------------------------------------------
// --auth-secret

class AuthTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    secret_dir_ = new SecretDir();
    server_ = new ParleydProcess({"--auth-secret", secret_dir_->path()});
  }
  static void TearDownTestSuite() {
    delete server_;
    delete secret_dir_;
  }
  void SetUp() override { ASSERT_TRUE(server_->ok()) << server_->error(); }
  uint16_t port() const { return server_->port(); }

  // Expects the upgrade to be refused with 401, with a body that does not echo `token`.
  void expect_401(std::string_view path, const std::vector<std::string>& headers, const std::string& token,
                  std::string_view why) {
    Client client(port(), path, headers);
    EXPECT_FALSE(client.ok);
    EXPECT_EQ(client.status(), 401) << client.ws.error();
    const std::string& body = client.ws.handshake_response().body;
    EXPECT_NE(body.find(why), std::string::npos) << body;
    if (!token.empty()) {
      EXPECT_EQ(body.find(token), std::string::npos) << body;
      // No part of the token either (its signature is the secret-derived part).
      EXPECT_EQ(body.find(token.substr(token.rfind('.') + 1)), std::string::npos) << body;
    }
  }

  static SecretDir* secret_dir_;
  static ParleydProcess* server_;
};
SecretDir* AuthTest::secret_dir_ = nullptr;
ParleydProcess* AuthTest::server_ = nullptr;

TEST_F(AuthTest, MissingForgedExpiredAndWrongSecretTokensGet401) {
  expect_401("/chat", {}, "", "token is required");
  // Forged: alice's valid token with bob's claims spliced in keeps alice's signature.
  std::string alice = mint("alice");
  std::string bob = mint("bob");
  std::string forged = bob.substr(0, bob.rfind('.')) + alice.substr(alice.rfind('.'));
  expect_401("/chat", {"Authorization: Bearer " + forged}, forged, "bad_signature");
  // A flipped signature character.
  std::string flipped = alice;
  flipped.back() = flipped.back() == 'A' ? 'B' : 'A';
  expect_401("/chat", {"Authorization: Bearer " + flipped}, flipped, "invalid token");
  std::string expired = mint("alice", {}, -10);
  expect_401("/chat", {"Authorization: Bearer " + expired}, expired, "expired");
  std::string wrong = mint("alice", {}, 3600, kOtherSecret);
  expect_401("/chat?token=" + wrong, {}, wrong, "bad_signature");
  expect_401("/chat", {"Sec-WebSocket-Protocol: parley.token.garbage"}, "garbage", "malformed");
  // alg "none" would be the classic bypass.
  std::string none = "eyJhbGciOiJub25lIn0." + alice.substr(alice.find('.') + 1, alice.rfind('.') - alice.find('.'));
  expect_401("/chat", {"Authorization: Bearer " + none}, "", "invalid token");
  // A hello on an unauthenticated connection is impossible: the refusal came before any frame.
}

TEST_F(AuthTest, BearerTokenIdentifiesAtOpen) {
  Client client(port(), "/chat", {"Authorization: Bearer " + mint("alice")});
  ASSERT_TRUE(client.ok) << client.ws.error();
  EXPECT_EQ(field(client.next("welcome"), "name"), "alice");
  EXPECT_FALSE(client.ws.handshake_response().header("Sec-WebSocket-Protocol").has_value());
  // Same name again: welcome again; another name: already_identified.
  client.send(R"({"type":"hello","name":"alice"})");
  EXPECT_EQ(field(client.next("welcome"), "name"), "alice");
  client.send(R"({"type":"hello","name":"mallory"})");
  std::string error = client.next("error");
  EXPECT_EQ(field(error, "code"), "already_identified") << error;
  // A second connection with alice's token while she is connected: the name is taken.
  Client twin(port(), "/chat", {"Authorization: Bearer " + mint("alice")});
  EXPECT_FALSE(twin.ok);
  EXPECT_EQ(twin.status(), 409);
}

TEST_F(AuthTest, QueryTokenIdentifiesAtOpen) {
  Client client(port(), "/chat?token=" + mint("quinn"));
  ASSERT_TRUE(client.ok) << client.ws.error();
  EXPECT_EQ(field(client.next("welcome"), "name"), "quinn");
}

TEST_F(AuthTest, SubprotocolTokenIsSelectedInThe101) {
  std::string token = mint("sam");
  Client client(port(), "/chat", {"Sec-WebSocket-Protocol: chat.v1, parley.token." + token});
  ASSERT_TRUE(client.ok) << client.ws.error();
  // RFC 6455 4.2.2: the server selects one protocol the client offered; a browser fails the
  // connection if it selects none.
  EXPECT_EQ(client.ws.handshake_response().header("Sec-WebSocket-Protocol").value_or("<none>"),
            "parley.token." + token);
  EXPECT_EQ(field(client.next("welcome"), "name"), "sam");
}

TEST_F(AuthTest, RoomsClaimLimitsJoins) {
  Client client(port(), "/chat", {"Authorization: Bearer " + mint("rita", {"general", "ops"})});
  ASSERT_TRUE(client.ok) << client.ws.error();
  ASSERT_EQ(field(client.next("welcome"), "name"), "rita");
  client.join("general");
  client.join("#ops");
  client.send(R"({"type":"join","room":"secret","id":"j1"})");
  std::string error = client.next("error");
  EXPECT_EQ(field(error, "code"), "rejected") << error;
  EXPECT_EQ(field(error, "reason").rfind("forbidden_room", 0), 0u) << error;
  EXPECT_EQ(field(error, "id"), "j1") << error;
  // And the room was not joined: a message to it is refused.
  client.send(R"({"type":"msg","room":"secret","text":"hi"})");
  EXPECT_EQ(field(client.next("error"), "code"), "unknown_room");
  // A token without a rooms claim may join anything.
  Client free(port(), "/chat", {"Authorization: Bearer " + mint("fred")});
  ASSERT_TRUE(free.ok);
  ASSERT_EQ(field(free.next("welcome"), "name"), "fred");
  free.join("secret");
}

// ---------------------------------------------------------------------------------------------
// --allow-origin, --deny-missing-origin

TEST(OriginTest, ListedOriginsOnlyAndMissingOriginDenied) {
  ParleydProcess server({"--allow-origin", "https://*.example.com,http://localhost:8080", "--deny-missing-origin"});
  ASSERT_TRUE(server.ok()) << server.error();
  EXPECT_EQ(server.stderr_text().find("WARNING: any Origin"), std::string::npos) << server.stderr_text();
  {
    Client client(server.port(), "/chat", {"Origin: https://evil.test"});
    EXPECT_FALSE(client.ok);
    EXPECT_EQ(client.status(), 403);
  }
  {
    // The bare domain is not covered by *.example.com.
    Client client(server.port(), "/chat", {"Origin: https://example.com"});
    EXPECT_EQ(client.status(), 403);
  }
  {
    Client client(server.port(), "/chat", {"Origin: https://chat.eu.example.com"});
    EXPECT_TRUE(client.ok) << client.ws.error();
    client.hello("wendy");
  }
  {
    Client client(server.port(), "/chat", {"Origin: http://localhost:8080"});
    EXPECT_TRUE(client.ok) << client.ws.error();
  }
  {
    Client client(server.port(), "/chat");
    EXPECT_FALSE(client.ok);
    EXPECT_EQ(client.status(), 403);
  }
  {
    // /echo is a conformance and benchmark endpoint: not covered.
    Client client(server.port(), "/echo", {"Origin: https://evil.test"});
    EXPECT_TRUE(client.ok) << client.ws.error();
  }
}

TEST(OriginTest, DefaultAllowsAnyOriginAndWarns) {
  ParleydProcess server(std::vector<std::string>{});
  ASSERT_TRUE(server.ok()) << server.error();
  EXPECT_NE(server.stderr_text().find(
                "parleyd: WARNING: any Origin may connect (development default); use --allow-origin in production"),
            std::string::npos)
      << server.stderr_text();
  Client client(server.port(), "/chat", {"Origin: https://anything.test"});
  EXPECT_TRUE(client.ok) << client.ws.error();
  client.hello("olga");
}

// ---------------------------------------------------------------------------------------------
// --rate-limit / --rate-burst

TEST(RateLimitTest, FlooderIsLimitedThenClosedWhileOthersKeepReceiving) {
  ParleydProcess server({"--rate-limit", "5", "--rate-burst", "10"});
  ASSERT_TRUE(server.ok()) << server.error();
  Client flooder(server.port(), "/chat");
  Client listener(server.port(), "/chat");
  Client talker(server.port(), "/chat");
  ASSERT_TRUE(flooder.ok && listener.ok && talker.ok);
  listener.hello("listener");
  listener.join("room");
  talker.hello("talker");
  talker.join("room");
  flooder.hello("flooder");
  flooder.join("room");

  // 100 messages in one write, far over 5/s with a burst of 10 (two already spent on hello and
  // join).
  std::string burst;
  for (int i = 0; i < 100; ++i) {
    burst += parley_test::encode_frame(parley_test::kOpText,
                                       R"({"type":"msg","room":"room","text":"flood )" + std::to_string(i) + R"("})");
  }
  flooder.ws.send_raw(burst);  // may fail part way: the server closes while we write
  parley_test::CloseResult close = flooder.ws.expect_close(milliseconds(3000));
  ASSERT_TRUE(close.close_received) << close.error;
  EXPECT_EQ(close.code, 1008);
  size_t acks = 0;
  size_t limited = 0;
  for (const parley_test::Received& frame : close.frames_before) {
    std::string type = field(frame.payload, "type");
    if (type == "ack") ++acks;
    if (type == "error") {
      EXPECT_EQ(field(frame.payload, "code"), "rejected") << frame.payload;
      EXPECT_EQ(field(frame.payload, "reason").rfind("rate_limited", 0), 0u) << frame.payload;
      ++limited;
    }
  }
  EXPECT_GE(acks, 8u);
  EXPECT_LE(acks, 10u);
  EXPECT_EQ(limited, 19u);  // the 20th consecutive violation closes instead
  parley_test::HttpResponse metrics = parley_test::http_request(
      "127.0.0.1", server.port(), "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_NE(metrics.body.find("\nparley_chat_rate_limited_total 20\n"), std::string::npos) << metrics.body;
  EXPECT_NE(metrics.body.find("\nparley_chat_rate_closed_total 1\n"), std::string::npos) << metrics.body;

  // The listener got exactly the flooder's accepted messages.
  size_t flood_seen = 0;
  while (flood_seen < acks) {
    std::string msg = listener.next("msg", milliseconds(1000));
    ASSERT_FALSE(msg.empty()) << "after " << flood_seen << " of " << acks;
    ASSERT_EQ(field(msg, "from"), "flooder");
    ++flood_seen;
  }
  // The talker's messages (within its own rate) reach the listener promptly.
  for (int i = 0; i < 5; ++i) {
    auto sent = steady_clock::now();
    talker.send(R"({"type":"msg","room":"room","text":"hello )" + std::to_string(i) + R"("})");
    std::string msg = listener.next("msg", milliseconds(1000));
    auto latency = std::chrono::duration_cast<milliseconds>(steady_clock::now() - sent);
    ASSERT_EQ(field(msg, "text"), "hello " + std::to_string(i)) << msg;
    EXPECT_LT(latency.count(), 500) << "message " << i;  // generous: builds share this machine
    EXPECT_EQ(field(talker.next("ack"), "type"), "ack");
  }
}

// ---------------------------------------------------------------------------------------------
// --handshake-rate, --max-room-members

TEST(HandshakeRateTest, OverTheRateGets429) {
  ParleydProcess server({"--handshake-rate", "3"});
  ASSERT_TRUE(server.ok()) << server.error();
  int accepted = 0;
  int limited = 0;
  std::string body;
  for (int i = 0; i < 6; ++i) {
    Client client(server.port(), "/chat");
    if (client.ok) ++accepted;
    if (client.status() == 429) {
      ++limited;
      body = client.ws.handshake_response().body;
    }
  }
  // A burst of 3; the refill during the loop (well under a second) may add one.
  EXPECT_GE(accepted, 3);
  EXPECT_LE(accepted, 4);
  EXPECT_EQ(accepted + limited, 6);
  EXPECT_NE(body.find("retry after"), std::string::npos) << body;
  parley_test::HttpResponse metrics = parley_test::http_request(
      "127.0.0.1", server.port(), "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_NE(metrics.body.find("\nparley_chat_handshake_limited_total " + std::to_string(limited) + "\n"),
            std::string::npos)
      << metrics.body;
  // /echo is not limited.
  for (int i = 0; i < 5; ++i) {
    Client client(server.port(), "/echo");
    EXPECT_TRUE(client.ok) << client.ws.error();
  }
}

TEST(MaxRoomMembersTest, FullRoomRefusesJoins) {
  ParleydProcess server({"--max-room-members", "2"});
  ASSERT_TRUE(server.ok()) << server.error();
  Client a(server.port(), "/chat");
  Client b(server.port(), "/chat");
  Client c(server.port(), "/chat");
  a.hello("a");
  a.join("small");
  b.hello("b");
  b.join("small");
  c.hello("c");
  c.send(R"({"type":"join","room":"small"})");
  std::string error = c.next("error");
  EXPECT_EQ(field(error, "code"), "rejected") << error;
  EXPECT_EQ(field(error, "reason").rfind("room_full", 0), 0u) << error;
  // Rejoining a room one is in is still fine, and a place frees up when someone leaves.
  a.join("small");
  b.send(R"({"type":"leave","room":"small"})");
  c.join("small");
}

// ---------------------------------------------------------------------------------------------
// --max-connections-per-ip

// Connects from `source` (a 127.x address) to parleyd on 127.0.0.1:`port` and sends an upgrade
// request; returns the status code of the response, or -1. The socket is left in `*fd`.
int upgrade_from(const char* source, uint16_t port, int* fd) {
  *fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (*fd < 0) return -1;
  sockaddr_in from{};
  from.sin_family = AF_INET;
  inet_pton(AF_INET, source, &from.sin_addr);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  if (::bind(*fd, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0 ||
      ::connect(*fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
    return -1;
  }
  std::string request =
      "GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  if (::send(*fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) return -1;
  char head[512];
  timeval timeout{5, 0};
  setsockopt(*fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  ssize_t n = ::recv(*fd, head, sizeof head - 1, 0);
  if (n < 12) return -1;
  head[n] = 0;
  return std::atoi(head + 9);  // "HTTP/1.1 101 ..."
}

TEST(PerIpLimitTest, ThousandConnectionsFromOneAddressOverTheLimit) {
  constexpr int kLimit = 100;
  constexpr int kAttempts = 1000;
  ParleydProcess server({"--max-connections-per-ip", std::to_string(kLimit)});
  ASSERT_TRUE(server.ok()) << server.error();
  std::vector<int> fds;
  int upgraded = 0;
  int busy = 0;
  for (int i = 0; i < kAttempts; ++i) {
    int fd = -1;
    int status = upgrade_from("127.0.0.1", server.port(), &fd);
    if (status == 101) ++upgraded;
    if (status == 503) ++busy;
    fds.push_back(fd);
  }
  EXPECT_EQ(upgraded, kLimit);
  EXPECT_EQ(busy, kAttempts - kLimit);
  // Another address is unaffected while 127.0.0.1 is at its limit, and /healthz still answers.
  int other = -1;
  EXPECT_EQ(upgrade_from("127.0.0.2", server.port(), &other), 101);
  fds.push_back(other);
  for (int fd : fds) {
    if (fd >= 0) ::close(fd);
  }
  // /metrics from 127.0.0.1 is itself a connection from that address: ask once they are gone.
  long rejected = -1;
  for (int attempt = 0; attempt < 50 && rejected < 0; ++attempt) {
    std::this_thread::sleep_for(milliseconds(20));
    rejected = parley_test::parleyd_metric(server.port(), "parley_busy_rejected_total");
  }
  EXPECT_EQ(rejected, kAttempts - kLimit);
}

}  // namespace
