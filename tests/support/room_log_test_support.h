#pragma once
// Shared by the room-log tests: a temporary directory, a client that records completions, and
// a way to run an EventLoop until enough completions arrived.
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "chat/store/room_log.h"
#include "reactor/event_loop.h"
#include "tests/support/loop_watchdog.h"

namespace room_log_test {

// A fresh directory under /tmp, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/parley-store-XXXXXX";
    if (mkdtemp(pattern) != nullptr) path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Records every completion in order (appends and reads interleaved in `order`), and stops
// `loop` once `until` holds.
class RecordingClient : public chat::RoomLogClient {
 public:
  struct Entry {
    bool read = false;
    size_t index = 0;  // into appended or reads
  };
  void on_appended(chat::AppendResult& result) override {
    threads.push_back(std::this_thread::get_id());
    appended.push_back(std::move(result));
    order.push_back({false, appended.size() - 1});
    check();
  }
  void on_read(chat::ReadResult& result) override {
    threads.push_back(std::this_thread::get_id());
    reads.push_back(std::move(result));
    order.push_back({true, reads.size() - 1});
    check();
  }
  void on_writable() override { ++writable; }
  void check() {
    if (loop != nullptr && until && until()) loop->stop();
  }

  std::vector<chat::AppendResult> appended;
  std::vector<chat::ReadResult> reads;
  std::vector<Entry> order;
  std::vector<std::thread::id> threads;
  int writable = 0;
  reactor::EventLoop* loop = nullptr;
  std::function<bool()> until;
};

// Runs `loop` until `until` holds (checked after each completion of `client`), for at most
// `timeout_ms`. Returns until() (false: timed out).
inline bool pump(reactor::EventLoop& loop, RecordingClient& client, std::function<bool()> until,
                 int timeout_ms = 30000) {
  if (until()) return true;
  client.loop = &loop;
  client.until = until;
  parley_test::run_loop_at_most(loop, timeout_ms);
  client.until = nullptr;
  return until();
}

// An AppendRequest in one line.
inline chat::AppendRequest message(std::string conversation, std::string sender, uint64_t ts, std::string text,
                                   std::string client_id = {}, uint64_t cookie = 0) {
  chat::AppendRequest request;
  request.conversation = std::move(conversation);
  request.sender = std::move(sender);
  request.ts_ms = ts;
  request.text = std::move(text);
  request.client_id = std::move(client_id);
  request.cookie = cookie;
  return request;
}

}  // namespace room_log_test
