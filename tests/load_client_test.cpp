#include "tools/load_client.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "chat/chat_codec.h"
#include "protocol/frame_header.h"
#include "protocol/handshake.h"
#include "protocol/http_request.h"
#include "tools/load_chat.h"

namespace tools {
namespace {

using protocol::Opcode;

std::vector<uint8_t> server_frame(Opcode opcode, std::span<const uint8_t> payload, bool fin = true) {
  std::vector<uint8_t> out(protocol::kMaxFrameHeaderLength);
  out.resize(protocol::encode_frame_header(out.data(), opcode, payload.size(), fin));
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

std::vector<uint8_t> server_frame(Opcode opcode, std::string_view payload, bool fin = true) {
  return server_frame(opcode, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(payload.data()), payload.size()),
                      fin);
}

void append(std::vector<uint8_t>& to, const std::vector<uint8_t>& bytes) { to.insert(to.end(), bytes.begin(), bytes.end()); }
void append(std::vector<uint8_t>& to, std::string_view text) { to.insert(to.end(), text.begin(), text.end()); }

struct ClientFrame {
  Opcode opcode;
  std::vector<uint8_t> payload;
};

// What a server would see: the client's masked frames, unmasked.
std::vector<ClientFrame> parse_client_frames(const uint8_t* data, size_t size) {
  std::vector<ClientFrame> frames;
  while (size != 0) {
    const protocol::HeaderParse parse = protocol::parse_frame_header(data, size, protocol::Sender::kClient);
    EXPECT_EQ(parse.status, protocol::ParseStatus::kOk);
    if (parse.status != protocol::ParseStatus::kOk) break;
    EXPECT_TRUE(parse.header.fin);
    const size_t total = parse.header.header_length + parse.header.payload_length;
    EXPECT_LE(total, size);
    ClientFrame frame{parse.header.opcode, std::vector<uint8_t>(data + parse.header.header_length, data + total)};
    protocol::unmask(frame.payload.data(), frame.payload.size(), parse.header.mask_key, 0);
    frames.push_back(std::move(frame));
    data += total;
    size -= total;
  }
  return frames;
}

// ---- EchoPayload ----

TEST(EchoPayload, MatchesOnlyItsOwnSequence) {
  for (bool binary : {false, true}) {
    for (size_t size : {0, 1, 5, 8, 11, 20, 1000}) {
      EchoPayload payload(size, binary);
      std::vector<uint8_t> bytes(size);
      payload.write(123456789, bytes.data());
      EXPECT_TRUE(payload.matches(123456789, bytes)) << size;
      if (size >= 2) {
        EXPECT_FALSE(payload.matches(123456788, bytes)) << size;
      }
      if (size > 0) {
        bytes.back() ^= 1;
        EXPECT_FALSE(payload.matches(123456789, bytes)) << size;
      }
      std::vector<uint8_t> longer(size + 1);
      payload.write(7, longer.data());
      EXPECT_FALSE(payload.matches(7, longer));
    }
  }
}

TEST(EchoPayload, TextIsPrintableAscii) {
  EchoPayload payload(64, false);
  EXPECT_EQ(payload.opcode(), Opcode::kText);
  std::vector<uint8_t> bytes(64);
  for (uint64_t seq : {uint64_t{0}, uint64_t{63}, UINT64_MAX}) {
    payload.write(seq, bytes.data());
    for (uint8_t b : bytes) EXPECT_TRUE(b >= 0x21 && b < 0x7f) << int(b);
  }
}

// ---- handshake ----

TEST(UpgradeRequest, IsAValidUpgradeForTheServerParser) {
  char buffer[512];
  const size_t n = write_upgrade_request(buffer, sizeof buffer, "/echo?x=1", "127.0.0.1:9000", "dGhlIHNhbXBsZSBub25jZQ==");
  ASSERT_GT(n, 0u);
  protocol::HttpRequest request;
  ASSERT_EQ(protocol::parse_http_request(std::string_view(buffer, n), request), protocol::HttpParseStatus::kComplete);
  EXPECT_EQ(request.head_length, n);
  EXPECT_EQ(request.target, "/echo?x=1");
  const protocol::UpgradeCheck check = protocol::check_upgrade_request(request);
  EXPECT_EQ(check.status, 101) << check.reason;
  EXPECT_EQ(check.key, "dGhlIHNhbXBsZSBub25jZQ==");
  EXPECT_EQ(write_upgrade_request(buffer, 20, "/", "h", "k"), 0u);
}

constexpr std::string_view kAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

TEST(UpgradeResponse, AcceptsTheRfcExample) {
  EXPECT_EQ(check_upgrade_response("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                   "Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
                                   kAccept),
            "");
  // Header names and the Upgrade/Connection values are case-insensitive; Connection is a list.
  EXPECT_EQ(check_upgrade_response("HTTP/1.1 101\r\nupgrade: WebSocket\r\nCONNECTION: keep-alive, upgrade\r\n"
                                   "sec-websocket-accept:s3pPLMBiTxaQ9kYGzzhZRbK+xOo=  \r\nServer: x\r\n\r\n",
                                   kAccept),
            "");
}

TEST(UpgradeResponse, RejectsWhatRfc6455Section41Rejects) {
  const std::string good_headers =
      "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n";
  EXPECT_NE(check_upgrade_response("HTTP/1.1 200 OK\r\n" + good_headers + "\r\n", kAccept), "");
  EXPECT_NE(check_upgrade_response("HTTP/1.1 1010 X\r\n" + good_headers + "\r\n", kAccept), "");
  EXPECT_NE(check_upgrade_response("HTTP/1.1 101 OK\r\nConnection: Upgrade\r\n"
                                   "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
                                   kAccept),
            "");
  EXPECT_NE(check_upgrade_response("HTTP/1.1 101 OK\r\nUpgrade: websocket\r\n"
                                   "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
                                   kAccept),
            "");
  EXPECT_NE(check_upgrade_response("HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", kAccept), "");
  EXPECT_NE(check_upgrade_response("HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                   "Sec-WebSocket-Accept: AAAPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
                                   kAccept),
            "");
  EXPECT_NE(check_upgrade_response("HTTP/1.1 101 OK\r\n" + good_headers + "Sec-WebSocket-Extensions: x\r\n\r\n", kAccept),
            "");
  EXPECT_NE(check_upgrade_response("HTTP/1.1 101 OK\r\n" + good_headers + "Sec-WebSocket-Protocol: chat\r\n\r\n", kAccept),
            "");
  EXPECT_NE(check_upgrade_response("HTTP/1.1 101 OK\r\nbroken header\r\n\r\n", kAccept), "");
}

// ---- ServerFrameReader ----

struct Parsed {
  Opcode opcode;
  bool fin;
  std::vector<uint8_t> payload;
  bool operator==(const Parsed&) const = default;
};

// Feeds `chunks` one after the other, collecting every frame (copied: payloads are transient).
std::vector<Parsed> read_all(ServerFrameReader& reader, const std::vector<std::vector<uint8_t>>& chunks,
                             bool* error = nullptr) {
  std::vector<Parsed> out;
  for (std::vector<uint8_t> chunk : chunks) {
    std::span<uint8_t> data(chunk);
    protocol::FrameHeader header;
    std::span<uint8_t> payload;
    for (;;) {
      const ServerFrameReader::Status status = reader.next(data, header, payload);
      if (status == ServerFrameReader::Status::kNeedMore) {
        EXPECT_TRUE(data.empty());
        break;
      }
      if (status == ServerFrameReader::Status::kError) {
        if (error) *error = true;
        return out;
      }
      out.push_back({header.opcode, header.fin, std::vector<uint8_t>(payload.begin(), payload.end())});
    }
  }
  return out;
}

std::vector<uint8_t> pattern(size_t size, uint8_t seed) {
  std::vector<uint8_t> out(size);
  for (size_t i = 0; i < size; ++i) out[i] = static_cast<uint8_t>(seed + i * 7);
  return out;
}

TEST(ServerFrameReader, FramesSplitAtEveryByte) {
  // Every length encoding (7-bit, 16-bit, 64-bit), empty frames, control frames, fragments.
  std::vector<Parsed> expected = {
      {Opcode::kText, true, pattern(5, 1)},        {Opcode::kBinary, true, {}},
      {Opcode::kPing, true, pattern(125, 2)},      {Opcode::kBinary, true, pattern(126, 3)},
      {Opcode::kText, false, pattern(3, 4)},       {Opcode::kContinuation, true, pattern(300, 5)},
      {Opcode::kBinary, true, pattern(65536, 6)},  {Opcode::kClose, true, {0x03, 0xe8}},
  };
  std::vector<uint8_t> stream;
  for (const Parsed& f : expected) append(stream, server_frame(f.opcode, f.payload, f.fin));

  for (size_t split = 0; split <= stream.size(); split += (split < 400 || split > stream.size() - 400) ? 1 : 97) {
    ServerFrameReader reader;
    const std::vector<std::vector<uint8_t>> chunks = {
        std::vector<uint8_t>(stream.begin(), stream.begin() + static_cast<ptrdiff_t>(split)),
        std::vector<uint8_t>(stream.begin() + static_cast<ptrdiff_t>(split), stream.end())};
    ASSERT_EQ(read_all(reader, chunks), expected) << "split at " << split;
    EXPECT_EQ(reader.buffered(), 0u);
  }
}

TEST(ServerFrameReader, OneByteAtATime) {
  std::vector<Parsed> expected = {{Opcode::kText, true, pattern(20, 1)},
                                  {Opcode::kBinary, true, pattern(1000, 2)},
                                  {Opcode::kPong, true, {}},
                                  {Opcode::kText, true, pattern(2, 3)}};
  std::vector<uint8_t> stream;
  for (const Parsed& f : expected) append(stream, server_frame(f.opcode, f.payload, f.fin));
  std::vector<std::vector<uint8_t>> chunks;
  for (uint8_t b : stream) chunks.push_back({b});
  ServerFrameReader reader;
  EXPECT_EQ(read_all(reader, chunks), expected);
}

TEST(ServerFrameReader, RejectsMaskedServerFrames) {
  const uint8_t key[4] = {1, 2, 3, 4};
  std::vector<uint8_t> frame(protocol::kMaxFrameHeaderLength);
  frame.resize(protocol::encode_masked_frame_header(frame.data(), Opcode::kText, 3, key));
  append(frame, "abc");
  for (size_t split = 0; split <= frame.size(); ++split) {
    ServerFrameReader reader;
    bool error = false;
    read_all(reader, {std::vector<uint8_t>(frame.begin(), frame.begin() + static_cast<ptrdiff_t>(split)),
                      std::vector<uint8_t>(frame.begin() + static_cast<ptrdiff_t>(split), frame.end())},
             &error);
    EXPECT_TRUE(error) << split;
    EXPECT_EQ(reader.error(), protocol::ProtocolError::kMaskedServerFrame);
  }
}

TEST(ServerFrameReader, EnforcesItsSizeLimit) {
  ServerFrameReader reader(100);
  bool error = false;
  read_all(reader, {server_frame(Opcode::kBinary, pattern(101, 0))}, &error);
  EXPECT_TRUE(error);
  EXPECT_EQ(reader.error(), protocol::ProtocolError::kMessageTooBig);
}

// ---- LoadClient ----

class LoadClientTest : public ::testing::Test {
 protected:
  static constexpr size_t kRing = 64;

