// One chat across parleyd processes through one Redis (issue 15), real sockets: two nodes
// listening on different loopback addresses (127.0.0.1 and 127.0.0.2, two "machines") and one
// private redis-server with AOF on. Broadcast across nodes (exact counts, seq order), DMs across,
// a Redis kill -9 and restart while clients talk, and a client that moves to the other node and
// recovers with since_seq and resends the same id.
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/chat_test_support.h"
#include "tests/support/parleyd_process.h"
#include "tests/support/redis_chat_member.h"
#include "tests/support/redis_process.h"

namespace parley_test {
namespace {

std::string msg(const std::string& room, const std::string& text, const std::string& id) {
  return R"({"type":"msg","room":")" + room + R"(","text":")" + text + R"(","id":")" + id + R"("})";
}

class RedisClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(redis_.ok()) << redis_.error();
    a_ = std::make_unique<ParleydProcess>(std::vector<std::string>{"--redis", redis_.url(), "--listen", "127.0.0.1:0", "--rate-limit", "0"});
    ASSERT_TRUE(a_->ok()) << a_->error();
    b_ = std::make_unique<ParleydProcess>(std::vector<std::string>{"--redis", redis_.url(), "--listen", "127.0.0.2:0", "--rate-limit", "0"});
    ASSERT_TRUE(b_->ok()) << b_->error();
  }

  RedisProcess redis_{true};
  std::unique_ptr<ParleydProcess> a_;
  std::unique_ptr<ParleydProcess> b_;
};

TEST_F(RedisClusterTest, RoomMessagesReachEveryNodeOnceInSeqOrder) {
  Member alice, bob, carol;
  ASSERT_TRUE(alice.connect("127.0.0.1", a_->port()));
  ASSERT_TRUE(bob.connect("127.0.0.2", b_->port()));
  ASSERT_TRUE(carol.connect("127.0.0.2", b_->port()));
  alice.hello("alice");
  bob.hello("bob");
  carol.hello("carol");
  alice.join("lobby");
  bob.join("lobby");
  carol.join("lobby");
  constexpr int kCount = 40;
  for (int i = 1; i <= kCount; ++i) {
    ASSERT_TRUE(alice.send(msg("lobby", "a" + std::to_string(i), "id" + std::to_string(i))));
    if (i % 2 == 0) {
      ASSERT_TRUE(bob.send(msg("lobby", "b" + std::to_string(i), "bid" + std::to_string(i))));
    }
  }
  constexpr int kTotal = kCount + kCount / 2;
  for (int i = 1; i <= kCount; ++i) {
    Json ack(alice.next("ack"));
    ASSERT_EQ(ack.str("id"), "id" + std::to_string(i));
  }
  for (Member* member : {&alice, &bob, &carol}) {
    uint64_t last = 0;
    int alice_texts = 0;
    // Alice and Bob do not get their own messages back (their acks instead): count the rest.
    int expected = member == &alice ? kCount / 2 : member == &bob ? kCount : kTotal;
    for (int i = 0; i < expected; ++i) {
      Json m(member->next("msg"));
      ASSERT_TRUE(m.ok) << "message " << i << " of " << expected;
      EXPECT_GT(m.num("seq"), last) << m.raw << " member " << (member == &alice ? "alice" : member == &bob ? "bob" : "carol");
      last = m.num("seq");
      alice_texts += m.str("from") == "alice";
    }
    EXPECT_LE(last, static_cast<uint64_t>(kTotal));
    member->expect_no("msg");
    if (member != &alice) {
      EXPECT_EQ(alice_texts, kCount);
    }
  }
  // A node subscribes to a room only while it has members there: one subscriber per node, and
  // none once the last local member is gone.
  EXPECT_EQ(await_subscribers(redis_.port(), "parley:c:lobby", 2), 2);
  ASSERT_TRUE(bob.send(R"({"type":"leave","room":"lobby"})"));
  EXPECT_EQ(await_subscribers(redis_.port(), "parley:c:lobby", 2), 2) << "carol is still on node B";
  ASSERT_TRUE(carol.send(R"({"type":"leave","room":"lobby"})"));
  EXPECT_EQ(await_subscribers(redis_.port(), "parley:c:lobby", 1), 1);
}

