// Presence and user names across parleyd processes through one Redis (issue 15, docs/redis.md
// "Presence and names across nodes"): two nodes (a third in the kill test) on different loopback
// addresses (different "machines") and one private redis-server. A name held on one node is
// taken on the other (any case, hello or token) while attached or held for resume, and free once
// released; joined/left/typing and `who` cross nodes; a node killed with -9 leaves its rooms
// (`left` once on each survivor) within the stated bound and its names become free; after Redis
// restarts (empty, or with changes made while it was away) the nodes bring it up to date.
#include <gtest/gtest.h>

#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "chat/auth_token.h"
#include "tests/support/chat_test_support.h"
#include "tests/support/parleyd_process.h"
#include "tests/support/redis_chat_member.h"
#include "tests/support/redis_process.h"

namespace parley_test {
namespace {

// docs/redis.md: a node killed with -9 has left everyone's rooms within 20 s (heartbeat every
// 5 s, declared dead after 15 s unseen, swept on a survivor's next beat). The margin is for a
// loaded machine.
constexpr milliseconds kDeathBound{20000};
constexpr milliseconds kDeathMargin{8000};

std::vector<std::string> who(Member& member, const std::string& room) {
  EXPECT_TRUE(member.send(R"({"type":"who","room":")" + room + R"("})"));
  std::vector<std::string> users = Json(member.next("who")).users();
  std::sort(users.begin(), users.end());
  return users;
}

// Polls `who` until it equals `want` (sorted) or `timeout` passes; returns the last answer.
std::vector<std::string> await_who(Member& member, const std::string& room, std::vector<std::string> want,
                                   milliseconds timeout) {
  std::sort(want.begin(), want.end());
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<std::string> users;
  while ((users = who(member, room)) != want && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(200));
  }
  return users;
}

// Polls HLEN of room `room`'s member hash until it is `want` or 10 s pass; returns the last
// value. A node writes its joins there in batches (issue 18: up to 50 ms after the join): a
// test that needs an earlier join settled before another node subscribes waits for it here.
long long await_room_members(uint16_t port, const std::string& room, long long want) {
  long long count = -1;
  for (int i = 0; i < 200; ++i) {
    redisContext* context = redisConnect("127.0.0.1", port);
    if (context != nullptr && context->err == 0) {
      auto* reply = static_cast<redisReply*>(redisCommand(context, "HLEN parley:m:%s", room.c_str()));
      if (reply != nullptr && reply->type == REDIS_REPLY_INTEGER) count = reply->integer;
      if (reply != nullptr) freeReplyObject(reply);
    }
    if (context != nullptr) redisFree(context);
    if (count == want) break;
    std::this_thread::sleep_for(milliseconds(50));
  }
  return count;
}

// The string at `key` on the Redis at `port`, polled until it exists or 10 s pass ("" then).
std::string await_string(uint16_t port, const std::string& key) {
  std::string value;
  for (int i = 0; i < 200 && value.empty(); ++i) {
    if (i != 0) std::this_thread::sleep_for(milliseconds(50));
    redisContext* context = redisConnect("127.0.0.1", port);
    if (context != nullptr && context->err == 0) {
      auto* reply = static_cast<redisReply*>(redisCommand(context, "GET %s", key.c_str()));
      if (reply != nullptr && reply->type == REDIS_REPLY_STRING) value.assign(reply->str, reply->len);
      if (reply != nullptr) freeReplyObject(reply);
    }
    if (context != nullptr) redisFree(context);
  }
  return value;
}

const std::string kSecret = "presence-test-secret-of-at-least-32-bytes";

class RedisPresenceTest : public ::testing::Test {
 protected:
  // Starts Redis (AOF on or off) and two nodes on 127.0.0.1 and 127.0.0.2, with `extra` options.
  void start(bool appendonly, const std::vector<std::string>& extra = {}) {
    redis_ = std::make_unique<RedisProcess>(appendonly);
    ASSERT_TRUE(redis_->ok()) << redis_->error();
    std::vector<std::string> a_args{"--redis", redis_->url(), "--listen", "127.0.0.1:0", "--rate-limit", "0"};
    std::vector<std::string> b_args{"--redis", redis_->url(), "--listen", "127.0.0.2:0", "--rate-limit", "0"};
    a_args.insert(a_args.end(), extra.begin(), extra.end());
    b_args.insert(b_args.end(), extra.begin(), extra.end());
    a_ = std::make_unique<ParleydProcess>(a_args);
    ASSERT_TRUE(a_->ok()) << a_->error();
    b_ = std::make_unique<ParleydProcess>(b_args);
    ASSERT_TRUE(b_->ok()) << b_->error();
  }
  // start() with --auth-secret kSecret (a file read at start-up) and `extra`.
  void start_verified(std::vector<std::string> extra = {}) {
    char path[] = "/tmp/parley-presence-secret-XXXXXX";
    int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, kSecret.data(), kSecret.size()), static_cast<ssize_t>(kSecret.size()));
    close(fd);
    extra.insert(extra.end(), {"--auth-secret", path});
    start(false, extra);
    unlink(path);
  }
  // A third node on 127.0.0.3.
  void start_third() {
    c_ = std::make_unique<ParleydProcess>(
        std::vector<std::string>{"--redis", redis_->url(), "--listen", "127.0.0.3:0", "--rate-limit", "0"});
    ASSERT_TRUE(c_->ok()) << c_->error();
  }
  void TearDown() override {
    c_.reset();
    a_.reset();
    b_.reset();
    redis_.reset();
  }
  // Connects a member to node A and says hello; returns the welcome's resume token.
  std::string enter_resumable(Member& member, const std::string& name) {
    EXPECT_TRUE(member.connect("127.0.0.1", a_->port()));
    EXPECT_TRUE(member.send(R"({"type":"hello","name":")" + name + R"("})"));
    std::string token = Json(member.next("welcome")).str("resume");
    EXPECT_EQ(token.size(), 32u);
    return token;
  }
  // Sends hello as `name` with resume token `token`.
  static bool resume_hello(Member& member, const std::string& name, const std::string& token) {
    return member.send(R"({"type":"hello","name":")" + name + R"(","resume":")" + token + R"("})");
  }
  // Connects a member to node A or B and says hello.
  void enter(Member& member, bool on_a, const std::string& name) {
    ASSERT_TRUE(on_a ? member.connect("127.0.0.1", a_->port()) : member.connect("127.0.0.2", b_->port()));
    member.hello(name);
  }

  std::unique_ptr<RedisProcess> redis_;
  std::unique_ptr<ParleydProcess> a_;
  std::unique_ptr<ParleydProcess> b_;
  std::unique_ptr<ParleydProcess> c_;
};

