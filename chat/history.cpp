#include "chat/history.h"

#include <algorithm>

namespace chat {

bool History::push(std::string_view from, std::string_view text, uint64_t ts_ms, uint64_t seq) {
  if (capacity_ == 0) return true;
  if (!empty() && seq <= last_seq()) return false;  // select() relies on ascending seqs
  HistoryEntry* entry;
  if (entries_.size() < capacity_) {
    entry = &entries_.emplace_back();
  } else {
    // Full: overwrite the oldest in place, reusing its strings' buffers.
    entry = &entries_[head_];
    head_ = (head_ + 1) % capacity_;
  }
  entry->seq = seq;
  entry->ts_ms = ts_ms;
  entry->from.assign(from);
  entry->text.assign(text);
  return true;
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
}

}  // namespace chat
