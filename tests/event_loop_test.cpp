#include "reactor/event_loop.h"

#include <errno.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "reactor/timer_wheel.h"

namespace {

using reactor::EventHandler;
using reactor::EventLoop;
using reactor::TimerNode;
using reactor::TimerWheel;

struct Event {
  int fd;
  uint32_t tag;
  uint32_t events;
  uint64_t iteration;
};

// Records every event and hands it to an optional script.
class Recorder : public EventHandler {
 public:
  explicit Recorder(EventLoop& loop) : loop_(loop) {}
  void on_event(int fd, uint32_t tag, uint32_t events) override {
    seen.push_back({fd, tag, events, loop_.iterations()});
    if (script) script(seen.back());
  }
  std::vector<Event> seen;
  std::function<void(const Event&)> script;

 private:
  EventLoop& loop_;
};

// A non-blocking stream socketpair; `watched` goes to the loop, `peer` is the test's end.
struct Pair {
  Pair() {
    int fds[2] = {-1, -1};
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds);
    watched = fds[0];
    peer = fds[1];
  }
  ~Pair() {
    if (watched >= 0) close(watched);
    if (peer >= 0) close(peer);
  }
  Pair(const Pair&) = delete;
  Pair& operator=(const Pair&) = delete;
  bool send(const char* text = "x") const { return write(peer, text, std::strlen(text)) > 0; }
  int watched = -1;
  int peer = -1;
};

// Stops a loop that would otherwise block forever: after `ms` a thread writes to a socket the
// loop watches, and the handler stops the loop and records that the watchdog had to act.
class Watchdog : public EventHandler {
 public:
  Watchdog(EventLoop& loop, int ms) : loop_(loop) {
    int id = loop.add_handler(this);
    loop.watch(pair_.watched, id, 0, EPOLLIN | EPOLLET);
    thread_ = std::thread([this, ms] {
      std::unique_lock<std::mutex> lock(mutex_);
      if (!cv_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return done_; })) pair_.send();
    });
  }
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void on_event(int, uint32_t, uint32_t) override {
    fired = true;
    loop_.stop();
  }
  bool fired = false;

 private:
  EventLoop& loop_;
  Pair pair_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

// A wheel with 1 ms ticks whose timers call their own std::function.
struct Timer {
  TimerNode node;  // first member: the node's address is the owner's
  std::function<void()> on_fire;
};

void fire_timer(void*, TimerNode* node) { reinterpret_cast<Timer*>(node)->on_fire(); }

class EventLoopTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(loop_.open(), 0); }
  EventLoop loop_;
};

TEST_F(EventLoopTest, DeliversReadableWithFdAndTag) {
  Pair pair;
  Recorder recorder(loop_);
  int id = loop_.add_handler(&recorder);
  ASSERT_GE(id, 0);
  ASSERT_EQ(loop_.watch(pair.watched, id, 0xABCDEF), 0);
  recorder.script = [&](const Event& e) {
    if (e.events & EPOLLIN) loop_.stop();
  };
  Watchdog watchdog(loop_, 2000);
  ASSERT_TRUE(pair.send());
  EXPECT_EQ(loop_.run(), 0);
  EXPECT_FALSE(watchdog.fired);
  ASSERT_FALSE(recorder.seen.empty());
  const Event& last = recorder.seen.back();
  EXPECT_EQ(last.fd, pair.watched);
  EXPECT_EQ(last.tag, 0xABCDEFu);
  EXPECT_TRUE(last.events & EPOLLIN);
}

