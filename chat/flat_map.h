#pragma once
// FlatMap: the open-addressing hash map behind rooms by name and users by name (DESIGN.md
// "Rooms"). SwissTable-style layout: one control byte per slot (a 7-bit tag of the hash, or
// empty/deleted) kept apart from the entries, probed 16 slots at a time with SSE2, so a lookup
// touches one control group and, almost always, only the one entry whose tag matches.
//
// Invariants:
//  - capacity is 0 or a power of two >= 16, split into aligned groups of 16 slots;
//  - at most 7/8 of the slots are full or deleted, so every probe meets an empty slot and ends;
//  - a probe for a key passes a group only if that group holds no empty slot. erase() keeps this
//    cheaply: it leaves a tombstone only in a group with no empty slot, and tombstones are
//    reclaimed by an in-place rehash once they crowd out growth.
//
// Without SSE2, or with PARLEY_FLAT_MAP_PORTABLE defined (to test that path), groups are matched
// byte by byte with the same results.
#include <xxhash.h>

#include <bit>
#include <cassert>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <iterator>
#include <memory>
#include <new>
#include <string_view>
#include <type_traits>
#include <utility>

#if defined(__SSE2__) && !defined(PARLEY_FLAT_MAP_PORTABLE)
#include <emmintrin.h>
#define PARLEY_FLAT_MAP_SSE2 1
#endif

namespace chat {

// Transparent hash for FlatMap: XXH3 over the bytes of strings, a multiply-fold over integers.
// std::string, std::string_view and string literals hash alike, so lookups need no temporary.
struct Xxh3Hash {
  // Lets FlatMap look up std::string keys by std::string_view or a literal, without a copy.
  using is_transparent = void;

  // Hashes the bytes of `text`; equal strings hash equal whatever type holds them.
  uint64_t operator()(std::string_view text) const noexcept {
    return XXH3_64bits(text.data(), text.size());
  }

  // Hashes an integer by its value: -1 as int and as uint64_t hash alike, as they compare equal.
  // The 128-bit product folds high input bits into the low output bits FlatMap uses for its tag.
  template <class T>
    requires std::is_integral_v<T>
  uint64_t operator()(T value) const noexcept {
    const unsigned __int128 product =
        static_cast<unsigned __int128>(static_cast<uint64_t>(value) ^ 0x9e3779b97f4a7c15ULL) *
        0xbf58476d1ce4e5b9ULL;
    return static_cast<uint64_t>(product) ^ static_cast<uint64_t>(product >> 64);
  }
};

namespace flat_map_detail {

// A control byte: 0..127 is a full slot holding the low 7 bits of its key's hash; the two
// negative values mark free slots, so "free" is just the sign bit.
using Control = int8_t;
inline constexpr Control kEmpty = -128;
inline constexpr Control kDeleted = -2;
inline constexpr size_t kGroupWidth = 16;

// The control bytes of a map with no allocation: every probe of it ends at once, with no branch
// on capacity in find(). Never written.
alignas(kGroupWidth) inline constexpr Control kEmptyGroup[kGroupWidth] = {
    kEmpty, kEmpty, kEmpty, kEmpty, kEmpty, kEmpty, kEmpty, kEmpty,
    kEmpty, kEmpty, kEmpty, kEmpty, kEmpty, kEmpty, kEmpty, kEmpty};

// 16 control bytes loaded at once; each match returns one bit per slot, bit i for slot i.
// Loads read 16 bytes from a 16-byte-aligned `control`.
class Group {
 public:
#ifdef PARLEY_FLAT_MAP_SSE2
  explicit Group(const Control* control) noexcept
      : bytes_(_mm_load_si128(reinterpret_cast<const __m128i*>(control))) {}
  // Slots whose control byte equals `tag` (a full slot's tag, or kEmpty).
  uint32_t match(Control tag) const noexcept {
    return static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(bytes_, _mm_set1_epi8(tag))));
  }
  // Empty or deleted slots: the control bytes with the sign bit set.
  uint32_t match_free() const noexcept {
    return static_cast<uint32_t>(_mm_movemask_epi8(bytes_));
  }
#else
  explicit Group(const Control* control) noexcept { std::memcpy(bytes_, control, kGroupWidth); }
  uint32_t match(Control tag) const noexcept {
    uint32_t mask = 0;
    for (size_t i = 0; i < kGroupWidth; ++i) mask |= static_cast<uint32_t>(bytes_[i] == tag) << i;
    return mask;
  }
  uint32_t match_free() const noexcept {
    uint32_t mask = 0;
    for (size_t i = 0; i < kGroupWidth; ++i) mask |= static_cast<uint32_t>(bytes_[i] < 0) << i;
    return mask;
  }
#endif
  // Never-used (or reclaimed) slots; a probe that meets one ends.
  uint32_t match_empty() const noexcept { return match(kEmpty); }
  // Slots holding an entry.
  uint32_t match_full() const noexcept { return match_free() ^ 0xFFFFu; }

