#pragma once
// The single-threaded, edge-triggered epoll reactor (DESIGN.md "The hot path"). One clock read
// per iteration, the epoll timeout taken from the next timer, one loop-wide receive buffer.
#include <sys/epoll.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <span>
#include <vector>

namespace reactor {

class TimerWheel;

// Receives readiness for the fds it registered. `tag` is the caller's own 24-bit value stored
// with the fd (a generation counter, so events for a closed and reused fd can be told apart).
class EventHandler {
 public:
  virtual ~EventHandler() = default;
  virtual void on_event(int fd, uint32_t tag, uint32_t events) = 0;
};

class EventLoop {
 public:
  // Register once, edge-triggered, for both directions (DESIGN.md "Edge-triggered discipline").
  // Under EPOLLET the kernel reports EPOLLOUT only after a write has hit a full socket buffer,
  // so idle connections cost no wakeups for writability.
  static constexpr uint32_t kConnectionEvents = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  static constexpr size_t kReceiveBufferSize = 512 * 1024;
  static constexpr uint32_t kMaxTag = (1u << 24) - 1;

  EventLoop();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Creates the epoll instance; 0 or -errno. Must succeed before anything else is called.
  int open();

  // Adds a handler; returns its id for watch(), or -1 when 255 handlers exist.
  int add_handler(EventHandler* handler);
  // Registers `fd` for `events`, delivered to handler `handler_id` with `tag`; 0 or -errno.
  int watch(int fd, int handler_id, uint32_t tag, uint32_t events = kConnectionEvents);
  // Deregisters `fd` (closing the fd does this too); 0 or -errno.
  int unwatch(int fd);
  // Delivers EPOLLIN for `fd` again in the next iteration: an edge-triggered fd whose read
  // budget ran out will not be reported by the kernel again.
  void mark_ready(int fd, int handler_id, uint32_t tag);

  // Timer wheels advanced every iteration, after the iteration's I/O has been dispatched (a
  // deadline that passed during a stall sees the input that arrived before it); their next
  // expiry bounds the epoll timeout.
  void add_timer_wheel(TimerWheel* wheel);
  // Runs at the end of every iteration, before the loop sleeps (flushing batched writes,
  // freeing connections closed during the iteration).
  void add_before_sleep(std::function<void()> hook);
  // Blocks `signals` for the process and delivers them through a signalfd; 0 or -errno.
  int watch_signals(std::initializer_list<int> signals, std::function<void(int)> on_signal);

  // Runs until stop() is called from inside the loop; returns 0, or -errno if epoll_wait fails.
  // May be called again after it returned.
  int run();
  // Makes run() return after the current iteration. Safe from any callback, any thread and
  // a signal handler: it only stores a flag and writes to an eventfd that wakes epoll_wait.
  void stop();
  bool stopping() const { return stopping_.load(std::memory_order_relaxed); }

  // Monotonic milliseconds, read once per iteration.
  uint64_t now_ms() const { return now_ms_; }
  // Re-reads the clock (after long work inside an iteration).
  uint64_t refresh_now();
  // The loop-wide receive buffer: contents are valid only until the handler returns.
  std::span<uint8_t> receive_buffer() { return {receive_buffer_.data(), receive_buffer_.size()}; }

  // Iterations and events dispatched since start, for /metrics.
  uint64_t iterations() const { return iterations_; }

 private:
  struct Ready {
    int fd;
    uint32_t handler_and_tag;
  };
  class SignalHandler;
  class WakeHandler;

  void dispatch(uint64_t data, uint32_t events);
  int next_timeout() const;

  int epoll_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: stop() from outside the loop wakes epoll_wait
  std::atomic<bool> stopping_{false};
  WakeHandler* wake_handler_ = nullptr;
  uint64_t now_ms_ = 0;
  uint64_t iterations_ = 0;
  std::vector<EventHandler*> handlers_;
  std::vector<TimerWheel*> wheels_;
  std::vector<std::function<void()>> before_sleep_;
  std::vector<Ready> ready_;
  std::vector<Ready> ready_running_;
  std::vector<uint8_t> receive_buffer_;
  int signal_fd_ = -1;
  std::function<void(int)> on_signal_;
  SignalHandler* signal_handler_ = nullptr;
};

// Monotonic clock in milliseconds.
uint64_t monotonic_ms();

}  // namespace reactor