TEST_F(EventLoopTest, EachHandlerGetsItsOwnFdsAndTags) {
  Pair first;
  Pair second;
  Recorder one(loop_);
  Recorder two(loop_);
  std::vector<std::unique_ptr<Recorder>> fillers;
  int id_one = loop_.add_handler(&one);
  // Push the second handler's id to the top of the range (254), where the packing is tightest.
  for (int i = id_one + 1; i < 254; ++i) {
    fillers.push_back(std::make_unique<Recorder>(loop_));
    ASSERT_EQ(loop_.add_handler(fillers.back().get()), i);
  }
  int id_two = loop_.add_handler(&two);
  ASSERT_EQ(id_two, 254);
  ASSERT_EQ(loop_.watch(first.watched, id_one, 0, EPOLLIN | EPOLLET), 0);
  ASSERT_EQ(loop_.watch(second.watched, id_two, EventLoop::kMaxTag, EPOLLIN | EPOLLET), 0);
  two.script = [&](const Event&) { loop_.stop(); };
  ASSERT_TRUE(first.send());
  ASSERT_TRUE(second.send());
  Watchdog watchdog(loop_, 2000);
  EXPECT_EQ(loop_.run(), 0);
  EXPECT_FALSE(watchdog.fired);
  ASSERT_EQ(one.seen.size(), 1u);
  EXPECT_EQ(one.seen[0].fd, first.watched);
  EXPECT_EQ(one.seen[0].tag, 0u);
  ASSERT_EQ(two.seen.size(), 1u);
  EXPECT_EQ(two.seen[0].fd, second.watched);
  EXPECT_EQ(two.seen[0].tag, EventLoop::kMaxTag);
  for (const auto& filler : fillers) EXPECT_TRUE(filler->seen.empty());
}

TEST_F(EventLoopTest, TagIsTruncatedTo24Bits) {
  Pair pair;
  Recorder recorder(loop_);
  int id = loop_.add_handler(&recorder);
  ASSERT_EQ(loop_.watch(pair.watched, id, 0x7F123456, EPOLLIN | EPOLLET), 0);
  recorder.script = [&](const Event&) { loop_.stop(); };
  ASSERT_TRUE(pair.send());
  Watchdog watchdog(loop_, 2000);
  loop_.run();
  ASSERT_EQ(recorder.seen.size(), 1u);
  EXPECT_EQ(recorder.seen[0].tag, 0x123456u);
}

TEST_F(EventLoopTest, AddHandlerStopsAt255) {
  // 256 ids fit the 8 bits epoll data keeps for them; open() takes one for its wake eventfd.
  std::vector<std::unique_ptr<Recorder>> handlers;
  for (int i = 0; i < 255; ++i) {
    handlers.push_back(std::make_unique<Recorder>(loop_));
    ASSERT_EQ(loop_.add_handler(handlers.back().get()), i + 1);
  }
  Recorder extra(loop_);
  EXPECT_EQ(loop_.add_handler(&extra), -1);
}

TEST_F(EventLoopTest, WatchAndUnwatchReportErrno) {
  Pair pair;
  Recorder recorder(loop_);
  int id = loop_.add_handler(&recorder);
  ASSERT_EQ(loop_.watch(pair.watched, id, 1), 0);
  EXPECT_EQ(loop_.watch(pair.watched, id, 1), -EEXIST);
  EXPECT_EQ(loop_.watch(-1, id, 1), -EBADF);
  EXPECT_EQ(loop_.unwatch(pair.watched), 0);
  EXPECT_EQ(loop_.unwatch(pair.watched), -ENOENT);
}

TEST_F(EventLoopTest, UnwatchedFdIsNotReported) {
  Pair quiet;
  Pair active;
  Recorder recorder(loop_);
  int id = loop_.add_handler(&recorder);
  ASSERT_EQ(loop_.watch(quiet.watched, id, 1, EPOLLIN | EPOLLET), 0);
  ASSERT_EQ(loop_.watch(active.watched, id, 2, EPOLLIN | EPOLLET), 0);
  ASSERT_EQ(loop_.unwatch(quiet.watched), 0);
  ASSERT_TRUE(quiet.send());
  ASSERT_TRUE(active.send());
  recorder.script = [&](const Event&) { loop_.stop(); };
  Watchdog watchdog(loop_, 2000);
  loop_.run();
  ASSERT_EQ(recorder.seen.size(), 1u);
  EXPECT_EQ(recorder.seen[0].tag, 2u);
}