TEST_F(RedisClusterTest, DirectMessagesCrossNodes) {
  Member alice, bob;
  ASSERT_TRUE(alice.connect("127.0.0.1", a_->port()));
  ASSERT_TRUE(bob.connect("127.0.0.2", b_->port()));
  alice.hello("alice");
  bob.hello("bob");
  // Bob's node subscribes to his DM channel asynchronously after his hello.
  std::this_thread::sleep_for(milliseconds(300));
  ASSERT_TRUE(alice.send(R"({"type":"dm","to":"bob","text":"psst","id":"d1"})"));
  Json ack(alice.next("ack"));
  EXPECT_EQ(ack.str("id"), "d1");
  Json dm(bob.next("dm"));
  EXPECT_EQ(dm.str("from"), "alice");
  EXPECT_EQ(dm.str("text"), "psst");
  EXPECT_EQ(dm.num("seq"), ack.num("seq"));
  alice.expect_no("dm");
}

TEST_F(RedisClusterTest, RedisRestartWhileTalkingLosesNothingAckedAndDuplicatesNothing) {
  Member alice, bob;
  ASSERT_TRUE(alice.connect("127.0.0.1", a_->port()));
  ASSERT_TRUE(bob.connect("127.0.0.2", b_->port()));
  alice.hello("alice");
  bob.hello("bob");
  alice.join("hall");
  bob.join("hall");
  ASSERT_TRUE(alice.send(msg("hall", "before", "k1")));
  EXPECT_EQ(Json(alice.next("ack")).num("seq"), 1u);
  EXPECT_EQ(Json(bob.next("msg")).num("seq"), 1u);
  redis_.stop(true);  // kill -9; AOF appendfsync always
  // While Redis is away: error unavailable with the message's id, no ack.
  bool refused = false;
  auto deadline = std::chrono::steady_clock::now() + kClusterTimeout;
  while (!refused && std::chrono::steady_clock::now() < deadline) {
    ASSERT_TRUE(alice.send(msg("hall", "during", "k2")));
    Json answer(alice.next("error", milliseconds(2000)));
    refused = answer.ok && answer.str("code") == "unavailable" && answer.str("id") == "k2";
  }
  ASSERT_TRUE(refused);
  ASSERT_TRUE(redis_.start()) << redis_.error();
  // Resend the same id until it is acked (the node reconnects with backoff).
  uint64_t seq = 0;
  deadline = std::chrono::steady_clock::now() + kClusterTimeout;
  while (seq == 0 && std::chrono::steady_clock::now() < deadline) {
    ASSERT_TRUE(alice.send(msg("hall", "during", "k2")));
    Json ack(alice.next("ack", milliseconds(1000)));
    if (ack.ok && ack.str("id") == "k2") seq = ack.num("seq");
    std::this_thread::sleep_for(milliseconds(100));
  }
  ASSERT_EQ(seq, 2u) << "the first message survived the kill (AOF) and k2 took the next seq";
  ASSERT_TRUE(alice.send(msg("hall", "after", "k3")));
  Json m2(bob.next("msg"));
  Json m3(bob.next("msg"));
  EXPECT_EQ(m2.num("seq"), 2u) << m2.raw;
  EXPECT_EQ(m2.str("text"), "during");
  EXPECT_EQ(m3.num("seq"), 3u) << m3.raw;
  bob.expect_no("msg");
}

