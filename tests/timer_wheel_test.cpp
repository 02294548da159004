#include "reactor/timer_wheel.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <vector>

namespace {

using reactor::TimerNode;
using reactor::TimerWheel;

constexpr uint64_t kSecond = 1000;
constexpr uint64_t kHour = 3600 * kSecond;
constexpr uint64_t kDay = 24 * kHour;

// The owner of a node, as a connection would be.
struct Timer {
  int id = 0;
  TimerNode node;
  uint64_t deadline_ms = 0;
  int fired = 0;
  uint64_t fired_at_ms = 0;
};

Timer* owner_of(TimerNode* node) {
  return reinterpret_cast<Timer*>(reinterpret_cast<char*>(node) - offsetof(Timer, node));
}

// The time at which a timer due at `deadline_ms` fires when advance() is called every
// millisecond: the start of the first tick at or after the deadline.
uint64_t fire_time(uint64_t origin_ms, uint32_t tick_ms, uint64_t deadline_ms) {
  const uint64_t ticks = (deadline_ms - origin_ms + tick_ms - 1) / tick_ms;
  return origin_ms + ticks * tick_ms;
}

// A wheel whose callback records what fired and then runs an optional per-test hook.
struct Harness {
  Harness(uint64_t start_ms, uint32_t tick_ms)
      : origin(start_ms), tick(tick_ms), now(start_ms), wheel(start_ms, &Harness::expire, this, tick_ms) {}

  static void expire(void* context, TimerNode* node) {
    auto* self = static_cast<Harness*>(context);
    EXPECT_FALSE(node->armed());
    Timer* timer = owner_of(node);
    ++timer->fired;
    timer->fired_at_ms = self->now;
    self->order.push_back(timer);
    if (self->hook) self->hook(*timer);
  }

  void schedule(Timer& timer, uint64_t delay_ms) {
    timer.deadline_ms = now + delay_ms;
    wheel.schedule(&timer.node, delay_ms);
  }

  size_t advance_to(uint64_t t) {
    now = t;
    return wheel.advance(t);
  }