 private:
#ifdef PARLEY_FLAT_MAP_SSE2
  __m128i bytes_;
#else
  Control bytes_[kGroupWidth];
#endif
};

// Lookup argument type: any K when both Hash and Eq are transparent, else Key itself (so that
// find("x") on a non-transparent map still converts to Key, as std containers do).
template <bool kTransparent>
struct KeyArgImpl {
  template <class K, class Key>
  using Type = Key;
};
template <>
struct KeyArgImpl<true> {
  template <class K, class Key>
  using Type = K;
};

}  // namespace flat_map_detail

// Open-addressing hash map. Entries live in one flat allocation; a lookup costs one hash, one
// 16-byte control load and (almost always) one key compare.
//
// Invalidation: an insertion that adds a key may rehash, which invalidates every iterator,
// pointer and reference into the map; after reserve(n), adding keys until size() == n does not.
// erase() never moves other entries: it invalidates only what referred to the erased entry.
// Key and Value must be nothrow-move-constructible (entries are relocated on rehash). Hash must
// mix well into all 64 bits: the low 7 bits become the tag, the bits above pick the group (so
// std::hash for integers, the identity, is a poor choice; Xxh3Hash is the default for that).
template <class Key, class Value, class Hash = Xxh3Hash, class Eq = std::equal_to<>>
class FlatMap {
  static_assert(std::is_nothrow_move_constructible_v<Key> &&
                    std::is_nothrow_move_constructible_v<Value>,
                "FlatMap relocates entries on rehash and cannot undo a move that throws");

  using Control = flat_map_detail::Control;
  using Group = flat_map_detail::Group;
  static constexpr size_t kGroupWidth = flat_map_detail::kGroupWidth;
  static constexpr size_t kNotFound = ~size_t{0};
  static constexpr bool kTransparent = requires {
    typename Hash::is_transparent;
    typename Eq::is_transparent;
  };
  template <class K>
  using KeyArg = typename flat_map_detail::KeyArgImpl<kTransparent>::template Type<K, Key>;

 public:
  // One stored pair. The key is read-only: changing it would strand the entry off its probe path.
  class Entry {
   public:
    // The stored key.
    const Key& key() const noexcept { return key_; }
    // The stored value.
    Value& value() noexcept { return value_; }
    // The stored value, read-only.
    const Value& value() const noexcept { return value_; }

   private:
    friend class FlatMap;
    template <class K, class... Args>
    Entry(std::in_place_t, K&& key, Args&&... args)
        : key_(std::forward<K>(key)), value_(std::forward<Args>(args)...) {}
    Entry(Entry&&) noexcept = default;
    Entry(const Entry&) = default;

    Key key_;
    Value value_;
  };

  // Forward iterator over full slots, in slot order (unspecified, changes on rehash).
  template <bool kConst>
  class IteratorImpl {
    using MapType = std::conditional_t<kConst, const FlatMap, FlatMap>;
    using EntryType = std::conditional_t<kConst, const Entry, Entry>;

   public:
    // std::iterator_traits members.
    using iterator_category = std::forward_iterator_tag;
    using value_type = Entry;
    using difference_type = std::ptrdiff_t;
    using pointer = EntryType*;
    using reference = EntryType&;

    // A singular iterator; only assignment and destruction are valid on it.
    IteratorImpl() = default;
    // Any iterator converts to a const_iterator at the same slot.
    operator IteratorImpl<true>() const noexcept
      requires(!kConst)
    {
      return IteratorImpl<true>(map_, index_);
    }

