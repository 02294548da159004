// permessage-deflate (RFC 7692) against a real parleyd, mirroring Autobahn|Testsuite cases 12.*
// (compressed echo of many sizes, whole and auto-fragmented) and 13.* (every client offer of the
// suite, checked against the window the server promised), plus the failure rules of RFC 7692
// 6.1/7.2 (RSV1 placement, invalid data, zip bombs) and compress-once broadcast on /chat.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/deflate_codec.h"
#include "tests/support/parleyd_process.h"
#include "tests/support/parleyd_suite.h"
#include "tests/support/ws_test_client.h"
#include "tests/support/zlib_peer.h"

namespace parley_test {
namespace {

using Clock = std::chrono::steady_clock;

const std::string kHost = "127.0.0.1";
constexpr milliseconds kTimeout{5000};
constexpr std::string_view kAnswer = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
constexpr std::string_view kDefaultOffer = "permessage-deflate; client_no_context_takeover; client_max_window_bits";

// ---------------------------------------------------------------------------------------------
// Payloads: JSON-like text (Autobahn 13.* uses a JSON file) and structured binary.

std::string json_payload(size_t n, unsigned seed = 1) {
  static const char* const kNames[] = {"alice", "bob", "carol", "dave", "erin", "frank"};
  std::string s;
  unsigned x = seed;
  while (s.size() < n) {
    x = x * 1103515245u + 12345u;
    s += R"({"id":)" + std::to_string(x % 100000) + R"(,"user":")" + kNames[(x >> 8) % 6] +
         R"(","text":"message number )" + std::to_string((x >> 4) % 997) + R"( in the room","tags":["a","b"]},)";
  }
  s.resize(n);
  return s;
}

std::string binary_payload(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 7 + (i >> 9) * 13) & 0xff);  // image-like rows
  return s;
}

std::string compress(std::string_view payload) {
  protocol::MessageDeflater deflater;
  std::vector<uint8_t> out;
  EXPECT_TRUE(deflater.deflate({reinterpret_cast<const uint8_t*>(payload.data()), payload.size()}, out));
  return std::string(out.begin(), out.end());
}

FrameOptions options(bool fin, bool rsv1) {
  FrameOptions o;
  o.fin = fin;
  o.rsv = rsv1 ? protocol::kRsv1 : 0;
  return o;
}

// Compressed bytes as one message, optionally split into frames of `frame_size` bytes: RSV1 on
// the first frame only (RFC 7692 6.1).
std::string frames_of(uint8_t opcode, const std::string& c, size_t frame_size = 0) {
  if (frame_size == 0 || c.size() <= frame_size) return encode_frame(opcode, c, options(true, true));
  std::string out;
  for (size_t at = 0; at < c.size(); at += frame_size) {
    const size_t n = std::min(frame_size, c.size() - at);
    out += encode_frame(at == 0 ? opcode : kOpContinuation, c.substr(at, n), options(at + n == c.size(), at == 0));
  }
  return out;
}

std::string compressed_message(uint8_t opcode, std::string_view payload, size_t frame_size = 0) {
  return frames_of(opcode, compress(payload), frame_size);
}

// Reads one message frame by frame (echoes may be fragmented); returns its raw (still
// compressed) payload and whether RSV1 was on its first frame.
struct RawMessage {
  bool ok = false;
  uint8_t opcode = 0;
  bool rsv1 = false;
  std::string payload;
  std::string error;
};

RawMessage recv_raw_message(WsTestClient& client, milliseconds timeout = kTimeout) {
  RawMessage m;
  bool open = false;
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    Received f = client.recv_frame(std::max(left, milliseconds(1)));
    if (!f.ok()) {
      m.error = f.error;
      return m;
    }
    if (f.opcode == kOpPing || f.opcode == kOpPong) continue;
    if (f.opcode == kOpClose) {
      m.error = "close frame";
      return m;
    }
    if (!open) {
      m.opcode = f.opcode;
      m.rsv1 = f.rsv1;
      open = true;
    } else if (f.rsv1) {
      m.error = "RSV1 on a continuation (RFC 7692 6.1)";
      return m;
    }
    m.payload += f.payload;
    if (f.fin) {
      m.ok = true;
      return m;
    }
  }
}

