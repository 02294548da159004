// RedisPresence's batched joins and leaves (issue 18, chat/cluster/redis_presence.h): a node's
// changes to one room within batch_ms reach Redis as ONE published event (not one per join),
// other nodes hear every change in order, each batch tells the room's count on every node, and
// the room's member hash ends right. In process,
// two RedisPresence nodes and a raw subscriber on one loop, against a private redis-server.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "chat/cluster/redis_link.h"
#include "chat/cluster/redis_presence.h"
#include "reactor/event_loop.h"
#include "tests/support/redis_process.h"

namespace {

using parley_test::RedisProcess;
using parley_test::run_until;

// Records what a node hears from the others.
class Recorder final : public chat::PresenceClient {
 public:
  void on_claimed(uint64_t, std::string_view, chat::ClaimResult) override {}
  void on_remote_presence(std::string_view room, std::string_view user, chat::PresenceEvent event) override {
    const char* kinds[] = {"+", "-", "t", "s"};
    heard.push_back(std::string(room) + ":" + kinds[static_cast<int>(event)] + std::string(user));
  }
  void on_members(uint64_t, bool ok, const std::vector<std::string>& remote) override {
    members_ok = ok;
    members = remote;
    answered = true;
  }
  void on_room_count(std::string_view room, size_t members) override {
    counts.push_back(std::string(room) + ":" + std::to_string(members));
  }
  std::vector<std::string> heard;
  std::vector<std::string> counts;  // "room:members" as told
  std::vector<std::string> members;
  bool members_ok = false;
  bool answered = false;
};

TEST(RedisPresenceBatch, ChangesWithinABatchArePublishedOnceAndHeardInOrder) {
  RedisProcess redis;
  ASSERT_TRUE(redis.ok()) << redis.error();
  reactor::EventLoop loop;
  ASSERT_EQ(loop.open(), 0);
  chat::RedisEndpoint endpoint;
  endpoint.port = redis.port();
  chat::PresenceTiming timing;
  timing.batch_ms = 50;
  chat::RedisPresence a(endpoint, loop, timing);
  chat::RedisPresence b(endpoint, loop, timing);
  Recorder heard_by_a, heard_by_b;
  a.set_client(&heard_by_a);
  b.set_client(&heard_by_b);

  // A raw subscriber counts the events published on the room's channel.
  chat::RedisLinkConfig config;
  config.endpoint = endpoint;
  chat::RedisLink raw(loop, config);
  std::vector<std::string> published;
  int subscribed = 0;
  // Batch events only: a node whose link just came up also syncs its members (`j`/`l` events).
  raw.set_on_message([&](std::string_view, std::string_view payload) {
    if (payload.find("\tb\t") != std::string_view::npos) published.emplace_back(payload);
  });
  raw.set_on_subscribed([&](std::string_view) { ++subscribed; });
  raw.set_on_up([&] { raw.subscribe("parley:p:big"); });
  raw.start();

  ASSERT_TRUE(run_until(loop, [&] { return subscribed == 1; }, 5000));
  // Both nodes up and stamped (their first beat, whose reply syncs their members), and a margin
  // for those replies: the changes below are then the only ones.
  chat::RedisLink query(loop, config);  // (a subscriber link takes no other commands)
  query.start();
  long long nodes = 0;
  bool asking = false;
  ASSERT_TRUE(run_until(loop, [&] {
    if (!asking && query.connected()) {
      asking = true;
      query.command({"ZCARD", "parley:nodes"}, [&](redisReply* reply) {
        if (reply != nullptr && reply->type == REDIS_REPLY_INTEGER) nodes = reply->integer;
        asking = false;
      });
    }
    return nodes == 2;
  }, 5000));
  run_until(loop, [] { return false; }, 300);
  // B joins the room (and so subscribes to it): its one change is one published batch.
  b.joined("big", "zed");
  ASSERT_TRUE(run_until(loop, [&] { return published.size() == 1; }, 5000));
  EXPECT_NE(published[0].find("\tb\t+zed"), std::string::npos) << published[0];
  // B's SUBSCRIBE travels on its own connection: probe until B hears A.
  for (int attempt = 0; attempt < 50 && heard_by_b.heard.empty(); ++attempt) {
    a.joined("big", "probe");
    run_until(loop, [&] { return !heard_by_b.heard.empty(); }, 200);
    if (heard_by_b.heard.empty()) a.left("big", "probe");
  }
  // (It may also hear an earlier attempt's leave, in the same batch as the last join.)
  ASSERT_FALSE(heard_by_b.heard.empty());
  ASSERT_TRUE(run_until(loop, [&] { return heard_by_b.heard.back() == "big:+probe"; }, 5000));
  ASSERT_TRUE(run_until(loop, [&] { return !published.empty() && published.back().find("+probe") != std::string::npos; }, 5000));
  published.clear();
  heard_by_a.heard.clear();
  heard_by_b.heard.clear();
  heard_by_a.counts.clear();
  heard_by_b.counts.clear();

  // Three changes in one loop iteration: one batch, one publish.
  a.joined("big", "amy");
  a.joined("big", "bea");
  a.left("big", "amy");
  a.left("big", "probe");
  ASSERT_TRUE(run_until(loop, [&] { return heard_by_b.heard.size() == 4; }, 5000)) << heard_by_b.heard.size();
  EXPECT_EQ(heard_by_b.heard, (std::vector<std::string>{"big:+amy", "big:+bea", "big:-amy", "big:-probe"}));
  ASSERT_TRUE(run_until(loop, [&] { return !published.empty(); }, 5000));
  ASSERT_EQ(published.size(), 1u);
  // ... ending with the room's members on every node after it (zed on B, bea on A): what a
  // big room's `count` says. A hears it in its script's reply, B in the event.
  EXPECT_TRUE(published[0].ends_with("\tb\t+amy\t+bea\t-amy\t-probe\t#2")) << published[0];
  EXPECT_TRUE(heard_by_a.heard.empty()) << "a node does not hear its own events";
  ASSERT_TRUE(run_until(loop, [&] { return !heard_by_a.counts.empty(); }, 5000));
  EXPECT_EQ(heard_by_a.counts, std::vector<std::string>{"big:2"});
  EXPECT_EQ(heard_by_b.counts, std::vector<std::string>{"big:2"});

  // Typing goes after the batch of its room (same link, in order), never before the join.
  a.joined("big", "cat");
  a.typing("big", "cat", true);
  ASSERT_TRUE(run_until(loop, [&] { return heard_by_b.heard.size() == 6; }, 5000));
  EXPECT_EQ(heard_by_b.heard[4], "big:+cat");
  EXPECT_EQ(heard_by_b.heard[5], "big:tcat");
  EXPECT_EQ(heard_by_b.counts.back(), "big:3");

  // The room's hash holds exactly the net members.
  ASSERT_TRUE(b.members("big", 1));
  ASSERT_TRUE(run_until(loop, [&] { return heard_by_b.answered; }, 5000));
  EXPECT_TRUE(heard_by_b.members_ok);
  std::vector<std::string> remote = heard_by_b.members;
  std::sort(remote.begin(), remote.end());
  EXPECT_EQ(remote, (std::vector<std::string>{"bea", "cat"}));
}

}  // namespace
