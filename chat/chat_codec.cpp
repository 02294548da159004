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
#include <cstdint>
#include <memory>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace chat {

namespace {

constexpr size_t kMaxIdBytes = 64;
constexpr uint64_t kMaxHistoryLimit = 1000;
constexpr size_t kMaxUserNameBytes = 32;
constexpr size_t kMaxRoomNameBytes = 64;
// Client messages are flat objects; unknown fields may nest a little (forward compatibility).
// A cap far below simdjson's default 1024 bounds the depth stack.
constexpr size_t kMaxDepth = 64;
// Initial simdjson capacity; simdjson grows it to fit a longer message.
constexpr size_t kInitialCapacity = 4096;
// simdjson keeps about 14 bytes of buffers per byte of capacity. Past this capacity, the next
// small message gives the memory back, so one large message does not pin it for good.
constexpr size_t kRetainedCapacity = 64 * 1024;
// A message may exceed its text limit by this much (names, id, whitespace, unknown fields).
constexpr size_t kMessageOverhead = 16 * 1024;
// The longest escape, "\u0001", turns 6 bytes of JSON into one byte of text.
constexpr size_t kMaxEscapeRatio = 6;

// The fields we recognise. Others are ignored so newer clients can add fields.
enum Field : uint8_t { kFieldType, kFieldId, kFieldName, kFieldRoom, kFieldText, kFieldTo, kFieldOn,
                       kFieldBeforeSeq, kFieldLimit, kFieldSinceSeq, kFieldWith, kFieldResume, kFieldAfter,
                       kFieldCount };

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
    {"since_seq", "", "\"since_seq\" must be an unsigned integer"},
    {"with", "missing field \"room\" or \"with\"", "\"with\" must be a user name: 1-32 of A-Z a-z 0-9 _ . -"},
    {"resume", "", "\"resume\" must be a string of at most 64 bytes"},
    {"after", "", "\"after\" must be a user name: 1-32 of A-Z a-z 0-9 _ . -"},
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
      if (key == "with") return kFieldWith;
      break;
    case 5:
      if (key == "limit") return kFieldLimit;
      if (key == "after") return kFieldAfter;
      break;
    case 6:
      if (key == "resume") return kFieldResume;
      break;
    case 9:
      if (key == "since_seq") return kFieldSinceSeq;
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
// Nonzero for the bytes a JSON string writer must look at; the value is the escape letter.
constexpr std::array<uint8_t, 256> kEscape = make_escape_table();

constexpr uint64_t kOnes = 0x0101010101010101ULL;
constexpr uint64_t kHighs = 0x8080808080808080ULL;

// Nonzero when some byte of `word` is < 0x20, '"', '\\' or '/'. May flag a clean word (borrows
// between bytes) but never misses a dirty one.
inline uint64_t word_needs_attention(uint64_t word) {
  uint64_t control = (word - kOnes * 0x20) & ~word;
  uint64_t quote = word ^ (kOnes * '"');
  uint64_t backslash = word ^ (kOnes * '\\');
  uint64_t slash = word ^ (kOnes * '/');
  quote = (quote - kOnes) & ~quote;
  backslash = (backslash - kOnes) & ~backslash;
  slash = (slash - kOnes) & ~slash;
  return (control | quote | backslash | slash) & kHighs;
}

// The index of the first byte of s[i, n) that kEscape flags, or n.
inline size_t next_special(const char* s, size_t i, size_t n) {
#if defined(__SSE2__)
  const __m128i below = _mm_set1_epi8(0x1F);
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  const __m128i slash = _mm_set1_epi8('/');
  for (; i + 16 <= n; i += 16) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i));
    __m128i hit = _mm_cmpeq_epi8(_mm_min_epu8(v, below), v);  // v <= 0x1F, unsigned
    hit = _mm_or_si128(hit, _mm_cmpeq_epi8(v, quote));
    hit = _mm_or_si128(hit, _mm_cmpeq_epi8(v, backslash));
    hit = _mm_or_si128(hit, _mm_cmpeq_epi8(v, slash));
    unsigned mask = static_cast<unsigned>(_mm_movemask_epi8(hit));
    if (mask != 0) return i + static_cast<size_t>(__builtin_ctz(mask));
  }
#endif
  for (; i + 8 <= n; i += 8) {
    uint64_t word;
    std::memcpy(&word, s + i, sizeof word);
    if (word_needs_attention(word) != 0) break;
  }
  for (; i < n; ++i) {
    if (kEscape[static_cast<unsigned char>(s[i])] != 0) return i;
  }
  return n;
}

