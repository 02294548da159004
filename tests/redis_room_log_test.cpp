// The Redis engine's delivery across processes (chat/cluster/redis_room_log.h): two engines on
// one loop stand for two nodes sharing one redis-server. Watched rooms get every message in seq
// order whichever node appended it, gaps are filled from the stream, DMs reach the node holding
// the user, and while Redis is away appends complete `unavailable` at once.
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <memory>
#include <string>
#include <vector>

#include "chat/cluster/redis_room_log.h"
#include "reactor/event_loop.h"
#include "tests/support/redis_process.h"
#include "tests/support/room_log_test_support.h"

namespace {

using chat::LogStatus;
using parley_test::RedisProcess;
using parley_test::run_until;
using room_log_test::message;

// Records deliveries besides what RecordingClient records.
struct Node : room_log_test::RecordingClient {
  struct Seen {
    std::string conversation;
    uint64_t seq;
    std::string sender;
    std::string text;
    std::string recipient;
    uint64_t origin;
  };
  void on_delivered(const chat::DeliveredMessage& m) override {
    delivered.push_back({std::string(m.conversation), m.seq, std::string(m.sender), std::string(m.text),
                         std::string(m.recipient), m.origin_cookie});
  }
  std::vector<Seen> delivered;
  std::unique_ptr<chat::RoomLog> log;
};

class RedisRoomLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(redis_.ok()) << redis_.error();
    ASSERT_EQ(loop_.open(), 0);
    open(a_);
    open(b_);
    ASSERT_TRUE(run_until(loop_, [&] { return connected(a_) && connected(b_); }));
  }

  void open(Node& node) {
    chat::RoomLogConfig config;
    config.history_keep = 1000;
    chat::RedisEndpoint endpoint;
    endpoint.port = redis_.port();
    std::string error;
    node.log = chat::open_redis_room_log(config, endpoint, loop_, error);
    ASSERT_NE(node.log, nullptr) << error;
    node.log->set_client(&node);
  }
  static bool connected(Node& node) { return static_cast<chat::RedisRoomLog&>(*node.log).connected(); }

  static std::vector<uint64_t> seqs(const Node& node, const std::string& conversation) {
    std::vector<uint64_t> out;
    for (const auto& seen : node.delivered) {
      if (seen.conversation == conversation) out.push_back(seen.seq);
    }
    return out;
  }

  RedisProcess redis_{true};  // AOF on, appendfsync always
  reactor::EventLoop loop_;
  Node a_;
  Node b_;
};

TEST_F(RedisRoomLogTest, MessagesReachEveryWatchingNodeOnceInSeqOrder) {
  a_.log->watch("lobby", 0);
  b_.log->watch("lobby", 0);
  // Both subscriptions confirmed before anything is sent: probe with a message until both see it.
  ASSERT_EQ(a_.log->append(message("lobby", "alice", 1, "hello", "", 42)), chat::Submit::kAccepted);
  ASSERT_TRUE(run_until(loop_, [&] { return a_.delivered.size() == 1 && b_.delivered.size() == 1; }));
  // Interleaved appends from both nodes: one seq order, the same on both.
  for (int i = 0; i < 50; ++i) {
    a_.log->append(message("lobby", "alice", 10 + i, "a" + std::to_string(i), "", 100 + i));
    b_.log->append(message("lobby", "bob", 10 + i, "b" + std::to_string(i), "", 200 + i));
  }
  ASSERT_TRUE(run_until(loop_, [&] { return a_.delivered.size() == 101 && b_.delivered.size() == 101; }));
  std::vector<uint64_t> expected;
  for (uint64_t seq = 1; seq <= 101; ++seq) expected.push_back(seq);
  EXPECT_EQ(seqs(a_, "lobby"), expected);
  EXPECT_EQ(seqs(b_, "lobby"), expected);
  // The origin cookie names the local sender only on its own node.
  for (size_t i = 0; i < a_.delivered.size(); ++i) {
    const auto& on_a = a_.delivered[i];
    const auto& on_b = b_.delivered[i];
    EXPECT_EQ(on_a.text, on_b.text);
    if (on_a.sender == "alice") {
      EXPECT_NE(on_a.origin, 0u);
      EXPECT_EQ(on_b.origin, 0u);
    } else {
      EXPECT_EQ(on_a.origin, 0u);
      EXPECT_NE(on_b.origin, 0u);
    }
  }
  // Acks: every append completed kOk with the seq it was delivered under.
  ASSERT_EQ(a_.appended.size(), 51u);
  for (const auto& result : a_.appended) EXPECT_EQ(result.status, LogStatus::kOk);
}

