#include "tools/process_cpu.h"

#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdint>

namespace tools {
namespace {

TEST(ProcessCpu, ParsesUtimePlusStime) {
  uint64_t ticks = 0;
  ASSERT_TRUE(parse_stat_cpu_ticks(
      "17783 (cat) R 17779 17779 8366 0 -1 4194304 100 0 0 0 25 17 0 0 20 0 1 0 662492 3133440 408\n", ticks));
  EXPECT_EQ(ticks, 42u);
  // The command name may hold spaces and parentheses: fields count from the last ')'.
  ASSERT_TRUE(parse_stat_cpu_ticks("9 (a) b (c) S 1 1 1 0 -1 0 0 0 0 0 1000 234 0 0 20 0 1 0", ticks));
  EXPECT_EQ(ticks, 1234u);
}

TEST(ProcessCpu, RejectsMalformedText) {
  uint64_t ticks = 5;
  EXPECT_FALSE(parse_stat_cpu_ticks("", ticks));
  EXPECT_FALSE(parse_stat_cpu_ticks("1 cat R 1 1 1 0 -1 0 0 0 0 0 1 2", ticks));       // no ')'
  EXPECT_FALSE(parse_stat_cpu_ticks("1 (cat) R 1 1 1 0 -1 0 0 0 0 0 1", ticks));        // cut short
  EXPECT_FALSE(parse_stat_cpu_ticks("1 (cat) R 1 1 1 0 -1 0 0 0 0 0 x 2 0", ticks));    // not a number
  EXPECT_EQ(ticks, 5u);
}

TEST(ProcessCpu, ReadsALiveProcessAndNotAMissingOne) {
  uint64_t first = 0, second = 0;
  ASSERT_TRUE(process_cpu_ns(getpid(), first));
  ASSERT_TRUE(process_cpu_ns(getpid(), second));
  EXPECT_GE(second, first);
  EXPECT_FALSE(process_cpu_ns(0x7ffffff0, first));
}

}  // namespace
}  // namespace tools
