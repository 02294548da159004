#pragma once
// Bytes the kernel has not taken yet for one connection: a FIFO of slices of shared buffers,
// flushed with writev. Allocated only while something is queued; an idle connection has none.
//
// Memory is counted as it is really pinned (issue 13): every buffer a slice holds is charged at
// its allocation size (header, capacity, allocator overhead), the queue object and its slice
// array at theirs. memory() is this queue's share (a frame it shares with others is charged in
// full: it keeps the frame alive); the optional MemoryAccount gets each buffer once however many
// queues hold it, so its total is what all queues together pin.
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "reactor/io_result.h"
#include "reactor/memory_budget.h"
#include "reactor/shared_buffer.h"

namespace reactor {

class WriteQueue {
 public:
  // `account`, if given, is charged for this queue and its buffers and must outlive it.
  explicit WriteQueue(MemoryAccount* account = nullptr);
  WriteQueue(const WriteQueue&) = delete;
  WriteQueue& operator=(const WriteQueue&) = delete;
  ~WriteQueue();

  // Queues buffer[offset, offset + length) and takes a reference to the buffer.
  void push(SharedBuffer* buffer, size_t offset, size_t length);
  // Queues a copy of data[0, length), appending to the last private buffer when it has room.
  // Returns false when out of memory.
  bool push_copy(const void* data, size_t length) { return push_copy(data, length, nullptr, 0); }
  // Queues a copy of a[0, a_length) then b[0, b_length) (a frame header and its payload), so a
  // new private buffer is sized for both. Returns false when out of memory.
  bool push_copy(const void* a, size_t a_length, const void* b, size_t b_length);
  // Bytes queued (what is left to write).
  size_t bytes() const { return bytes_; }
  // Heap bytes this queue pins: its buffers at their allocation sizes, its slice array, itself.
  size_t memory() const { return buffer_memory_ + array_memory_ + kSelfMemory; }
  bool empty() const { return bytes_ == 0; }
  // Buffer slices queued (one iovec each when written).
  size_t slices() const { return slices_.size() - head_; }
  // writev()s queued bytes until the queue is empty (kOk), the kernel is full (kAgain) or the
  // socket fails (kError). IoResult::bytes is what was written.
  IoResult flush(int fd);
  // Writes one gathered batch (as write_vector does) for flush(); a short write means "full".
  using VectorWriter = IoResult (*)(void* context, const iovec* iov, int count);
  // flush() through `write` (e.g. a TLS stream) instead of writev on a socket.
  IoResult flush(VectorWriter write, void* context);
  // Fills iov[0, max) with the queued bytes from the front, without consuming them (for a
  // write that completes later, e.g. io_uring); returns the count, `requested` their bytes.
  // The iovecs stay valid until the next consume() or clear() (a push does not move them).
  int gather(iovec* iov, int max, size_t& requested) const;
  // Drops the first `written` bytes after a write of `requested` gathered ones: kOk when the
  // write took them all (more may still be queued), kAgain when it was short (the socket is full).
  IoStatus consume(size_t written, size_t requested);
  // Drops everything queued, releasing the buffers.
  void clear();
  // Slices the internal array can hold without reallocating (for pooling decisions).
  size_t slice_capacity() const { return slices_.capacity(); }

  // A new private buffer (behind a shared frame, or in an empty queue) is allocated at this size
  // or the size of what is copied, whichever is larger: a 50-byte notice behind a broadcast
  // frame costs 96 bytes, not a 16 KiB chunk.
  static constexpr size_t kMinCopyAllocation = 64;
  // While copies keep filling private buffers, each new one doubles, up to this size.
  static constexpr size_t kMaxCopyAllocation = 16 * 1024;

 private:
  struct Slice {
    SharedBuffer* buffer;
    uint32_t offset;
    uint32_t length;
  };
  // sizeof(WriteQueue) as the allocator rounds it (the queue is allocated on its own).
  static constexpr size_t kSelfMemory = 80;
  void append_slice(SharedBuffer* buffer, size_t offset, size_t length);
  void release_slice(const Slice& slice);
  void update_array_memory();
  void compact();
  static constexpr int kMaxIov = 1024;  // IOV_MAX on Linux
  static constexpr size_t kMaxSlice = size_t{1} << 31;  // slices hold 32-bit lengths

  std::vector<Slice> slices_;
  size_t head_ = 0;  // first unsent slice; compacted when the queue drains
  size_t bytes_ = 0;
  size_t buffer_memory_ = 0;  // allocation_bytes() of every slice's buffer
  size_t array_memory_ = 0;   // the slice array's allocation
  MemoryAccount* account_ = nullptr;
};

}  // namespace reactor