  LoadClientTest() : payload_(20, false), rng_(7) {
    context_.payload = &payload_;
    context_.result = &result_;
    context_.rng = &rng_;
    context_.path = "/echo";
    context_.host = "127.0.0.1:9";
    context_.quiet = true;
    client_.attach_ring(ring_.data(), kRing - 1);
  }

  // Starts the client and returns the server's 101 for its key.
  std::string start_and_answer(uint64_t now) {
    ByteBuffer out;
    client_.start(context_, now, out);
    protocol::HttpRequest request;
    const std::string text(reinterpret_cast<const char*>(out.data()), out.size());
    EXPECT_EQ(protocol::parse_http_request(text, request), protocol::HttpParseStatus::kComplete);
    const protocol::UpgradeCheck check = protocol::check_upgrade_request(request);
    EXPECT_EQ(check.status, 101);
    char response[512];
    const size_t n = protocol::write_upgrade_response(response, sizeof response, check.key);
    return std::string(response, n);
  }

  // The server's echo of every message the client wrote to `out`.
  std::vector<uint8_t> echo_of(const ByteBuffer& out) {
    std::vector<uint8_t> stream;
    for (const ClientFrame& f : parse_client_frames(out.data(), out.size())) append(stream, server_frame(f.opcode, f.payload));
    return stream;
  }

