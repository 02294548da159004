// Presence in big rooms end to end (issue 18, docs/protocol.md "Presence in big rooms"): a real
// parleyd and 150 clients in one room. The first member keeps the member list from `joined`
// (the first 100) and batched `members` events (the rest, on parleyd's 50 ms timer), and must
// end with every name; `who` pages cover the room exactly once, in order.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "tests/support/chat_test_support.h"
#include "tests/support/parleyd_process.h"

namespace parley_test {
namespace {

constexpr int kMembers = 150;

std::string member_name(int i) { return "m" + std::to_string(1000 + i); }

// Applies one presence event to `members`; counts the `members` events in `batches`.
void apply(const Json& event, std::set<std::string>& members, int& batches) {
  if (event.type() == "joined") members.insert(event.str("user"));
  if (event.type() == "left") members.erase(event.str("user"));
  if (event.type() != "members") return;
  ++batches;
  simdjson::dom::array array;
  ASSERT_EQ(event.root["joined"].get_array().get(array), simdjson::SUCCESS) << event.raw;
  for (simdjson::dom::element name : array) members.emplace(std::string_view(name.get_string().value_unsafe()));
  ASSERT_EQ(event.root["left"].get_array().get(array), simdjson::SUCCESS) << event.raw;
  for (simdjson::dom::element name : array) members.erase(std::string(std::string_view(name.get_string().value_unsafe())));
}

TEST(BigRoomIntegration, MembersAreToldInBatchesAndWhoPagesTheRoom) {
  ParleydProcess server({"--rate-limit", "0"});
  ASSERT_TRUE(server.ok()) << server.error();
  std::vector<std::unique_ptr<ChatClient>> clients;
  for (int i = 0; i < kMembers; ++i) {
    auto client = std::make_unique<ChatClient>();
    ASSERT_TRUE(client->connect(server.port())) << client->ws().error();
    client->hello(member_name(i));
    client->join("big");
    clients.push_back(std::move(client));
  }
  std::set<std::string> expected;
  for (int i = 0; i < kMembers; ++i) expected.insert(member_name(i));

  // No who yet: the batches must come on their own (the timer), until the list is complete.
  ChatClient& first = *clients[0];
  std::set<std::string> members{member_name(0)};
  int batches = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (members != expected && std::chrono::steady_clock::now() < deadline) {
    std::string raw = first.recv();
    if (raw.empty()) break;
    apply(Json(raw), members, batches);
  }
  EXPECT_EQ(members, expected);
  // 50 joins over the threshold (the 101st to the 150th member), told in batches of one or more
  // (how many per batch depends on how fast the joins came): never more events than joins.
  EXPECT_GE(batches, 1);
  EXPECT_LE(batches, kMembers - 100);

  // A member that left is told too (batched: the room is over 100).
  ASSERT_TRUE(clients.back()->send(R"({"type":"leave","room":"big"})"));
  expected.erase(member_name(kMembers - 1));
  // The who flushes the pending batch before answering: the leave comes first.
  ASSERT_TRUE(first.send(R"({"type":"who","room":"big","limit":60})"));
  std::vector<std::string> paged;
  std::string after;
  for (int page = 0; page < 10; ++page) {
    Json reply(first.recv());
    if (reply.type() != "who") {
      apply(reply, members, batches);
      continue;
    }
    EXPECT_EQ(reply.num("count"), static_cast<uint64_t>(kMembers - 1));
    std::vector<std::string> users = reply.users();
    EXPECT_TRUE(std::is_sorted(users.begin(), users.end()));
    if (!users.empty()) {
      EXPECT_GT(users.front(), after);
    }
    paged.insert(paged.end(), users.begin(), users.end());
    if (!reply.has("next")) break;
    after = reply.str("next");
    ASSERT_TRUE(first.send(R"({"type":"who","room":"big","limit":60,"after":")" + after + R"("})"));
  }
  EXPECT_EQ(members, expected);
  EXPECT_EQ(paged, std::vector<std::string>(expected.begin(), expected.end()));
}

}  // namespace
}  // namespace parley_test
