// ChatApp over a room log (issue 14) in process: acks only after the log completed the message,
// unavailable on failure and on a full queue, delivery in seq order, the original ack for a
// resent client id, history that outlives the room's members, recovery seams (join with
// since_seq: inside the ring, in the log only, beyond --recovery-limit, from the future, and
// with messages in flight), and DMs stored per conversation with history for verified users.
#include <gtest/gtest.h>

#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "chat/chat_app.h"
#include "chat/store/memory_room_log.h"
#include "tests/support/chat_test_support.h"

namespace parley_test {
namespace {

using chat::AppendRequest;
using chat::AppendResult;
using chat::LogStatus;
using chat::ReadResult;
using chat::RoomLog;
using chat::Submit;

// A room log whose completions wait until the test calls flush(): a memory log does the work,
// in submission order, so the order contract of room_log.h holds; flush(false) fails every
// queued append instead (as a failed SQLite transaction does). `limit` bounds the queue.
class DeferredRoomLog final : public RoomLog, private chat::RoomLogClient {
 public:
  explicit DeferredRoomLog(size_t keep = 1000, size_t limit = 0) : inner_(config(keep)), limit_(limit) {
    inner_.set_client(this);
  }
  void set_client(chat::RoomLogClient* client) override { client_ = client; }
  Submit append(AppendRequest request) override {
    if (full()) return Submit::kFull;
    queue_.push_back({Op::kAppend, std::move(request), {}, 0, 0, 0});
    return Submit::kAccepted;
  }
  Submit history(std::string_view conversation, uint64_t before_seq, size_t limit, uint64_t cookie) override {
    if (full()) return Submit::kFull;
    queue_.push_back({Op::kHistory, {}, std::string(conversation), before_seq, limit, cookie});
    return Submit::kAccepted;
  }
  Submit since(std::string_view conversation, uint64_t since_seq, size_t limit, uint64_t cookie) override {
    if (full()) return Submit::kFull;
    queue_.push_back({Op::kSince, {}, std::string(conversation), since_seq, limit, cookie});
    return Submit::kAccepted;
  }
  uint64_t last_seq(std::string_view conversation) const override { return inner_.last_seq(conversation); }
  chat::RoomLogStats stats() const override {
    chat::RoomLogStats stats = inner_.stats();
    stats.queue_depth = queue_.size();
    return stats;
  }

  // Completes everything queued, in order; with ok == false every append fails (unavailable).
  void flush(bool ok = true) {
    while (!queue_.empty()) {
      Pending op = std::move(queue_.front());
      queue_.pop_front();
      if (op.op == Op::kAppend && !ok) {
        AppendResult failed;
        failed.status = LogStatus::kUnavailable;
        failed.request = std::move(op.request);
        if (client_ != nullptr) client_->on_appended(failed);
      } else if (op.op == Op::kAppend) {
        inner_.append(std::move(op.request));
      } else if (op.op == Op::kHistory) {
        inner_.history(op.conversation, op.bound, op.limit, op.cookie);
      } else {
        inner_.since(op.conversation, op.bound, op.limit, op.cookie);
      }
    }
  }
  size_t queued() const { return queue_.size(); }

 private:
  enum class Op { kAppend, kHistory, kSince };
  struct Pending {
    Op op;
    AppendRequest request;
    std::string conversation;
    uint64_t bound;
    size_t limit;
    uint64_t cookie;
  };
  static chat::RoomLogConfig config(size_t keep) {
    chat::RoomLogConfig config;
    config.path = "none";
    config.history_keep = keep;
    return config;
  }
  bool full() const { return limit_ != 0 && queue_.size() >= limit_; }
  void on_appended(AppendResult& result) override {
    if (client_ != nullptr) client_->on_appended(result);
  }
  void on_read(ReadResult& result) override {
    if (client_ != nullptr) client_->on_read(result);
  }

