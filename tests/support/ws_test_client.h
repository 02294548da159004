#pragma once
// A small blocking WebSocket client (RFC 6455) for integration tests, over a real TCP socket.
// Every call takes a timeout and polls, so a misbehaving server fails a test instead of hanging
// it. It can send what a correct client never would (bad opcodes, RSV bits, unmasked frames,
// arbitrary bytes in chops) and parses what the server sends strictly (Sender::kServer).
// Test support only; not for production use.
#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocol/frame_header.h"
#include "tests/support/tls_client.h"

namespace parley_test {

using std::chrono::milliseconds;

inline constexpr milliseconds kDefaultTimeout{5000};

// Opcode values as raw bytes, so tests can send the reserved ones (3-7, 0xB-0xF) as well.
inline constexpr uint8_t kOpContinuation = 0x0;
inline constexpr uint8_t kOpText = 0x1;
inline constexpr uint8_t kOpBinary = 0x2;
inline constexpr uint8_t kOpClose = 0x8;
inline constexpr uint8_t kOpPing = 0x9;
inline constexpr uint8_t kOpPong = 0xA;

// How send_frame/encode_frame build a frame; defaults give a valid, masked, final client frame.
struct FrameOptions {
  bool fin = true;
  uint8_t rsv = 0;  // RSV bits as they sit in the first byte: protocol::kRsv1 | kRsv2 | kRsv3
  bool masked = true;
  std::optional<std::array<uint8_t, 4>> mask_key;  // default: a fresh random key per frame
};

enum class RecvStatus : uint8_t {
  kOk,       // a frame or message arrived
  kTimeout,  // nothing complete before the deadline
  kClosed,   // the server closed TCP (EOF or reset) before a complete frame
  kError,    // a socket error, or the server sent a frame that breaks RFC 6455 (see error)
};

// A frame (recv_frame) or a reassembled message (recv_message; fin is then true).
struct Received {
  RecvStatus status = RecvStatus::kTimeout;
  uint8_t opcode = 0;
  bool fin = false;
  bool rsv1 = false;  // frame: RSV1 set; message: it came compressed (payload is inflated)
  std::string payload;
  std::string error;  // set for kError

  bool ok() const { return status == RecvStatus::kOk; }
};

// What expect_close saw.
struct CloseResult {
  bool close_received = false;  // a close frame arrived
  uint16_t code = 0;            // its status code; 1005 when its payload was empty
  std::string reason;
  bool tcp_closed = false;      // then the server closed TCP: read returned 0, or a reset (tcp_reset)
  bool tcp_reset = false;       // the connection ended with a reset rather than a FIN
  std::vector<Received> frames_before;  // other frames that arrived before the close frame
  size_t frames_after = 0;              // frames after the close frame (RFC 6455 5.5.1: none)
  std::string error;                    // why no close frame or no TCP close was seen
};

struct HttpResponse {
  bool complete = false;  // a full response head (and Content-Length body) arrived
  int status = 0;
  std::string reason;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string error;

  // The first header named `name` (case-insensitive), or nullopt.
  std::optional<std::string> header(std::string_view name) const;
};

// base64(SHA-1(key + RFC 6455 GUID)), computed here with OpenSSL rather than with the server's
// own code, so the handshake check is independent of what it tests.
std::string expected_accept_key(std::string_view key);

// Builds one frame. Control and reserved opcodes, RSV2/RSV3, unmasked frames and lengths that
// break the rules are all allowed: this is for sending what the server must reject.
std::string encode_frame(uint8_t opcode, std::string_view payload, const FrameOptions& options = {});

// A close payload: the 2-byte big-endian code followed by `reason` (not truncated).
std::string close_payload(uint16_t code, std::string_view reason = {});

class WsTestClient {
 public:
  WsTestClient();
  ~WsTestClient();
  WsTestClient(const WsTestClient&) = delete;
  WsTestClient& operator=(const WsTestClient&) = delete;

  // Opens a TCP connection (TCP_NODELAY, so chops leave one by one). False on failure (error()).
  bool connect_tcp(const std::string& host, uint16_t port, milliseconds timeout = kDefaultTimeout);
  // Sends an upgrade request for `path` (with `extra_headers`, each "Name: value" without CRLF)
  // in chops of `chop` bytes `delay` apart (0: all at once), reads the response and checks it is
  // 101 with Upgrade, Connection and the right Sec-WebSocket-Accept. False on any mismatch.
  bool upgrade(std::string_view path = "/echo", const std::vector<std::string>& extra_headers = {},
               size_t chop = 0, milliseconds delay = milliseconds(0), milliseconds timeout = kDefaultTimeout);
  // connect_tcp + upgrade.
  bool connect(const std::string& host, uint16_t port, std::string_view path = "/echo",
               const std::vector<std::string>& extra_headers = {}, milliseconds timeout = kDefaultTimeout);
  // Closes the socket; later calls fail. Safe to call twice.
  void disconnect();

