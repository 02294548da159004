#pragma once
// Bytes the kernel has not taken yet for one connection: a FIFO of slices of shared buffers,
// flushed with writev. Allocated only while something is queued; an idle connection has none.
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "reactor/io_result.h"
#include "reactor/shared_buffer.h"

namespace reactor {

class WriteQueue {
 public:
  WriteQueue() = default;
  WriteQueue(const WriteQueue&) = delete;
  WriteQueue& operator=(const WriteQueue&) = delete;
  ~WriteQueue() { clear(); }

  // Queues buffer[offset, offset + length) and takes a reference to the buffer.
  void push(SharedBuffer* buffer, size_t offset, size_t length);
  // Queues a copy of data[0, length), appending to the last private buffer when it has room.
  // Returns false when out of memory.
  bool push_copy(const void* data, size_t length);
  // Bytes queued.
  size_t bytes() const { return bytes_; }
  bool empty() const { return bytes_ == 0; }
  // writev()s queued bytes until the queue is empty (kOk), the kernel is full (kAgain) or the
  // socket fails (kError). IoResult::bytes is what was written.
  IoResult flush(int fd);
  // Writes one gathered batch (as write_vector does) for flush(); a short write means "full".
  using VectorWriter = IoResult (*)(void* context, const iovec* iov, int count);
  // flush() through `write` (e.g. a TLS stream) instead of writev on a socket.
  IoResult flush(VectorWriter write, void* context);
  // Drops everything queued, releasing the buffers.
  void clear();
  // Slices the internal array can hold without reallocating (for pooling decisions).
  size_t slice_capacity() const { return slices_.capacity(); }

 private:
  struct Slice {
    SharedBuffer* buffer;
    uint32_t offset;
    uint32_t length;
  };
  static constexpr size_t kCopyChunk = 16 * 1024;
  void compact();
  static constexpr int kMaxIov = 1024;  // IOV_MAX on Linux
  static constexpr size_t kMaxSlice = size_t{1} << 31;  // slices hold 32-bit lengths

  std::vector<Slice> slices_;
  size_t head_ = 0;  // first unsent slice; compacted when the queue drains
  size_t bytes_ = 0;
};

}  // namespace reactor