::testing::AssertionResult closes_with(WsTestClient& client, uint16_t code, milliseconds timeout = kTimeout) {
  CloseResult r = client.expect_close(timeout);
  if (!r.close_received) return ::testing::AssertionFailure() << "no close frame: " << r.error;
  if (r.code != code) return ::testing::AssertionFailure() << "close " << r.code << " (" << r.reason << "), want " << code;
  if (!r.tcp_closed) return ::testing::AssertionFailure() << "TCP not closed: " << r.error;
  return ::testing::AssertionSuccess();
}

// ---------------------------------------------------------------------------------------------
// Fixture: one parleyd (defaults: deflate on, threshold 64) per suite.

class DeflateServer : public ParleydSuite<DeflateServer> {
 protected:
  // Upgrades with `offer` (none when empty); returns the Sec-WebSocket-Extensions answer, if any.
  static std::optional<std::string> connect(WsTestClient& client, std::string_view offer = kDefaultOffer,
                                            std::string_view path = "/echo") {
    std::vector<std::string> headers;
    if (!offer.empty()) headers.push_back("Sec-WebSocket-Extensions: " + std::string(offer));
    const bool ok = client.connect(kHost, port(), path, headers, kTimeout);
    EXPECT_TRUE(ok) << client.error();
    std::optional<std::string> answer = client.handshake_response().header("Sec-WebSocket-Extensions");
    client.set_deflate(answer.has_value());
    return answer;
  }
};

// ---------------------------------------------------------------------------------------------
// Negotiation (RFC 7692 7.1)

struct OfferCase {
  const char* name;
  std::string offer;
  std::string answer;  // "" = declined
  int window;          // the server window the answer promises
};

std::vector<OfferCase> autobahn_13_offers() {
  const std::string base(kAnswer);
  const std::string d(kDefaultOffer);
  return {
      {"13.1", d, base, 15},
      {"13.2", d + "; server_no_context_takeover", base, 15},
      {"13.3", d + "; server_max_window_bits=8", base + "; server_max_window_bits=8", 8},
      {"13.4", d + "; server_max_window_bits=15", base + "; server_max_window_bits=15", 15},
      {"13.5", d + "; server_no_context_takeover; server_max_window_bits=8", base + "; server_max_window_bits=8", 8},
      {"13.6", d + "; server_no_context_takeover; server_max_window_bits=15", base + "; server_max_window_bits=15", 15},
      {"13.7",
       d + "; server_no_context_takeover; server_max_window_bits=8, " + d + "; server_no_context_takeover, " + d,
       base + "; server_max_window_bits=8", 8},
  };
}

TEST_F(DeflateServer, HandshakeAnswersEveryAutobahnOffer) {
  for (const OfferCase& c : autobahn_13_offers()) {
    WsTestClient client;
    EXPECT_EQ(connect(client, c.offer).value_or("(none)"), c.answer) << c.name;
  }
}

TEST_F(DeflateServer, HandshakeDeclinesBadOffersButStillUpgrades) {
  for (const char* offer : {"permessage-deflate; bogus", "permessage-deflate; server_max_window_bits=7",
                            "permessage-deflate; server_max_window_bits", "x-webkit-deflate-frame",
                            "permessage-deflate; client_no_context_takeover=1", ";, permessage-deflate"}) {
    WsTestClient client;
    EXPECT_FALSE(connect(client, offer).has_value()) << offer;
    EXPECT_EQ(client.handshake_response().status, 101) << offer;
    // Without the extension RSV1 stays a protocol error.
    ASSERT_TRUE(client.send_frame(kOpText, compress(json_payload(200)), options(true, true)));
    EXPECT_TRUE(closes_with(client, 1002)) << offer;
  }
  WsTestClient plain;
  EXPECT_FALSE(connect(plain, "").has_value());
}

TEST(DeflateOff, NoExtensionWhenDisabled) {
  ParleydProcess server({"--deflate", "off"});
  ASSERT_TRUE(server.ok()) << server.error();
  WsTestClient client;
  ASSERT_TRUE(client.connect(kHost, server.port(), "/echo", {"Sec-WebSocket-Extensions: permessage-deflate"}, kTimeout))
      << client.error();
  EXPECT_FALSE(client.handshake_response().header("Sec-WebSocket-Extensions").has_value());
  ASSERT_TRUE(client.send_frame(kOpText, compress("hello"), options(true, true)));
  EXPECT_TRUE(closes_with(client, 1002));
}