    // The current entry's key.
    const Key& key() const noexcept { return (**this).key(); }
    // The current entry's value; writable through an iterator, read-only through a const_iterator.
    auto& value() const noexcept { return (**this).value(); }
    // The current entry. Undefined at end().
    reference operator*() const noexcept {
      assert(index_ < map_->capacity_);
      return map_->slots_[index_];
    }
    // The current entry. Undefined at end().
    pointer operator->() const noexcept { return &**this; }
    // Moves to the next full slot, or to end().
    IteratorImpl& operator++() noexcept {
      index_ = map_->next_full(index_ + 1);
      return *this;
    }
    // Moves to the next full slot; returns the old position.
    IteratorImpl operator++(int) noexcept {
      IteratorImpl old = *this;
      ++*this;
      return old;
    }
    // Iterators of the same map are equal at the same slot; across maps the result is undefined.
    friend bool operator==(const IteratorImpl& a, const IteratorImpl& b) noexcept {
      return a.index_ == b.index_;
    }

   private:
    friend class FlatMap;
    template <bool>
    friend class IteratorImpl;
    IteratorImpl(MapType* map, size_t index) noexcept : map_(map), index_(index) {}

    MapType* map_ = nullptr;
    size_t index_ = 0;
  };

  // Iterates mutable values; keys stay read-only.
  using iterator = IteratorImpl<false>;
  // Iterates read-only entries.
  using const_iterator = IteratorImpl<true>;

  // An empty map; allocates nothing until the first insertion.
  FlatMap() noexcept = default;

  // An empty map with room for `expected` entries before any rehash.
  explicit FlatMap(size_t expected) { reserve(expected); }

  // Copies every entry (rehashing them into a table sized for other.size()).
  FlatMap(const FlatMap& other)
    requires std::copy_constructible<Key> && std::copy_constructible<Value>
      : hash_(other.hash_), equal_(other.equal_) {
    reserve(other.size_);
    try {
      other.for_each_index([&](size_t from) {
        const Entry& entry = other.slots_[from];
        const uint64_t hash = hash_of(entry.key_);
        const size_t to = find_free(hash);
        ::new (static_cast<void*>(slots_ + to)) Entry(entry);
        commit_insert(to, hash);
      });
    } catch (...) {
      destroy_and_free();
      throw;
    }
  }

  // Takes other's table; other is left empty with no allocation.
  FlatMap(FlatMap&& other) noexcept
      : control_(other.control_),
        slots_(other.slots_),
        capacity_(other.capacity_),
        group_mask_(other.group_mask_),
        size_(other.size_),
        growth_left_(other.growth_left_),
        hash_(std::move(other.hash_)),
        equal_(std::move(other.equal_)) {
    other.reset_to_empty();
  }

  // Replaces the contents with a copy of other's; invalidates all iterators into this map.
  FlatMap& operator=(const FlatMap& other)
    requires std::copy_constructible<Key> && std::copy_constructible<Value>
  {
    if (this != &other) {
      FlatMap copy(other);
      swap(copy);
    }
    return *this;
  }

  // Destroys this map's entries and takes other's table; other is left empty.
  FlatMap& operator=(FlatMap&& other) noexcept {
    if (this != &other) {
      FlatMap taken(std::move(other));
      swap(taken);
    }
    return *this;
  }

  // Destroys every entry and frees the table.
  ~FlatMap() { destroy_and_free(); }

  // Exchanges the contents of two maps. Value pointers follow their entries; iterators name a
  // map, not a table, so both maps' iterators are invalidated.
  void swap(FlatMap& other) noexcept {
    using std::swap;
    swap(control_, other.control_);
    swap(slots_, other.slots_);
    swap(capacity_, other.capacity_);
    swap(group_mask_, other.group_mask_);
    swap(size_, other.size_);
    swap(growth_left_, other.growth_left_);
    swap(hash_, other.hash_);
    swap(equal_, other.equal_);
  }

  // The value stored under `key`, or nullptr. Never allocates, even for a string_view key.
  template <class K = Key>
  Value* find(const KeyArg<K>& key) noexcept {
    const size_t index = find_index(key, hash_of(key));
    return index == kNotFound ? nullptr : &slots_[index].value_;
  }

