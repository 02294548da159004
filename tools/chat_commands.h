#pragma once
// parley-cli's chat mode input: the commands a user types (/join ROOM, /msg ROOM TEXT, ...) and
// the client JSON messages they become (docs/protocol.md). Pure: no I/O.
#include <cstdint>
#include <string>
#include <string_view>

namespace tools::cli {

enum class ChatCommandKind : uint8_t {
  kNone,     // an empty line: nothing to do
  kSay,      // plain text to the current room (a msg)
  kJoin,     // /join ROOM
  kLeave,    // /leave [ROOM]
  kMsg,      // /msg ROOM TEXT
  kDm,       // /dm USER TEXT
  kWho,      // /who [ROOM] [AFTER]
  kHistory,  // /history [ROOM] [LIMIT]
  kPing,     // /ping
  kQuit,     // /quit
  kHelp,     // /help
};

struct ChatCommand {
  ChatCommandKind kind = ChatCommandKind::kNone;
  std::string room;    // join, leave, say, msg, who, history
  std::string user;    // dm
  std::string text;    // say, msg, dm
  uint32_t limit = 0;  // history: 0 = the server's default
  std::string after;   // who: the page cursor (the `next` of the previous page); empty: first page
};

struct ChatCommandParse {
  bool ok = false;
  ChatCommand command;  // valid when ok
  std::string error;    // why not, one line for the user, when !ok
};

// Parses one input line (without its newline). Text not starting with '/' is said to
// `current_room` (an error when it is empty); "//text" says "/text". Optional ROOM arguments
// default to `current_room`. Room and user names, limits and non-empty texts are checked here,
// so the server is only sent what it can accept; so is UTF-8 validity (RFC 6455 8.1).
ChatCommandParse parse_chat_command(std::string_view line, std::string_view current_room);

// The client message for a parsed command, as one JSON object; `id` (empty for none) is what
// the server echoes in its ack or error. Empty for kNone, kQuit and kHelp.
std::string write_client_message(const ChatCommand& command, std::string_view id);
// {"type":"hello","name":...}.
std::string write_hello(std::string_view name);
// {"type":"join","room":...}.
std::string write_join(std::string_view room);
// {"type":"hello","name":...,"resume":...}: a hello resuming a held session (issue 14).
std::string write_hello_resume(std::string_view name, std::string_view resume);
// {"type":"join","room":...,"since_seq":N}: a rejoin recovering every message after N.
std::string write_join_since(std::string_view room, uint64_t since_seq);

// The /help text: one command per line, each ending in '\n'.
std::string_view chat_help_text();

}  // namespace tools::cli