  uint64_t origin;
  uint32_t tick;
  uint64_t now;
  std::vector<Timer*> order;
  std::function<void(Timer&)> hook;
  TimerWheel wheel;
};

TEST(TimerWheelTest, NodeIsSmallAndStartsUnarmed) {
  EXPECT_LE(sizeof(TimerNode), 24u);
  TimerNode node;
  EXPECT_FALSE(node.armed());
}

TEST(TimerWheelTest, CopiedNodeStartsUnarmed) {
  Timer a;
  Harness h(0, 10);
  h.schedule(a, 100);
  TimerNode copy(a.node);
  EXPECT_FALSE(copy.armed());
  TimerNode assigned;
  assigned = a.node;
  EXPECT_FALSE(assigned.armed());
  EXPECT_TRUE(a.node.armed());
  EXPECT_EQ(h.advance_to(100), 1u);
}

TEST(TimerWheelTest, ZeroDelayFiresOnNextAdvanceEvenAtTheSameTime) {
  Timer a;
  Harness h(1005, 10);  // not on a tick boundary
  h.schedule(a, 0);
  EXPECT_TRUE(a.node.armed());
  EXPECT_EQ(h.wheel.size(), 1u);
  EXPECT_EQ(h.wheel.ms_until_next(1005), 0);
  EXPECT_EQ(h.advance_to(1005), 1u);
  EXPECT_EQ(a.fired, 1);
  EXPECT_FALSE(a.node.armed());
  EXPECT_EQ(h.wheel.size(), 0u);
  EXPECT_EQ(h.advance_to(2000), 0u);
  EXPECT_EQ(a.fired, 1);
}

// For each delay, from 1 ms to 40 days, at several tick sizes and unaligned origins: the timer
// is not fired by any advance before its deadline, even after many jumps that make it cascade,
// and fires within one tick of it when the clock then moves a millisecond at a time.
TEST(TimerWheelTest, NeverEarlyAndAtMostOneTickLate) {
  const uint64_t delays[] = {1,       5,        9,        10,        11,       99,        100,
                             639,     640,      641,      4096,      40960,    40961,     30 * kSecond,
                             10 * kSecond, kHour, 7 * kHour, kDay, 3 * kDay + 17, 40 * kDay};
  const uint64_t origins[] = {0, 7, 1'000'000'000'003};
  const uint32_t ticks[] = {1, 10, 16};
  std::mt19937_64 rng(1);
  for (uint32_t tick : ticks) {
    for (uint64_t origin : origins) {
      for (uint64_t delay : delays) {
        SCOPED_TRACE(testing::Message() << "tick " << tick << " origin " << origin << " delay " << delay);
        Timer t;
        Harness h(origin, tick);
        // Start from an arbitrary point in the wheel's turns.
        h.advance_to(origin + rng() % (5 * kDay));
        h.schedule(t, delay);
        const uint64_t deadline = t.deadline_ms;
        // Jumps of shrinking size towards the deadline, crossing level boundaries on the way.
        while (h.now + 1 < deadline) {
          const uint64_t gap = deadline - 1 - h.now;
          h.advance_to(h.now + 1 + rng() % gap);
          ASSERT_EQ(t.fired, 0) << "fired early at " << h.now;
        }
        h.advance_to(deadline - 1);
        ASSERT_EQ(t.fired, 0);
        for (uint64_t ms = deadline; ms < deadline + tick && t.fired == 0; ++ms) h.advance_to(ms);
        ASSERT_EQ(t.fired, 1);
        EXPECT_GE(t.fired_at_ms, deadline);
        EXPECT_LT(t.fired_at_ms, deadline + tick);
        EXPECT_EQ(t.fired_at_ms, fire_time(origin, tick, deadline));
      }
    }
  }
}

TEST(TimerWheelTest, DeadlinesBeyond32BitTicksWork) {
  const uint64_t delays[] = {600 * kDay, uint64_t{1} << 40, (uint64_t{1} << 47) + 12345};
  for (uint64_t delay : delays) {
    Timer t;
    Harness h(42, 1);
    h.schedule(t, delay);
    h.advance_to(42 + delay / 3);
    h.advance_to(42 + delay - 1);
    EXPECT_EQ(t.fired, 0);
    EXPECT_EQ(h.wheel.ms_until_next(h.now), 1);
    h.advance_to(42 + delay);
    EXPECT_EQ(t.fired, 1);
  }
}

TEST(TimerWheelTest, OneBigJumpFiresEverythingInDeadlineOrder) {
  std::mt19937_64 rng(2);
  std::vector<Timer> timers(5000);
  Harness h(123, 10);
  for (Timer& t : timers) h.schedule(t, 1 + rng() % (10 * kHour));
  EXPECT_EQ(h.wheel.size(), timers.size());
  EXPECT_EQ(h.advance_to(123 + 11 * kHour), timers.size());
  ASSERT_EQ(h.order.size(), timers.size());
  for (size_t i = 1; i < h.order.size(); ++i) {
    EXPECT_LE(fire_time(123, 10, h.order[i - 1]->deadline_ms), fire_time(123, 10, h.order[i]->deadline_ms));
  }
  EXPECT_EQ(h.wheel.size(), 0u);
}

TEST(TimerWheelTest, CancelBeforeExpiryPreventsFiring) {
  Timer a;
  Timer b;
  Harness h(0, 10);
  h.schedule(a, 50);
  h.schedule(b, 5 * kHour);
  h.wheel.cancel(&a.node);
  h.wheel.cancel(&b.node);
  EXPECT_FALSE(a.node.armed());
  EXPECT_FALSE(b.node.armed());
  EXPECT_EQ(h.wheel.size(), 0u);
  EXPECT_EQ(h.wheel.ms_until_next(0), -1);
  EXPECT_EQ(h.advance_to(6 * kHour), 0u);
  EXPECT_EQ(a.fired + b.fired, 0);
}

// A cancelled timer must not leave its slot marked, or the loop would wake up for nothing.
TEST(TimerWheelTest, CancelClearsTheWakeup) {
  Timer a;
  Timer b;
  Harness h(0, 10);
  h.schedule(a, 50);
  h.schedule(b, 5000);
  EXPECT_EQ(h.wheel.ms_until_next(0), 50);
  h.wheel.cancel(&a.node);
  EXPECT_GT(h.wheel.ms_until_next(0), 50);
  EXPECT_LE(h.wheel.ms_until_next(0), 5000);
  h.wheel.cancel(&b.node);
  EXPECT_EQ(h.wheel.ms_until_next(0), -1);
}

TEST(TimerWheelTest, CancelAfterExpiryAndOfUnarmedNodeIsNoOp) {
  Timer a;
  Timer never;
  Harness h(0, 10);
  h.wheel.cancel(&never.node);
  h.schedule(a, 20);
  EXPECT_EQ(h.advance_to(20), 1u);
  h.wheel.cancel(&a.node);
  h.wheel.cancel(&a.node);
  EXPECT_EQ(h.wheel.size(), 0u);
  h.schedule(a, 20);  // a fired node can be armed again
  EXPECT_EQ(h.advance_to(40), 1u);
  EXPECT_EQ(a.fired, 2);
}

TEST(TimerWheelTest, ScheduleOnArmedNodeMovesIt) {
  Timer a;
  Harness h(0, 10);
  h.schedule(a, 100);
  h.schedule(a, 500);  // later
  EXPECT_EQ(h.wheel.size(), 1u);
  EXPECT_EQ(h.advance_to(490), 0u);
  EXPECT_EQ(h.advance_to(500), 1u);
  h.schedule(a, kDay);
  h.schedule(a, 30);  // earlier, from a high level to level 0
  EXPECT_EQ(h.advance_to(530), 1u);
  EXPECT_EQ(h.advance_to(2 * kDay), 0u);
  EXPECT_EQ(a.fired, 2);
}

// The heartbeat pattern: each expiry re-arms the same node from inside the callback, counting
// from the time of the advance that fired it.
TEST(TimerWheelTest, CallbackReschedulesItself) {
  Timer ping;
  Harness h(5, 10);
  std::vector<uint64_t> fired_at;
  h.hook = [&](Timer& t) {
    fired_at.push_back(h.now);
    h.schedule(t, 30 * kSecond);
  };
  h.schedule(ping, 30 * kSecond);
  for (uint64_t ms = 5; ms <= 5 + 150 * kSecond + 50; ++ms) h.advance_to(ms);
  ASSERT_EQ(fired_at.size(), 5u);
  uint64_t armed_at = 5;
  for (uint64_t at : fired_at) {
    EXPECT_GE(at, armed_at + 30 * kSecond);
    EXPECT_LT(at, armed_at + 30 * kSecond + 10);
    armed_at = at;
  }
  EXPECT_TRUE(ping.node.armed());
  EXPECT_EQ(ping.deadline_ms, fired_at.back() + 30 * kSecond);
}

TEST(TimerWheelTest, CallbackCancelsAnotherTimerDueInTheSameTick) {
  Timer a;
  Timer b;
  Harness h(0, 10);
  h.hook = [&](Timer& t) { h.wheel.cancel(t.id == 1 ? &b.node : &a.node); };
  a.id = 1;
  b.id = 2;
  h.schedule(a, 100);
  h.schedule(b, 100);
  EXPECT_EQ(h.advance_to(100), 1u);
  EXPECT_EQ(a.fired + b.fired, 1);
  EXPECT_EQ(h.wheel.size(), 0u);
}

TEST(TimerWheelTest, CallbackCancelsAnotherTimerDueLaterInTheSameAdvance) {
  Timer a;
  Timer b;
  Timer c;
  Harness h(0, 10);
  h.hook = [&](Timer& t) {
    if (&t == &a) h.wheel.cancel(&b.node);
  };
  h.schedule(a, 100);
  h.schedule(b, kHour);  // sits on a higher level until the jump cascades it
  h.schedule(c, 2 * kHour);
  EXPECT_EQ(h.advance_to(3 * kHour), 2u);
  EXPECT_EQ(a.fired, 1);
  EXPECT_EQ(b.fired, 0);
  EXPECT_EQ(c.fired, 1);
}

TEST(TimerWheelTest, CallbackMovesAnotherDueTimerLater) {
  Timer a;
  Timer b;
  Harness h(0, 10);
  h.hook = [&](Timer& t) {
    if (&t == &a) h.schedule(b, 1000);
  };
  h.schedule(a, 100);
  h.schedule(b, 200);
  EXPECT_EQ(h.advance_to(500), 1u);
  EXPECT_EQ(b.fired, 0);
  EXPECT_TRUE(b.node.armed());
  EXPECT_EQ(h.advance_to(1499), 0u);
  EXPECT_EQ(h.advance_to(1500), 1u);
  EXPECT_EQ(b.fired_at_ms, 1500u);
}

TEST(TimerWheelTest, ZeroDelayFromCallbackWaitsForTheNextAdvance) {
  Timer a;
  Harness h(0, 10);
  h.hook = [&](Timer& t) { h.schedule(t, 0); };
  h.schedule(a, 0);
  EXPECT_EQ(h.advance_to(0), 1u);
  EXPECT_EQ(h.advance_to(0), 1u);
  EXPECT_EQ(h.advance_to(10 * kHour), 1u);
  EXPECT_EQ(a.fired, 3);
  EXPECT_TRUE(a.node.armed());
  EXPECT_EQ(h.wheel.ms_until_next(10 * kHour), 0);
  h.wheel.cancel(&a.node);
}

TEST(TimerWheelTest, CallbackMayFreeItsOwner) {
  Harness h(0, 10);
  int freed = 0;
  h.hook = [&](Timer& t) {
    delete &t;
    ++freed;
  };
  for (int i = 0; i < 100; ++i) h.schedule(*new Timer, 10 + static_cast<uint64_t>(i) * 7);
  EXPECT_EQ(h.advance_to(kHour), 100u);
  EXPECT_EQ(freed, 100);
}

TEST(TimerWheelTest, AdvanceFromInsideCallbackIsRefused) {
  Timer a;
  Timer b;
  Harness h(0, 10);
  size_t nested = 99;
  h.hook = [&](Timer&) { nested = h.wheel.advance(kHour); };
  h.schedule(a, 10);
  h.schedule(b, 100);
  EXPECT_EQ(h.advance_to(10), 1u);
  EXPECT_EQ(nested, 0u);
  EXPECT_EQ(b.fired, 0);
}

TEST(TimerWheelTest, MsUntilNextIsMinusOneWhenEmptyAndZeroWhenDue) {
  Timer a;
  Harness h(0, 10);
  EXPECT_EQ(h.wheel.ms_until_next(0), -1);
  h.schedule(a, 250);
  EXPECT_EQ(h.wheel.ms_until_next(0), 250);
  EXPECT_EQ(h.wheel.ms_until_next(100), 150);
  EXPECT_EQ(h.wheel.ms_until_next(300), 0);  // the caller's clock is past it: advance now
  h.advance_to(250);
  EXPECT_EQ(h.wheel.ms_until_next(250), -1);
}

// An event loop that sleeps exactly ms_until_next() never oversleeps the next expiry, and wakes
// early only to cascade (at most once per level per slot of far timers).
TEST(TimerWheelTest, MsUntilNextNeverPassesTheNextExpiry) {
  std::mt19937_64 rng(3);
  for (uint32_t tick : {1u, 10u, 7u}) {
    std::vector<Timer> timers(300);
    const uint64_t origin = 1'000'003;
    Harness h(origin, tick);
    std::multimap<uint64_t, Timer*> model;
    for (Timer& t : timers) {
      h.schedule(t, 1 + rng() % (2 * kDay));
      model.emplace(fire_time(origin, tick, t.deadline_ms), &t);
    }
    size_t wakeups = 0;
    while (!model.empty()) {
      const int64_t wait = h.wheel.ms_until_next(h.now);
      ASSERT_GE(wait, 0);
      const uint64_t next_fire = model.begin()->first;
      ASSERT_LE(h.now + static_cast<uint64_t>(wait), next_fire);
      h.advance_to(h.now + static_cast<uint64_t>(wait));
      ++wakeups;
      while (!model.empty() && model.begin()->first <= h.now) {
        ASSERT_EQ(model.begin()->second->fired, 1);
        model.erase(model.begin());
      }
    }
    EXPECT_EQ(h.order.size(), timers.size());
    EXPECT_EQ(h.wheel.ms_until_next(h.now), -1);
    EXPECT_LE(wakeups, timers.size() * 8);
  }
}

// A per-tick loop would take hours over 100 years of 1 ms ticks; stepping over empty slots
// makes this instant.
TEST(TimerWheelTest, HugeClockJumpSkipsEmptyTicks) {
  Timer far;
  Timer near;
  Harness h(0, 1);
  h.schedule(near, 5);
  h.schedule(far, 10 * 365 * kDay);
  EXPECT_EQ(h.advance_to(100 * 365 * kDay), 2u);
  EXPECT_EQ(near.fired, 1);
  EXPECT_EQ(far.fired, 1);
  EXPECT_EQ(h.order[0], &near);
  h.schedule(near, 1);
  EXPECT_EQ(h.advance_to(h.now + 1), 1u);
}

TEST(TimerWheelTest, ClockJumpOfHoursFiresEveryDueTimerOnce) {
  std::mt19937_64 rng(4);
  std::vector<Timer> timers(100'000);
  const uint64_t origin = 777;
  Harness h(origin, 10);
  for (Timer& t : timers) h.schedule(t, 1 + rng() % (12 * kHour));
  const uint64_t jump = origin + 6 * kHour + 3;
  const size_t fired = h.advance_to(jump);
  EXPECT_EQ(fired, h.order.size());
  for (const Timer& t : timers) {
    ASSERT_EQ(t.fired, fire_time(origin, 10, t.deadline_ms) <= jump ? 1 : 0);
  }
  EXPECT_EQ(h.wheel.size(), timers.size() - fired);
  EXPECT_EQ(h.advance_to(origin + 13 * kHour), timers.size() - fired);
  for (const Timer& t : timers) ASSERT_EQ(t.fired, 1);
  EXPECT_EQ(h.wheel.size(), 0u);
}

TEST(TimerWheelTest, ClockGoingBackwardsIsIgnored) {
  Timer a;
  Harness h(10'000, 10);
  h.schedule(a, 100);
  EXPECT_EQ(h.wheel.advance(5'000), 0u);
  EXPECT_EQ(h.wheel.advance(10'099), 0u);
  EXPECT_EQ(h.wheel.advance(10'100), 1u);
}

TEST(TimerWheelTest, DestructorLeavesNodesUnarmedWithoutCallbacks) {
  Timer a;
  Timer b;
  Timer c;
  {
    Harness h(0, 10);
    h.schedule(a, 0);
    h.schedule(b, 100);
    h.schedule(c, 30 * kDay);
    EXPECT_EQ(h.wheel.size(), 3u);
  }
  EXPECT_FALSE(a.node.armed());
  EXPECT_FALSE(b.node.armed());
  EXPECT_FALSE(c.node.armed());
  EXPECT_EQ(a.fired + b.fired + c.fired, 0);
}

// Destroying an armed node is a bug, but it must not leave the wheel pointing at freed memory
// (checked under ASan): the node unlinks itself, and the wheel copes with the emptied slot.
TEST(TimerWheelTest, DestroyingAnArmedNodeLeavesTheWheelSafe) {
  Harness h(0, 10);
  Timer keep;
  h.schedule(keep, 100);
  {
    Timer same_slot;
    Timer far;
    Timer due;
    h.schedule(same_slot, 100);
    h.schedule(far, 3 * kDay);
    h.schedule(due, 0);
  }
  EXPECT_EQ(h.advance_to(4 * kDay), 1u);
  EXPECT_EQ(keep.fired, 1);
  EXPECT_GE(h.wheel.ms_until_next(h.now), -1);
}

TEST(TimerWheelTest, SizeCountsArmedTimers) {
  std::vector<Timer> timers(10);
  Harness h(0, 10);
  for (size_t i = 0; i < timers.size(); ++i) h.schedule(timers[i], i * 100);
  EXPECT_EQ(h.wheel.size(), 10u);
  h.schedule(timers[3], 5);  // a move does not change the count
  EXPECT_EQ(h.wheel.size(), 10u);
  h.wheel.cancel(&timers[9].node);
  EXPECT_EQ(h.wheel.size(), 9u);
  h.advance_to(450);  // delays 0, 5, 100, 200, 400
  EXPECT_EQ(h.wheel.size(), 4u);
  h.advance_to(kHour);
  EXPECT_EQ(h.wheel.size(), 0u);
}

// Random schedules, moves, cancels and advances (small steps and jumps of hours), with callbacks
// that re-arm, cancel and move timers, checked against a model of deadlines after every step:
// each arming fires exactly once, never before its deadline, and by the first advance at or
// after its tick (so at most one tick late); size() and ms_until_next() agree with the model.
class Churn {
 public:
  Churn(uint64_t seed, uint64_t origin, uint32_t tick)
      : rng_(seed), origin_(origin), tick_(tick), now_(origin), timers_(2000), wheel_(origin, &Churn::expire, this, tick) {
    for (size_t i = 0; i < timers_.size(); ++i) timers_[i].id = static_cast<int>(i);
    entries_.resize(timers_.size(), model_.end());
  }

  void run(int operations) {
    for (int op = 0; op < operations; ++op) {
      const uint64_t choice = rng_() % 100;
      if (choice < 40) {
        arm(pick(), random_delay());
      } else if (choice < 55) {
        disarm(pick());
      } else {
        advance(random_step());
      }
      check(op % 97 == 0);
      if (testing::Test::HasFatalFailure()) return;
    }
    draining_ = true;
    advance(4 * kDay);
    advance(4 * kDay);
    EXPECT_TRUE(model_.empty());
    EXPECT_EQ(wheel_.size(), 0u);
    EXPECT_GT(fired_, static_cast<size_t>(operations / 10));
  }

 private:
  struct Entry {
    Timer* timer;
    uint64_t epoch;  // advance() calls begun when it was armed
  };
  using Model = std::multimap<uint64_t, Entry>;  // keyed by the time it must have fired by

  static void expire(void* context, TimerNode* node) { static_cast<Churn*>(context)->on_expire(owner_of(node)); }

  void on_expire(Timer* t) {
    auto& entry = entries_[static_cast<size_t>(t->id)];
    ASSERT_NE(entry, model_.end()) << "fired while not armed, or twice";
    ASSERT_GE(now_, t->deadline_ms) << "fired early";
    model_.erase(entry);
    entry = model_.end();
    ++fired_;
    if (draining_) return;
    const uint64_t choice = rng_() % 100;
    if (choice < 30) {
      arm(t, random_delay());
    } else if (choice < 40) {
      disarm(pick());
    } else if (choice < 50) {
      arm(pick(), random_delay());
    }
  }

  Timer* pick() { return &timers_[rng_() % timers_.size()]; }

  uint64_t random_delay() {
    const uint64_t choice = rng_() % 100;
    if (choice < 5) return 0;
    if (choice < 50) return 1 + rng_() % 100;
    if (choice < 90) return 1 + rng_() % (60 * kSecond);
    if (choice < 98) return 1 + rng_() % (3 * kHour);
    return 1 + rng_() % (3 * kDay);
  }

  uint64_t random_step() {
    const uint64_t choice = rng_() % 1000;
    if (choice < 100) return 0;
    if (choice < 600) return rng_() % (3 * tick_);
    if (choice < 990) return rng_() % 5000;
    return rng_() % (5 * kHour);
  }

  void arm(Timer* t, uint64_t delay) {
    auto& entry = entries_[static_cast<size_t>(t->id)];
    if (entry != model_.end()) model_.erase(entry);
    t->deadline_ms = now_ + delay;
    const uint64_t due = delay == 0 ? now_ : fire_time(origin_, tick_, t->deadline_ms);
    entry = model_.emplace(due, Entry{t, advances_});
    wheel_.schedule(&t->node, delay);
  }

  void disarm(Timer* t) {
    auto& entry = entries_[static_cast<size_t>(t->id)];
    if (entry != model_.end()) model_.erase(entry);
    entry = model_.end();
    wheel_.cancel(&t->node);
  }

  void advance(uint64_t step) {
    now_ += step;
    ++advances_;
    wheel_.advance(now_);
    // All that was due must have fired, except delay-0 timers armed by this advance's callbacks.
    for (auto it = model_.begin(); it != model_.end() && it->first <= now_; ++it) {
      ASSERT_EQ(it->second.epoch, advances_) << "timer " << it->second.timer->id << " due at " << it->first
                                             << " not fired by " << now_;
      ASSERT_EQ(it->first, now_);
    }
  }

  void check(bool check_every_node) {
    ASSERT_EQ(wheel_.size(), model_.size());
    const int64_t wait = wheel_.ms_until_next(now_);
    if (model_.empty()) {
      ASSERT_EQ(wait, -1);
      return;
    }
    ASSERT_GE(wait, 0);
    ASSERT_LE(now_ + static_cast<uint64_t>(wait), std::max(model_.begin()->first, now_));
    if (!check_every_node) return;
    for (const Timer& t : timers_) {
      ASSERT_EQ(t.node.armed(), entries_[static_cast<size_t>(t.id)] != model_.end());
    }
  }

  std::mt19937_64 rng_;
  uint64_t origin_;
  uint32_t tick_;
  uint64_t now_;
  uint64_t advances_ = 0;
  size_t fired_ = 0;
  bool draining_ = false;  // callbacks stop re-arming so the wheel can empty
  std::vector<Timer> timers_;
  Model model_;
  std::vector<Model::iterator> entries_;
  TimerWheel wheel_;
};

// set_now() moves the clock schedule() counts from without firing what is due; advance() then
// fires it, and lateness_ms() tells each callback how far past its deadline tick it fires.
TEST(TimerWheelTest, SetNowCountsNewDelaysFromTheFreshReadingAndLatenessIsReported) {
  Harness h(1000, 10);
  Timer due;
  Timer fresh;
  std::vector<uint64_t> lateness;
  h.hook = [&](Timer&) { lateness.push_back(h.wheel.lateness_ms()); };
  h.schedule(due, 100);  // deadline tick at 1100
  h.wheel.set_now(1350);
  h.now = 1350;
  EXPECT_EQ(due.fired, 0) << "set_now must not fire";
  h.schedule(fresh, 30);  // from 1350: due at 1380, not at 1030
  h.wheel.set_now(1200);  // an earlier reading is ignored
  EXPECT_EQ(h.advance_to(1350), 1u);
  EXPECT_EQ(due.fired, 1);
  EXPECT_EQ(fresh.fired, 0);
  EXPECT_EQ(h.advance_to(1379), 0u);
  EXPECT_EQ(h.advance_to(1385), 1u);
  EXPECT_EQ(fresh.fired, 1);
  ASSERT_EQ(lateness.size(), 2u);
  EXPECT_EQ(lateness[0], 250u);  // due at 1100, fired at 1350
  EXPECT_EQ(lateness[1], 5u);    // due at 1380, fired at 1385
  EXPECT_EQ(h.wheel.lateness_ms(), 0u) << "outside a callback";
}

TEST(TimerWheelTest, ChurnMatchesReferenceModelTick10) { Churn(11, 0, 10).run(100'000); }
TEST(TimerWheelTest, ChurnMatchesReferenceModelTick1) { Churn(12, 1'700'000'000'123, 1).run(100'000); }
TEST(TimerWheelTest, ChurnMatchesReferenceModelTick7) { Churn(13, 5, 7).run(100'000); }

}  // namespace
