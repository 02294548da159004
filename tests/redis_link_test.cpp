// The hiredis adapter on our reactor (chat/cluster/redis_link.h) against a real redis-server:
// URL parsing, pipelining and reply order, edge-triggered draining of replies far larger than
// hiredis's 16 KiB read, the bounded queue, reconnect after Redis restarts, pub/sub.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "chat/cluster/redis_link.h"
#include "reactor/event_loop.h"
#include "tests/support/redis_process.h"

namespace {

using chat::RedisLink;
using chat::RedisSubmit;
using parley_test::RedisProcess;
using parley_test::run_until;

TEST(RedisUrl, ParsesHostPortAndDb) {
  chat::RedisEndpoint endpoint;
  std::string error;
  ASSERT_TRUE(chat::parse_redis_url("redis://10.0.0.7:6380/3", endpoint, error)) << error;
  EXPECT_EQ(endpoint.host, "10.0.0.7");
  EXPECT_EQ(endpoint.port, 6380);
  EXPECT_EQ(endpoint.db, 3);
  ASSERT_TRUE(chat::parse_redis_url("redis://cache.local", endpoint, error)) << error;
  EXPECT_EQ(endpoint.port, 6379);
  EXPECT_EQ(endpoint.db, 0);
  ASSERT_TRUE(chat::parse_redis_url("redis://[::1]:7000", endpoint, error)) << error;
  EXPECT_EQ(endpoint.host, "::1");
  EXPECT_EQ(endpoint.port, 7000);
}

TEST(RedisUrl, RefusesWhatItCannotUseWithOneLine) {
  chat::RedisEndpoint endpoint;
  std::string error;
  for (const char* bad : {"http://h:1", "redis://", "redis://h:0", "redis://h:70000", "redis://h:x",
                          "redis://h:1/db", "redis://[::1", "redis://h:"}) {
    EXPECT_FALSE(chat::parse_redis_url(bad, endpoint, error)) << bad;
    EXPECT_FALSE(error.empty()) << bad;
    EXPECT_EQ(error.find('\n'), std::string::npos);
  }
  EXPECT_FALSE(chat::parse_redis_url("redis://user:secret@h:1", endpoint, error));
  EXPECT_NE(error.find("PARLEY_REDIS_PASSWORD"), std::string::npos) << error;
  EXPECT_EQ(error.find("secret"), std::string::npos) << "the password is never echoed";
}

class RedisLinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(redis_.ok()) << redis_.error();
    ASSERT_EQ(loop_.open(), 0);
  }

  chat::RedisLinkConfig config() {
    chat::RedisLinkConfig config;
    config.endpoint.port = redis_.port();
    config.backoff.base = std::chrono::milliseconds(20);
    config.backoff.cap = std::chrono::milliseconds(200);
    return config;
  }

  RedisProcess redis_;
  reactor::EventLoop loop_;
};

TEST_F(RedisLinkTest, PipelinedCommandsAreAnsweredInOrder) {
  RedisLink link(loop_, config());
  link.start();
  // Issued before the connection is up: hiredis holds them until it is.
  std::vector<long long> seen;
  constexpr int kCount = 5000;
  for (int i = 0; i < kCount; ++i) {
    ASSERT_EQ(link.command({"INCR", "counter"}, [&](redisReply* reply) {
      seen.push_back(reply != nullptr && reply->type == REDIS_REPLY_INTEGER ? reply->integer : -1);
    }), RedisSubmit::kQueued);
  }
  ASSERT_TRUE(run_until(loop_, [&] { return seen.size() == kCount; }));
  for (int i = 0; i < kCount; ++i) ASSERT_EQ(seen[i], i + 1) << "reply " << i;
  EXPECT_EQ(link.pending(), 0u);
  EXPECT_EQ(link.connects(), 1u);
}

TEST_F(RedisLinkTest, RepliesLargerThanOneReadAreDrainedUnderEdgeTriggering) {
  RedisLink link(loop_, config());
  link.start();
  // 4 MiB values: hiredis reads 16 KiB per call and the kernel reports the edge once, so the
  // adapter must keep reading while bytes wait or the GETs never complete.
  std::string big(4 << 20, 'x');
  for (size_t i = 0; i < big.size(); i += 4099) big[i] = static_cast<char>('a' + i % 26);
  int set_ok = 0;
  std::vector<std::string> got;
  link.command({"SET", "big", big}, [&](redisReply* reply) { set_ok += chat::reply_text(reply) == "OK"; });
  for (int i = 0; i < 3; ++i) {
    link.command({"GET", "big"}, [&](redisReply* reply) { got.emplace_back(chat::reply_text(reply)); });
  }
  ASSERT_TRUE(run_until(loop_, [&] { return got.size() == 3; }));
  EXPECT_EQ(set_ok, 1);
  for (const std::string& value : got) EXPECT_TRUE(value == big) << value.size();
}

