#pragma once
// Outcome of one non-blocking I/O attempt: syscalls never throw, errors travel as values.
#include <cstddef>
#include <cstdint>

namespace reactor {

enum class IoStatus : uint8_t {
  kOk,      // some bytes moved
  kAgain,   // the kernel would block (EAGAIN): wait for the next edge
  kClosed,  // orderly end of stream (read returned 0)
  kError,   // `error` holds the errno
};

struct IoResult {
  IoStatus status = IoStatus::kOk;
  size_t bytes = 0;
  int error = 0;
};

}  // namespace reactor
