// Conformance of parleyd's /echo endpoint with RFC 6455, mirroring the Autobahn|Testsuite
// fuzzingclient cases 1.* to 10.* (Autobahn itself cannot be installed here, so this is our own
// version of them; test names carry the Autobahn case number they mirror), plus the HTTP side
// of the opening handshake (RFC 6455 4.2).
//
// Each suite starts one real parleyd (build/parleyd, or $PARLEY_BUILD_DIR/parleyd) on a free
// port and talks to it over TCP with WsTestClient. With PARLEY_ECHO_OVER_TLS=1 in the environment
// the WebSocket cases (1.* to 10.*) run over wss:// instead (tests/tls_conformance_test.cpp). Every case asserts what comes back: the echoed
// payload byte for byte, the exact close code, and that the server then closes TCP.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tests/support/parleyd_process.h"
#include "tests/support/tls_test_certs.h"
#include "tests/support/parleyd_suite.h"
#include "tests/support/ws_test_client.h"

namespace parley_test {
namespace {

using namespace std::string_literals;
using namespace std::string_view_literals;
using Clock = std::chrono::steady_clock;

const std::string kHost = "127.0.0.1";
// Generous for a local server; a broken one costs at most this per expectation.
constexpr milliseconds kTimeout{3000};
// Time box of each 9.* performance case (16 MiB both ways on loopback takes well under 1 s).
constexpr milliseconds kBigTimeout{20000};
constexpr milliseconds kChopDelay{1};
constexpr milliseconds kFrameDelay{10};
// parleyd's default message size limit (ReaderLimits::max_message_size).
constexpr size_t kMaxMessage = 16u << 20;

// ---------------------------------------------------------------------------------------------
// Payloads

// Printable ASCII with a period (94) that is no power of two, so a lost or repeated slice shows.
std::string ascii_payload(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(33 + (i + i / 94) % 94);
  return s;
}

// Valid UTF-8 of exactly n bytes mixing 1- to 4-byte sequences; fragments cut at arbitrary
// offsets therefore split code points.
std::string utf8_payload(size_t n) {
  static constexpr std::string_view kUnit = "Hello-\xc2\xb5@\xc3\x9f-\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5-"
                                            "\xe4\xbd\xa0\xe5\xa5\xbd-\xf0\x9f\x98\x80-"sv;
  std::string s;
  s.reserve(n);
  while (s.size() + kUnit.size() <= n) s.append(kUnit);
  s.append(n - s.size(), '*');
  return s;
}

std::string binary_payload(size_t n, uint32_t seed = 1) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 12345u;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1664525u + 1013904223u;
    s[i] = static_cast<char>(x >> 24);
  }
  return s;
}

std::string frame(uint8_t opcode, std::string_view payload, bool fin = true, uint8_t rsv = 0) {
  FrameOptions options;
  options.fin = fin;
  options.rsv = rsv;
  return encode_frame(opcode, payload, options);
}

// `message` as a text/binary frame followed by continuations of at most `frame_size` bytes.
std::string fragmented(uint8_t opcode, std::string_view message, size_t frame_size) {
  std::string out;
  size_t at = 0;
  do {
    const size_t n = std::min(frame_size, message.size() - at);
    out += frame(at == 0 ? opcode : kOpContinuation, message.substr(at, n), at + n == message.size());
    at += n;
  } while (at < message.size());
  return out;
}

// ---------------------------------------------------------------------------------------------
// Assertions

std::string printable(std::string_view s, size_t max = 48) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < max; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
  }
  if (s.size() > max) out += "...(" + std::to_string(s.size()) + " bytes)";
  return "\"" + out + "\"";
}

std::string difference(std::string_view got, std::string_view want) {
  size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  return "got " + std::to_string(got.size()) + " bytes, want " + std::to_string(want.size()) +
         "; first difference at byte " + std::to_string(i) + ": got " + printable(got.substr(i), 16) +
         " want " + printable(want.substr(i), 16);
}

const char* status_name(RecvStatus status) {
  switch (status) {
    case RecvStatus::kOk: return "ok";
    case RecvStatus::kTimeout: return "timeout";
    case RecvStatus::kClosed: return "TCP closed";
    case RecvStatus::kError: return "error";
  }
  return "?";
}

std::string describe(const Received& r) {
  if (!r.ok()) return std::string(status_name(r.status)) + ": " + r.error;
  std::string out = "opcode " + std::to_string(r.opcode) + (r.fin ? "" : " (fin=0)") + " payload " + printable(r.payload);
  if (r.opcode == kOpClose && r.payload.size() >= 2) {
    out += " (close code " +
           std::to_string((static_cast<uint8_t>(r.payload[0]) << 8) | static_cast<uint8_t>(r.payload[1])) + ")";
  }
  return out;
}

// The next complete message is `want` with `opcode` (the server may fragment its echo).
::testing::AssertionResult echoes(WsTestClient& client, uint8_t opcode, std::string_view want,
                                  milliseconds timeout = kTimeout) {
  Received m = client.recv_message(timeout);
  if (!m.ok() || m.opcode != opcode) {
    return ::testing::AssertionFailure() << "expected an echo with opcode " << int(opcode) << ", got " << describe(m);
  }
  if (m.payload != want) return ::testing::AssertionFailure() << "echo differs: " << difference(m.payload, want);
  return ::testing::AssertionSuccess();
}

// The very next frame is exactly this one (used where nothing else may come first).
::testing::AssertionResult next_frame_is(WsTestClient& client, uint8_t opcode, std::string_view payload,
                                         milliseconds timeout = kTimeout) {
  Received f = client.recv_frame(timeout);
  if (!f.ok() || f.opcode != opcode || !f.fin || f.payload != payload) {
    return ::testing::AssertionFailure() << "expected opcode " << int(opcode) << " payload " << printable(payload)
                                         << ", got " << describe(f);
  }
  return ::testing::AssertionSuccess();
}

// How the server must end TCP after its close frame. A FIN (read returns 0) is the clean end;
// a reset is tolerated only where the client keeps sending after the server has given up.
enum class TcpEnd : uint8_t { kFin, kFinOrReset };

