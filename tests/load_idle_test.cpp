// parley-load's idle scenario: how its options map onto the idle holder's and how the holder's
// counters read in parley-load's terms. The holder itself is tested in idle_holder_test.cpp, and
// the whole scenario against parleyd in load_integration_test.cpp.
#include "tools/load_idle.h"

#include <gtest/gtest.h>

namespace tools {
namespace {

TEST(LoadIdle, OptionsMapOntoTheHolder) {
  LoadOptions options;
  options.scenario = Scenario::kIdle;
  options.url_text = "ws://127.0.0.1:9001/chat";
  ASSERT_TRUE(parse_ws_url(options.url_text, options.url));
  options.connections = 30'000;
  options.processes = 2;
  options.ramp = 3000;
  options.duration_s = 10;
  options.warmup_s = 2;
  options.sources = 50;
  const WorkerPlan plan = plan_worker(options, 1, 2, 0);
  const IdleOptions idle = idle_options_for(options, plan);
  EXPECT_EQ(idle.url.port, 9001);
  EXPECT_EQ(idle.url.path, "/chat");
  EXPECT_EQ(idle.connections, 15'000u);
  EXPECT_EQ(idle.rate, 1500u);              // this worker's share of --ramp
  EXPECT_DOUBLE_EQ(idle.duration_s, 12);    // the warmup is the first part of the hold
  EXPECT_EQ(idle.sources, 50u);
  EXPECT_TRUE(idle.reconnect);
  EXPECT_LE(idle.report_interval_s, 0.1);   // a stop signal is seen quickly
  options.ramp = 0;  // as fast as the holder's cap on pending connects allows
  EXPECT_GE(idle_options_for(options, plan_worker(options, 0, 2, 0)).rate, 1'000'000u);
}

TEST(LoadIdle, CountersReadAsLoadCounters) {
  IdleCounters start;
  start.open = 100;
  start.attempts = 100;
  start.pings = 40;
  start.lost = 1;
  start.reconnected = 1;
  IdleCounters end = start;
  end.open = 98;
  end.attempts = 106;
  end.failed = 2;
  end.lost = 5;
  end.reconnected = 3;
  end.pings = 340;
  const LoadCounters c = idle_counters(start, end, 100);
  EXPECT_EQ(c.open_connections, 98u);
  EXPECT_EQ(c.connects_started, 106u);
  EXPECT_EQ(c.upgrades, 103u);  // still open, or lost
  EXPECT_EQ(c.lost, 4u);        // after the warmup only
  EXPECT_EQ(c.reconnects, 2u);
  EXPECT_EQ(c.pings, 300u);
  EXPECT_EQ(c.errors[static_cast<size_t>(ErrorKind::kConnect)], 2u);
  EXPECT_EQ(c.errors[static_cast<size_t>(ErrorKind::kClosed)], 5u);  // lost at any time
  EXPECT_EQ(c.errors[static_cast<size_t>(ErrorKind::kTimeout)], 2u);  // not open at the end
  EXPECT_EQ(idle_counters(end, end, 98).error_total(), 7u);
  IdleCounters clean;
  clean.open = clean.attempts = 10;
  EXPECT_EQ(idle_counters(IdleCounters{}, clean, 10).error_total(), 0u);
}

}  // namespace
}  // namespace tools