  // The value stored under `key`, or nullptr. Never allocates, even for a string_view key.
  template <class K = Key>
  const Value* find(const KeyArg<K>& key) const noexcept {
    const size_t index = find_index(key, hash_of(key));
    return index == kNotFound ? nullptr : &slots_[index].value_;
  }

  // True when `key` is stored.
  template <class K = Key>
  bool contains(const KeyArg<K>& key) const noexcept {
    return find_index(key, hash_of(key)) != kNotFound;
  }

  // Inserts Value(args...) under `key` unless the key is present, in which case nothing is
  // constructed. Returns the stored value and whether it was inserted. May rehash (see class
  // comment), so `args` must not refer into this map.
  template <class K = Key, class... Args>
  std::pair<Value*, bool> try_emplace(const KeyArg<K>& key, Args&&... args) {
    return emplace_impl(key, std::forward<Args>(args)...);
  }

  // As above; a movable key is moved into the map, only if it is inserted.
  template <class K = Key, class... Args>
  std::pair<Value*, bool> try_emplace(KeyArg<K>&& key, Args&&... args) {
    return emplace_impl(std::forward<KeyArg<K>>(key), std::forward<Args>(args)...);
  }

  // Stores `value` under `key`, assigning over an existing value. Returns the stored value and
  // whether the key was new. May rehash when the key is new.
  template <class K = Key, class V>
  std::pair<Value*, bool> insert_or_assign(const KeyArg<K>& key, V&& value) {
    auto result = emplace_impl(key, std::forward<V>(value));
    if (!result.second) *result.first = std::forward<V>(value);
    return result;
  }

  // As above; a movable key is moved into the map, only if it is inserted.
  template <class K = Key, class V>
  std::pair<Value*, bool> insert_or_assign(KeyArg<K>&& key, V&& value) {
    auto result = emplace_impl(std::forward<KeyArg<K>>(key), std::forward<V>(value));
    if (!result.second) *result.first = std::forward<V>(value);
    return result;
  }

  // The value under `key`, value-initialized and inserted first if absent. May rehash.
  template <class K = Key>
  Value& operator[](const KeyArg<K>& key)
    requires std::default_initializable<Value>
  {
    return *emplace_impl(key).first;
  }

  // As above; a movable key is moved into the map, only if it is inserted.
  template <class K = Key>
  Value& operator[](KeyArg<K>&& key)
    requires std::default_initializable<Value>
  {
    return *emplace_impl(std::forward<KeyArg<K>>(key)).first;
  }

  // Removes `key`; returns false when it was absent. Invalidates only references to that entry.
  template <class K = Key>
  bool erase(const KeyArg<K>& key) noexcept {
    const size_t index = find_index(key, hash_of(key));
    if (index == kNotFound) return false;
    erase_at(index);
    return true;
  }

  // Removes the entry at `position` (not end()); returns the iterator to the next entry.
  // Other iterators stay valid, so erasing while iterating visits every other entry once.
  iterator erase(iterator position) noexcept {
    erase_at(position.index_);
    return iterator(this, next_full(position.index_ + 1));
  }

  // Removes the entry at `position` (not end()); returns the iterator to the next entry.
  iterator erase(const_iterator position) noexcept {
    erase_at(position.index_);
    return iterator(this, next_full(position.index_ + 1));
  }

  // Removes every entry for which pred(const Key&, Value&) is true; returns how many.
  template <class Pred>
  size_t erase_if(Pred&& pred) {
    const size_t before = size_;
    for_each_index([&](size_t index) {
      Entry& entry = slots_[index];
      if (pred(std::as_const(entry.key_), entry.value_)) erase_at(index);
    });
    return before - size_;
  }

  // Number of entries.
  size_t size() const noexcept { return size_; }

  // True when there are no entries.
  bool empty() const noexcept { return size_ == 0; }

  // Slots allocated (0 or a power of two >= 16); at most 7/8 of them are ever in use.
  size_t capacity() const noexcept { return capacity_; }

  // Heap bytes of the table itself (entries and control bytes), for memory reports. Excludes
  // what keys and values own (a long std::string's buffer) and sizeof(FlatMap).
  size_t memory_bytes() const noexcept { return capacity_ == 0 ? 0 : block_bytes(capacity_); }

