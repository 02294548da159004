// How parley-load splits a run over its worker processes (plan_worker). The worker loop itself
// runs against a real parleyd in load_integration_test.cpp.
#include "tools/load_worker.h"

#include <gtest/gtest.h>

namespace tools {
namespace {

TEST(PlanWorker, ChatUsersAreNumberedAcrossWorkers) {
  LoadOptions options;
  options.scenario = Scenario::kChat;
  options.connections = 10;
  options.rate = 100;
  uint64_t next_user = 0;
  uint64_t rate = 0;
  for (uint32_t index = 0; index < 3; ++index) {
    const WorkerPlan plan = plan_worker(options, index, 3, 42);
    EXPECT_EQ(plan.connections, index == 0 ? 4u : 3u);  // remainders to the first workers
    EXPECT_EQ(plan.first_user, next_user) << index;     // every user has one global index
    EXPECT_EQ(plan.publishers, 0u);                     // every user talks; none is a publisher
    EXPECT_EQ(plan.subscribers, plan.connections);      // and every user counts at the barrier
    EXPECT_EQ(plan.start_ns, 42u);
    next_user += plan.connections;
    rate += plan.rate;
  }
  EXPECT_EQ(next_user, 10u);
  EXPECT_EQ(rate, 100u);
}

TEST(PlanWorker, BroadcastPublishersAndRateGoToTheFirstWorker) {
  LoadOptions options;
  options.scenario = Scenario::kBroadcast;
  options.connections = 5;
  options.publishers = 2;
  options.rate = 9;
  const WorkerPlan first = plan_worker(options, 0, 2, 0);
  const WorkerPlan second = plan_worker(options, 1, 2, 0);
  EXPECT_EQ(first.subscribers, 3u);
  EXPECT_EQ(first.publishers, 2u);
  EXPECT_EQ(first.connections, 5u);
  EXPECT_EQ(first.rate, 9u);
  EXPECT_EQ(second.subscribers, 2u);
  EXPECT_EQ(second.publishers, 0u);
  EXPECT_EQ(second.rate, 0u);
}

}  // namespace
}  // namespace tools
