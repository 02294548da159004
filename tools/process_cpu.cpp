#include "tools/process_cpu.h"

#include <fcntl.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>

namespace tools {

bool parse_stat_cpu_ticks(std::string_view stat, uint64_t& ticks) {
  const size_t paren = stat.rfind(')');
  if (paren == std::string_view::npos) return false;
  // After ") " come field 3 (state) onwards; utime and stime are fields 14 and 15.
  std::string_view rest = stat.substr(paren + 1);
  uint64_t values[2] = {};
  int field = 2;
  size_t at = 0;
  while (field < 15) {
    while (at < rest.size() && rest[at] == ' ') ++at;
    if (at >= rest.size()) return false;
    size_t end = rest.find(' ', at);
    if (end == std::string_view::npos) end = rest.size();
    ++field;
    if (field >= 14) {
      const auto [ptr, ec] = std::from_chars(rest.data() + at, rest.data() + end, values[field - 14]);
      if (ec != std::errc() || ptr != rest.data() + end) return false;
    }
    at = end;
  }
  ticks = values[0] + values[1];
  return true;
}

bool process_cpu_ns(int pid, uint64_t& ns) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char text[1024];
  const ssize_t n = read(fd, text, sizeof text - 1);
  close(fd);
  if (n <= 0) return false;
  uint64_t ticks = 0;
  if (!parse_stat_cpu_ticks(std::string_view(text, static_cast<size_t>(n)), ticks)) return false;
  static const long kTicksPerSecond = sysconf(_SC_CLK_TCK);
  if (kTicksPerSecond <= 0) return false;
  ns = ticks * (1'000'000'000 / static_cast<uint64_t>(kTicksPerSecond));
  return true;
}

bool processes_cpu_ns(const int* pids, size_t count, uint64_t* ns) {
  for (size_t i = 0; i < count; ++i) {
    if (!process_cpu_ns(pids[i], ns[i])) return false;
  }
  return true;
}

}  // namespace tools