  // Runs a TLS handshake over the connected socket; from then on everything sent and received
  // goes through TLS. False on failure (error()).
  bool start_tls(const TlsClientOptions& options = {}, milliseconds timeout = kDefaultTimeout);
  // connect_tcp + start_tls + upgrade (wss://).
  bool connect_tls(const std::string& host, uint16_t port, std::string_view path = "/echo",
                   const TlsClientOptions& options = {}, milliseconds timeout = kDefaultTimeout);
  // The TLS session after start_tls(), else nullptr.
  TlsClientSession* tls() const { return tls_.get(); }
  // Encrypts `bytes` in records of `record_size` plaintext bytes and sends the ciphertext in
  // chops of `chop` bytes, `delay` apart, so records arrive split at arbitrary points.
  bool send_tls_split(std::string_view bytes, size_t record_size, size_t chop, milliseconds delay,
                      milliseconds timeout = kDefaultTimeout);
  // Sends `bytes` as they are even under TLS (ciphertext made with tls()->encrypt, or garbage),
  // reading meanwhile as send_raw does.
  bool send_unencrypted(std::string_view bytes, milliseconds timeout = kDefaultTimeout) {
    return send_wire(bytes, timeout);
  }

  // permessage-deflate was negotiated: RSV1 from the server is legal, and recv_message inflates
  // compressed messages (RFC 7692 7.2.2, no context takeover).
  void set_deflate(bool on) { deflate_ = on; }

  // Why the last failing call failed.
  const std::string& error() const { return error_; }
  // The response to the last upgrade(), whatever its status.
  const HttpResponse& handshake_response() const { return handshake_response_; }
  int fd() const { return fd_; }

  // Writes all of `bytes` within `timeout`, reading whatever the server sends meanwhile into the
  // receive buffer (so a server echoing while we send can never deadlock us). False when the
  // server closed or reset the connection or the deadline passed; what it sent stays readable.
  bool send_raw(std::string_view bytes, milliseconds timeout = kDefaultTimeout);
  // send_raw in pieces of `chop` bytes with `delay` between them (exercises split reads).
  bool send_chopped(std::string_view bytes, size_t chop, milliseconds delay,
                    milliseconds timeout = kDefaultTimeout);
  // encode_frame + send_raw. A close frame sent here marks the close handshake as ours.
  bool send_frame(uint8_t opcode, std::string_view payload, const FrameOptions& options = {},
                  milliseconds timeout = kDefaultTimeout);
  // A close frame with `code` and `reason`.
  bool send_close(uint16_t code, std::string_view reason = {}, milliseconds timeout = kDefaultTimeout);

  // The next frame from the server, checked with parse_frame_header(Sender::kServer).
  Received recv_frame(milliseconds timeout = kDefaultTimeout);
  // The next data message, reassembled from its fragments. Pings are answered with pongs and
  // pongs skipped; a close frame is returned as is (opcode kOpClose) so the caller sees it.
  Received recv_message(milliseconds timeout = kDefaultTimeout);
  // Reads until a close frame, then until the server closes TCP. Unless we sent a close first,
  // answers with a close frame echoing the code, as RFC 6455 5.5.1 asks of the receiving side.
  CloseResult expect_close(milliseconds timeout = kDefaultTimeout);
  // Reads (and discards) until the server closes TCP; true when it did within `timeout`.
  bool wait_tcp_closed(milliseconds timeout = kDefaultTimeout);
  // Reads an HTTP response head (plus a Content-Length body) from the socket.
  HttpResponse read_http_response(milliseconds timeout = kDefaultTimeout);

 private:
  enum class Fill : uint8_t { kData, kTimeout, kEof, kReset, kError };
  // Reads what is available into rx_ (waiting until `deadline` for at least one byte).
  Fill fill(std::chrono::steady_clock::time_point deadline);
  // Reads without waiting; used while sending.
  Fill drain_nonblocking();
  size_t buffered() const { return rx_end_ - rx_begin_; }
  const uint8_t* rx_data() const { return rx_.data() + rx_begin_; }
  void consume(size_t n);
  // Writes bytes to the socket as they are (ciphertext once TLS is on); see send_raw.
  bool send_wire(std::string_view bytes, milliseconds timeout);
  // drain_nonblocking() under TLS: reads ciphertext and decrypts it into rx_.
  Fill drain_tls_nonblocking();

  int fd_ = -1;
  std::unique_ptr<TlsClientSession> tls_;
  std::vector<uint8_t> rx_;
  size_t rx_begin_ = 0;
  size_t rx_end_ = 0;
  bool peer_eof_ = false;    // read returned 0
  bool peer_reset_ = false;  // read failed with ECONNRESET
  bool close_sent_ = false;
  bool deflate_ = false;
  std::string error_;
  HttpResponse handshake_response_;
  std::string host_;
  uint16_t port_ = 0;
};

// One request on a fresh connection: sends `request` verbatim and reads the response.
HttpResponse http_request(const std::string& host, uint16_t port, std::string_view request,
                          milliseconds timeout = kDefaultTimeout);

}  // namespace parley_test
