// chat::FlatMap against std::unordered_map (default std::hash) for the two key kinds the chat
// core uses: room-name-like strings of 8-24 characters, and 64-bit ids. Values are uint32_t.
//
// Every benchmark times a batch of operations itself (UseManualTime) so that building and
// destroying maps stays out of the measurement; the `ns_per_op` counter is the figure to read.
// The clock is this thread's CPU time: the benchmark machines' cores are shared, and time spent
// preempted by another process says nothing about the map.
// `heap_bytes_per_key` (insert benchmarks) is the malloc'd growth per key while building the map,
// long keys' string buffers included, which both maps pay alike.
#include <malloc.h>
#include <time.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <benchmark/benchmark.h>

#include "chat/flat_map.h"

namespace {

constexpr size_t kSizes[] = {1'000, 100'000, 1'000'000};
constexpr size_t kMaxSize = 1'000'000;
// Lookups per timed batch: long enough that two CPU-clock reads cost < 0.2 ns per lookup.
constexpr size_t kLookupBatch = 4096;

// Distinct keys: the first kMaxSize are inserted (a prefix of n for size n), the rest are misses.
template <class Key>
const std::vector<Key>& all_keys();

template <>
const std::vector<std::string>& all_keys<std::string>() {
  static const std::vector<std::string> keys = [] {
    static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789-_";
    std::mt19937_64 random(20240501);
    std::unordered_set<std::string> seen;
    std::vector<std::string> out;
    out.reserve(2 * kMaxSize);
    while (out.size() < 2 * kMaxSize) {
      std::string key(8 + random() % 17, ' ');
      for (char& c : key) c = kAlphabet[random() % (sizeof(kAlphabet) - 1)];
      if (seen.insert(key).second) out.push_back(std::move(key));
    }
    return out;
  }();
  return keys;
}

template <>
const std::vector<uint64_t>& all_keys<uint64_t>() {
  static const std::vector<uint64_t> keys = [] {
    std::mt19937_64 random(20240502);
    std::unordered_set<uint64_t> seen;
    std::vector<uint64_t> out;
    out.reserve(2 * kMaxSize);
    while (out.size() < 2 * kMaxSize) {
      const uint64_t key = random();
      if (seen.insert(key).second) out.push_back(key);
    }
    return out;
  }();
  return keys;
}

// The n inserted keys, copied in a shuffled order: lookups read their probe keys sequentially
// (as from a receive buffer) while the map sees them in an order unrelated to insertion.
template <class Key>
std::vector<Key> shuffled_present(size_t n) {
  const auto& keys = all_keys<Key>();
  std::vector<Key> out(keys.begin(), keys.begin() + static_cast<std::ptrdiff_t>(n));
  std::shuffle(out.begin(), out.end(), std::mt19937_64(n));
  return out;
}

template <class Key>
std::vector<Key> absent(size_t n) {
  const auto& keys = all_keys<Key>();
  const auto first = keys.begin() + static_cast<std::ptrdiff_t>(kMaxSize);
  return std::vector<Key>(first, first + static_cast<std::ptrdiff_t>(n));
}

template <class Key, class Value>
const Value* lookup(const std::unordered_map<Key, Value>& map, const Key& key) {
  const auto it = map.find(key);
  return it == map.end() ? nullptr : &it->second;
}

template <class Key, class Value>
const Value* lookup(const chat::FlatMap<Key, Value>& map, const Key& key) {
  return map.find(key);
}

template <class Map, class Key>
void fill(Map& map, size_t n) {
  const auto& keys = all_keys<Key>();
  for (size_t i = 0; i < n; ++i) map.try_emplace(keys[i], static_cast<uint32_t>(i));
}

void report(benchmark::State& state, double total_ns, size_t ops) {
  state.counters["ns_per_op"] = total_ns / static_cast<double>(ops);
  state.SetItemsProcessed(static_cast<int64_t>(ops));
}

double cpu_now_ns() {
  timespec now;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) * 1e9 + static_cast<double>(now.tv_nsec);
}

double elapsed_ns(double start) { return cpu_now_ns() - start; }