// Writes JSON into `out` through a raw pointer: one size check per piece instead of one per
// std::string call. Grows `out` ahead of the writes (resize; the slack is cut in finish()).
class JsonSink {
 public:
  // `expected` is the output size if nothing needs escaping; more is grown on demand.
  JsonSink(std::string& out, size_t expected) : out_(out) {
    size_t used = out.size();
    out_.resize(used + expected);
    p_ = out_.data() + used;
    end_ = out_.data() + out_.size();
  }
  JsonSink(const JsonSink&) = delete;
  JsonSink& operator=(const JsonSink&) = delete;

  // Cuts `out` to what was written. Must be called once, last.
  void finish() { out_.resize(static_cast<size_t>(p_ - out_.data())); }

  template <size_t N>
  void literal(const char (&text)[N]) {
    ensure(N - 1);
    std::memcpy(p_, text, N - 1);
    p_ += N - 1;
  }

  void raw(std::string_view text) {
    ensure(text.size());
    if (!text.empty()) std::memcpy(p_, text.data(), text.size());
    p_ += text.size();
  }

  void put(char c) {
    ensure(1);
    *p_++ = c;
  }

  void number(uint64_t value) {
    ensure(20);
    p_ = std::to_chars(p_, p_ + 20, value).ptr;
  }

  // RFC 8259 7: quote, backslash and control characters must be escaped. "</" is escaped too,
  // so that a page can inline a message in a <script> element.
  void string(std::string_view text) {
    static constexpr char kHex[] = "0123456789abcdef";
    const char* s = text.data();
    const size_t n = text.size();
    ensure(n + 2);
    *p_++ = '"';
    size_t run = 0;
    for (size_t i = next_special(s, 0, n); i < n; i = next_special(s, i + 1, n)) {
      unsigned char c = static_cast<unsigned char>(s[i]);
      if (c == '/' && (i == 0 || s[i - 1] != '<')) continue;
      // Room for the run, this escape, the rest unescaped and the closing quote.
      ensure(n - run + 6 + 1);
      std::memcpy(p_, s + run, i - run);
      p_ += i - run;
      run = i + 1;
      uint8_t escape = kEscape[c];
      p_[0] = '\\';
      if (escape == 'u') {
        p_[1] = 'u';
        p_[2] = '0';
        p_[3] = '0';
        p_[4] = kHex[c >> 4];
        p_[5] = kHex[c & 0xF];
        p_ += 6;
      } else {
        p_[1] = static_cast<char>(escape);
        p_ += 2;
      }
    }
    if (n != run) std::memcpy(p_, s + run, n - run);
    p_ += n - run;
    *p_++ = '"';
  }

 private:
  void ensure(size_t bytes) {
    if (static_cast<size_t>(end_ - p_) < bytes) grow(bytes);
  }

  // resize() zero-fills what it adds, so add what is needed plus some slack, not a doubling of a
  // possibly large buffer; the string's own capacity still grows geometrically.
  void grow(size_t bytes) {
    size_t used = static_cast<size_t>(p_ - out_.data());
    out_.resize(used + bytes + bytes / 2 + 64);
    p_ = out_.data() + used;
    end_ = out_.data() + out_.size();
  }

