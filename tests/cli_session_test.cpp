// tools/cli_session.h: parley-cli's client state machine against canned server bytes: the
// upgrade request, the 101 check (RFC 6455 4.1), message gathering at every split point, pings,
// both close handshakes, and failing the connection on protocol errors.
#include "tools/cli_session.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "protocol/close_code.h"
#include "protocol/frame_header.h"
#include "protocol/handshake.h"

namespace {

using protocol::Opcode;
using tools::cli::ClientSession;
using tools::cli::SessionConfig;
using tools::cli::SessionEvent;
using tools::cli::SessionPhase;
using Kind = SessionEvent::Kind;

// Deterministic "random" bytes: 1, 2, 3, ...
tools::cli::RandomBytes counting_bytes() {
  return [n = uint8_t{0}](uint8_t* out, size_t len) mutable {
    for (size_t i = 0; i < len; ++i) out[i] = ++n;
  };
}

SessionConfig config(std::string subprotocol = {}) {
  SessionConfig c;
  c.host = "127.0.0.1:8080";
  c.path = "/echo?x=1";
  c.subprotocol = std::move(subprotocol);
  c.max_message_size = 1 << 16;
  return c;
}

std::string header_value(const std::string& request, const std::string& name) {
  const size_t at = request.find("\r\n" + name + ": ");
  if (at == std::string::npos) return "<absent>";
  const size_t start = at + name.size() + 4;
  return request.substr(start, request.find("\r\n", start) - start);
}

std::string response_to(const std::string& request, std::string_view subprotocol = {}) {
  char buffer[512];
  const size_t n = protocol::write_upgrade_response(buffer, sizeof buffer, header_value(request, "Sec-WebSocket-Key"),
                                                    subprotocol);
  return std::string(buffer, n);
}

std::string server_frame(Opcode opcode, std::string_view payload, bool fin = true) {
  uint8_t header[protocol::kMaxFrameHeaderLength];
  const size_t n = protocol::encode_frame_header(header, opcode, payload.size(), fin);
  return std::string(reinterpret_cast<char*>(header), n) + std::string(payload);
}

struct ClientFrame {
  Opcode opcode;
  std::string payload;
};

// Decodes the frames the client wrote, checking each is masked (RFC 6455 5.3).
std::vector<ClientFrame> client_frames(std::string bytes) {
  std::vector<ClientFrame> frames;
  size_t pos = 0;
  while (pos < bytes.size()) {
    auto* data = reinterpret_cast<uint8_t*>(bytes.data()) + pos;
    protocol::HeaderParse parse = protocol::parse_frame_header(data, bytes.size() - pos, protocol::Sender::kClient);
    EXPECT_EQ(parse.status, protocol::ParseStatus::kOk);
    if (parse.status != protocol::ParseStatus::kOk) break;
    EXPECT_TRUE(parse.header.masked);
    uint8_t* payload = data + parse.header.header_length;
    protocol::unmask(payload, parse.header.payload_length, parse.header.mask_key, 0);
    frames.push_back({parse.header.opcode, std::string(reinterpret_cast<char*>(payload), parse.header.payload_length)});
    pos += parse.header.header_length + parse.header.payload_length;
  }
  return frames;
}

std::string close_payload(uint16_t code, std::string_view reason) {
  uint8_t payload[protocol::kMaxControlPayload];
  const size_t n = protocol::encode_close_payload(payload, code, reason);
  return std::string(reinterpret_cast<char*>(payload), n);
}

struct Harness {
  explicit Harness(SessionConfig c = config()) : session(std::move(c), counting_bytes()) { session.start(request); }

  void feed(std::string bytes) {
    session.feed(reinterpret_cast<uint8_t*>(bytes.data()), bytes.size(), out, events);
  }
  void open() {
    feed(response_to(request));
    ASSERT_EQ(events.size(), 1u);
    ASSERT_EQ(events[0].kind, Kind::kOpen);
    events.clear();
  }