TEST_F(RedisLinkTest, AFullQueueRefusesWithoutQueueing) {
  chat::RedisLinkConfig limited = config();
  limited.max_pending = 8;
  RedisLink link(loop_, limited);
  link.start();
  int answered = 0;
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(link.command({"PING"}, [&](redisReply*) { ++answered; }), RedisSubmit::kQueued);
  }
  EXPECT_EQ(link.command({"PING"}, [&](redisReply*) { ADD_FAILURE() << "a refused command was answered"; }),
            RedisSubmit::kFull);
  ASSERT_TRUE(run_until(loop_, [&] { return answered == 8; }));
  EXPECT_EQ(link.command({"PING"}, [&](redisReply*) { ++answered; }), RedisSubmit::kQueued) << "room again";
  ASSERT_TRUE(run_until(loop_, [&] { return answered == 9; }));
}

TEST_F(RedisLinkTest, RedisGoingAwayAnswersPendingWithNullThenReconnects) {
  RedisLink link(loop_, config());
  int ups = 0;
  int downs = 0;
  link.set_on_up([&] { ++ups; });
  link.set_on_down([&] { ++downs; });
  link.start();
  ASSERT_TRUE(run_until(loop_, [&] { return link.connected(); }));
  // A command that blocks in Redis until it is killed: its callback must get null.
  int nulls = 0;
  link.command({"BLPOP", "never", "0"}, [&](redisReply* reply) { nulls += reply == nullptr; });
  ASSERT_TRUE(run_until(loop_, [&] { return link.pending() == 1; }));
  redis_.stop(true);
  ASSERT_TRUE(run_until(loop_, [&] { return downs == 1; }));
  EXPECT_EQ(nulls, 1);
  EXPECT_FALSE(link.connected());
  EXPECT_EQ(link.command({"PING"}, [](redisReply*) { ADD_FAILURE() << "answered while down"; }), RedisSubmit::kDown);
  // Attempts keep failing (connection refused) with backoff until Redis is back.
  ASSERT_TRUE(run_until(loop_, [&] { return link.attempts() >= 3; }));
  EXPECT_EQ(ups, 1);
  ASSERT_TRUE(redis_.start()) << redis_.error();
  ASSERT_TRUE(run_until(loop_, [&] { return ups == 2; }));
  std::string pong;
  link.command({"PING"}, [&](redisReply* reply) { pong = chat::reply_text(reply); });
  ASSERT_TRUE(run_until(loop_, [&] { return !pong.empty(); }));
  EXPECT_EQ(pong, "PONG");
  EXPECT_EQ(link.disconnects(), 1u);
}

TEST_F(RedisLinkTest, SubscriberReceivesPublishedMessagesAndResubscribesAfterRestart) {
  RedisLink publisher(loop_, config());
  RedisLink subscriber(loop_, config());
  std::vector<std::string> received;
  int confirmed = 0;
  subscriber.set_on_message([&](std::string_view channel, std::string_view payload) {
    received.push_back(std::string(channel) + "=" + std::string(payload));
  });
  subscriber.set_on_subscribed([&](std::string_view) { ++confirmed; });
  subscriber.set_on_up([&] { EXPECT_TRUE(subscriber.subscribe("chan")); });
  publisher.start();
  subscriber.start();
  ASSERT_TRUE(run_until(loop_, [&] { return confirmed == 1 && publisher.connected(); }));
  std::string binary("a\0b\r\n", 5);
  publisher.command({"PUBLISH", "chan", binary}, nullptr);
  publisher.command({"PUBLISH", "other", "no"}, nullptr);
  publisher.command({"PUBLISH", "chan", "two"}, nullptr);
  ASSERT_TRUE(run_until(loop_, [&] { return received.size() == 2; }));
  EXPECT_EQ(received[0], "chan=" + binary);
  EXPECT_EQ(received[1], "chan=two");

  redis_.stop(true);
  ASSERT_TRUE(run_until(loop_, [&] { return !subscriber.connected() && !publisher.connected(); }));
  ASSERT_TRUE(redis_.start()) << redis_.error();
  ASSERT_TRUE(run_until(loop_, [&] { return confirmed == 2 && publisher.connected(); }));
  publisher.command({"PUBLISH", "chan", "three"}, nullptr);
  ASSERT_TRUE(run_until(loop_, [&] { return received.size() == 3; }));
  EXPECT_EQ(received[2], "chan=three");
}

TEST_F(RedisLinkTest, ACommandIssuedAfterTheFlushStillGoesOut) {
  RedisLink link(loop_, config());
  link.start();
  ASSERT_TRUE(run_until(loop_, [&] { return link.connected(); }));
  // A before-sleep hook added after the link's runs after its flush: a command issued there
  // must not wait for an event that never comes (parleyd's connection closes run there).
  bool issue = true;
  std::string pong;
  loop_.add_before_sleep([&] {
    if (!issue) return;
    issue = false;
    link.command({"PING"}, [&](redisReply* reply) { pong = chat::reply_text(reply); });
  });
  ASSERT_TRUE(run_until(loop_, [&] { return !pong.empty(); }, 3000));
  EXPECT_EQ(pong, "PONG");
}

TEST(RedisProbe, UnreachableRedisIsOneLine) {
  chat::RedisEndpoint endpoint;
  endpoint.port = parley_test::free_tcp_port();
  std::string error;
  EXPECT_FALSE(chat::probe_redis(endpoint, 1000, error));
  EXPECT_NE(error.find("127.0.0.1:" + std::to_string(endpoint.port)), std::string::npos) << error;
  EXPECT_EQ(error.find('\n'), std::string::npos);
}

}  // namespace