TEST_F(RedisClusterTest, AClientMovingToAnotherNodeRecoversAndItsResendIsDeduplicated) {
  Member bob;
  ASSERT_TRUE(bob.connect("127.0.0.2", b_->port()));
  bob.hello("bob");
  bob.join("den");
  uint64_t seq = 0;
  {
    Member alice;
    ASSERT_TRUE(alice.connect("127.0.0.1", a_->port()));
    alice.hello("alice");
    alice.join("den");
    ASSERT_TRUE(alice.send(msg("den", "one", "r1")));
    ASSERT_TRUE(alice.send(msg("den", "two", "r2")));
    Json ack(alice.next("ack"));
    seq = ack.num("seq");
    ASSERT_EQ(seq, 1u);
    // Alice's connection drops before she reads r2's ack.
  }
  EXPECT_EQ(Json(bob.next("msg")).num("seq"), 1u);
  EXPECT_EQ(Json(bob.next("msg")).num("seq"), 2u);
  Member alice;
  ASSERT_TRUE(alice.connect("127.0.0.2", b_->port()));  // the other node
  // Node A releases the name when it sees the drop; a hello that reaches Redis first is told
  // name_taken and says hello again (CI once lost that race for the whole 10 s of a plain next).
  ASSERT_EQ(Json(alice.hello_until_welcomed("alice", kClusterTimeout)).type(), "welcome");
  Json recovered(alice.join("den", R"(,"since_seq":1)"));
  ASSERT_EQ(recovered.messages().size(), 1u) << recovered.raw;
  EXPECT_EQ(recovered.messages()[0].text, "two");
  EXPECT_TRUE(recovered.boolean("recovered")) << recovered.raw;
  ASSERT_TRUE(alice.send(msg("den", "two", "r2")));
  Json again(alice.next("ack"));
  EXPECT_EQ(again.str("id"), "r2");
  EXPECT_EQ(again.num("seq"), 2u) << "the original ack";
  bob.expect_no("msg");
}

TEST(RedisClusterWorkers, WorkersOfOneBoxServeOneChat) {
  // --workers 3 shares one port (SO_REUSEPORT): the kernel spreads connections over the workers,
  // so without Redis most of these members would sit in other workers' separate rooms.
  RedisProcess redis;
  ASSERT_TRUE(redis.ok()) << redis.error();
  ParleydProcess server({"--redis", redis.url(), "--workers", "3", "--rate-limit", "0"});
  ASSERT_TRUE(server.ok()) << server.error();
  constexpr int kMembers = 12;
  std::vector<std::unique_ptr<Member>> members;
  for (int i = 0; i < kMembers; ++i) {
    members.push_back(std::make_unique<Member>());
    ASSERT_TRUE(members.back()->connect("127.0.0.1", server.port()));
    members.back()->hello("user" + std::to_string(i));
    members.back()->join("all");
  }
  // Let every worker's subscription settle (a message published before it is filled anyway).
  std::this_thread::sleep_for(milliseconds(300));
  ASSERT_TRUE(members[0]->send(msg("all", "to everyone", "w1")));
  EXPECT_EQ(Json(members[0]->next("ack")).num("seq"), 1u);
  for (int i = 1; i < kMembers; ++i) {
    Json m(members[i]->next("msg"));
    EXPECT_EQ(m.str("text"), "to everyone") << "member " << i;
    EXPECT_EQ(m.num("seq"), 1u);
  }
  for (int i = 1; i < kMembers; ++i) members[i]->expect_no("msg", milliseconds(100));
}

