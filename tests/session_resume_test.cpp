// Session resume (issue 14, chat/chat_resume.cpp, docs/protocol.md "Session resume") in
// process: a dropped session is held for ChatConfig::resume_window_ms; hello with its token
// gets the name and rooms back and, with join since_seq, every missed message exactly once;
// others see away/back, never left/joined; the name is held (case-insensitively) from
// strangers; forged, rotated and expired tokens get resume_failed.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "chat/chat_app.h"
#include "chat/store/memory_room_log.h"
#include "tests/support/chat_test_support.h"

namespace parley_test {
namespace {

uint64_t g_mono = 1000000;
uint64_t mono_clock() { return g_mono; }

constexpr uint64_t kWindowMs = 120000;


// A room log whose completions wait for flush(), in order, as the SQLite engine's wait for their
// commit: what was submitted before a drop completes after it.
class DeferredRoomLog : public chat::RoomLog, chat::RoomLogClient {
 public:
  explicit DeferredRoomLog(const chat::RoomLogConfig& config) : inner_(config) { inner_.set_client(this); }
  void set_client(chat::RoomLogClient* client) override { client_ = client; }
  chat::Submit append(chat::AppendRequest request) override { return inner_.append(std::move(request)); }
  chat::Submit history(std::string_view conversation, uint64_t before_seq, size_t limit, uint64_t cookie) override {
    return inner_.history(conversation, before_seq, limit, cookie);
  }
  chat::Submit since(std::string_view conversation, uint64_t since_seq, size_t limit, uint64_t cookie) override {
    return inner_.since(conversation, since_seq, limit, cookie);
  }
  uint64_t last_seq(std::string_view conversation) const override { return inner_.last_seq(conversation); }
  chat::RoomLogStats stats() const override { return inner_.stats(); }
  // Delivers every completion held so far, in submission order.
  void flush() {
    std::vector<std::function<void()>> due;
    due.swap(due_);
    for (auto& completion : due) completion();
  }

 private:
  void on_appended(chat::AppendResult& result) override {
    due_.push_back([this, result]() mutable { client_->on_appended(result); });
  }
  void on_read(chat::ReadResult& result) override {
    due_.push_back([this, result]() mutable { client_->on_read(result); });
  }

  chat::MemoryRoomLog inner_;
  chat::RoomLogClient* client_ = nullptr;
  std::vector<std::function<void()>> due_;
};

class SessionResumeTest : public ChatAppFixture {
 protected:
  void SetUp() override { start(); }
  void TearDown() override { app.reset(); }

  // A fresh app with a memory room log (durable mode: seqs and history outlive members).
  void start(uint64_t window_ms = kWindowMs, size_t max_held = 100000, chat::ChatHooks* hooks = nullptr) {
    app.reset();
    chat::RoomLogConfig log_config;
    log_config.path = "none";
    log_ = std::make_unique<chat::MemoryRoomLog>(log_config);
    ChatConfig config;
    config.wall_clock_ms = &fixed_clock;
    config.monotonic_ms = &mono_clock;
    config.resume_window_ms = window_ms;
    config.max_held_sessions = max_held;
    transport = std::make_unique<RecordingTransport>();
    app = std::make_unique<ChatApp>(*transport, config, hooks, log_.get());
  }
  // Says hello as `name` on `id`; returns the resume token of the welcome.
  std::string hello(ConnectionId id, std::string_view name) {
    app->on_open(id);
    send(id, R"({"type":"hello","name":")" + std::string(name) + R"("})");
    Json welcome(next(id));
    EXPECT_EQ(welcome.type(), "welcome") << welcome.type();
    return welcome.str("resume");
  }
  void say(ConnectionId id, std::string_view text) {
    send(id, R"({"type":"msg","room":"lobby","text":")" + std::string(text) + R"("})");
  }
  // Drains `id`'s inbox and returns the types received.
  std::vector<std::string> drain_types(ConnectionId id) {
    std::vector<std::string> types;
    while (transport->pending(id) != 0) types.push_back(Json(next(id)).type());
    return types;
  }

