#pragma once
// Memory a server can count and give back: the running total of heap bytes pinned by its write
// queues (MemoryAccount), the machine's memory for a default budget, and returning freed heap
// pages to the kernel (issue 13: bounded under attack, memory comes back after a wave).
#include <cstddef>
#include <cstdint>

namespace reactor {

// Heap bytes charged by the write queues (and pooled queue objects) of one server. Single-
// threaded, like the loop that owns it.
class MemoryAccount {
 public:
  void add(size_t bytes) { bytes_ += bytes; }
  void remove(size_t bytes) {
    bytes_ -= bytes;
    released_ += bytes;
  }
  // Bytes charged now.
  size_t bytes() const { return bytes_; }
  // Bytes given back since creation (only grows): a burst of frees is when trimming pays.
  uint64_t released() const { return released_; }

 private:
  size_t bytes_ = 0;
  uint64_t released_ = 0;
};

// Memory this process may use: MemTotal from /proc/meminfo, lowered to the cgroup's limit
// (v2 memory.max or v1 memory.limit_in_bytes) when there is one; 0 if unknown.
uint64_t system_memory_bytes();

// A default --max-memory: a quarter of system_memory_bytes() (the rest is for the kernel's
// socket buffers, the chat state, other processes), split evenly over `workers`; 0 if unknown.
uint64_t default_memory_budget(uint32_t workers);

// Gives the heap's free pages back to the kernel (glibc malloc_trim(0)); returns the
// microseconds it took. A no-op elsewhere (and under ASan, whose allocator does this itself).
uint64_t return_free_heap();

}  // namespace reactor