// /metrics tells an operator whether Redis is reachable: parley_redis_up follows a Redis stop
// and restart, the connection counters count the loss and the reconnect, and /readyz agrees.
TEST(RedisClusterMetrics, RedisFiguresFollowAnOutageAndTheReconnect) {
  RedisProcess redis;
  ASSERT_TRUE(redis.ok()) << redis.error();
  ParleydProcess server({"--redis", redis.url()});
  ASSERT_TRUE(server.ok()) << server.error();
  auto metrics = [&] {
    return parley_test::http_request("127.0.0.1", server.port(), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").body;
  };
  auto has = [&](const std::string& sample) { return ("\n" + metrics()).find("\n" + sample + "\n") != std::string::npos; };
  auto wait_for = [&](const std::function<bool()>& condition) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (!condition() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(milliseconds(50));
    return condition();
  };
  ASSERT_TRUE(wait_for([&] { return has("parley_redis_up 1"); })) << metrics();
  EXPECT_TRUE(has("parley_redis_connects_total 2")) << metrics();
  EXPECT_TRUE(has("parley_redis_disconnects_total 0")) << metrics();
  Member member;
  ASSERT_TRUE(member.connect("127.0.0.1", server.port()));
  member.hello("watcher");
  member.join("lobby");
  EXPECT_TRUE(wait_for([&] { return has("parley_redis_watched_rooms 1"); })) << metrics();

  redis.stop();
  EXPECT_TRUE(wait_for([&] { return has("parley_redis_up 0"); })) << metrics();
  EXPECT_TRUE(has("parley_redis_disconnects_total 2")) << metrics();
  auto readyz = [&] { return parley_test::http_request("127.0.0.1", server.port(), "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n"); };
  EXPECT_EQ(readyz().status, 503);
  EXPECT_NE(readyz().body.find("redis unavailable"), std::string::npos) << readyz().body;
  ASSERT_TRUE(redis.start()) << redis.error();
  EXPECT_TRUE(wait_for([&] { return has("parley_redis_up 1"); })) << metrics();
  EXPECT_TRUE(has("parley_redis_connects_total 4")) << metrics();
  EXPECT_EQ(readyz().status, 200);
}

// Two chats on one Redis under different DB numbers stay apart: keys are per DB, and the DB is
// in every channel name (pub/sub is global to a Redis server).
TEST(RedisClusterDatabases, ChatsOnDifferentDbsOfOneRedisDoNotMeet) {
  RedisProcess redis;
  ASSERT_TRUE(redis.ok()) << redis.error();
  ParleydProcess one({"--redis", redis.url(1), "--rate-limit", "0"});
  ParleydProcess two({"--redis", redis.url(2), "--listen", "127.0.0.2:0", "--rate-limit", "0"});
  ASSERT_TRUE(one.ok()) << one.error();
  ASSERT_TRUE(two.ok()) << two.error();
  Member alice, bob;
  ASSERT_TRUE(alice.connect("127.0.0.1", one.port()));
  ASSERT_TRUE(bob.connect("127.0.0.2", two.port()));
  alice.hello("alice");
  bob.hello("alice");  // the same name: claims are per chat too
  alice.join("hall");
  bob.join("hall");
  std::this_thread::sleep_for(milliseconds(300));  // both subscriptions settle
  ASSERT_TRUE(alice.send(msg("hall", "in chat one", "a1")));
  EXPECT_EQ(Json(alice.next("ack")).num("seq"), 1u);
  ASSERT_TRUE(bob.send(msg("hall", "in chat two", "b1")));
  EXPECT_EQ(Json(bob.next("ack")).num("seq"), 1u) << "each chat numbers its own rooms";
  bob.expect_no("msg", milliseconds(500));
  alice.expect_no("msg", milliseconds(100));
}

TEST(RedisClusterStart, UnreachableRedisOrAStoreBesideItStopsParleydWithOneLine) {
  uint16_t port = free_tcp_port();
  ParleydProcess unreachable({"--redis", "redis://127.0.0.1:" + std::to_string(port)});
  EXPECT_FALSE(unreachable.ok());
  EXPECT_NE(unreachable.stderr_text().find("parleyd: redis 127.0.0.1:" + std::to_string(port)), std::string::npos)
      << unreachable.stderr_text();
  ParleydProcess both({"--redis", "redis://127.0.0.1:" + std::to_string(port), "--store", "x.db"});
  EXPECT_FALSE(both.ok());
  EXPECT_NE(both.stderr_text().find("--redis and --store are exclusive"), std::string::npos) << both.stderr_text();
  ParleydProcess bad_url({"--redis", "redis://user:pw@127.0.0.1:1"});
  EXPECT_FALSE(bad_url.ok());
  EXPECT_NE(bad_url.stderr_text().find("PARLEY_REDIS_PASSWORD"), std::string::npos) << bad_url.stderr_text();
}

}  // namespace
}  // namespace parley_test
