#include "chat/store/room_log.h"

#include <time.h>

#include <algorithm>

#include "chat/store/memory_room_log.h"
#include "chat/store/sqlite_room_log.h"

namespace chat {

namespace {

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

}  // namespace

std::string user_key(std::string_view name) {
  std::string key(name);
  std::transform(key.begin(), key.end(), key.begin(), lower);
  return key;
}

std::string dm_conversation(std::string_view a, std::string_view b) {
  std::string first = user_key(a);
  std::string second = user_key(b);
  if (second < first) first.swap(second);
  std::string key;
  key.reserve(4 + first.size() + second.size());
  key.append("dm:").append(first).append(":").append(second);
  return key;
}

const char* log_status_name(LogStatus status) {
  switch (status) {
    case LogStatus::kOk:
      return "ok";
    case LogStatus::kDuplicate:
      return "duplicate";
    case LogStatus::kUnavailable:
      return "unavailable";
  }
  return "unknown";
}

uint64_t room_log_realtime_ms() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

void finish_since(ReadResult& result, uint64_t since_seq) {
  if (since_seq > result.last_seq) {
    // The client saw seqs this store never committed (or lost): it cannot vouch for anything.
    result.messages.clear();
    result.complete = false;
    result.first_seq = result.last_seq + 1;
  } else if (result.messages.empty()) {
    result.complete = since_seq == result.last_seq;
    result.first_seq = result.last_seq + 1;
  } else {
    result.complete = result.messages.front().seq == since_seq + 1;
    result.first_seq = result.messages.front().seq;
  }
}

std::unique_ptr<RoomLog> open_room_log(const RoomLogConfig& config, reactor::EventLoop& loop, std::string& error) {
  if (config.path.empty() || config.path == "none") return std::make_unique<MemoryRoomLog>(config);
  return SqliteRoomLog::open(config, loop, error);
}

}  // namespace chat
