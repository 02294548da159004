// The SQLite store's writer thread blocks every signal (chat/store/sqlite_room_log.cpp, issue
// 14): a process-directed signal must reach the threads an embedder chose (parleyd's signalfd
// for SIGTERM), never the writer. Read back from /proc/self/task/*/status of the thread named
// parley-store; the opening thread's own mask must be left as it was.
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>

#include <cstdlib>
#include <dirent.h>
#include <fstream>
#include <sstream>
#include <string>

#include "chat/store/sqlite_room_log.h"
#include "reactor/event_loop.h"
#include "tests/support/room_log_test_support.h"

namespace {

// The SigBlk mask of the thread whose comm is `name`, or false when there is none.
bool blocked_mask_of_thread(const std::string& name, uint64_t& mask) {
  DIR* tasks = opendir("/proc/self/task");
  if (tasks == nullptr) return false;
  bool found = false;
  while (dirent* entry = readdir(tasks)) {
    if (entry->d_name[0] == '.') continue;
    std::string dir = std::string("/proc/self/task/") + entry->d_name;
    std::string comm;
    std::getline(std::ifstream(dir + "/comm"), comm);
    if (comm != name) continue;
    std::ifstream status(dir + "/status");
    for (std::string line; std::getline(status, line);) {
      if (line.rfind("SigBlk:", 0) == 0) {
        mask = std::strtoull(line.c_str() + 7, nullptr, 16);
        found = true;
      }
    }
  }
  closedir(tasks);
  return found;
}

bool bit(uint64_t mask, int signo) { return (mask >> (signo - 1)) & 1; }

TEST(StoreSignalMask, TheWriterThreadBlocksEverySignalAndTheCallersMaskIsKept) {
  sigset_t empty;
  sigset_t before;
  sigemptyset(&empty);
  ASSERT_EQ(pthread_sigmask(SIG_SETMASK, &empty, &before), 0);
  reactor::EventLoop loop;
  ASSERT_EQ(loop.open(), 0);
  room_log_test::TempDir dir;
  chat::RoomLogConfig config;
  config.path = dir.file("parley.db");
  std::string error;
  auto log = chat::SqliteRoomLog::open(config, loop, error);
  ASSERT_NE(log, nullptr) << error;

  uint64_t mask = 0;
  ASSERT_TRUE(blocked_mask_of_thread("parley-store", mask)) << "no thread named parley-store";
  for (int signo : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGCHLD, SIGPIPE, SIGALRM, SIGWINCH}) {
    EXPECT_TRUE(bit(mask, signo)) << "writer does not block signal " << signo << " (SigBlk " << std::hex << mask << ")";
  }
  sigset_t now;
  ASSERT_EQ(pthread_sigmask(SIG_SETMASK, nullptr, &now), 0);
  EXPECT_FALSE(sigismember(&now, SIGTERM));
  EXPECT_FALSE(sigismember(&now, SIGUSR1));
  log.reset();
  pthread_sigmask(SIG_SETMASK, &before, nullptr);
}

}  // namespace
