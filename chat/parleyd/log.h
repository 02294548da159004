#pragma once
// chat::Logger: parleyd's leveled log (error, warn, info, debug) to stderr, as text or JSON
// lines, that never blocks the reactor.
//
//   chat::Logger log(chat::Logger::open_stderr(), {.level = chat::LogLevel::kInfo});
//   log.info("listening", {{"address", "127.0.0.1:8080"}});
//   log.warn_limited("429", "refused", {{"peer", peer}, {"reason", "handshake_rate"}});
//   log.flush();   // at the end of each loop iteration: writes what the terminal takes now
//
// Never blocking: a line is formatted into a bounded buffer (LoggerOptions::buffer_bytes) and
// written with non-blocking writes; what the fd does not take (a stopped terminal, a full pipe)
// stays for the next flush(). When the buffer is full the line is dropped and counted; the next
// line that fits is preceded by "N log lines dropped". warn_limited() lets K lines per key and
// second through, then one "... and N more like this" when that second is over.
//
// Single-threaded: one Logger per process (each --workers worker has its own), used from the
// loop thread only. Other threads (the store's writer) hand their messages to the loop first.
#include <sys/types.h>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <functional>
#include <unordered_map>

namespace chat {

// Ordered by severity: a logger at level L writes lines of level L and every level before it.
enum class LogLevel : uint8_t { kError, kWarn, kInfo, kDebug };
enum class LogFormat : uint8_t { kText, kJson };

// "error", "warn", "info", "debug".
const char* log_level_name(LogLevel level);
// Parses a --log-level value; false (out untouched) for anything but the four names.
bool parse_log_level(std::string_view text, LogLevel& out);
// Parses a --log-format value ("text" or "json"); false (out untouched) otherwise.
bool parse_log_format(std::string_view text, LogFormat& out);

// One key=value of a line. Values are text or integers; both are views, valid for the call.
struct LogField {
  LogField(std::string_view key_in, std::string_view text_in) : key(key_in), text(text_in) {}
  LogField(std::string_view key_in, const char* text_in) : key(key_in), text(text_in) {}
  template <std::integral T>
  LogField(std::string_view key_in, T number_in)
      : key(key_in), number(static_cast<int64_t>(number_in)), is_number(true) {}

  std::string_view key;
  std::string_view text;
  int64_t number = 0;
  bool is_number = false;
};
using LogFields = std::initializer_list<LogField>;

// Wall-clock milliseconds since the epoch: the timestamp of each line and the rate limiter's
// seconds. Replaceable for tests.
using LogClock = int64_t (*)();

struct LoggerOptions {
  LogLevel level = LogLevel::kInfo;
  LogFormat format = LogFormat::kText;
  // Bytes of formatted lines held while the fd does not take them; past it lines are dropped.
  size_t buffer_bytes = 256 * 1024;
  // warn_limited(): lines per key per second, 0 = no limit.
  uint32_t warn_lines_per_key_per_second = 5;
  // Distinct warn_limited() keys tracked; further keys share one bucket ("other").
  size_t max_rate_keys = 256;
  // Prefix of text lines (before the level) and "prog" of JSON lines; empty = none.
  std::string program = "parleyd";
  // nullptr = CLOCK_REALTIME.
  LogClock clock = nullptr;
};

class Logger {
 public:
  // Writes to `fd` (taken over: closed by the destructor; a pipe or terminal is set O_NONBLOCK,
  // which every dup() of it shares, hence open_stderr()); -1 discards every line.
  Logger(int fd, LoggerOptions options);
  // Flushes what the fd takes without blocking, then closes it. Lines still buffered are lost.
  ~Logger();
  Logger(const Logger&) = delete;
  Logger& operator=(const Logger&) = delete;

  // A descriptor for stderr whose writes never block, for the constructor: a socket (systemd's
  // journal) is dup()ed and written with send(MSG_DONTWAIT); a pipe or terminal is reopened
  // through /proc/self/fd/2 with O_NONBLOCK, so fd 2's own blocking mode is left alone; a regular
  // file is dup()ed. Returns -errno when none of that works.
  static int open_stderr();

  // True when a line of `level` would be written: callers skip building costly fields otherwise.
  bool enabled(LogLevel level) const { return level <= options_.level; }
  // Changes the level (SIGHUP reload); takes effect with the next line.
  void set_level(LogLevel level) { options_.level = level; }
  LogLevel level() const { return options_.level; }

  // Formats one line (if `level` is enabled) and writes what the fd takes now.
  void log(LogLevel level, std::string_view message, LogFields fields = {});
  void error(std::string_view message, LogFields fields = {}) { log(LogLevel::kError, message, fields); }
  void warn(std::string_view message, LogFields fields = {}) { log(LogLevel::kWarn, message, fields); }
  void info(std::string_view message, LogFields fields = {}) { log(LogLevel::kInfo, message, fields); }
  void debug(std::string_view message, LogFields fields = {}) { log(LogLevel::kDebug, message, fields); }

  // A warn line limited per `key` (e.g. a refusal reason): at most
  // warn_lines_per_key_per_second in one clock second; the rest are counted and summarised
  // ("<key>: ... and N more like this") by the first call or tick() after that second.
  void warn_limited(std::string_view key, std::string_view message, LogFields fields = {});
  // Writes the summaries of rate-limit seconds that are over (call about once a second, e.g.
  // from the loop's timer), then flushes.
  void tick();

  // Writes buffered bytes until the fd would block; returns the bytes still buffered.
  size_t flush();

  // Lines dropped because the buffer was full, since construction.
  uint64_t dropped_lines() const { return dropped_total_; }
  // warn_limited() lines suppressed by the rate limit, since construction.
  uint64_t suppressed_lines() const { return suppressed_total_; }
  // Bytes formatted and waiting for the fd.
  size_t buffered_bytes() const { return pending_.size(); }

 private:
  struct RateWindow {
    int64_t second = 0;
    uint32_t lines = 0;
    uint64_t suppressed = 0;
  };

  int64_t now_ms() const;
  // Appends one formatted line, newline included, to `out`.
  void format(std::string& out, LogLevel level, std::string_view message, LogFields fields, int64_t now) const;
  // Queues scratch_ (after a drop report, if one is owed) or drops it; then flushes.
  void enqueue(int64_t now);
  void summarise(std::string_view key, RateWindow& window, int64_t now);
  ssize_t write_some(const char* data, size_t size);

  int fd_;
  bool socket_ = false;
  LoggerOptions options_;
  std::string pending_;
  std::string scratch_;
  std::string report_;
  uint64_t dropped_unreported_ = 0;
  uint64_t dropped_total_ = 0;
  uint64_t suppressed_total_ = 0;
  struct KeyHash {
    using is_transparent = void;
    size_t operator()(std::string_view key) const { return std::hash<std::string_view>{}(key); }
  };
  std::unordered_map<std::string, RateWindow, KeyHash, std::equal_to<>> windows_;
};

}  // namespace chat
