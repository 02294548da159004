// Tests for chat::FlatMap: contents must always match std::unordered_map's, entries must be
// constructed and destroyed exactly once, and erase must not let tombstones grow the table.
#include "chat/flat_map.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace chat {
namespace {

using StringMap = FlatMap<std::string, int>;

std::string key_name(size_t i) { return "room-" + std::to_string(i); }

// A key long enough that std::string must allocate: lookups by view must not build one.
std::string long_name(size_t i) {
  return "a-room-name-long-enough-to-allocate-" + std::to_string(i);
}

// Every load the map may hold stays under 7/8 and capacity stays a power of two.
template <class Map>
void expect_shape(const Map& map) {
  const size_t capacity = map.capacity();
  if (capacity == 0) {
    EXPECT_EQ(map.size(), 0u);
    EXPECT_EQ(map.memory_bytes(), 0u);
    return;
  }
  EXPECT_GE(capacity, 16u);
  EXPECT_EQ(capacity & (capacity - 1), 0u) << capacity;
  EXPECT_LE(map.size() * 8, capacity * 7) << map.size() << " in " << capacity;
  EXPECT_GE(map.memory_bytes(), capacity);
}

template <class Map, class Reference>
void expect_same_contents(Map& map, const Reference& reference) {
  ASSERT_EQ(map.size(), reference.size());
  for (const auto& [key, value] : reference) {
    const auto* found = map.find(key);
    ASSERT_NE(found, nullptr) << "missing key";
    ASSERT_EQ(*found, value);
  }
  size_t visited = 0;
  for (auto it = map.begin(); it != map.end(); ++it) {
    const auto found = reference.find(it.key());
    ASSERT_NE(found, reference.end()) << "extra key";
    ASSERT_EQ(it.value(), found->second);
    ++visited;
  }
  ASSERT_EQ(visited, reference.size());
}

TEST(FlatMapTest, EmptyMapAllocatesNothingAndFindsNothing) {
  StringMap map;
  EXPECT_TRUE(map.empty());
  EXPECT_EQ(map.size(), 0u);
  EXPECT_EQ(map.capacity(), 0u);
  EXPECT_EQ(map.memory_bytes(), 0u);
  EXPECT_EQ(map.find("lobby"), nullptr);
  EXPECT_FALSE(map.contains("lobby"));
  EXPECT_FALSE(map.erase("lobby"));
  EXPECT_EQ(map.begin(), map.end());
  map.clear();
  map.shrink_to_fit();
  EXPECT_EQ(map.capacity(), 0u);
}

TEST(FlatMapTest, BasicOperations) {
  StringMap map;
  auto [value, inserted] = map.try_emplace("lobby", 1);
  ASSERT_TRUE(inserted);
  EXPECT_EQ(*value, 1);
  EXPECT_EQ(map.size(), 1u);
  EXPECT_EQ(map.capacity(), 16u);

  // A present key is left alone and nothing is constructed.
  auto [again, inserted_again] = map.try_emplace("lobby", 2);
  EXPECT_FALSE(inserted_again);
  EXPECT_EQ(again, value);
  EXPECT_EQ(*again, 1);

  map["general"] = 7;
  EXPECT_EQ(map["general"], 7);
  EXPECT_EQ(map["new"], 0);  // value-initialized
  EXPECT_EQ(map.size(), 3u);

  EXPECT_TRUE(map.contains("lobby"));
  EXPECT_TRUE(map.contains("general"));
  EXPECT_FALSE(map.contains("random"));
  ASSERT_NE(map.find("general"), nullptr);
  *map.find("general") = 8;
  EXPECT_EQ(*map.find("general"), 8);

  auto [assigned, was_new] = map.insert_or_assign("general", 9);
  EXPECT_FALSE(was_new);
  EXPECT_EQ(*assigned, 9);
  auto [fresh, fresh_new] = map.insert_or_assign("fresh", 10);
  EXPECT_TRUE(fresh_new);
  EXPECT_EQ(*fresh, 10);

  EXPECT_TRUE(map.erase("general"));
  EXPECT_FALSE(map.erase("general"));
  EXPECT_EQ(map.find("general"), nullptr);
  EXPECT_EQ(map.size(), 3u);

  const StringMap& view = map;
  ASSERT_NE(view.find("lobby"), nullptr);
  EXPECT_EQ(*view.find("lobby"), 1);

  const size_t capacity = map.capacity();
  map.clear();
  EXPECT_TRUE(map.empty());
  EXPECT_EQ(map.capacity(), capacity);  // clear keeps the table for reuse
  EXPECT_EQ(map.find("lobby"), nullptr);
  map["lobby"] = 3;
  EXPECT_EQ(map.size(), 1u);
  EXPECT_EQ(*map.find("lobby"), 3);
}

TEST(FlatMapTest, HashIsTheSameForEveryStringType) {
  const Xxh3Hash hash;
  const std::string owned = "room-name";
  EXPECT_EQ(hash(owned), hash(std::string_view("room-name")));
  EXPECT_EQ(hash(owned), hash("room-name"));
  EXPECT_EQ(hash(std::string_view()), hash(std::string()));
  EXPECT_NE(hash("room-a"), hash("room-b"));
  // Integers hash by value, so equal values of different types land on the same probe path.
  EXPECT_EQ(hash(-1), hash(uint64_t{0xFFFFFFFFFFFFFFFF}));
  EXPECT_EQ(hash(uint32_t{42}), hash(uint64_t{42}));
  EXPECT_NE(hash(uint64_t{1}), hash(uint64_t{2}));
}

TEST(FlatMapTest, IntegerHashSpreadsTagsAndGroups) {
  // Sequential ids must not share tags or groups: count distinct low 7 bits and group indexes.
  const Xxh3Hash hash;
  std::unordered_set<uint64_t> tags;
  std::vector<int> groups(1024, 0);
  for (uint64_t id = 0; id < 16384; ++id) {
    const uint64_t h = hash(id);
    tags.insert(h & 0x7F);
    ++groups[(h >> 7) & 1023];
  }
  EXPECT_EQ(tags.size(), 128u);
  for (int count : groups) {
    EXPECT_GT(count, 0);
    EXPECT_LT(count, 48);  // mean 16
  }
}

// A string key that counts how often it is built, with its own transparent hash and equality:
// proves lookups by std::string_view never materialize a key.
struct CountedKey {
  static inline int constructed = 0;
  explicit CountedKey(std::string_view text) : text(text) { ++constructed; }
  CountedKey(const CountedKey& other) : text(other.text) { ++constructed; }
  CountedKey(CountedKey&& other) noexcept = default;
  std::string text;
};
struct CountedKeyHash {
  using is_transparent = void;
  uint64_t operator()(const CountedKey& key) const noexcept { return Xxh3Hash{}(key.text); }
  uint64_t operator()(std::string_view text) const noexcept { return Xxh3Hash{}(text); }
};
struct CountedKeyEq {
  using is_transparent = void;
  bool operator()(const CountedKey& a, std::string_view b) const noexcept { return a.text == b; }
  bool operator()(const CountedKey& a, const CountedKey& b) const noexcept {
    return a.text == b.text;
  }
};

TEST(FlatMapTest, HeterogeneousLookupBuildsNoKey) {
  FlatMap<CountedKey, int, CountedKeyHash, CountedKeyEq> map;
  for (size_t i = 0; i < 100; ++i) {
    map.try_emplace(std::string_view(long_name(i)), static_cast<int>(i));
  }
  EXPECT_EQ(CountedKey::constructed, 100);

  CountedKey::constructed = 0;
  for (size_t i = 0; i < 200; ++i) {
    const std::string name = long_name(i);
    const int* value = map.find(std::string_view(name));
    if (i < 100) {
      ASSERT_NE(value, nullptr);
      EXPECT_EQ(*value, static_cast<int>(i));
    } else {
      EXPECT_EQ(value, nullptr);
    }
    EXPECT_EQ(map.contains(std::string_view(name)), i < 100);
  }
  // try_emplace of a present key builds nothing either; erase by view neither.
  EXPECT_FALSE(map.try_emplace(std::string_view(long_name(5)), 0).second);
  EXPECT_TRUE(map.erase(std::string_view(long_name(5))));
  EXPECT_EQ(CountedKey::constructed, 0);
  // A new key is built exactly once, from the view (relocation on growth moves, never copies).
  EXPECT_TRUE(map.try_emplace(std::string_view(long_name(5)), 5).second);
  EXPECT_EQ(CountedKey::constructed, 1);
}

TEST(FlatMapTest, StringKeysLookedUpByViewAndLiteral) {
  StringMap map;
  for (size_t i = 0; i < 1000; ++i) map.try_emplace(long_name(i), static_cast<int>(i));
  const std::string buffer = "xx" + long_name(321) + "yy";
  const std::string_view inside = std::string_view(buffer).substr(2, buffer.size() - 4);
  ASSERT_NE(map.find(inside), nullptr);
  EXPECT_EQ(*map.find(inside), 321);
  EXPECT_EQ(map.find(std::string_view(buffer)), nullptr);
  // try_emplace from a view builds the std::string only when the key is new.
  EXPECT_FALSE(map.try_emplace(inside, 0).second);
  EXPECT_TRUE(map.try_emplace(std::string_view("brand-new-room-from-a-view"), 1).second);
  EXPECT_EQ(*map.find("brand-new-room-from-a-view"), 1);
  EXPECT_EQ(map["brand-new-room-from-a-view"], 1);
  EXPECT_TRUE(map.erase(std::string_view("brand-new-room-from-a-view")));
}

TEST(FlatMapTest, NonTransparentHashConvertsArgumentsToKey) {
  // Without is_transparent, lookups take Key itself, so a literal converts to std::string.
  FlatMap<std::string, int, std::hash<std::string>, std::equal_to<std::string>> map;
  for (int i = 0; i < 500; ++i) map.try_emplace(key_name(static_cast<size_t>(i)), i);
  map["literal"] = 7;
  EXPECT_EQ(*map.find("literal"), 7);
  EXPECT_TRUE(map.contains(key_name(499)));
  EXPECT_FALSE(map.contains("absent"));
  EXPECT_TRUE(map.erase("literal"));
  EXPECT_EQ(map.size(), 500u);
}

TEST(FlatMapTest, MovedKeyIsConsumedOnlyOnInsert) {
  StringMap map;
  std::string key = long_name(1);
  EXPECT_TRUE(map.try_emplace(std::move(key), 1).second);
  std::string again = long_name(1);
  EXPECT_FALSE(map.try_emplace(std::move(again), 2).second);
  EXPECT_EQ(again, long_name(1));  // NOLINT(bugprone-use-after-move): not consumed when present
}

TEST(FlatMapTest, MoveOnlyValues) {
  FlatMap<std::string, std::unique_ptr<int>> map;
  for (int i = 0; i < 5000; ++i) {
    auto [value, inserted] = map.try_emplace(key_name(i), std::make_unique<int>(i));
    ASSERT_TRUE(inserted);
    ASSERT_EQ(**value, i);
  }
  // Entries survived many relocations by move.
  for (int i = 0; i < 5000; ++i) {
    auto* value = map.find(key_name(i));
    ASSERT_NE(value, nullptr);
    ASSERT_EQ(**value, i);
  }
  for (int i = 0; i < 5000; i += 2) ASSERT_TRUE(map.erase(key_name(i)));
  map.insert_or_assign(key_name(1), std::make_unique<int>(-1));
  EXPECT_EQ(**map.find(key_name(1)), -1);
  map[key_name(2)] = std::make_unique<int>(-2);
  EXPECT_EQ(**map.find(key_name(2)), -2);

  FlatMap<std::string, std::unique_ptr<int>> moved(std::move(map));
  EXPECT_EQ(map.size(), 0u);  // NOLINT(bugprone-use-after-move): moved-from is specified empty
  EXPECT_EQ(map.capacity(), 0u);
  EXPECT_EQ(moved.size(), 2501u);
  EXPECT_EQ(**moved.find(key_name(3)), 3);
  map = std::move(moved);
  EXPECT_EQ(map.size(), 2501u);
  map.shrink_to_fit();
  EXPECT_EQ(map.capacity(), 4096u);
  EXPECT_EQ(**map.find(key_name(4999)), 4999);
  // Reusable after being moved from.
  moved["x"] = std::make_unique<int>(1);
  EXPECT_EQ(**moved.find("x"), 1);
}

TEST(FlatMapTest, GrowthAcrossManySizes) {
  std::vector<size_t> sizes;
  for (size_t n = 0; n <= 300; ++n) sizes.push_back(n);
  for (size_t power = 16; power <= (size_t{1} << 17); power *= 2) {
    const size_t limit = power - power / 8;
    for (size_t n : {limit - 1, limit, limit + 1}) sizes.push_back(n);
  }
  for (size_t n : sizes) {
    FlatMap<uint64_t, uint64_t> map;
    size_t rehashes = 0;
    size_t last_capacity = 0;
    for (uint64_t i = 0; i < n; ++i) {
      ASSERT_TRUE(map.try_emplace(i * 7919, i).second);
      if (map.capacity() != last_capacity) {
        ASSERT_EQ(map.capacity(), last_capacity == 0 ? 16u : last_capacity * 2);
        last_capacity = map.capacity();
        ++rehashes;
      }
    }
    ASSERT_EQ(map.size(), n);
    expect_shape(map);
    // Capacity is the smallest that holds n under the 7/8 limit.
    if (map.capacity() > 16) { ASSERT_GT(n * 8, (map.capacity() / 2) * 7) << n; }
    for (uint64_t i = 0; i < n; ++i) {
      const uint64_t* value = map.find(i * 7919);
      ASSERT_NE(value, nullptr) << n << " " << i;
      ASSERT_EQ(*value, i);
      ASSERT_FALSE(map.contains(i * 7919 + 1));
    }
    // reserve() up front means no rehash at all, so pointers stay valid.
    FlatMap<uint64_t, uint64_t> reserved;
    reserved.reserve(n);
    const size_t capacity = reserved.capacity();
    EXPECT_EQ(capacity, map.capacity());
    const uint64_t* first = nullptr;
    for (uint64_t i = 0; i < n; ++i) {
      const uint64_t* value = reserved.try_emplace(i, i).first;
      if (i == 0) first = value;
    }
    EXPECT_EQ(reserved.capacity(), capacity);
    if (n > 0) { EXPECT_EQ(reserved.find(0), first); }
  }
}

TEST(FlatMapTest, EraseHeavyChurnKeepsCapacityBounded) {
  // A sliding window of live keys: every step adds a never-seen key and erases the oldest. The
  // live count stays at kLive, so tombstones must be reclaimed rather than grow the table.
  constexpr uint64_t kLive = 3000;
  FlatMap<uint64_t, uint64_t> map;
  for (uint64_t i = 0; i < kLive; ++i) map.try_emplace(i, i);
  const size_t capacity = map.capacity();
  for (uint64_t i = kLive; i < 1'000'000; ++i) {
    ASSERT_TRUE(map.try_emplace(i, i).second);
    ASSERT_TRUE(map.erase(i - kLive));
  }
  EXPECT_EQ(map.size(), kLive);
  EXPECT_EQ(map.capacity(), capacity);
  for (uint64_t i = 1'000'000 - kLive; i < 1'000'000; ++i) ASSERT_EQ(*map.find(i), i);
  EXPECT_FALSE(map.contains(1'000'000 - kLive - 1));
}

TEST(FlatMapTest, EraseHeavyAtMaximumLoad) {
  // Filled to the load limit, groups are full, so erase must leave tombstones; churning there
  // exercises tombstone reuse and rehashing with strings (non-trivial moves). Tombstones are
  // reclaimed in place only once they are 3/32 of the slots, so at this load the table may
  // double once, and then must hold steady.
  FlatMap<std::string, std::string> map;
  map.reserve(7000);
  const size_t capacity = map.capacity();
  const size_t limit = capacity - capacity / 8;
  std::unordered_map<std::string, std::string> reference;
  std::mt19937_64 random(7);
  size_t next = 0;
  while (map.size() < limit) {
    const std::string key = long_name(next++);
    map.try_emplace(key, key + "-v");
    reference.emplace(key, key + "-v");
  }
  ASSERT_EQ(map.capacity(), capacity);
  std::vector<std::string> live;
  for (const auto& [key, value] : reference) live.push_back(key);
  for (int round = 0; round < 200'000; ++round) {
    const size_t victim = random() % live.size();
    ASSERT_TRUE(map.erase(live[victim]));
    reference.erase(live[victim]);
    live[victim] = long_name(next++);
    ASSERT_TRUE(map.try_emplace(live[victim], live[victim] + "-v").second);
    reference.emplace(live[victim], live[victim] + "-v");
    ASSERT_LE(map.capacity(), capacity * 2);
  }
  expect_same_contents(map, reference);
  // Erasing everything leaves an empty map that still finds nothing and accepts new keys.
  for (const auto& key : live) ASSERT_TRUE(map.erase(key));
  EXPECT_TRUE(map.empty());
  EXPECT_EQ(map.begin(), map.end());
  EXPECT_FALSE(map.contains(live[0]));
  map.try_emplace(live[0], "again");
  EXPECT_EQ(*map.find(live[0]), "again");
}

// A hash with 8 distinct values: every key of a class shares its tag and probe path, so probes
// run long, groups fill, tombstones appear and the in-place rehash has real work to do.
struct CollidingHash {
  uint64_t operator()(uint64_t key) const noexcept { return (key % 8) * 0x9e3779b97f4a7c15ULL; }
};

TEST(FlatMapTest, HeavyCollisionsStayCorrect) {
  FlatMap<uint64_t, uint64_t, CollidingHash> map;
  std::unordered_map<uint64_t, uint64_t> reference;
  std::mt19937_64 random(11);
  for (int op = 0; op < 60'000; ++op) {
    const uint64_t key = random() % 1500;
    const uint64_t choice = random() % 10;
    if (choice < 5) {
      map.insert_or_assign(key, key + op);
      reference.insert_or_assign(key, key + op);
    } else if (choice < 8) {
      ASSERT_EQ(map.erase(key), reference.erase(key) == 1);
    } else {
      const uint64_t* value = map.find(key);
      const auto it = reference.find(key);
      ASSERT_EQ(value != nullptr, it != reference.end());
      if (value != nullptr) { ASSERT_EQ(*value, it->second); }
    }
    if (op % 10'000 == 0) expect_same_contents(map, reference);
  }
  expect_same_contents(map, reference);
  expect_shape(map);
}

TEST(FlatMapTest, InPlaceRehashMovesNonTrivialEntries) {
  // 700 live strings in 1024 slots, oldest erased first: tombstones pile up in full groups until
  // they use up the headroom, then are reclaimed in place (moving and swapping std::strings,
  // about 10 times over this run) rather than growing the table.
  FlatMap<std::string, std::string> map;
  std::unordered_map<std::string, std::string> reference;
  std::deque<std::string> live;
  size_t next = 0;
  for (; next < 700; ++next) {
    live.push_back(long_name(next));
    map.try_emplace(live.back(), key_name(next));
    reference.emplace(live.back(), key_name(next));
  }
  const size_t capacity = map.capacity();
  ASSERT_EQ(capacity, 1024u);
  for (int round = 0; round < 20'000; ++round, ++next) {
    ASSERT_TRUE(map.erase(live.front()));
    reference.erase(live.front());
    live.pop_front();
    live.push_back(long_name(next));
    ASSERT_TRUE(map.try_emplace(live.back(), key_name(next)).second);
    reference.emplace(live.back(), key_name(next));
    if (round % 1'000 == 0) expect_same_contents(map, reference);
  }
  EXPECT_EQ(map.capacity(), capacity);
  expect_same_contents(map, reference);
}

// One random step over both maps. Keys repeat often, so hits, misses, overwrites and erases of
// present and absent keys all occur.
template <class Map, class Reference, class MakeKey>
void random_ops_against_reference(Map& map, Reference& reference, MakeKey make_key,
                                  size_t key_space, size_t operations, uint64_t seed) {
  std::mt19937_64 random(seed);
  size_t inserted = 0;
  size_t erased = 0;
  size_t hits = 0;
  for (size_t op = 1; op <= operations; ++op) {
    const auto key = make_key(random() % key_space);
    const uint32_t value = static_cast<uint32_t>(random());
    switch (random() % 8) {
      case 0:
      case 1: {  // insert if absent
        const bool map_new = map.try_emplace(key, value).second;
        ASSERT_EQ(map_new, reference.try_emplace(key, value).second);
        inserted += map_new;
        break;
      }
      case 2: {  // overwrite
        ASSERT_EQ(map.insert_or_assign(key, value).second,
                  reference.insert_or_assign(key, value).second);
        break;
      }
      case 3: {  // operator[] read-modify-write
        map[key] += 1;
        reference[key] += 1;
        break;
      }
      case 4:
      case 5: {  // erase
        const bool map_erased = map.erase(key);
        ASSERT_EQ(map_erased, reference.erase(key) == 1);
        erased += map_erased;
        break;
      }
      default: {  // find
        const auto* found = map.find(key);
        const auto it = reference.find(key);
        ASSERT_EQ(found != nullptr, it != reference.end());
        if (found != nullptr) {
          ASSERT_EQ(*found, it->second);
          ++hits;
        }
        break;
      }
    }
    ASSERT_EQ(map.size(), reference.size());
    if (op % 100'000 == 0) {
      expect_same_contents(map, reference);
      expect_shape(map);
    }
  }
  // The mix really did exercise every path.
  EXPECT_GT(inserted, operations / 20);
  EXPECT_GT(erased, operations / 20);
  EXPECT_GT(hits, operations / 20);
}

TEST(FlatMapTest, RandomizedAgainstUnorderedMapStringKeys) {
  FlatMap<std::string, uint32_t> map;
  std::unordered_map<std::string, uint32_t> reference;
  random_ops_against_reference(
      map, reference, [](size_t i) { return (i % 3 == 0 ? long_name(i) : key_name(i)); }, 40'000,
      1'000'000, 1);
  expect_same_contents(map, reference);
}

TEST(FlatMapTest, RandomizedAgainstUnorderedMapIntegerKeys) {
  FlatMap<uint64_t, uint32_t> map;
  std::unordered_map<uint64_t, uint32_t> reference;
  // Key space drifts between small and large so the table both grows and churns.
  random_ops_against_reference(
      map, reference, [](size_t i) { return static_cast<uint64_t>(i) * 0x100000001ULL; },
      100'000, 1'000'000, 2);
  expect_same_contents(map, reference);
}

TEST(FlatMapTest, IteratorsVisitEveryEntryOnce) {
  StringMap map;
  for (int i = 0; i < 1000; ++i) map.try_emplace(key_name(i), i);
  for (int i = 0; i < 1000; i += 3) map.erase(key_name(i));

  std::map<std::string, int> seen;
  for (auto it = map.begin(); it != map.end(); ++it) {
    ASSERT_TRUE(seen.emplace(it.key(), it.value()).second) << "visited twice: " << it.key();
    ASSERT_EQ(it->key(), it.key());
    ASSERT_EQ(it->value(), it.value());
  }
  EXPECT_EQ(seen.size(), map.size());
  for (const auto& [key, value] : seen) EXPECT_EQ(key, key_name(static_cast<size_t>(value)));

  // Range-for over entries, writing through the iterator.
  for (auto& entry : map) entry.value() *= 2;
  const StringMap& view = map;
  size_t count = 0;
  for (auto it = view.cbegin(); it != view.cend(); it++) {
    EXPECT_EQ(it.value(), seen[it.key()] * 2);
    ++count;
  }
  EXPECT_EQ(count, map.size());

  // for_each sees the same set.
  size_t for_each_count = 0;
  view.for_each([&](const std::string& key, const int& value) {
    EXPECT_EQ(value, seen.at(key) * 2);
    ++for_each_count;
  });
  EXPECT_EQ(for_each_count, map.size());
  map.for_each([](const std::string&, int& value) { value /= 2; });
  EXPECT_EQ(*map.find(key_name(1)), 1);

  // iterator converts to const_iterator and compares with it.
  StringMap::const_iterator converted = map.begin();
  EXPECT_TRUE(converted == map.begin());
  EXPECT_FALSE(converted != view.begin());
}

TEST(FlatMapTest, EraseWhileIteratingVisitsTheRestOnce) {
  StringMap map;
  for (int i = 0; i < 2000; ++i) map.try_emplace(key_name(i), i);
  std::unordered_set<int> visited;
  size_t erased = 0;
  for (auto it = map.begin(); it != map.end();) {
    ASSERT_TRUE(visited.insert(it.value()).second);
    if (it.value() % 2 == 0) {
      it = map.erase(it);
      ++erased;
    } else {
      ++it;
    }
  }
  EXPECT_EQ(visited.size(), 2000u);
  EXPECT_EQ(erased, 1000u);
  EXPECT_EQ(map.size(), 1000u);
  for (int i = 0; i < 2000; ++i) EXPECT_EQ(map.contains(key_name(i)), i % 2 == 1);

  // Pointers to other entries survive an erase.
  int* kept = map.find(key_name(1));
  ASSERT_NE(kept, nullptr);
  for (int i = 3; i < 2000; i += 2) map.erase(key_name(i));
  EXPECT_EQ(map.find(key_name(1)), kept);
  EXPECT_EQ(*kept, 1);

  EXPECT_EQ(map.erase_if([](const std::string&, int& value) { return value == 1; }), 1u);
  EXPECT_TRUE(map.empty());
}

TEST(FlatMapTest, EraseIfRemovesExactlyTheMatches) {
  FlatMap<uint64_t, std::string> map;
  for (uint64_t i = 0; i < 10'000; ++i) map.try_emplace(i, std::to_string(i));
  EXPECT_EQ(map.erase_if([](uint64_t key, const std::string&) { return key % 3 == 0; }), 3334u);
  EXPECT_EQ(map.size(), 6666u);
  for (uint64_t i = 0; i < 10'000; ++i) {
    ASSERT_EQ(map.contains(i), i % 3 != 0);
    if (i % 3 != 0) { ASSERT_EQ(*map.find(i), std::to_string(i)); }
  }
}

TEST(FlatMapTest, CopyAndSwap) {
  FlatMap<std::string, std::vector<int>> map;
  for (int i = 0; i < 300; ++i) map.try_emplace(key_name(i), std::vector<int>(i % 7, i));
  for (int i = 0; i < 300; i += 5) map.erase(key_name(i));
  FlatMap<std::string, std::vector<int>> copy(map);
  EXPECT_EQ(copy.size(), map.size());
  for (const auto& entry : map) EXPECT_EQ(*copy.find(entry.key()), entry.value());
  copy.find(key_name(1))->push_back(99);
  EXPECT_NE(*copy.find(key_name(1)), *map.find(key_name(1)));

  FlatMap<std::string, std::vector<int>> other;
  other["only"] = {1, 2, 3};
  other = map;
  EXPECT_EQ(other.size(), map.size());
  EXPECT_FALSE(other.contains("only"));
  const auto& same = other;
  other = same;  // self-assignment keeps the contents
  EXPECT_EQ(other.size(), map.size());

  FlatMap<std::string, std::vector<int>> small;
  small["a"] = {1};
  small.swap(copy);
  EXPECT_EQ(copy.size(), 1u);
  EXPECT_EQ(small.size(), map.size());
  EXPECT_EQ(small.find(key_name(1))->back(), 99);
}

TEST(FlatMapTest, ReserveReclaimsTombstonesAndShrinkFrees) {
  FlatMap<uint64_t, uint64_t> map;
  map.reserve(1000);
  const size_t capacity = map.capacity();
  EXPECT_EQ(capacity, 2048u);
  for (uint64_t i = 0; i < 1792; ++i) map.try_emplace(i, i);
  EXPECT_EQ(map.capacity(), capacity);
  for (uint64_t i = 0; i < 1792; i += 2) map.erase(i);
  map.reserve(1792);  // room exists but may be held by tombstones: no growth, no loss
  EXPECT_EQ(map.capacity(), capacity);
  for (uint64_t i = 0; i < 1792; i += 2) map.try_emplace(i, i);
  EXPECT_EQ(map.capacity(), capacity);
  EXPECT_EQ(map.size(), 1792u);
  for (uint64_t i = 0; i < 1792; ++i) ASSERT_EQ(*map.find(i), i);

  for (uint64_t i = 0; i < 1792; ++i) {
    if (i % 100 != 0) map.erase(i);
  }
  map.shrink_to_fit();
  EXPECT_EQ(map.capacity(), 32u);
  for (uint64_t i = 0; i < 1792; i += 100) ASSERT_EQ(*map.find(i), i);
  map.clear();
  map.shrink_to_fit();
  EXPECT_EQ(map.capacity(), 0u);
  EXPECT_EQ(map.memory_bytes(), 0u);
  map.try_emplace(5, 5);
  EXPECT_EQ(*map.find(5), 5u);
}

TEST(FlatMapTest, MemoryBytesCountsEntriesAndControlBytes) {
  FlatMap<uint64_t, uint32_t> map;
  map.try_emplace(1, 1);
  EXPECT_EQ(map.memory_bytes(), 16 * (16 + 1));  // 16 slots of {uint64_t, uint32_t} + 16 ctrl
  map.reserve(100'000);
  EXPECT_EQ(map.capacity(), 131072u);
  EXPECT_EQ(map.memory_bytes(), 131072u * 17);
}

// Counts live objects and catches double destruction through a per-object state word.
struct Tracked {
  static inline int live = 0;
  static inline int constructions = 0;
  static inline int destructions = 0;
  static inline int bad_destructions = 0;
  static constexpr uint32_t kAlive = 0xA11CEu;
  static constexpr uint32_t kDead = 0xDEADu;

  explicit Tracked(int v = 0) : value(v) { born(); }
  Tracked(const Tracked& other) : value(other.value) { born(); }
  Tracked(Tracked&& other) noexcept : value(other.value) {
    EXPECT_EQ(other.state, kAlive) << "moved from a destroyed object";
    born();
  }
  Tracked& operator=(const Tracked& other) {
    EXPECT_EQ(state, kAlive);
    value = other.value;
    return *this;
  }
  Tracked& operator=(Tracked&& other) noexcept {
    EXPECT_EQ(state, kAlive);
    value = other.value;
    return *this;
  }
  ~Tracked() {
    if (state != kAlive) ++bad_destructions;
    state = kDead;
    --live;
    ++destructions;
  }
  void born() {
    state = kAlive;
    ++live;
    ++constructions;
  }
  static void reset() { live = constructions = destructions = bad_destructions = 0; }

  int value;
  uint32_t state;
};

struct TrackedKey {
  explicit TrackedKey(int id) : id(id), payload(id) {}
  int id;
  Tracked payload;
  bool operator==(const TrackedKey& other) const { return id == other.id; }
};
struct TrackedKeyHash {
  uint64_t operator()(const TrackedKey& key) const noexcept { return Xxh3Hash{}(key.id); }
};

TEST(FlatMapTest, EveryConstructionIsMatchedByOneDestruction) {
  Tracked::reset();
  {
    FlatMap<TrackedKey, Tracked, TrackedKeyHash> map;
    std::mt19937 random(3);
    for (int round = 0; round < 40'000; ++round) {
      const int id = static_cast<int>(random() % 3000);
      switch (random() % 5) {
        case 0:
        case 1:
          map.try_emplace(TrackedKey(id), id);
          break;
        case 2:
          map.insert_or_assign(TrackedKey(id), Tracked(id + 1));
          break;
        case 3:
          map.erase(TrackedKey(id));
          break;
        default:
          map[TrackedKey(id)].value += 1;
          break;
      }
    }
    ASSERT_GT(map.size(), 100u);
    // Every live object is a key payload or a value in the map.
    EXPECT_EQ(Tracked::live, static_cast<int>(map.size() * 2));

    FlatMap<TrackedKey, Tracked, TrackedKeyHash> copy(map);
    EXPECT_EQ(Tracked::live, static_cast<int>(map.size() * 4));
    FlatMap<TrackedKey, Tracked, TrackedKeyHash> moved(std::move(copy));
    EXPECT_EQ(Tracked::live, static_cast<int>(map.size() * 4));
    moved.erase_if([](const TrackedKey& key, Tracked&) { return key.id % 2 == 0; });
    moved.shrink_to_fit();
    moved.clear();
    EXPECT_EQ(Tracked::live, static_cast<int>(map.size() * 2));
    moved = map;
    map = std::move(moved);
    EXPECT_EQ(Tracked::live, static_cast<int>(map.size() * 2));
    for (auto it = map.begin(); it != map.end();) it = map.erase(it);
    EXPECT_EQ(Tracked::live, 0);
    for (int id = 0; id < 500; ++id) map.try_emplace(TrackedKey(id), id);
  }  // the destructor destroys the last 500 entries
  EXPECT_EQ(Tracked::live, 0);
  EXPECT_EQ(Tracked::bad_destructions, 0);
  EXPECT_EQ(Tracked::constructions, Tracked::destructions);
}

TEST(FlatMapTest, TryEmplaceConstructsNothingWhenPresent) {
  Tracked::reset();
  {
    FlatMap<uint64_t, Tracked> map;
    map.try_emplace(1, 10);
    EXPECT_EQ(Tracked::constructions, 1);
    EXPECT_FALSE(map.try_emplace(1, 20).second);
    EXPECT_EQ(Tracked::constructions, 1);
    EXPECT_EQ(map.find(1)->value, 10);
  }
  EXPECT_EQ(Tracked::live, 0);
  EXPECT_EQ(Tracked::bad_destructions, 0);
}

}  // namespace
}  // namespace chat
