// libFuzzer target for the chat wire-protocol codec (chat/chat_codec.h).
// Input: the bytes of one client message. Each is parsed twice with a generous text limit (the
// second time must agree: buffers are reused) and once with a tiny one. On success the views must
// be valid UTF-8, within the limits, owned by the parser, and must survive being written back
// (as a client message and through the server writers) and parsed again. Any valid UTF-8 input is
// also fed to append_json_string and must come back unchanged through simdjson.
#include <simdjson.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "chat/chat_codec.h"

namespace {

using chat::ChatError;
using chat::ClientMessage;
using chat::ClientType;
using chat::ParseResult;

constexpr size_t kTextLimit = 4096;
constexpr size_t kTinyTextLimit = 8;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "invariant broken: %s\n", what);
    std::abort();
  }
}

// Strict UTF-8 (RFC 3629): no overlongs, no surrogates, nothing above U+10FFFF. Written here
// rather than borrowed so that the codec is checked against an independent implementation.
bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t length;
    uint32_t code;
    uint32_t min;
    if ((c & 0xE0) == 0xC0) {
      length = 2, code = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      length = 3, code = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      length = 4, code = c & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (i + length > s.size()) return false;
    for (size_t k = 1; k < length; ++k) {
      unsigned char next = static_cast<unsigned char>(s[i + k]);
      if ((next & 0xC0) != 0x80) return false;
      code = (code << 6) | (next & 0x3F);
    }
    if (code < min || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return false;
    i += length;
  }
  return true;
}

bool inside(std::string_view view, const uint8_t* data, size_t size) {
  if (view.empty()) return false;
  auto* begin = reinterpret_cast<const char*>(data);
  return view.data() < begin + size && view.data() + view.size() > begin;
}

void check_view(std::string_view view, const uint8_t* data, size_t size) {
  check(valid_utf8(view), "view is valid UTF-8");
  check(!inside(view, data, size), "view does not point into the input");
}

std::string_view type_name(ClientType type) {
  switch (type) {
    case ClientType::kHello: return "hello";
    case ClientType::kJoin: return "join";
    case ClientType::kLeave: return "leave";
    case ClientType::kMsg: return "msg";
    case ClientType::kDm: return "dm";
    case ClientType::kTyping: return "typing";
    case ClientType::kWho: return "who";
    case ClientType::kHistory: return "history";
    case ClientType::kPing: return "ping";
  }
  return "";
}

bool same(const ClientMessage& a, const ClientMessage& b) {
  return a.type == b.type && a.name == b.name && a.room == b.room && a.text == b.text && a.to == b.to &&
         a.with == b.with && a.id == b.id && a.on == b.on && a.before_seq == b.before_seq && a.limit == b.limit &&
         a.has_since_seq == b.has_since_seq && a.since_seq == b.since_seq && a.resume == b.resume;
}

// The client message that should parse back to `m`.
std::string write_client(const ClientMessage& m) {
  std::string out = R"({"type":)";
  chat::append_json_string(out, type_name(m.type));
  auto field = [&out](std::string_view key, std::string_view value) {
    if (value.empty()) return;
    out += ",\"";
    out += key;
    out += "\":";
    chat::append_json_string(out, value);
  };
  field("name", m.name);
  field("room", m.room);
  field("text", m.text);
  field("to", m.to);
  field("with", m.with);
  field("id", m.id);
  field("resume", m.resume);
  if (m.type == ClientType::kTyping) out += m.on ? R"(,"on":true)" : R"(,"on":false)";
  if (m.before_seq != 0) out += R"(,"before_seq":)" + std::to_string(m.before_seq);
  if (m.limit != 0) out += R"(,"limit":)" + std::to_string(m.limit);
  if (m.has_since_seq) out += R"(,"since_seq":)" + std::to_string(m.since_seq);
  out += '}';
  return out;
}

simdjson::dom::object dom_object(simdjson::dom::parser& parser, const std::string& json) {
  simdjson::dom::element root;
  check(parser.parse(json).get(root) == simdjson::SUCCESS, "writer output parses");
  simdjson::dom::object object;
  check(root.get_object().get(object) == simdjson::SUCCESS, "writer output is an object");
  return object;
}

std::string_view dom_string(simdjson::dom::object object, std::string_view key) {
  std::string_view value;
  check(object[key].get_string().get(value) == simdjson::SUCCESS, "writer field is a string");
  return value;
}

