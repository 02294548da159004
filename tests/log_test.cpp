// chat::Logger: never blocks on a reader that stopped, counts and reports dropped lines, keeps
// partial writes in order, escapes text and JSON lines, filters levels, rate-limits warn lines.
#include "chat/parleyd/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace {

using chat::LogFormat;
using chat::Logger;
using chat::LoggerOptions;
using chat::LogLevel;

// The fake wall clock: 2026-12-05T22:00:00.000Z plus what a test adds.
int64_t g_now_ms = 0;
constexpr int64_t kEpochMs = 1796508000000;  // 2026-12-05T22:00:00Z
int64_t fake_clock() { return kEpochMs + g_now_ms; }

struct Pipe {
  Pipe() {
    int fds[2];
    EXPECT_EQ(pipe2(fds, O_CLOEXEC), 0);
    read_fd = fds[0];
    write_fd = fds[1];
    fcntl(read_fd, F_SETFL, fcntl(read_fd, F_GETFL) | O_NONBLOCK);
  }
  ~Pipe() {
    if (read_fd >= 0) close(read_fd);
  }
  // Everything readable now.
  std::string drain() {
    std::string out;
    char buffer[65536];
    ssize_t n;
    while ((n = read(read_fd, buffer, sizeof buffer)) > 0) out.append(buffer, static_cast<size_t>(n));
    return out;
  }
  int read_fd = -1;
  int write_fd = -1;  // handed to the Logger, which closes it
};

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

LoggerOptions options(LogFormat format = LogFormat::kText) {
  LoggerOptions o;
  o.format = format;
  o.clock = fake_clock;
  o.level = LogLevel::kDebug;
  return o;
}

TEST(LogTest, StoppedReaderNeverBlocksAndDropsAreCountedThenReported) {
  Pipe pipe;
  LoggerOptions o = options();
  o.buffer_bytes = 16 * 1024;
  Logger log(pipe.write_fd, o);
  // 20,000 lines of ~100 bytes: 2 MB, far more than the pipe (64 KiB) and the buffer hold. Run
  // in a thread so that a logger that blocks fails this test instead of hanging the suite.
  auto writer = std::async(std::launch::async, [&] {
    for (int i = 0; i < 20000; ++i)
      log.warn("refused", {{"peer", "203.0.113.7:40000"}, {"reason", "rate_limited"}, {"i", i}});
  });
  if (writer.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
    ADD_FAILURE() << "the logger blocked on a full pipe";
    while (writer.wait_for(std::chrono::milliseconds(10)) != std::future_status::ready) pipe.drain();
    return;
  }
  EXPECT_GT(log.dropped_lines(), 15000u);
  EXPECT_LE(log.buffered_bytes(), o.buffer_bytes);
  const uint64_t dropped = log.dropped_lines();

  // The reader wakes up: what was written and buffered comes out whole and in order, then the
  // next line that gets out is preceded by the count of the lines lost.
  std::string out = pipe.drain();
  log.flush();
  out += pipe.drain();
  log.info("after the stall");
  out += pipe.drain();
  std::vector<std::string> lines = lines_of(out);
  ASSERT_GE(lines.size(), 3u);
  int last_i = -1;
  size_t kept = 0;
  for (size_t k = 0; k + 2 < lines.size(); ++k) {
    size_t at = lines[k].find(" i=");
    ASSERT_NE(at, std::string::npos) << "a torn or foreign line: " << lines[k];
    int i = std::stoi(lines[k].substr(at + 3));
    EXPECT_GT(i, last_i) << "out of order";
    last_i = i;
    ++kept;
  }
  EXPECT_EQ(kept + dropped, 20000u) << "every line is either written or counted as dropped";
  EXPECT_NE(lines[lines.size() - 2].find("warn " + std::to_string(dropped) + " log lines dropped dropped=" +
                                         std::to_string(dropped)),
            std::string::npos)
      << lines[lines.size() - 2];
  EXPECT_NE(lines.back().find("info after the stall"), std::string::npos) << lines.back();
  EXPECT_EQ(log.dropped_lines(), dropped) << "nothing more was lost once the reader caught up";
}

TEST(LogTest, PartialWritesKeepTheRestForTheNextFlush) {
  Pipe pipe;
  ASSERT_GT(fcntl(pipe.write_fd, F_SETPIPE_SZ, 4096), 0);
  Logger log(pipe.write_fd, options());
  const std::string big(20000, 'x');
  log.info(big);
  EXPECT_GT(log.buffered_bytes(), 0u) << "a 20 KB line cannot fit a 4 KiB pipe at once";
  std::string out;
  for (int round = 0; round < 100 && (log.buffered_bytes() > 0 || out.empty()); ++round) {
    out += pipe.drain();
    log.flush();
  }
  out += pipe.drain();
  EXPECT_EQ(log.buffered_bytes(), 0u);
  EXPECT_EQ(log.dropped_lines(), 0u);
  ASSERT_EQ(lines_of(out).size(), 1u);
  EXPECT_EQ(out, "2026-12-05T22:00:00.000Z parleyd info " + big + "\n");
}