TEST_F(RedisRoomLogTest, AWatcherCatchesUpFromTheStreamThenFollowsLive) {
  for (int i = 1; i <= 5; ++i) a_.log->append(message("den", "alice", i, "m" + std::to_string(i)));
  ASSERT_TRUE(run_until(loop_, [&] { return a_.appended.size() == 5; }));
  // B has shown its members up to seq 2: it must deliver 3..5 from the stream, then live 6.
  b_.log->watch("den", 2);
  ASSERT_TRUE(run_until(loop_, [&] { return b_.delivered.size() == 3; }));
  a_.log->append(message("den", "alice", 6, "m6"));
  ASSERT_TRUE(run_until(loop_, [&] { return b_.delivered.size() == 4; }));
  EXPECT_EQ(seqs(b_, "den"), (std::vector<uint64_t>{3, 4, 5, 6}));
  EXPECT_EQ(b_.delivered[0].text, "m3");
  EXPECT_EQ(b_.log->last_seq("den"), 6u);
  // A read of a watched room holds exactly what was delivered.
  b_.log->since("den", 0, 0, 1);
  ASSERT_TRUE(run_until(loop_, [&] { return b_.reads.size() == 1; }));
  EXPECT_EQ(b_.reads[0].messages.size(), 6u);
  EXPECT_TRUE(b_.reads[0].complete);
}

TEST_F(RedisRoomLogTest, DirectMessagesReachTheNodeHoldingTheRecipient) {
  b_.log->watch_user("Bob");
  // Probe until the user subscription is confirmed.
  uint64_t sent = 0;
  ASSERT_TRUE(run_until(loop_, [&] {
    if (!b_.delivered.empty()) return true;
    if (a_.appended.size() == sent) {
      auto request = message(chat::dm_conversation("alice", "bob"), "alice", 1, "ping", "", 7);
      request.recipient = "bob";
      a_.log->append(std::move(request));
      ++sent;
    }
    return false;
  }));
  EXPECT_TRUE(a_.delivered.empty()) << "the sender's node holds no recipient";
  EXPECT_EQ(b_.delivered[0].conversation, chat::dm_conversation("alice", "bob"));
  EXPECT_EQ(b_.delivered[0].recipient, "bob");
  EXPECT_EQ(b_.delivered[0].sender, "alice");
  b_.log->unwatch_user("bob");
}

