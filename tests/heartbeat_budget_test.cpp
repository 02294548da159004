// The heartbeat budget (protocol/heartbeat_budget.h) and how parleyd shares it among workers
// (--max-pings-per-second, chat/parleyd_options.h).
#include "protocol/heartbeat_budget.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "chat/parleyd_options.h"

namespace {

using protocol::HeartbeatBudget;

TEST(HeartbeatBudget, UnderTheBudgetThePeriodIsTheConfiguredOne) {
  HeartbeatBudget budget(30000, 1000);  // 30,000 connections at 30 s need exactly 1000/s
  EXPECT_EQ(budget.effective_ms(), 30000u);
  EXPECT_EQ(budget.period_for(0), 30000u);
  EXPECT_EQ(budget.period_for(30000), 30000u);
  EXPECT_FALSE(budget.stretching());
  EXPECT_FALSE(budget.take_change());
}

TEST(HeartbeatBudget, OverTheBudgetThePeriodStretchesToConnectionsOverBudget) {
  HeartbeatBudget budget(30000, 1000);
  EXPECT_EQ(budget.period_for(30001), 30001u);  // ceil(30,001,000 / 1000) ms
  EXPECT_TRUE(budget.stretching());
  EXPECT_TRUE(budget.take_change());
  EXPECT_FALSE(budget.take_change()) << "reported once per change";
  EXPECT_EQ(budget.period_for(1'000'000), 1'000'000u);  // a million at 1000/s: 1000 s
  EXPECT_EQ(budget.effective_ms(), 1'000'000u);
  EXPECT_FALSE(budget.take_change());
}

TEST(HeartbeatBudget, StopsStretchingOnlyBelowNinetyPercentOfTheBudget) {
  HeartbeatBudget budget(1000, 100);  // 100 connections at 1 s need 100/s
  EXPECT_EQ(budget.period_for(150), 1500u);
  EXPECT_TRUE(budget.take_change());
  // Between 90% and 100% of the budget: still "stretching", at the configured period.
  EXPECT_EQ(budget.period_for(95), 1000u);
  EXPECT_TRUE(budget.stretching());
  EXPECT_EQ(budget.period_for(101), 1010u);
  EXPECT_FALSE(budget.take_change()) << "no flapping at the edge";
  EXPECT_EQ(budget.period_for(89), 1000u);
  EXPECT_FALSE(budget.stretching());
  EXPECT_TRUE(budget.take_change());
}

TEST(HeartbeatBudget, ZeroMeansUnlimitedAndPeriodsAreCappedAtADay) {
  HeartbeatBudget unlimited(100, 0);
  EXPECT_EQ(unlimited.period_for(10'000'000), 100u);
  EXPECT_FALSE(unlimited.stretching());
  HeartbeatBudget tiny(86'400'000, 1);
  EXPECT_EQ(tiny.period_for(1'000'000'000), HeartbeatBudget::kMaxPeriodMs);
}

TEST(HeartbeatBudget, ParleydSharesTheBudgetAmongWorkers) {
  chat::ParleydOptions options;
  std::string error;
  ASSERT_TRUE(chat::parse_parleyd_options({"--workers", "4"}, options, error)) << error;
  EXPECT_EQ(options.max_pings_per_second, 0u) << "auto by default";
  EXPECT_EQ(chat::worker_ping_budget(options, 2), 2 * chat::kPingsPerCpuPerSecond / 4);
  EXPECT_EQ(chat::worker_ping_budget(options, 0), chat::kPingsPerCpuPerSecond / 4) << "unknown CPUs: one";
  ASSERT_TRUE(chat::parse_parleyd_options({"--workers", "3", "--max-pings-per-second", "1000"}, options, error))
      << error;
  EXPECT_EQ(options.max_pings_per_second, 1000u);
  EXPECT_EQ(chat::worker_ping_budget(options, 64), 333u);
  ASSERT_TRUE(chat::parse_parleyd_options({"--workers", "8", "--max-pings-per-second", "2"}, options, error));
  EXPECT_EQ(chat::worker_ping_budget(options, 1), 1u) << "never 0, which would mean unlimited";
  chat::ParleydOptions bad;
  EXPECT_FALSE(chat::parse_parleyd_options({"--max-pings-per-second", "-1"}, bad, error));
  EXPECT_NE(error.find("--max-pings-per-second"), std::string::npos) << error;
  EXPECT_NE(chat::parleyd_usage().find("--max-pings-per-second"), std::string::npos);
}

}  // namespace
