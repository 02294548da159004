// Append throughput of the room log (chat/store/room_log.h) with group commit:
//  - SqliteAppend/<window>/<sync_full>: the loop keeps `window` appends in flight against a real
//    SQLite file (in $PARLEY_STORE_BENCH_DIR, default /tmp) and waits for their completions
//    through the eventfd. One iteration = `window` appends acked. Counters: messages per commit
//    (group commit at work) and commits per second. sync_full 1 fsyncs every commit.
//  - MemoryAppend: the memory engine (`--store none`), the baseline.
// Wall-clock time (UseRealTime): the cost being measured is the disk and the writer thread, not
// the loop thread's CPU. Run on an otherwise idle machine; the numbers depend on the disk.
#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include <benchmark/benchmark.h>

#include "chat/store/memory_room_log.h"
#include "chat/store/room_log.h"
#include "reactor/event_loop.h"

namespace {

// Counts completions and stops the loop when `target` of them arrived.
class Counter : public chat::RoomLogClient {
 public:
  void on_appended(chat::AppendResult& result) override {
    if (result.status != chat::LogStatus::kOk) ++failed;
    if (++done == target && loop != nullptr) loop->stop();
  }
  void on_read(chat::ReadResult&) override {}
  reactor::EventLoop* loop = nullptr;
  uint64_t done = 0;
  uint64_t target = 0;
  uint64_t failed = 0;
};

std::string bench_dir() {
  const char* dir = getenv("PARLEY_STORE_BENCH_DIR");
  return dir != nullptr ? dir : "/tmp";
}

void SqliteAppend(benchmark::State& state) {
  const auto window = static_cast<uint64_t>(state.range(0));
  std::string path = bench_dir() + "/parley-store-bench-" + std::to_string(getpid()) + ".db";
  std::filesystem::remove(path);
  reactor::EventLoop loop;
  if (loop.open() != 0) {
    state.SkipWithError("loop.open failed");
    return;
  }
  chat::RoomLogConfig config;
  config.path = path;
  config.sync_full = state.range(1) != 0;
  config.history_keep = 1000;
  std::string error;
  std::unique_ptr<chat::RoomLog> log = chat::open_room_log(config, loop, error);
  if (log == nullptr) {
    state.SkipWithError(error.c_str());
    return;
  }
  Counter counter;
  counter.loop = &loop;
  log->set_client(&counter);
  const std::string text(100, 'x');
  uint64_t sent = 0;
  for (auto _ : state) {
    counter.target = counter.done + window;
    for (uint64_t i = 0; i < window; ++i, ++sent) {
      log->append({"room" + std::to_string(sent % 8), "bench", sent, text, "c" + std::to_string(sent), 0});
    }
    loop.run();
  }
  chat::RoomLogStats stats = log->stats();
  state.SetItemsProcessed(static_cast<int64_t>(stats.messages));
  state.counters["msgs_per_commit"] =
      stats.commits == 0 ? 0.0 : static_cast<double>(stats.messages) / static_cast<double>(stats.commits);
  state.counters["commits_per_s"] = benchmark::Counter(static_cast<double>(stats.commits), benchmark::Counter::kIsRate);
  state.counters["failed"] = static_cast<double>(counter.failed);
  log.reset();
  std::filesystem::remove(path);
  std::filesystem::remove(path + "-wal");
  std::filesystem::remove(path + "-shm");
}
BENCHMARK(SqliteAppend)
    ->ArgNames({"window", "sync_full"})
    ->Args({1, 0})
    ->Args({64, 0})
    ->Args({1024, 0})
    ->Args({1, 1})
    ->Args({64, 1})
    ->Args({1024, 1})
    ->UseRealTime();

void MemoryAppend(benchmark::State& state) {
  chat::RoomLogConfig config;
  config.history_keep = 1000;
  chat::MemoryRoomLog log(config);
  Counter counter;
  log.set_client(&counter);
  const std::string text(100, 'x');
  uint64_t sent = 0;
  for (auto _ : state) {
    log.append({"room" + std::to_string(sent % 8), "bench", sent, text, "c" + std::to_string(sent), 0});
    ++sent;
  }
  state.SetItemsProcessed(static_cast<int64_t>(sent));
}
BENCHMARK(MemoryAppend)->UseRealTime();

}  // namespace
