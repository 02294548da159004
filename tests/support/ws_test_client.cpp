#include "tests/support/ws_test_client.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <thread>

#include "protocol/deflate_codec.h"

namespace parley_test {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view kWebSocketGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";  // RFC 6455 1.3
// The receive buffer starts at kReadChunk and doubles whenever less than kMinReadRoom is free:
// small, because tests hold thousands of clients at once (and a resize zero-fills), and
// doubling, so a 16 MiB message still arrives in few reads.
constexpr size_t kReadChunk = 16 * 1024;
constexpr size_t kMinReadRoom = 4 * 1024;
// Larger sends are cut so that reading what the server echoes interleaves with writing.
constexpr size_t kSendSlice = 64 * 1024;
constexpr size_t kMaxHttpHead = 64 * 1024;
// A server frame claiming more than this is treated as garbage rather than allocated.
constexpr uint64_t kMaxServerFrame = 256ull << 20;

std::mt19937& rng() {
  thread_local std::mt19937 generator{std::random_device{}()};
  return generator;
}

std::array<uint8_t, 4> random_mask_key() {
  std::array<uint8_t, 4> key;
  for (uint8_t& b : key) b = static_cast<uint8_t>(rng()());
  return key;
}

std::string base64(const unsigned char* data, size_t len) {
  std::string out(4 * ((len + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(len));
  out.resize(static_cast<size_t>(n));
  return out;
}

int remaining_ms(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// RFC 9110 5.6.1: a comma-separated list of tokens, compared case-insensitively.
bool has_token(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    if (iequals(trim(list.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

// Parses "HTTP/1.1 101 Switching Protocols\r\nName: value\r\n...\r\n\r\n".
bool parse_response_head(std::string_view head, HttpResponse& out) {
  size_t eol = head.find('\n');
  std::string_view status_line = trim(head.substr(0, eol));
  if (status_line.substr(0, 7) != "HTTP/1." || status_line.size() < 12) {
    out.error = "bad status line: " + std::string(status_line);
    return false;
  }
  out.status = 0;
  for (size_t i = 9; i < 12; ++i) {
    if (status_line[i] < '0' || status_line[i] > '9') {
      out.error = "bad status code: " + std::string(status_line);
      return false;
    }
    out.status = out.status * 10 + (status_line[i] - '0');
  }
  out.reason = std::string(trim(status_line.substr(12)));
  head.remove_prefix(eol == std::string_view::npos ? head.size() : eol + 1);
  while (!head.empty()) {
    eol = head.find('\n');
    std::string_view line = trim(head.substr(0, eol));
    head.remove_prefix(eol == std::string_view::npos ? head.size() : eol + 1);
    if (line.empty()) break;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      out.error = "bad header line: " + std::string(line);
      return false;
    }
    out.headers.emplace_back(std::string(trim(line.substr(0, colon))), std::string(trim(line.substr(colon + 1))));
  }
  return true;
}

}  // namespace

std::optional<std::string> HttpResponse::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (iequals(key, name)) return value;
  }
  return std::nullopt;
}

std::string expected_accept_key(std::string_view key) {
  std::string input(key);
  input.append(kWebSocketGuid);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  EVP_Digest(input.data(), input.size(), digest, &digest_len, EVP_sha1(), nullptr);
  return base64(digest, digest_len);
}

std::string encode_frame(uint8_t opcode, std::string_view payload, const FrameOptions& options) {
  uint8_t header[protocol::kMaxFrameHeaderLength];
  // A fixed-underlying-type enum holds any 4-bit value, so reserved opcodes go through as is.
  const auto op = static_cast<protocol::Opcode>(opcode & 0x0F);
  const bool rsv1 = (options.rsv & protocol::kRsv1) != 0;
  std::array<uint8_t, 4> key{};
  size_t header_length;
  if (options.masked) {
    key = options.mask_key ? *options.mask_key : random_mask_key();
    header_length = protocol::encode_masked_frame_header(header, op, payload.size(), key.data(), options.fin, rsv1);
  } else {
    header_length = protocol::encode_frame_header(header, op, payload.size(), options.fin, rsv1);
  }
  // The encoder only knows RSV1 (the one permessage-deflate uses); RSV2/RSV3 are ORed in here.
  header[0] |= options.rsv & (protocol::kRsv2 | protocol::kRsv3);
  std::string frame(reinterpret_cast<const char*>(header), header_length);
  frame.append(payload);
  if (options.masked) {
    protocol::unmask(reinterpret_cast<uint8_t*>(frame.data()) + header_length, payload.size(), key.data(), 0);
  }
  return frame;
}

std::string close_payload(uint16_t code, std::string_view reason) {
  std::string out;
  out.push_back(static_cast<char>(code >> 8));
  out.push_back(static_cast<char>(code & 0xFF));
  out.append(reason);
  return out;
}

WsTestClient::WsTestClient() = default;

WsTestClient::~WsTestClient() { disconnect(); }

void WsTestClient::disconnect() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  tls_.reset();
}

bool WsTestClient::connect_tcp(const std::string& host, uint16_t port, milliseconds timeout) {
  disconnect();
  rx_begin_ = rx_end_ = 0;
  peer_eof_ = peer_reset_ = close_sent_ = false;
  handshake_response_ = HttpResponse{};
  host_ = host;
  port_ = port;
  const auto deadline = Clock::now() + timeout;

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* addrs = nullptr;
  int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &addrs);
  if (rc != 0) {
    error_ = "getaddrinfo(" + host + "): " + gai_strerror(rc);
    return false;
  }
  error_ = "no address for " + host;
  for (addrinfo* a = addrs; a != nullptr; a = a->ai_next) {
    int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      error_ = std::string("socket: ") + std::strerror(errno);
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int err = 0;
    if (::connect(fd, a->ai_addr, a->ai_addrlen) < 0) {
      err = errno;
      if (err == EINPROGRESS) {
        pollfd p{fd, POLLOUT, 0};
        int n = poll(&p, 1, remaining_ms(deadline));
        if (n == 0) {
          err = ETIMEDOUT;
        } else {
          socklen_t len = sizeof err;
          getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        }
      }
    }
    if (err == 0) {
      fd_ = fd;
      break;
    }
    error_ = "connect to " + host + ":" + std::to_string(port) + ": " + std::strerror(err);
    close(fd);
  }
  freeaddrinfo(addrs);
  if (fd_ < 0) return false;
  error_.clear();
  return true;
}

bool WsTestClient::upgrade(std::string_view path, const std::vector<std::string>& extra_headers, size_t chop,
                           milliseconds delay, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  unsigned char nonce[16];
  for (unsigned char& b : nonce) b = static_cast<unsigned char>(rng()());
  const std::string key = base64(nonce, sizeof nonce);  // RFC 6455 4.1: 16 random bytes, base64

  std::string request = "GET " + std::string(path) + " HTTP/1.1\r\n";
  request += "Host: " + host_ + ":" + std::to_string(port_) + "\r\n";
  request += "Upgrade: websocket\r\nConnection: Upgrade\r\n";
  request += "Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n";
  for (const std::string& header : extra_headers) request += header + "\r\n";
  request += "\r\n";

  bool sent = chop == 0 ? send_raw(request, milliseconds(remaining_ms(deadline)))
                        : send_chopped(request, chop, delay, milliseconds(remaining_ms(deadline)));
  if (!sent) return false;
  handshake_response_ = read_http_response(milliseconds(remaining_ms(deadline)));
  const HttpResponse& r = handshake_response_;
  if (!r.complete) {
    error_ = "no complete upgrade response: " + r.error;
    return false;
  }
  if (r.status != 101) {
    error_ = "upgrade answered " + std::to_string(r.status) + " " + r.reason + ": " + r.body;
    return false;
  }
  // RFC 6455 4.1 (client requirements 2-4): Upgrade, Connection and Sec-WebSocket-Accept.
  if (!has_token(r.header("Upgrade").value_or(""), "websocket")) {
    error_ = "101 without Upgrade: websocket";
    return false;
  }
  if (!has_token(r.header("Connection").value_or(""), "upgrade")) {
    error_ = "101 without Connection: Upgrade";
    return false;
  }
  const std::string expected = expected_accept_key(key);
  if (r.header("Sec-WebSocket-Accept").value_or("") != expected) {
    error_ = "Sec-WebSocket-Accept is '" + r.header("Sec-WebSocket-Accept").value_or("<missing>") +
             "', expected '" + expected + "'";
    return false;
  }
  return true;
}

bool WsTestClient::connect(const std::string& host, uint16_t port, std::string_view path,
                           const std::vector<std::string>& extra_headers, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  return connect_tcp(host, port, timeout) &&
         upgrade(path, extra_headers, 0, milliseconds(0), milliseconds(remaining_ms(deadline)));
}

WsTestClient::Fill WsTestClient::drain_nonblocking() {
  if (fd_ < 0) return Fill::kError;
  if (tls_ != nullptr) return drain_tls_nonblocking();
  bool got = false;
  for (;;) {
    if (rx_.size() - rx_end_ < kMinReadRoom) {
      // Compact first; grow only when the unread bytes really need the room.
      if (rx_begin_ > 0) {
        std::memmove(rx_.data(), rx_.data() + rx_begin_, buffered());
        rx_end_ -= rx_begin_;
        rx_begin_ = 0;
      }
      if (rx_.size() - rx_end_ < kMinReadRoom) rx_.resize(std::max(rx_.size() * 2, kReadChunk));
    }
    ssize_t n = recv(fd_, rx_.data() + rx_end_, rx_.size() - rx_end_, 0);
    if (n > 0) {
      rx_end_ += static_cast<size_t>(n);
      got = true;
      continue;
    }
    if (n == 0) {
      peer_eof_ = true;
      return got ? Fill::kData : Fill::kEof;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return got ? Fill::kData : Fill::kTimeout;
    if (errno == ECONNRESET) {
      peer_reset_ = true;
      return got ? Fill::kData : Fill::kReset;
    }
    error_ = std::string("recv: ") + std::strerror(errno);
    return got ? Fill::kData : Fill::kError;
  }
}

WsTestClient::Fill WsTestClient::fill(Clock::time_point deadline) {
  if (fd_ < 0) {
    error_ = "not connected";
    return Fill::kError;
  }
  if (peer_eof_) return Fill::kEof;
  if (peer_reset_) return Fill::kReset;
  for (;;) {
    pollfd p{fd_, POLLIN, 0};
    int n = poll(&p, 1, remaining_ms(deadline));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      error_ = std::string("poll: ") + std::strerror(errno);
      return Fill::kError;
    }
    if (n == 0) return Fill::kTimeout;
    Fill f = drain_nonblocking();
    if (f != Fill::kTimeout) return f;
    if (Clock::now() >= deadline) return Fill::kTimeout;  // spurious wakeup at the deadline
  }
}

void WsTestClient::consume(size_t n) {
  rx_begin_ += n;
  if (rx_begin_ == rx_end_) rx_begin_ = rx_end_ = 0;
}

namespace {

// True when `bytes`, read as client frames from a frame boundary, hold the header of a close
// frame (RFC 6455 5.2). Stops at the first frame not wholly inside `bytes`.
bool holds_close_frame(std::string_view bytes) {
  size_t at = 0;
  while (bytes.size() - at >= 2) {
    const auto byte = [&](size_t i) { return static_cast<uint8_t>(bytes[at + i]); };
    if ((byte(0) & 0x0F) == kOpClose) return true;
    uint64_t length = byte(1) & 0x7F;
    size_t header = 2;
    if (length >= 126) {
      header = length == 126 ? 4 : 10;
      if (bytes.size() - at < header) return false;
      length = 0;
      for (size_t i = 2; i < header; ++i) length = (length << 8) | byte(i);
    }
    if (byte(1) & 0x80) header += 4;  // mask key
    if (bytes.size() - at < header || length > bytes.size() - at - header) return false;
    at += header + length;
  }
  return false;
}

}  // namespace

bool WsTestClient::send_raw(std::string_view bytes, milliseconds timeout) {
  // A close written as raw bytes counts as sent: expect_close() must not answer the server's
  // close with a second one (RFC 6455 5.5.1: nothing after a close), which the server, having
  // closed TCP at the end of the handshake, would meet with a reset.
  if (handshake_response_.status == 101 && holds_close_frame(bytes)) close_sent_ = true;
  if (tls_ != nullptr) return send_wire(tls_->encrypt(bytes), timeout);
  return send_wire(bytes, timeout);
}

bool WsTestClient::send_wire(std::string_view bytes, milliseconds timeout) {
  if (fd_ < 0) {
    error_ = "not connected";
    return false;
  }
  const auto deadline = Clock::now() + timeout;
  size_t sent = 0;
  while (sent < bytes.size()) {
    const size_t slice = std::min(kSendSlice, bytes.size() - sent);
    // MSG_NOSIGNAL: a server that already closed must fail this call, not kill the test binary.
    ssize_t n = send(fd_, bytes.data() + sent, slice, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      drain_nonblocking();
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      // After EOF POLLIN would fire forever; only wait for room to write then.
      pollfd p{fd_, static_cast<short>(peer_eof_ || peer_reset_ ? POLLOUT : POLLOUT | POLLIN), 0};
      int r = poll(&p, 1, remaining_ms(deadline));
      if (r < 0 && errno != EINTR) {
        error_ = std::string("poll: ") + std::strerror(errno);
        return false;
      }
      if (r == 0) {
        error_ = "send timed out with " + std::to_string(bytes.size() - sent) + " of " +
                 std::to_string(bytes.size()) + " bytes unsent";
        return false;
      }
      if (p.revents & (POLLIN | POLLHUP | POLLERR)) drain_nonblocking();
      continue;
    }
    error_ = std::string("send: ") + std::strerror(n < 0 ? errno : EPIPE);
    drain_nonblocking();  // keep whatever the server said before it went away (a close frame)
    return false;
  }
  return true;
}

bool WsTestClient::send_chopped(std::string_view bytes, size_t chop, milliseconds delay, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  if (chop == 0) chop = bytes.size();
  for (size_t at = 0; at < bytes.size(); at += chop) {
    if (at > 0 && delay.count() > 0) std::this_thread::sleep_for(delay);
    if (!send_raw(bytes.substr(at, chop), milliseconds(remaining_ms(deadline)))) return false;
  }
  return true;
}

bool WsTestClient::send_frame(uint8_t opcode, std::string_view payload, const FrameOptions& options,
                              milliseconds timeout) {
  if (opcode == kOpClose) close_sent_ = true;
  return send_raw(encode_frame(opcode, payload, options), timeout);
}

bool WsTestClient::send_close(uint16_t code, std::string_view reason, milliseconds timeout) {
  return send_frame(kOpClose, close_payload(code, reason), {}, timeout);
}

Received WsTestClient::recv_frame(milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  Received out;
  for (;;) {
    if (buffered() > 0) {
      protocol::HeaderParse parse = protocol::parse_frame_header(rx_data(), buffered(), protocol::Sender::kServer,
                                                                 deflate_ ? protocol::kRsv1 : 0);
      if (parse.status == protocol::ParseStatus::kError) {
        out.status = RecvStatus::kError;
        char first[8];
        std::snprintf(first, sizeof first, "0x%02x", rx_data()[0]);
        out.error = "server frame breaks RFC 6455: " + std::string(protocol::reason_for(parse.error)) +
                    " (first byte " + first + ")";
        return out;
      }
      if (parse.status == protocol::ParseStatus::kOk) {
        const protocol::FrameHeader& h = parse.header;
        if (h.payload_length > kMaxServerFrame) {
          out.status = RecvStatus::kError;
          out.error = "server frame claims " + std::to_string(h.payload_length) + " payload bytes";
          return out;
        }
        const size_t total = h.header_length + static_cast<size_t>(h.payload_length);
        if (buffered() >= total) {
          out.status = RecvStatus::kOk;
          out.opcode = static_cast<uint8_t>(h.opcode);
          out.fin = h.fin;
          out.rsv1 = h.rsv1;
          out.payload.assign(reinterpret_cast<const char*>(rx_data()) + h.header_length,
                             static_cast<size_t>(h.payload_length));
          consume(total);
          return out;
        }
      }
    }
    if (peer_eof_ || peer_reset_) {
      out.status = RecvStatus::kClosed;
      out.error = buffered() > 0 ? "server closed TCP inside a frame" : "server closed TCP";
      return out;
    }
    Fill f = fill(deadline);
    if (f == Fill::kTimeout) {
      out.status = RecvStatus::kTimeout;
      out.error = "no complete frame within " + std::to_string(timeout.count()) + " ms (" +
                  std::to_string(buffered()) + " bytes buffered)";
      return out;
    }
    if (f == Fill::kError) {
      out.status = RecvStatus::kError;
      out.error = error_;
      return out;
    }
  }
}

Received WsTestClient::recv_message(milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  Received message;
  bool open = false;
  for (;;) {
    Received f = recv_frame(milliseconds(remaining_ms(deadline)));
    if (!f.ok()) return f;
    if (f.opcode == kOpPing) {
      send_frame(kOpPong, f.payload);  // RFC 6455 5.5.2: answer a ping with a pong
      continue;
    }
    if (f.opcode == kOpPong) continue;
    if (f.opcode == kOpClose) return f;
    // RFC 6455 5.4: a message is a text/binary frame followed by continuations, not interleaved.
    if (f.opcode == kOpContinuation) {
      if (!open) {
        f.status = RecvStatus::kError;
        f.error = "server sent a continuation frame with no message open";
        return f;
      }
      message.payload += f.payload;
    } else {
      if (open) {
        f.status = RecvStatus::kError;
        f.error = "server started a new message inside a fragmented one";
        return f;
      }
      open = true;
      message.opcode = f.opcode;
      message.rsv1 = f.rsv1;
      message.payload = std::move(f.payload);
    }
    if (f.fin) {
      if (message.rsv1) {
        // RFC 7692 7.2.2: a compressed message is inflated whole, with 00 00 ff ff appended.
        protocol::MessageInflater inflater;
        std::vector<uint8_t> inflated;
        const auto* bytes = reinterpret_cast<const uint8_t*>(message.payload.data());
        if (inflater.inflate({bytes, message.payload.size()}, kMaxServerFrame, inflated) != protocol::InflateResult::kOk) {
          message.status = RecvStatus::kError;
          message.error = "server sent a compressed message that does not inflate";
          return message;
        }
        message.payload.assign(inflated.begin(), inflated.end());
      }
      message.status = RecvStatus::kOk;
      message.fin = true;
      return message;
    }
  }
}

CloseResult WsTestClient::expect_close(milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  CloseResult result;
  for (;;) {
    Received f = recv_frame(milliseconds(remaining_ms(deadline)));
    if (f.status == RecvStatus::kOk && f.opcode == kOpClose) {
      result.close_received = true;
      // RFC 6455 5.5.1: an empty close body means "no status code" (reported as 1005, 7.1.5).
      if (f.payload.empty()) {
        result.code = 1005;
      } else if (f.payload.size() == 1) {
        result.error = "server sent a 1-byte close payload";
      } else {
        result.code = static_cast<uint16_t>((static_cast<uint8_t>(f.payload[0]) << 8) |
                                            static_cast<uint8_t>(f.payload[1]));
        result.reason = f.payload.substr(2);
      }
      break;
    }
    if (f.status == RecvStatus::kOk) {
      result.frames_before.push_back(std::move(f));
      continue;
    }
    if (f.status == RecvStatus::kClosed) {
      result.tcp_closed = true;
      result.tcp_reset = peer_reset_;
      result.error = "server closed TCP without sending a close frame";
    } else {
      result.error = f.status == RecvStatus::kTimeout ? "no close frame: " + f.error : f.error;
    }
    return result;
  }

  if (!close_sent_) {
    // RFC 6455 5.5.1: the receiver of a close answers with a close, usually echoing the code.
    send_frame(kOpClose, result.code == 1005 || result.code == 0 ? std::string() : close_payload(result.code),
               {}, milliseconds(remaining_ms(deadline)));
  }
  for (;;) {
    Received f = recv_frame(milliseconds(remaining_ms(deadline)));
    if (f.status == RecvStatus::kOk) {
      ++result.frames_after;
      continue;
    }
    if (f.status == RecvStatus::kClosed) {
      result.tcp_closed = true;
      result.tcp_reset = peer_reset_;
      return result;
    }
    if (result.error.empty()) {
      result.error = f.status == RecvStatus::kTimeout ? "server did not close TCP after the close frame"
                                                      : "after the close frame: " + f.error;
    }
    return result;
  }
}

bool WsTestClient::wait_tcp_closed(milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    consume(buffered());
    if (peer_eof_ || peer_reset_) return true;
    Fill f = fill(deadline);
    if (f == Fill::kTimeout || f == Fill::kError) return false;
  }
}

HttpResponse WsTestClient::read_http_response(milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  HttpResponse response;
  size_t head_end = std::string_view::npos;
  for (;;) {
    std::string_view have(reinterpret_cast<const char*>(rx_data()), buffered());
    head_end = have.find("\r\n\r\n");
    if (head_end != std::string_view::npos) {
      head_end += 4;
      break;
    }
    if (buffered() > kMaxHttpHead) {
      response.error = "response head longer than " + std::to_string(kMaxHttpHead) + " bytes";
      return response;
    }
    if (peer_eof_ || peer_reset_) {
      response.error = "connection closed after " + std::to_string(buffered()) + " bytes of response head: " +
                       std::string(have.substr(0, 200));
      return response;
    }
    Fill f = fill(deadline);
    if (f == Fill::kTimeout) {
      response.error = "no response head within " + std::to_string(timeout.count()) + " ms";
      return response;
    }
    if (f == Fill::kError) {
      response.error = error_;
      return response;
    }
  }
  std::string head(reinterpret_cast<const char*>(rx_data()), head_end);
  consume(head_end);
  if (!parse_response_head(head, response)) return response;
  // A 101 hands the connection to WebSocket framing: whatever follows is frames, not a body.
  if (response.status == 101) {
    response.complete = true;
    return response;
  }
  const std::optional<std::string> length = response.header("Content-Length");
  const size_t want = length ? std::strtoull(length->c_str(), nullptr, 10) : SIZE_MAX;
  while (buffered() < want && !peer_eof_ && !peer_reset_) {
    Fill f = fill(deadline);
    if (f == Fill::kTimeout || f == Fill::kError) break;
  }
  const size_t take = std::min(want, buffered());
  response.body.assign(reinterpret_cast<const char*>(rx_data()), take);
  consume(take);
  // Without Content-Length the body runs to EOF (RFC 9112 6.3); either way it must be whole.
  response.complete = length ? take == want : (peer_eof_ || peer_reset_);
  if (!response.complete) response.error = "incomplete body: " + std::to_string(take) + " bytes";
  return response;
}

bool WsTestClient::start_tls(const TlsClientOptions& options, milliseconds timeout) {
  if (fd_ < 0) {
    error_ = "not connected";
    return false;
  }
  const auto deadline = Clock::now() + timeout;
  tls_ = std::make_unique<TlsClientSession>();
  if (!tls_->start(options)) {
    error_ = tls_->error();
    tls_.reset();
    return false;
  }
  // From here on everything read is fed to the session (the server's tickets may arrive while
  // our Finished is being sent).
  for (;;) {
    int step = tls_->handshake();
    std::string out = tls_->take_output();
    if (!out.empty() && !send_wire(out, milliseconds(remaining_ms(deadline)))) break;
    if (step == 1) return true;
    if (step < 0) {
      error_ = tls_->error();
      break;
    }
    if (tls_->has_input()) continue;  // the server's flight arrived while we were sending
    Fill f = fill(deadline);
    if (f == Fill::kData) continue;
    error_ = f == Fill::kTimeout ? "TLS handshake timed out" : "connection closed during the TLS handshake";
    break;
  }
  tls_.reset();
  return false;
}

bool WsTestClient::connect_tls(const std::string& host, uint16_t port, std::string_view path,
                               const TlsClientOptions& options, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  return connect_tcp(host, port, timeout) && start_tls(options, milliseconds(remaining_ms(deadline))) &&
         upgrade(path, {}, 0, milliseconds(0), milliseconds(remaining_ms(deadline)));
}

bool WsTestClient::send_tls_split(std::string_view bytes, size_t record_size, size_t chop, milliseconds delay,
                                  milliseconds timeout) {
  if (tls_ == nullptr) {
    error_ = "TLS not started";
    return false;
  }
  const auto deadline = Clock::now() + timeout;
  const std::string wire = tls_->encrypt(bytes, record_size);
  if (chop == 0) chop = wire.size();
  for (size_t at = 0; at < wire.size(); at += chop) {
    if (at > 0 && delay.count() > 0) std::this_thread::sleep_for(delay);
    if (!send_wire(std::string_view(wire).substr(at, chop), milliseconds(remaining_ms(deadline)))) return false;
  }
  return true;
}

WsTestClient::Fill WsTestClient::drain_tls_nonblocking() {
  Fill raw = Fill::kTimeout;
  char buffer[64 * 1024];
  for (;;) {
    ssize_t n = recv(fd_, buffer, sizeof buffer, 0);
    if (n > 0) {
      tls_->feed(buffer, static_cast<size_t>(n));
      // During the handshake, ciphertext is progress even though no plaintext comes of it.
      if (!tls_->established()) raw = Fill::kData;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) {
      peer_eof_ = true;
      raw = Fill::kEof;
    } else if (errno == ECONNRESET) {
      peer_reset_ = true;
      raw = Fill::kReset;
    } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
      error_ = std::string("recv: ") + std::strerror(errno);
      raw = Fill::kError;
    }
    break;
  }
  std::string plain;
  if (!tls_->decrypt(plain)) {
    error_ = tls_->error();
    return Fill::kError;
  }
  if (plain.empty()) return raw;
  if (rx_.size() - rx_end_ < plain.size()) {
    if (rx_begin_ > 0) {
      std::memmove(rx_.data(), rx_.data() + rx_begin_, buffered());
      rx_end_ -= rx_begin_;
      rx_begin_ = 0;
    }
    if (rx_.size() - rx_end_ < plain.size()) rx_.resize(rx_end_ + plain.size() + kReadChunk);
  }
  std::memcpy(rx_.data() + rx_end_, plain.data(), plain.size());
  rx_end_ += plain.size();
  return Fill::kData;
}

HttpResponse http_request(const std::string& host, uint16_t port, std::string_view request, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  WsTestClient client;
  HttpResponse response;
  if (!client.connect_tcp(host, port, timeout)) {
    response.error = client.error();
    return response;
  }
  // A server may answer (431) and close before it read everything; the answer still counts.
  client.send_raw(request, milliseconds(remaining_ms(deadline)));
  return client.read_http_response(milliseconds(remaining_ms(deadline)));
}

}  // namespace parley_test
