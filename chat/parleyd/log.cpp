#include "chat/parleyd/log.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "protocol/utf8.h"

namespace chat {

namespace {

constexpr std::string_view kOtherKey = "other";

int64_t realtime_ms() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// RFC 3339 UTC with milliseconds: 2026-12-05T22:49:15.123Z.
void append_timestamp(std::string& out, int64_t ms) {
  time_t seconds = static_cast<time_t>(ms / 1000);
  tm parts{};
  gmtime_r(&seconds, &parts);
  char buffer[32];
  int n = std::snprintf(buffer, sizeof buffer, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", parts.tm_year + 1900,
                        parts.tm_mon + 1, parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec,
                        static_cast<int>(ms % 1000));
  out.append(buffer, static_cast<size_t>(n));
}

void append_hex_escape(std::string& out, unsigned value) {
  char buffer[8];
  std::snprintf(buffer, sizeof buffer, "\\u%04x", value);
  out += buffer;
}

// RFC 8259 7: quote, backslash and control characters are escaped. Values come from peers
// (addresses, Origin headers, user names): text that is not UTF-8 keeps its ASCII and has every
// other byte replaced by U+FFFD, so the line stays valid JSON.
void append_json_string(std::string& out, std::string_view text) {
  const bool valid = protocol::utf8_is_valid(text);
  out += '"';
  for (char c : text) {
    unsigned char byte = static_cast<unsigned char>(c);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (byte < 0x20 || byte == 0x7f) append_hex_escape(out, byte);
        else if (byte >= 0x80 && !valid) out += "\\ufffd";
        else out += c;
    }
  }
  out += '"';
}

// Text lines are one line each whatever a peer sends: control characters (a newline would forge
// a second log line) are escaped; a value with a space, quote or '=' is quoted.
void append_text_value(std::string& out, std::string_view text, bool quote_if_needed) {
  bool quote = quote_if_needed && (text.empty() || text.find_first_of(" \"=") != std::string_view::npos);
  if (quote) out += '"';
  for (char c : text) {
    unsigned char byte = static_cast<unsigned char>(c);
    if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c == '\\') out += "\\\\";
    else if (c == '"' && quote) out += "\\\"";
    else if (byte < 0x20 || byte == 0x7f) {
      char buffer[8];
      std::snprintf(buffer, sizeof buffer, "\\x%02x", byte);
      out += buffer;
    } else out += c;
  }
  if (quote) out += '"';
}

}  // namespace

const char* log_level_name(LogLevel level) {
  switch (level) {
    case LogLevel::kError: return "error";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kInfo: return "info";
    case LogLevel::kDebug: return "debug";
  }
  return "unknown";
}

bool parse_log_level(std::string_view text, LogLevel& out) {
  for (LogLevel level : {LogLevel::kError, LogLevel::kWarn, LogLevel::kInfo, LogLevel::kDebug}) {
    if (text == log_level_name(level)) {
      out = level;
      return true;
    }
  }
  return false;
}

bool parse_log_format(std::string_view text, LogFormat& out) {
  if (text == "text") out = LogFormat::kText;
  else if (text == "json") out = LogFormat::kJson;
  else return false;
  return true;
}

int Logger::open_stderr() {
  struct stat st {};
  if (fstat(STDERR_FILENO, &st) != 0) return -errno;
  if (!S_ISSOCK(st.st_mode) && !S_ISREG(st.st_mode)) {
    // A new open file description: O_NONBLOCK on it does not change fd 2 for other writers.
    int fd = open("/proc/self/fd/2", O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd >= 0) return fd;
  }
  int fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
  return fd < 0 ? -errno : fd;
}

Logger::Logger(int fd, LoggerOptions options) : fd_(fd), options_(std::move(options)) {
  struct stat st {};
  if (fd_ >= 0 && fstat(fd_, &st) == 0) {
    socket_ = S_ISSOCK(st.st_mode);
    if (!socket_ && !S_ISREG(st.st_mode)) {
      int flags = fcntl(fd_, F_GETFL);
      if (flags >= 0 && !(flags & O_NONBLOCK)) fcntl(fd_, F_SETFL, flags | O_NONBLOCK);
    }
  }
}

Logger::~Logger() {
  flush();
  if (fd_ >= 0) close(fd_);
}

int64_t Logger::now_ms() const { return options_.clock != nullptr ? options_.clock() : realtime_ms(); }