  std::string& out_;
  char* p_;
  char* end_;
};

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
    case ChatError::kRoomLimit: return "room_limit";
    case ChatError::kUnavailable: return "unavailable";
    case ChatError::kResumeFailed: return "resume_failed";
    case ChatError::kAway: return "away";
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

  Impl() { reset_parser(); }

  void reset_parser() {
    parser = simdjson::dom::parser{};
    // On failure the next parse allocates instead (or reports the message too large).
    simdjson::error_code ignored = parser.allocate(kInitialCapacity, kMaxDepth);
    (void)ignored;
  }

  // Called before parsing `size` bytes: releases buffers a past large message left behind.
  void trim(size_t size) {
    if (size > kInitialCapacity) return;
    if (parser.capacity() > kRetainedCapacity) reset_parser();
    if (padded_capacity > kRetainedCapacity) {
      padded.reset();
      padded_capacity = 0;
    }
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
      if (field == kFieldWith) return {ChatError::kInvalidName, kFields[kFieldWith].wrong_type};
      return {ChatError::kInvalidName, field == kFieldTo
                                           ? "\"to\" must be a user name: 1-32 of A-Z a-z 0-9 _ . -"
                                           : "\"name\" must be 1-32 of A-Z a-z 0-9 _ . -"};
    }
    return {};
  }

  // The optional "limit" of history and who: absent leaves `out` 0 (the server default).
  Failure limit(uint32_t& out) const {
    if (!present[kFieldLimit]) return {};
    uint64_t limit = 0;
    if (value[kFieldLimit].get_uint64().get(limit) != simdjson::SUCCESS || limit == 0 || limit > kMaxHistoryLimit) {
      return {ChatError::kMissingField, kFields[kFieldLimit].wrong_type};
    }
    out = static_cast<uint32_t>(limit);
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

  // Nothing within the limits can be this long; refuse before simdjson sizes its buffers to it.
  size_t max_json = max_text_bytes > (SIZE_MAX - kMessageOverhead) / kMaxEscapeRatio
                        ? SIZE_MAX
                        : max_text_bytes * kMaxEscapeRatio + kMessageOverhead;
  if (json.size() > max_json) return fail(ChatError::kTextTooLong, "message too long for the text limit");

  impl_->trim(json.size());
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
      // A session resume token from an earlier welcome; like id, an empty one is none.
      if (!failure && fields.present[kFieldResume] &&
          (fields.value[kFieldResume].get_string().get(out.resume) != simdjson::SUCCESS ||
           out.resume.size() > kMaxIdBytes)) {
        out.resume = {};
        failure = {ChatError::kMissingField, kFields[kFieldResume].wrong_type};
      }
      break;
    case ClientType::kJoin:
      failure = fields.room(out.room);
      if (!failure && fields.present[kFieldSinceSeq]) {
        if (fields.value[kFieldSinceSeq].get_uint64().get(out.since_seq) != simdjson::SUCCESS) {
          failure = {ChatError::kMissingField, kFields[kFieldSinceSeq].wrong_type};
        } else {
          out.has_since_seq = true;
        }
      }
      break;
    case ClientType::kLeave:
      failure = fields.room(out.room);
      break;
    case ClientType::kWho:
      // A page of a big room's members (docs/protocol.md "who"): limit as for history, after a
      // user name (the cursor: the last name of the previous page).
      failure = fields.room(out.room);
      if (!failure) failure = fields.limit(out.limit);
      if (!failure && fields.present[kFieldAfter]) {
        if (fields.string(kFieldAfter, out.after) || !is_valid_user_name(out.after)) {
          failure = {ChatError::kMissingField, kFields[kFieldAfter].wrong_type};
        }
      }
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
      // A room's history, or (with "with" instead of "room") a direct-message conversation's.
      if (!fields.present[kFieldRoom] && fields.present[kFieldWith]) {
        failure = fields.user_name(kFieldWith, out.with);
      } else {
        failure = fields.room(out.room);
      }
      if (!failure && fields.present[kFieldBeforeSeq] &&
          fields.value[kFieldBeforeSeq].get_uint64().get(out.before_seq) != simdjson::SUCCESS) {
        failure = {ChatError::kMissingField, kFields[kFieldBeforeSeq].wrong_type};
      }
      if (!failure) failure = fields.limit(out.limit);
      break;
    case ClientType::kPing:
      break;
  }
  if (failure) return fail(failure.error, failure.reason);
  return result;
}

void append_json_string(std::string& out, std::string_view text) {
  JsonSink sink(out, text.size() + 2);
  sink.string(text);
  sink.finish();
}

// The `expected` sizes below are each object's fixed bytes, its strings unescaped and quoted, and
// 20 bytes per number: enough whenever nothing needs escaping.

void write_welcome(std::string& out, std::string_view name, uint64_t max_text_bytes) {
  JsonSink sink(out, 60 + name.size());
  sink.literal(R"({"type":"welcome","name":)");
  sink.string(name);
  if (max_text_bytes != 0) {
    sink.literal(R"(,"max_text":)");
    sink.number(max_text_bytes);
  }
  sink.put('}');
  sink.finish();
}

void write_presence(std::string& out, bool joined, std::string_view room, std::string_view user) {
  JsonSink sink(out, 37 + room.size() + user.size());
  if (joined) {
    sink.literal(R"({"type":"joined","room":)");
  } else {
    sink.literal(R"({"type":"left","room":)");
  }
  sink.string(room);
  sink.literal(R"(,"user":)");
  sink.string(user);
  sink.put('}');
  sink.finish();
}

void write_msg(std::string& out, std::string_view room, std::string_view from, std::string_view text,
               uint64_t ts_ms, uint64_t seq) {
  JsonSink sink(out, 97 + room.size() + from.size() + text.size());
  sink.literal(R"({"type":"msg","room":)");
  sink.string(room);
  sink.literal(R"(,"from":)");
  sink.string(from);
  sink.literal(R"(,"text":)");
  sink.string(text);
  sink.literal(R"(,"ts":)");
  sink.number(ts_ms);
  sink.literal(R"(,"seq":)");
  sink.number(seq);
  sink.put('}');
  sink.finish();
}

