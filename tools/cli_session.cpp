#include "tools/cli_session.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <random>

#include "protocol/close_code.h"
#include "protocol/frame_header.h"
#include "protocol/handshake.h"

namespace tools::cli {

namespace {

using protocol::Opcode;

constexpr size_t kMaxResponseHead = 8192;
constexpr size_t kBodySnippet = 200;            // of a refused handshake's body, for the error
constexpr size_t kKeepMessageCapacity = 1 << 20;  // larger gathering buffers are freed after use

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return (x | 0x20) == (y | 0x20) || x == y;
         });
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// True when the comma-separated list `value` holds `token` (case-insensitive; RFC 7230 7).
bool has_token(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    const size_t comma = value.find(',');
    if (iequals(trim(value.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

std::string printable_snippet(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, kBodySnippet)) {
    out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? ' ' : c;
  }
  return std::string(trim(out));
}

}  // namespace

RandomBytes system_random_bytes() {
  return [](uint8_t* out, size_t len) {
    if (RAND_bytes(out, static_cast<int>(len)) == 1) return;
    // OpenSSL's generator is not seeded (should not happen on Linux): fall back to the OS.
    std::random_device device;
    for (size_t i = 0; i < len; ++i) out[i] = static_cast<uint8_t>(device());
  };
}

std::string check_handshake_response(std::string_view head, std::string_view key, std::string_view subprotocol,
                                     int& status, std::string& selected) {
  status = 0;
  selected.clear();
  size_t eol = head.find("\r\n");
  if (eol == std::string_view::npos) return "no status line";
  const std::string_view status_line = head.substr(0, eol);
  // "HTTP/1.1 101 Switching Protocols": version, space, three digits, then a space or the end.
  if (!status_line.starts_with("HTTP/1.") || status_line.size() < 12 || status_line[8] != ' ' ||
      (status_line.size() > 12 && status_line[12] != ' ')) {
    return "not an HTTP response: " + printable_snippet(status_line);
  }
  const std::string_view digits = status_line.substr(9, 3);
  if (std::from_chars(digits.data(), digits.data() + 3, status).ec != std::errc()) {
    status = 0;
    return "not an HTTP response: " + printable_snippet(status_line);
  }
  // RFC 6455 4.1: anything but 101 means the handshake did not complete.
  if (status != 101) return "HTTP " + printable_snippet(status_line.substr(9));

  char accept[protocol::kAcceptKeyLength];
  protocol::compute_accept_key(key, accept);
  const std::string_view expected(accept, sizeof accept);
  bool upgrade = false, connection = false, accepted = false;
  head.remove_prefix(eol + 2);
  while (!head.empty()) {
    eol = head.find("\r\n");
    if (eol == std::string_view::npos) return "unterminated header line";
    const std::string_view line = head.substr(0, eol);
    head.remove_prefix(eol + 2);
    if (line.empty()) break;  // the blank line ending the head
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) return "header line without a colon";
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = trim(line.substr(colon + 1));
    if (iequals(name, "upgrade")) {
      upgrade = iequals(value, "websocket");  // RFC 6455 4.1 client requirement 2
    } else if (iequals(name, "connection")) {
      connection = has_token(value, "upgrade");  // requirement 3
    } else if (iequals(name, "sec-websocket-accept")) {
      if (value != expected) return "wrong Sec-WebSocket-Accept";  // requirement 4
      accepted = true;
    } else if (iequals(name, "sec-websocket-extensions")) {
      return "the server selected an extension that was not offered";  // requirement 5
    } else if (iequals(name, "sec-websocket-protocol")) {
      // Requirement 6: only the subprotocol we offered (we offer at most one).
      if (subprotocol.empty() || value != subprotocol) return "the server selected a subprotocol that was not offered";
      selected = std::string(value);
    }
  }
  if (!upgrade) return "no Upgrade: websocket";
  if (!connection) return "no Connection: Upgrade";
  if (!accepted) return "no Sec-WebSocket-Accept";
  return {};
}

// Gathers message pieces from feed_messages and reacts to control frames.
class ClientSession::Sink : public protocol::MessageSink {
 public:
  Sink(ClientSession& session, std::string& out, std::vector<SessionEvent>& events)
      : session_(session), out_(out), events_(events) {}