  chat::MemoryRoomLog inner_;
  size_t limit_;
  chat::RoomLogClient* client_ = nullptr;
  std::deque<Pending> queue_;
};

uint64_t g_clock = kNow;
uint64_t test_clock() { return g_clock; }

class DurableChatTest : public ChatAppFixture {
 protected:
  // The test's log, kept here so that it outlives the app (TearDown drops the app first).
  template <typename Log, typename... Args>
  Log& make_log(Args&&... args) {
    app.reset();
    auto log = std::make_unique<Log>(std::forward<Args>(args)...);
    Log& ref = *log;
    log_ = std::move(log);
    return ref;
  }
  std::unique_ptr<RoomLog> log_;
  // A fresh app over `log` (the fixture's app is dropped first: it must not outlive it).
  void use(RoomLog& log, ChatConfig config = {}, chat::ChatHooks* hooks = nullptr) {
    app.reset();
    config.wall_clock_ms = &test_clock;
    transport = std::make_unique<RecordingTransport>();
    app = std::make_unique<ChatApp>(*transport, config, hooks, &log);
  }
  void TearDown() override { app.reset(); }
  void say(ConnectionId id, std::string_view room, std::string_view text, std::string_view message_id = {}) {
    std::string json = R"({"type":"msg","room":")" + std::string(room) + R"(","text":")" + std::string(text) + '"';
    if (!message_id.empty()) json += R"(,"id":")" + std::string(message_id) + '"';
    send(id, json + "}");
  }
  // Joins `room` with since_seq and returns the history reply.
  std::string recover(ConnectionId id, std::string_view room, uint64_t since_seq) {
    send(id, R"({"type":"join","room":")" + std::string(room) + R"(","since_seq":)" + std::to_string(since_seq) + "}");
    return next(id);
  }
};

TEST_F(DurableChatTest, AckAndDeliveryWaitForTheCompletion) {
  DeferredRoomLog& log = make_log<DeferredRoomLog>();
  use(log);
  connect(alice, "alice");
  connect(bob, "bob");
  join(alice, "lobby");
  join(bob, "lobby");
  next(alice);  // bob joined
  say(alice, "lobby", "hi", "c1");
  expect_quiet(alice);
  expect_quiet(bob);
  EXPECT_EQ(log.queued(), 1u);
  log.flush();
  Json ack(next(alice));
  EXPECT_EQ(ack.type(), "ack") << ack.raw;
  EXPECT_EQ(ack.str("id"), "c1");
  EXPECT_EQ(ack.num("seq"), 1u);
  Json msg(next(bob));
  EXPECT_EQ(msg.type(), "msg");
  EXPECT_EQ(msg.num("seq"), 1u);
  EXPECT_EQ(msg.str("text"), "hi");
}

TEST_F(DurableChatTest, FailedStoreGivesUnavailableAndDeliversNothing) {
  DeferredRoomLog& log = make_log<DeferredRoomLog>();
  use(log);
  connect(alice, "alice");
  connect(bob, "bob");
  join(alice, "lobby");
  join(bob, "lobby");
  next(alice);
  say(alice, "lobby", "lost", "c1");
  log.flush(false);
  expect_error(alice, "unavailable", "c1");
  expect_quiet(bob);
  EXPECT_EQ(app->stats().unavailable, 1u);
  // A failed message takes no seq: the next one is 1, and the history does not hold it.
  say(alice, "lobby", "kept", "c2");
  log.flush();
  EXPECT_EQ(Json(next(alice)).num("seq"), 1u);
  EXPECT_EQ(Json(next(bob)).str("text"), "kept");
  send(bob, R"({"type":"history","room":"lobby"})");
  std::vector<Json::Item> items = Json(next(bob)).messages();
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].text, "kept");
}

TEST_F(DurableChatTest, FullQueueIsRefusedAtOnce) {
  DeferredRoomLog& log = make_log<DeferredRoomLog>(1000, 1);
  use(log);
  connect(alice, "alice");
  join(alice, "lobby");
  say(alice, "lobby", "one", "a");
  say(alice, "lobby", "two", "b");
  expect_error(alice, "unavailable", "b");  // refused before the first completed
  log.flush();
  Json ack(next(alice));
  EXPECT_EQ(ack.str("id"), "a");
  EXPECT_EQ(ack.num("seq"), 1u);
  expect_quiet(alice);
}