  std::unique_ptr<chat::MemoryRoomLog> log_;
  const ConnectionId alice2 = make_id(20);
  const ConnectionId stranger = make_id(21);
};

TEST_F(SessionResumeTest, ResumeWithinTheWindowRestoresNameRoomsAndMissedMessagesOnce) {
  std::string token = hello(alice, "alice");
  ASSERT_EQ(token.size(), 32u);
  hello(bob, "bob");
  join(alice, "lobby");
  join(bob, "lobby");
  EXPECT_EQ(Json(next(alice)).type(), "joined");
  say(bob, "m1");
  EXPECT_EQ(Json(next(alice)).num("seq"), 1u);  // alice saw seq 1
  next(bob);                                      // ack

  app->on_close(alice, 1006);
  EXPECT_EQ(app->held_sessions(), 1u);
  Json away(next(bob));
  EXPECT_EQ(away.type(), "presence") << away.type();
  EXPECT_EQ(away.str("status"), "away");
  EXPECT_EQ(away.str("user"), "alice");
  say(bob, "m2");
  say(bob, "m3");
  send(bob, R"({"type":"who","room":"lobby"})");
  std::vector<std::string> bob_seen;
  while (transport->pending(bob) != 0) {
    Json reply(next(bob));
    if (reply.type() == "who") {
      EXPECT_EQ(reply.users(), (std::vector<std::string>{"alice", "bob"}));  // still a member
    }
    bob_seen.push_back(reply.type());
  }
  EXPECT_EQ(bob_seen, (std::vector<std::string>{"ack", "ack", "who"}));

  g_mono += kWindowMs - 1;
  app->expire_held();
  app->on_open(alice2);
  send(alice2, R"({"type":"hello","name":"alice","resume":")" + token + R"("})");
  std::string welcome_text = next(alice2);
  Json welcome(welcome_text);
  ASSERT_EQ(welcome.type(), "welcome") << welcome_text;
  EXPECT_EQ(welcome.str("name"), "alice");
  EXPECT_TRUE(welcome.boolean("resumed"));
  EXPECT_NE(welcome_text.find(R"("rooms":["lobby"])"), std::string::npos) << welcome_text;
  std::string token2 = welcome.str("resume");
  EXPECT_EQ(token2.size(), 32u);
  EXPECT_NE(token2, token);  // replaced: the old one is spent
  EXPECT_EQ(app->user_of(alice2), "alice");
  EXPECT_EQ(app->held_sessions(), 0u);
  Json back(next(bob));
  EXPECT_EQ(back.type(), "presence");
  EXPECT_EQ(back.str("status"), "back");

  // Between the resume and the rejoin the membership is paused: m4 is only in the recovery.
  say(bob, "m4");
  EXPECT_EQ(transport->pending(alice2), 0u);
  send(alice2, R"({"type":"join","room":"lobby","since_seq":1})");
  say(bob, "m5");
  std::vector<uint64_t> seqs;
  while (transport->pending(alice2) != 0) {
    Json reply(next(alice2));
    if (reply.type() == "history") {
      EXPECT_TRUE(reply.boolean("recovered")) << reply.type();
      for (uint64_t seq : seqs_of(reply.messages())) seqs.push_back(seq);
    } else {
      ASSERT_EQ(reply.type(), "msg") << reply.type();
      seqs.push_back(reply.num("seq"));
    }
  }
  EXPECT_EQ(seqs, (std::vector<uint64_t>{2, 3, 4, 5}));
  // bob never saw alice leave or join: only acks (the rejoin of a held membership is silent).
  EXPECT_EQ(drain_types(bob), (std::vector<std::string>{"ack", "ack"}));
  expect_invariants();

  // The old connection's late events change nothing; the new one works.
  app->on_close(alice, 1006);
  EXPECT_EQ(app->user_of(alice2), "alice");
  send(alice2, R"({"type":"dm","to":"bob","text":"hi"})");
  EXPECT_EQ(Json(next(bob)).type(), "dm");
}

TEST_F(SessionResumeTest, AfterTheWindowTheSessionEndsAndTheTokenFailsCleanly) {
  std::string token = hello(alice, "alice");
  hello(bob, "bob");
  join(alice, "lobby");
  join(bob, "lobby");
  next(alice);
  app->on_close(alice, 1006);
  EXPECT_EQ(Json(next(bob)).str("status"), "away");
  g_mono += kWindowMs;
  EXPECT_EQ(app->expire_held(), 1u);
  Json left(next(bob));
  EXPECT_EQ(left.type(), "left");
  EXPECT_EQ(left.str("user"), "alice");
  EXPECT_EQ(app->held_sessions(), 0u);
  EXPECT_EQ(app->users(), 1u);

  app->on_open(alice2);
  send(alice2, R"({"type":"hello","name":"alice","resume":")" + token + R"(","id":"h1"})");
  expect_error(alice2, "resume_failed", "h1");
  EXPECT_EQ(app->user_of(alice2), "");
  // The name is free again: a plain hello takes it, with no rooms.
  send(alice2, R"({"type":"hello","name":"alice"})");
  Json welcome(next(alice2));
  EXPECT_EQ(welcome.type(), "welcome");
  EXPECT_FALSE(welcome.boolean("resumed"));
  expect_invariants();
}

TEST_F(SessionResumeTest, StrangersCannotTakeAHeldNameInAnyCaseNorReceiveItsDms) {
  hello(alice, "alice");
  hello(bob, "bob");
  // Unique case-insensitively while connected too.
  app->on_open(stranger);
  send(stranger, R"({"type":"hello","name":"ALICE"})");
  expect_error(stranger, "name_taken");
  app->on_close(alice, 1006);
  for (const char* name : {"alice", "Alice", "aLiCe"}) {
    send(stranger, R"({"type":"hello","name":")" + std::string(name) + R"("})");
    expect_error(stranger, "name_taken");
  }
  EXPECT_EQ(app->user_of(stranger), "");
  send(bob, R"({"type":"dm","to":"Alice","text":"psst","id":"d1"})");
  expect_error(bob, "away", "d1");
  EXPECT_EQ(app->connection_of("alice"), 0u);
}

TEST_F(SessionResumeTest, ForgedRotatedAndMisnamedTokensGetResumeFailed) {
  std::string token = hello(alice, "alice");
  hello(bob, "bob");
  std::string bob_token = hello(carol, "carol");
  app->on_close(alice, 1006);
  app->on_close(carol, 1006);
  app->on_open(stranger);
  std::string forged = token;
  forged.back() = forged.back() == '0' ? '1' : '0';
  std::string other_index = token;
  other_index[7] = other_index[7] == '0' ? '1' : '0';
  for (const std::string& bad : {forged, other_index, std::string("xyz"), std::string(32, 'g'), std::string(32, '0'),
                                 bob_token}) {
    send(stranger, R"({"type":"hello","name":"alice","resume":")" + bad + R"("})");
    expect_error(stranger, "resume_failed");
  }
  send(stranger, R"({"type":"hello","name":"alice","resume":7})");
  expect_error(stranger, "missing_field");
  send(stranger, R"({"type":"hello","name":"alice","resume":")" + std::string(65, 'a') + R"("})");
  expect_error(stranger, "missing_field");
  EXPECT_EQ(app->held_sessions(), 2u);
  // The right token still works (case of the name does not matter), once.
  send(stranger, R"({"type":"hello","name":"Alice","resume":")" + token + R"("})");
  Json welcome(next(stranger));
  EXPECT_TRUE(welcome.boolean("resumed")) << welcome.type();
  EXPECT_EQ(welcome.str("name"), "alice");
  app->on_open(alice2);
  send(alice2, R"({"type":"hello","name":"alice","resume":")" + token + R"("})");
  expect_error(alice2, "resume_failed");
}

TEST_F(SessionResumeTest, ATokenTakesOverASessionWhoseOldConnectionLooksAlive) {
  std::string token = hello(alice, "alice");
  join(alice, "lobby");
  app->on_open(alice2);
  send(alice2, R"({"type":"hello","name":"alice","resume":")" + token + R"("})");
  Json welcome(next(alice2));
  EXPECT_TRUE(welcome.boolean("resumed")) << welcome.type();
  ASSERT_EQ(transport->closed.size(), 1u);
  EXPECT_EQ(transport->closed[0].first, alice);
  EXPECT_EQ(transport->closed[0].second, 1008);
  app->on_close(alice, 1008);  // the old connection's close changes nothing now
  EXPECT_EQ(app->user_of(alice2), "alice");
  EXPECT_EQ(app->held_sessions(), 0u);
  send(alice2, R"({"type":"join","room":"lobby","since_seq":0})");
  EXPECT_EQ(Json(next(alice2)).type(), "history");
  expect_invariants();
}

TEST_F(SessionResumeTest, ANormalClosureIsAGoodbyeAndEndsTheSessionAtOnce) {
  hello(alice, "alice");
  hello(bob, "bob");
  join(alice, "lobby");
  join(bob, "lobby");
  next(alice);
  app->on_close(alice, 1000);
  EXPECT_EQ(Json(next(bob)).type(), "left");
  EXPECT_EQ(app->held_sessions(), 0u);
  app->on_close(bob, 1001);  // going away (a page reload) is held
  EXPECT_EQ(app->held_sessions(), 1u);
  hello(carol, "carol");
  app->on_close(carol, 1008);  // a kick by the server (policy) ends it
  EXPECT_EQ(app->held_sessions(), 1u);
  EXPECT_EQ(app->connection_of("carol"), 0u);
  EXPECT_EQ(app->users(), 1u);
}

TEST_F(SessionResumeTest, ARoomWhoseMembersAreAllHeldDropsItsRingAndRecoversFromTheLog) {
  std::string token = hello(alice, "alice");
  join(alice, "solo");
  for (int i = 1; i <= 3; ++i) {
    send(alice, R"({"type":"msg","room":"solo","text":"m)" + std::to_string(i) + R"("})");
    EXPECT_EQ(Json(next(alice)).type(), "ack");
  }
  uint32_t room = app->rooms().find("solo");
  ASSERT_NE(room, chat::kNoIndex);
  EXPECT_EQ(app->rooms().room(room).history().size(), 3u);
  app->on_close(alice, 1006);
  EXPECT_TRUE(app->rooms().room(room).history().empty());  // held sessions pin no history
  app->on_open(alice2);
  send(alice2, R"({"type":"hello","name":"alice","resume":")" + token + R"("})");
  EXPECT_TRUE(Json(next(alice2)).boolean("resumed"));
  send(alice2, R"({"type":"join","room":"solo","since_seq":1})");
  Json recovery(next(alice2));
  EXPECT_EQ(seqs_of(recovery.messages()), (std::vector<uint64_t>{2, 3}));
  EXPECT_TRUE(recovery.boolean("recovered"));
  send(alice2, R"({"type":"history","room":"solo"})");
  EXPECT_EQ(seqs_of(Json(next(alice2)).messages()), (std::vector<uint64_t>{1, 2, 3}));
  expect_invariants();
}

TEST_F(SessionResumeTest, OffByDefaultTheSessionEndsAtOnce) {
  start(0);
  std::string token = hello(alice, "alice");
  EXPECT_EQ(token, "<missing resume>");
  hello(bob, "bob");
  join(alice, "lobby");
  join(bob, "lobby");
  next(alice);
  app->on_close(alice, 1006);
  EXPECT_EQ(Json(next(bob)).type(), "left");
  EXPECT_EQ(app->held_sessions(), 0u);
}

TEST_F(SessionResumeTest, HeldSessionsAreBoundedTheOldestEndsFirst) {
  start(kWindowMs, 1);
  hello(alice, "alice");
  hello(bob, "bob");
  hello(carol, "carol");
  join(alice, "lobby");
  join(bob, "lobby");
  join(carol, "lobby");
  drain_types(alice);
  drain_types(bob);
  app->on_close(alice, 1006);
  app->on_close(bob, 1006);  // over the bound of 1: alice's session ends now
  EXPECT_EQ(app->held_sessions(), 1u);
  std::vector<std::string> seen;
  while (transport->pending(carol) != 0) {
    Json reply(next(carol));
    seen.push_back(reply.type() + ":" + reply.str("user"));
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"presence:alice", "left:alice", "presence:bob"}));
  expect_invariants();
}