  ClientSession session;
  std::string request;
  std::string out;
  std::vector<SessionEvent> events;
};

TEST(CliSession, UpgradeRequest) {
  SessionConfig c = config("chat.v1");
  c.headers = {{"Authorization", "Bearer abc"}, {"X-Trace", "1"}};
  Harness h(c);
  EXPECT_TRUE(h.request.starts_with("GET /echo?x=1 HTTP/1.1\r\n")) << h.request;
  EXPECT_TRUE(h.request.ends_with("\r\n\r\n"));
  EXPECT_EQ(header_value(h.request, "Host"), "127.0.0.1:8080");
  EXPECT_EQ(header_value(h.request, "Upgrade"), "websocket");
  EXPECT_EQ(header_value(h.request, "Connection"), "Upgrade");
  EXPECT_EQ(header_value(h.request, "Sec-WebSocket-Version"), "13");
  EXPECT_EQ(header_value(h.request, "Sec-WebSocket-Protocol"), "chat.v1");
  EXPECT_EQ(header_value(h.request, "Authorization"), "Bearer abc");
  EXPECT_EQ(header_value(h.request, "X-Trace"), "1");
  // base64 of the 16 "random" bytes 1..16.
  EXPECT_EQ(header_value(h.request, "Sec-WebSocket-Key"), "AQIDBAUGBwgJCgsMDQ4PEA==");
  // A new attempt gets a new nonce.
  std::string again;
  h.session.start(again);
  EXPECT_NE(header_value(again, "Sec-WebSocket-Key"), header_value(h.request, "Sec-WebSocket-Key"));
}

TEST(CliSession, AHostHeaderReplacesTheDefault) {
  SessionConfig c = config();
  c.headers = {{"Host", "example.com"}};
  Harness h(c);
  EXPECT_EQ(header_value(h.request, "Host"), "example.com");
  EXPECT_EQ(h.request.find("127.0.0.1:8080"), std::string::npos);
}

TEST(CliSession, OpensAndReadsFramesThatCameWithThe101) {
  Harness h;
  h.feed(response_to(h.request) + server_frame(Opcode::kText, "hello") + server_frame(Opcode::kBinary, "\x01\x02"));
  ASSERT_EQ(h.events.size(), 3u);
  EXPECT_EQ(h.events[0].kind, Kind::kOpen);
  EXPECT_EQ(h.events[1].kind, Kind::kText);
  EXPECT_EQ(h.events[1].data, "hello");
  EXPECT_EQ(h.events[2].kind, Kind::kBinary);
  EXPECT_EQ(h.events[2].data, "\x01\x02");
  EXPECT_EQ(h.session.phase(), SessionPhase::kOpen);
  EXPECT_TRUE(h.out.empty());
}

TEST(CliSession, SameResultAtEverySplitPoint) {
  const std::string bytes_template = server_frame(Opcode::kText, "frag", false) + server_frame(Opcode::kPing, "p") +
                                     server_frame(Opcode::kContinuation, "mented \xc3\xa9", true) +
                                     server_frame(Opcode::kText, std::string(300, 'x'));
  for (size_t split = 0; split <= 400; ++split) {
    Harness h;
    const std::string all = response_to(h.request) + bytes_template;
    if (split > all.size()) break;
    h.feed(all.substr(0, split));
    h.feed(all.substr(split));
    ASSERT_EQ(h.events.size(), 3u) << "split " << split;
    EXPECT_EQ(h.events[0].kind, Kind::kOpen);
    EXPECT_EQ(h.events[1].data, "fragmented \xc3\xa9") << "split " << split;
    EXPECT_EQ(h.events[2].data, std::string(300, 'x'));
    std::vector<ClientFrame> frames = client_frames(h.out);
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0].opcode, Opcode::kPong);
    EXPECT_EQ(frames[0].payload, "p");
  }
}

TEST(CliSession, OneByteAtATime) {
  Harness h;
  const std::string all = response_to(h.request) + server_frame(Opcode::kText, "abc") + server_frame(Opcode::kText, "");
  for (char c : all) h.feed(std::string(1, c));
  ASSERT_EQ(h.events.size(), 3u);
  EXPECT_EQ(h.events[1].data, "abc");
  EXPECT_EQ(h.events[2].kind, Kind::kText);
  EXPECT_EQ(h.events[2].data, "");
}

TEST(CliSession, SendsMaskedTextAndPing) {
  Harness h;
  std::string before;
  EXPECT_FALSE(h.session.send_text("early", before));  // not open yet
  EXPECT_TRUE(before.empty());
  h.open();
  EXPECT_TRUE(h.session.send_text("hi \xc3\xa9", h.out));
  EXPECT_TRUE(h.session.send_ping("are you there", h.out));
  EXPECT_FALSE(h.session.send_ping(std::string(126, 'p'), h.out));
  std::vector<ClientFrame> frames = client_frames(h.out);
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].opcode, Opcode::kText);
  EXPECT_EQ(frames[0].payload, "hi \xc3\xa9");
  EXPECT_EQ(frames[1].opcode, Opcode::kPing);
  EXPECT_EQ(frames[1].payload, "are you there");
}