TEST_F(RedisPresenceTest, ANameHeldOnOneNodeIsTakenOnTheOtherInAnyCaseAndFreeOnceReleased) {
  start(false);
  Member alice, rival;
  enter(alice, true, "Alice");
  ASSERT_TRUE(rival.connect("127.0.0.2", b_->port()));
  for (const char* name : {"alice", "ALICE", "Alice"}) {
    Json answer(rival.try_hello(name));
    EXPECT_EQ(answer.type(), "error") << name;
    EXPECT_EQ(answer.str("code"), "name_taken") << name;
  }
  // Released when Alice's session ends (resume is off in these tests: a dropped connection ends it).
  alice.drop();
  std::string answer = rival.hello_until_welcomed("aLiCe", milliseconds(10000));
  EXPECT_EQ(Json(answer).type(), "welcome") << answer;
}

TEST_F(RedisPresenceTest, AClaimOutlivesItsExpiryWhileItsSessionIsAttachedOrHeldForResume) {
  start(false, {"--resume-window", "120"});
  Member alice, bob, rival;
  enter(alice, true, "alice");
  enter(bob, true, "bob");
  alice.drop();  // lost (1006): held for resume, so the name stays alice's
  // Past the claim's 15 s expiry: only the node's refresh keeps both names taken.
  std::this_thread::sleep_for(milliseconds(17000));
  ASSERT_TRUE(rival.connect("127.0.0.2", b_->port()));
  for (const char* name : {"ALICE", "Bob"}) {
    Json answer(rival.try_hello(name));
    EXPECT_EQ(answer.str("code"), "name_taken") << name << ": " << answer.raw;
  }
}

