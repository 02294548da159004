#pragma once
// Measuring a child parleyd's memory from integration tests, the same way under ASan as without.
// Test support only.
#include <sys/types.h>

#include <cstdlib>
#include <fstream>
#include <string>

namespace parley_test {

// True when this test binary (and so the parleyd it starts from the same build) runs under
// AddressSanitizer, whose shadow memory and allocator change what RSS means.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kAddressSanitizer = true;
#else
inline constexpr bool kAddressSanitizer = false;
#endif
#else
inline constexpr bool kAddressSanitizer = false;
#endif

// The process's resident set in KiB (VmRSS), or -1.
inline long rss_kib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

// Under ASan, freed blocks wait in a quarantine of up to 256 MiB before reuse, so a child's RSS
// would track allocation churn rather than live memory: children started after this call run
// without it (they inherit the environment), with `extra` ASAN_OPTIONS appended. No-op otherwise.
inline void asan_children_without_quarantine(const std::string& extra = {}) {
  if (!kAddressSanitizer) return;
  const char* options = std::getenv("ASAN_OPTIONS");
  std::string merged = std::string(options != nullptr ? options : "") + ":quarantine_size_mb=0" + extra;
  setenv("ASAN_OPTIONS", merged.c_str(), 1);
}

}  // namespace parley_test