TEST_F(RedisRoomLogTest, RedisAwayMeansUnavailableAtOnceThenResumesWithoutLossOrDuplicate) {
  a_.log->watch("hall", 0);
  b_.log->watch("hall", 0);
  ASSERT_EQ(a_.log->append(message("hall", "alice", 1, "first", "c1", 1)), chat::Submit::kAccepted);
  ASSERT_TRUE(run_until(loop_, [&] { return b_.delivered.size() == 1 && a_.appended.size() == 1; }))
      << b_.delivered.size() << " delivered, " << a_.appended.size() << " appended";
  redis_.stop(true);  // kill -9: AOF with appendfsync always keeps every acked message
  ASSERT_TRUE(run_until(loop_, [&] {
    return static_cast<chat::RedisRoomLog&>(*a_.log).commands_down() && !connected(b_);
  }));
  size_t before = a_.appended.size();
  ASSERT_EQ(a_.log->append(message("hall", "alice", 2, "second", "c2", 2)), chat::Submit::kAccepted);
  ASSERT_EQ(a_.appended.size(), before + 1) << "completed inside the call";
  EXPECT_EQ(a_.appended.back().status, LogStatus::kUnavailable);
  ASSERT_TRUE(redis_.start()) << redis_.error();
  ASSERT_TRUE(run_until(loop_, [&] { return connected(a_) && connected(b_); }));
  // The client resends c1 (lost ack) and c2: c1 is the original ack, c2 a new seq.
  a_.log->append(message("hall", "alice", 3, "first", "c1", 1));
  a_.log->append(message("hall", "alice", 4, "second", "c2", 2));
  ASSERT_TRUE(run_until(loop_, [&] { return a_.appended.size() == before + 3 && b_.delivered.size() >= 2; }));
  EXPECT_EQ(a_.appended[before + 1].status, LogStatus::kDuplicate);
  EXPECT_EQ(a_.appended[before + 1].seq, 1u);
  EXPECT_EQ(a_.appended[before + 2].status, LogStatus::kOk);
  EXPECT_EQ(a_.appended[before + 2].seq, 2u);
  run_until(loop_, [] { return false; }, 300);  // nothing more may arrive
  EXPECT_EQ(seqs(b_, "hall"), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(seqs(a_, "hall"), (std::vector<uint64_t>{1, 2}));
}

// --history-max-age with Redis: stream ids are seqs, so the append script trims expired entries
// from the head (at most 16 per append), reads leave out what is not trimmed yet, the stream key
// expires after max age of silence, and seqs go on regardless.
uint64_t fake_now_ms = 0;
uint64_t fake_clock() { return fake_now_ms; }

TEST(RedisRoomLogRetention, MaxAgeTrimsTheStreamOnAppendAndFiltersReads) {
  RedisProcess redis;
  ASSERT_TRUE(redis.ok()) << redis.error();
  reactor::EventLoop loop;
  ASSERT_EQ(loop.open(), 0);
  chat::RoomLogConfig config;
  config.history_keep = 1000;
  config.max_age_ms = 60'000;
  config.wall_clock_ms = fake_clock;
  chat::RedisEndpoint endpoint;
  endpoint.port = redis.port();
  std::string error;
  room_log_test::RecordingClient client;
  std::unique_ptr<chat::RoomLog> log = chat::open_redis_room_log(config, endpoint, loop, error);
  ASSERT_NE(log, nullptr) << error;
  log->set_client(&client);
  redisContext* direct = redisConnect("127.0.0.1", redis.port());
  ASSERT_TRUE(direct != nullptr && direct->err == 0);
  auto integer = [&](const char* command) {
    redisReply* reply = static_cast<redisReply*>(redisCommand(direct, command));
    long long value = reply != nullptr && reply->type == REDIS_REPLY_INTEGER ? reply->integer : -1000;
    freeReplyObject(reply);
    return value;
  };
  auto append = [&](uint64_t ts, const std::string& text) {
    size_t before = client.appended.size();
    EXPECT_EQ(log->append(message("old", "alice", ts, text)), chat::Submit::kAccepted);
    EXPECT_TRUE(run_until(loop, [&] { return client.appended.size() > before; }));
    return client.appended.back().seq;
  };
  auto history_texts = [&](uint64_t now) {
    fake_now_ms = now;
    size_t before = client.reads.size();
    EXPECT_EQ(log->history("old", 0, 100, 1), chat::Submit::kAccepted);
    EXPECT_TRUE(run_until(loop, [&] { return client.reads.size() > before; }));
    std::vector<std::string> texts;
    for (const auto& stored : client.reads.back().messages) texts.push_back(stored.text);
    return texts;
  };
  for (int i = 0; i < 40; ++i) append(100'000 + i, "old" + std::to_string(i));
  EXPECT_EQ(integer("XLEN parley:log:old"), 40);
  // Each young append drops at most 16 expired entries from the head: 40 -> 24 -> 8 -> 0 old.
  EXPECT_EQ(append(170'000, "young1"), 41u);
  EXPECT_EQ(integer("XLEN parley:log:old"), 25);
  // Reads leave out the expired entries still in the stream.
  EXPECT_EQ(history_texts(170'001), (std::vector<std::string>{"young1"}));
  append(170'010, "young2");
  EXPECT_EQ(integer("XLEN parley:log:old"), 10);
  EXPECT_EQ(append(170'020, "young3"), 43u);
  EXPECT_EQ(integer("XLEN parley:log:old"), 3);
  EXPECT_EQ(history_texts(170'030), (std::vector<std::string>{"young1", "young2", "young3"}));
  // A minute later they too are past the age: none is returned, and the stream key expires by
  // itself (its TTL is the age), while the seq key stays so that seqs keep increasing.
  EXPECT_TRUE(history_texts(231'000).empty());
  const long long ttl = integer("PTTL parley:log:old");
  EXPECT_GT(ttl, 0);
  EXPECT_LE(ttl, 60'000);
  EXPECT_EQ(integer("PTTL parley:seq:old"), -1);
  EXPECT_EQ(append(231'000, "later"), 44u);
  redisFree(direct);
}

TEST(RedisRoomLogOpen, UnreachableRedisIsAOneLineError) {
  reactor::EventLoop loop;
  ASSERT_EQ(loop.open(), 0);
  chat::RedisEndpoint endpoint;
  endpoint.port = parley_test::free_tcp_port();
  std::string error;
  EXPECT_EQ(chat::open_redis_room_log(chat::RoomLogConfig{}, endpoint, loop, error), nullptr);
  EXPECT_NE(error.find("redis 127.0.0.1:"), std::string::npos) << error;
}

}  // namespace