TEST_F(EventLoopTest, EdgeTriggeredReportsOnlyNewData) {
  Pair pair;
  Recorder recorder(loop_);
  int id = loop_.add_handler(&recorder);
  ASSERT_EQ(loop_.watch(pair.watched, id, 5), 0);
  TimerWheel wheel(loop_.now_ms(), &fire_timer, nullptr, 1);
  loop_.add_timer_wheel(&wheel);
  Timer quiet_check;
  size_t events_before_quiet = 0;
  // First readable event: read nothing, and look again 30 ms later. Data is still unread, but
  // under EPOLLET the kernel must stay silent until more arrives.
  recorder.script = [&](const Event& e) {
    if (!(e.events & EPOLLIN)) return;
    size_t readable_events = 0;
    for (const Event& seen : recorder.seen) readable_events += (seen.events & EPOLLIN) ? 1 : 0;
    if (readable_events == 1) {
      wheel.schedule(&quiet_check.node, 30);
    } else {
      loop_.stop();
    }
  };
  quiet_check.on_fire = [&] {
    events_before_quiet = recorder.seen.size();
    ASSERT_TRUE(pair.send("more"));
  };
  ASSERT_TRUE(pair.send("first"));
  Watchdog watchdog(loop_, 2000);
  EXPECT_EQ(loop_.run(), 0);
  EXPECT_FALSE(watchdog.fired);
  // Exactly one event (IN, with the initial OUT) before the quiet period, one after new data.
  EXPECT_EQ(events_before_quiet, 1u);
  ASSERT_EQ(recorder.seen.size(), 2u);
  EXPECT_TRUE(recorder.seen[0].events & EPOLLIN);
  EXPECT_TRUE(recorder.seen[0].events & EPOLLOUT);
  EXPECT_TRUE(recorder.seen[1].events & EPOLLIN);
  EXPECT_GT(recorder.seen[1].iteration, recorder.seen[0].iteration);
  char buffer[64];
  EXPECT_EQ(read(pair.watched, buffer, sizeof buffer), 9);  // both writes were left unread
}