TEST_F(DurableChatTest, CompletionsDeliverInSeqOrder) {
  DeferredRoomLog& log = make_log<DeferredRoomLog>();
  use(log);
  connect(alice, "alice");
  connect(bob, "bob");
  connect(carol, "carol");
  join(alice, "lobby");
  join(bob, "lobby");
  join(carol, "lobby");
  while (transport->pending(alice) + transport->pending(bob) != 0) {
    next(alice);
    next(bob);
  }
  for (int i = 0; i < 10; ++i) say(i % 2 == 0 ? alice : carol, "lobby", "m" + std::to_string(i));
  log.flush();
  for (uint64_t seq = 1; seq <= 10; ++seq) {
    Json msg(next(bob));
    EXPECT_EQ(msg.num("seq"), seq) << msg.raw;
    EXPECT_EQ(msg.str("text"), "m" + std::to_string(seq - 1));
  }
  expect_quiet(bob);
}

TEST_F(DurableChatTest, ResentIdGetsTheOriginalAckAndNothingIsDelivered) {
  g_clock = kNow;
  chat::RoomLogConfig config;
  config.path = "none";
  config.wall_clock_ms = &test_clock;
  chat::MemoryRoomLog& log = make_log<chat::MemoryRoomLog>(config);
  use(log);
  connect(alice, "alice");
  connect(bob, "bob");
  join(alice, "lobby");
  join(bob, "lobby");
  next(alice);
  say(alice, "lobby", "once", "x1");
  Json first(next(alice));
  ASSERT_EQ(first.num("seq"), 1u);
  ASSERT_EQ(first.num("ts"), kNow);
  next(bob);
  g_clock = kNow + 5000;
  // A resend after a lost ack, even on a new connection of the same user.
  app->on_close(alice, 1006);
  ConnectionId alice2 = make_id(30);
  connect(alice2, "alice");
  join(alice2, "lobby");
  EXPECT_EQ(Json(next(bob)).type(), "left");
  EXPECT_EQ(Json(next(bob)).type(), "joined");
  say(alice2, "lobby", "once", "x1");
  Json again(next(alice2));
  EXPECT_EQ(again.type(), "ack");
  EXPECT_EQ(again.num("seq"), 1u);
  EXPECT_EQ(again.num("ts"), kNow);
  expect_quiet(bob);
  EXPECT_EQ(app->stats().duplicates, 1u);
  // Another id is a new message.
  say(alice2, "lobby", "twice", "x2");
  EXPECT_EQ(Json(next(alice2)).num("seq"), 2u);
  EXPECT_EQ(Json(next(bob)).num("seq"), 2u);
  // DMs too: the original ack, one delivery.
  send(alice2, R"({"type":"dm","to":"bob","text":"psst","id":"d1"})");
  Json dm_ack(next(alice2));
  Json dm(next(bob));
  EXPECT_EQ(dm.type(), "dm");
  EXPECT_EQ(dm.num("seq"), 1u);
  send(alice2, R"({"type":"dm","to":"bob","text":"psst","id":"d1"})");
  Json dm_again(next(alice2));
  EXPECT_EQ(dm_again.num("seq"), dm_ack.num("seq"));
  EXPECT_EQ(dm_again.num("ts"), dm_ack.num("ts"));
  expect_quiet(bob);
}

TEST_F(DurableChatTest, HistoryOutlivesTheMembersAndSeqContinues) {
  ChatConfig config;
  config.history_size = 5;
  DeferredRoomLog& log = make_log<DeferredRoomLog>();
  use(log, config);
  connect(alice, "alice");
  join(alice, "lobby");
  for (int i = 1; i <= 3; ++i) say(alice, "lobby", "m" + std::to_string(i));
  log.flush();
  for (int i = 0; i < 3; ++i) next(alice);
  send(alice, R"({"type":"leave","room":"lobby"})");
  EXPECT_EQ(app->rooms().size(), 0u);
  connect(bob, "bob");
  send(bob, R"({"type":"join","room":"lobby"})");
  expect_quiet(bob);  // the log is read first
  log.flush();
  Json history(next(bob));
  ASSERT_EQ(history.type(), "history") << history.raw;
  EXPECT_EQ(seqs_of(history.messages()), (std::vector<uint64_t>{1, 2, 3}));
  say(bob, "lobby", "m4");
  log.flush();
  EXPECT_EQ(Json(next(bob)).num("seq"), 4u);
  expect_invariants();
}