TEST_F(RedisPresenceTest, ATokenIdentityHeldForResumeOnAnotherNodeIsTakenOver) {
  start_verified({"--resume-window", "120"});
  if (HasFatalFailure()) return;
  uint64_t expires = static_cast<uint64_t>(time(nullptr)) + 3600;
  Member alice, bob, twin;
  ASSERT_TRUE(alice.connect("127.0.0.1", a_->port(), "/chat?token=" + chat::mint_token("alice", {}, expires, kSecret)));
  ASSERT_FALSE(alice.next("welcome").empty());
  alice.join("den");
  ASSERT_TRUE(bob.connect("127.0.0.1", a_->port(), "/chat?token=" + chat::mint_token("bob", {}, expires, kSecret)));
  ASSERT_FALSE(bob.next("welcome").empty());
  bob.join("den");
  alice.drop();
  ASSERT_EQ(Json(bob.next("presence")).str("status"), "away");
  ASSERT_FALSE(await_string(redis_->port(), "parley:resume:alice").empty());
  // Marked verified: a plain hello with its resume token (where the embedder's authorize hook
  // lets unverified connections in) cannot take it without the identity's grant.
  EXPECT_NE(await_string(redis_->port(), "parley:resume:alice").find("\tv\talice\tden"), std::string::npos);
  // The page reloads onto node B: the token's identity takes the held session over (on one
  // node it would at the upgrade), instead of name_taken for the whole window.
  ASSERT_TRUE(twin.connect("127.0.0.2", b_->port(), "/chat?token=" + chat::mint_token("alice", {}, expires, kSecret)));
  ASSERT_FALSE(twin.next("welcome").empty());
  EXPECT_EQ(Json(bob.next("left")).str("user"), "alice");
  twin.expect_no("error");
  ASSERT_TRUE(twin.send(R"({"type":"ping"})"));
  EXPECT_FALSE(twin.next("pong").empty());
}

TEST_F(RedisPresenceTest, ATokenIdentityHeldOnAnotherNodeIsClosedAsNameTaken) {
  start_verified();
  if (HasFatalFailure()) return;
  uint64_t expires = static_cast<uint64_t>(time(nullptr)) + 3600;
  Member alice, twin;
  ASSERT_TRUE(alice.connect("127.0.0.1", a_->port(), "/chat?token=" + chat::mint_token("alice", {}, expires, kSecret)));
  ASSERT_FALSE(alice.next("welcome").empty());
  // Welcomed at open on B too (a verified identity does not wait), then refused once the claim
  // answers: as a second connection of that name on one node is.
  ASSERT_TRUE(twin.connect("127.0.0.2", b_->port(), "/chat?token=" + chat::mint_token("ALICE", {}, expires, kSecret)));
  Json refused(twin.next("error"));
  EXPECT_EQ(refused.str("code"), "name_taken") << refused.raw;
  // Alice on A is untouched.
  ASSERT_TRUE(alice.send(R"({"type":"ping"})"));
  EXPECT_FALSE(alice.next("pong").empty());
}

