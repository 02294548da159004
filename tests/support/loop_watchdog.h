#pragma once
// Runs a test's event loop until something in it calls stop(), or for at most a deadline (a
// watchdog thread stops it then), so a test waiting on the loop can fail but never hang.
// Test support only.
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "reactor/event_loop.h"

namespace parley_test {

// loop.run() with a deadline of `timeout_ms`; returns when the loop stops either way.
inline void run_loop_at_most(reactor::EventLoop& loop, int timeout_ms) {
  std::mutex mutex;
  std::condition_variable done;
  bool finished = false;
  std::thread watchdog([&] {
    std::unique_lock lock(mutex);
    if (!done.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return finished; })) loop.stop();
  });
  loop.run();
  {
    std::lock_guard lock(mutex);
    finished = true;
  }
  done.notify_one();
  watchdog.join();
}

}  // namespace parley_test
