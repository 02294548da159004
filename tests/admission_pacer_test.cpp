// AdmissionPacer (protocol/admission_pacer.h): when pacing starts and stops, how the pace adapts
// to a server that stays behind, and the token bucket that spaces accepts.
#include "protocol/admission_pacer.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace {

using protocol::AdmissionPacer;

TEST(AdmissionPacer, UnpacedUntilTheServerFallsBehind) {
  AdmissionPacer pacer;
  for (uint64_t t = 0; t < 5000; t += 10) pacer.observe(t, false);
  EXPECT_FALSE(pacer.pacing());
  EXPECT_EQ(pacer.rate(), 0u);
  EXPECT_EQ(pacer.allowance(5000), UINT32_MAX);
  EXPECT_FALSE(pacer.take_change());
  pacer.observe(5000, true);
  EXPECT_TRUE(pacer.pacing());
  EXPECT_EQ(pacer.rate(), AdmissionPacer::kInitialRate);
  EXPECT_TRUE(pacer.take_change());
  EXPECT_FALSE(pacer.take_change());
}

TEST(AdmissionPacer, AllowsABurstThenTheRate) {
  AdmissionPacer pacer;
  pacer.observe(1000, true);
  EXPECT_EQ(pacer.allowance(1000), AdmissionPacer::kBurst);
  pacer.take(AdmissionPacer::kBurst);
  EXPECT_EQ(pacer.allowance(1000), 0u);
  // 1024/s is one accept per ~0.98 ms: the next one is 1 ms away.
  EXPECT_EQ(pacer.ms_until_next(), 1u);
  EXPECT_EQ(pacer.allowance(1010), 10u);  // 10 ms at 1024/s = 10.24 accepts
  pacer.take(10);
  // The bucket never holds more than a burst, however long the loop slept.
  EXPECT_EQ(pacer.allowance(60'000), AdmissionPacer::kBurst);
}

TEST(AdmissionPacer, HalvesWhileBehindDownToTheFloorThenRecoversAndStops) {
  AdmissionPacer pacer;
  uint64_t t = 0;
  pacer.observe(t, true);
  (void)pacer.take_change();
  uint32_t expected = AdmissionPacer::kInitialRate;
  // Behind in every window: the pace halves once per window, never below the floor.
  for (int window = 0; window < 8; ++window) {
    for (int i = 0; i < 10; ++i) pacer.observe(t += 100, true);
    expected = expected / 2 < AdmissionPacer::kMinRate ? AdmissionPacer::kMinRate : expected / 2;
    EXPECT_EQ(pacer.rate(), expected) << "window " << window;
  }
  EXPECT_EQ(pacer.rate(), AdmissionPacer::kMinRate);
  EXPECT_FALSE(pacer.take_change());
  // At 64/s the next accept after an empty bucket is 16 ms away.
  (void)pacer.allowance(t);
  pacer.take(AdmissionPacer::kBurst);
  EXPECT_EQ(pacer.ms_until_next(), 16u);
  // Caught up: the pace doubles per clean window back to the initial rate, and one more clean
  // window ends the pacing.
  int windows = 0;
  while (pacer.pacing() && windows < 20) {
    for (int i = 0; i < 10; ++i) pacer.observe(t += 100, false);
    ++windows;
  }
  EXPECT_FALSE(pacer.pacing());
  EXPECT_EQ(windows, 5);  // 64 -> 128 -> 256 -> 512 -> 1024 -> off
  EXPECT_TRUE(pacer.take_change());
}

TEST(AdmissionPacer, OneLateIterationInAWindowKeepsThePaceDown) {
  AdmissionPacer pacer;
  uint64_t t = 0;
  pacer.observe(t, true);
  for (int i = 0; i < 9; ++i) pacer.observe(t += 100, false);
  pacer.observe(t += 50, true);
  pacer.observe(t += 100, false);  // the window ends here: it saw one late iteration
  EXPECT_EQ(pacer.rate(), AdmissionPacer::kInitialRate / 2);
}

}  // namespace