// A reload or reconnect lands on any node (SO_REUSEPORT workers, a load balancer) while the
// session is held where the connection dropped: the resume token takes it over there.
TEST_F(RedisPresenceTest, ASessionHeldForResumeOnOneNodeResumesOnAnother) {
  start(false, {"--resume-window", "120"});
  Member alice, bob, carol;
  const std::string token = enter_resumable(alice, "alice");
  alice.join("den");
  enter(bob, true, "bob");
  bob.join("den");
  enter(carol, false, "carol");
  carol.join("den");
  EXPECT_EQ(Json(bob.next("joined")).str("user"), "carol");
  alice.drop();
  ASSERT_EQ(Json(bob.next("presence")).str("status"), "away");
  // Redis holds the token's digest, never the token, and the rooms.
  std::string record = await_string(redis_->port(), "parley:resume:alice");
  ASSERT_NE(record.find("\t-\talice\tden"), std::string::npos) << record;
  EXPECT_EQ(record.find(token), std::string::npos) << record;
  ASSERT_TRUE(carol.send(R"({"type":"msg","room":"den","text":"while away","id":"c1"})"));
  ASSERT_FALSE(carol.next("ack").empty());

  Member back;
  ASSERT_TRUE(back.connect("127.0.0.2", b_->port()));  // the other node
  ASSERT_TRUE(resume_hello(back, "alice", token));
  const std::string answer = back.next_any({"welcome", "error"});
  Json resumed(answer);
  ASSERT_EQ(resumed.type(), "welcome") << resumed.raw;
  EXPECT_TRUE(resumed.boolean("resumed")) << resumed.raw;
  EXPECT_NE(answer.find(R"("rooms":["den"])"), std::string::npos) << answer;
  EXPECT_NE(resumed.str("resume"), token);
  // The node that held it ended it: its members see alice leave, then join on B.
  EXPECT_EQ(Json(bob.next("left")).str("user"), "alice");
  Json history(back.join("den", R"(,"since_seq":0)"));
  ASSERT_EQ(history.messages().size(), 1u) << history.raw;
  EXPECT_EQ(history.messages()[0].text, "while away");
  EXPECT_EQ(Json(bob.next("joined")).str("user"), "alice");
  // The name is B's now, and a token resumes once.
  Member rival;
  ASSERT_TRUE(rival.connect("127.0.0.1", a_->port()));
  EXPECT_EQ(Json(rival.try_hello("alice")).str("code"), "name_taken");
  ASSERT_TRUE(resume_hello(rival, "alice", token));
  EXPECT_EQ(Json(rival.next("error")).str("code"), "resume_failed");
}

TEST_F(RedisPresenceTest, AWrongTokenOnAnotherNodeResumesNothingAndTheNameStaysHeld) {
  start(false, {"--resume-window", "120"});
  Member alice, bob;
  std::string token = enter_resumable(alice, "alice");
  alice.join("den");
  enter(bob, true, "bob");
  bob.join("den");
  alice.drop();
  ASSERT_EQ(Json(bob.next("presence")).str("status"), "away");
  ASSERT_FALSE(await_string(redis_->port(), "parley:resume:alice").empty());
  std::string forged = token;
  forged.back() = forged.back() == '0' ? '1' : '0';  // the same slot, another secret
  Member thief;
  ASSERT_TRUE(thief.connect("127.0.0.2", b_->port()));
  ASSERT_TRUE(resume_hello(thief, "alice", forged));
  EXPECT_EQ(Json(thief.next("error")).str("code"), "resume_failed");
  EXPECT_EQ(Json(thief.try_hello("alice")).str("code"), "name_taken");
  bob.expect_no("left");
  // The real token still works afterwards, from A.
  Member back;
  ASSERT_TRUE(back.connect("127.0.0.1", a_->port()));
  ASSERT_TRUE(resume_hello(back, "alice", token));
  EXPECT_TRUE(Json(back.next("welcome")).boolean("resumed"));
}

