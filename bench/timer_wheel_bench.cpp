// Timer wheel costs: arming and disarming, moving an armed timer (the heartbeat push on
// activity), and advance() with up to a million armed timers, to show that a tick costs the
// timers due, not the timers armed.
#include "reactor/timer_wheel.h"

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace {

using reactor::TimerNode;
using reactor::TimerWheel;

constexpr uint64_t kTickMs = 10;
constexpr uint64_t kHourMs = 3600 * 1000;
constexpr uint64_t kDayMs = 24 * kHourMs;

// xorshift64: cheap enough not to show up next to a 5 ns schedule.
struct Random {
  uint64_t state = 0x9E3779B97F4A7C15ull;
  uint64_t next() {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  }
};

std::vector<uint64_t> random_delays(size_t count, uint64_t min_ms, uint64_t max_ms) {
  Random random;
  std::vector<uint64_t> delays(count);
  for (uint64_t& delay : delays) delay = min_ms + random.next() % (max_ms - min_ms + 1);
  return delays;
}

void ignore_expiry(void*, TimerNode*) {}

// Fills `wheel` with `count` timers that stay far in the future for the whole run; expiring
// ones re-arm just as far, so a run long enough to reach them is still measured fairly.
struct FarTimers {
  static void on_expire(void* context, TimerNode* node) {
    static_cast<FarTimers*>(context)->wheel->schedule(node, 10000 * 365 * kDayMs);
  }
  TimerWheel* wheel = nullptr;
  std::vector<TimerNode> nodes;
};

void BM_TimerWheelScheduleCancel(benchmark::State& state) {
  TimerWheel wheel(0, &ignore_expiry, nullptr);
  const std::vector<uint64_t> delays = random_delays(4096, 1, kHourMs);
  std::vector<TimerNode> nodes(delays.size());
  size_t i = 0;
  for (auto _ : state) {
    wheel.schedule(&nodes[i], delays[i]);
    wheel.cancel(&nodes[i]);
    i = (i + 1) & (delays.size() - 1);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TimerWheelScheduleCancel);

// Moving an armed timer, with `range(0)` armed: what each pong or message costs a connection.
void BM_TimerWheelReschedule(benchmark::State& state) {
  const size_t armed = static_cast<size_t>(state.range(0));
  TimerWheel wheel(0, &ignore_expiry, nullptr);
  const std::vector<uint64_t> delays = random_delays(armed, 1000, 60 * 1000);
  std::vector<TimerNode> nodes(armed);
  for (size_t j = 0; j < armed; ++j) wheel.schedule(&nodes[j], delays[j]);
  const std::vector<uint64_t> moves = random_delays(4096, 1000, 60 * 1000);
  Random random;
  size_t i = 0;
  for (auto _ : state) {
    wheel.schedule(&nodes[random.next() % armed], moves[i]);
    i = (i + 1) & (moves.size() - 1);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["armed"] = static_cast<double>(wheel.size());
}
BENCHMARK(BM_TimerWheelReschedule)->Arg(1000)->Arg(1000000);

// One tick per iteration with `range(0)` timers armed days ahead and 16 short timers that
// re-arm themselves 1 to 16 ticks out, so one or two are due per tick. The time per advance
// should not move with the number armed.
struct ShortTimers {
  static void on_expire(void* context, TimerNode* node) {
    auto* self = static_cast<ShortTimers*>(context);
    self->wheel->schedule(node, kTickMs * (1 + self->random.next() % 16));
  }
  TimerWheel* wheel = nullptr;
  Random random;
};

struct MixedExpiry {
  static void on_expire(void* context, TimerNode* node) {
    auto* self = static_cast<MixedExpiry*>(context);
    if (node >= self->far.nodes.data() && node < self->far.nodes.data() + self->far.nodes.size()) {
      FarTimers::on_expire(&self->far, node);
    } else {
      ShortTimers::on_expire(&self->near, node);
    }
  }
  FarTimers far;
  ShortTimers near;
};

void BM_TimerWheelAdvanceTickFewDue(benchmark::State& state) {
  const size_t armed = static_cast<size_t>(state.range(0));
  MixedExpiry expiry;
  TimerWheel wheel(0, &MixedExpiry::on_expire, &expiry);
  expiry.far.wheel = &wheel;
  expiry.near.wheel = &wheel;
  expiry.far.nodes = std::vector<TimerNode>(armed);
  const std::vector<uint64_t> far_delays = random_delays(armed, 10 * kDayMs, 20 * kDayMs);
  for (size_t j = 0; j < armed; ++j) wheel.schedule(&expiry.far.nodes[j], far_delays[j]);
  std::vector<TimerNode> near(16);
  for (size_t j = 0; j < near.size(); ++j) wheel.schedule(&near[j], kTickMs * (1 + j));
  uint64_t now = 0;
  size_t fired = 0;
  for (auto _ : state) {
    now += kTickMs;
    fired += wheel.advance(now);
  }
  state.counters["armed"] = static_cast<double>(wheel.size());
  state.counters["due_per_tick"] =
      benchmark::Counter(static_cast<double>(fired) / static_cast<double>(state.iterations()));
}
BENCHMARK(BM_TimerWheelAdvanceTickFewDue)->Arg(0)->Arg(1000)->Arg(100000)->Arg(1000000);

// The realistic load: `range(0)` idle connections each pinged every 30 s (re-armed on expiry),
// one tick per iteration, so every tick fires range(0)/3000 timers and cascades its share of
// the rest. Reported per expiry, which should stay flat as the count grows.
struct Heartbeat {
  static void on_expire(void* context, TimerNode* node) {
    static_cast<Heartbeat*>(context)->wheel->schedule(node, 30 * 1000);
  }
  TimerWheel* wheel = nullptr;
};

void BM_TimerWheelHeartbeat(benchmark::State& state) {
  const size_t armed = static_cast<size_t>(state.range(0));
  Heartbeat heartbeat;
  TimerWheel wheel(0, &Heartbeat::on_expire, &heartbeat);
  heartbeat.wheel = &wheel;
  std::vector<TimerNode> nodes(armed);
  const std::vector<uint64_t> delays = random_delays(armed, 1, 30 * 1000);
  for (size_t j = 0; j < armed; ++j) wheel.schedule(&nodes[j], delays[j]);
  uint64_t now = 0;
  size_t fired = 0;
  for (auto _ : state) {
    now += kTickMs;
    fired += wheel.advance(now);
  }
  state.SetItemsProcessed(static_cast<int64_t>(fired));
  state.counters["armed"] = static_cast<double>(wheel.size());
}
BENCHMARK(BM_TimerWheelHeartbeat)->Arg(20000)->Arg(1000000);

// A clock jump of an hour per iteration over `range(0)` timers armed far beyond it: the wheel
// steps over the empty stretch instead of walking 360,000 ticks.
void BM_TimerWheelClockJumpHour(benchmark::State& state) {
  const size_t armed = static_cast<size_t>(state.range(0));
  FarTimers far;
  TimerWheel wheel(0, &FarTimers::on_expire, &far);
  far.wheel = &wheel;
  far.nodes = std::vector<TimerNode>(armed);
  const std::vector<uint64_t> delays = random_delays(armed, 10000 * 365 * kDayMs, 10001 * 365 * kDayMs);
  for (size_t j = 0; j < armed; ++j) wheel.schedule(&far.nodes[j], delays[j]);
  uint64_t now = 0;
  for (auto _ : state) {
    now += kHourMs;
    benchmark::DoNotOptimize(wheel.advance(now));
  }
  state.counters["armed"] = static_cast<double>(wheel.size());
}
BENCHMARK(BM_TimerWheelClockJumpHour)->Arg(0)->Arg(1000000);

}  // namespace
