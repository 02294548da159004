// The chat wire protocol codec (docs/protocol.md). Client messages are parsed with simdjson's DOM
// API: it validates the whole document (syntax, UTF-8, nesting, trailing bytes), not only the
// fields we read, and keeps unescaped strings in the parser's string buffer, which stays valid
// until the next parse. That is exactly the lifetime ClientMessage promises, so nothing is copied
// out. Server messages are written by hand, appending to a caller-owned std::string.
#include "chat/chat_codec.h"

#include <simdjson.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <memory>

namespace chat {

namespace {

constexpr size_t kMaxIdBytes = 64;
constexpr uint64_t kMaxHistoryLimit = 1000;
constexpr size_t kMaxUserNameBytes = 32;
constexpr size_t kMaxRoomNameBytes = 64;
// Client messages are flat objects; unknown fields may nest a little (forward compatibility).
// A cap far below simdjson's default 1024 bounds the depth stack.
constexpr size_t kMaxDepth = 64;
// Initial simdjson capacity; it grows (and stays grown) when a longer message arrives.
constexpr size_t kInitialCapacity = 4096;

// The fields we recognise. Others are ignored so newer clients can add fields.
enum Field : uint8_t { kFieldType, kFieldId, kFieldName, kFieldRoom, kFieldText, kFieldTo, kFieldOn,
                       kFieldBeforeSeq, kFieldLimit, kFieldCount };

struct FieldInfo {
  std::string_view key;
  std::string_view missing;     // reason when a required field is absent
  std::string_view wrong_type;  // reason when the field has the wrong JSON type
};

constexpr std::array<FieldInfo, kFieldCount> kFields = {{
    {"type", "missing \"type\"", "\"type\" must be a string"},
    {"id", "", "\"id\" must be a string of at most 64 bytes"},
    {"name", "missing field \"name\"", "\"name\" must be a string"},
    {"room", "missing field \"room\"", "\"room\" must be a string"},
    {"text", "missing field \"text\"", "\"text\" must be a string"},
    {"to", "missing field \"to\"", "\"to\" must be a string"},
    {"on", "missing field \"on\"", "\"on\" must be true or false"},
    {"before_seq", "", "\"before_seq\" must be an unsigned integer"},
    {"limit", "", "\"limit\" must be an integer from 1 to 1000"},
}};

// Maps a key to its Field, or kFieldCount for keys we ignore.
Field field_of(std::string_view key) {
  switch (key.size()) {
    case 2:
      if (key == "id") return kFieldId;
      if (key == "to") return kFieldTo;
      if (key == "on") return kFieldOn;
      break;
    case 4:
      if (key == "type") return kFieldType;
      if (key == "room") return kFieldRoom;
      if (key == "text") return kFieldText;
      if (key == "name") return kFieldName;
      break;
    case 5:
      if (key == "limit") return kFieldLimit;
      break;
    case 10:
      if (key == "before_seq") return kFieldBeforeSeq;
      break;
    default:
      break;
  }
  return kFieldCount;
}

bool type_of(std::string_view name, ClientType& type) {
  switch (name.size()) {
    case 2:
      if (name == "dm") { type = ClientType::kDm; return true; }
      break;
    case 3:
      if (name == "msg") { type = ClientType::kMsg; return true; }
      if (name == "who") { type = ClientType::kWho; return true; }
      break;
    case 4:
      if (name == "join") { type = ClientType::kJoin; return true; }
      if (name == "ping") { type = ClientType::kPing; return true; }
      break;
    case 5:
      if (name == "hello") { type = ClientType::kHello; return true; }
      if (name == "leave") { type = ClientType::kLeave; return true; }
      break;
    case 6:
      if (name == "typing") { type = ClientType::kTyping; return true; }
      break;
    case 7:
      if (name == "history") { type = ClientType::kHistory; return true; }
      break;
    default:
      break;
  }
  return false;
}

constexpr std::array<bool, 256> make_name_chars() {
  std::array<bool, 256> table{};
  for (int c = 'a'; c <= 'z'; ++c) table[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) table[c] = true;
  for (int c = '0'; c <= '9'; ++c) table[c] = true;
  table['_'] = table['.'] = table['-'] = true;
  return table;
}
constexpr std::array<bool, 256> kNameChars = make_name_chars();

bool all_name_chars(std::string_view s) {
  for (char c : s) {
    if (!kNameChars[static_cast<unsigned char>(c)]) return false;
  }
  return true;
}

// Grows geometrically even on standard libraries whose reserve() allocates exactly what is asked,
// so a run of small appends (who lists, history items) stays amortised O(1).
inline void reserve_more(std::string& out, size_t extra) {
  size_t need = out.size() + extra;
  if (need > out.capacity()) out.reserve(std::max(need, out.capacity() * 2));
}

inline void append_uint(std::string& out, uint64_t value) {
  char digits[20];
  auto result = std::to_chars(digits, digits + sizeof digits, value);
  out.append(digits, static_cast<size_t>(result.ptr - digits));
}

constexpr uint64_t kOnes = 0x0101010101010101ULL;
constexpr uint64_t kHighs = 0x8080808080808080ULL;

// Nonzero when some byte of `word` is < 0x20, '"', '\\' or '/'. May also flag a clean word
// (borrows), never miss a dirty one; a flagged word is rescanned byte by byte.
inline uint64_t needs_escape(uint64_t word) {
  uint64_t control = (word - kOnes * 0x20) & ~word;
  uint64_t quote = word ^ (kOnes * '"');
  uint64_t backslash = word ^ (kOnes * '\\');
  uint64_t slash = word ^ (kOnes * '/');
  quote = (quote - kOnes) & ~quote;
  backslash = (backslash - kOnes) & ~backslash;
  slash = (slash - kOnes) & ~slash;
  return (control | quote | backslash | slash) & kHighs;
}

constexpr std::array<uint8_t, 256> make_escape_table() {
  std::array<uint8_t, 256> table{};
  for (int c = 0; c < 0x20; ++c) table[c] = 'u';
  table['\b'] = 'b';
  table['\t'] = 't';
  table['\n'] = 'n';
  table['\f'] = 'f';
  table['\r'] = 'r';
  table['"'] = '"';
  table['\\'] = '\\';
  table['/'] = '/';  // escaped only after '<'
  return table;
}
constexpr std::array<uint8_t, 256> kEscape = make_escape_table();

// Escapes the bytes of text[begin, end) that need it, appending clean runs in one piece.
inline void append_escaped_range(std::string& out, std::string_view text, size_t begin, size_t end,
                                 size_t& run_start) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (size_t i = begin; i < end; ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    uint8_t escape = kEscape[c];
    if (escape == 0) continue;
    if (c == '/' && (i == 0 || text[i - 1] != '<')) continue;
    out.append(text.data() + run_start, i - run_start);
    run_start = i + 1;
    if (escape == 'u') {
      char seq[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
      out.append(seq, sizeof seq);
    } else {
      char seq[2] = {'\\', static_cast<char>(escape)};
      out.append(seq, sizeof seq);
    }
  }
}

}  // namespace

std::string_view chat_error_code(ChatError error) {
  switch (error) {
    case ChatError::kNone: return "none";
    case ChatError::kBadJson: return "bad_json";
    case ChatError::kUnknownType: return "unknown_type";
    case ChatError::kMissingField: return "missing_field";
    case ChatError::kInvalidName: return "invalid_name";
    case ChatError::kInvalidRoom: return "invalid_room";
    case ChatError::kTextTooLong: return "text_too_long";
    case ChatError::kNameTaken: return "name_taken";
    case ChatError::kNotIdentified: return "not_identified";
    case ChatError::kAlreadyIdentified: return "already_identified";
    case ChatError::kUnknownRoom: return "unknown_room";
    case ChatError::kUnknownUser: return "unknown_user";
    case ChatError::kTooManyRooms: return "too_many_rooms";
    case ChatError::kRejected: return "rejected";
  }
  return "unknown";
}

bool is_valid_user_name(std::string_view name) {
  return !name.empty() && name.size() <= kMaxUserNameBytes && all_name_chars(name);
}

bool is_valid_room_name(std::string_view room) {
  if (!room.empty() && room.front() == '#') room.remove_prefix(1);
  return !room.empty() && room.size() <= kMaxRoomNameBytes && all_name_chars(room);
}

struct ChatParser::Impl {
  simdjson::dom::parser parser;
  // The input copied with SIMDJSON_PADDING readable bytes after it: the receive buffer the view
  // comes from makes no such promise.
  std::unique_ptr<char[]> padded;
  size_t padded_capacity = 0;
  // Holds a formatted reason (text_too_long) until the next parse.
  char reason[96];