// The seams of join with since_seq: a ring of 5, a log of 1000, a recovery limit of 10.
TEST_F(DurableChatTest, RecoverySeams) {
  ChatConfig config;
  config.history_size = 5;
  config.recovery_limit = 10;
  DeferredRoomLog& log = make_log<DeferredRoomLog>();
  use(log, config);
  connect(alice, "alice");
  connect(bob, "bob");
  join(alice, "lobby");
  for (int i = 1; i <= 8; ++i) say(alice, "lobby", "m" + std::to_string(i));
  log.flush();
  while (transport->pending(alice) != 0) next(alice);

  // Inside the ring (4..8): answered at once, no read.
  Json ring(recover(bob, "lobby", 6));
  EXPECT_EQ(ring.type(), "history") << ring.raw;
  EXPECT_EQ(seqs_of(ring.messages()), (std::vector<uint64_t>{7, 8}));
  EXPECT_TRUE(ring.boolean("recovered")) << ring.raw;
  EXPECT_EQ(log.queued(), 0u);
  next(alice);  // bob joined

  // Older than the ring: read from the log.
  send(bob, R"({"type":"leave","room":"lobby"})");
  next(alice);
  EXPECT_EQ(recover(bob, "lobby", 1), "");  // waiting for the read
  log.flush();
  Json stored(next(bob));
  EXPECT_EQ(seqs_of(stored.messages()), (std::vector<uint64_t>{2, 3, 4, 5, 6, 7, 8}));
  EXPECT_TRUE(stored.boolean("recovered")) << stored.raw;

  // Nothing missed.
  Json none(recover(bob, "lobby", 8));
  EXPECT_TRUE(none.messages().empty());
  EXPECT_TRUE(none.boolean("recovered"));

  // Beyond the limit: the newest 10, recovered false with the first seq sent.
  for (int i = 9; i <= 30; ++i) say(alice, "lobby", "m" + std::to_string(i));
  log.flush();
  while (transport->pending(alice) + transport->pending(bob) != 0) {
    next(alice);
    next(bob);
  }
  send(bob, R"({"type":"leave","room":"lobby"})");
  next(alice);
  recover(bob, "lobby", 2);
  log.flush();
  Json cut(next(bob));
  std::vector<uint64_t> expected;
  for (uint64_t seq = 21; seq <= 30; ++seq) expected.push_back(seq);
  EXPECT_EQ(seqs_of(cut.messages()), expected);
  EXPECT_TRUE(cut.has("recovered"));
  EXPECT_FALSE(cut.boolean("recovered")) << cut.raw;
  EXPECT_EQ(cut.num("first_seq"), 21u);

  // From the future (the client saw seqs this log never had): nothing, recovered false.
  Json future(recover(bob, "lobby", 100));
  EXPECT_TRUE(future.messages().empty());
  EXPECT_FALSE(future.boolean("recovered"));
  EXPECT_EQ(future.num("first_seq"), 31u);
  expect_invariants();
}

