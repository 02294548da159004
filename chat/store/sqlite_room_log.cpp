#include "chat/store/sqlite_room_log.h"

#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <utility>

#include "chat/store/sqlite_store.h"

namespace chat {

SqliteRoomLog::SqliteRoomLog(const RoomLogConfig& config, reactor::EventLoop& loop) : config_(config), loop_(loop) {}

std::unique_ptr<SqliteRoomLog> SqliteRoomLog::open(const RoomLogConfig& config, reactor::EventLoop& loop,
                                                   std::string& error) {
  std::unique_ptr<SqliteRoomLog> log(new SqliteRoomLog(config, loop));
  if (log->config_.queue_limit == 0) log->config_.queue_limit = 1;
  if (log->config_.max_batch == 0) log->config_.max_batch = 1;
  log->store_ = SqliteStore::open(log->config_, error);
  if (log->store_ == nullptr) return nullptr;
  for (auto& [name, seq] : log->store_->conversations()) log->last_seq_.insert_or_assign(std::move(name), seq);
  log->wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (log->wake_fd_ < 0) {
    error = "store " + config.path + ": eventfd failed";
    return nullptr;
  }
  int handler = loop.add_handler(log.get());
  if (handler < 0 || loop.watch(log->wake_fd_, handler, 0, EPOLLIN) != 0) {
    error = "store " + config.path + ": cannot register with the event loop";
    return nullptr;
  }
  // The writer starts with every signal blocked (a new thread inherits its creator's mask), so
  // a process-directed signal is never delivered to it: an embedder's handlers and signalfds
  // (parleyd's SIGTERM drain) keep seeing every signal on the threads they chose.
  sigset_t all_signals;
  sigset_t previous;
  sigfillset(&all_signals);
  pthread_sigmask(SIG_BLOCK, &all_signals, &previous);
  log->writer_ = std::thread([raw = log.get()] { raw->writer_main(); });
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  // Names it for ps, top and /proc/PID/task/*/comm (15 characters at most).
  pthread_setname_np(log->writer_.native_handle(), "parley-store");
  return log;
}

SqliteRoomLog::~SqliteRoomLog() {
  if (writer_.joinable()) {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    work_ready_.notify_one();
    writer_.join();
    deliver();
  }
  if (wake_fd_ >= 0) {
    loop_.unwatch(wake_fd_);
    close(wake_fd_);
  }
}

Submit SqliteRoomLog::submit(Job&& job) {
  if (in_flight_ >= config_.queue_limit) {
    ++rejected_full_;
    refused_ = true;
    return Submit::kFull;
  }
  ++in_flight_;
  bool was_empty;
  {
    std::lock_guard lock(mutex_);
    was_empty = incoming_.empty();
    incoming_.push_back(std::move(job));
  }
  // The writer waits only with incoming_ empty; otherwise it is busy and will look again.
  if (was_empty) work_ready_.notify_one();
  return Submit::kAccepted;
}

Submit SqliteRoomLog::append(AppendRequest request) {
  Job job;
  job.kind = Job::Kind::kAppend;
  job.append.request = std::move(request);
  return submit(std::move(job));
}

Submit SqliteRoomLog::read(ReadKind kind, std::string_view conversation, uint64_t bound, size_t limit,
                           uint64_t cookie) {
  Job job;
  job.kind = Job::Kind::kRead;
  job.read.kind = kind;
  job.read.conversation = conversation;
  job.read.cookie = cookie;
  job.bound = bound;
  job.limit = limit;
  return submit(std::move(job));
}

Submit SqliteRoomLog::history(std::string_view conversation, uint64_t before_seq, size_t limit, uint64_t cookie) {
  return read(ReadKind::kHistory, conversation, before_seq, limit, cookie);
}

Submit SqliteRoomLog::since(std::string_view conversation, uint64_t since_seq, size_t limit, uint64_t cookie) {
  return read(ReadKind::kSince, conversation, since_seq, limit, cookie);
}

uint64_t SqliteRoomLog::last_seq(std::string_view conversation) const {
  const uint64_t* seq = last_seq_.find(conversation);
  return seq == nullptr ? 0 : *seq;
}

RoomLogStats SqliteRoomLog::stats() const {
  RoomLogStats stats;
  stats.commits = commits_.load(std::memory_order_relaxed);
  stats.batches = batches_.load(std::memory_order_relaxed);
  stats.errors = errors_.load(std::memory_order_relaxed);
  stats.max_batch = max_batch_.load(std::memory_order_relaxed);
  stats.messages = messages_;
  stats.unavailable = unavailable_;
  stats.duplicates = duplicates_;
  stats.rejected_full = rejected_full_;
  stats.reads = reads_;
  stats.queue_depth = in_flight_;
  stats.queue_limit = config_.queue_limit;
  return stats;
}

std::string SqliteRoomLog::last_error() const {
  std::lock_guard lock(mutex_);
  return last_error_;
}

void SqliteRoomLog::sweep_soon() {
  {
    std::lock_guard lock(mutex_);
    sweep_requested_ = true;
  }
  work_ready_.notify_one();
}

void SqliteRoomLog::on_event(int fd, uint32_t, uint32_t) {
  // Reset the counter before taking the jobs: a post after the swap writes it again.
  uint64_t count;
  while (::read(fd, &count, sizeof count) == static_cast<ssize_t>(sizeof count)) {
  }
  deliver();
}

void SqliteRoomLog::deliver() {
  {
    std::lock_guard lock(mutex_);
    delivering_.swap(done_);
  }
  for (Job& job : delivering_) {
    --in_flight_;
    if (job.kind == Job::Kind::kAppend) {
      AppendResult& result = job.append;
      if (result.status == LogStatus::kOk) {
        ++messages_;
        auto [seq, inserted] = last_seq_.try_emplace(result.request.conversation, result.seq);
        if (!inserted && *seq < result.seq) *seq = result.seq;
      } else if (result.status == LogStatus::kDuplicate) {
        ++duplicates_;
      } else {
        ++unavailable_;
      }
      if (client_ != nullptr) client_->on_appended(result);
    } else {
      ++reads_;
      if (client_ != nullptr) client_->on_read(job.read);
    }
  }
  delivering_.clear();
  if (refused_ && in_flight_ <= config_.queue_limit / 2) {
    refused_ = false;
    if (client_ != nullptr) client_->on_writable();
  }
}

void SqliteRoomLog::post(std::vector<Job>& work, const std::vector<size_t>& indexes) {
  bool was_empty;
  {
    std::lock_guard lock(mutex_);
    was_empty = done_.empty();
    for (size_t index : indexes) done_.push_back(std::move(work[index]));
  }
  if (was_empty) {
    uint64_t one = 1;
    ssize_t ignored = write(wake_fd_, &one, sizeof one);  // EAGAIN: the counter is already set
    (void)ignored;
  }
}

void SqliteRoomLog::note_write(bool ok, const std::string& error) {
  std::lock_guard lock(mutex_);
  // One line per change of state, not per failed batch: a full disk fails every batch.
  if (!ok && last_error_ != error) {
    std::fprintf(stderr, "parleyd: store %s: write failed, senders get 'unavailable': %s\n", config_.path.c_str(),
                 error.c_str());
    last_error_ = error;
  } else if (ok && !last_error_.empty()) {
    std::fprintf(stderr, "parleyd: store %s: writes succeed again\n", config_.path.c_str());
    last_error_.clear();
  }
}

void SqliteRoomLog::process(std::vector<Job>& work) {
  std::vector<size_t> appends;
  std::vector<size_t> reads;
  for (size_t i = 0; i < work.size(); ++i) (work[i].kind == Job::Kind::kAppend ? appends : reads).push_back(i);
  std::vector<AppendResult*> batch;
  std::vector<size_t> chunk;
  std::string error;
  for (size_t first = 0; first < appends.size(); first += config_.max_batch) {
    size_t last = std::min(appends.size(), first + config_.max_batch);
    batch.clear();
    chunk.assign(appends.begin() + static_cast<ptrdiff_t>(first), appends.begin() + static_cast<ptrdiff_t>(last));
    for (size_t index : chunk) batch.push_back(&work[index].append);
    bool ok = store_->append_batch(batch, error);
    batches_.fetch_add(1, std::memory_order_relaxed);
    if (ok) {
      commits_.fetch_add(1, std::memory_order_relaxed);
      if (batch.size() > max_batch_.load(std::memory_order_relaxed)) {
        max_batch_.store(batch.size(), std::memory_order_relaxed);
      }
    } else {
      errors_.fetch_add(1, std::memory_order_relaxed);
    }
    note_write(ok, error);
    post(work, chunk);
  }
  // Reads after the appends they were queued with: each result holds exactly the appends
  // delivered before it (room_log.h "Threading and order").
  for (size_t index : reads) {
    Job& job = work[index];
    store_->read(job.bound, job.limit, job.read);
    post(work, {index});
  }
}

void SqliteRoomLog::writer_main() {
  using Clock = std::chrono::steady_clock;
  const auto interval = std::chrono::milliseconds(std::max<uint64_t>(config_.sweep_interval_ms, 1));
  auto next_sweep = Clock::now();  // once at start: a restart after a long stop prunes at once
  std::vector<Job> work;
  std::unique_lock lock(mutex_);
  while (true) {
    if (incoming_.empty() && !stopping_ && !sweep_requested_) work_ready_.wait_until(lock, next_sweep);
    work.swap(incoming_);
    bool stop = stopping_ && work.empty();
    bool sweep = sweep_requested_ || Clock::now() >= next_sweep;
    sweep_requested_ = false;
    lock.unlock();
    // Before the work taken with it: requests submitted after sweep_soon() see its effect.
    if (sweep && !stop) {
      std::string error;
      uint64_t now = config_.wall_clock_ms != nullptr ? config_.wall_clock_ms() : room_log_realtime_ms();
      if (!store_->sweep(now, error)) {
        errors_.fetch_add(1, std::memory_order_relaxed);
        note_write(false, error);
      }
      next_sweep = Clock::now() + interval;
    }
    if (!work.empty()) process(work);
    work.clear();
    lock.lock();
    if (stop) break;
  }
}

}  // namespace chat