// ---------------------------------------------------------------------------------------------
// Echo (Autobahn 12.*: sizes 16 B to 128 KiB, whole and auto-fragmented)

constexpr size_t kSizes[] = {16, 64, 256, 1024, 4096, 8192, 16384, 32768, 65536, 131072};

void expect_compressed_echo(WsTestClient& client, uint8_t opcode, const std::string& payload, size_t frame_size,
                            int window, const std::string& label) {
  ASSERT_TRUE(client.send_raw(compressed_message(opcode, payload, frame_size), kTimeout)) << client.error();
  RawMessage m = recv_raw_message(client);
  ASSERT_TRUE(m.ok) << label << ": " << m.error;
  EXPECT_EQ(m.opcode, opcode) << label;
  if (!m.rsv1) {
    // Uncompressed is only for messages below the 64-byte threshold or that deflate cannot
    // shrink (our compress() uses the server's zlib settings).
    EXPECT_TRUE(payload.size() < 64 || compress(payload).size() >= payload.size()) << label;
    EXPECT_EQ(m.payload, payload) << label;
    return;
  }
  EXPECT_LT(m.payload.size(), payload.size()) << label;
  const std::optional<std::string> inflated = peer_inflate(m.payload, window);
  ASSERT_TRUE(inflated.has_value()) << label << ": echo does not inflate with a " << window << "-bit window";
  EXPECT_TRUE(*inflated == payload) << label << ": inflated echo differs (" << inflated->size() << " bytes)";
}

TEST_F(DeflateServer, CompressedEchoOfEverySize) {
  WsTestClient client;
  ASSERT_EQ(connect(client).value_or(""), kAnswer);
  for (size_t size : kSizes) {
    for (int i = 0; i < 3; ++i) {
      const std::string label = "size " + std::to_string(size) + " #" + std::to_string(i);
      ASSERT_NO_FATAL_FAILURE(expect_compressed_echo(client, kOpText, json_payload(size, i + 1), 0, 15, label + " text"));
      ASSERT_NO_FATAL_FAILURE(expect_compressed_echo(client, kOpBinary, binary_payload(size), 0, 15, label + " binary"));
    }
  }
  ASSERT_TRUE(client.send_close(1000));
  EXPECT_TRUE(closes_with(client, 1000));
}

TEST_F(DeflateServer, FragmentedCompressedMessages) {
  WsTestClient client;
  ASSERT_EQ(connect(client).value_or(""), kAnswer);
  // Autobahn 12.*.11-18: auto-fragment sizes of 256 to 32768 bytes.
  for (size_t size : {8192u, 16384u, 65536u, 131072u}) {
    for (size_t fragment : {256u, 1024u, 4096u, 32768u}) {
      const std::string label = std::to_string(size) + "/" + std::to_string(fragment);
      ASSERT_NO_FATAL_FAILURE(expect_compressed_echo(client, kOpText, json_payload(size, 9), fragment, 15, label));
    }
  }
  // A ping between the fragments, and the whole stream cut into 7-byte writes.
  const std::string payload = json_payload(3000, 4);
  const std::string c = compress(payload);
  const std::string stream = encode_frame(kOpText, c.substr(0, 100), options(false, true)) +
                             encode_frame(kOpPing, "p") + encode_frame(kOpContinuation, c.substr(100), options(true, false));
  ASSERT_TRUE(client.send_chopped(stream, 7, milliseconds(0), kTimeout)) << client.error();
  Received pong = client.recv_frame();
  ASSERT_TRUE(pong.ok()) << pong.error;
  EXPECT_EQ(pong.opcode, kOpPong);
  EXPECT_FALSE(pong.rsv1);
  Received echo = client.recv_message();
  ASSERT_TRUE(echo.ok()) << echo.error;
  EXPECT_TRUE(echo.rsv1);
  EXPECT_TRUE(echo.payload == payload);
}

