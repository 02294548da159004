#pragma once
// Per-connection chat state (DESIGN.md "State per connection"): a connection that has not said
// hello owns nothing here. An identified one owns one ChatSession from a SessionPool: its name
// (inline, names are at most 32 bytes), its connection handle and its room memberships (inline up
// to kInlineMemberships, spilling to the heap beyond). No std::string, no std::function.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>
#include <vector>

#include "protocol/ws_server.h"

namespace chat {

// Longest user name (chat_codec.h is_valid_user_name: 1-32 of [A-Za-z0-9_.-]).
inline constexpr size_t kMaxUserName = 32;
// Memberships kept inside the session before spilling to a heap array.
inline constexpr size_t kInlineMemberships = 4;
inline constexpr uint32_t kNoIndex = UINT32_MAX;

// One room a session is in: the room's id in RoomTable and the session's slot in that room's
// member array. RoomTable keeps `slot` right as members are swap-removed.
struct Membership {
  uint32_t room = 0;
  uint32_t slot = 0;
};

// A small vector of memberships: kInlineMemberships inline, then one heap array (doubling).
// Removal is swap-with-last, so indices of other entries change only for the last one.
class MembershipList {
 public:
  MembershipList() = default;
  MembershipList(const MembershipList&) = delete;
  MembershipList& operator=(const MembershipList&) = delete;
  ~MembershipList() { delete[] heap_; }

  uint32_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  Membership& operator[](uint32_t i) { return data()[i]; }
  const Membership& operator[](uint32_t i) const { return data()[i]; }
  Membership* begin() { return data(); }
  Membership* end() { return data() + size_; }
  const Membership* begin() const { return data(); }
  const Membership* end() const { return data() + size_; }

  // Index of the membership of `room`, or kNoIndex. A scan of at most the per-connection room
  // limit of 4-byte compares, over one contiguous array.
  uint32_t find(uint32_t room) const {
    const Membership* entries = data();
    for (uint32_t i = 0; i < size_; ++i) {
      if (entries[i].room == room) return i;
    }
    return kNoIndex;
  }

  // Appends; returns its index, or kNoIndex when out of memory.
  uint32_t push_back(Membership membership) {
    if (size_ == capacity()) {
      if (!grow()) return kNoIndex;
    }
    data()[size_] = membership;
    return size_++;
  }

  // Removes entry i by moving the last entry into it. Returns the old index of the entry that
  // moved into i (size() before the call minus one), or kNoIndex when i was the last.
  uint32_t swap_remove(uint32_t i) {
    Membership* entries = data();
    uint32_t last = size_ - 1;
    --size_;
    if (i == last) return kNoIndex;
    entries[i] = entries[last];
    return last;
  }

  // Empties the list and returns any heap array.
  void reset() {
    delete[] heap_;
    heap_ = nullptr;
    heap_capacity_ = 0;
    size_ = 0;
  }

  // True while the entries live in the inline array.
  bool is_inline() const { return heap_ == nullptr; }

 private:
  Membership* data() { return heap_ != nullptr ? heap_ : inline_; }
  const Membership* data() const { return heap_ != nullptr ? heap_ : inline_; }
  uint32_t capacity() const { return heap_ != nullptr ? heap_capacity_ : kInlineMemberships; }

  bool grow() {
    uint32_t capacity = this->capacity() * 2;
    Membership* bigger = new (std::nothrow) Membership[capacity];
    if (bigger == nullptr) return false;
    std::memcpy(static_cast<void*>(bigger), data(), size_ * sizeof(Membership));
    delete[] heap_;
    heap_ = bigger;
    heap_capacity_ = capacity;
    return true;
  }

  Membership inline_[kInlineMemberships];
  Membership* heap_ = nullptr;
  uint32_t size_ = 0;
  uint32_t heap_capacity_ = 0;
};

// The chat state of one identified connection.
class ChatSession {
 public:
  // The connection this session talks on.
  protocol::ConnectionId connection = 0;
  // Rooms joined, each with this session's slot in the room.
  MembershipList memberships;

  // The user name (empty before set_name()).
  std::string_view name() const { return {name_, name_length_}; }
  // Sets the name; false (and no change) when it is empty or longer than kMaxUserName.
  bool set_name(std::string_view name) {
    if (name.empty() || name.size() > kMaxUserName) return false;
    std::memcpy(name_, name.data(), name.size());
    name_length_ = static_cast<uint8_t>(name.size());
    return true;
  }
  // True while the session is handed out by its pool.
  bool in_use() const { return in_use_; }

  // Session resume (issue 14, chat_resume.cpp). The secret half of the session's resume token
  // (96 random bits; the other half is the session's pool index); replaced on every welcome, so
  // a token works once and a reused pool slot never accepts an older token. 12 bytes keep the
  // session within its 104-byte budget. While the session is held, `connection` is 0.
  uint8_t resume_secret[12] = {};

 private:
  friend class SessionPool;
  char name_[kMaxUserName] = {};
  uint8_t name_length_ = 0;
  bool in_use_ = false;
};

// User names are unique case-insensitively (issue 14): "Alice" and "alice" are one user, so
// nobody can pass for another by changing case. Hash and equality of the users map fold ASCII
// letters (names are ASCII: chat_codec.h is_valid_user_name).
struct FoldedNameHash {
  // Hashes `name` lowercased; names longer than kMaxUserName (never stored) hash as they are.
  uint64_t operator()(std::string_view name) const noexcept;
};
struct FoldedNameEqual {
  // True when `a` and `b` are equal ignoring ASCII case.
  bool operator()(std::string_view a, std::string_view b) const {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
      if (fold_ascii(a[i]) != fold_ascii(b[i])) return false;
    }
    return true;
  }
  static char fold_ascii(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }
};

// Sessions in fixed-size chunks that never move, addressed by a 32-bit index, with a free list:
// acquiring and releasing are O(1) and allocate only when a new chunk is needed.
class SessionPool {
 public:
  static constexpr uint32_t kChunkSize = 256;

  // A fresh session's index, or kNoIndex when out of memory. The session is empty.
  uint32_t acquire() {
    uint32_t index;
    if (!free_.empty()) {
      index = free_.back();
      free_.pop_back();
    } else {
      if (next_ % kChunkSize == 0) {
        std::unique_ptr<ChatSession[]> chunk(new (std::nothrow) ChatSession[kChunkSize]);
        if (chunk == nullptr) return kNoIndex;
        chunks_.push_back(std::move(chunk));
      }
      index = next_++;
    }
    get(index).in_use_ = true;
    ++live_;
    return index;
  }

  // Returns a session to the pool: forgets its name and memberships (the caller has already
  // taken it out of every room). Invalidates nothing but the session itself.
  void release(uint32_t index) {
    ChatSession& session = get(index);
    if (!session.in_use_) return;
    session.in_use_ = false;
    session.connection = 0;
    session.name_length_ = 0;
    session.memberships.reset();
    free_.push_back(index);
    --live_;
  }

  // The session at `index` (< capacity()); stable for the pool's lifetime.
  ChatSession& get(uint32_t index) { return chunks_[index / kChunkSize][index % kChunkSize]; }
  const ChatSession& get(uint32_t index) const { return chunks_[index / kChunkSize][index % kChunkSize]; }

  // Sessions handed out and not released.
  size_t live() const { return live_; }
  // Indices ever handed out (valid arguments to get()).
  uint32_t capacity() const { return next_; }

 private:
  std::vector<std::unique_ptr<ChatSession[]>> chunks_;
  std::vector<uint32_t> free_;
  uint32_t next_ = 0;
  size_t live_ = 0;
};

}  // namespace chat
