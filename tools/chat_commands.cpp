#include "tools/chat_commands.h"

#include <charconv>

#include "chat/chat_codec.h"
#include "protocol/utf8.h"

namespace tools::cli {

namespace {

constexpr uint32_t kMaxHistoryLimit = 1000;  // docs/protocol.md: limit is 1-1000

bool is_space(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view text) {
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && (is_space(text.back()) || text.back() == '\r')) text.remove_suffix(1);
  return text;
}

// Splits off the first whitespace-separated word; `rest` keeps what follows, leading blanks
// removed (so a message text keeps its inner spacing).
std::string_view next_word(std::string_view& rest) {
  size_t end = 0;
  while (end < rest.size() && !is_space(rest[end])) ++end;
  std::string_view word = rest.substr(0, end);
  rest.remove_prefix(end);
  while (!rest.empty() && is_space(rest.front())) rest.remove_prefix(1);
  return word;
}

ChatCommandParse fail(std::string error) {
  ChatCommandParse result;
  result.error = std::move(error);
  return result;
}

ChatCommandParse succeed(ChatCommand command) {
  ChatCommandParse result;
  result.ok = true;
  result.command = std::move(command);
  return result;
}

std::string room_error(std::string_view room) {
  return "invalid room name \"" + std::string(room) + "\": 1-64 of A-Z a-z 0-9 _ . -, optionally after '#'";
}

std::string user_error(std::string_view user) {
  return "invalid user name \"" + std::string(user) + "\": 1-32 of A-Z a-z 0-9 _ . -";
}

// The room argument, or the current room when it is omitted; "" with `error` set on failure.
bool take_room(std::string_view word, std::string_view current_room, std::string_view usage, std::string& room,
               std::string& error) {
  if (word.empty()) {
    if (current_room.empty()) {
      error = "no room given and not in a room; usage: " + std::string(usage);
      return false;
    }
    word = current_room;
  }
  if (!chat::is_valid_room_name(word)) {
    error = room_error(word);
    return false;
  }
  room = std::string(word);
  return true;
}

bool parse_limit(std::string_view word, uint32_t& limit) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(word.data(), word.data() + word.size(), value);
  if (ec != std::errc() || end != word.data() + word.size() || value == 0 || value > kMaxHistoryLimit) return false;
  limit = static_cast<uint32_t>(value);
  return true;
}

void append_field(std::string& out, std::string_view name, std::string_view value) {
  out += ",\"";
  out += name;
  out += "\":";
  chat::append_json_string(out, value);
}

std::string begin(std::string_view type) {
  std::string out = "{\"type\":\"";
  out += type;
  out += '"';
  return out;
}

}  // namespace

ChatCommandParse parse_chat_command(std::string_view line, std::string_view current_room) {
  // Strip only the line ending for said text: leading spaces may be meant.
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.remove_suffix(1);
  if (trim(line).empty()) return succeed({});
  // RFC 6455 8.1: a text message must be UTF-8; the server would fail the connection (1007).
  if (!protocol::utf8_is_valid(line)) return fail("the line is not valid UTF-8; not sent");
  if (!line.starts_with('/') || line.starts_with("//")) {
    if (line.starts_with("//")) line.remove_prefix(1);
    if (current_room.empty()) return fail("not in a room: /join ROOM first, or use /msg ROOM TEXT");
    ChatCommand command;
    command.kind = ChatCommandKind::kSay;
    command.room = std::string(current_room);
    command.text = std::string(line);
    return succeed(std::move(command));
  }

  std::string_view rest = trim(line);
  rest.remove_prefix(1);
  const std::string_view name = next_word(rest);
  ChatCommand command;
  std::string error;
  if (name == "join" || name == "j") {
    const std::string_view room = next_word(rest);
    if (room.empty() || !rest.empty()) return fail("usage: /join ROOM");
    if (!take_room(room, {}, "/join ROOM", command.room, error)) return fail(std::move(error));
    command.kind = ChatCommandKind::kJoin;
  } else if (name == "leave" || name == "part") {
    const std::string_view room = next_word(rest);
    if (!rest.empty()) return fail("usage: /leave [ROOM]");
    if (!take_room(room, current_room, "/leave ROOM", command.room, error)) return fail(std::move(error));
    command.kind = ChatCommandKind::kLeave;
  } else if (name == "msg" || name == "m") {
    const std::string_view room = next_word(rest);
    if (room.empty() || rest.empty()) return fail("usage: /msg ROOM TEXT");
    if (!take_room(room, {}, "/msg ROOM TEXT", command.room, error)) return fail(std::move(error));
    command.kind = ChatCommandKind::kMsg;
    command.text = std::string(rest);
  } else if (name == "dm" || name == "w") {
    const std::string_view user = next_word(rest);
    if (user.empty() || rest.empty()) return fail("usage: /dm USER TEXT");
    if (!chat::is_valid_user_name(user)) return fail(user_error(user));
    command.kind = ChatCommandKind::kDm;
    command.user = std::string(user);
    command.text = std::string(rest);
  } else if (name == "who") {
    const std::string_view room = next_word(rest);
    const std::string_view after = next_word(rest);
    if (!rest.empty()) return fail("usage: /who [ROOM] [AFTER]");
    if (!take_room(room, current_room, "/who ROOM", command.room, error)) return fail(std::move(error));
    if (!after.empty() && !chat::is_valid_user_name(after)) return fail(user_error(after));
    command.kind = ChatCommandKind::kWho;
    command.after = std::string(after);
  } else if (name == "history") {
    const std::string_view room = next_word(rest);
    const std::string_view limit = next_word(rest);
    if (!rest.empty()) return fail("usage: /history [ROOM] [LIMIT]");
    if (!take_room(room, current_room, "/history ROOM [LIMIT]", command.room, error)) return fail(std::move(error));
    if (!limit.empty() && !parse_limit(limit, command.limit)) {
      return fail("invalid history limit \"" + std::string(limit) + "\": a whole number from 1 to 1000");
    }
    command.kind = ChatCommandKind::kHistory;
  } else if (name == "ping") {
    if (!rest.empty()) return fail("usage: /ping");
    command.kind = ChatCommandKind::kPing;
  } else if (name == "quit" || name == "exit" || name == "q") {
    if (!rest.empty()) return fail("usage: /quit");
    command.kind = ChatCommandKind::kQuit;
  } else if (name == "help" || name == "?") {
    command.kind = ChatCommandKind::kHelp;
  } else {
    return fail("unknown command /" + std::string(name) + " (try /help)");
  }
  return succeed(std::move(command));
}