TEST_F(DeflateServer, EveryAutobahnCase13OfferEchoesWithinItsWindow) {
  for (const OfferCase& c : autobahn_13_offers()) {
    WsTestClient client;
    ASSERT_EQ(connect(client, c.offer).value_or(""), c.answer) << c.name;
    for (size_t size : {64u, 1024u, 16384u, 131072u}) {
      for (size_t fragment : {0u, 256u}) {
        const std::string label = std::string(c.name) + " size " + std::to_string(size) + " frag " + std::to_string(fragment);
        ASSERT_NO_FATAL_FAILURE(expect_compressed_echo(client, kOpText, json_payload(size, 3), fragment, c.window, label));
      }
    }
    ASSERT_TRUE(client.send_close(1000));
    EXPECT_TRUE(closes_with(client, 1000)) << c.name;
  }
}

TEST_F(DeflateServer, UncompressedMessagesStillFlowWithTheExtension) {
  WsTestClient client;
  ASSERT_EQ(connect(client).value_or(""), kAnswer);
  ASSERT_TRUE(client.send_frame(kOpText, "short"));
  Received m = client.recv_message();
  ASSERT_TRUE(m.ok()) << m.error;
  EXPECT_FALSE(m.rsv1);
  EXPECT_EQ(m.payload, "short");
  // A plain (RSV1 clear) large message is echoed compressed: compression is per message.
  const std::string big = json_payload(5000);
  ASSERT_TRUE(client.send_frame(kOpText, big));
  m = client.recv_message();
  ASSERT_TRUE(m.ok()) << m.error;
  EXPECT_TRUE(m.rsv1);
  EXPECT_TRUE(m.payload == big);
  // Incompressible data goes back as it is.
  std::string noise(4000, '\0');
  unsigned x = 7;
  for (char& ch : noise) ch = static_cast<char>((x = x * 1664525u + 1013904223u) >> 24);
  ASSERT_TRUE(client.send_frame(kOpBinary, noise));
  m = client.recv_message();
  ASSERT_TRUE(m.ok()) << m.error;
  EXPECT_FALSE(m.rsv1);
  EXPECT_TRUE(m.payload == noise);
}

// ---------------------------------------------------------------------------------------------
// Failures (RFC 7692 6.1, 7.2.2)

TEST_F(DeflateServer, Rsv1OnAContinuationIs1002) {
  WsTestClient client;
  ASSERT_TRUE(connect(client).has_value());
  const std::string c = compress(json_payload(500));
  ASSERT_TRUE(client.send_raw(encode_frame(kOpText, c.substr(0, 10), options(false, true)) +
                              encode_frame(kOpContinuation, c.substr(10), options(true, true))));
  EXPECT_TRUE(closes_with(client, 1002));
}

TEST_F(DeflateServer, Rsv1OnControlFramesIs1002) {
  for (uint8_t opcode : {kOpPing, kOpPong, kOpClose}) {
    WsTestClient client;
    ASSERT_TRUE(connect(client).has_value());
    ASSERT_TRUE(client.send_frame(opcode, "", options(true, true)));
    EXPECT_TRUE(closes_with(client, 1002)) << int(opcode);
  }
}

TEST_F(DeflateServer, InvalidCompressedDataIs1007) {
  for (std::string bad : {std::string("\xff\xff\xff", 3), std::string("\x00\x05\x00\x00\x00", 5)}) {
    WsTestClient client;
    ASSERT_TRUE(connect(client).has_value());
    ASSERT_TRUE(client.send_frame(kOpBinary, bad, options(true, true)));
    EXPECT_TRUE(closes_with(client, 1007));
  }
}

TEST_F(DeflateServer, CompressedTextMustInflateToUtf8) {
  WsTestClient client;
  ASSERT_TRUE(connect(client).has_value());
  ASSERT_TRUE(client.send_raw(compressed_message(kOpText, json_payload(300) + "\xc3\x28")));
  EXPECT_TRUE(closes_with(client, 1007));
  // The same bytes as binary are fine.
  WsTestClient binary;
  ASSERT_TRUE(connect(binary).has_value());
  const std::string payload = json_payload(300) + "\xc3\x28";
  ASSERT_TRUE(binary.send_raw(compressed_message(kOpBinary, payload)));
  Received m = binary.recv_message();
  ASSERT_TRUE(m.ok()) << m.error;
  EXPECT_TRUE(m.payload == payload);
}

