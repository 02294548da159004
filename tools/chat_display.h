#pragma once
// parley-cli's chat mode output: turns each server message (docs/protocol.md, "Server messages")
// into readable lines ("[lobby] alice: hi", "* bob joined lobby", "! error ...") and extracts
// what the client must track (which rooms the server confirmed). Pure: no I/O.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace tools::cli {

struct ServerEvent {
  std::string type;     // the message's "type"; empty when it is not a JSON object with one
  std::string room;     // "room" of joined/left/msg/typing/who/history, else empty
  std::string display;  // lines to print, each ending in '\n'; empty when nothing is shown (ack)
  // What reconnecting needs (issue 14, chat_reconnect.h): the seq of a msg or ack, the newest seq
  // of a room's history (0: none); the id of an ack or error; an error's code; a welcome's
  // resume token.
  uint64_t seq = 0;
  std::string id;
  std::string code;
  std::string resume;
};

// Formats server messages. Keeps a simdjson parser between calls. Not thread-safe.
class ServerMessageFormatter {
 public:
  ServerMessageFormatter();
  ~ServerMessageFormatter();
  ServerMessageFormatter(const ServerMessageFormatter&) = delete;
  ServerMessageFormatter& operator=(const ServerMessageFormatter&) = delete;

  // Formats one text message. Never fails: malformed JSON, unknown types and missing fields are
  // shown raw after "? ". Control characters in names and texts are escaped, so a peer cannot
  // drive the terminal.
  ServerEvent format(std::string_view json);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// `text` with control characters (other than tab) written as \n, \r or \xNN, so it prints on
// one line and cannot inject terminal escape sequences.
std::string printable(std::string_view text);

}  // namespace tools::cli