  Impl() {
    // On failure the first parse allocates instead (or reports the message too large).
    simdjson::error_code ignored = parser.allocate(kInitialCapacity, kMaxDepth);
    (void)ignored;
  }

  // Copies `json` into the padded buffer and returns its start, or nullptr when out of memory.
  const char* pad(std::string_view json) {
    size_t need = json.size() + simdjson::SIMDJSON_PADDING;
    if (need > padded_capacity) {
      size_t capacity = std::max(need, std::max(padded_capacity * 2, kInitialCapacity));
      padded.reset(new (std::nothrow) char[capacity]);
      padded_capacity = padded ? capacity : 0;
      if (!padded) return nullptr;
    }
    if (!json.empty()) std::memcpy(padded.get(), json.data(), json.size());
    std::memset(padded.get() + json.size(), 0, simdjson::SIMDJSON_PADDING);
    return padded.get();
  }

  std::string_view text_too_long_reason(size_t size, size_t limit) {
    static constexpr std::string_view kPrefix = "text is ";
    static constexpr std::string_view kMiddle = " bytes, over the limit of ";
    char* p = reason;
    char* end = reason + sizeof reason;
    p = std::copy(kPrefix.begin(), kPrefix.end(), p);
    p = std::to_chars(p, end, size).ptr;
    p = std::copy(kMiddle.begin(), kMiddle.end(), p);
    p = std::to_chars(p, end, limit).ptr;
    return {reason, static_cast<size_t>(p - reason)};
  }
};

ChatParser::ChatParser() : impl_(new Impl) {}

ChatParser::~ChatParser() { delete impl_; }

namespace {

// Failure of one field check: the error and its reason.
struct Failure {
  ChatError error = ChatError::kNone;
  std::string_view reason;
  explicit operator bool() const { return error != ChatError::kNone; }
};

// The recognised fields of one object, first occurrence of each.
struct Fields {
  simdjson::dom::element value[kFieldCount];
  bool present[kFieldCount] = {};