TEST_F(EventLoopTest, EpollOutOnlyAfterAFullSocketDrains) {
  Pair pair;
  int size = 4096;
  setsockopt(pair.watched, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  Recorder recorder(loop_);
  int id = loop_.add_handler(&recorder);
  ASSERT_EQ(loop_.watch(pair.watched, id, 9), 0);
  TimerWheel wheel(loop_.now_ms(), &fire_timer, nullptr, 1);
  loop_.add_timer_wheel(&wheel);
  Timer drain;
  size_t events_while_full = 0;
  recorder.script = [&](const Event&) {
    if (recorder.seen.size() == 1) {
      // Fill the socket until the kernel refuses, then let the peer drain it 20 ms later.
      char chunk[1024] = {};
      while (write(pair.watched, chunk, sizeof chunk) > 0) {
      }
      ASSERT_EQ(errno, EAGAIN);
      wheel.schedule(&drain.node, 20);
    } else {
      loop_.stop();
    }
  };
  drain.on_fire = [&] {
    events_while_full = recorder.seen.size();
    char buffer[65536];
    while (read(pair.peer, buffer, sizeof buffer) > 0) {
    }
  };
  Watchdog watchdog(loop_, 2000);
  loop_.run();
  EXPECT_FALSE(watchdog.fired);
  EXPECT_EQ(events_while_full, 1u);
  ASSERT_EQ(recorder.seen.size(), 2u);
  EXPECT_EQ(recorder.seen[0].events & EPOLLOUT, static_cast<uint32_t>(EPOLLOUT));
  EXPECT_EQ(recorder.seen[1].events & EPOLLOUT, static_cast<uint32_t>(EPOLLOUT));
}

TEST_F(EventLoopTest, PeerCloseReportsRdHup) {
  Pair pair;
  Recorder recorder(loop_);
  int id = loop_.add_handler(&recorder);
  ASSERT_EQ(loop_.watch(pair.watched, id, 3), 0);
  recorder.script = [&](const Event& e) {
    if (e.events & EPOLLRDHUP) loop_.stop();
  };
  close(pair.peer);
  pair.peer = -1;
  Watchdog watchdog(loop_, 2000);
  loop_.run();
  EXPECT_FALSE(watchdog.fired);
  ASSERT_FALSE(recorder.seen.empty());
  EXPECT_TRUE(recorder.seen.back().events & EPOLLRDHUP);
  EXPECT_TRUE(recorder.seen.back().events & EPOLLIN);
}

TEST_F(EventLoopTest, MarkReadyRedeliversInTheNextIteration) {
  Pair pair;
  Recorder recorder(loop_);
  int id = loop_.add_handler(&recorder);
  ASSERT_EQ(loop_.watch(pair.watched, id, 77, EPOLLIN | EPOLLET), 0);
  recorder.script = [&](const Event&) {
    // Pretend the read budget ran out twice, then the fd was drained.
    if (recorder.seen.size() < 3) {
      loop_.mark_ready(pair.watched, id, 77);
    } else {
      loop_.stop();
    }
  };
  ASSERT_TRUE(pair.send());
  Watchdog watchdog(loop_, 2000);
  const uint64_t start = reactor::monotonic_ms();
  EXPECT_EQ(loop_.run(), 0);
  EXPECT_FALSE(watchdog.fired);
  EXPECT_LT(reactor::monotonic_ms() - start, 1000u);
  ASSERT_EQ(recorder.seen.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(recorder.seen[i].fd, pair.watched);
    EXPECT_EQ(recorder.seen[i].tag, 77u);
    EXPECT_TRUE(recorder.seen[i].events & EPOLLIN);
  }
  // Re-deliveries are plain EPOLLIN, one iteration apart.
  EXPECT_EQ(recorder.seen[1].events, static_cast<uint32_t>(EPOLLIN));
  EXPECT_EQ(recorder.seen[1].iteration, recorder.seen[0].iteration + 1);
  EXPECT_EQ(recorder.seen[2].iteration, recorder.seen[1].iteration + 1);
}

TEST_F(EventLoopTest, MarkReadyDoesNotSleepEvenWithAFarTimer) {
  Pair pair;
  Recorder recorder(loop_);
  int id = loop_.add_handler(&recorder);
  TimerWheel wheel(loop_.now_ms(), &fire_timer, nullptr, 1);
  loop_.add_timer_wheel(&wheel);
  Timer far;
  far.on_fire = [] {};
  wheel.schedule(&far.node, 60000);
  recorder.script = [&](const Event&) {
    if (recorder.seen.size() == 1) {
      loop_.mark_ready(pair.watched, id, 4);
    } else {
      loop_.stop();
    }
  };
  // mark_ready before run(): the first wait must not block either.
  loop_.mark_ready(pair.watched, id, 3);
  Watchdog watchdog(loop_, 2000);
  const uint64_t start = reactor::monotonic_ms();
  loop_.run();
  EXPECT_FALSE(watchdog.fired);
  EXPECT_LT(reactor::monotonic_ms() - start, 1000u);
  ASSERT_EQ(recorder.seen.size(), 2u);
  EXPECT_EQ(recorder.seen[0].tag, 3u);
  EXPECT_EQ(recorder.seen[1].tag, 4u);
  wheel.cancel(&far.node);
}

TEST_F(EventLoopTest, BeforeSleepHooksRunEveryIterationInOrder) {
  Pair pair;
  Recorder recorder(loop_);
  int id = loop_.add_handler(&recorder);
  std::vector<int> calls;
  std::vector<uint64_t> iterations_seen;
  loop_.add_before_sleep([&] {
    calls.push_back(1);
    iterations_seen.push_back(loop_.iterations());
  });
  loop_.add_before_sleep([&] { calls.push_back(2); });
  recorder.script = [&](const Event&) {
    if (recorder.seen.size() < 5) {
      loop_.mark_ready(pair.watched, id, 0);
    } else {
      loop_.stop();
    }
  };
  loop_.mark_ready(pair.watched, id, 0);
  Watchdog watchdog(loop_, 2000);
  loop_.run();
  EXPECT_FALSE(watchdog.fired);
  EXPECT_EQ(loop_.iterations(), 5u);
  // Before each of the five waits, and once more as run() returns (a last flush).
  ASSERT_EQ(calls.size(), 12u);
  for (size_t i = 0; i < calls.size(); i += 2) {
    EXPECT_EQ(calls[i], 1);
    EXPECT_EQ(calls[i + 1], 2);
  }
  EXPECT_EQ(iterations_seen, (std::vector<uint64_t>{0, 1, 2, 3, 4, 5}));
}

TEST_F(EventLoopTest, BeforeSleepWorkIsSeenByTheFollowingWait) {
  // What a hook does (here: the peer writes, as a flush would) is picked up by the wait that
  // follows it, not one iteration later.
  Pair pair;
  Recorder recorder(loop_);
  int id = loop_.add_handler(&recorder);
  ASSERT_EQ(loop_.watch(pair.watched, id, 1, EPOLLIN | EPOLLET), 0);
  int hook_calls = 0;
  loop_.add_before_sleep([&] {
    if (++hook_calls == 1) pair.send();
  });
  recorder.script = [&](const Event&) { loop_.stop(); };
  Watchdog watchdog(loop_, 2000);
  loop_.run();
  EXPECT_FALSE(watchdog.fired);
  ASSERT_EQ(recorder.seen.size(), 1u);
  EXPECT_EQ(recorder.seen[0].iteration, 1u);
}

TEST_F(EventLoopTest, StopFromAHookReturnsWithoutWaiting) {
  int hook_calls = 0;
  loop_.add_before_sleep([&] {
    ++hook_calls;
    loop_.stop();
  });
  EXPECT_FALSE(loop_.stopping());
  Watchdog watchdog(loop_, 2000);
  EXPECT_EQ(loop_.run(), 0);
  EXPECT_FALSE(watchdog.fired);
  EXPECT_TRUE(loop_.stopping());
  EXPECT_EQ(loop_.iterations(), 0u);
  EXPECT_EQ(hook_calls, 2);  // the iteration's hook, then the final one on the way out
}

TEST_F(EventLoopTest, StopFromAHandlerFinishesTheIteration) {
  Pair first;
  Pair second;
  Recorder recorder(loop_);
  int id = loop_.add_handler(&recorder);
  ASSERT_EQ(loop_.watch(first.watched, id, 1, EPOLLIN | EPOLLET), 0);
  ASSERT_EQ(loop_.watch(second.watched, id, 2, EPOLLIN | EPOLLET), 0);
  recorder.script = [&](const Event&) { loop_.stop(); };
  ASSERT_TRUE(first.send());
  ASSERT_TRUE(second.send());
  Watchdog watchdog(loop_, 2000);
  EXPECT_EQ(loop_.run(), 0);
  EXPECT_FALSE(watchdog.fired);
  // Both events of the iteration were dispatched, and no further iteration ran.
  ASSERT_EQ(recorder.seen.size(), 2u);
  EXPECT_EQ(recorder.seen[0].iteration, 1u);
  EXPECT_EQ(recorder.seen[1].iteration, 1u);
  EXPECT_EQ(loop_.iterations(), 1u);
}

TEST_F(EventLoopTest, TimerWakesAnIdleLoopOnTime) {
  TimerWheel wheel(loop_.now_ms(), &fire_timer, nullptr, 1);
  loop_.add_timer_wheel(&wheel);
  Timer timer;
  uint64_t fired_at = 0;
  timer.on_fire = [&] {
    fired_at = reactor::monotonic_ms();
    loop_.stop();
  };
  Watchdog watchdog(loop_, 2000);  // no fd activity unless the loop fails to wake by itself
  const uint64_t start = reactor::monotonic_ms();
  wheel.schedule(&timer.node, 40);
  EXPECT_EQ(loop_.run(), 0);
  EXPECT_FALSE(watchdog.fired) << "the loop did not wake for its timer";
  ASSERT_NE(fired_at, 0u);
  EXPECT_GE(fired_at - start, 40u);
  EXPECT_LT(fired_at - start, 400u);
  // It slept until the timer was due instead of spinning.
  EXPECT_LE(loop_.iterations(), 5u);
}

TEST_F(EventLoopTest, TimersRescheduledFromCallbacksKeepFiring) {
  TimerWheel wheel(loop_.now_ms(), &fire_timer, nullptr, 1);
  loop_.add_timer_wheel(&wheel);
  Timer timer;
  std::vector<uint64_t> fired;
  timer.on_fire = [&] {
    fired.push_back(reactor::monotonic_ms());
    if (fired.size() < 3) {
      wheel.schedule(&timer.node, 15);
    } else {
      loop_.stop();
    }
  };
  Watchdog watchdog(loop_, 2000);
  const uint64_t start = reactor::monotonic_ms();
  wheel.schedule(&timer.node, 15);
  loop_.run();
  EXPECT_FALSE(watchdog.fired);
  ASSERT_EQ(fired.size(), 3u);
  EXPECT_GE(fired[2] - start, 45u);
  EXPECT_LT(fired[2] - start, 500u);
  EXPECT_LE(loop_.iterations(), 12u);
}

TEST_F(EventLoopTest, TheNearestTimerOfSeveralWheelsBoundsTheWait) {
  TimerWheel slow(loop_.now_ms(), &fire_timer, nullptr, 10);
  TimerWheel fast(loop_.now_ms(), &fire_timer, nullptr, 1);
  loop_.add_timer_wheel(&slow);
  loop_.add_timer_wheel(&fast);
  Timer far;
  Timer near;
  bool far_fired = false;
  uint64_t fired_at = 0;
  far.on_fire = [&] { far_fired = true; };
  near.on_fire = [&] {
    fired_at = reactor::monotonic_ms();
    loop_.stop();
  };
  Watchdog watchdog(loop_, 2000);
  const uint64_t start = reactor::monotonic_ms();
  slow.schedule(&far.node, 60000);
  fast.schedule(&near.node, 25);
  loop_.run();
  EXPECT_FALSE(watchdog.fired);
  EXPECT_FALSE(far_fired);
  ASSERT_NE(fired_at, 0u);
  EXPECT_GE(fired_at - start, 25u);
  EXPECT_LT(fired_at - start, 400u);
  slow.cancel(&far.node);
}

// After a stall (the process stopped or starved), input that arrived before a deadline is read
// before the deadline fires: a heartbeat pong waiting in the socket must count. A timeout armed
// by that input counts from the fresh clock reading, not from before the stall.
TEST_F(EventLoopTest, InputWaitingAfterAStallIsDispatchedBeforeDueTimers) {
  TimerWheel wheel(loop_.now_ms(), &fire_timer, nullptr, 1);
  loop_.add_timer_wheel(&wheel);
  Pair pair;
  Recorder recorder(loop_);
  const int id = loop_.add_handler(&recorder);
  ASSERT_EQ(loop_.watch(pair.watched, id, 1), 0);
  std::vector<std::string> order;
  Timer deadline;
  Timer armed_by_input;
  uint64_t armed_at = 0;
  uint64_t armed_fired_at = 0;
  deadline.on_fire = [&] { order.push_back("deadline"); };
  armed_by_input.on_fire = [&] {
    armed_fired_at = reactor::monotonic_ms();
    order.push_back("armed by input");
    loop_.stop();
  };
  recorder.script = [&](const Event& e) {
    if (!(e.events & EPOLLIN) || armed_at != 0) return;
    order.push_back("input");
    armed_at = loop_.now_ms();
    wheel.schedule(&armed_by_input.node, 20);
  };
  Watchdog watchdog(loop_, 2000);
  wheel.schedule(&deadline.node, 10);
  ASSERT_TRUE(pair.send());
  usleep(60 * 1000);  // the "stall": the deadline passes with the input unread
  EXPECT_EQ(loop_.run(), 0);
  EXPECT_FALSE(watchdog.fired);
  EXPECT_EQ(order, (std::vector<std::string>{"input", "deadline", "armed by input"}));
  EXPECT_GE(armed_fired_at, armed_at + 20) << "a timeout armed after the stall fired early";
}

TEST_F(EventLoopTest, NowIsMonotonicAndReadOncePerIteration) {
  const uint64_t first = loop_.now_ms();
  EXPECT_LE(first, reactor::monotonic_ms());
  EXPECT_GE(first + 1000, reactor::monotonic_ms());
  usleep(20 * 1000);
  EXPECT_EQ(loop_.now_ms(), first) << "now_ms() changed without an iteration or refresh";
  const uint64_t refreshed = loop_.refresh_now();
  EXPECT_GE(refreshed, first + 20);
  EXPECT_EQ(loop_.now_ms(), refreshed);
  EXPECT_GE(loop_.refresh_now(), refreshed);

  // Inside an iteration, now_ms() is the reading taken after the wait.
  Pair pair;
  Recorder recorder(loop_);
  int id = loop_.add_handler(&recorder);
  uint64_t in_handler = 0;
  recorder.script = [&](const Event&) {
    in_handler = loop_.now_ms();
    loop_.stop();
  };
  loop_.mark_ready(pair.watched, id, 0);
  const uint64_t before_run = reactor::monotonic_ms();
  loop_.run();
  EXPECT_GE(in_handler, before_run);
  EXPECT_LE(in_handler, reactor::monotonic_ms());
}

TEST_F(EventLoopTest, MonotonicClockNeverGoesBack) {
  uint64_t previous = reactor::monotonic_ms();
  for (int i = 0; i < 100000; ++i) {
    uint64_t now = reactor::monotonic_ms();
    ASSERT_GE(now, previous);
    previous = now;
  }
}

TEST_F(EventLoopTest, ReceiveBufferIsLoopWide) {
  auto buffer = loop_.receive_buffer();
  EXPECT_EQ(buffer.size(), EventLoop::kReceiveBufferSize);
  EXPECT_EQ(loop_.receive_buffer().data(), buffer.data());
  buffer[0] = 1;
  buffer[buffer.size() - 1] = 2;
}

// Runs `body` in a forked child (signal masks are process-wide: blocking SIGUSR1 here would
// leak into every later test) and returns its exit code, or -signal if it died.
int in_child(const std::function<int()>& body) {
  pid_t pid = fork();
  if (pid == 0) {
    alarm(5);  // a hung child dies of SIGALRM instead of hanging the suite
    _exit(body());
  }
  if (pid < 0) return -1000;
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1001;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return -WTERMSIG(status);
}

TEST(EventLoopSignalTest, DeliversARaisedSignalThroughTheLoop) {
  int rc = in_child([] {
    EventLoop loop;
    if (loop.open() != 0) return 10;
    int received = 0;
    int count = 0;
    if (loop.watch_signals({SIGUSR1}, [&](int signo) {
          received = signo;
          ++count;
          loop.stop();
        }) != 0) {
      return 11;
    }
    sigset_t blocked;
    sigprocmask(SIG_BLOCK, nullptr, &blocked);
    if (sigismember(&blocked, SIGUSR1) != 1) return 12;
    // raise() from the first hook: the loop must be waiting through its signalfd by then.
    bool raised = false;
    loop.add_before_sleep([&] {
      if (!raised) raised = raise(SIGUSR1) == 0;
    });
    if (loop.run() != 0) return 13;
    if (count != 1) return 14;
    return received == SIGUSR1 ? 0 : 15;
  });
  EXPECT_EQ(rc, 0);
}

TEST(EventLoopSignalTest, DeliversEachWatchedSignalNumber) {
  int rc = in_child([] {
    EventLoop loop;
    if (loop.open() != 0) return 10;
    std::vector<int> received;
    if (loop.watch_signals({SIGUSR1, SIGUSR2}, [&](int signo) {
          received.push_back(signo);
          if (received.size() == 2) loop.stop();
        }) != 0) {
      return 11;
    }
    // A handler added after watch_signals still gets its own id and events.
    Pair pair;
    Recorder recorder(loop);
    int id = loop.add_handler(&recorder);
    if (id < 0 || loop.watch(pair.watched, id, 8, EPOLLIN | EPOLLET) != 0) return 12;
    recorder.script = [&](const Event&) {
      kill(getpid(), SIGUSR1);
      kill(getpid(), SIGUSR2);
    };
    if (!pair.send()) return 13;
    if (loop.run() != 0) return 14;
    if (recorder.seen.size() != 1 || recorder.seen[0].tag != 8) return 15;
    if (received.size() != 2) return 16;
    bool usr1 = received[0] == SIGUSR1 || received[1] == SIGUSR1;
    bool usr2 = received[0] == SIGUSR2 || received[1] == SIGUSR2;
    return usr1 && usr2 ? 0 : 17;
  });
  EXPECT_EQ(rc, 0);
}

TEST(EventLoopSignalTest, ParentMaskIsUntouched) {
  // The signal tests ran in children: this process must still have SIGUSR1 unblocked.
  sigset_t blocked;
  ASSERT_EQ(sigprocmask(SIG_BLOCK, nullptr, &blocked), 0);
  EXPECT_EQ(sigismember(&blocked, SIGUSR1), 0);
  EXPECT_EQ(sigismember(&blocked, SIGUSR2), 0);
}

}  // namespace
