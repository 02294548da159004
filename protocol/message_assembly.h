#pragma once
// Assembling a data message that does not arrive whole in one read (issue 18). A message whose
// frame lies whole in one read is handed up zero-copy and never comes here. Any other is gathered
// in a MessageBuffer, with each byte copied at most once:
//  - the buffer grows geometrically with realloc (glibc moves large blocks with mremap instead of
//    copying them) and never zero-fills, and stops growing at the message's end once the last
//    frame's header announced it;
//  - while a large frame is still arriving, the socket is read straight into the buffer's spare
//    room (direct_read_window), so the kernel's copy is the only one: the reader unmasks and
//    UTF-8-checks those bytes in place and assemble_piece() just counts them.
// Growth is never more than twice what has arrived (plus one small window), so announcing a large
// frame does not make the server allocate for it before the bytes come.
#include <cstddef>
#include <cstdint>
#include <span>

#include "protocol/message_reader.h"

namespace protocol {

// A growable byte buffer that never zero-fills; empty ones own no memory.
class MessageBuffer {
 public:
  MessageBuffer() = default;
  ~MessageBuffer() { release(); }
  MessageBuffer(const MessageBuffer&) = delete;
  MessageBuffer& operator=(const MessageBuffer&) = delete;

  uint8_t* data() { return data_; }
  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  bool empty() const { return size_ == 0; }
  // Where the next bytes go (before commit()), and how many fit without growing.
  uint8_t* end() { return data_ + size_; }
  size_t spare() const { return capacity_ - size_; }

  // Makes room for `n` more bytes: at least doubles the capacity, but when `at_most` (the size
  // the buffer can ever need) is at least size() + n, not past it. False, unchanged, when out of
  // memory.
  bool reserve_more(size_t n, size_t at_most = SIZE_MAX);
  // Counts `n` bytes written at end() as part of the contents.
  void commit(size_t n) { size_ += n; }
  // Copies `bytes` to the end (reserve_more's growth rule); false when out of memory.
  bool append(const uint8_t* bytes, size_t n, size_t at_most = SIZE_MAX);
  // Empties the contents, keeping the memory.
  void clear() { size_ = 0; }
  // Empties the contents and frees the memory.
  void release();

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

// When the socket may be read straight into the message buffer.
struct DirectReadLimits {
  size_t min_remaining = 16 * 1024;  // frame payload still to come: below, the extra read that
                                     // stopping at the frame's end may cost is not worth it
  size_t min_window = 4 * 1024;      // the smallest spare room offered to one read
};

// Where the next read of a connection should go: while a data frame with at least
// limits.min_remaining payload bytes to come is open, spare room at the end of `buffer` (grown if
// needed), never past the frame's end, so the bytes read are exactly the next piece of that
// frame and the reader can process them in place. Empty when the input should go to the shared
// receive buffer instead (no frame open, a control frame, a short rest, or out of memory).
std::span<uint8_t> direct_read_window(const ReaderState& state, MessageBuffer& buffer,
                                      const DirectReadLimits& limits = {});

// Adds one piece of the open message (a MessageSink::on_data piece that is not a whole message)
// to `buffer`: counted in place when it was read there by direct_read_window, copied otherwise.
// `state` is the reader's state during that on_data call; when the piece's frame is the message's
// last, it tells the message's final size, and the buffer grows no further than that. False when
// out of memory.
bool assemble_piece(MessageBuffer& buffer, std::span<const uint8_t> piece, const ReaderState& state);

}  // namespace protocol
