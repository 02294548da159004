#include "reactor/event_loop.h"

#include <errno.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <climits>

#include "reactor/timer_wheel.h"

namespace reactor {

namespace {

constexpr int kMaxEvents = 1024;

// epoll_event.data.u64 layout: fd in the low 32 bits, then the 24-bit tag, then the handler id.
uint64_t pack(int fd, int handler_id, uint32_t tag) {
  return static_cast<uint32_t>(fd) | (static_cast<uint64_t>(tag & EventLoop::kMaxTag) << 32) |
         (static_cast<uint64_t>(handler_id) << 56);
}

}  // namespace

uint64_t monotonic_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

class EventLoop::SignalHandler : public EventHandler {
 public:
  explicit SignalHandler(EventLoop& loop) : loop_(loop) {}
  void on_event(int fd, uint32_t, uint32_t) override {
    signalfd_siginfo info;
    while (read(fd, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
      if (loop_.on_signal_) loop_.on_signal_(static_cast<int>(info.ssi_signo));
    }
  }

 private:
  EventLoop& loop_;
};

class EventLoop::WakeHandler : public EventHandler {
 public:
  void on_event(int fd, uint32_t, uint32_t) override {
    uint64_t count;
    while (read(fd, &count, sizeof count) == static_cast<ssize_t>(sizeof count)) {
    }
  }
};

EventLoop::EventLoop() : receive_buffer_(kReceiveBufferSize) {
  now_ms_ = monotonic_ms();
}

EventLoop::~EventLoop() {
  if (signal_fd_ >= 0) close(signal_fd_);
  if (wake_fd_ >= 0) close(wake_fd_);
  if (epoll_fd_ >= 0) close(epoll_fd_);
  delete signal_handler_;
  delete wake_handler_;
}

int EventLoop::open() {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) return -errno;
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) return -errno;
  wake_handler_ = new WakeHandler();
  int id = add_handler(wake_handler_);
  return watch(wake_fd_, id, 0, EPOLLIN);
}

void EventLoop::stop() {
  stopping_.store(true, std::memory_order_relaxed);
  if (wake_fd_ >= 0) {
    uint64_t one = 1;
    // write() is async-signal-safe; a full counter (EAGAIN) already means "wake up".
    ssize_t ignored = write(wake_fd_, &one, sizeof one);
    (void)ignored;
  }
}

int EventLoop::add_handler(EventHandler* handler) {
  if (handlers_.size() >= 256) return -1;
  handlers_.push_back(handler);
  return static_cast<int>(handlers_.size() - 1);
}

int EventLoop::watch(int fd, int handler_id, uint32_t tag, uint32_t events) {
  epoll_event event{};
  event.events = events;
  event.data.u64 = pack(fd, handler_id, tag);
  return epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) == 0 ? 0 : -errno;
}

int EventLoop::unwatch(int fd) { return epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr) == 0 ? 0 : -errno; }

void EventLoop::mark_ready(int fd, int handler_id, uint32_t tag) {
  ready_.push_back({fd, static_cast<uint32_t>(handler_id) << 24 | (tag & kMaxTag)});
}

void EventLoop::add_timer_wheel(TimerWheel* wheel) { wheels_.push_back(wheel); }

void EventLoop::add_before_sleep(std::function<void()> hook) { before_sleep_.push_back(std::move(hook)); }

int EventLoop::watch_signals(std::initializer_list<int> signals, std::function<void(int)> on_signal) {
  sigset_t mask;
  sigemptyset(&mask);
  for (int s : signals) sigaddset(&mask, s);
  if (sigprocmask(SIG_BLOCK, &mask, nullptr) != 0) return -errno;
  signal_fd_ = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  if (signal_fd_ < 0) return -errno;
  on_signal_ = std::move(on_signal);
  signal_handler_ = new SignalHandler(*this);
  int id = add_handler(signal_handler_);
  if (id < 0) return -EMFILE;
  return watch(signal_fd_, id, 0, EPOLLIN);
}

uint64_t EventLoop::refresh_now() {
  now_ms_ = monotonic_ms();
  return now_ms_;
}

int EventLoop::next_timeout() const {
  if (!ready_.empty()) return 0;
  int64_t timeout = -1;
  for (const TimerWheel* wheel : wheels_) {
    int64_t next = wheel->ms_until_next(now_ms_);
    if (next >= 0 && (timeout < 0 || next < timeout)) timeout = next;
  }
  return timeout < 0 ? -1 : static_cast<int>(std::min<int64_t>(timeout, INT_MAX));
}

void EventLoop::dispatch(uint64_t data, uint32_t events) {
  int fd = static_cast<int>(static_cast<uint32_t>(data));
  uint32_t tag = static_cast<uint32_t>(data >> 32) & kMaxTag;
  size_t handler_id = static_cast<size_t>(data >> 56);
  if (handler_id < handlers_.size()) handlers_[handler_id]->on_event(fd, tag, events);
}

int EventLoop::run() {
  epoll_event events[kMaxEvents];
  stopping_ = false;  // a loop stopped once can run again (embedders restart it)
  while (!stopping_) {
    for (auto& hook : before_sleep_) hook();
    if (stopping_) break;
    int n = epoll_wait(epoll_fd_, events, kMaxEvents, next_timeout());
    if (n < 0 && errno != EINTR) return -errno;
    now_ms_ = monotonic_ms();
    ++iterations_;
    // The wheels learn the time first: a handler arming a timeout after a long sleep must
    // count from now, not from the stale reading.
    for (TimerWheel* wheel : wheels_) wheel->set_now(now_ms_);
    // Fds whose budget ran out last time go first: the kernel will not report them again.
    ready_running_.swap(ready_);
    for (const Ready& ready : ready_running_) {
      uint32_t handler_id = ready.handler_and_tag >> 24;
      dispatch(pack(ready.fd, static_cast<int>(handler_id), ready.handler_and_tag & kMaxTag), EPOLLIN);
    }
    ready_running_.clear();
    for (int i = 0; i < n; ++i) dispatch(events[i].data.u64, events[i].events);
    // Timers fire after the input that was already waiting has been read: after a stall (the
    // process stopped or starved of CPU), a deadline that passed meanwhile must see the answer
    // that arrived before it (a heartbeat pong), not be judged on input still unread.
    for (TimerWheel* wheel : wheels_) wheel->advance(now_ms_);
  }
  for (auto& hook : before_sleep_) hook();
  return 0;
}

}  // namespace reactor
