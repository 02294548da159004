#include "tools/load_chat.h"

#include <charconv>
#include <cstring>

#include "chat/chat_codec.h"

namespace tools {
namespace {

constexpr std::string_view kPublishHead = "{\"type\":\"msg\",\"room\":\"";
constexpr std::string_view kPublishMiddle = "\",\"text\":\"";
constexpr std::string_view kPublishTail = "\"}";
constexpr std::string_view kPublishId = "\",\"id\":\"";
// parleyd's server messages all begin so (docs/protocol.md "Server messages": compact, type first).
constexpr std::string_view kTypePrefix = "{\"type\":\"";

size_t decimal_digits(uint64_t value) {
  size_t digits = 1;
  while (value >= 10) {
    value /= 10;
    ++digits;
  }
  return digits;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// splitmix64's finaliser: every input bit moves every output bit.
uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// A uniform draw in [0, 1) from a hash.
double unit_interval(uint64_t hash) { return static_cast<double>(hash >> 11) * 0x1.0p-53; }

}  // namespace

size_t stamped_text_length(uint64_t stamp_ns, size_t size) {
  const size_t stamp = 3 + decimal_digits(stamp_ns);
  return size > stamp ? size : stamp;
}

size_t write_stamped_text(uint64_t stamp_ns, size_t size, char* out) {
  out[0] = 't';
  out[1] = '=';
  const auto [end, ec] = std::to_chars(out + 2, out + 2 + 20, stamp_ns);
  (void)ec;  // 20 digits always fit a uint64_t
  *end = ';';
  const size_t stamp = static_cast<size_t>(end + 1 - out);
  if (size > stamp) std::memset(out + stamp, kTextFiller, size - stamp);
  return size > stamp ? size : stamp;
}

bool parse_stamp(std::string_view text, uint64_t& stamp_ns) {
  if (text.size() < 4 || text[0] != 't' || text[1] != '=') return false;
  const char* first = text.data() + 2;
  const char* last = text.data() + text.size();
  uint64_t value = 0;
  const auto [end, ec] = std::from_chars(first, last, value);
  // from_chars takes no sign here, but it does take leading zeros and stops at any non-digit.
  if (ec != std::errc() || end == first || end == last || *end != ';') return false;
  stamp_ns = value;
  return true;
}

std::string_view string_field_tail(std::string_view message, std::string_view key) {
  size_t from = 0;
  while (from < message.size()) {
    const size_t at = message.find(key, from);
    if (at == std::string_view::npos) return {};
    from = at + 1;
    if (at == 0 || message[at - 1] != '"' || at + key.size() >= message.size() || message[at + key.size()] != '"') {
      continue;
    }
    size_t i = at + key.size() + 1;
    while (i < message.size() && is_space(message[i])) ++i;
    if (i >= message.size() || message[i] != ':') continue;
    ++i;
    while (i < message.size() && is_space(message[i])) ++i;
    if (i >= message.size() || message[i] != '"') continue;
    return message.substr(i + 1);
  }
  return {};
}

ServerKind classify_server_message(std::string_view message) {
  std::string_view tail;
  if (message.starts_with(kTypePrefix)) {
    tail = message.substr(kTypePrefix.size());
  } else {
    tail = string_field_tail(message, "type");
  }
  const size_t quote = tail.find('"');
  if (quote == std::string_view::npos) return ServerKind::kOther;
  const std::string_view type = tail.substr(0, quote);
  if (type == "msg") return ServerKind::kMsg;
  if (type == "joined") return ServerKind::kJoined;
  if (type == "ack") return ServerKind::kAck;
  if (type == "left") return ServerKind::kLeft;
  if (type == "history") return ServerKind::kHistory;
  if (type == "welcome") return ServerKind::kWelcome;
  if (type == "error") return ServerKind::kError;
  return ServerKind::kOther;
}

bool find_stamp(std::string_view message, uint64_t& stamp_ns) {
  // The fast path for parleyd's layout: the text's opening, then the stamp.
  static constexpr std::string_view kText = "\"text\":\"t=";
  if (const size_t at = message.find(kText); at != std::string_view::npos) {
    return parse_stamp(message.substr(at + kText.size() - 2), stamp_ns);
  }
  return parse_stamp(string_field_tail(message, "text"), stamp_ns);
}

bool field_equals(std::string_view message, std::string_view key, std::string_view value) {
  const std::string_view tail = string_field_tail(message, key);
  return tail.size() > value.size() && tail.starts_with(value) && tail[value.size()] == '"';
}

void append_hello(std::string& out, std::string_view name, std::string_view resume) {
  out += "{\"type\":\"hello\",\"name\":";
  chat::append_json_string(out, name);
  if (!resume.empty()) {
    out += ",\"resume\":";
    chat::append_json_string(out, resume);
  }
  out += '}';
}

void append_join(std::string& out, std::string_view room) {
  out += "{\"type\":\"join\",\"room\":";
  chat::append_json_string(out, room);
  out += '}';
}

size_t publish_length(std::string_view room, uint64_t stamp_ns, size_t text_size, uint64_t id) {
  return kPublishHead.size() + room.size() + kPublishMiddle.size() + stamped_text_length(stamp_ns, text_size) +
         (id != 0 ? kPublishId.size() + decimal_digits(id) : 0) + kPublishTail.size();
}

size_t write_publish(std::string_view room, uint64_t stamp_ns, size_t text_size, char* out, uint64_t id) {
  char* at = out;
  std::memcpy(at, kPublishHead.data(), kPublishHead.size());
  at += kPublishHead.size();
  std::memcpy(at, room.data(), room.size());
  at += room.size();
  std::memcpy(at, kPublishMiddle.data(), kPublishMiddle.size());
  at += kPublishMiddle.size();
  at += write_stamped_text(stamp_ns, text_size, at);
  if (id != 0) {
    std::memcpy(at, kPublishId.data(), kPublishId.size());
    at += kPublishId.size();
    at = std::to_chars(at, at + 20, id).ptr;
  }
  std::memcpy(at, kPublishTail.data(), kPublishTail.size());
  at += kPublishTail.size();
  return static_cast<size_t>(at - out);
}

uint64_t last_seq_field(std::string_view message) {
  static constexpr std::string_view kSeq = "\"seq\":";
  const size_t at = message.rfind(kSeq);
  if (at == std::string_view::npos) return 0;
  size_t i = at + kSeq.size();
  while (i < message.size() && is_space(message[i])) ++i;
  uint64_t value = 0;
  std::from_chars(message.data() + i, message.data() + message.size(), value);
  return value;
}

uint64_t ChatRoomPlan::members(uint64_t room) const {
  // The users' memberships fill rooms round-robin: users * per_user slots over `rooms`.
  const uint64_t slots = users * per_user;
  return slots / rooms + (room < slots % rooms ? 1 : 0);
}

bool chat_user_idle(uint64_t seed, uint64_t user, uint64_t second, double share) {
  if (share <= 0) return false;
  return unit_interval(mix64(mix64(seed ^ user) + second)) < share;
}

bool chat_user_reconnects(uint64_t seed, uint64_t user, double share, double& at_fraction) {
  if (share <= 0) return false;
  const uint64_t hash = mix64(seed + 0x9E3779B97F4A7C15ULL * (user + 1));
  if (unit_interval(hash) >= share) return false;
  at_fraction = unit_interval(mix64(hash));
  return true;
}

}  // namespace tools