TEST(DeflateLimits, ZipBombGets1009Quickly) {
  ParleydProcess server({"--max-message-size", "64K"});
  ASSERT_TRUE(server.ok()) << server.error();
  // 32 MiB of one byte deflate to ~32 KB: under the limit as sent, 512 times over it inflated.
  const std::string bomb = peer_deflate(std::string(32u << 20, 'A'));  // zlib level 9
  ASSERT_LT(bomb.size(), 65536u);
  for (size_t fragment : {0u, 4096u}) {
    WsTestClient client;
    ASSERT_TRUE(client.connect(kHost, server.port(), "/echo", {"Sec-WebSocket-Extensions: permessage-deflate"}, kTimeout));
    client.set_deflate(true);
    const auto start = Clock::now();
    ASSERT_TRUE(client.send_raw(frames_of(kOpBinary, bomb, fragment), kTimeout));
    EXPECT_TRUE(closes_with(client, 1009)) << fragment;
    EXPECT_LT(Clock::now() - start, std::chrono::seconds(3)) << fragment;
  }
  // Just under the limit is fine.
  WsTestClient ok;
  ASSERT_TRUE(ok.connect(kHost, server.port(), "/echo", {"Sec-WebSocket-Extensions: permessage-deflate"}, kTimeout));
  ok.set_deflate(true);
  const std::string fits(65536, 'B');
  ASSERT_TRUE(ok.send_raw(compressed_message(kOpBinary, fits)));
  Received m = ok.recv_message();
  ASSERT_TRUE(m.ok()) << m.error;
  EXPECT_TRUE(m.payload == fits);
  std::string one_more = fits + "B";
  ASSERT_TRUE(ok.send_raw(compressed_message(kOpBinary, one_more)));
  EXPECT_TRUE(closes_with(ok, 1009));
}

// ---------------------------------------------------------------------------------------------
// Broadcast: one compressed frame for every deflate subscriber, plain for the others.

std::string field(std::string_view json, std::string_view name) {
  const std::string key = "\"" + std::string(name) + "\":\"";
  const size_t at = json.find(key);
  if (at == std::string_view::npos) return "";
  const size_t end = json.find('"', at + key.size());
  return std::string(json.substr(at + key.size(), end - at - key.size()));
}

Received next_of_type(WsTestClient& client, std::string_view type) {
  for (int i = 0; i < 20; ++i) {
    Received m = client.recv_message(kTimeout);
    if (!m.ok() || field(m.payload, "type") == type) return m;
  }
  return {};
}

TEST_F(DeflateServer, ChatBroadcastReachesDeflateAndPlainSubscribers) {
  WsTestClient zipped1, zipped2, plain, sender;
  ASSERT_TRUE(connect(zipped1, "permessage-deflate", "/chat").has_value());
  ASSERT_TRUE(connect(zipped2, "permessage-deflate; server_max_window_bits=9", "/chat").has_value());
  ASSERT_FALSE(connect(plain, "", "/chat").has_value());
  ASSERT_TRUE(connect(sender, kDefaultOffer, "/chat").has_value());
  int n = 0;
  for (WsTestClient* c : {&zipped1, &zipped2, &plain, &sender}) {
    const std::string name = "user" + std::to_string(n++);
    ASSERT_TRUE(c->send_frame(kOpText, R"({"type":"hello","name":")" + name + R"("})"));
    ASSERT_TRUE(next_of_type(*c, "welcome").ok());
    ASSERT_TRUE(c->send_frame(kOpText, R"({"type":"join","room":"deflate"})"));
    ASSERT_TRUE(next_of_type(*c, "history").ok());
  }
  const std::string text(400, 'z');
  // The sender compresses its own message too.
  ASSERT_TRUE(sender.send_raw(compressed_message(kOpText, R"({"type":"msg","room":"deflate","text":")" + text + R"("})")));
  Received p = next_of_type(plain, "msg");
  ASSERT_TRUE(p.ok()) << p.error;
  EXPECT_FALSE(p.rsv1);
  EXPECT_NE(p.payload.find(text), std::string::npos);
  for (WsTestClient* c : {&zipped1, &zipped2}) {
    Received z = next_of_type(*c, "msg");
    ASSERT_TRUE(z.ok()) << z.error;
    EXPECT_TRUE(z.rsv1);
    EXPECT_EQ(z.payload, p.payload);
  }
}

}  // namespace
}  // namespace parley_test
