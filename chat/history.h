#pragma once
// A room's recent messages: the last N in a ring buffer (issue 3, DESIGN.md "Rooms"). Sent to a
// joiner and on `history` requests. Storage grows with use up to the capacity, so a quiet room
// costs nothing, and slots are overwritten in place, so a busy room stops allocating once its
// strings have reached their working sizes.
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

  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  size_t capacity() const { return capacity_; }
  // The seq of the newest stored message, 0 when empty.
  uint64_t last_seq() const { return empty() ? 0 : at(size() - 1).seq; }

  // Drops every message and frees the storage.
  void clear();

 private:
  std::vector<HistoryEntry> entries_;  // grows to capacity_, then wraps at head_
  size_t head_ = 0;                    // index of the oldest entry once the ring is full
  size_t capacity_;
};

}  // namespace chat