template <class Map, class Key>
void bench_lookup(benchmark::State& state, bool hit) {
  const size_t n = static_cast<size_t>(state.range(0));
  Map map;
  fill<Map, Key>(map, n);
  const std::vector<Key> probes = hit ? shuffled_present<Key>(n) : absent<Key>(n);
  size_t next = 0;
  size_t found = 0;
  size_t ops = 0;
  double total_ns = 0;
  for (auto _ : state) {
    const double start = cpu_now_ns();
    for (size_t i = 0; i < kLookupBatch; ++i) {
      const uint32_t* value = lookup(map, probes[next]);
      benchmark::DoNotOptimize(value);
      found += value != nullptr;
      if (++next == n) next = 0;
    }
    const double ns = elapsed_ns(start);
    state.SetIterationTime(ns * 1e-9);
    total_ns += ns;
    ops += kLookupBatch;
  }
  if (found != (hit ? ops : 0)) state.SkipWithError("lookup result does not match the key set");
  report(state, total_ns, ops);
}

template <class Map, class Key>
void bench_lookup_hit(benchmark::State& state) {
  bench_lookup<Map, Key>(state, true);
}

template <class Map, class Key>
void bench_lookup_miss(benchmark::State& state) {
  bench_lookup<Map, Key>(state, false);
}

// Inserts n new keys into an empty map, growth included (no reserve), copying each key in.
template <class Map, class Key>
void bench_insert(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  const auto& keys = all_keys<Key>();
  {
    // uordblks misses mmap-served blocks (large tables); hblkhd counts those.
    const auto heap_in_use = [] {
      const struct mallinfo2 info = mallinfo2();
      return info.uordblks + info.hblkhd;
    };
    const size_t before = heap_in_use();
    Map map;
    fill<Map, Key>(map, n);
    state.counters["heap_bytes_per_key"] =
        static_cast<double>(heap_in_use() - before) / static_cast<double>(n);
  }
  size_t ops = 0;
  double total_ns = 0;
  for (auto _ : state) {
    Map map;
    const double start = cpu_now_ns();
    for (size_t i = 0; i < n; ++i) map.try_emplace(keys[i], static_cast<uint32_t>(i));
    const double ns = elapsed_ns(start);
    benchmark::DoNotOptimize(map);
    state.SetIterationTime(ns * 1e-9);
    total_ns += ns;
    ops += n;
  }
  report(state, total_ns, ops);
}

// Erases all n keys of a full map, in an order unrelated to insertion.
template <class Map, class Key>
void bench_erase(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  const std::vector<Key> victims = shuffled_present<Key>(n);
  size_t ops = 0;
  double total_ns = 0;
  for (auto _ : state) {
    Map map;
    fill<Map, Key>(map, n);
    size_t erased = 0;
    const double start = cpu_now_ns();
    for (const Key& key : victims) erased += map.erase(key);
    const double ns = elapsed_ns(start);
    state.SetIterationTime(ns * 1e-9);
    if (erased != n) state.SkipWithError("erase missed keys");
    total_ns += ns;
    ops += n;
  }
  report(state, total_ns, ops);
}

template <class Key>
void register_key_kind(const std::string& kind) {
  using Flat = chat::FlatMap<Key, uint32_t>;
  using Std = std::unordered_map<Key, uint32_t>;
  struct Case {
    const char* op;
    void (*flat)(benchmark::State&);
    void (*standard)(benchmark::State&);
  };
  const Case cases[] = {
      {"lookup_hit", &bench_lookup_hit<Flat, Key>, &bench_lookup_hit<Std, Key>},
      {"lookup_miss", &bench_lookup_miss<Flat, Key>, &bench_lookup_miss<Std, Key>},
      {"insert", &bench_insert<Flat, Key>, &bench_insert<Std, Key>},
      {"erase", &bench_erase<Flat, Key>, &bench_erase<Std, Key>},
  };
  for (const Case& c : cases) {
    for (size_t n : kSizes) {
      const std::string prefix = "flat_map/" + kind + "/" + c.op + "/";
      benchmark::RegisterBenchmark((prefix + "FlatMap").c_str(), c.flat)
          ->Arg(static_cast<int64_t>(n))
          ->UseManualTime();
      benchmark::RegisterBenchmark((prefix + "unordered_map").c_str(), c.standard)
          ->Arg(static_cast<int64_t>(n))
          ->UseManualTime();
    }
  }
}

[[maybe_unused]] const bool kRegistered = [] {
  register_key_kind<std::string>("string");
  register_key_kind<uint64_t>("u64");
  return true;
}();

}  // namespace
