// parleyd's durable-history options (issue 14): --store, --sync, --history-keep,
// --recovery-limit, --dedup-window, and how they meet --workers.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "chat/parleyd_options.h"

namespace {

struct Parsed {
  bool ok = false;
  chat::ParleydOptions options;
  std::string error;
};

Parsed parse(const std::vector<std::string>& args) {
  Parsed parsed;
  parsed.ok = chat::parse_parleyd_options(args, parsed.options, parsed.error);
  return parsed;
}

TEST(DurableOptionsTest, Defaults) {
  Parsed parsed = parse({});
  ASSERT_TRUE(parsed.ok) << parsed.error;
  EXPECT_EQ(parsed.options.store, "parley.db");
  EXPECT_FALSE(parsed.options.sync_full);
  EXPECT_EQ(parsed.options.history_keep, 10000u);
  EXPECT_EQ(parsed.options.recovery_limit, 1000u);
  EXPECT_EQ(parsed.options.dedup_window_minutes, 10u);
}

TEST(DurableOptionsTest, Values) {
  Parsed parsed = parse({"--store", "/tmp/x.db", "--sync", "full", "--history-keep", "0", "--recovery-limit", "5",
                         "--dedup-window", "60"});
  ASSERT_TRUE(parsed.ok) << parsed.error;
  EXPECT_EQ(parsed.options.store, "/tmp/x.db");
  EXPECT_TRUE(parsed.options.sync_full);
  EXPECT_EQ(parsed.options.history_keep, 0u);
  EXPECT_EQ(parsed.options.recovery_limit, 5u);
  EXPECT_EQ(parsed.options.dedup_window_minutes, 60u);
  EXPECT_EQ(parse({"--store", "none"}).options.store, "none");
  EXPECT_FALSE(parse({"--sync", "normal"}).options.sync_full);
}

TEST(DurableOptionsTest, BadValuesNameTheOption) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--sync", "sometimes"}, {"--store", ""}, {"--store"}, {"--recovery-limit", "0"},
           {"--dedup-window", "0"}, {"--history-keep", "-1"}, {"--dedup-window", "99999"}}) {
    Parsed parsed = parse(args);
    EXPECT_FALSE(parsed.ok) << args[0];
    EXPECT_NE(parsed.error.find(args[0]), std::string::npos) << parsed.error;
  }
}

TEST(DurableOptionsTest, WorkersUseMemoryUnlessAStoreIsGiven) {
  Parsed workers = parse({"--workers", "4"});
  ASSERT_TRUE(workers.ok) << workers.error;
  EXPECT_EQ(workers.options.store, "none");
  Parsed both = parse({"--workers", "4", "--store", "x.db"});
  EXPECT_FALSE(both.ok);
  EXPECT_NE(both.error.find("--store none"), std::string::npos) << both.error;
  EXPECT_TRUE(parse({"--workers", "4", "--store", "none"}).ok);
}

TEST(DurableOptionsTest, HelpListsThem) {
  std::string usage = chat::parleyd_usage();
  for (const char* option : {"--store", "--sync", "--history-keep", "--recovery-limit", "--dedup-window"}) {
    EXPECT_NE(usage.find(option), std::string::npos) << option;
  }
  EXPECT_NE(usage.find("kill -9"), std::string::npos);
  EXPECT_NE(usage.find("power loss"), std::string::npos);
}

}  // namespace