TEST(CliSession, ServerInitiatedCloseIsAnswered) {
  Harness h;
  h.open();
  h.feed(server_frame(Opcode::kClose, close_payload(1001, "server shutting down")) +
         server_frame(Opcode::kText, "after close: ignored"));
  ASSERT_EQ(h.events.size(), 1u);
  EXPECT_EQ(h.events[0].kind, Kind::kClose);
  EXPECT_EQ(h.events[0].code, 1001);
  EXPECT_EQ(h.events[0].data, "server shutting down");
  EXPECT_EQ(h.session.phase(), SessionPhase::kClosed);
  EXPECT_FALSE(h.session.closed_by_us());
  std::vector<ClientFrame> frames = client_frames(h.out);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].opcode, Opcode::kClose);
  EXPECT_EQ(frames[0].payload, close_payload(1001, ""));  // RFC 6455 5.5.1: the code echoed
  h.events.clear();
  h.session.on_end_of_stream(h.events);
  EXPECT_TRUE(h.events.empty());  // the close handshake had finished: not a drop
}

TEST(CliSession, EmptyServerCloseGetsAnEmptyReply) {
  Harness h;
  h.open();
  h.feed(server_frame(Opcode::kClose, ""));
  ASSERT_EQ(h.events.size(), 1u);
  EXPECT_EQ(h.events[0].code, protocol::kCloseNoStatus);
  std::vector<ClientFrame> frames = client_frames(h.out);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].payload, "");
}

TEST(CliSession, ClientInitiatedClose) {
  Harness h;
  h.open();
  EXPECT_TRUE(h.session.send_close(1000, "bye", h.out));
  EXPECT_EQ(h.session.phase(), SessionPhase::kClosing);
  EXPECT_FALSE(h.session.send_text("too late", h.out));
  EXPECT_FALSE(h.session.send_close(1000, {}, h.out));
  std::vector<ClientFrame> frames = client_frames(h.out);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].opcode, Opcode::kClose);
  EXPECT_EQ(frames[0].payload, close_payload(1000, "bye"));
  h.out.clear();
  // Messages sent before the server saw our close still arrive; pings are no longer answered.
  h.feed(server_frame(Opcode::kText, "late echo") + server_frame(Opcode::kPing, "") +
         server_frame(Opcode::kClose, close_payload(1000, "")));
  ASSERT_EQ(h.events.size(), 2u);
  EXPECT_EQ(h.events[0].data, "late echo");
  EXPECT_EQ(h.events[1].kind, Kind::kClose);
  EXPECT_EQ(h.events[1].code, 1000);
  EXPECT_TRUE(h.out.empty());  // no reply to a close answering ours
  EXPECT_EQ(h.session.phase(), SessionPhase::kClosed);
  EXPECT_TRUE(h.session.closed_by_us());
}

TEST(CliSession, NoCloseReplyIsADropThatWeStarted) {
  Harness h;
  h.open();
  h.session.send_close(1000, {}, h.out);
  h.session.on_end_of_stream(h.events);
  ASSERT_EQ(h.events.size(), 1u);
  EXPECT_EQ(h.events[0].kind, Kind::kDropped);
  EXPECT_TRUE(h.session.closed_by_us());
}

TEST(CliSession, LostConnectionIsADrop) {
  Harness h;
  h.open();
  h.session.on_end_of_stream(h.events);
  ASSERT_EQ(h.events.size(), 1u);
  EXPECT_EQ(h.events[0].kind, Kind::kDropped);
  EXPECT_NE(h.events[0].data.find("lost"), std::string::npos);
  EXPECT_EQ(h.session.phase(), SessionPhase::kFailed);
}

TEST(CliSession, RefusedHandshakeReportsStatusAndBody) {
  Harness h;
  h.feed("HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found");
  ASSERT_EQ(h.events.size(), 1u);
  EXPECT_EQ(h.events[0].kind, Kind::kFailed);
  EXPECT_EQ(h.events[0].code, 404);
  EXPECT_EQ(h.events[0].data, "handshake failed: HTTP 404 Not Found: not found");
  EXPECT_EQ(h.session.phase(), SessionPhase::kFailed);
}

TEST(CliSession, HandshakeChecks) {
  struct Case {
    const char* name;
    std::string (*mutate)(std::string);
    const char* why;
  };
  const Case cases[] = {
      {"wrong accept", [](std::string r) { return r.replace(r.find("Accept: ") + 8, 4, "AAAA"); },
       "wrong Sec-WebSocket-Accept"},
      {"no upgrade", [](std::string r) { return r.replace(r.find("Upgrade: websocket"), 18, "Upgrade: h2c"); },
       "no Upgrade: websocket"},
      {"no connection", [](std::string r) { return r.replace(r.find("Connection: Upgrade"), 19, "Connection: close"); },
       "no Connection: Upgrade"},
      {"extension", [](std::string r) { return r.insert(r.size() - 2, "Sec-WebSocket-Extensions: permessage-deflate\r\n"); },
       "extension"},
      {"subprotocol not offered", [](std::string r) { return r.insert(r.size() - 2, "Sec-WebSocket-Protocol: x\r\n"); },
       "subprotocol"},
      {"garbage", [](std::string) { return std::string("SSH-2.0-OpenSSH\r\n\r\n"); }, "not an HTTP response"},
  };
  for (const Case& c : cases) {
    Harness h;
    h.feed(c.mutate(response_to(h.request)));
    ASSERT_EQ(h.events.size(), 1u) << c.name;
    EXPECT_EQ(h.events[0].kind, Kind::kFailed) << c.name;
    EXPECT_EQ(h.events[0].code, 0) << c.name;
    EXPECT_NE(h.events[0].data.find(c.why), std::string::npos) << c.name << ": " << h.events[0].data;
  }
}

