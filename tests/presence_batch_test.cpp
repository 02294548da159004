// Presence in big rooms (issue 18, chat_presence.cpp): joins and leaves of a room over
// presence_batch_above members are told as one `members` event per batch, on the loop's timer;
// the order guarantee (a batch goes before any other event of its room); names only up to
// presence_names_max, counts spaced by the room's size; the other nodes' members in the count;
// and the paged `who`. In process, against the recording transport, with a
// real EventLoop driving the batch timer.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "reactor/event_loop.h"
#include "reactor/timer_wheel.h"
#include "tests/support/chat_test_support.h"

namespace parley_test {
namespace {

// The names of a `members` event's "joined" or "left" list.
std::vector<std::string> names_of(const Json& json, const char* key) {
  std::vector<std::string> out;
  simdjson::dom::array array;
  if (!json.ok || json.root[key].get_array().get(array) != simdjson::SUCCESS) return out;
  for (simdjson::dom::element element : array) out.emplace_back(std::string_view(element.get_string().value_unsafe()));
  return out;
}

class PresenceBatchTest : public ChatAppFixture {
 protected:
  PresenceBatchTest() : PresenceBatchTest([](ChatConfig&) {}) {}
  // `adjust` changes the config before the app is made (the loop keeps the first app's wheel,
  // so a test that runs the loop cannot recreate the app).
  explicit PresenceBatchTest(void (*adjust)(ChatConfig&)) {
    EXPECT_EQ(loop.open(), 0);
    loop.refresh_now();  // batches are stamped with the loop's clock
    ChatConfig config;
    config.presence_batch_above = 2;
    config.presence_names_max = 4;
    config.presence_batch_ms = 50;
    config.resume_window_ms = 60000;  // a drop (1006) holds the session: away, then back
    adjust(config);
    recreate(config);
    app->set_loop_clock(&loop);
  }
  ~PresenceBatchTest() override { app.reset(); }

  ConnectionId user(uint32_t i) { return make_id(100 + i); }
  std::string name(uint32_t i) { return "u" + std::to_string(i); }
  // Connects users [from, to) and joins them to `room`, consuming their welcome and history.
  void fill(uint32_t from, uint32_t to, std::string_view room = "big") {
    for (uint32_t i = from; i < to; ++i) {
      connect(user(i), name(i));
      join(user(i), room);
    }
  }
  // Runs the loop for `ms` (the batch timer fires inside), then returns.
  void run_for(uint64_t ms) {
    reactor::TimerNode stop;
    reactor::TimerWheel wheel(loop.refresh_now(), [](void* context, reactor::TimerNode*) {
      static_cast<reactor::EventLoop*>(context)->stop();
    }, &loop, 1);
    loop.add_timer_wheel(&wheel);
    wheel.schedule(&stop, ms);
    ASSERT_EQ(loop.run(), 0);
    wheel.cancel(&stop);
    // The loop keeps the wheel's address: a second run_for() would use a dead wheel.
    ASSERT_FALSE(ran_) << "run_for() runs the loop once per test";
    ran_ = true;
  }

  void clear_inboxes() { transport->inbox.clear(); }

