#pragma once
// A room's recent messages: the last N in a ring buffer (issue 3, DESIGN.md "Rooms"). Sent to a
// joiner and on `history` requests. Storage grows with use up to the capacity, so a quiet room
// costs nothing, and slots are overwritten in place, so a busy room stops allocating once its
// strings have reached their working sizes. The oldest message can also be evicted early
// (evict_oldest), which frees its strings at once: the server-wide history budget
// (RoomTable, --history-memory) does that when the rooms together hold too many bytes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace chat {

// One stored room message.
struct HistoryEntry {
  uint64_t seq = 0;
  uint64_t ts_ms = 0;
  std::string from;
  std::string text;
};

class History {
 public:
  // A ring that keeps the last `capacity` messages; 0 keeps none (history disabled).
  explicit History(size_t capacity = 50) : capacity_(capacity) {}

  // Appends a message, overwriting the oldest when full. `seq` must exceed every stored seq
  // (messages are pushed in seq order); a smaller one is ignored and false is returned.
  bool push(std::string_view from, std::string_view text, uint64_t ts_ms, uint64_t seq);

  // The i-th stored message, oldest first (i < size()).
  const HistoryEntry& at(size_t i) const { return entries_[(head_ + i) % entries_.size()]; }

  // Stored messages: from index `first` (oldest-first order), `count` of them.
  struct Range {
    size_t first = 0;
    size_t count = 0;
  };
  // The newest `limit` messages with seq < before_seq, in the order they were sent.
  // before_seq == 0 means no bound; limit == 0 means all that match.
  Range select(uint64_t before_seq, size_t limit) const;

  size_t size() const { return count_; }
  bool empty() const { return count_ == 0; }
  size_t capacity() const { return capacity_; }
  // The seq of the newest stored message, 0 when empty.
  uint64_t last_seq() const { return empty() ? 0 : at(size() - 1).seq; }

  // Heap bytes this history pins: the slot array plus every string buffer that does not fit
  // in its small-string storage. Kept current by push, evict_oldest and clear.
  size_t bytes() const { return bytes_; }
  // Drops the oldest message and frees its strings (the slot stays for reuse); no-op when
  // empty. Frees the slot array too when the last message goes.
  void evict_oldest();

  // Drops every message and frees the storage.
  void clear();

 private:
  // Heap bytes of one entry's strings.
  static size_t string_bytes(const HistoryEntry& entry);
  // Makes room for one more slot at the logical end; false when the ring is full.
  void grow();

  std::vector<HistoryEntry> entries_;  // grows to capacity_; a ring from head_, count_ long
  size_t head_ = 0;                    // index of the oldest entry
  size_t count_ = 0;                   // messages stored
  size_t capacity_;
  size_t bytes_ = 0;
};

}  // namespace chat