// The next frame is a close with one of `codes`, nothing came before it or after it, and the
// server then closed TCP (RFC 6455 7.1.1: the server closes the TCP connection first).
::testing::AssertionResult closes_with(WsTestClient& client, std::initializer_list<uint16_t> codes,
                                       milliseconds timeout = kTimeout, TcpEnd end = TcpEnd::kFin) {
  CloseResult r = client.expect_close(timeout);
  std::string want;
  for (uint16_t code : codes) want += (want.empty() ? "" : " or ") + std::to_string(code);
  if (!r.frames_before.empty()) {
    return ::testing::AssertionFailure() << r.frames_before.size() << " frame(s) before the expected close " << want
                                         << "; first: " << describe(r.frames_before.front());
  }
  if (!r.close_received) {
    return ::testing::AssertionFailure() << "expected close " << want << ", got none: " << r.error;
  }
  if (std::find(codes.begin(), codes.end(), r.code) == codes.end()) {
    return ::testing::AssertionFailure() << "close code " << r.code << " (reason " << printable(r.reason)
                                         << "), expected " << want;
  }
  if (r.frames_after != 0) {
    return ::testing::AssertionFailure() << r.frames_after << " frame(s) after the close frame (RFC 6455 5.5.1)";
  }
  if (!r.tcp_closed) {
    return ::testing::AssertionFailure() << "close " << r.code << " received but the server did not close TCP: "
                                         << r.error;
  }
  if (r.tcp_reset && end == TcpEnd::kFin) {
    return ::testing::AssertionFailure() << "close " << r.code << " received, then TCP was reset instead of closed "
                                         << "(unread input discarded without a lingering close?)";
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult closes_with(WsTestClient& client, uint16_t code, milliseconds timeout = kTimeout,
                                       TcpEnd end = TcpEnd::kFin) {
  return closes_with(client, {code}, timeout, end);
}

// Autobahn ends every passing case with a clean close: 1000 out, 1000 back, TCP closed.
::testing::AssertionResult closes_cleanly(WsTestClient& client) {
  if (!client.send_close(1000)) return ::testing::AssertionFailure() << "sending close: " << client.error();
  return closes_with(client, 1000);
}

// ---------------------------------------------------------------------------------------------
// Fixture: one parleyd per test suite.

class EchoServer : public ParleydSuite<EchoServer> {
 public:
  // parleyd's arguments: a TLS pair when the cases run over wss:// (PARLEY_ECHO_OVER_TLS=1).
  static std::vector<std::string> server_args() {
    if (!over_tls()) return {};
    static TestCertificate cert;
    return {"--tls-cert", cert.cert_path(), "--tls-key", cert.key_path()};
  }
  static bool over_tls() {
    const char* value = std::getenv("PARLEY_ECHO_OVER_TLS");
    return value != nullptr && std::string_view(value) == "1";
  }

 protected:
  // Use as ASSERT_NO_FATAL_FAILURE(connect(client)).
  static void connect(WsTestClient& client, std::string_view path = "/echo") {
    if (over_tls()) {
      ASSERT_TRUE(client.connect_tls(kHost, port(), path, {}, kTimeout)) << client.error();
      return;
    }
    ASSERT_TRUE(client.connect(kHost, port(), path, {}, kTimeout)) << client.error();
  }

  static void send(WsTestClient& client, std::string_view bytes, milliseconds timeout = kTimeout) {
    ASSERT_TRUE(client.send_raw(bytes, timeout)) << client.error();
  }

  static void send_frames_apart(WsTestClient& client, const std::vector<std::string>& frames) {
    for (const std::string& f : frames) {
      ASSERT_TRUE(client.send_raw(f, kTimeout)) << client.error();
      std::this_thread::sleep_for(kFrameDelay);
    }
  }

  static void send_octets_apart(WsTestClient& client, std::string_view bytes, milliseconds delay = kChopDelay) {
    ASSERT_TRUE(client.send_chopped(bytes, 1, delay, milliseconds(10000))) << client.error();
  }
};

std::string concat(const std::vector<std::string>& parts) {
  std::string out;
  for (const std::string& p : parts) out += p;
  return out;
}

// How a case's bytes go out: all at once, frame by frame with a pause, or octet by octet.
enum class Chops { kOne, kFrames, kOctets };

void send_with(WsTestClient& client, const std::vector<std::string>& frames, Chops chops) {
  switch (chops) {
    case Chops::kOne:
      ASSERT_TRUE(client.send_raw(concat(frames), kTimeout)) << client.error();
      break;
    case Chops::kFrames:
      for (const std::string& f : frames) {
        ASSERT_TRUE(client.send_raw(f, kTimeout)) << client.error();
        std::this_thread::sleep_for(kFrameDelay);
      }
      break;
    case Chops::kOctets:
      ASSERT_TRUE(client.send_chopped(concat(frames), 1, kChopDelay, milliseconds(10000))) << client.error();
      break;
  }
}

// =============================================================================================
// 1.* Framing: text and binary messages of every length-encoding boundary (RFC 6455 5.2:
// 7-bit up to 125, 16-bit from 126 to 65535, 64-bit from 65536).

struct LengthCase {
  const char* id;
  uint8_t opcode;
  size_t length;
  size_t chop;  // 0: the frame goes out in one write
};

class EchoConformanceFraming : public EchoServer, public ::testing::WithParamInterface<LengthCase> {};

TEST_P(EchoConformanceFraming, EchoesPayload) {
  const LengthCase& c = GetParam();
  const std::string payload = c.opcode == kOpText ? ascii_payload(c.length) : binary_payload(c.length);
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  const std::string bytes = frame(c.opcode, payload);
  if (c.chop == 0) {
    ASSERT_NO_FATAL_FAILURE(send(client, bytes));
  } else {
    ASSERT_TRUE(client.send_chopped(bytes, c.chop, kChopDelay, milliseconds(10000))) << client.error();
  }
  EXPECT_TRUE(echoes(client, c.opcode, payload));
  EXPECT_TRUE(closes_cleanly(client));
}

constexpr LengthCase kLengthCases[] = {
    {"Case1_1_1_Text0", kOpText, 0, 0},           {"Case1_1_2_Text125", kOpText, 125, 0},
    {"Case1_1_3_Text126", kOpText, 126, 0},       {"Case1_1_4_Text127", kOpText, 127, 0},
    {"Case1_1_5_Text128", kOpText, 128, 0},       {"Case1_1_6_Text65535", kOpText, 65535, 0},
    {"Case1_1_7_Text65536", kOpText, 65536, 0},   {"Case1_1_8_Text65536InChopsOf997", kOpText, 65536, 997},
    {"Case1_2_1_Binary0", kOpBinary, 0, 0},       {"Case1_2_2_Binary125", kOpBinary, 125, 0},
    {"Case1_2_3_Binary126", kOpBinary, 126, 0},   {"Case1_2_4_Binary127", kOpBinary, 127, 0},
    {"Case1_2_5_Binary128", kOpBinary, 128, 0},   {"Case1_2_6_Binary65535", kOpBinary, 65535, 0},
    {"Case1_2_7_Binary65536", kOpBinary, 65536, 0}, {"Case1_2_8_Binary65536InChopsOf997", kOpBinary, 65536, 997},
};

INSTANTIATE_TEST_SUITE_P(, EchoConformanceFraming, ::testing::ValuesIn(kLengthCases),
                         [](const auto& info) { return std::string(info.param.id); });

// =============================================================================================
// 2.* Pings and pongs (RFC 6455 5.5.2, 5.5.3).

class EchoConformancePingPong : public EchoServer {};

TEST_F(EchoConformancePingPong, Case2_1_PingWithoutPayload) {
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  ASSERT_NO_FATAL_FAILURE(send(client, frame(kOpPing, "")));
  EXPECT_TRUE(next_frame_is(client, kOpPong, ""));  // RFC 6455 5.5.3: pong carries the ping's data
  EXPECT_TRUE(closes_cleanly(client));
}

TEST_F(EchoConformancePingPong, Case2_2_PingWithTextPayload) {
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  ASSERT_NO_FATAL_FAILURE(send(client, frame(kOpPing, "Hello, world!")));
  EXPECT_TRUE(next_frame_is(client, kOpPong, "Hello, world!"));
  EXPECT_TRUE(closes_cleanly(client));
}

TEST_F(EchoConformancePingPong, Case2_3_PingWithBinaryPayload) {
  const std::string payload = "\x00\xff\xfe\xfd\xfc\xfb\x00\xff"s;
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  ASSERT_NO_FATAL_FAILURE(send(client, frame(kOpPing, payload)));
  EXPECT_TRUE(next_frame_is(client, kOpPong, payload));
  EXPECT_TRUE(closes_cleanly(client));
}

TEST_F(EchoConformancePingPong, Case2_4_PingWith125BytePayload) {
  const std::string payload(125, '\xfe');
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  ASSERT_NO_FATAL_FAILURE(send(client, frame(kOpPing, payload)));
  EXPECT_TRUE(next_frame_is(client, kOpPong, payload));
  EXPECT_TRUE(closes_cleanly(client));
}

// RFC 6455 5.5: control frames carry at most 125 payload bytes.
TEST_F(EchoConformancePingPong, Case2_5_PingWith126BytePayloadFails1002) {
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  ASSERT_NO_FATAL_FAILURE(send(client, frame(kOpPing, std::string(126, '\xfe'))));
  EXPECT_TRUE(closes_with(client, 1002));
}

TEST_F(EchoConformancePingPong, Case2_6_PingWith125BytesInOctetChops) {
  const std::string payload(125, '\xfe');
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  ASSERT_NO_FATAL_FAILURE(send_octets_apart(client, frame(kOpPing, payload)));
  EXPECT_TRUE(next_frame_is(client, kOpPong, payload));
  EXPECT_TRUE(closes_cleanly(client));
}

// RFC 6455 5.5.3: an unsolicited pong needs no response. The probe ping proves nothing was
// sent in between: its pong must be the very next frame.
TEST_F(EchoConformancePingPong, Case2_7_UnsolicitedPongWithoutPayloadIgnored) {
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  ASSERT_NO_FATAL_FAILURE(send(client, frame(kOpPong, "")));
  ASSERT_NO_FATAL_FAILURE(send(client, frame(kOpPing, "probe")));
  EXPECT_TRUE(next_frame_is(client, kOpPong, "probe"));
  EXPECT_TRUE(closes_cleanly(client));
}

TEST_F(EchoConformancePingPong, Case2_8_UnsolicitedPongWithPayloadIgnored) {
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  ASSERT_NO_FATAL_FAILURE(send(client, frame(kOpPong, "unsolicited pong payload")));
  ASSERT_NO_FATAL_FAILURE(send(client, frame(kOpText, "after pong")));
  EXPECT_TRUE(next_frame_is(client, kOpText, "after pong"));
  EXPECT_TRUE(closes_cleanly(client));
}

TEST_F(EchoConformancePingPong, Case2_9_UnsolicitedPongThenPing) {
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  ASSERT_NO_FATAL_FAILURE(send(client, frame(kOpPong, "unsolicited pong payload") + frame(kOpPing, "ping payload")));
  EXPECT_TRUE(next_frame_is(client, kOpPong, "ping payload"));
  EXPECT_TRUE(closes_cleanly(client));
}

TEST_F(EchoConformancePingPong, Case2_10_TenPingsTenPongsInOrder) {
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  std::string pings;
  for (int i = 0; i < 10; ++i) pings += frame(kOpPing, "payload-" + std::to_string(i));
  ASSERT_NO_FATAL_FAILURE(send(client, pings));
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(next_frame_is(client, kOpPong, "payload-" + std::to_string(i))) << i;
  EXPECT_TRUE(closes_cleanly(client));
}

TEST_F(EchoConformancePingPong, Case2_11_TenPingsInOctetChops) {
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  std::string pings;
  for (int i = 0; i < 10; ++i) pings += frame(kOpPing, "payload-" + std::to_string(i));
  ASSERT_TRUE(client.send_chopped(pings, 1, milliseconds(0), kTimeout)) << client.error();
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(next_frame_is(client, kOpPong, "payload-" + std::to_string(i))) << i;
  EXPECT_TRUE(closes_cleanly(client));
}

// =============================================================================================
// 3.* Reserved bits (RFC 6455 5.2: RSV1-3 must be 0 unless an extension gives them meaning; no
// extension is negotiated here). Autobahn's "RSV = n" is the 3-bit value n, RSV1 its high bit.

uint8_t rsv_bits(int n) { return static_cast<uint8_t>(n << 4); }

class EchoConformanceReservedBits : public EchoServer {
 protected:
  // A valid text (echoed), the offending frame, then a ping that must not be answered because
  // the connection has been failed (RFC 6455 7.1.7).
  void echo_then_fail(const std::string& bad_frame, Chops chops) {
    WsTestClient client;
    ASSERT_NO_FATAL_FAILURE(connect(client));
    ASSERT_NO_FATAL_FAILURE(send_with(client, {frame(kOpText, "Hello, world!"), bad_frame, frame(kOpPing, "")}, chops));
    EXPECT_TRUE(next_frame_is(client, kOpText, "Hello, world!"));
    EXPECT_TRUE(closes_with(client, 1002));
  }
};

TEST_F(EchoConformanceReservedBits, Case3_1_TextWithRsv1Fails1002) {
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  ASSERT_NO_FATAL_FAILURE(send(client, frame(kOpText, "Hello, world!", true, rsv_bits(1))));
  EXPECT_TRUE(closes_with(client, 1002));
}

TEST_F(EchoConformanceReservedBits, Case3_2_EchoThenTextWithRsv2Fails1002) {
  echo_then_fail(frame(kOpText, "Hello, world!", true, rsv_bits(2)), Chops::kOne);
}

TEST_F(EchoConformanceReservedBits, Case3_3_EchoThenTextWithRsv3InFrameChops) {
  echo_then_fail(frame(kOpText, "Hello, world!", true, rsv_bits(3)), Chops::kFrames);
}

TEST_F(EchoConformanceReservedBits, Case3_4_EchoThenTextWithRsv4InOctetChops) {
  echo_then_fail(frame(kOpText, "Hello, world!", true, rsv_bits(4)), Chops::kOctets);
}

TEST_F(EchoConformanceReservedBits, Case3_5_BinaryWithRsv5Fails1002) {
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  ASSERT_NO_FATAL_FAILURE(send(client, frame(kOpBinary, binary_payload(8), true, rsv_bits(5))));
  EXPECT_TRUE(closes_with(client, 1002));
}

TEST_F(EchoConformanceReservedBits, Case3_6_PingWithRsv6Fails1002) {
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  ASSERT_NO_FATAL_FAILURE(send(client, frame(kOpPing, "Hello, world!", true, rsv_bits(6))));
  EXPECT_TRUE(closes_with(client, 1002));  // and no pong before it
}

TEST_F(EchoConformanceReservedBits, Case3_7_CloseWithRsv7Fails1002) {
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  ASSERT_NO_FATAL_FAILURE(send(client, frame(kOpClose, close_payload(1000), true, rsv_bits(7))));
  EXPECT_TRUE(closes_with(client, 1002));
}

// =============================================================================================
// 4.* Reserved opcodes (RFC 6455 5.2: 0x3-0x7 and 0xB-0xF are reserved; receiving one fails
// the connection with 1002).

struct OpcodeCase {
  const char* id;
  uint8_t opcode;
  bool with_payload;
  bool echo_first;  // valid text before, ping after (the ping must go unanswered)
};

class EchoConformanceOpcodes : public EchoServer, public ::testing::WithParamInterface<OpcodeCase> {};

TEST_P(EchoConformanceOpcodes, ReservedOpcodeFails1002) {
  const OpcodeCase& c = GetParam();
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  const std::string bad = frame(c.opcode, c.with_payload ? "reserved opcode payload" : "");
  if (c.echo_first) {
    ASSERT_NO_FATAL_FAILURE(send(client, frame(kOpText, "Hello, world!") + bad + frame(kOpPing, "")));
    EXPECT_TRUE(next_frame_is(client, kOpText, "Hello, world!"));
  } else {
    ASSERT_NO_FATAL_FAILURE(send(client, bad));
  }
  EXPECT_TRUE(closes_with(client, 1002));
}

constexpr OpcodeCase kOpcodeCases[] = {
    {"Case4_1_1_Opcode3", 0x3, false, false}, {"Case4_1_2_Opcode4WithPayload", 0x4, true, false},
    {"Case4_1_3_EchoThenOpcode5ThenPing", 0x5, false, true},
    {"Case4_1_4_EchoThenOpcode6WithPayloadThenPing", 0x6, true, true},
    {"Case4_1_5_EchoThenOpcode7WithPayloadThenPing", 0x7, true, true},
    {"Case4_2_1_OpcodeB", 0xB, false, false}, {"Case4_2_2_OpcodeCWithPayload", 0xC, true, false},
    {"Case4_2_3_EchoThenOpcodeDThenPing", 0xD, false, true},
    {"Case4_2_4_EchoThenOpcodeEWithPayloadThenPing", 0xE, true, true},
    {"Case4_2_5_EchoThenOpcodeFWithPayloadThenPing", 0xF, true, true},
};

INSTANTIATE_TEST_SUITE_P(, EchoConformanceOpcodes, ::testing::ValuesIn(kOpcodeCases),
                         [](const auto& info) { return std::string(info.param.id); });

// =============================================================================================
// 5.* Fragmentation (RFC 6455 5.4): a message is one text/binary frame with FIN=0, continuations,
// and a final continuation; control frames may be interleaved but never fragmented (5.5).

class EchoConformanceFragmentation : public EchoServer {
 protected:
  void two_fragments(Chops chops) {
    WsTestClient client;
    ASSERT_NO_FATAL_FAILURE(connect(client));
    ASSERT_NO_FATAL_FAILURE(send_with(
        client, {frame(kOpText, "fragment1", false), frame(kOpContinuation, "fragment2", true)}, chops));
    EXPECT_TRUE(echoes(client, kOpText, "fragment1fragment2"));
    EXPECT_TRUE(closes_cleanly(client));
  }

  // The pong must come first: the server answers control frames in the middle of a message.
  void two_fragments_with_ping(Chops chops) {
    WsTestClient client;
    ASSERT_NO_FATAL_FAILURE(connect(client));
    ASSERT_NO_FATAL_FAILURE(send_with(client,
                                      {frame(kOpText, "fragment1", false), frame(kOpPing, "ping payload"),
                                       frame(kOpContinuation, "fragment2", true)},
                                      chops));
    EXPECT_TRUE(next_frame_is(client, kOpPong, "ping payload"));
    EXPECT_TRUE(echoes(client, kOpText, "fragment1fragment2"));
    EXPECT_TRUE(closes_cleanly(client));
  }

  // RFC 6455 5.4: a continuation with no message open fails the connection.
  void unexpected_continuation(bool fin, Chops chops) {
    WsTestClient client;
    ASSERT_NO_FATAL_FAILURE(connect(client));
    ASSERT_NO_FATAL_FAILURE(send_with(
        client, {frame(kOpContinuation, "non-continuation payload", fin), frame(kOpText, "Hello, world!")}, chops));
    EXPECT_TRUE(closes_with(client, 1002));
  }

  void five_fragments_two_pings(bool octets) {
    WsTestClient client;
    ASSERT_NO_FATAL_FAILURE(connect(client));
    const std::string first = frame(kOpText, "fragment1", false) + frame(kOpContinuation, "fragment2", false) +
                              frame(kOpPing, "pongme 1!") + frame(kOpContinuation, "fragment3", false);
    const std::string second = frame(kOpContinuation, "fragment4", false) + frame(kOpPing, "pongme 2!") +
                               frame(kOpContinuation, "fragment5", true);
    if (octets) {
      ASSERT_NO_FATAL_FAILURE(send_octets_apart(client, first, milliseconds(0)));
    } else {
      ASSERT_NO_FATAL_FAILURE(send(client, first));
    }
    // The first pong arrives while the message is still open: pings are not held back.
    EXPECT_TRUE(next_frame_is(client, kOpPong, "pongme 1!"));
    std::this_thread::sleep_for(milliseconds(100));
    if (octets) {
      ASSERT_NO_FATAL_FAILURE(send_octets_apart(client, second, milliseconds(0)));
    } else {
      ASSERT_NO_FATAL_FAILURE(send(client, second));
    }
    EXPECT_TRUE(next_frame_is(client, kOpPong, "pongme 2!"));
    EXPECT_TRUE(echoes(client, kOpText, "fragment1fragment2fragment3fragment4fragment5"));
    EXPECT_TRUE(closes_cleanly(client));
  }
};

TEST_F(EchoConformanceFragmentation, Case5_1_FragmentedPingFails1002) {
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  ASSERT_NO_FATAL_FAILURE(send(client, frame(kOpPing, "fragment1", false) + frame(kOpContinuation, "fragment2")));
  EXPECT_TRUE(closes_with(client, 1002));
}

TEST_F(EchoConformanceFragmentation, Case5_2_FragmentedPongFails1002) {
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  ASSERT_NO_FATAL_FAILURE(send(client, frame(kOpPong, "fragment1", false) + frame(kOpContinuation, "fragment2")));
  EXPECT_TRUE(closes_with(client, 1002));
}

TEST_F(EchoConformanceFragmentation, Case5_3_TextInTwoFragments) { two_fragments(Chops::kOne); }
TEST_F(EchoConformanceFragmentation, Case5_4_TextInTwoFragmentsOctetChops) { two_fragments(Chops::kOctets); }
TEST_F(EchoConformanceFragmentation, Case5_5_TextInTwoFragmentsFrameChops) { two_fragments(Chops::kFrames); }
TEST_F(EchoConformanceFragmentation, Case5_6_PingBetweenFragments) { two_fragments_with_ping(Chops::kOne); }
TEST_F(EchoConformanceFragmentation, Case5_7_PingBetweenFragmentsOctetChops) {
  two_fragments_with_ping(Chops::kOctets);
}
TEST_F(EchoConformanceFragmentation, Case5_8_PingBetweenFragmentsFrameChops) {
  two_fragments_with_ping(Chops::kFrames);
}
TEST_F(EchoConformanceFragmentation, Case5_9_ContinuationFinWithoutStartFails1002) {
  unexpected_continuation(true, Chops::kOne);
}
TEST_F(EchoConformanceFragmentation, Case5_10_ContinuationFinWithoutStartOctetChops) {
  unexpected_continuation(true, Chops::kOctets);
}
TEST_F(EchoConformanceFragmentation, Case5_11_ContinuationFinWithoutStartFrameChops) {
  unexpected_continuation(true, Chops::kFrames);
}
TEST_F(EchoConformanceFragmentation, Case5_12_ContinuationNoFinWithoutStartFails1002) {
  unexpected_continuation(false, Chops::kOne);
}
TEST_F(EchoConformanceFragmentation, Case5_13_ContinuationNoFinWithoutStartOctetChops) {
  unexpected_continuation(false, Chops::kOctets);
}
TEST_F(EchoConformanceFragmentation, Case5_14_ContinuationNoFinWithoutStartFrameChops) {
  unexpected_continuation(false, Chops::kFrames);
}

// The first message completes and is echoed; the stray continuation after it fails.
TEST_F(EchoConformanceFragmentation, Case5_15_StrayContinuationAfterCompleteMessage) {
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  ASSERT_NO_FATAL_FAILURE(send(client, frame(kOpText, "fragment1", false) + frame(kOpContinuation, "fragment2") +
                                           frame(kOpContinuation, "fragment3", false) +
                                           frame(kOpText, "fragment4")));
  EXPECT_TRUE(echoes(client, kOpText, "fragment1fragment2"));
  EXPECT_TRUE(closes_with(client, 1002));
}

TEST_F(EchoConformanceFragmentation, Case5_16_StrayContinuationNoFinThenMessage) {
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  std::string bytes;
  for (int i = 0; i < 2; ++i) {
    bytes += frame(kOpContinuation, "fragment1", false) + frame(kOpText, "fragment2", false) +
             frame(kOpContinuation, "fragment3");
  }
  ASSERT_NO_FATAL_FAILURE(send(client, bytes));
  EXPECT_TRUE(closes_with(client, 1002));
}

TEST_F(EchoConformanceFragmentation, Case5_17_StrayContinuationFinThenMessage) {
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  std::string bytes;
  for (int i = 0; i < 2; ++i) {
    bytes += frame(kOpContinuation, "fragment1", true) + frame(kOpText, "fragment2", false) +
             frame(kOpContinuation, "fragment3");
  }
  ASSERT_NO_FATAL_FAILURE(send(client, bytes));
  EXPECT_TRUE(closes_with(client, 1002));
}

// RFC 6455 5.4: a new data frame while a fragmented message is open fails the connection.
TEST_F(EchoConformanceFragmentation, Case5_18_NewTextInsideFragmentedMessageFails1002) {
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  ASSERT_NO_FATAL_FAILURE(send(client, frame(kOpText, "fragment1", false) + frame(kOpText, "fragment2")));
  EXPECT_TRUE(closes_with(client, 1002));
}

TEST_F(EchoConformanceFragmentation, Case5_19_FiveFragmentsTwoPings) { five_fragments_two_pings(false); }
TEST_F(EchoConformanceFragmentation, Case5_20_FiveFragmentsTwoPingsOctetChops) { five_fragments_two_pings(true); }

TEST_F(EchoConformanceFragmentation, ManyOneByteFragmentsText) {
  const std::string message = ascii_payload(1000);
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  ASSERT_NO_FATAL_FAILURE(send(client, fragmented(kOpText, message, 1)));
  EXPECT_TRUE(echoes(client, kOpText, message));
  EXPECT_TRUE(closes_cleanly(client));
}

TEST_F(EchoConformanceFragmentation, ManyOneByteFragmentsBinary) {
  const std::string message = binary_payload(1000);
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  ASSERT_NO_FATAL_FAILURE(send(client, fragmented(kOpBinary, message, 1)));
  EXPECT_TRUE(echoes(client, kOpBinary, message));
  EXPECT_TRUE(closes_cleanly(client));
}

TEST_F(EchoConformanceFragmentation, FragmentedThenUnfragmentedMessagesKeepOrder) {
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  ASSERT_NO_FATAL_FAILURE(send(client, fragmented(kOpBinary, binary_payload(300), 7) + frame(kOpText, "second") +
                                           fragmented(kOpText, "third message", 4)));
  EXPECT_TRUE(echoes(client, kOpBinary, binary_payload(300)));
  EXPECT_TRUE(echoes(client, kOpText, "second"));
  EXPECT_TRUE(echoes(client, kOpText, "third message"));
  EXPECT_TRUE(closes_cleanly(client));
}

// =============================================================================================
// 6.* UTF-8 (RFC 6455 8.1: a text message that is not valid UTF-8 fails the connection with
// 1007; RFC 3629 defines valid: no overlong forms, no surrogates, nothing past U+10FFFF).

class EchoConformanceUtf8Messages : public EchoServer {};

TEST_F(EchoConformanceUtf8Messages, Case6_1_1_EmptyText) {
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  ASSERT_NO_FATAL_FAILURE(send(client, frame(kOpText, "")));
  EXPECT_TRUE(echoes(client, kOpText, ""));
  EXPECT_TRUE(closes_cleanly(client));
}

TEST_F(EchoConformanceUtf8Messages, Case6_1_2_ThreeEmptyFragments) {
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  ASSERT_NO_FATAL_FAILURE(send(client, frame(kOpText, "", false) + frame(kOpContinuation, "", false) +
                                           frame(kOpContinuation, "")));
  EXPECT_TRUE(echoes(client, kOpText, ""));
  EXPECT_TRUE(closes_cleanly(client));
}

TEST_F(EchoConformanceUtf8Messages, Case6_1_3_EmptyFirstAndLastFragments) {
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  ASSERT_NO_FATAL_FAILURE(send(client, frame(kOpText, "", false) +
                                           frame(kOpContinuation, "middle frame payload", false) +
                                           frame(kOpContinuation, "")));
  EXPECT_TRUE(echoes(client, kOpText, "middle frame payload"));
  EXPECT_TRUE(closes_cleanly(client));
}

constexpr std::string_view kHelloUtf8 = "Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!";
constexpr std::string_view kKosme = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5";

TEST_F(EchoConformanceUtf8Messages, Case6_2_1_ValidTextOneFrame) {
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  ASSERT_NO_FATAL_FAILURE(send(client, frame(kOpText, kHelloUtf8)));
  EXPECT_TRUE(echoes(client, kOpText, kHelloUtf8));
  EXPECT_TRUE(closes_cleanly(client));
}

TEST_F(EchoConformanceUtf8Messages, Case6_2_2_ValidTextFragmentedOnCodePointBoundary) {
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  ASSERT_NO_FATAL_FAILURE(send(client, frame(kOpText, kHelloUtf8.substr(0, 8), false) +
                                           frame(kOpContinuation, kHelloUtf8.substr(8))));
  EXPECT_TRUE(echoes(client, kOpText, kHelloUtf8));
  EXPECT_TRUE(closes_cleanly(client));
}

// Fragments that split code points: validity is a property of the whole message.
TEST_F(EchoConformanceUtf8Messages, Case6_2_3_ValidTextOneOctetPerFragment) {
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  ASSERT_NO_FATAL_FAILURE(send(client, fragmented(kOpText, kHelloUtf8, 1)));
  EXPECT_TRUE(echoes(client, kOpText, kHelloUtf8));
  EXPECT_TRUE(closes_cleanly(client));
}

TEST_F(EchoConformanceUtf8Messages, Case6_2_4_KosmeOneOctetPerFragment) {
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  ASSERT_NO_FATAL_FAILURE(send(client, fragmented(kOpText, kKosme, 1)));
  EXPECT_TRUE(echoes(client, kOpText, kKosme));
  EXPECT_TRUE(closes_cleanly(client));
}

const std::string kKosmeEdited = std::string(kKosme) + "\xed\xa0\x80" "edited";  // U+D800 inside

TEST_F(EchoConformanceUtf8Messages, Case6_3_1_InvalidTextOneFrameFails1007) {
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  ASSERT_NO_FATAL_FAILURE(send(client, frame(kOpText, kKosmeEdited)));
  EXPECT_TRUE(closes_with(client, 1007));
}

TEST_F(EchoConformanceUtf8Messages, Case6_3_2_InvalidTextOneOctetPerFragmentFails1007) {
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  ASSERT_NO_FATAL_FAILURE(send(client, fragmented(kOpText, kKosmeEdited, 1)));
  EXPECT_TRUE(closes_with(client, 1007));
}

// 6.4.*: fail fast. The server must close with 1007 as soon as the bytes it has make the text
// invalid; the rest of the message is never sent, so a server that validates only complete
// messages times out here.
TEST_F(EchoConformanceUtf8Messages, Case6_4_1_FailFastOnInvalidSecondFragment) {
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  ASSERT_NO_FATAL_FAILURE(send(client, frame(kOpText, kKosme, false)));
  std::this_thread::sleep_for(kFrameDelay);
  ASSERT_NO_FATAL_FAILURE(send(client, frame(kOpContinuation, "\xf4\x90\x80\x80", false)));  // U+110000
  EXPECT_TRUE(closes_with(client, 1007));
}

TEST_F(EchoConformanceUtf8Messages, Case6_4_2_FailFastWhenInvalidByteStartsFragment) {
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  ASSERT_NO_FATAL_FAILURE(send(client, frame(kOpText, std::string(kKosme) + "\xf4", false)));
  std::this_thread::sleep_for(kFrameDelay);
  ASSERT_NO_FATAL_FAILURE(send(client, frame(kOpContinuation, "\x90", false)));  // F4 90: past U+10FFFF
  EXPECT_TRUE(closes_with(client, 1007));
}

TEST_F(EchoConformanceUtf8Messages, Case6_4_3_FailFastInsideOneFrame) {
  const std::string payload = std::string(kKosme) + "\xf4\x90\x80\x80" "edited";
  const std::string bytes = frame(kOpText, payload);
  const size_t header = bytes.size() - payload.size();
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  ASSERT_NO_FATAL_FAILURE(send(client, std::string_view(bytes).substr(0, header + kKosme.size())));
  std::this_thread::sleep_for(kFrameDelay);
  ASSERT_NO_FATAL_FAILURE(send(client, std::string_view(bytes).substr(header + kKosme.size(), 4)));
  EXPECT_TRUE(closes_with(client, 1007));
}

TEST_F(EchoConformanceUtf8Messages, Case6_4_4_FailFastInsideOneFrameOctetChops) {
  const std::string payload = std::string(kKosme) + "\xf4\x90\x80\x80" "edited";
  const std::string bytes = frame(kOpText, payload);
  const size_t header = bytes.size() - payload.size();
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  ASSERT_NO_FATAL_FAILURE(send(client, std::string_view(bytes).substr(0, header + kKosme.size())));
  ASSERT_NO_FATAL_FAILURE(send_octets_apart(client, std::string_view(bytes).substr(header + kKosme.size(), 2)));
  EXPECT_TRUE(closes_with(client, 1007));
}

// The brief's large-frame variant: a 1 MiB text frame whose first chop (4 KiB) already holds an
// overlong '/' (C0 AF). The other 1 MiB is never sent.
TEST_F(EchoConformanceUtf8Messages, FailFastInFirstChopOfLargeFrame) {
  std::string payload = ascii_payload(1 << 20);
  payload.replace(100, 2, "\xc0\xaf");
  const std::string bytes = frame(kOpText, payload);
  const size_t header = bytes.size() - payload.size();
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  ASSERT_NO_FATAL_FAILURE(send(client, std::string_view(bytes).substr(0, header + 4096)));
  EXPECT_TRUE(closes_with(client, 1007));
}

// A long valid text whose very last code point is cut short: only the end of the message
// can tell (RFC 6455 8.1 applies to the whole message).
TEST_F(EchoConformanceUtf8Messages, TruncatedAtEndOfLargeMessageFails1007) {
  const std::string payload = utf8_payload(70000) + "\xe2\x82";  // first two bytes of U+20AC
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  ASSERT_NO_FATAL_FAILURE(send(client, frame(kOpText, payload)));
  EXPECT_TRUE(closes_with(client, 1007));
}

TEST_F(EchoConformanceUtf8Messages, TruncatedAtEndOfFragmentedMessageFails1007) {
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  ASSERT_NO_FATAL_FAILURE(send(client, frame(kOpText, "valid start \xf0\x9f", false) +
                                           frame(kOpContinuation, "\x98")));  // U+1F600 missing a byte
  EXPECT_TRUE(closes_with(client, 1007));
}

// 6.5 to 6.23: one text message each, sent as one frame and as one-octet fragments.
struct Utf8Case {
  const char* id;
  std::string_view text;
  bool valid;
};

class EchoConformanceUtf8 : public EchoServer, public ::testing::WithParamInterface<Utf8Case> {
 protected:
  void check(const std::string& bytes) {
    const Utf8Case& c = GetParam();
    WsTestClient client;
    ASSERT_NO_FATAL_FAILURE(connect(client));
    ASSERT_NO_FATAL_FAILURE(send(client, bytes));
    if (c.valid) {
      EXPECT_TRUE(echoes(client, kOpText, c.text));
      EXPECT_TRUE(closes_cleanly(client));
    } else {
      EXPECT_TRUE(closes_with(client, 1007));
    }
  }
};

TEST_P(EchoConformanceUtf8, OneFrame) { check(frame(kOpText, GetParam().text)); }

TEST_P(EchoConformanceUtf8, OneOctetPerFragment) { check(fragmented(kOpText, GetParam().text, 1)); }

const Utf8Case kUtf8Cases[] = {
    // 6.5: valid texts in several scripts (2-, 3- and 4-byte sequences).
    {"Case6_5_1_Greek", kKosme, true},
    {"Case6_5_2_German", "Gr\xc3\xb6\xc3\x9f" "e \xc3\xbc" "ber alles"sv, true},
    {"Case6_5_3_Russian", "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82, \xd0\xbc\xd0\xb8\xd1\x80"sv, true},
    {"Case6_5_4_Chinese", "\xe4\xbd\xa0\xe5\xa5\xbd\xef\xbc\x8c\xe4\xb8\x96\xe7\x95\x8c"sv, true},
    {"Case6_5_5_Japanese", "\xe3\x81\x93\xe3\x82\x93\xe3\x81\xab\xe3\x81\xa1\xe3\x81\xaf"sv, true},
    {"Case6_5_6_Arabic", "\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7"sv, true},
    {"Case6_5_7_Hindi", "\xe0\xa4\xa8\xe0\xa4\xae\xe0\xa4\xb8\xe0\xa5\x8d\xe0\xa4\xa4\xe0\xa5\x87"sv, true},
    {"Case6_5_8_Emoji", "\xf0\x9f\x98\x80\xf0\x9f\x9a\x80\xf0\x9f\x8c\x8d"sv, true},
    // 6.6: prefixes of kosme; the ones that end inside a code point are invalid.
    {"Case6_6_1_KosmePrefix1", "\xce"sv, false},
    {"Case6_6_2_KosmePrefix2", "\xce\xba"sv, true},
    {"Case6_6_3_KosmePrefix3", "\xce\xba\xe1"sv, false},
    {"Case6_6_4_KosmePrefix4", "\xce\xba\xe1\xbd"sv, false},
    {"Case6_6_5_KosmePrefix5", "\xce\xba\xe1\xbd\xb9"sv, true},
    {"Case6_6_6_KosmePrefix6", "\xce\xba\xe1\xbd\xb9\xcf"sv, false},
    {"Case6_6_7_KosmePrefix7", "\xce\xba\xe1\xbd\xb9\xcf\x83"sv, true},
    {"Case6_6_10_KosmePrefix10", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce"sv, false},
    // 6.7: first code point of each sequence length.
    {"Case6_7_1_U0000", "\x00"sv, true},
    {"Case6_7_2_U0080", "\xc2\x80"sv, true},
    {"Case6_7_3_U0800", "\xe0\xa0\x80"sv, true},
    {"Case6_7_4_U10000", "\xf0\x90\x80\x80"sv, true},
    // 6.8: 5- and 6-byte sequences (RFC 3629 removed them).
    {"Case6_8_1_FiveByteSequence", "\xf8\x88\x80\x80\x80"sv, false},
    {"Case6_8_2_SixByteSequence", "\xfc\x84\x80\x80\x80\x80"sv, false},
    // 6.9: last code point of each sequence length.
    {"Case6_9_1_U007F", "\x7f"sv, true},
    {"Case6_9_2_U07FF", "\xdf\xbf"sv, true},
    {"Case6_9_3_UFFFF", "\xef\xbf\xbf"sv, true},
    {"Case6_9_4_U10FFFF", "\xf4\x8f\xbf\xbf"sv, true},
    // 6.10: beyond U+10FFFF.
    {"Case6_10_1_U1FFFFF", "\xf7\xbf\xbf\xbf"sv, false},
    {"Case6_10_2_FiveByteMax", "\xfb\xbf\xbf\xbf\xbf"sv, false},
    {"Case6_10_3_SixByteMax", "\xfd\xbf\xbf\xbf\xbf\xbf"sv, false},
    // 6.11: other boundaries.
    {"Case6_11_1_UD7FF", "\xed\x9f\xbf"sv, true},
    {"Case6_11_2_UE000", "\xee\x80\x80"sv, true},
    {"Case6_11_3_UFFFD", "\xef\xbf\xbd"sv, true},
    {"Case6_11_4_U10FFFF", "\xf4\x8f\xbf\xbf"sv, true},
    {"Case6_11_5_U110000", "\xf4\x90\x80\x80"sv, false},
    // 6.12: unexpected continuation bytes.
    {"Case6_12_1_Lone80", "\x80"sv, false},
    {"Case6_12_2_LoneBF", "\xbf"sv, false},
    {"Case6_12_3_TwoContinuations", "\x80\xbf"sv, false},
    {"Case6_12_4_ThreeContinuations", "\x80\xbf\x80"sv, false},
    {"Case6_12_5_ContinuationAfterAscii", "abc\x80" "def"sv, false},
    // 6.13: lonely start bytes followed by a space.
    {"Case6_13_1_LonelyTwoByteStarts", "\xc0 \xc1 \xc2 \xdf "sv, false},
    {"Case6_13_2_LonelyThreeByteStarts", "\xe0 \xe1 \xef "sv, false},
    {"Case6_13_3_LonelyFourByteStarts", "\xf0 \xf1 \xf7 "sv, false},
    {"Case6_13_4_LonelyFiveByteStarts", "\xf8 \xfb "sv, false},
    {"Case6_13_5_LonelySixByteStarts", "\xfc \xfd "sv, false},
    // 6.14: sequences missing their last continuation byte.
    {"Case6_14_1_C0Alone", "\xc0"sv, false},
    {"Case6_14_2_E080", "\xe0\x80"sv, false},
    {"Case6_14_3_F08080", "\xf0\x80\x80"sv, false},
    {"Case6_14_6_DFAlone", "\xdf"sv, false},
    {"Case6_14_7_EFBF", "\xef\xbf"sv, false},
    {"Case6_14_8_F4_8F_BF", "\xf4\x8f\xbf"sv, false},
    // 6.15: all of 6.14 concatenated.
    {"Case6_15_1_ConcatenatedIncomplete",
     "\xc0\xe0\x80\xf0\x80\x80\xf8\x80\x80\x80\xfc\x80\x80\x80\x80\xdf\xef\xbf\xf7\xbf\xbf\xfb\xbf\xbf\xbf"
     "\xfd\xbf\xbf\xbf\xbf"sv,
     false},
    // 6.16: bytes that never appear in UTF-8.
    {"Case6_16_1_FE", "\xfe"sv, false},
    {"Case6_16_2_FF", "\xff"sv, false},
    {"Case6_16_3_FEFEFFFF", "\xfe\xfe\xff\xff"sv, false},
    // 6.17: overlong '/'.
    {"Case6_17_1_OverlongSlash2", "\xc0\xaf"sv, false},
    {"Case6_17_2_OverlongSlash3", "\xe0\x80\xaf"sv, false},
    {"Case6_17_3_OverlongSlash4", "\xf0\x80\x80\xaf"sv, false},
    {"Case6_17_4_OverlongSlash5", "\xf8\x80\x80\x80\xaf"sv, false},
    {"Case6_17_5_OverlongSlash6", "\xfc\x80\x80\x80\x80\xaf"sv, false},
    // 6.18: maximum overlong sequences.
    {"Case6_18_1_OverlongMax2", "\xc1\xbf"sv, false},
    {"Case6_18_2_OverlongMax3", "\xe0\x9f\xbf"sv, false},
    {"Case6_18_3_OverlongMax4", "\xf0\x8f\xbf\xbf"sv, false},
    {"Case6_18_4_OverlongMax5", "\xf8\x87\xbf\xbf\xbf"sv, false},
    // 6.19: overlong NUL.
    {"Case6_19_1_OverlongNul2", "\xc0\x80"sv, false},
    {"Case6_19_2_OverlongNul3", "\xe0\x80\x80"sv, false},
    {"Case6_19_3_OverlongNul4", "\xf0\x80\x80\x80"sv, false},
    // 6.20: single UTF-16 surrogates.
    {"Case6_20_1_UD800", "\xed\xa0\x80"sv, false},
    {"Case6_20_2_UDB7F", "\xed\xad\xbf"sv, false},
    {"Case6_20_3_UDB80", "\xed\xae\x80"sv, false},
    {"Case6_20_4_UDBFF", "\xed\xaf\xbf"sv, false},
    {"Case6_20_5_UDC00", "\xed\xb0\x80"sv, false},
    {"Case6_20_6_UDF80", "\xed\xbe\x80"sv, false},
    {"Case6_20_7_UDFFF", "\xed\xbf\xbf"sv, false},
    // 6.21: paired UTF-16 surrogates (CESU-8) are still invalid UTF-8.
    {"Case6_21_1_UD800UDC00", "\xed\xa0\x80\xed\xb0\x80"sv, false},
    {"Case6_21_2_UD800UDFFF", "\xed\xa0\x80\xed\xbf\xbf"sv, false},
    {"Case6_21_7_UDBFFUDC00", "\xed\xaf\xbf\xed\xb0\x80"sv, false},
    {"Case6_21_8_UDBFFUDFFF", "\xed\xaf\xbf\xed\xbf\xbf"sv, false},
    // 6.22: noncharacters are valid UTF-8 (Autobahn expects them echoed).
    {"Case6_22_1_UFFFE", "\xef\xbf\xbe"sv, true},
    {"Case6_22_2_UFFFF", "\xef\xbf\xbf"sv, true},
    {"Case6_22_3_U1FFFE", "\xf0\x9f\xbf\xbe"sv, true},
    {"Case6_22_34_U10FFFE", "\xf4\x8f\xbf\xbe"sv, true},
    {"Case6_22_FDD0", "\xef\xb7\x90"sv, true},
    // 6.23: the replacement character in context, and invalid bytes hidden among valid ones.
    {"Case6_23_1_ReplacementCharacter", "\xef\xbf\xbd"sv, true},
    {"Case6_23_2_ReplacementInAscii", "abc\xef\xbf\xbd" "def"sv, true},
    {"Case6_23_3_SurrogateInsideValidText", "Hello \xce\xba\xed\xa0\x80 world"sv, false},
    {"Case6_23_4_OverlongAfterLongValidRun", "0123456789abcdef0123456789abcdef\xe0\x80\x80"sv, false},
};

INSTANTIATE_TEST_SUITE_P(, EchoConformanceUtf8, ::testing::ValuesIn(kUtf8Cases),
                         [](const auto& info) { return std::string(info.param.id); });

// =============================================================================================
// 7.* Closing handshake (RFC 6455 5.5.1, 7.1-7.4). In every case the server answers the close
// and then closes TCP; nothing but the close may come after a close was sent (5.5.1).

class EchoConformanceClose : public EchoServer {};

TEST_F(EchoConformanceClose, Case7_1_1_EchoThenCleanClose) {
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  ASSERT_NO_FATAL_FAILURE(send(client, frame(kOpText, "Hello World!")));
  EXPECT_TRUE(echoes(client, kOpText, "Hello World!"));
  EXPECT_TRUE(closes_cleanly(client));
}

TEST_F(EchoConformanceClose, Case7_1_2_SecondCloseIgnored) {
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  ASSERT_NO_FATAL_FAILURE(send(client, frame(kOpClose, close_payload(1000)) + frame(kOpClose, close_payload(1000))));
  EXPECT_TRUE(closes_with(client, 1000));
}

TEST_F(EchoConformanceClose, Case7_1_3_PingAfterCloseIgnored) {
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  ASSERT_NO_FATAL_FAILURE(send(client, frame(kOpClose, close_payload(1000)) + frame(kOpPing, "Hello World!")));
  EXPECT_TRUE(closes_with(client, 1000));  // no pong before or after the close
}

TEST_F(EchoConformanceClose, Case7_1_4_TextAfterCloseIgnored) {
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  ASSERT_NO_FATAL_FAILURE(send(client, frame(kOpClose, close_payload(1000)) + frame(kOpText, "Hello World!")));
  EXPECT_TRUE(closes_with(client, 1000));
}

TEST_F(EchoConformanceClose, Case7_1_5_CloseInsideFragmentedMessage) {
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  ASSERT_NO_FATAL_FAILURE(send(client, frame(kOpText, "fragment1", false) + frame(kOpClose, close_payload(1000)) +
                                           frame(kOpContinuation, "fragment2")));
  EXPECT_TRUE(closes_with(client, 1000));
}

TEST_F(EchoConformanceClose, Case7_1_6_LargeMessageThenCloseThenPing) {
  std::string payload;
  while (payload.size() < 256 * 1024) payload += "BAsd7&jh23";
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  ASSERT_NO_FATAL_FAILURE(send(client, frame(kOpText, payload) + frame(kOpClose, close_payload(1000)) +
                                           frame(kOpPing, "Hello World!")));
  EXPECT_TRUE(echoes(client, kOpText, payload));  // it came before the close, so it is echoed
  EXPECT_TRUE(closes_with(client, 1000));
}

// RFC 6455 5.5.1: a close without a body is valid; the answer may be empty or 1000.
TEST_F(EchoConformanceClose, Case7_3_1_CloseWithoutPayload) {
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  ASSERT_NO_FATAL_FAILURE(send(client, frame(kOpClose, "")));
  EXPECT_TRUE(closes_with(client, {1000, 1005}));
}

// RFC 6455 5.5.1: a body, if present, starts with a 2-byte code; one byte is malformed.
TEST_F(EchoConformanceClose, Case7_3_2_OneBytePayloadFails1002) {
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  ASSERT_NO_FATAL_FAILURE(send(client, frame(kOpClose, "\x03")));
  EXPECT_TRUE(closes_with(client, 1002));
}

TEST_F(EchoConformanceClose, Case7_3_3_Code1000WithoutReason) {
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  ASSERT_TRUE(client.send_close(1000)) << client.error();
  EXPECT_TRUE(closes_with(client, 1000));
}

TEST_F(EchoConformanceClose, Case7_3_4_Code1000WithReason) {
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  ASSERT_TRUE(client.send_close(1000, "Hello World!")) << client.error();
  EXPECT_TRUE(closes_with(client, 1000));
}

TEST_F(EchoConformanceClose, Case7_3_5_Code1000With123ByteReason) {
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  ASSERT_TRUE(client.send_close(1000, std::string(123, '*'))) << client.error();  // 125 bytes in all
  EXPECT_TRUE(closes_with(client, 1000));
}

// RFC 6455 5.5: 2 + 124 = 126 bytes is too long for a control frame.
TEST_F(EchoConformanceClose, Case7_3_6_Code1000With124ByteReasonFails1002) {
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  ASSERT_TRUE(client.send_close(1000, std::string(124, '*'))) << client.error();
  EXPECT_TRUE(closes_with(client, 1002));
}

// RFC 6455 5.5.1: the reason is UTF-8; 8.1 makes invalid UTF-8 a 1007.
TEST_F(EchoConformanceClose, Case7_5_1_InvalidUtf8ReasonFails1007) {
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  ASSERT_TRUE(client.send_close(1000, kKosmeEdited)) << client.error();
  EXPECT_TRUE(closes_with(client, 1007));
}

struct CloseCodeCase {
  const char* id;
  uint16_t code;
};

// RFC 6455 7.4.1/7.4.2: codes that may appear on the wire are answered with the same code.
class EchoConformanceValidCloseCodes : public EchoServer, public ::testing::WithParamInterface<CloseCodeCase> {};

TEST_P(EchoConformanceValidCloseCodes, CodeEchoed) {
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  ASSERT_TRUE(client.send_close(GetParam().code, "reason")) << client.error();
  EXPECT_TRUE(closes_with(client, GetParam().code));
}

constexpr CloseCodeCase kValidCloseCodes[] = {
    {"Case7_7_1_Code1000", 1000}, {"Case7_7_2_Code1001", 1001}, {"Case7_7_3_Code1002", 1002},
    {"Case7_7_4_Code1003", 1003}, {"Case7_7_5_Code1007", 1007}, {"Case7_7_6_Code1008", 1008},
    {"Case7_7_7_Code1009", 1009}, {"Case7_7_8_Code1010", 1010}, {"Case7_7_9_Code1011", 1011},
    {"Case7_7_10_Code3000", 3000}, {"Case7_7_11_Code3999", 3999}, {"Case7_7_12_Code4000", 4000},
    {"Case7_7_13_Code4999", 4999},
};

INSTANTIATE_TEST_SUITE_P(, EchoConformanceValidCloseCodes, ::testing::ValuesIn(kValidCloseCodes),
                         [](const auto& info) { return std::string(info.param.id); });

// RFC 6455 7.4: 1005/1006/1015 must never be sent, 1004 and unassigned registry codes are not
// valid on the wire, below 1000 and from 5000 up are outside every range: fail with 1002.
class EchoConformanceInvalidCloseCodes : public EchoServer, public ::testing::WithParamInterface<CloseCodeCase> {};

TEST_P(EchoConformanceInvalidCloseCodes, Fails1002) {
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  ASSERT_TRUE(client.send_close(GetParam().code, "reason")) << client.error();
  EXPECT_TRUE(closes_with(client, 1002));
}

constexpr CloseCodeCase kInvalidCloseCodes[] = {
    {"Case7_9_1_Code0", 0},         {"Case7_9_2_Code999", 999},   {"Case7_9_3_Code1004", 1004},
    {"Case7_9_4_Code1005", 1005},   {"Case7_9_5_Code1006", 1006}, {"Case7_9_6_Code1016", 1016},
    {"Case7_9_7_Code1100", 1100},   {"Case7_9_8_Code2000", 2000}, {"Case7_9_9_Code2999", 2999},
    {"Case7_9_10_Code1015", 1015},  {"Case7_13_1_Code5000", 5000}, {"Case7_13_2_Code65535", 65535},
};

INSTANTIATE_TEST_SUITE_P(, EchoConformanceInvalidCloseCodes, ::testing::ValuesIn(kInvalidCloseCodes),
                         [](const auto& info) { return std::string(info.param.id); });

// =============================================================================================
// 9.* Large messages and many messages. These assert content and only time-box generously;
// performance numbers come from bench/ and tools/, not from here.

class EchoConformancePerformance : public EchoServer {
 protected:
  void echo_big(uint8_t opcode, const std::string& message, const std::string& bytes) {
    WsTestClient client;
    ASSERT_NO_FATAL_FAILURE(connect(client));
    const auto start = Clock::now();
    ASSERT_NO_FATAL_FAILURE(send(client, bytes, kBigTimeout));
    EXPECT_TRUE(echoes(client, opcode, message, kBigTimeout));
    EXPECT_LT(Clock::now() - start, kBigTimeout);
    EXPECT_TRUE(closes_cleanly(client));
  }
};

// Exactly the default limit: the largest message that must still be echoed.
TEST_F(EchoConformancePerformance, Case9_1_6_Text16MiB) {
  const std::string message = utf8_payload(kMaxMessage);
  echo_big(kOpText, message, frame(kOpText, message));
}

TEST_F(EchoConformancePerformance, Case9_2_6_Binary16MiB) {
  const std::string message = binary_payload(kMaxMessage);
  echo_big(kOpBinary, message, frame(kOpBinary, message));
}

TEST_F(EchoConformancePerformance, Case9_3_1_Text4MiBIn64ByteFrames) {
  const std::string message = utf8_payload(4 << 20);
  echo_big(kOpText, message, fragmented(kOpText, message, 64));
}

TEST_F(EchoConformancePerformance, Case9_4_1_Binary4MiBIn64ByteFrames) {
  const std::string message = binary_payload(4 << 20, 7);
  echo_big(kOpBinary, message, fragmented(kOpBinary, message, 64));
}

// 9.7/9.8 scaled up: every one of 100,000 pipelined messages comes back, in order, with its
// opcode. Sizes vary (0 to 99 bytes) so frame boundaries fall everywhere in the server's reads.
TEST_F(EchoConformancePerformance, Case9_7_PipelinedHundredThousandSmallMessages) {
  constexpr int kCount = 100000;
  auto message = [](int i) {
    std::string s = "#" + std::to_string(i) + ":";
    s.resize(static_cast<size_t>(i % 100), '.');
    return s;
  };
  std::string bytes;
  bytes.reserve(kCount * 60);
  for (int i = 0; i < kCount; ++i) bytes += frame(i % 2 ? kOpBinary : kOpText, message(i));
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  const auto start = Clock::now();
  ASSERT_NO_FATAL_FAILURE(send(client, bytes, kBigTimeout));
  const auto deadline = start + kBigTimeout;
  for (int i = 0; i < kCount; ++i) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    Received f = client.recv_frame(std::max(left, milliseconds(1)));
    const uint8_t opcode = i % 2 ? kOpBinary : kOpText;
    // Stop at the first wrong one: the rest would only repeat the failure 100,000 times.
    ASSERT_TRUE(f.ok() && f.fin && f.opcode == opcode && f.payload == message(i))
        << "message " << i << " of " << kCount << ": expected opcode " << int(opcode) << " payload "
        << printable(message(i)) << ", got " << describe(f);
  }
  EXPECT_LT(Clock::now() - start, kBigTimeout);
  EXPECT_TRUE(closes_cleanly(client));
}

// =============================================================================================
// 10.* Fragment sizes: the same 64 KiB message in frames of 1, 10, 100 and 1300 bytes (Autobahn
// 10.1.1 uses 1300), reassembled into one echo. Text, so fragments split code points.

class EchoConformanceAutoFragmentation : public EchoServer, public ::testing::WithParamInterface<size_t> {};

TEST_P(EchoConformanceAutoFragmentation, Case10_1_1_Reassembled) {
  const std::string message = utf8_payload(65536);
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  ASSERT_NO_FATAL_FAILURE(send(client, fragmented(kOpText, message, GetParam()), milliseconds(10000)));
  EXPECT_TRUE(echoes(client, kOpText, message, milliseconds(10000)));
  EXPECT_TRUE(closes_cleanly(client));
}

INSTANTIATE_TEST_SUITE_P(, EchoConformanceAutoFragmentation, ::testing::Values(1, 10, 100, 1300),
                         [](const auto& info) { return "FrameSize" + std::to_string(info.param); });

class EchoConformanceLimits : public EchoServer {};

// parleyd's message size limit (16 MiB) is a policy: exceeding it closes with 1009. The whole
// frame is offered; a server may refuse at the header (it knows the length) or on the way.
TEST_F(EchoConformanceLimits, SingleFrameOver16MiBFails1009) {
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  client.send_raw(frame(kOpBinary, binary_payload(kMaxMessage + 1)), kBigTimeout);  // may be cut off
  EXPECT_TRUE(closes_with(client, 1009, kBigTimeout, TcpEnd::kFinOrReset));
}

// No single frame is too big here; only the reassembled message is.
TEST_F(EchoConformanceLimits, FragmentedMessageOver16MiBFails1009) {
  WsTestClient client;
  ASSERT_NO_FATAL_FAILURE(connect(client));
  client.send_raw(fragmented(kOpBinary, binary_payload(kMaxMessage + (1 << 20)), 1 << 20), kBigTimeout);
  EXPECT_TRUE(closes_with(client, 1009, kBigTimeout, TcpEnd::kFinOrReset));
}

// =============================================================================================
// HTTP side of the opening handshake (RFC 6455 4.2.1, 4.2.2) and the plain endpoints.

class EchoConformanceHttp : public EchoServer {
 protected:
  void SetUp() override {
    // These speak plain HTTP by hand; tls_server_test.cpp covers https.
    if (over_tls()) GTEST_SKIP() << "plain HTTP cases";
    EchoServer::SetUp();
  }
  static std::string host_header() { return "Host: " + kHost + ":" + std::to_string(port()) + "\r\n"; }

  // An upgrade request; `version` empty omits Sec-WebSocket-Version, !with_key omits the key.
  static std::string upgrade_request(std::string_view method, std::string_view path, std::string_view version,
                                     bool with_key) {
    std::string r = std::string(method) + " " + std::string(path) + " HTTP/1.1\r\n" + host_header() +
                    "Upgrade: websocket\r\nConnection: Upgrade\r\n";
    if (with_key) r += "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    if (!version.empty()) r += "Sec-WebSocket-Version: " + std::string(version) + "\r\n";
    return r + "\r\n";
  }
};

TEST_F(EchoConformanceHttp, HealthzIs200) {
  HttpResponse r = http_request(kHost, port(), "GET /healthz HTTP/1.1\r\n" + host_header() + "\r\n", kTimeout);
  ASSERT_TRUE(r.complete) << r.error;
  EXPECT_EQ(r.status, 200) << r.reason << " " << r.body;
}

TEST_F(EchoConformanceHttp, UnknownPathIs404) {
  HttpResponse r = http_request(kHost, port(), "GET /no-such-path HTTP/1.1\r\n" + host_header() + "\r\n", kTimeout);
  ASSERT_TRUE(r.complete) << r.error;
  EXPECT_EQ(r.status, 404) << r.reason << " " << r.body;
}

TEST_F(EchoConformanceHttp, UpgradeOnUnknownPathIs404) {
  HttpResponse r = http_request(kHost, port(), upgrade_request("GET", "/no-such-path", "13", true), kTimeout);
  ASSERT_TRUE(r.complete) << r.error;
  EXPECT_EQ(r.status, 404) << r.reason << " " << r.body;
}

TEST_F(EchoConformanceHttp, PostIs405) {
  HttpResponse r = http_request(kHost, port(), upgrade_request("POST", "/echo", "13", true), kTimeout);
  ASSERT_TRUE(r.complete) << r.error;
  EXPECT_EQ(r.status, 405) << r.reason << " " << r.body;
}

// RFC 6455 4.2.2: an unsupported version is answered 426 with the versions the server speaks.
TEST_F(EchoConformanceHttp, BadVersionIs426WithVersion13) {
  HttpResponse r = http_request(kHost, port(), upgrade_request("GET", "/echo", "8", true), kTimeout);
  ASSERT_TRUE(r.complete) << r.error;
  EXPECT_EQ(r.status, 426) << r.reason << " " << r.body;
  EXPECT_EQ(r.header("Sec-WebSocket-Version").value_or("<missing>"), "13");
}

// RFC 6455 4.2.1 item 5: Sec-WebSocket-Key is required.
TEST_F(EchoConformanceHttp, MissingKeyIs400) {
  HttpResponse r = http_request(kHost, port(), upgrade_request("GET", "/echo", "13", false), kTimeout);
  ASSERT_TRUE(r.complete) << r.error;
  EXPECT_EQ(r.status, 400) << r.reason << " " << r.body;
}

// protocol::kMaxRequestHead (8 KiB): a longer head is refused with 431 rather than buffered.
TEST_F(EchoConformanceHttp, RequestHeadOver8KiBIs431) {
  const std::string request = "GET /echo HTTP/1.1\r\n" + host_header() + "X-Filler: " + std::string(9000, 'a') +
                              "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  HttpResponse r = http_request(kHost, port(), request, kTimeout);
  ASSERT_TRUE(r.complete) << r.error;
  EXPECT_EQ(r.status, 431) << r.reason << " " << r.body;
}

// The handshake parser is incremental: a request arriving one byte at a time still upgrades
// (and the Sec-WebSocket-Accept check in upgrade() holds).
TEST_F(EchoConformanceHttp, RequestSplitByteByByteUpgrades) {
  WsTestClient client;
  ASSERT_TRUE(client.connect_tcp(kHost, port(), kTimeout)) << client.error();
  ASSERT_TRUE(client.upgrade("/echo", {"User-Agent: parley-conformance"}, 1, kChopDelay, milliseconds(10000)))
      << client.error();
  ASSERT_NO_FATAL_FAILURE(send(client, frame(kOpText, "after a split handshake")));
  EXPECT_TRUE(echoes(client, kOpText, "after a split handshake"));
  EXPECT_TRUE(closes_cleanly(client));
}

// RFC 6455 4.2.2 item 5.4: the accept value for the RFC's own sample key.
TEST_F(EchoConformanceHttp, AcceptKeyForRfcSampleKey) {
  HttpResponse r = http_request(kHost, port(), upgrade_request("GET", "/echo", "13", true), kTimeout);
  ASSERT_TRUE(r.complete) << r.error;
  ASSERT_EQ(r.status, 101) << r.reason << " " << r.body;
  EXPECT_EQ(r.header("Sec-WebSocket-Accept").value_or("<missing>"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

}  // namespace
}  // namespace parley_test