  reactor::EventLoop loop;
  bool ran_ = false;
};

TEST_F(PresenceBatchTest, SmallRoomKeepsOneJoinedEventPerJoin) {
  fill(0, 2);
  Json joined(next(user(0)));
  EXPECT_EQ(joined.type(), "joined") << joined.raw;
  EXPECT_EQ(joined.str("user"), "u1");
  expect_quiet(user(1));  // the joiner is not told of itself
}

TEST_F(PresenceBatchTest, BigRoomJoinsGoOutAsOneMembersEventPerTick) {
  fill(0, 2);
  ASSERT_EQ(Json(next(user(0))).type(), "joined");
  fill(2, 4);  // the room has 3, then 4 members: over presence_batch_above (2)
  // Nothing yet: the batch waits for the timer.
  for (uint32_t i = 0; i < 4; ++i) expect_quiet(user(i));
  run_for(300);
  for (uint32_t i = 0; i < 4; ++i) {
    Json members(next(user(i)));
    ASSERT_EQ(members.type(), "members") << members.raw;
    EXPECT_EQ(members.str("room"), "big");
    EXPECT_EQ(names_of(members, "joined"), (std::vector<std::string>{"u2", "u3"}));
    EXPECT_TRUE(names_of(members, "left").empty());
    EXPECT_EQ(members.num("count"), 4u);
    expect_quiet(user(i));  // one event for both joins
  }
}

TEST_F(PresenceBatchTest, JoinAndLeaveInOneBatchCancelOut) {
  fill(0, 3);
  app->flush_presence();
  clear_inboxes();
  fill(3, 5);
  send(user(3), R"({"type":"leave","room":"big"})");
  app->flush_presence();
  Json members(next(user(0)));
  ASSERT_EQ(members.type(), "members") << members.raw;
  EXPECT_EQ(names_of(members, "joined"), std::vector<std::string>{"u4"});
  EXPECT_TRUE(names_of(members, "left").empty());
  EXPECT_EQ(members.num("count"), 4u);
  clear_inboxes();
  // A leave and a rejoin of a known member cancel out too: nothing to tell.
  send(user(1), R"({"type":"leave","room":"big"})");
  join(user(1), "big");
  app->flush_presence();
  expect_quiet(user(0));
  expect_invariants();
}

// Away and back (a member's session held for resume, then resumed) go into a big room's batch
// too: a proxy restarting drops every member at once, and one `presence` event per drop to every
// member would cost the server O(N^2) frames, as joins did.
TEST_F(PresenceBatchTest, AwayAndBackInABigRoomAreBatched) {
  fill(0, 3);
  // u3 says hello by hand, to keep its resume token. 4 members: batched (over 2), and names
  // (at most 4).
  app->on_open(user(3));
  send(user(3), R"({"type":"hello","name":"u3"})");
  const std::string token = Json(next(user(3))).str("resume");
  ASSERT_FALSE(token.empty());
  join(user(3), "big");
  app->flush_presence();
  clear_inboxes();
  app->on_close(user(2), 1006);
  app->on_close(user(3), 1006);
  ASSERT_EQ(app->held_sessions(), 2u);
  expect_quiet(user(0));  // not told at once
  app->flush_presence();
  Json away(next(user(0)));
  ASSERT_EQ(away.type(), "members") << away.raw;
  EXPECT_EQ(names_of(away, "away"), (std::vector<std::string>{"u2", "u3"}));
  EXPECT_TRUE(names_of(away, "joined").empty());
  EXPECT_TRUE(names_of(away, "left").empty());
  EXPECT_EQ(away.num("count"), 4u);  // held members are still members
  expect_quiet(user(0));
  clear_inboxes();

  const ConnectionId again = make_id(300);
  app->on_open(again);
  send(again, R"({"type":"hello","name":"u3","resume":")" + token + R"("})");
  ASSERT_TRUE(Json(next(again)).boolean("resumed"));
  expect_quiet(user(0));
  app->flush_presence();
  Json back(next(user(0)));
  ASSERT_EQ(back.type(), "members") << back.raw;
  EXPECT_EQ(names_of(back, "back"), std::vector<std::string>{"u3"});
  const std::string_view raw(back.raw.data(), back.raw.size());
  EXPECT_EQ(raw.find("\"away\""), std::string_view::npos) << "an empty list is left out: " << raw;
  expect_invariants();
}

// In a small room a drop is still told at once, as before issue 18.
TEST_F(PresenceBatchTest, AwayInASmallRoomIsToldAtOnce) {
  fill(0, 2);
  clear_inboxes();
  app->on_close(user(1), 1006);
  Json away(next(user(0)));
  EXPECT_EQ(away.type(), "presence") << away.raw;
  EXPECT_EQ(away.str("status"), "away");
  EXPECT_EQ(away.str("user"), "u1");
}

TEST_F(PresenceBatchTest, PendingBatchIsToldBeforeTheJoinersMessage) {
  fill(0, 3);
  app->flush_presence();
  clear_inboxes();
  fill(3, 4);
  send(user(3), R"({"type":"msg","room":"big","text":"hi","id":"m1"})");
  Json first(next(user(0)));
  EXPECT_EQ(first.type(), "members") << first.raw;
  EXPECT_EQ(names_of(first, "joined"), std::vector<std::string>{"u3"});
  Json second(next(user(0)));
  EXPECT_EQ(second.type(), "msg") << second.raw;
  EXPECT_EQ(second.str("from"), "u3");
  clear_inboxes();
  // The typing of a user whose leave and rejoin are pending waits for the batch too.
  send(user(2), R"({"type":"leave","room":"big"})");
  join(user(2), "big");
  send(user(1), R"({"type":"leave","room":"big"})");
  send(user(2), R"({"type":"typing","room":"big","on":true})");
  Json batch(next(user(0)));
  EXPECT_EQ(batch.type(), "members") << batch.raw;
  EXPECT_EQ(names_of(batch, "left"), std::vector<std::string>{"u1"});
  EXPECT_EQ(Json(next(user(0))).type(), "typing");
}

TEST_F(PresenceBatchTest, RoomsOverTheNamesLimitGetCountsOnly) {
  fill(0, 6);  // 6 members > presence_names_max (4)
  app->flush_presence();
  std::string raw = next(user(0));
  while (Json(raw).type() == "joined") raw = next(user(0));  // u1, u2 came one by one
  Json members(raw);
  ASSERT_EQ(members.type(), "members") << raw;
  EXPECT_FALSE(members.has("joined"));
  EXPECT_EQ(members.num("joined_count"), 4u);  // u2..u5 (u2 made it 3: the first batched)
  EXPECT_EQ(members.num("left_count"), 0u);
  EXPECT_EQ(members.num("count"), 6u);
  // A closing connection leaves through the same batch.
  app->on_close(user(5), 1000);
  app->flush_presence();
  Json left(next(user(0)));
  ASSERT_EQ(left.type(), "members") << left.raw;
  EXPECT_EQ(left.num("left_count"), 1u);
  EXPECT_EQ(left.num("count"), 5u);
  // And a dropped one (held for resume: still a member) as away_count.
  app->on_close(user(4), 1006);
  app->flush_presence();
  Json away(next(user(0)));
  ASSERT_EQ(away.type(), "members") << away.raw;
  EXPECT_EQ(away.num("away_count"), 1u);
  EXPECT_EQ(away.num("left_count"), 0u);
  EXPECT_EQ(away.num("count"), 5u);
}

TEST_F(PresenceBatchTest, CountsOnlyRoomsAreToldAtMostEveryCountsInterval) {
  fill(0, 6);  // over presence_names_max (4): counts only
  clear_inboxes();
  send(user(5), R"({"type":"leave","room":"big"})");
  run_for(300);  // several batch ticks, but the batch is younger than presence_counts_ms (1 s)
  // ... unless the loop was stalled for a second (a loaded machine): then it went, as it should.
  std::string raw = next(user(0));
  if (!raw.empty()) {
    GTEST_SKIP() << "the loop ran late; the counts interval passed";
  }
  expect_quiet(user(0));
  app->flush_presence();
  Json members(next(user(0)));
  ASSERT_EQ(members.type(), "members") << members.raw;
  EXPECT_EQ(members.num("joined_count"), 3u);  // u2..u4 were still pending too
  EXPECT_EQ(members.num("left_count"), 0u);    // u5 joined and left within the batch
  EXPECT_EQ(members.num("count"), 5u);
}

TEST(CountsInterval, GrowsWithTheRoomPastTheFramesBudget) {
  EXPECT_EQ(chat::counts_interval_ms(5000, 1000, 10000), 1000u);     // within the budget: the floor
  EXPECT_EQ(chat::counts_interval_ms(10000, 1000, 10000), 1000u);
  EXPECT_EQ(chat::counts_interval_ms(100000, 1000, 10000), 10000u);  // 100,000 members: every 10 s
  EXPECT_EQ(chat::counts_interval_ms(1000000, 1000, 10000), 100000u);
  EXPECT_EQ(chat::counts_interval_ms(1000000, 1000, 0), 1000u);      // 0: no budget
}

// presence_counts_per_s 40: a counts-only room of 6 is told every 150 ms, one of 41 every 1,025.
class CountsBudgetTest : public PresenceBatchTest {
 protected:
  CountsBudgetTest() : PresenceBatchTest([](ChatConfig& config) {
    config.presence_counts_ms = 20;
    config.presence_counts_per_s = 40;
  }) {}
};

TEST_F(CountsBudgetTest, ABiggerRoomGetsItsCountsLessOften) {
  fill(0, 5, "mid");
  fill(10, 50, "big");
  app->flush_presence();
  clear_inboxes();
  auto start = std::chrono::steady_clock::now();
  loop.refresh_now();  // the batches below are stamped now, not when the fixture began
  fill(5, 6, "mid");
  fill(50, 51, "big");
  run_for(400);
  if (std::chrono::steady_clock::now() - start > std::chrono::milliseconds(900)) {
    GTEST_SKIP() << "the loop ran late; the big room's interval may have passed";
  }
  Json mid(next(user(0)));
  ASSERT_EQ(mid.type(), "members") << mid.raw;
  EXPECT_EQ(mid.str("room"), "mid");
  EXPECT_EQ(mid.num("joined_count"), 1u);
  EXPECT_EQ(mid.num("count"), 6u);
  expect_quiet(user(10));  // 41 members: not before 1,025 ms
  app->flush_presence();
  Json big(next(user(10)));
  ASSERT_EQ(big.type(), "members") << big.raw;
  EXPECT_EQ(big.num("joined_count"), 1u);
  EXPECT_EQ(big.num("count"), 41u);
}

// With --redis (chat/cluster/presence.h): the other nodes' members count in a room's size, for
// the big-room form and in `count`, from the cluster's count at a batch and each remote change.
TEST_F(PresenceBatchTest, CountsCoverTheOtherNodesMembers) {
  fill(0, 2);  // 2 here: a small room, one `joined` per join
  ASSERT_EQ(Json(next(user(0))).type(), "joined");
  app->on_room_count("big", 3);  // Redis: 3 on every node (1 elsewhere)
  app->on_room_count("nowhere", 7);  // not a room here: nothing to do
  app->on_remote_presence("big", "zed", chat::PresenceEvent::kJoined);  // 4: batched
  expect_quiet(user(0));
  app->flush_presence();
  Json members(next(user(0)));
  ASSERT_EQ(members.type(), "members") << members.raw;
  EXPECT_EQ(names_of(members, "joined"), std::vector<std::string>{"zed"});
  EXPECT_EQ(members.num("count"), 4u);
  fill(2, 3);  // 5 on every node: over presence_names_max (4)
  app->flush_presence();
  Json counts(next(user(0)));
  ASSERT_EQ(counts.type(), "members") << counts.raw;
  EXPECT_EQ(counts.num("joined_count"), 1u);
  EXPECT_EQ(counts.num("count"), 5u);
  app->on_remote_presence("big", "zed", chat::PresenceEvent::kLeft);
  app->flush_presence();
  Json left(next(user(0)));
  ASSERT_EQ(left.type(), "members") << left.raw;
  EXPECT_EQ(names_of(left, "left"), std::vector<std::string>{"zed"});
  EXPECT_EQ(left.num("count"), 4u);
  // A later count sets it right (here: 9 more elsewhere than this node had heard of).
  app->on_room_count("big", 13);
  app->on_remote_presence("big", "yan", chat::PresenceEvent::kJoined);
  app->flush_presence();
  Json more(next(user(0)));
  ASSERT_EQ(more.type(), "members") << more.raw;
  EXPECT_EQ(more.num("count"), 14u);
}

TEST_F(PresenceBatchTest, WhoTellsThePendingBatchFirstAndPages) {
  fill(0, 5);
  clear_inboxes();
  // A plain who of a small room: as before (every member, no count).
  send(user(0), R"({"type":"who","room":"big"})");
  Json batch(next(user(0)));
  EXPECT_EQ(batch.type(), "members") << batch.raw;  // the pending joins, before the list
  Json all(next(user(0)));
  ASSERT_EQ(all.type(), "who") << all.raw;
  EXPECT_EQ(all.users().size(), 5u);
  EXPECT_FALSE(all.has("count"));
  // Pages of 2 in byte order, the cursor being the last name of the page.
  send(user(0), R"({"type":"who","room":"big","limit":2})");
  Json page1(next(user(0)));
  EXPECT_EQ(page1.users(), (std::vector<std::string>{"u0", "u1"}));
  EXPECT_EQ(page1.num("count"), 5u);
  EXPECT_EQ(page1.str("next"), "u1");
  send(user(0), R"({"type":"who","room":"big","limit":2,"after":"u1"})");
  Json page2(next(user(0)));
  EXPECT_EQ(page2.users(), (std::vector<std::string>{"u2", "u3"}));
  EXPECT_EQ(page2.str("next"), "u3");
  send(user(0), R"({"type":"who","room":"big","limit":2,"after":"u3"})");
  Json page3(next(user(0)));
  EXPECT_EQ(page3.users(), std::vector<std::string>{"u4"});
  EXPECT_FALSE(page3.has("next"));
  // Bad paging fields are refused with the field named.
  send(user(0), R"({"type":"who","room":"big","limit":0})");
  expect_error(user(0), "missing_field");
  send(user(0), R"({"type":"who","room":"big","after":"not a name"})");
  expect_error(user(0), "missing_field");
}

TEST_F(PresenceBatchTest, PlainWhoOfAHugeRoomIsItsFirstPage) {
  // The joins are batched (and never told before the who): the fill costs O(members).
  const uint32_t total = ChatApp::kWhoPage + 3;
  for (uint32_t i = 0; i < total; ++i) {
    connect(user(i), "n" + std::to_string(100000 + i));
    send(user(i), R"({"type":"join","room":"huge"})");
  }
  app->flush_presence();
  clear_inboxes();
  send(user(0), R"({"type":"who","room":"huge"})");
  Json page(next(user(0)));
  ASSERT_EQ(page.type(), "who");
  std::vector<std::string> users = page.users();
  ASSERT_EQ(users.size(), ChatApp::kWhoPage);
  EXPECT_TRUE(std::is_sorted(users.begin(), users.end()));
  EXPECT_EQ(users.front(), "n100000");
  EXPECT_EQ(page.num("count"), total);
  EXPECT_EQ(page.str("next"), users.back());
  send(user(0), R"({"type":"who","room":"huge","after":")" + users.back() + R"("})");
  Json rest(next(user(0)));
  EXPECT_EQ(rest.users().size(), 3u);
  EXPECT_EQ(rest.users().back(), "n" + std::to_string(100000 + total - 1));
  EXPECT_FALSE(rest.has("next"));
}

TEST_F(PresenceBatchTest, WithoutALoopEveryChangeIsToldAtOnce) {
  ChatConfig config;
  config.presence_batch_above = 2;
  recreate(config);  // no set_loop_clock: as before issue 18
  fill(0, 4);
  std::vector<std::string> seen;
  for (std::string raw = next(user(0)); !raw.empty(); raw = next(user(0))) {
    Json json(raw);
    EXPECT_EQ(json.type(), "joined") << raw;
    seen.push_back(json.str("user"));
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"u1", "u2", "u3"}));
}

TEST_F(PresenceBatchTest, AFreedRoomDropsItsBatch) {
  ChatConfig config;
  config.presence_batch_above = 0;  // every change batched, even the first member's
  recreate(config);
  app->set_loop_clock(&loop);  // (the earlier app's wheel stays registered: the loop never runs here)
  fill(0, 1);
  app->on_close(user(0), 1000);  // the room is freed with "joined u0" pending
  EXPECT_EQ(app->rooms().size(), 0u);
  fill(10, 11);  // the room's slot and name again
  app->flush_presence();
  Json members(next(user(10)));
  ASSERT_EQ(members.type(), "members") << members.raw;
  EXPECT_EQ(names_of(members, "joined"), std::vector<std::string>{"u10"});
  EXPECT_TRUE(names_of(members, "left").empty());
  EXPECT_EQ(members.num("count"), 1u);
  expect_quiet(user(10));
  expect_invariants();
}

}  // namespace
}  // namespace parley_test