  Failure string(Field field, std::string_view& out) const {
    if (!present[field]) return {ChatError::kMissingField, kFields[field].missing};
    if (value[field].get_string().get(out) != simdjson::SUCCESS) {
      return {ChatError::kMissingField, kFields[field].wrong_type};
    }
    return {};
  }

  Failure user_name(Field field, std::string_view& out) const {
    if (Failure failure = string(field, out)) return failure;
    if (!is_valid_user_name(out)) {
      return {ChatError::kInvalidName, field == kFieldTo
                                           ? "\"to\" must be a user name: 1-32 of A-Z a-z 0-9 _ . -"
                                           : "\"name\" must be 1-32 of A-Z a-z 0-9 _ . -"};
    }
    return {};
  }

  Failure room(std::string_view& out) const {
    if (Failure failure = string(kFieldRoom, out)) return failure;
    if (!is_valid_room_name(out)) {
      return {ChatError::kInvalidRoom, "\"room\" must be 1-64 of A-Z a-z 0-9 _ . -, optionally after '#'"};
    }
    return {};
  }
};

}  // namespace

ParseResult ChatParser::parse(std::string_view json, size_t max_text_bytes, ClientMessage& out) {
  out = ClientMessage{};
  ParseResult result;
  auto fail = [&result](ChatError error, std::string_view reason) {
    result.error = error;
    result.reason = reason;
    return result;
  };

  const char* padded = impl_->pad(json);
  if (padded == nullptr) return fail(ChatError::kBadJson, "message too large");
  simdjson::dom::element root;
  simdjson::error_code error = impl_->parser.parse(padded, json.size(), false).get(root);
  if (error != simdjson::SUCCESS) {
    switch (error) {
      case simdjson::UTF8_ERROR: return fail(ChatError::kBadJson, "invalid UTF-8");
      case simdjson::DEPTH_ERROR: return fail(ChatError::kBadJson, "JSON nested too deeply");
      case simdjson::CAPACITY:
      case simdjson::MEMALLOC: return fail(ChatError::kBadJson, "message too large");
      case simdjson::EMPTY: return fail(ChatError::kBadJson, "empty message");
      default: return fail(ChatError::kBadJson, "invalid JSON");
    }
  }
  simdjson::dom::object object;
  if (root.get_object().get(object) != simdjson::SUCCESS) {
    return fail(ChatError::kBadJson, "message must be a JSON object");
  }

  Fields fields;
  bool duplicate = false;
  for (simdjson::dom::key_value_pair member : object) {
    Field field = field_of(member.key);
    if (field == kFieldCount) continue;
    if (fields.present[field]) {
      duplicate = true;
      continue;
    }
    fields.present[field] = true;
    fields.value[field] = member.value;
  }

  // The id first, so that every later error can be echoed with it.
  std::string_view id;
  bool id_ok = true;
  if (fields.present[kFieldId]) {
    id_ok = fields.value[kFieldId].get_string().get(id) == simdjson::SUCCESS && id.size() <= kMaxIdBytes;
    if (id_ok) {
      out.id = id;
      result.id = id;
    }
  }

  // RFC 8259 4: names SHOULD be unique; a repeated field we act on is ambiguous, so refuse it.
  if (duplicate) return fail(ChatError::kBadJson, "a field appears twice");

  std::string_view type_name;
  if (Failure failure = fields.string(kFieldType, type_name)) {
    return fail(ChatError::kUnknownType, failure.reason);
  }
  if (!type_of(type_name, out.type)) return fail(ChatError::kUnknownType, "unknown \"type\"");
  if (!id_ok) return fail(ChatError::kMissingField, kFields[kFieldId].wrong_type);

  Failure failure;
  auto text = [&]() -> Failure {
    if (Failure f = fields.string(kFieldText, out.text)) return f;
    if (out.text.empty()) return {ChatError::kMissingField, "text must not be empty"};
    if (out.text.size() > max_text_bytes) {
      return {ChatError::kTextTooLong, impl_->text_too_long_reason(out.text.size(), max_text_bytes)};
    }
    return {};
  };
  switch (out.type) {
    case ClientType::kHello:
      failure = fields.user_name(kFieldName, out.name);
      break;
    case ClientType::kJoin:
    case ClientType::kLeave:
    case ClientType::kWho:
      failure = fields.room(out.room);
      break;
    case ClientType::kMsg:
      failure = fields.room(out.room);
      if (!failure) failure = text();
      break;
    case ClientType::kDm:
      failure = fields.user_name(kFieldTo, out.to);
      if (!failure) failure = text();
      break;
    case ClientType::kTyping:
      failure = fields.room(out.room);
      if (!failure) {
        if (!fields.present[kFieldOn]) {
          failure = {ChatError::kMissingField, kFields[kFieldOn].missing};
        } else if (fields.value[kFieldOn].get_bool().get(out.on) != simdjson::SUCCESS) {
          failure = {ChatError::kMissingField, kFields[kFieldOn].wrong_type};
        }
      }
      break;
    case ClientType::kHistory:
      failure = fields.room(out.room);
      if (!failure && fields.present[kFieldBeforeSeq] &&
          fields.value[kFieldBeforeSeq].get_uint64().get(out.before_seq) != simdjson::SUCCESS) {
        failure = {ChatError::kMissingField, kFields[kFieldBeforeSeq].wrong_type};
      }
      if (!failure && fields.present[kFieldLimit]) {
        uint64_t limit = 0;
        if (fields.value[kFieldLimit].get_uint64().get(limit) != simdjson::SUCCESS || limit == 0 ||
            limit > kMaxHistoryLimit) {
          failure = {ChatError::kMissingField, kFields[kFieldLimit].wrong_type};
        } else {
          out.limit = static_cast<uint32_t>(limit);
        }
      }
      break;
    case ClientType::kPing:
      break;
  }
  if (failure) return fail(failure.error, failure.reason);
  return result;
}

void append_json_string(std::string& out, std::string_view text) {
  reserve_more(out, text.size() + 2);
  out.push_back('"');
  size_t run_start = 0;
  size_t i = 0;
  const size_t size = text.size();
  for (; i + 8 <= size; i += 8) {
    uint64_t word;
    std::memcpy(&word, text.data() + i, sizeof word);
    if (needs_escape(word) != 0) append_escaped_range(out, text, i, i + 8, run_start);
  }
  append_escaped_range(out, text, i, size, run_start);
  out.append(text.data() + run_start, size - run_start);
  out.push_back('"');
}

void write_welcome(std::string& out, std::string_view name) {
  reserve_more(out, 30 + name.size());
  out.append(R"({"type":"welcome","name":)");
  append_json_string(out, name);
  out.push_back('}');
}

void write_presence(std::string& out, bool joined, std::string_view room, std::string_view user) {
  reserve_more(out, 40 + room.size() + user.size());
  out.append(joined ? R"({"type":"joined","room":)" : R"({"type":"left","room":)");
  append_json_string(out, room);
  out.append(R"(,"user":)");
  append_json_string(out, user);
  out.push_back('}');
}

void write_msg(std::string& out, std::string_view room, std::string_view from, std::string_view text,
               uint64_t ts_ms, uint64_t seq) {
  reserve_more(out, 100 + room.size() + from.size() + text.size());
  out.append(R"({"type":"msg","room":)");
  append_json_string(out, room);
  out.append(R"(,"from":)");
  append_json_string(out, from);
  out.append(R"(,"text":)");
  append_json_string(out, text);
  out.append(R"(,"ts":)");
  append_uint(out, ts_ms);
  out.append(R"(,"seq":)");
  append_uint(out, seq);
  out.push_back('}');
}

void write_dm(std::string& out, std::string_view from, std::string_view to, std::string_view text, uint64_t ts_ms) {
  reserve_more(out, 80 + from.size() + to.size() + text.size());
  out.append(R"({"type":"dm","from":)");
  append_json_string(out, from);
  out.append(R"(,"to":)");
  append_json_string(out, to);
  out.append(R"(,"text":)");
  append_json_string(out, text);
  out.append(R"(,"ts":)");
  append_uint(out, ts_ms);
  out.push_back('}');
}

void write_typing(std::string& out, std::string_view room, std::string_view user, bool on) {
  reserve_more(out, 50 + room.size() + user.size());
  out.append(R"({"type":"typing","room":)");
  append_json_string(out, room);
  out.append(R"(,"user":)");
  append_json_string(out, user);
  out.append(on ? R"(,"on":true})" : R"(,"on":false})");
}

void write_ack(std::string& out, std::string_view id, uint64_t seq, uint64_t ts_ms) {
  reserve_more(out, 70 + id.size());
  out.append(R"({"type":"ack")");
  if (!id.empty()) {
    out.append(R"(,"id":)");
    append_json_string(out, id);
  }
  out.append(R"(,"seq":)");
  append_uint(out, seq);
  out.append(R"(,"ts":)");
  append_uint(out, ts_ms);
  out.push_back('}');
}

void write_error(std::string& out, ChatError error, std::string_view reason, std::string_view id) {
  std::string_view code = chat_error_code(error);
  reserve_more(out, 50 + code.size() + reason.size() + id.size());
  out.append(R"({"type":"error","code":)");
  append_json_string(out, code);
  out.append(R"(,"reason":)");
  append_json_string(out, reason);
  if (!id.empty()) {
    out.append(R"(,"id":)");
    append_json_string(out, id);
  }
  out.push_back('}');
}

void write_pong(std::string& out, uint64_t ts_ms) {
  reserve_more(out, 40);
  out.append(R"({"type":"pong","ts":)");
  append_uint(out, ts_ms);
  out.push_back('}');
}

void write_who_begin(std::string& out, std::string_view room) {
  reserve_more(out, 40 + room.size());
  out.append(R"({"type":"who","room":)");
  append_json_string(out, room);
  out.append(R"(,"users":[)");
}

void write_who_user(std::string& out, std::string_view user, bool first) {
  if (!first) out.push_back(',');
  append_json_string(out, user);
}

void write_who_end(std::string& out) { out.append("]}"); }

void write_history_begin(std::string& out, std::string_view room) {
  reserve_more(out, 50 + room.size());
  out.append(R"({"type":"history","room":)");
  append_json_string(out, room);
  out.append(R"(,"messages":[)");
}

void write_history_item(std::string& out, std::string_view from, std::string_view text, uint64_t ts_ms,
                        uint64_t seq, bool first) {
  reserve_more(out, 80 + from.size() + text.size());
  if (!first) out.push_back(',');
  out.append(R"({"from":)");
  append_json_string(out, from);
  out.append(R"(,"text":)");
  append_json_string(out, text);
  out.append(R"(,"ts":)");
  append_uint(out, ts_ms);
  out.append(R"(,"seq":)");
  append_uint(out, seq);
  out.push_back('}');
}

void write_history_end(std::string& out) { out.append("]}"); }

}  // namespace chat
