#pragma once
// One parley-cli WebSocket connection as a pure state machine (RFC 6455 client side): it writes
// the upgrade request, checks the 101 (4.1), reads server frames into whole messages with
// protocol::feed_messages (Sender::kServer: unmasked frames, UTF-8 text, valid close payloads),
// answers pings, and runs the close handshake (5.5.1, 7.1). It does no I/O: the caller feeds it
// what it read and writes out what it appends to an output string.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocol/message_reader.h"

namespace tools::cli {

struct SessionConfig {
  std::string host;  // the Host header: host[:port], IPv6 in brackets
  std::string path = "/";
  // Extra request headers, in order; names and values must hold no CR or LF (the options
  // parser checks). A "Host" here replaces the default one.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string subprotocol;  // offered in Sec-WebSocket-Protocol; empty for none
  uint64_t max_message_size = uint64_t{16} << 20;  // a bigger message fails the connection (1009)
};

enum class SessionPhase : uint8_t {
  kHandshake,  // upgrade request written, waiting for the 101
  kOpen,       // messages flow both ways
  kClosing,    // we sent a close frame; waiting for the server's
  kClosed,     // both close frames exchanged; waiting for the server to end the stream
  kFailed,     // handshake refused, protocol error or lost stream; nothing more will be sent
};

struct SessionEvent {
  enum class Kind : uint8_t {
    kOpen,     // the 101 was accepted
    kText,     // a whole text message in `data` (valid UTF-8)
    kBinary,   // a whole binary message in `data`
    kClose,    // the server's close frame: `code` (1005 when it carried none) and reason `data`
    kFailed,   // the handshake was refused or the server broke the protocol: why in `data`;
               // `code` is the HTTP status of a refused handshake (0 otherwise)
    kDropped,  // the stream ended before the close handshake finished: why in `data`
  };
  Kind kind = Kind::kText;
  uint16_t code = 0;
  std::string data;
};

// Fills `out[0, len)` with random bytes: Sec-WebSocket-Key nonces and mask keys.
using RandomBytes = std::function<void(uint8_t* out, size_t len)>;

// RandomBytes from OpenSSL's CSPRNG; RFC 6455 10.3 asks for unpredictable mask keys.
RandomBytes system_random_bytes();

class ClientSession {
 public:
  explicit ClientSession(SessionConfig config, RandomBytes random = system_random_bytes());

  // Starts a fresh attempt: forgets all earlier state and appends the upgrade request to `out`.
  void start(std::string& out);
  // Consumes bytes read from the socket. `data` may be modified in place. Appends what must be
  // sent (pongs, the close reply, the close frame failing the connection) to `out` and what
  // happened to `events`. Input after a close frame or a failure is ignored.
  void feed(uint8_t* data, size_t len, std::string& out, std::vector<SessionEvent>& events);
  // The server ended the stream (EOF or reset). Adds kDropped unless the close handshake had
  // finished or the session already failed.
  void on_end_of_stream(std::vector<SessionEvent>& events);

  // Appends a text message (must be valid UTF-8) / a ping. False, appending nothing, unless
  // kOpen (or the ping payload is over 125 bytes).
  bool send_text(std::string_view text, std::string& out);
  bool send_ping(std::string_view payload, std::string& out);
  // Starts the close handshake: appends a close frame with `code` and `reason` (cut to fit) and
  // moves to kClosing. False, appending nothing, unless kOpen.
  bool send_close(uint16_t code, std::string_view reason, std::string& out);

  SessionPhase phase() const { return phase_; }
  // The subprotocol the server selected; empty when none.
  const std::string& subprotocol() const { return selected_subprotocol_; }
  // True when we sent the first close frame (the close was ours).
  bool closed_by_us() const { return closed_by_us_; }

 private:
  class Sink;
  void finish_handshake(std::string_view head, std::string_view rest, std::vector<SessionEvent>& events);
  void append_frame(protocol::Opcode opcode, const void* payload, size_t length, std::string& out);
  void fail(std::string reason, uint16_t http_status, std::vector<SessionEvent>& events);

  SessionConfig config_;
  RandomBytes random_;
  protocol::ReaderState reader_;
  protocol::ReaderLimits limits_;
  std::string head_;     // the response head as it arrives
  std::string message_;  // the data message being gathered
  std::string key_;      // our Sec-WebSocket-Key
  std::string selected_subprotocol_;
  SessionPhase phase_ = SessionPhase::kHandshake;
  bool closed_by_us_ = false;
};

// Checks a response head (status line through the blank line) to an upgrade with key `key` that
// offered `subprotocol` (empty: none): status 101, Upgrade: websocket, Connection: Upgrade, the
// right Sec-WebSocket-Accept, no extension, and no subprotocol but the offered one (RFC 6455 4.1,
// client requirements 1-6). Returns "" when acceptable, else why not; `status` gets the HTTP
// status (0 when unreadable) and `selected` the Sec-WebSocket-Protocol value.
std::string check_handshake_response(std::string_view head, std::string_view key, std::string_view subprotocol,
                                     int& status, std::string& selected);

}  // namespace tools::cli