  EchoPayload payload_;
  FastRng rng_;
  LoadResult result_;
  ClientContext context_;
  std::vector<uint64_t> ring_ = std::vector<uint64_t>(kRing);
  LoadClient client_;
};

TEST_F(LoadClientTest, EchoExchangeSplitAtEveryByte) {
  // The server side of a session (101, then echoes with a ping in between), split in two at every
  // byte. The echoes can only follow the messages, which go out once the 101 is in, so the head
  // and the frames are fed apart; each is split at every byte.
  const size_t kMessages = 5;
  std::vector<uint8_t> frames;
  for (size_t i = 0; i < kMessages; ++i) {
    std::vector<uint8_t> p(payload_.size());
    payload_.write(i, p.data());
    append(frames, server_frame(Opcode::kText, p));
    if (i == 2) append(frames, server_frame(Opcode::kPing, "hb"));
  }
  const size_t head_size = start_and_answer(0).size();
  for (size_t split = 0; split <= head_size + frames.size(); ++split) {
    result_ = LoadResult();
    LoadClient client;
    client.attach_ring(ring_.data(), kRing - 1);
    ByteBuffer out;
    client.start(context_, 1'000, out);
    protocol::HttpRequest request;
    const std::string text(reinterpret_cast<const char*>(out.data()), out.size());
    ASSERT_EQ(protocol::parse_http_request(text, request), protocol::HttpParseStatus::kComplete);
    char buffer[512];
    std::string response(buffer, protocol::write_upgrade_response(buffer, sizeof buffer,
                                                                  protocol::check_upgrade_request(request).key));
    ASSERT_EQ(response.size(), head_size);
    out.clear();

    uint32_t echoes_seen = 0;
    uint32_t upgrades = 0;
    auto feed = [&](std::vector<uint8_t> piece, uint64_t now) {
      if (piece.empty()) return;
      const LoadClient::Feed f = client.feed(context_, piece, now, out);
      ASSERT_EQ(f.status, LoadClient::Status::kOk) << "split " << split;
      upgrades += f.upgraded;
      echoes_seen += f.echoes;
    };
    const size_t head_split = std::min(split, head_size);
    feed(std::vector<uint8_t>(response.begin(), response.begin() + static_cast<ptrdiff_t>(head_split)), 1'500);
    feed(std::vector<uint8_t>(response.begin() + static_cast<ptrdiff_t>(head_split), response.end()), 1'500);
    ASSERT_EQ(upgrades, 1u) << "split " << split;
    for (size_t i = 0; i < kMessages; ++i) client.send_message(context_, 2'000, out);
    const size_t frame_split = split - head_split;
    feed(std::vector<uint8_t>(frames.begin(), frames.begin() + static_cast<ptrdiff_t>(frame_split)), 10'000);
    feed(std::vector<uint8_t>(frames.begin() + static_cast<ptrdiff_t>(frame_split), frames.end()), 10'000);

    EXPECT_EQ(echoes_seen, kMessages) << "split " << split;
    EXPECT_EQ(client.in_flight(), 0u);
    EXPECT_EQ(result_.counters.sent, kMessages);
    EXPECT_EQ(result_.counters.received, kMessages);
    EXPECT_EQ(result_.counters.error_total(), 0u) << "split " << split;
    EXPECT_EQ(result_.message_latency.count(), kMessages);
    EXPECT_EQ(result_.message_latency.max(), 8'000u);
    EXPECT_EQ(result_.connect_latency.count(), 1u);
    EXPECT_EQ(result_.connect_latency.max(), 500u);
    // The pong answers the ping with the same data, after our messages.
    const std::vector<ClientFrame> written = parse_client_frames(out.data(), out.size());
    ASSERT_EQ(written.size(), kMessages + 1);
    EXPECT_EQ(written.back().opcode, Opcode::kPong);
    EXPECT_EQ(std::string(written.back().payload.begin(), written.back().payload.end()), "hb");
    client.abandon(context_);
  }
}

TEST_F(LoadClientTest, HeadAndFramesOneByteAtATime) {
  const std::string response = start_and_answer(0);
  ByteBuffer out;
  std::vector<uint8_t> head(response.begin(), response.end());
  for (size_t i = 0; i < head.size(); ++i) {
    std::vector<uint8_t> one{head[i]};
    const LoadClient::Feed f = client_.feed(context_, one, 5, out);
    ASSERT_EQ(f.status, LoadClient::Status::kOk);
    EXPECT_EQ(f.upgraded, i + 1 == head.size());
  }
  for (int i = 0; i < 3; ++i) client_.send_message(context_, 10, out);
  const std::vector<uint8_t> echoes = echo_of(out);
  uint32_t seen = 0;
  for (uint8_t b : echoes) {
    std::vector<uint8_t> one{b};
    seen += client_.feed(context_, one, 50, out).echoes;
  }
  EXPECT_EQ(seen, 3u);
  EXPECT_EQ(result_.message_latency.max(), 40u);
  EXPECT_EQ(result_.counters.error_total(), 0u);
}

TEST_F(LoadClientTest, FragmentedEchoIsReassembled) {
  std::string response = start_and_answer(0);
  ByteBuffer out;
  ASSERT_TRUE(client_.feed(context_, std::span<uint8_t>(reinterpret_cast<uint8_t*>(response.data()), response.size()), 0, out).upgraded);
  client_.send_message(context_, 0, out);
  const std::vector<ClientFrame> frames = parse_client_frames(out.data(), out.size());
  ASSERT_EQ(frames.size(), 1u);
  const std::vector<uint8_t>& p = frames[0].payload;
  std::vector<uint8_t> stream = server_frame(Opcode::kText, std::span<const uint8_t>(p.data(), 7), false);
  append(stream, server_frame(Opcode::kPing, ""));
  append(stream, server_frame(Opcode::kContinuation, std::span<const uint8_t>(p.data() + 7, p.size() - 7)));
  const LoadClient::Feed f = client_.feed(context_, stream, 1, out);
  EXPECT_EQ(f.status, LoadClient::Status::kOk);
  EXPECT_EQ(f.echoes, 1u);
  EXPECT_EQ(result_.counters.error_total(), 0u);
}

TEST_F(LoadClientTest, CorruptedEchoIsAMismatch) {
  std::string response = start_and_answer(0);
  ByteBuffer out;
  client_.feed(context_, std::span<uint8_t>(reinterpret_cast<uint8_t*>(response.data()), response.size()), 0, out);
  client_.send_message(context_, 0, out);
  client_.send_message(context_, 0, out);
  std::vector<ClientFrame> frames = parse_client_frames(out.data(), out.size());
  ASSERT_EQ(frames.size(), 2u);
  frames[0].payload[15] ^= 0x20;  // a byte of filler
  std::vector<uint8_t> stream = server_frame(Opcode::kText, frames[0].payload);
  append(stream, server_frame(Opcode::kBinary, frames[1].payload));  // wrong opcode
  append(stream, server_frame(Opcode::kText, frames[1].payload));    // nothing left in flight
  const LoadClient::Feed f = client_.feed(context_, stream, 1, out);
  EXPECT_EQ(f.status, LoadClient::Status::kOk);
  EXPECT_EQ(f.echoes, 2u);
  EXPECT_EQ(result_.counters.errors[static_cast<size_t>(ErrorKind::kMismatch)], 3u);
  EXPECT_EQ(result_.message_latency.count(), 0u);
}

TEST_F(LoadClientTest, WrongAcceptFailsTheHandshake) {
  start_and_answer(0);
  ByteBuffer out;
  std::string bad = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
  const LoadClient::Feed f = client_.feed(context_, std::span<uint8_t>(reinterpret_cast<uint8_t*>(bad.data()), bad.size()), 0, out);
  EXPECT_EQ(f.status, LoadClient::Status::kFailed);
  EXPECT_EQ(result_.counters.errors[static_cast<size_t>(ErrorKind::kHandshake)], 1u);
  EXPECT_EQ(result_.counters.open_connections, 0u);
}

TEST_F(LoadClientTest, NotFoundFailsTheHandshake) {
  start_and_answer(0);
  ByteBuffer out;
  std::string bad = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
  EXPECT_EQ(client_.feed(context_, std::span<uint8_t>(reinterpret_cast<uint8_t*>(bad.data()), bad.size()), 0, out).status,
            LoadClient::Status::kFailed);
  EXPECT_EQ(result_.counters.errors[static_cast<size_t>(ErrorKind::kHandshake)], 1u);
}

TEST_F(LoadClientTest, CloseHandshakeWeStart) {
  std::string response = start_and_answer(0);
  ByteBuffer out;
  client_.feed(context_, std::span<uint8_t>(reinterpret_cast<uint8_t*>(response.data()), response.size()), 0, out);
  EXPECT_EQ(result_.counters.open_connections, 1u);
  client_.send_close(context_, out);
  const std::vector<ClientFrame> frames = parse_client_frames(out.data(), out.size());
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].opcode, Opcode::kClose);
  EXPECT_EQ(frames[0].payload, (std::vector<uint8_t>{0x03, 0xe8}));
  std::vector<uint8_t> close = server_frame(Opcode::kClose, frames[0].payload);
  EXPECT_EQ(client_.feed(context_, close, 1, out).status, LoadClient::Status::kOk);
  EXPECT_EQ(client_.phase(), ClientPhase::kClosed);
  EXPECT_EQ(client_.on_end_of_stream(context_), LoadClient::Status::kDone);
  EXPECT_EQ(result_.counters.closes_clean, 1u);
  EXPECT_EQ(result_.counters.open_connections, 0u);
  EXPECT_EQ(result_.counters.error_total(), 0u);
}

TEST_F(LoadClientTest, CloseFromTheServerIsAnErrorAndIsAnswered) {
  std::string response = start_and_answer(0);
  ByteBuffer out;
  client_.feed(context_, std::span<uint8_t>(reinterpret_cast<uint8_t*>(response.data()), response.size()), 0, out);
  std::vector<uint8_t> close = server_frame(Opcode::kClose, std::vector<uint8_t>{0x03, 0xe9});
  EXPECT_EQ(client_.feed(context_, close, 1, out).status, LoadClient::Status::kOk);
  const std::vector<ClientFrame> frames = parse_client_frames(out.data(), out.size());
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].opcode, Opcode::kClose);
  EXPECT_EQ(client_.on_end_of_stream(context_), LoadClient::Status::kFailed);
  EXPECT_EQ(result_.counters.errors[static_cast<size_t>(ErrorKind::kClosed)], 1u);
  EXPECT_EQ(result_.counters.open_connections, 0u);
}

TEST_F(LoadClientTest, EndOfStreamWhileOpenIsAnError) {
  std::string response = start_and_answer(0);
  ByteBuffer out;
  client_.feed(context_, std::span<uint8_t>(reinterpret_cast<uint8_t*>(response.data()), response.size()), 0, out);
  client_.send_message(context_, 0, out);
  EXPECT_EQ(client_.on_end_of_stream(context_), LoadClient::Status::kFailed);
  EXPECT_EQ(result_.counters.errors[static_cast<size_t>(ErrorKind::kClosed)], 1u);
  EXPECT_EQ(result_.counters.open_connections, 0u);
}

TEST_F(LoadClientTest, OnlyMessagesSentInTheWindowAreMeasured) {
  context_.window_start_ns = 100;
  context_.window_end_ns = 200;
  std::string response = start_and_answer(0);  // connect before the window: not measured
  ByteBuffer out;
  client_.feed(context_, std::span<uint8_t>(reinterpret_cast<uint8_t*>(response.data()), response.size()), 50, out);
  EXPECT_EQ(result_.counters.upgrades, 1u);
  EXPECT_EQ(result_.counters.upgrades_measured, 0u);
  for (uint64_t t : {50, 100, 150, 199, 200}) client_.send_message(context_, t, out);
  std::vector<uint8_t> echoes = echo_of(out);
  EXPECT_EQ(client_.feed(context_, echoes, 300, out).echoes, 5u);
  EXPECT_EQ(result_.counters.sent_total, 5u);
  EXPECT_EQ(result_.counters.sent, 3u);
  EXPECT_EQ(result_.counters.received, 3u);
  EXPECT_EQ(result_.message_latency.count(), 3u);
  EXPECT_EQ(result_.message_latency.max(), 200u);  // from the intended time 100
}

// ---- chat roles (broadcast) ----

class ChatClientTest : public LoadClientTest {
 protected:
  // Upgrades the client as `role`, says hello and answers it, and answers the join; checks each
  // message the client writes on the way.
  void join_as(ChatRole role) {
    context_.room = "lobby";
    context_.text_size = 30;
    client_.set_chat_role(role);
    const std::string head = start_and_answer(0);
    ByteBuffer out;
    ASSERT_TRUE(feed_text(head, out).upgraded);
    client_.send_hello(context_, "s0_1", out);
    EXPECT_EQ(written(out), std::vector<std::string>{"{\"type\":\"hello\",\"name\":\"s0_1\"}"});
    std::string welcome;
    chat::write_welcome(welcome, "s0_1");
    EXPECT_FALSE(feed_message(welcome, 5, out).joined);
    EXPECT_EQ(written(out), std::vector<std::string>{"{\"type\":\"join\",\"room\":\"lobby\"}"});
    EXPECT_FALSE(client_.chat_joined());
    // A history whose items carry stamps too: the answer to the join, not deliveries.
    std::string history;
    chat::write_history_begin(history, "lobby");
    chat::write_history_item(history, "p0_old", "t=5;xx", 1, 1, true);
    chat::write_history_end(history);
    EXPECT_TRUE(feed_message(history, 6, out).joined);
    EXPECT_TRUE(client_.chat_joined());
    EXPECT_EQ(result_.counters.deliveries, 0u);
  }

  LoadClient::Feed feed_text(const std::string& bytes, ByteBuffer& out, uint64_t now = 1) {
    std::vector<uint8_t> data(bytes.begin(), bytes.end());
    return client_.feed(context_, data, now, out);
  }
  LoadClient::Feed feed_message(const std::string& json, uint64_t now, ByteBuffer& out) {
    const std::vector<uint8_t> frame = server_frame(Opcode::kText, json);
    return feed_text(std::string(frame.begin(), frame.end()), out, now);
  }
  // The text messages in `out` (then cleared).
  static std::vector<std::string> written(ByteBuffer& out) {
    std::vector<std::string> texts;
    for (const ClientFrame& f : parse_client_frames(out.data(), out.size())) {
      EXPECT_EQ(f.opcode, Opcode::kText);
      texts.emplace_back(f.payload.begin(), f.payload.end());
    }
    out.clear();
    return texts;
  }
};

TEST_F(ChatClientTest, SubscriberRecordsStampedDeliveries) {
  join_as(ChatRole::kSubscriber);
  EXPECT_EQ(result_.counters.subscribers_joined, 1u);
  ByteBuffer out;
  std::string presence;
  chat::write_presence(presence, true, "lobby", "s0_2");
  feed_message(presence, 7, out);
  // Two deliveries in one read: latency from each stamp to the read's time.
  std::string msg;
  chat::write_msg(msg, "lobby", "p0_x", "t=1000;xxxx", 1732190000000, 7);
  std::vector<uint8_t> two = server_frame(Opcode::kText, msg);
  msg.clear();
  chat::write_msg(msg, "lobby", "p0_x", "t=1200;", 1732190000000, 8);
  append(two, server_frame(Opcode::kText, msg));
  const LoadClient::Feed f = feed_text(std::string(two.begin(), two.end()), out, 1500);
  EXPECT_EQ(f.status, LoadClient::Status::kOk);
  EXPECT_EQ(result_.counters.deliveries, 2u);
  EXPECT_EQ(result_.message_latency.min(), 300u);
  EXPECT_EQ(result_.message_latency.max(), 500u);
  EXPECT_EQ(context_.last_delivery_ns, 1500u);
  // A msg someone else sent without a stamp is counted as a mismatch, not a delivery.
  msg.clear();
  chat::write_msg(msg, "lobby", "bob", "hi", 1732190000000, 9);
  feed_message(msg, 1600, out);
  EXPECT_EQ(result_.counters.deliveries, 2u);
  EXPECT_EQ(result_.counters.errors[static_cast<size_t>(ErrorKind::kMismatch)], 1u);
  EXPECT_TRUE(written(out).empty());
}

TEST_F(ChatClientTest, PublisherWritesValidMsgAndCountsAcks) {
  join_as(ChatRole::kPublisher);
  EXPECT_EQ(result_.counters.subscribers_joined, 0u);
  ByteBuffer out;
  client_.send_publish(context_, 2000, out);
  client_.send_publish(context_, 123456789012345, out);
  EXPECT_EQ(result_.counters.published, 2u);
  EXPECT_EQ(client_.in_flight(), 2u);
  const std::vector<std::string> texts = written(out);
  ASSERT_EQ(texts.size(), 2u);
  chat::ChatParser parser;
  for (size_t i = 0; i < texts.size(); ++i) {
    chat::ClientMessage message;
    ASSERT_EQ(parser.parse(texts[i], 4096, message).error, chat::ChatError::kNone) << texts[i];
    EXPECT_EQ(message.type, chat::ClientType::kMsg);
    EXPECT_EQ(message.room, "lobby");
    EXPECT_EQ(message.text.size(), 30u);
    uint64_t stamp = 0;
    ASSERT_TRUE(parse_stamp(message.text, stamp));
    EXPECT_EQ(stamp, i == 0 ? 2000u : 123456789012345u);
  }
  std::string ack;
  chat::write_ack(ack, "", 1, 1732190000000);
  EXPECT_EQ(feed_message(ack, 3000, out).acks, 1u);
  EXPECT_EQ(client_.in_flight(), 1u);
  // Another publisher's msg is no delivery for a publisher.
  std::string msg;
  chat::write_msg(msg, "lobby", "p1_x", "t=2500;", 1732190000000, 2);
  feed_message(msg, 3000, out);
  EXPECT_EQ(result_.counters.deliveries, 0u);
  ack.clear();
  chat::write_ack(ack, "", 2, 1732190000000);
  feed_message(ack, 3100, out);
  EXPECT_EQ(result_.counters.acked, 2u);
  feed_message(ack, 3200, out);  // one more than was sent
  EXPECT_EQ(result_.counters.errors[static_cast<size_t>(ErrorKind::kMismatch)], 1u);
  // A refusal answers the oldest msg in flight, as an ack would.
  client_.send_publish(context_, 4000, out);
  std::string error;
  chat::write_error(error, chat::ChatError::kRejected, "rate_limited: slow down", "");
  EXPECT_EQ(feed_message(error, 4100, out).acks, 1u);
  EXPECT_EQ(result_.counters.refused, 1u);
  EXPECT_EQ(client_.in_flight(), 0u);
  EXPECT_EQ(result_.counters.errors[static_cast<size_t>(ErrorKind::kChat)], 1u);
}

TEST_F(ChatClientTest, RefusedHelloFailsTheClient) {
  context_.room = "lobby";
  client_.set_chat_role(ChatRole::kSubscriber);
  ByteBuffer out;
  ASSERT_TRUE(feed_text(start_and_answer(0), out).upgraded);
  client_.send_hello(context_, "s0_1", out);
  out.clear();
  std::string error;
  chat::write_error(error, chat::ChatError::kNameTaken, "name taken", "");
  EXPECT_EQ(feed_message(error, 5, out).status, LoadClient::Status::kFailed);
  EXPECT_EQ(result_.counters.errors[static_cast<size_t>(ErrorKind::kChat)], 1u);
  EXPECT_FALSE(client_.chat_joined());
}

// ---- chat users (chat scenario) ----

TEST_F(ChatClientTest, UserJoinsItsRoomsTalksInTurnAndChecksDeliveries) {
  // 5 users over 3 rooms, 2 each: user 0 is in r-0 (members 0, 1, 3, 4) and r-1 (0, 2, 3).
  context_.chat_rooms = {"r-0", "r-1", "r-2"};
  context_.room_plan = ChatRoomPlan{5, 3, 2};
  context_.text_size = 30;
  client_.set_chat_role(ChatRole::kUser);
  client_.set_chat_user(0);
  ByteBuffer out;
  ASSERT_TRUE(feed_text(start_and_answer(0), out).upgraded);
  client_.send_hello(context_, "u0", out);
  out.clear();
  std::string welcome;
  chat::write_welcome(welcome, "u0");
  feed_message(welcome, 5, out);
  EXPECT_EQ(written(out), (std::vector<std::string>{"{\"type\":\"join\",\"room\":\"r-0\"}",
                                                    "{\"type\":\"join\",\"room\":\"r-1\"}"}));
  std::string history;
  chat::write_history_begin(history, "r-0");
  chat::write_history_end(history);
  EXPECT_FALSE(feed_message(history, 6, out).joined);  // one of two joins answered
  history.clear();
  chat::write_history_begin(history, "r-1");
  chat::write_history_end(history);
  EXPECT_TRUE(feed_message(history, 7, out).joined);
  EXPECT_TRUE(client_.chat_joined());

  // Its msgs go to its rooms in turn; each ack implies the room's other members' deliveries.
  client_.send_publish(context_, 100, out);
  client_.send_publish(context_, 101, out);
  client_.send_publish(context_, 102, out);
  chat::ChatParser parser;
  const std::vector<std::string> texts = written(out);
  ASSERT_EQ(texts.size(), 3u);
  for (size_t i = 0; i < texts.size(); ++i) {
    chat::ClientMessage message;
    ASSERT_EQ(parser.parse(texts[i], 4096, message).error, chat::ChatError::kNone) << texts[i];
    EXPECT_EQ(message.room, i % 2 == 0 ? "r-0" : "r-1");
  }
  std::string ack;
  chat::write_ack(ack, "", 1, 1732190000000);
  feed_message(ack, 200, out);
  EXPECT_EQ(result_.counters.deliveries_expected, 3u);
  feed_message(ack, 201, out);
  EXPECT_EQ(result_.counters.deliveries_expected, 5u);
  std::string error;  // a refusal implies no deliveries
  chat::write_error(error, chat::ChatError::kRejected, "rate_limited: slow down", "");
  feed_message(error, 202, out);
  EXPECT_EQ(result_.counters.deliveries_expected, 5u);
  EXPECT_EQ(result_.counters.refused, 1u);

  // Someone else's msg in one of its rooms is a delivery; its own, or one for a room it is not
  // in, is a mismatch.
  std::string msg;
  chat::write_msg(msg, "r-1", "u2", "t=150;xx", 1732190000000, 3);
  feed_message(msg, 250, out);
  EXPECT_EQ(result_.counters.deliveries, 1u);
  EXPECT_EQ(result_.message_latency.max(), 100u);
  msg.clear();
  chat::write_msg(msg, "r-0", "u0", "t=150;xx", 1732190000000, 4);
  feed_message(msg, 260, out);
  msg.clear();
  chat::write_msg(msg, "r-2", "u1", "t=150;xx", 1732190000000, 5);
  feed_message(msg, 270, out);
  EXPECT_EQ(result_.counters.deliveries, 1u);
  EXPECT_EQ(result_.counters.errors[static_cast<size_t>(ErrorKind::kMismatch)], 2u);
  // A user whose name another's extends is still someone else.
  msg.clear();
  chat::write_msg(msg, "r-0", "u01", "t=150;xx", 1732190000000, 6);
  feed_message(msg, 280, out);
  EXPECT_EQ(result_.counters.deliveries, 2u);

  std::string presence;
  chat::write_presence(presence, true, "r-0", "u3");
  feed_message(presence, 300, out);
  presence.clear();
  chat::write_presence(presence, false, "r-1", "u3");
  feed_message(presence, 301, out);
  EXPECT_EQ(result_.counters.presence_events, 2u);
  EXPECT_TRUE(written(out).empty());
}

TEST_F(ChatClientTest, UserResendsItsUnackedMsgWithTheSameIdsAfterAReconnect) {
  // 2 users, 2 rooms, both in both. One connection: hello (no token yet), joins, 3 msg; 1 acked.
  context_.chat_rooms = {"r-0", "r-1"};
  context_.room_plan = ChatRoomPlan{2, 2, 2};
  context_.text_size = 30;
  client_.set_chat_role(ChatRole::kUser);
  ByteBuffer out;
  auto connect = [&](std::string_view expected_hello, std::string_view token, uint64_t seq0, uint64_t seq1) {
    ASSERT_TRUE(feed_text(start_and_answer(0), out).upgraded);
    client_.send_hello(context_, "u0", out);
    EXPECT_EQ(written(out), std::vector<std::string>{std::string(expected_hello)});
    std::string welcome;
    chat::write_welcome_resume(welcome, "u0", 4096, token);
    feed_message(welcome, 5, out);
    EXPECT_EQ(written(out).size(), 2u);  // the joins
    for (auto [room, seq] : {std::pair{"r-0", seq0}, std::pair{"r-1", seq1}}) {
      std::string history;
      chat::write_history_begin(history, room);
      if (seq != 0) chat::write_history_item(history, "u0", "t=100;", 1, seq, true);
      chat::write_history_end(history);
      feed_message(history, 6, out);
    }
    EXPECT_TRUE(client_.chat_joined());
  };
  connect("{\"type\":\"hello\",\"name\":\"u0\"}", "0000002a00000000000000000000000a", 0, 0);
  for (uint64_t t : {100, 101, 102}) client_.send_publish(context_, t, out);
  const std::vector<std::string> first = written(out);
  ASSERT_EQ(first.size(), 3u);
  std::string ack;
  chat::write_ack(ack, "1", 1, 1732190000000);
  feed_message(ack, 200, out);
  EXPECT_EQ(client_.in_flight(), 2u);

  // Dropped (no ack for ids 2 and 3); the next connection presents the token and, once both
  // rooms answered (r-1 shows seq 1: id 2 was stored), resends ids 2 and 3 unchanged.
  client_.abandon(context_);
  connect("{\"type\":\"hello\",\"name\":\"u0\",\"resume\":\"0000002a00000000000000000000000a\"}", "", 1, 1);
  EXPECT_EQ(written(out), (std::vector<std::string>{first[1], first[2]}));
  EXPECT_EQ(result_.counters.resends, 2u);
  ack.clear();
  chat::write_ack(ack, "2", 1, 1732190000000);  // the original ack: a seq the rejoin showed
  feed_message(ack, 300, out);
  ack.clear();
  chat::write_ack(ack, "3", 2, 1732190000000);  // stored now for the first time
  feed_message(ack, 301, out);
  EXPECT_EQ(result_.counters.duplicate_acks, 1u);
  EXPECT_EQ(result_.counters.acked, 3u);
  EXPECT_EQ(client_.in_flight(), 0u);
  // New msg continue the ids.
  client_.send_publish(context_, 400, out);
  chat::ChatParser parser;
  chat::ClientMessage message;
  const std::vector<std::string> next = written(out);
  ASSERT_EQ(next.size(), 1u);
  ASSERT_EQ(parser.parse(next[0], 4096, message).error, chat::ChatError::kNone);
  EXPECT_EQ(message.id, "4");
}

// ---- ByteBuffer ----

TEST(ByteBuffer, AppendConsumeAndGrow) {
  ByteBuffer b;
  EXPECT_TRUE(b.empty());
  std::string expected;
  for (int i = 0; i < 1000; ++i) {
    const std::string piece = std::to_string(i) + ",";
    b.append(piece.data(), piece.size());
    expected += piece;
    if (i % 3 == 0) {
      b.consume(2);
      expected.erase(0, 2);
    }
  }
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(b.data()), b.size()), expected);
  b.consume(b.size());
  EXPECT_TRUE(b.empty());
  b.release();
  EXPECT_EQ(b.capacity(), 0u);
}

}  // namespace
}  // namespace tools