class NamingHooks final : public chat::ChatHooks {
 public:
  void authorize(ConnectionId, const protocol::HttpRequest& request, chat::ChatAuthDecision& decision) override {
    if (request.query.substr(0, 5) == "user=") decision.user = std::string(request.query.substr(5));
  }
};

TEST_F(SessionResumeTest, AVerifiedIdentityTakesOverItsHeldSession) {
  NamingHooks hooks;
  start(kWindowMs, 100000, &hooks);
  std::string storage;
  ASSERT_EQ(app->on_upgrade(alice, request_with(storage, "/chat?user=alice", {})).status, 101);
  app->on_open(alice);
  ASSERT_EQ(Json(next(alice)).type(), "welcome");
  join(alice, "lobby");
  hello(bob, "bob");
  join(bob, "lobby");
  next(alice);
  // While connected the identity is taken (409); once held, the same identity takes it over.
  EXPECT_EQ(app->on_upgrade(alice2, request_with(storage, "/chat?user=alice", {})).status, 409);
  app->on_close(alice, 1006);
  EXPECT_EQ(Json(next(bob)).str("status"), "away");
  ASSERT_EQ(app->on_upgrade(alice2, request_with(storage, "/chat?user=alice", {})).status, 101);
  app->on_open(alice2);
  Json welcome(next(alice2));
  EXPECT_TRUE(welcome.boolean("resumed")) << welcome.type();
  EXPECT_EQ(Json(next(bob)).str("status"), "back");
  // Still verified: DM history is served.
  send(alice2, R"({"type":"history","with":"bob"})");
  EXPECT_EQ(Json(next(alice2)).type(), "history");
  expect_invariants();
}