void write_dm(std::string& out, std::string_view from, std::string_view to, std::string_view text, uint64_t ts_ms,
              uint64_t seq) {
  JsonSink sink(out, 87 + from.size() + to.size() + text.size());
  sink.literal(R"({"type":"dm","from":)");
  sink.string(from);
  sink.literal(R"(,"to":)");
  sink.string(to);
  sink.literal(R"(,"text":)");
  sink.string(text);
  sink.literal(R"(,"ts":)");
  sink.number(ts_ms);
  if (seq != 0) {
    sink.literal(R"(,"seq":)");
    sink.number(seq);
  }
  sink.put('}');
  sink.finish();
}

void write_typing(std::string& out, std::string_view room, std::string_view user, bool on) {
  JsonSink sink(out, 48 + room.size() + user.size());
  sink.literal(R"({"type":"typing","room":)");
  sink.string(room);
  sink.literal(R"(,"user":)");
  sink.string(user);
  if (on) {
    sink.literal(R"(,"on":true})");
  } else {
    sink.literal(R"(,"on":false})");
  }
  sink.finish();
}

void write_ack(std::string& out, std::string_view id, uint64_t seq, uint64_t ts_ms) {
  JsonSink sink(out, 75 + id.size());
  sink.literal(R"({"type":"ack")");
  if (!id.empty()) {
    sink.literal(R"(,"id":)");
    sink.string(id);
  }
  sink.literal(R"(,"seq":)");
  sink.number(seq);
  sink.literal(R"(,"ts":)");
  sink.number(ts_ms);
  sink.put('}');
  sink.finish();
}

void write_error(std::string& out, ChatError error, std::string_view reason, std::string_view id) {
  std::string_view code = chat_error_code(error);
  JsonSink sink(out, 46 + code.size() + reason.size() + id.size());
  sink.literal(R"({"type":"error","code":")");
  sink.raw(code);  // codes are [a-z_]: nothing to escape
  sink.literal(R"(","reason":)");
  sink.string(reason);
  if (!id.empty()) {
    sink.literal(R"(,"id":)");
    sink.string(id);
  }
  sink.put('}');
  sink.finish();
}

void write_pong(std::string& out, uint64_t ts_ms) {
  JsonSink sink(out, 41);
  sink.literal(R"({"type":"pong","ts":)");
  sink.number(ts_ms);
  sink.put('}');
  sink.finish();
}

void write_who_begin(std::string& out, std::string_view room) {
  JsonSink sink(out, 33 + room.size());
  sink.literal(R"({"type":"who","room":)");
  sink.string(room);
  sink.literal(R"(,"users":[)");
  sink.finish();
}

void write_who_user(std::string& out, std::string_view user, bool first) {
  JsonSink sink(out, 3 + user.size());
  if (!first) sink.put(',');
  sink.string(user);
  sink.finish();
}

void write_who_end(std::string& out) { out.append("]}"); }

void write_history_begin(std::string& out, std::string_view room) {
  JsonSink sink(out, 40 + room.size());
  sink.literal(R"({"type":"history","room":)");
  sink.string(room);
  sink.literal(R"(,"messages":[)");
  sink.finish();
}

void write_history_item(std::string& out, std::string_view from, std::string_view text, uint64_t ts_ms,
                        uint64_t seq, bool first) {
  JsonSink sink(out, 75 + from.size() + text.size());
  if (!first) sink.put(',');
  sink.literal(R"({"from":)");
  sink.string(from);
  sink.literal(R"(,"text":)");
  sink.string(text);
  sink.literal(R"(,"ts":)");
  sink.number(ts_ms);
  sink.literal(R"(,"seq":)");
  sink.number(seq);
  sink.put('}');
  sink.finish();
}

void write_history_end(std::string& out) { out.append("]}"); }

void write_history_begin_dm(std::string& out, std::string_view with) {
  JsonSink sink(out, 40 + with.size());
  sink.literal(R"({"type":"history","with":)");
  sink.string(with);
  sink.literal(R"(,"messages":[)");
  sink.finish();
}

void write_history_end_recovery(std::string& out, bool recovered, uint64_t first_seq) {
  if (recovered) {
    out.append(R"(],"recovered":true})");
    return;
  }
  out.append(R"(],"recovered":false,"first_seq":)");
  out.append(std::to_string(first_seq));
  out.push_back('}');
}

}  // namespace chat