// A record outlives its node's claim when the node dies (claims expire in 15 s, records with the
// window): once another node holds the name, the record takes nothing from it.
TEST_F(RedisPresenceTest, AResumeRecordNeverTakesANameAnotherNodeNowHolds) {
  start(false, {"--resume-window", "120"});
  Member alice, bob;
  std::string token = enter_resumable(alice, "alice");
  enter(bob, true, "bob");
  alice.drop();
  ASSERT_FALSE(await_string(redis_->port(), "parley:resume:alice").empty());
  redisContext* context = redisConnect("127.0.0.1", redis_->port());
  ASSERT_TRUE(context != nullptr && context->err == 0);
  auto* reply = static_cast<redisReply*>(redisCommand(context, "SET parley:name:alice some-other-node"));
  ASSERT_NE(reply, nullptr);
  freeReplyObject(reply);
  Member back;
  ASSERT_TRUE(back.connect("127.0.0.2", b_->port()));
  ASSERT_TRUE(resume_hello(back, "alice", token));
  EXPECT_EQ(Json(back.next("error")).str("code"), "resume_failed");
  reply = static_cast<redisReply*>(redisCommand(context, "MGET parley:name:alice parley:resume:alice"));
  ASSERT_TRUE(reply != nullptr && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2);
  EXPECT_EQ(std::string(reply->element[0]->str, reply->element[0]->len), "some-other-node");
  EXPECT_EQ(reply->element[1]->type, REDIS_REPLY_NIL) << "the stale record is gone";
  freeReplyObject(reply);
  redisFree(context);
}

// A verified session's record is marked `v`: its token alone (a plain hello, where the embedder's
// authorize hook lets unverified connections in) does not take it, since the identity's grant
// (DM history, room limits) does not travel; the identity itself does (test above).
TEST_F(RedisPresenceTest, ARecordMarkedVerifiedIsNotTakenByItsTokenAlone) {
  start(false, {"--resume-window", "120"});
  Member alice;
  std::string token = enter_resumable(alice, "alice");
  alice.drop();
  std::string record = await_string(redis_->port(), "parley:resume:alice");
  size_t kind = record.find("\t-\t");
  ASSERT_NE(kind, std::string::npos) << record;
  record[kind + 1] = 'v';  // as parleyd writes it for a verified session
  redisContext* context = redisConnect("127.0.0.1", redis_->port());
  ASSERT_TRUE(context != nullptr && context->err == 0);
  auto* reply = static_cast<redisReply*>(redisCommand(context, "SET parley:resume:alice %b", record.data(), record.size()));
  ASSERT_NE(reply, nullptr);
  freeReplyObject(reply);
  redisFree(context);
  Member back;
  ASSERT_TRUE(back.connect("127.0.0.2", b_->port()));
  ASSERT_TRUE(resume_hello(back, "alice", token));
  EXPECT_EQ(Json(back.next("error")).str("code"), "resume_failed");
  EXPECT_EQ(await_string(redis_->port(), "parley:resume:alice"), record) << "still held for its identity";
}

TEST_F(RedisPresenceTest, JoinedLeftTypingAndWhoCrossNodes) {
  start(false);
  Member alice, bob, carol;
  enter(alice, true, "alice");
  enter(bob, false, "bob");
  enter(carol, false, "carol");
  alice.join("lobby");
  // Node A listens to the room's presence channel before B's members join, and its batch with
  // alice's join is out before B subscribes (else bob would hear it: a batch describes changes
  // up to 50 ms old).
  ASSERT_EQ(await_subscribers(redis_->port(), "parley:p:lobby", 1), 1);
  ASSERT_EQ(await_room_members(redis_->port(), "lobby", 1), 1);
  bob.join("lobby");
  Json joined(alice.next("joined"));
  EXPECT_EQ(joined.str("user"), "bob");
  EXPECT_EQ(joined.str("room"), "lobby");
  ASSERT_EQ(await_subscribers(redis_->port(), "parley:p:lobby", 2), 2);
  carol.join("lobby");
  EXPECT_EQ(Json(alice.next("joined")).str("user"), "carol");
  EXPECT_EQ(Json(bob.next("joined")).str("user"), "carol");  // same node: as before
  // Alice (A) hears of nobody twice: B's own events are not repeated through Redis to B.
  bob.expect_no("joined");

  ASSERT_TRUE(alice.send(R"({"type":"typing","room":"lobby","on":true})"));
  Json typing(bob.next("typing"));
  EXPECT_EQ(typing.str("user"), "alice");
  EXPECT_TRUE(typing.boolean("on"));
  EXPECT_EQ(Json(carol.next("typing")).str("user"), "alice");
  ASSERT_TRUE(bob.send(R"({"type":"typing","room":"lobby","on":false})"));
  Json stopped(alice.next("typing"));
  EXPECT_EQ(stopped.str("user"), "bob");
  EXPECT_FALSE(stopped.boolean("on"));

  std::vector<std::string> all{"alice", "bob", "carol"};
  EXPECT_EQ(who(alice, "lobby"), all);
  EXPECT_EQ(who(bob, "lobby"), all);

  ASSERT_TRUE(bob.send(R"({"type":"leave","room":"lobby"})"));
  Json left(alice.next("left"));
  EXPECT_EQ(left.str("user"), "bob");
  EXPECT_EQ(who(alice, "lobby"), (std::vector<std::string>{"alice", "carol"}));
  carol.drop();  // the session ends: leaves every room
  EXPECT_EQ(Json(alice.next("left")).str("user"), "carol");
  EXPECT_EQ(who(alice, "lobby"), (std::vector<std::string>{"alice"}));
}

