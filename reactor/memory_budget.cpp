#include "reactor/memory_budget.h"

#include <time.h>

#include <cstdio>
#include <initializer_list>

// ASan's allocator keeps its own heap and returns memory to the kernel by itself.
#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__)
#include <malloc.h>
#define PARLEY_MALLOC_TRIM 1
#endif

namespace reactor {

namespace {

#ifdef PARLEY_MALLOC_TRIM
uint64_t monotonic_us() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
}
#endif

// The first unsigned number in `path`, or 0 when the file is missing or
// says "max".
uint64_t read_limit_file(const char* path) {
  FILE* f = std::fopen(path, "r");
  if (f == nullptr) return 0;
  unsigned long long value = 0;
  int n = std::fscanf(f, "%llu", &value);
  std::fclose(f);
  return n == 1 ? value : 0;
}

uint64_t mem_total() {
  FILE* f = std::fopen("/proc/meminfo", "r");
  if (f == nullptr) return 0;
  char line[256];
  uint64_t total = 0;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    unsigned long long kib = 0;
    if (std::sscanf(line, "MemTotal: %llu kB", &kib) == 1) {
      total = kib * 1024;
      break;
    }
  }
  std::fclose(f);
  return total;
}

}  // namespace

uint64_t system_memory_bytes() {
  uint64_t total = mem_total();
  // cgroup v2 at the unified root as seen from inside a container, then v1. An unlimited v1
  // group reports a huge number: min() takes care of it.
  for (const char* path : {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}) {
    uint64_t limit = read_limit_file(path);
    if (limit != 0 && (total == 0 || limit < total)) total = limit;
  }
  return total;
}

uint64_t default_memory_budget(uint32_t workers) {
  uint64_t total = system_memory_bytes();
  if (workers == 0) workers = 1;
  return total / 4 / workers;
}

uint64_t return_free_heap() {
#ifdef PARLEY_MALLOC_TRIM
  uint64_t start_us = monotonic_us();
  malloc_trim(0);
  return monotonic_us() - start_us;
#else
  return 0;
#endif
}

}  // namespace reactor