void Logger::format(std::string& out, LogLevel level, std::string_view message, LogFields fields,
                    int64_t now) const {
  if (options_.format == LogFormat::kJson) {
    out += "{\"ts\":\"";
    append_timestamp(out, now);
    out += "\",\"level\":\"";
    out += log_level_name(level);
    out += '"';
    if (!options_.program.empty()) {
      out += ",\"prog\":";
      append_json_string(out, options_.program);
    }
    out += ",\"msg\":";
    append_json_string(out, message);
    for (const LogField& field : fields) {
      out += ',';
      append_json_string(out, field.key);
      out += ':';
      if (field.is_number) out += std::to_string(field.number);
      else append_json_string(out, field.text);
    }
    out += "}\n";
    return;
  }
  append_timestamp(out, now);
  out += ' ';
  if (!options_.program.empty()) {
    out += options_.program;
    out += ' ';
  }
  out += log_level_name(level);
  out += ' ';
  append_text_value(out, message, false);
  for (const LogField& field : fields) {
    out += ' ';
    append_text_value(out, field.key, false);
    out += '=';
    if (field.is_number) out += std::to_string(field.number);
    else append_text_value(out, field.text, true);
  }
  out += '\n';
}

void Logger::log(LogLevel level, std::string_view message, LogFields fields) {
  if (!enabled(level)) return;
  int64_t now = now_ms();
  scratch_.clear();
  format(scratch_, level, message, fields, now);
  enqueue(now);
}

void Logger::enqueue(int64_t now) {
  if (fd_ < 0) return;
  flush();  // make room first: the fd may have drained since the last line
  size_t need = scratch_.size();
  report_.clear();
  if (dropped_unreported_ > 0) {
    format(report_, LogLevel::kWarn, std::to_string(dropped_unreported_) + " log lines dropped",
           {{"dropped", dropped_unreported_}}, now);
    need += report_.size();
  }
  if (pending_.size() + need > options_.buffer_bytes) {
    ++dropped_unreported_;
    ++dropped_total_;
    return;
  }
  pending_ += report_;
  dropped_unreported_ = 0;
  pending_ += scratch_;
  flush();
}

ssize_t Logger::write_some(const char* data, size_t size) {
  // send(MSG_DONTWAIT) makes this one call non-blocking without touching the socket's flags,
  // which systemd's journal stream shares with every other writer to our stderr.
  if (socket_) return send(fd_, data, size, MSG_DONTWAIT | MSG_NOSIGNAL);
  return write(fd_, data, size);
}

size_t Logger::flush() {
  while (fd_ >= 0 && !pending_.empty()) {
    ssize_t n = write_some(pending_.data(), pending_.size());
    if (n > 0) {
      pending_.erase(0, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    // EPIPE, EIO, ...: nothing will get out; what was waiting counts as dropped. A line cut
    // short by an earlier partial write counts too.
    uint64_t lines = static_cast<uint64_t>(std::count(pending_.begin(), pending_.end(), '\n'));
    dropped_unreported_ += lines;
    dropped_total_ += lines;
    pending_.clear();
    break;
  }
  return pending_.size();
}

void Logger::warn_limited(std::string_view key, std::string_view message, LogFields fields) {
  if (!enabled(LogLevel::kWarn)) return;
  const uint32_t limit = options_.warn_lines_per_key_per_second;
  if (limit == 0) {
    log(LogLevel::kWarn, message, fields);
    return;
  }
  int64_t now = now_ms();
  int64_t second = now / 1000;
  auto it = windows_.find(key);
  if (it == windows_.end()) {
    // Keys are meant to be a small fixed set (refusal reasons); past max_rate_keys they share
    // one window so that a key made of peer data cannot grow the map.
    if (windows_.size() >= options_.max_rate_keys) key = kOtherKey;
    it = windows_.try_emplace(std::string(key)).first;
    it->second.second = second;
  }
  RateWindow& window = it->second;
  if (window.second != second) {
    if (window.suppressed > 0) summarise(it->first, window, now);
    window.second = second;
    window.lines = 0;
  }
  if (window.lines >= limit) {
    ++window.suppressed;
    ++suppressed_total_;
    return;
  }
  ++window.lines;
  scratch_.clear();
  format(scratch_, LogLevel::kWarn, message, fields, now);
  enqueue(now);
}

void Logger::summarise(std::string_view key, RateWindow& window, int64_t now) {
  scratch_.clear();
  format(scratch_, LogLevel::kWarn,
         std::string(key) + ": ... and " + std::to_string(window.suppressed) + " more like this",
         {{"suppressed", window.suppressed}}, now);
  window.suppressed = 0;
  enqueue(now);
}

void Logger::tick() {
  int64_t now = now_ms();
  int64_t second = now / 1000;
  for (auto& [key, window] : windows_) {
    if (window.suppressed > 0 && window.second != second) {
      summarise(key, window, now);
      window.second = second;
      window.lines = 0;
    }
  }
  flush();
}

}  // namespace chat