std::string write_hello(std::string_view name) {
  std::string out = begin("hello");
  append_field(out, "name", name);
  out += '}';
  return out;
}

std::string write_join(std::string_view room) {
  std::string out = begin("join");
  append_field(out, "room", room);
  out += '}';
  return out;
}

std::string write_hello_resume(std::string_view name, std::string_view resume) {
  std::string out = begin("hello");
  append_field(out, "name", name);
  append_field(out, "resume", resume);
  out += '}';
  return out;
}

std::string write_join_since(std::string_view room, uint64_t since_seq) {
  std::string out = begin("join");
  append_field(out, "room", room);
  out += ",\"since_seq\":";
  out += std::to_string(since_seq);
  out += '}';
  return out;
}

std::string write_client_message(const ChatCommand& command, std::string_view id) {
  std::string out;
  switch (command.kind) {
    case ChatCommandKind::kNone:
    case ChatCommandKind::kQuit:
    case ChatCommandKind::kHelp:
      return out;
    case ChatCommandKind::kJoin:
      out = begin("join");
      append_field(out, "room", command.room);
      break;
    case ChatCommandKind::kLeave:
      out = begin("leave");
      append_field(out, "room", command.room);
      break;
    case ChatCommandKind::kSay:
    case ChatCommandKind::kMsg:
      out = begin("msg");
      append_field(out, "room", command.room);
      append_field(out, "text", command.text);
      break;
    case ChatCommandKind::kDm:
      out = begin("dm");
      append_field(out, "to", command.user);
      append_field(out, "text", command.text);
      break;
    case ChatCommandKind::kWho:
      out = begin("who");
      append_field(out, "room", command.room);
      if (!command.after.empty()) append_field(out, "after", command.after);
      break;
    case ChatCommandKind::kHistory:
      out = begin("history");
      append_field(out, "room", command.room);
      if (command.limit != 0) {
        out += ",\"limit\":";
        out += std::to_string(command.limit);
      }
      break;
    case ChatCommandKind::kPing:
      out = begin("ping");
      break;
  }
  if (!id.empty()) append_field(out, "id", id);
  out += '}';
  return out;
}

std::string_view chat_help_text() {
  return "/join ROOM              join ROOM and make it the current room\n"
         "/leave [ROOM]           leave ROOM (default: the current room)\n"
         "/msg ROOM TEXT          say TEXT in ROOM\n"
         "TEXT                    say TEXT in the current room (//TEXT for a TEXT starting with /)\n"
         "/dm USER TEXT           send TEXT to USER only\n"
         "/who [ROOM] [AFTER]     list the members of ROOM (a big room by pages: AFTER is\n"
         "                        the name the previous page said to continue after)\n"
         "/history [ROOM] [LIMIT] show ROOM's last messages (LIMIT 1-1000)\n"
         "/ping                   ask the server for a pong\n"
         "/quit                   close the connection and exit\n";
}

}  // namespace tools::cli