// Messages in flight around a recovery read: each reaches the joiner once, in seq order.
TEST_F(DurableChatTest, RecoverySeamWithMessagesInFlight) {
  ChatConfig config;
  config.history_size = 2;
  DeferredRoomLog& log = make_log<DeferredRoomLog>();
  use(log, config);
  connect(alice, "alice");
  connect(bob, "bob");
  join(alice, "lobby");
  for (int i = 1; i <= 5; ++i) say(alice, "lobby", "m" + std::to_string(i));
  log.flush();
  while (transport->pending(alice) != 0) next(alice);
  say(alice, "lobby", "m6");                 // completes before the read
  send(bob, R"({"type":"join","room":"lobby","since_seq":1})");  // the ring (4, 5) cannot answer
  say(alice, "lobby", "m7");                 // completes after the read
  log.flush();
  std::vector<uint64_t> seen;
  while (transport->pending(bob) != 0) {
    Json reply(next(bob));
    if (reply.type() == "history") {
      for (uint64_t seq : seqs_of(reply.messages())) seen.push_back(seq);
      EXPECT_TRUE(reply.boolean("recovered"));
    } else if (reply.type() == "msg") {
      seen.push_back(reply.num("seq"));
    }
  }
  EXPECT_EQ(seen, (std::vector<uint64_t>{2, 3, 4, 5, 6, 7}));
}

TEST_F(DurableChatTest, HistoryRequestsOlderThanTheRingReadTheLog) {
  ChatConfig config;
  config.history_size = 3;
  DeferredRoomLog& log = make_log<DeferredRoomLog>();
  use(log, config);
  connect(alice, "alice");
  join(alice, "lobby");
  for (int i = 1; i <= 10; ++i) say(alice, "lobby", "m" + std::to_string(i));
  log.flush();
  while (transport->pending(alice) != 0) next(alice);
  send(alice, R"({"type":"history","room":"lobby","before_seq":5,"limit":2})");
  log.flush();
  EXPECT_EQ(seqs_of(Json(next(alice)).messages()), (std::vector<uint64_t>{3, 4}));
  send(alice, R"({"type":"history","room":"lobby","limit":2})");  // from the ring
  EXPECT_EQ(log.queued(), 0u);
  EXPECT_EQ(seqs_of(Json(next(alice)).messages()), (std::vector<uint64_t>{9, 10}));
}

class NamingHooks final : public chat::ChatHooks {
 public:
  void authorize(ConnectionId, const protocol::HttpRequest& request, chat::ChatAuthDecision& decision) override {
    if (request.query.substr(0, 5) == "user=") decision.user = std::string(request.query.substr(5));
  }
};

TEST_F(DurableChatTest, DirectMessagesAreStoredAndTheirHistoryNeedsAVerifiedName) {
  NamingHooks hooks;
  chat::RoomLogConfig log_config;
  log_config.path = "none";
  chat::MemoryRoomLog& log = make_log<chat::MemoryRoomLog>(log_config);
  use(log, ChatConfig{}, &hooks);
  std::string storage;
  ASSERT_EQ(app->on_upgrade(alice, request_with(storage, "/chat?user=alice", {})).status, 101);
  app->on_open(alice);
  ASSERT_EQ(Json(next(alice)).type(), "welcome");
  connect(bob, "bob");
  send(alice, R"({"type":"dm","to":"bob","text":"one","id":"d1"})");
  send(bob, R"({"type":"dm","to":"alice","text":"two","id":"d2"})");
  Json ack1(next(alice));
  EXPECT_EQ(ack1.num("seq"), 1u);
  Json dm2(next(alice));
  EXPECT_EQ(dm2.type(), "dm");
  EXPECT_EQ(dm2.num("seq"), 2u);  // one conversation, one seq
  EXPECT_EQ(Json(next(bob)).num("seq"), 1u);
  EXPECT_EQ(Json(next(bob)).num("seq"), 2u);
  // bob said hello: anyone could have claimed that name, so no DM history for him.
  send(bob, R"({"type":"history","with":"alice","id":"h1"})");
  expect_error(bob, "rejected", "h1");
  // alice was named by the hook: verified.
  send(alice, R"({"type":"history","with":"bob"})");
  Json history(next(alice));
  EXPECT_EQ(history.type(), "history") << history.raw;
  EXPECT_EQ(history.str("with"), "bob");
  std::vector<Json::Item> items = history.messages();
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].from, "alice");
  EXPECT_EQ(items[1].text, "two");
}

}  // namespace
}  // namespace parley_test