TEST_F(RedisPresenceTest, ANodeKilledWithSigkillLeavesItsRoomsWithinTheBoundAndFreesItsNames) {
  start(false);
  start_third();
  Member alice, bob, carol, dave;
  enter(alice, true, "alice");
  enter(bob, false, "bob");
  enter(carol, false, "carol");
  ASSERT_TRUE(dave.connect("127.0.0.3", c_->port()));
  dave.hello("dave");
  alice.join("lobby");
  // Node A hears the room's presence once its SUBSCRIBE is in (asynchronous after the join):
  // dave's joined must not race it (docs/redis.md: `who` is the source of truth in that window).
  ASSERT_EQ(await_subscribers(redis_->port(), "parley:p:lobby", 1), 1);
  dave.join("lobby");
  ASSERT_EQ(await_subscribers(redis_->port(), "parley:p:lobby", 2), 2);
  bob.join("lobby");
  carol.join("lobby");
  for (int i = 0; i < 3; ++i) ASSERT_FALSE(alice.next("joined").empty()) << i;
  ASSERT_EQ(who(alice, "lobby"), (std::vector<std::string>{"alice", "bob", "carol", "dave"}));

  auto killed = std::chrono::steady_clock::now();
  ASSERT_EQ(::kill(b_->pid(), SIGKILL), 0);
  std::vector<std::string> gone;
  for (int i = 0; i < 2; ++i) {
    Json left(alice.next("left", kDeathBound + kDeathMargin));
    ASSERT_EQ(left.type(), "left") << "no left within the bound after " << gone.size();
    gone.push_back(left.str("user"));
  }
  auto took = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - killed);
  std::sort(gone.begin(), gone.end());
  EXPECT_EQ(gone, (std::vector<std::string>{"bob", "carol"}));
  EXPECT_LE(took.count(), (kDeathBound + kDeathMargin).count());
  // Not before the node could be declared dead (15 s unseen, at most 5 s since its last beat).
  EXPECT_GE(took.count(), 9000);
  EXPECT_EQ(who(alice, "lobby"), (std::vector<std::string>{"alice", "dave"}));
  // The other survivor heard the same two `left`, once each: one node swept the dead one.
  std::vector<std::string> dave_heard;
  for (int i = 0; i < 2; ++i) dave_heard.push_back(Json(dave.next("left", kDeathMargin)).str("user"));
  std::sort(dave_heard.begin(), dave_heard.end());
  EXPECT_EQ(dave_heard, (std::vector<std::string>{"bob", "carol"}));
  dave.expect_no("left", milliseconds(6000));  // past the next beat: no second sweep
  alice.expect_no("left", milliseconds(100));
  // Its names expire with it (claim expiry = node timeout, no longer refreshed).
  Member newcomer;
  ASSERT_TRUE(newcomer.connect("127.0.0.1", a_->port()));
  std::string answer = newcomer.hello_until_welcomed("BOB", kDeathMargin, milliseconds(250));
  EXPECT_EQ(Json(answer).type(), "welcome") << answer;
}