// A message stored after its sender's connection dropped and the session resumed elsewhere: the
// ack follows the session to the new connection, and the message is not echoed back to it as a
// `msg` (parley-load saw its own message come back, about 1 run in 9, before this).
TEST_F(SessionResumeTest, AnAckCompletingAfterAResumeGoesToTheNewConnectionNotAnEcho) {
  app.reset();
  chat::RoomLogConfig log_config;
  log_config.path = "none";
  DeferredRoomLog deferred(log_config);
  ChatConfig config;
  config.wall_clock_ms = &fixed_clock;
  config.monotonic_ms = &mono_clock;
  config.resume_window_ms = kWindowMs;
  transport = std::make_unique<RecordingTransport>();
  app = std::make_unique<ChatApp>(*transport, config, nullptr, &deferred);
  std::string token = hello(alice, "alice");
  hello(bob, "bob");
  send(alice, R"({"type":"join","room":"lobby"})");
  send(bob, R"({"type":"join","room":"lobby"})");
  deferred.flush();
  drain_types(alice);
  drain_types(bob);

  send(alice, R"({"type":"msg","room":"lobby","text":"in flight","id":"m1"})");
  app->on_close(alice, 1006);  // dropped before the store answered
  app->on_open(alice2);
  send(alice2, R"({"type":"hello","name":"alice","resume":")" + token + R"("})");
  send(alice2, R"({"type":"join","room":"lobby","since_seq":0})");
  deferred.flush();
  deferred.flush();

  std::vector<std::string> alice_got;
  bool acked = false;
  while (transport->pending(alice2) != 0) {
    Json reply(next(alice2));
    alice_got.push_back(reply.type());
    if (reply.type() == "ack") {
      acked = true;
      EXPECT_EQ(reply.str("id"), "m1");
    }
    EXPECT_FALSE(reply.type() == "msg" && reply.str("from") == "alice") << "echoed back: " << reply.raw;
  }
  EXPECT_TRUE(acked) << "the ack did not follow the resumed session";
  bool bob_got_it = false;
  while (transport->pending(bob) != 0) {
    Json reply(next(bob));
    if (reply.type() == "msg" && reply.str("text") == "in flight") bob_got_it = true;
  }
  EXPECT_TRUE(bob_got_it);
  app.reset();  // before `deferred`, which the app's destructor still talks to
}

}  // namespace
}  // namespace parley_test