TEST(CliSession, HeaderNamesAreCaseInsensitive) {
  Harness h;
  std::string response = response_to(h.request);
  for (const char* name : {"Upgrade:", "Connection:", "Sec-WebSocket-Accept:"}) {
    const size_t at = response.find(name);
    for (size_t i = at; response[i] != ':'; ++i) response[i] = static_cast<char>(std::tolower(response[i]));
  }
  h.feed(response);
  ASSERT_EQ(h.events.size(), 1u);
  EXPECT_EQ(h.events[0].kind, Kind::kOpen);
}

TEST(CliSession, OfferedSubprotocolMayBeSelectedOrDeclined) {
  {
    Harness h(config("chat.v1"));
    h.feed(response_to(h.request, "chat.v1"));
    ASSERT_EQ(h.events.size(), 1u);
    EXPECT_EQ(h.events[0].kind, Kind::kOpen);
    EXPECT_EQ(h.session.subprotocol(), "chat.v1");
  }
  {
    Harness h(config("chat.v1"));
    h.feed(response_to(h.request));
    EXPECT_EQ(h.events[0].kind, Kind::kOpen);
    EXPECT_EQ(h.session.subprotocol(), "");
  }
  {
    Harness h(config("chat.v1"));
    h.feed(response_to(h.request, "chat.v2"));
    EXPECT_EQ(h.events[0].kind, Kind::kFailed);
  }
}

TEST(CliSession, OversizedResponseHeadFails) {
  Harness h;
  h.feed("HTTP/1.1 101 Switching Protocols\r\nX-Pad: " + std::string(9000, 'a'));
  ASSERT_EQ(h.events.size(), 1u);
  EXPECT_EQ(h.events[0].kind, Kind::kFailed);
  EXPECT_NE(h.events[0].data.find("8 KiB"), std::string::npos);
}

TEST(CliSession, EarlyEndOfStreamDuringHandshake) {
  Harness h;
  h.feed("HTTP/1.1 101 Sw");
  h.session.on_end_of_stream(h.events);
  ASSERT_EQ(h.events.size(), 1u);
  EXPECT_EQ(h.events[0].kind, Kind::kDropped);
  EXPECT_NE(h.events[0].data.find("during the handshake"), std::string::npos);
}

TEST(CliSession, ProtocolErrorsFailTheConnectionWithTheRightCode) {
  struct Case {
    const char* name;
    std::string bytes;
    uint16_t code;
  };
  std::string masked = server_frame(Opcode::kText, "x");
  masked[1] = static_cast<char>(masked[1] | 0x80);
  masked.insert(2, "\0\0\0\0", 4);
  const Case cases[] = {
      {"masked server frame", masked, 1002},
      {"invalid UTF-8 text", server_frame(Opcode::kText, "\xff"), 1007},
      {"continuation without a message", server_frame(Opcode::kContinuation, "x"), 1002},
      {"too big", server_frame(Opcode::kBinary, std::string((1 << 16) + 1, 'b')), 1009},
      {"bad close code", server_frame(Opcode::kClose, close_payload(1000, "").replace(0, 2, "\x03\xed")), 1002},
  };
  for (const Case& c : cases) {
    Harness h;
    h.open();
    h.feed(c.bytes);
    ASSERT_EQ(h.events.size(), 1u) << c.name;
    EXPECT_EQ(h.events[0].kind, Kind::kFailed) << c.name;
    EXPECT_NE(h.events[0].data.find("protocol error"), std::string::npos) << c.name;
    EXPECT_EQ(h.session.phase(), SessionPhase::kFailed);
    std::vector<ClientFrame> frames = client_frames(h.out);
    ASSERT_EQ(frames.size(), 1u) << c.name;
    EXPECT_EQ(frames[0].opcode, Opcode::kClose);
    ASSERT_GE(frames[0].payload.size(), 2u);
    EXPECT_EQ(protocol::close_payload_code(reinterpret_cast<const uint8_t*>(frames[0].payload.data()),
                                           frames[0].payload.size()),
              c.code)
        << c.name;
    // Nothing more is read or sent.
    h.events.clear();
    h.out.clear();
    h.feed(server_frame(Opcode::kText, "x"));
    EXPECT_TRUE(h.events.empty());
    EXPECT_TRUE(h.out.empty());
  }
}

}  // namespace
