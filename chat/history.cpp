#include "chat/history.h"

#include <algorithm>

namespace chat {

size_t History::string_bytes(const HistoryEntry& entry) {
  // A string whose capacity exceeds its small-string buffer owns a heap block of capacity + 1.
  auto heap = [](const std::string& s) { return s.capacity() > std::string().capacity() ? s.capacity() + 1 : 0; };
  return heap(entry.from) + heap(entry.text);
}

void History::grow() {
  // Appending a slot keeps ring order only when the ring starts at 0: rotate first (moves the
  // strings, no copies; happens at most once per growth of a wrapped ring after evictions).
  if (head_ != 0) {
    std::rotate(entries_.begin(), entries_.begin() + static_cast<std::ptrdiff_t>(head_), entries_.end());
    head_ = 0;
  }
  size_t before = entries_.capacity();
  entries_.emplace_back();
  bytes_ += (entries_.capacity() - before) * sizeof(HistoryEntry);
}

bool History::push(std::string_view from, std::string_view text, uint64_t ts_ms, uint64_t seq) {
  if (capacity_ == 0) return true;
  if (!empty() && seq <= last_seq()) return false;  // select() relies on ascending seqs
  HistoryEntry* entry;
  if (count_ < entries_.size()) {
    // A free slot after evictions: the one after the newest.
    entry = &entries_[(head_ + count_) % entries_.size()];
    ++count_;
  } else if (entries_.size() < capacity_) {
    grow();
    entry = &entries_.back();
    ++count_;
  } else {
    // Full: overwrite the oldest in place, reusing its strings' buffers.
    entry = &entries_[head_];
    head_ = (head_ + 1) % entries_.size();
  }
  bytes_ -= string_bytes(*entry);
  entry->seq = seq;
  entry->ts_ms = ts_ms;
  entry->from.assign(from);
  entry->text.assign(text);
  bytes_ += string_bytes(*entry);
  return true;
}

void History::evict_oldest() {
  if (empty()) return;
  if (count_ == 1) {
    clear();
    return;
  }
  HistoryEntry& oldest = entries_[head_];
  bytes_ -= string_bytes(oldest);
  std::string().swap(oldest.from);
  std::string().swap(oldest.text);
  head_ = (head_ + 1) % entries_.size();
  --count_;
}

History::Range History::select(uint64_t before_seq, size_t limit) const {
  // Seqs ascend in oldest-first order: binary search for the first entry not below the bound.
  size_t end = size();
  if (before_seq != 0) {
    size_t low = 0;
    size_t high = size();
    while (low < high) {
      size_t middle = low + (high - low) / 2;
      if (at(middle).seq < before_seq) {
        low = middle + 1;
      } else {
        high = middle;
      }
    }
    end = low;
  }
  size_t count = limit == 0 ? end : std::min(end, limit);
  return {end - count, count};
}

void History::clear() {
  std::vector<HistoryEntry>().swap(entries_);
  head_ = 0;
  count_ = 0;
  bytes_ = 0;
}

}  // namespace chat
