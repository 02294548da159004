#pragma once
// Another process's CPU time, from /proc/PID/stat (proc(5)): how parley-load reports what a run
// cost the server (--server-pid). Counted in clock ticks (sysconf(_SC_CLK_TCK), 100 Hz here),
// so a figure is only as fine as 10 ms.
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tools {

// Reads utime + stime (fields 14 and 15) from the text of a /proc/PID/stat file, in clock ticks.
// The command name (field 2) may hold spaces and parentheses, so fields are counted from its
// last ')'. False when the text is malformed.
bool parse_stat_cpu_ticks(std::string_view stat, uint64_t& ticks);

// User + system CPU time of process `pid` in nanoseconds. False when the process is gone or its
// stat file cannot be read or parsed.
bool process_cpu_ns(int pid, uint64_t& ns);

// process_cpu_ns for each of `count` pids into ns[0..count); false when any one fails (a server
// of several processes, e.g. parleyd's workers and Redis, is measured as a whole or not at all).
bool processes_cpu_ns(const int* pids, size_t count, uint64_t* ns);

}  // namespace tools