TEST_F(RedisPresenceTest, AfterRedisRestartsEmptyTheNodesPutBackTheirNamesAndMembers) {
  start(false);  // no AOF: the restarted Redis knows nothing
  Member alice, bob;
  enter(alice, true, "alice");
  enter(bob, false, "bob");
  alice.join("lobby");
  ASSERT_EQ(await_subscribers(redis_->port(), "parley:p:lobby", 1), 1);
  bob.join("lobby");
  ASSERT_FALSE(alice.next("joined").empty());
  redis_->stop(true);
  ASSERT_TRUE(redis_->start()) << redis_->error();
  // Both nodes reconnect (backoff at most 3 s) and re-assert on the connection's first beat.
  EXPECT_EQ(await_who(bob, "lobby", {"alice", "bob"}, milliseconds(15000)),
            (std::vector<std::string>{"alice", "bob"}));
  EXPECT_EQ(await_who(alice, "lobby", {"alice", "bob"}, milliseconds(15000)),
            (std::vector<std::string>{"alice", "bob"}));
  Member rival;
  ASSERT_TRUE(rival.connect("127.0.0.2", b_->port()));
  Json answer(rival.try_hello("ALICE"));
  EXPECT_EQ(answer.str("code"), "name_taken") << answer.raw;
  // Presence flows again: B's typing reaches A.
  ASSERT_EQ(await_subscribers(redis_->port(), "parley:p:lobby", 2), 2);
  ASSERT_TRUE(bob.send(R"({"type":"typing","room":"lobby","on":true})"));
  EXPECT_EQ(Json(alice.next("typing")).str("user"), "bob");
}

TEST_F(RedisPresenceTest, ChangesWhileRedisIsAwayReachRedisWhenItReturns) {
  start(true);  // AOF on: the restarted Redis still lists the members from before the outage
  Member alice, bob, carol, dave;
  enter(alice, true, "alice");
  enter(bob, false, "bob");
  enter(carol, false, "carol");
  enter(dave, false, "dave");
  alice.join("lobby");
  ASSERT_EQ(await_room_members(redis_->port(), "lobby", 1), 1);  // as in JoinedLeftTypingAndWhoCrossNodes
  bob.join("lobby");
  carol.join("lobby");
  ASSERT_EQ(Json(bob.next("joined")).str("user"), "carol");
  ASSERT_EQ(await_who(alice, "lobby", {"alice", "bob", "carol"}, milliseconds(5000)),
            (std::vector<std::string>{"alice", "bob", "carol"}));
  redis_->stop(true);
  // While Redis is away, local presence keeps working on B: a leave and a join (the room has
  // members on B, so the join is answered from its ring).
  ASSERT_TRUE(carol.send(R"({"type":"leave","room":"lobby"})"));
  EXPECT_EQ(Json(bob.next("left")).str("user"), "carol");
  ASSERT_FALSE(dave.join("lobby").empty());
  EXPECT_EQ(Json(bob.next("joined")).str("user"), "dave");
  // And a new name cannot be checked across the cluster: hello is refused, not guessed.
  Member erin;
  ASSERT_TRUE(erin.connect("127.0.0.2", b_->port()));
  Json refused(erin.try_hello("erin"));
  EXPECT_EQ(refused.str("code"), "unavailable") << refused.raw;
  ASSERT_TRUE(redis_->start()) << redis_->error();
  EXPECT_EQ(await_who(alice, "lobby", {"alice", "bob", "dave"}, milliseconds(15000)),
            (std::vector<std::string>{"alice", "bob", "dave"}));
  // Names work again once the link is back.
  std::string answer;
  auto deadline = std::chrono::steady_clock::now() + milliseconds(10000);
  do {
    answer = erin.try_hello("erin");
    if (Json(answer).type() == "welcome") break;
    std::this_thread::sleep_for(milliseconds(200));
  } while (std::chrono::steady_clock::now() < deadline);
  EXPECT_EQ(Json(answer).type(), "welcome") << answer;
}

}  // namespace
}  // namespace parley_test