  // Destroys every entry and keeps the allocation for reuse. Invalidates all iterators.
  void clear() noexcept {
    if (capacity_ == 0) return;
    destroy_entries();
    std::memset(control_, static_cast<unsigned char>(flat_map_detail::kEmpty), capacity_);
    size_ = 0;
    growth_left_ = max_load(capacity_);
  }

  // Makes room so that adding keys (with no erase in between) until size() == expected needs no
  // rehash. Rehashes, and so invalidates all iterators, only when that room is missing.
  void reserve(size_t expected) {
    if (expected <= size_ + growth_left_) return;
    const size_t wanted = capacity_for(expected);
    if (wanted > capacity_) {
      resize(wanted);
    } else {
      drop_tombstones();  // the room is there, held by tombstones
    }
  }

  // Rehashes into the smallest table that holds size() entries, or frees the table when empty.
  // Invalidates all iterators.
  void shrink_to_fit() {
    const size_t wanted = capacity_for(size_);
    if (wanted == capacity_) return;
    if (wanted == 0) {
      destroy_and_free();
      reset_to_empty();
      return;
    }
    resize(wanted);
  }

  // Calls fn(const Key&, Value&) for every entry. fn must not insert or erase (use erase_if).
  template <class Fn>
  void for_each(Fn&& fn) {
    for_each_index(
        [&](size_t index) { fn(std::as_const(slots_[index].key_), slots_[index].value_); });
  }

  // Calls fn(const Key&, const Value&) for every entry. fn must not modify the map.
  template <class Fn>
  void for_each(Fn&& fn) const {
    for_each_index(
        [&](size_t index) { fn(slots_[index].key_, std::as_const(slots_[index].value_)); });
  }

  // The first entry in slot order, or end() when empty.
  iterator begin() noexcept { return iterator(this, next_full(0)); }
  // One past the last slot.
  iterator end() noexcept { return iterator(this, capacity_); }
  // The first entry in slot order, or end() when empty.
  const_iterator begin() const noexcept { return const_iterator(this, next_full(0)); }
  // One past the last slot.
  const_iterator end() const noexcept { return const_iterator(this, capacity_); }
  // The first entry in slot order, or cend() when empty.
  const_iterator cbegin() const noexcept { return begin(); }
  // One past the last slot.
  const_iterator cend() const noexcept { return end(); }

 private:
  static constexpr size_t max_load(size_t capacity) noexcept { return capacity - capacity / 8; }

  // Smallest valid capacity holding `count` entries within the load limit.
  static constexpr size_t capacity_for(size_t count) noexcept {
    if (count == 0) return 0;
    size_t capacity = kGroupWidth;
    while (max_load(capacity) < count) capacity *= 2;
    return capacity;
  }

  // Entries first, then control bytes: capacity * sizeof(Entry) is a multiple of 16, so the
  // control bytes stay 16-byte aligned for aligned group loads.
  static constexpr size_t block_bytes(size_t capacity) noexcept {
    return capacity * sizeof(Entry) + capacity;
  }

  // Aligned for both the entries at the front and 16-byte group loads of the control bytes.
  static constexpr size_t block_alignment() noexcept {
    return alignof(Entry) > kGroupWidth ? alignof(Entry) : kGroupWidth;
  }

  static Control tag_of(uint64_t hash) noexcept { return static_cast<Control>(hash & 0x7F); }

  template <class K>
  uint64_t hash_of(const K& key) const noexcept {
    return static_cast<uint64_t>(hash_(key));
  }

  // Index of the slot holding `key`, or kNotFound. Probes whole groups, quadratically by group
  // (group, +1, +3, +6, ...), which visits every group of a power-of-two table.
  template <class K>
  size_t find_index(const K& key, uint64_t hash) const noexcept {
    const Control tag = tag_of(hash);
    size_t group = (hash >> 7) & group_mask_;
    for (size_t step = 1;; ++step) {
      const Group probe(control_ + group * kGroupWidth);
      for (uint32_t match = probe.match(tag); match != 0; match &= match - 1) {
        const size_t index = group * kGroupWidth + static_cast<size_t>(std::countr_zero(match));
        if (equal_(slots_[index].key_, key)) [[likely]] return index;
      }
      if (probe.match_empty() != 0) [[likely]] return kNotFound;
      group = (group + step) & group_mask_;
    }
  }