  bool on_data(Opcode opcode, std::span<uint8_t> piece, bool first, bool last) override {
    std::string& message = session_.message_;
    if (first) {
      message.clear();
      opcode_ = opcode;
    }
    message.append(reinterpret_cast<const char*>(piece.data()), piece.size());
    if (!last) return true;
    SessionEvent event;
    event.kind = opcode_ == Opcode::kBinary ? SessionEvent::Kind::kBinary : SessionEvent::Kind::kText;
    if (message.capacity() > kKeepMessageCapacity) {
      event.data = std::move(message);
      message = std::string();
    } else {
      event.data = message;
      message.clear();
    }
    events_.push_back(std::move(event));
    return true;
  }

  bool on_control(Opcode opcode, std::span<const uint8_t> payload) override {
    if (opcode == Opcode::kPing) {
      // RFC 6455 5.5.2/5.5.3: answer with a pong carrying the same payload; once our close is
      // out we send nothing more.
      if (session_.phase_ == SessionPhase::kOpen) {
        session_.append_frame(Opcode::kPong, payload.data(), payload.size(), out_);
      }
      return true;
    }
    if (opcode != Opcode::kClose) return true;  // an unsolicited pong: nothing to do
    SessionEvent event;
    event.kind = SessionEvent::Kind::kClose;
    event.code = protocol::close_payload_code(payload.data(), payload.size());
    if (payload.size() > 2) event.data.assign(reinterpret_cast<const char*>(payload.data()) + 2, payload.size() - 2);
    if (session_.phase_ == SessionPhase::kOpen) {
      // RFC 6455 5.5.1: reply with a close frame, echoing the status code.
      // 1005 (no code received) is sent back as an empty payload.
      uint8_t reply[protocol::kMaxControlPayload];
      const size_t length = protocol::encode_close_payload(reply, event.code, {});
      session_.append_frame(Opcode::kClose, reply, length, out_);
    }
    session_.phase_ = SessionPhase::kClosed;
    events_.push_back(std::move(event));
    return false;  // RFC 6455 5.5.1: nothing follows a close frame
  }

 private:
  ClientSession& session_;
  std::string& out_;
  std::vector<SessionEvent>& events_;
  Opcode opcode_ = Opcode::kText;
};

ClientSession::ClientSession(SessionConfig config, RandomBytes random)
    : config_(std::move(config)), random_(std::move(random)) {
  limits_.sender = protocol::Sender::kServer;
  limits_.max_message_size = config_.max_message_size;
}

void ClientSession::start(std::string& out) {
  reader_ = protocol::ReaderState{};
  head_.clear();
  message_.clear();
  selected_subprotocol_.clear();
  phase_ = SessionPhase::kHandshake;
  closed_by_us_ = false;

  // RFC 6455 4.1: a fresh base64-encoded 16-byte nonce per connection.
  uint8_t nonce[16];
  random_(nonce, sizeof nonce);
  unsigned char encoded[25];
  EVP_EncodeBlock(encoded, nonce, sizeof nonce);
  key_.assign(reinterpret_cast<const char*>(encoded), 24);

  bool custom_host = false;
  for (const auto& header : config_.headers) custom_host |= iequals(header.first, "host");
  out += "GET ";
  out += config_.path;
  out += " HTTP/1.1\r\n";
  if (!custom_host) {
    out += "Host: ";
    out += config_.host;
    out += "\r\n";
  }
  out += "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ";
  out += key_;
  out += "\r\nSec-WebSocket-Version: 13\r\n";
  if (!config_.subprotocol.empty()) {
    out += "Sec-WebSocket-Protocol: ";
    out += config_.subprotocol;
    out += "\r\n";
  }
  for (const auto& [name, value] : config_.headers) {
    out += name;
    out += ": ";
    out += value;
    out += "\r\n";
  }
  out += "\r\n";
}

void ClientSession::fail(std::string reason, uint16_t http_status, std::vector<SessionEvent>& events) {
  phase_ = SessionPhase::kFailed;
  SessionEvent event;
  event.kind = SessionEvent::Kind::kFailed;
  event.code = http_status;
  event.data = std::move(reason);
  events.push_back(std::move(event));
}

void ClientSession::finish_handshake(std::string_view head, std::string_view rest, std::vector<SessionEvent>& events) {
  int status = 0;
  std::string why = check_handshake_response(head, key_, config_.subprotocol, status, selected_subprotocol_);
  if (!why.empty()) {
    if (status != 101 && status != 0 && !rest.empty()) why += ": " + printable_snippet(rest);
    fail("handshake failed: " + why, static_cast<uint16_t>(status == 101 ? 0 : status), events);
    return;
  }
  phase_ = SessionPhase::kOpen;
  SessionEvent event;
  event.kind = SessionEvent::Kind::kOpen;
  events.push_back(std::move(event));
}