void check_success(const ClientMessage& m, const ParseResult& r, const uint8_t* data, size_t size) {
  check(r.id == m.id, "result id is the message id");
  check(m.id.size() <= 64, "id within 64 bytes");
  for (std::string_view view : {m.name, m.room, m.text, m.to, m.id, m.with, m.resume}) check_view(view, data, size);
  check(m.type == ClientType::kHello || m.resume.empty(), "resume only on hello");
  check(m.resume.size() <= 64, "resume within 64 bytes");
  check(m.limit <= 1000, "limit within 1000");
  bool has_room = m.type == ClientType::kJoin || m.type == ClientType::kLeave || m.type == ClientType::kMsg ||
                  m.type == ClientType::kTyping || m.type == ClientType::kWho || m.type == ClientType::kHistory;
  bool has_text = m.type == ClientType::kMsg || m.type == ClientType::kDm;
  // A history request names a room or, for a DM conversation, `with` (a user name) instead.
  bool dm_history = m.type == ClientType::kHistory && !m.with.empty();
  check(!dm_history || (m.room.empty() && chat::is_valid_user_name(m.with)), "DM history: a valid user, no room");
  check(m.type == ClientType::kHistory || m.with.empty(), "with only on history");
  if (has_room && !dm_history) check(chat::is_valid_room_name(m.room), "room valid when the type has one");
  if (!has_room) check(m.room.empty(), "no room when the type has none");
  check(m.type == ClientType::kHello ? chat::is_valid_user_name(m.name) : m.name.empty(), "hello name");
  check(m.type == ClientType::kDm ? chat::is_valid_user_name(m.to) : m.to.empty(), "dm to");
  check(has_text ? !m.text.empty() && m.text.size() <= kTextLimit : m.text.empty(), "text within limits");
  check(m.type == ClientType::kTyping || !m.on, "on only for typing");
  check(m.type == ClientType::kHistory || (m.before_seq == 0 && m.limit == 0), "history fields only for history");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static chat::ChatParser parser;
  static chat::ChatParser second;
  static simdjson::dom::parser dom;
  std::string_view input(reinterpret_cast<const char*>(data), size);

  ClientMessage message;
  ParseResult result = parser.parse(input, kTextLimit, message);
  check(result.error == ChatError::kNone || !result.reason.empty(), "every error has a reason");
  check(valid_utf8(result.reason) && valid_utf8(result.id), "reason and id are UTF-8");
  check(result.id.size() <= 64, "echoed id within 64 bytes");

  // The error reply can always be written and read back.
  std::string out;
  chat::write_error(out, result.error, result.reason, result.id);
  {
    auto object = dom_object(dom, out);
    check(dom_string(object, "reason") == result.reason, "error reason round trip");
    std::string_view id;
    if (object["id"].get_string().get(id) != simdjson::SUCCESS) id = {};
    check(id == result.id, "error id round trip");
  }

  if (result.error == ChatError::kNone) {
    check_success(message, result, data, size);

    // Reusing the parser on the same bytes gives the same answer.
    ClientMessage again;
    check(parser.parse(input, kTextLimit, again).error == ChatError::kNone && same(message, again),
          "parse is repeatable");

    // Written back as a client message, it parses to the same values.
    std::string client = write_client(again);
    ClientMessage reparsed;
    ParseResult r2 = second.parse(client, kTextLimit, reparsed);
    check(r2.error == ChatError::kNone, "rewritten client message parses");
    check(same(again, reparsed), "rewritten client message has the same values");

    // Through the server writers and simdjson, strings come back unchanged.
    out.clear();
    if (!again.text.empty()) {
      std::string_view from = again.type == ClientType::kDm ? again.to : std::string_view("alice");
      chat::write_msg(out, again.room, from, again.text, 1, 2);
      auto object = dom_object(dom, out);
      check(dom_string(object, "text") == again.text, "msg text round trip");
      check(dom_string(object, "room") == again.room, "msg room round trip");
      out.clear();
      chat::write_history_begin(out, again.room);
      chat::write_history_item(out, from, again.text, 1, 2, true);
      chat::write_history_end(out);
      check(dom.parse(out).error() == simdjson::SUCCESS, "history parses");
    }
    out.clear();
    chat::write_ack(out, again.id, 3, 4);
    {
      auto object = dom_object(dom, out);
      std::string_view id;
      if (object["id"].get_string().get(id) != simdjson::SUCCESS) id = {};
      check(id == again.id, "ack id round trip");
    }

    // A tiny limit turns long text into text_too_long and changes nothing else.
    ClientMessage tiny;
    ParseResult r3 = parser.parse(input, kTinyTextLimit, tiny);
    if (message.text.size() > kTinyTextLimit) {
      check(r3.error == ChatError::kTextTooLong, "over the tiny limit is text_too_long");
    } else {
      check(r3.error == ChatError::kNone, "within the tiny limit still parses");
    }
  } else {
    check(result.error == ChatError::kBadJson || result.error == ChatError::kUnknownType ||
              result.error == ChatError::kMissingField || result.error == ChatError::kInvalidName ||
              result.error == ChatError::kInvalidRoom || result.error == ChatError::kTextTooLong,
          "only syntax errors come from the parser");
  }

  // Any valid UTF-8 string survives append_json_string and a JSON parser unchanged.
  if (valid_utf8(input)) {
    out.clear();
    chat::append_json_string(out, input);
    std::string_view back;
    check(dom.parse(out).get_string().get(back) == simdjson::SUCCESS, "escaped string parses");
    check(back == input, "escaped string round trip");
    check(out.find("</") == std::string::npos, "no </ in escaped output");
  }
  return 0;
}