  // The first free (empty or deleted) slot on the probe path of `hash`: where that key belongs.
  size_t find_free(uint64_t hash) const noexcept {
    size_t group = (hash >> 7) & group_mask_;
    for (size_t step = 1;; ++step) {
      const uint32_t free = Group(control_ + group * kGroupWidth).match_free();
      if (free != 0) [[likely]] {
        return group * kGroupWidth + static_cast<size_t>(std::countr_zero(free));
      }
      group = (group + step) & group_mask_;
    }
  }

  // Constructs the entry before marking its slot full, so a throwing constructor leaves the map
  // as it was (apart from a rehash, which changes no contents).
  template <class K, class... Args>
  std::pair<Value*, bool> emplace_impl(K&& key, Args&&... args) {
    const uint64_t hash = hash_of(key);
    const size_t found = find_index(key, hash);
    if (found != kNotFound) return {&slots_[found].value_, false};
    size_t index = find_free(hash);
    // Reusing a tombstone costs no growth; only a fresh empty slot needs headroom.
    if (growth_left_ == 0 && control_[index] != flat_map_detail::kDeleted) [[unlikely]] {
      make_room();
      index = find_free(hash);
    }
    ::new (static_cast<void*>(slots_ + index))
        Entry(std::in_place, std::forward<K>(key), std::forward<Args>(args)...);
    commit_insert(index, hash);
    return {&slots_[index].value_, true};
  }

  void commit_insert(size_t index, uint64_t hash) noexcept {
    growth_left_ -= control_[index] == flat_map_detail::kEmpty;
    control_[index] = tag_of(hash);
    ++size_;
  }

  // Called when no headroom is left. If tombstones hold at least 3/32 of the slots, reclaiming
  // them in place costs O(capacity) per that many erases; otherwise the table doubles.
  void make_room() {
    if (capacity_ != 0 && size_ * 32 <= capacity_ * 25) {
      drop_tombstones();
    } else {
      resize(capacity_ == 0 ? kGroupWidth : capacity_ * 2);
    }
  }

  void erase_at(size_t index) noexcept {
    assert(index < capacity_ && control_[index] >= 0);
    std::destroy_at(slots_ + index);
    --size_;
    // A group with an empty slot never made a probe pass it, so no probe needs this slot to
    // read as occupied; a full group may have, so it keeps a tombstone.
    if (Group(control_ + (index & ~(kGroupWidth - 1))).match_empty() != 0) {
      control_[index] = flat_map_detail::kEmpty;
      ++growth_left_;
    } else {
      control_[index] = flat_map_detail::kDeleted;
    }
  }

  // First full slot at or after `index`, or capacity_.
  size_t next_full(size_t index) const noexcept {
    while (index < capacity_) {
      const size_t base = index & ~(kGroupWidth - 1);
      const uint32_t full = Group(control_ + base).match_full() & (0xFFFFu << (index - base));
      if (full != 0) return base + static_cast<size_t>(std::countr_zero(full));
      index = base + kGroupWidth;
    }
    return capacity_;
  }

  // Calls fn(index) for every full slot of a table. The mask of each group is read before its
  // calls, so fn may erase the slot it is given, but nothing else.
  template <class Fn>
  static void for_each_full(const Control* control, size_t capacity, Fn&& fn) {
    for (size_t base = 0; base < capacity; base += kGroupWidth) {
      for (uint32_t full = Group(control + base).match_full(); full != 0; full &= full - 1) {
        fn(base + static_cast<size_t>(std::countr_zero(full)));
      }
    }
  }

  template <class Fn>
  void for_each_index(Fn&& fn) const {
    for_each_full(control_, capacity_, std::forward<Fn>(fn));
  }

  // Moves every entry into a fresh table of `new_capacity` slots (>= what size_ needs). The
  // allocation comes first, so if it throws the map is unchanged.
  void resize(size_t new_capacity) {
    assert(new_capacity >= capacity_for(size_));
    const Control* const old_control = control_;
    Entry* const old_slots = slots_;
    const size_t old_capacity = capacity_;
    allocate(new_capacity);
    growth_left_ = max_load(new_capacity) - size_;
    for_each_full(old_control, old_capacity, [&](size_t from) {
      Entry& entry = old_slots[from];
      const uint64_t hash = hash_of(entry.key_);
      const size_t to = find_free(hash);
      ::new (static_cast<void*>(slots_ + to)) Entry(std::move(entry));
      std::destroy_at(&entry);
      control_[to] = tag_of(hash);
    });
    free_block(old_slots, old_capacity);
  }