TEST(LogTest, JsonLinesEscapeEverythingAPeerCanSend) {
  Pipe pipe;
  Logger log(pipe.write_fd, options(LogFormat::kJson));
  g_now_ms = 1234;
  log.warn("bad \"origin\"\n", {{"origin", "a\\b\x01\x7f"}, {"user", "caf\xc3\xa9"}, {"raw", "\xff\xfe" "ok"}, {"n", -5}});
  g_now_ms = 0;
  EXPECT_EQ(pipe.drain(),
            "{\"ts\":\"2026-12-05T22:00:01.234Z\",\"level\":\"warn\",\"prog\":\"parleyd\","
            "\"msg\":\"bad \\\"origin\\\"\\n\",\"origin\":\"a\\\\b\\u0001\\u007f\",\"user\":\"caf\xc3\xa9\","
            "\"raw\":\"\\ufffd\\ufffdok\",\"n\":-5}\n");
}

TEST(LogTest, TextLinesStayOneLineAndQuoteValues) {
  Pipe pipe;
  Logger log(pipe.write_fd, options());
  log.info("open", {{"peer", "[::1]:5"}, {"ua", "evil\nparleyd error forged"}, {"empty", ""}, {"q", "a \"b\""}});
  std::string out = pipe.drain();
  EXPECT_EQ(out,
            "2026-12-05T22:00:00.000Z parleyd info open peer=[::1]:5 ua=\"evil\\nparleyd error forged\" empty=\"\" "
            "q=\"a \\\"b\\\"\"\n");
}

TEST(LogTest, LevelsFilter) {
  Pipe pipe;
  LoggerOptions o = options();
  o.level = LogLevel::kWarn;
  o.program = "";
  Logger log(pipe.write_fd, o);
  EXPECT_TRUE(log.enabled(LogLevel::kError));
  EXPECT_FALSE(log.enabled(LogLevel::kInfo));
  log.debug("d");
  log.info("i");
  log.warn("w");
  log.error("e");
  log.set_level(LogLevel::kDebug);
  log.debug("d2");
  EXPECT_EQ(pipe.drain(),
            "2026-12-05T22:00:00.000Z warn w\n2026-12-05T22:00:00.000Z error e\n2026-12-05T22:00:00.000Z debug d2\n");

  LogLevel level = LogLevel::kInfo;
  EXPECT_TRUE(chat::parse_log_level("debug", level));
  EXPECT_EQ(level, LogLevel::kDebug);
  EXPECT_FALSE(chat::parse_log_level("verbose", level));
  EXPECT_EQ(level, LogLevel::kDebug);
  LogFormat format = LogFormat::kText;
  EXPECT_TRUE(chat::parse_log_format("json", format));
  EXPECT_EQ(format, LogFormat::kJson);
  EXPECT_FALSE(chat::parse_log_format("xml", format));
}

TEST(LogTest, WarnLinesAreRateLimitedPerKeyAndSummarised) {
  Pipe pipe;
  LoggerOptions o = options();
  o.warn_lines_per_key_per_second = 3;
  o.program = "";
  Logger log(pipe.write_fd, o);
  g_now_ms = 100;
  for (int i = 0; i < 10; ++i) log.warn_limited("429", "refused", {{"i", i}});
  log.warn_limited("403", "forbidden");  // another key has its own budget
  std::vector<std::string> lines = lines_of(pipe.drain());
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_NE(lines[2].find("refused i=2"), std::string::npos) << lines[2];
  EXPECT_NE(lines[3].find("forbidden"), std::string::npos) << lines[3];
  EXPECT_EQ(log.suppressed_lines(), 7u);

  g_now_ms = 900;  // same second: nothing to summarise yet
  log.tick();
  EXPECT_EQ(pipe.drain(), "");
  g_now_ms = 1100;  // the second is over: one summary for 429, none for 403
  log.tick();
  EXPECT_EQ(pipe.drain(), "2026-12-05T22:00:01.100Z warn 429: ... and 7 more like this suppressed=7\n");
  log.tick();
  EXPECT_EQ(pipe.drain(), "") << "a summary is written once";

  // Without tick(): the first line of a later second brings the summary of the earlier one.
  for (int i = 0; i < 5; ++i) log.warn_limited("429", "refused", {{"i", i}});
  g_now_ms = 2500;
  log.warn_limited("429", "refused", {{"i", 99}});
  lines = lines_of(pipe.drain());
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[3], "2026-12-05T22:00:02.500Z warn 429: ... and 2 more like this suppressed=2");
  EXPECT_EQ(lines[4], "2026-12-05T22:00:02.500Z warn refused i=99");
  g_now_ms = 0;
}

TEST(LogTest, RateLimitKeysAreBounded) {
  Pipe pipe;
  LoggerOptions o = options();
  o.warn_lines_per_key_per_second = 1;
  o.max_rate_keys = 2;
  Logger log(pipe.write_fd, o);
  // Keys past the cap share one window: only the first of them gets through this second.
  for (const char* key : {"a", "b", "c", "d", "e"}) log.warn_limited(key, key);
  std::vector<std::string> lines = lines_of(pipe.drain());
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_NE(lines[2].find(" c"), std::string::npos) << lines[2];
  EXPECT_EQ(log.suppressed_lines(), 2u);
}

TEST(LogTest, OpenStderrLeavesFdTwoBlocking) {
  int before = fcntl(STDERR_FILENO, F_GETFL);
  ASSERT_GE(before, 0);
  int fd = Logger::open_stderr();
  ASSERT_GE(fd, 0) << "open_stderr: " << -fd;
  {
    Logger log(fd, options());
    log.debug("log_test: a line on stderr through the non-blocking descriptor");
  }
  // Other writers to fd 2 (fprintf(stderr)) must not start getting EAGAIN.
  EXPECT_EQ(fcntl(STDERR_FILENO, F_GETFL) & O_NONBLOCK, before & O_NONBLOCK);
}

}  // namespace