void ClientSession::feed(uint8_t* data, size_t len, std::string& out, std::vector<SessionEvent>& events) {
  if (phase_ == SessionPhase::kHandshake) {
    const size_t before = head_.size();
    const size_t take = std::min(len, kMaxResponseHead + 1 - std::min(before, kMaxResponseHead + 1));
    head_.append(reinterpret_cast<const char*>(data), take);
    const size_t end = head_.find("\r\n\r\n", before >= 3 ? before - 3 : 0);
    if (end == std::string::npos) {
      if (head_.size() > kMaxResponseHead) fail("handshake failed: response head over 8 KiB", 0, events);
      return;
    }
    const size_t used = end + 4 - before;  // bytes of `data` that belong to the head
    data += used;
    len -= used;
    finish_handshake(std::string_view(head_).substr(0, end + 4),
                     std::string_view(reinterpret_cast<const char*>(data), len), events);
    head_.clear();
    head_.shrink_to_fit();
  }
  if ((phase_ != SessionPhase::kOpen && phase_ != SessionPhase::kClosing) || len == 0) return;

  Sink sink(*this, out, events);
  const protocol::FeedResult result = protocol::feed_messages(reader_, data, len, limits_, sink);
  if (result.error != protocol::ProtocolError::kNone) {
    // RFC 6455 7.1.7: fail the connection, sending a close frame with the matching code first
    // unless ours is already out.
    if (phase_ == SessionPhase::kOpen) {
      uint8_t payload[protocol::kMaxControlPayload];
      const size_t length =
          protocol::encode_close_payload(payload, protocol::close_code_for(result.error), protocol::reason_for(result.error));
      append_frame(Opcode::kClose, payload, length, out);
    }
    fail("protocol error from the server: " + std::string(protocol::reason_for(result.error)), 0, events);
  }
}

void ClientSession::on_end_of_stream(std::vector<SessionEvent>& events) {
  const char* why = nullptr;
  switch (phase_) {
    case SessionPhase::kHandshake: why = "the server closed the connection during the handshake"; break;
    case SessionPhase::kOpen: why = "the connection was lost (no close frame)"; break;
    case SessionPhase::kClosing: why = "the server closed the connection without answering our close frame"; break;
    case SessionPhase::kClosed:
    case SessionPhase::kFailed: return;
  }
  phase_ = SessionPhase::kFailed;
  SessionEvent event;
  event.kind = SessionEvent::Kind::kDropped;
  event.data = why;
  events.push_back(std::move(event));
}

void ClientSession::append_frame(Opcode opcode, const void* payload, size_t length, std::string& out) {
  // RFC 6455 5.3: every client frame is masked with a fresh, unpredictable key.
  uint8_t mask[4];
  random_(mask, sizeof mask);
  uint8_t header[protocol::kMaxFrameHeaderLength];
  const size_t header_length = protocol::encode_masked_frame_header(header, opcode, length, mask);
  out.append(reinterpret_cast<const char*>(header), header_length);
  const size_t at = out.size();
  out.append(static_cast<const char*>(payload), length);
  protocol::unmask(reinterpret_cast<uint8_t*>(out.data() + at), length, mask, 0);
}

bool ClientSession::send_text(std::string_view text, std::string& out) {
  if (phase_ != SessionPhase::kOpen) return false;
  append_frame(Opcode::kText, text.data(), text.size(), out);
  return true;
}

bool ClientSession::send_ping(std::string_view payload, std::string& out) {
  if (phase_ != SessionPhase::kOpen || payload.size() > protocol::kMaxControlPayload) return false;
  append_frame(Opcode::kPing, payload.data(), payload.size(), out);
  return true;
}

bool ClientSession::send_close(uint16_t code, std::string_view reason, std::string& out) {
  if (phase_ != SessionPhase::kOpen) return false;
  uint8_t payload[protocol::kMaxControlPayload];
  const size_t length = protocol::encode_close_payload(payload, code, reason);
  append_frame(Opcode::kClose, payload, length, out);
  phase_ = SessionPhase::kClosing;
  closed_by_us_ = true;
  return true;
}

}  // namespace tools::cli