  // Rehashes in place, turning tombstones back into empty slots. Full slots are first marked
  // kDeleted ("not yet placed"), then each is moved to the first free slot of its probe path,
  // swapping with a not-yet-placed entry when that is where it lands.
  void drop_tombstones() {
    using flat_map_detail::kDeleted;
    using flat_map_detail::kEmpty;
    for (size_t i = 0; i < capacity_; ++i) control_[i] = control_[i] >= 0 ? kDeleted : kEmpty;
    alignas(Entry) unsigned char spare[sizeof(Entry)];
    Entry* const temporary = reinterpret_cast<Entry*>(spare);
    for (size_t i = 0; i < capacity_; ++i) {
      if (control_[i] != kDeleted) continue;
      const uint64_t hash = hash_of(slots_[i].key_);
      const size_t target = find_free(hash);
      // Already in the first group with room: every group before it on the path is full.
      if (target / kGroupWidth == i / kGroupWidth) {
        control_[i] = tag_of(hash);
        continue;
      }
      if (control_[target] == kEmpty) {
        ::new (static_cast<void*>(slots_ + target)) Entry(std::move(slots_[i]));
        std::destroy_at(slots_ + i);
        control_[target] = tag_of(hash);
        control_[i] = kEmpty;
        continue;
      }
      // target holds an entry not yet placed: swap, then place the one now at i.
      ::new (static_cast<void*>(temporary)) Entry(std::move(slots_[target]));
      std::destroy_at(slots_ + target);
      ::new (static_cast<void*>(slots_ + target)) Entry(std::move(slots_[i]));
      std::destroy_at(slots_ + i);
      ::new (static_cast<void*>(slots_ + i)) Entry(std::move(*temporary));
      std::destroy_at(temporary);
      control_[target] = tag_of(hash);
      --i;
    }
    growth_left_ = max_load(capacity_) - size_;
  }

  // Points the map at a new table of `capacity` empty slots; the caller owns the old block.
  void allocate(size_t capacity) {
    void* block = ::operator new(block_bytes(capacity), std::align_val_t{block_alignment()});
    slots_ = static_cast<Entry*>(block);
    control_ =
        reinterpret_cast<Control*>(static_cast<unsigned char*>(block) + capacity * sizeof(Entry));
    std::memset(control_, static_cast<unsigned char>(flat_map_detail::kEmpty), capacity);
    capacity_ = capacity;
    group_mask_ = capacity / kGroupWidth - 1;
  }

  static void free_block(Entry* slots, size_t capacity) noexcept {
    if (capacity != 0) {
      // Unsized: clang does not enable sized deallocation by default.
      ::operator delete(static_cast<void*>(slots), std::align_val_t{block_alignment()});
    }
  }

  void destroy_entries() noexcept {
    if constexpr (!std::is_trivially_destructible_v<Entry>) {
      for_each_index([&](size_t index) { std::destroy_at(slots_ + index); });
    }
  }

  void destroy_and_free() noexcept {
    destroy_entries();
    free_block(slots_, capacity_);
  }

  void reset_to_empty() noexcept {
    control_ = const_cast<Control*>(flat_map_detail::kEmptyGroup);
    slots_ = nullptr;
    capacity_ = 0;
    group_mask_ = 0;
    size_ = 0;
    growth_left_ = 0;
  }

  // With no table, control_ points at kEmptyGroup and group_mask_ is 0, so probes need no
  // capacity check; growth_left_ == 0 sends the first insertion to make_room().
  Control* control_ = const_cast<Control*>(flat_map_detail::kEmptyGroup);
  Entry* slots_ = nullptr;
  size_t capacity_ = 0;
  size_t group_mask_ = 0;
  size_t size_ = 0;
  size_t growth_left_ = 0;  // empty slots that may still be filled before the load limit
  [[no_unique_address]] Hash hash_;
  [[no_unique_address]] Eq equal_;
};

}  // namespace chat
