#include "tools/chat_reconnect.h"

#include <sys/random.h>

#include <algorithm>
#include <chrono>

namespace tools::cli {

std::string ChatReconnect::send(const ChatCommand& command) {
  bool tracked = command.kind == ChatCommandKind::kSay || command.kind == ChatCommandKind::kMsg ||
                 command.kind == ChatCommandKind::kDm;
  if (!tracked) return write_client_message(command, {});
  std::string id = id_prefix_ + std::to_string(next_id_++);
  std::string json = write_client_message(command, id);
  unacked_.push_back({id, command.kind == ChatCommandKind::kDm ? std::string() : command.room, json});
  return json;
}

std::string ChatReconnect::hello(std::string_view name) const {
  return resume_.empty() ? write_hello(name) : write_hello_resume(name, resume_);
}

uint64_t ChatReconnect::last_seq(std::string_view room) const {
  auto it = last_seq_.find(room);
  return it == last_seq_.end() ? 0 : it->second;
}

void ChatReconnect::note_seq(const std::string& room, uint64_t seq) {
  if (room.empty() || seq == 0) return;
  uint64_t& last = last_seq_[room];
  last = std::max(last, seq);
}

void ChatReconnect::resend(std::string_view room, std::vector<std::string>& out) const {
  for (const Unacked& message : unacked_) {
    if (message.room == room) out.push_back(message.json);
  }
}

std::vector<std::string> ChatReconnect::on_event(const ServerEvent& event, std::string_view name,
                                                 const std::vector<std::string>& rooms) {
  std::vector<std::string> out;
  if (event.type == "welcome") {
    welcomed_ = true;
    resume_ = event.resume;  // replaced by every welcome; empty when the server holds no sessions
    if (!reconnecting_) return out;
    reconnecting_ = false;
    for (const std::string& room : rooms) {
      uint64_t seen = last_seq(room);
      out.push_back(seen != 0 ? write_join_since(room, seen) : write_join(room));
      awaiting_.insert(room);
    }
    resend({}, out);  // DMs need no room
  } else if (event.type == "msg") {
    note_seq(event.room, event.seq);
  } else if (event.type == "history") {
    note_seq(event.room, event.seq);
    if (auto it = awaiting_.find(event.room); it != awaiting_.end()) {
      awaiting_.erase(it);
      resend(event.room, out);
    }
  } else if (event.type == "ack") {
    std::erase_if(unacked_, [&](const Unacked& message) { return message.id == event.id; });
  } else if (event.type == "error") {
    if (event.code == "resume_failed") {
      // The window passed or the server restarted: the name is free again (or soon is).
      resume_.clear();
      out.push_back(write_hello(name));
      return out;
    }
    // unavailable: not stored; it goes again after the next reconnect. Any other error is final.
    if (!event.id.empty() && event.code != "unavailable") {
      std::erase_if(unacked_, [&](const Unacked& message) { return message.id == event.id; });
    }
    // A rejoin the server refused must not hold new input back.
    if (event.code == "unknown_room" || event.code == "invalid_room" || event.code == "rejected" ||
        event.code == "room_limit" || event.code == "too_many_rooms" || event.code == "unavailable") {
      if (event.id.empty()) awaiting_.clear();
    }
  }
  return out;
}

std::string random_id_prefix() {
  uint8_t bytes[6] = {};
  if (getrandom(bytes, sizeof bytes, 0) != static_cast<ssize_t>(sizeof bytes)) {
    // No entropy: the clock still tells runs apart.
    uint64_t now = static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
    for (uint8_t& byte : bytes) {
      byte = static_cast<uint8_t>(now);
      now >>= 8;
    }
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string prefix;
  for (uint8_t byte : bytes) {
    prefix += kHex[byte >> 4];
    prefix += kHex[byte & 15];
  }
  return prefix + "-";
}

}  // namespace tools::cli
