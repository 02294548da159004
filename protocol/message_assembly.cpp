#include "protocol/message_assembly.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace protocol {
namespace {

// size + more, or SIZE_MAX where that does not fit (an announced length near 2^63).
size_t saturating_add(size_t size, uint64_t more) {
  return more > SIZE_MAX - size ? SIZE_MAX : size + static_cast<size_t>(more);
}

}  // namespace

bool MessageBuffer::reserve_more(size_t n, size_t at_most) {
  if (n <= capacity_ - size_) return true;
  if (n > SIZE_MAX - size_) return false;
  const size_t want = size_ + n;
  size_t grown = capacity_ > SIZE_MAX / 2 ? SIZE_MAX : capacity_ * 2;
  grown = std::max(grown, want);
  if (at_most >= want) grown = std::min(grown, at_most);
  uint8_t* moved;
  if (size_ == 0) {
    // Nothing to keep: a fresh block spares realloc copying stale bytes.
    std::free(data_);
    data_ = nullptr;
    capacity_ = 0;
    moved = static_cast<uint8_t*>(std::malloc(grown));
  } else {
    moved = static_cast<uint8_t*>(std::realloc(data_, grown));
  }
  if (moved == nullptr) return false;
  data_ = moved;
  capacity_ = grown;
  return true;
}

bool MessageBuffer::append(const uint8_t* bytes, size_t n, size_t at_most) {
  if (n == 0) return true;
  if (!reserve_more(n, at_most)) return false;
  std::memcpy(data_ + size_, bytes, n);
  size_ += n;
  return true;
}

void MessageBuffer::release() {
  std::free(data_);
  data_ = nullptr;
  size_ = 0;
  capacity_ = 0;
}

std::span<uint8_t> direct_read_window(const ReaderState& state, MessageBuffer& buffer, const DirectReadLimits& limits) {
  if (!state.in_frame || is_control(state.frame.opcode)) return {};
  const uint64_t remaining = state.frame.payload_length - state.frame_done;
  if (remaining < limits.min_remaining) return {};
  // Doubling what has arrived: a peer that announced a large frame and sends little of it gets
  // little memory. (begin_frame already held the announced length to max_message_size.)
  const size_t size = buffer.size();
  const size_t window = static_cast<size_t>(std::min<uint64_t>(std::max(size, limits.min_window), remaining));
  // Grown only once the room left is under a quarter window, so a buffer is not regrown on
  // every read (which would break the bound above).
  if (buffer.spare() < window / 4 + 1) {
    // The last frame of a message announces where the message ends: no room past it.
    const size_t at_most = state.frame.fin ? saturating_add(size, remaining) : SIZE_MAX;
    if (!buffer.reserve_more(window, at_most)) return {};
  }
  // Never past the frame's end: the next header goes to the receive buffer like any other.
  return {buffer.end(), static_cast<size_t>(std::min<uint64_t>(buffer.spare(), remaining))};
}

bool assemble_piece(MessageBuffer& buffer, std::span<const uint8_t> piece, const ReaderState& state) {
  if (piece.empty()) return true;
  // Read into the spare room by direct_read_window, unmasked and checked there by the reader.
  if (piece.data() == buffer.end() && piece.size() <= buffer.spare()) {
    buffer.commit(piece.size());
    return true;
  }
  size_t at_most = SIZE_MAX;
  if (state.frame.fin) {
    // The reader has already counted this piece: what is left of the frame follows it.
    const uint64_t rest = state.in_frame ? state.frame.payload_length - state.frame_done : 0;
    at_most = saturating_add(saturating_add(buffer.size(), piece.size()), rest);
  }
  return buffer.append(piece.data(), piece.size(), at_most);
}

}  // namespace protocol
