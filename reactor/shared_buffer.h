#pragma once
// A reference-counted byte buffer: header and bytes in one allocation, so a frame encoded once
// can sit in many connections' write queues (DESIGN.md, hot path step 5). Single-threaded.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

namespace reactor {

class SharedBuffer {
 public:
  // A buffer with room for `capacity` bytes and a reference count of 1; nullptr when out of memory.
  static SharedBuffer* create(size_t capacity) {
    void* memory = std::malloc(sizeof(SharedBuffer) + capacity);
    if (memory == nullptr) return nullptr;
    return new (memory) SharedBuffer(capacity);
  }

  // A buffer holding a copy of data[0, length); nullptr when out of memory.
  static SharedBuffer* copy_of(const void* data, size_t length) {
    SharedBuffer* buffer = create(length);
    if (buffer != nullptr) {
      if (length != 0) std::memcpy(buffer->data(), data, length);
      buffer->size_ = length;
    }
    return buffer;
  }

  uint8_t* data() { return reinterpret_cast<uint8_t*>(this + 1); }
  const uint8_t* data() const { return reinterpret_cast<const uint8_t*>(this + 1); }
  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  // Bytes past size() that append() can still take.
  size_t room() const { return capacity_ - size_; }
  // Sets the number of valid bytes (at most capacity()).
  void set_size(size_t size) { size_ = size; }
  // Copies bytes after the current end; the caller ensures room() >= length.
  void append(const void* bytes, size_t length) {
    std::memcpy(data() + size_, bytes, length);
    size_ += length;
  }

  // Heap bytes this buffer's one allocation takes: header and capacity plus the allocator's
  // chunk overhead (glibc: 8 bytes, rounded up to 16, at least 32). What accounting charges.
  size_t allocation_bytes() const { return allocation_bytes_for(capacity_); }
  // allocation_bytes() of a buffer created with `capacity`.
  static constexpr size_t allocation_bytes_for(size_t capacity) {
    size_t chunk = (sizeof(SharedBuffer) + capacity + kAllocatorOverhead + 15) & ~size_t{15};
    return chunk < 32 ? 32 : chunk;
  }
  // The capacity whose allocation_bytes_for() is exactly `allocation` (a multiple of 16 >= 48).
  static constexpr size_t capacity_for_allocation(size_t allocation) {
    return allocation - sizeof(SharedBuffer) - kAllocatorOverhead;
  }

  uint32_t references() const { return references_; }
  void retain() { ++references_; }
  // Drops one reference; frees the buffer at zero. The pointer is invalid afterwards.
  void release() {
    if (--references_ == 0) std::free(this);
  }

 private:
  explicit SharedBuffer(size_t capacity) : capacity_(capacity) {}
  size_t size_ = 0;
  size_t capacity_;
  uint32_t references_ = 1;
  // Write queues holding a slice of this buffer (WriteQueue keeps it): the first one charges
  // the allocation to the server-wide MemoryAccount, the last one takes it back, so a frame
  // shared by many queues is counted once. Sits in what would be padding.
  uint32_t queue_references_ = 0;
  friend class WriteQueue;
  static constexpr size_t kAllocatorOverhead = 8;
};

static_assert(sizeof(SharedBuffer) == 24, "header of every frame; keep it small");

}  // namespace reactor
