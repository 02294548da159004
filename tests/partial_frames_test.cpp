// Messages that reach a real parleyd in many small reads (issue 18, goal 3): large frames read
// straight into the message buffer, fragments, code points cut across frames and writes, and the
// limits (1009, 1007 failing fast) and memory accounting while a message is half assembled.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/parleyd_process.h"
#include "tests/support/tls_test_certs.h"
#include "tests/support/ws_test_client.h"
#include "tests/support/utf8_text.h"

namespace {

using namespace std::chrono_literals;
using parley_test::FrameOptions;
using parley_test::ParleydProcess;
using parley_test::WsTestClient;

using parley_test::mixed_text;

std::string binary_pattern(size_t size) {
  std::string out(size, '\0');
  for (size_t i = 0; i < size; ++i) out[i] = static_cast<char>(i * 131 + (i >> 8));
  return out;
}

FrameOptions fragment(bool fin) {
  FrameOptions options;
  options.fin = fin;
  return options;
}

void expect_echo(WsTestClient& client, uint8_t opcode, const std::string& payload) {
  parley_test::Received r = client.recv_message(10s);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.opcode, opcode);
  ASSERT_EQ(r.payload.size(), payload.size());
  EXPECT_TRUE(r.payload == payload) << "echo differs";
}

// The parley_memory_input_bytes gauge once `done` accepts it (it is refreshed at the end of a
// loop iteration), or the last value read after two seconds.
template <typename Done>
long input_bytes_when(uint16_t port, Done done) {
  long value = -1;
  for (int i = 0; i < 100; ++i) {
    value = parley_test::parleyd_metric(port, "parley_memory_input_bytes");
    if (done(value)) break;
    std::this_thread::sleep_for(20ms);
  }
  return value;
}

TEST(PartialFrames, LargeFrameInSmallWritesIsEchoed) {
  ParleydProcess server;
  ASSERT_TRUE(server.ok()) << server.error();
  WsTestClient client;
  ASSERT_TRUE(client.connect("127.0.0.1", server.port())) << client.error();
  const std::string text = mixed_text(300 * 1024);
  const std::string binary = binary_pattern(300 * 1024);
  // Writes of 4 KiB 1 ms apart arrive as separate reads; 999 bytes cuts code points too.
  for (size_t chop : {size_t{4096}, size_t{999}}) {
    ASSERT_TRUE(client.send_chopped(parley_test::encode_frame(parley_test::kOpText, text), chop, 1ms, 30s))
        << client.error();
    expect_echo(client, parley_test::kOpText, text);
    ASSERT_TRUE(client.send_chopped(parley_test::encode_frame(parley_test::kOpBinary, binary), chop, 1ms, 30s))
        << client.error();
    expect_echo(client, parley_test::kOpBinary, binary);
  }
}

TEST(PartialFrames, FragmentsWithCodePointsCutAcrossThemAndAPingBetween) {
  ParleydProcess server;
  ASSERT_TRUE(server.ok()) << server.error();
  WsTestClient client;
  ASSERT_TRUE(client.connect("127.0.0.1", server.port())) << client.error();
  // 40,001-byte fragments: every fragment boundary falls inside a multi-byte code point.
  const std::string text = mixed_text(160004);
  std::string stream;
  for (size_t at = 0; at < text.size(); at += 40001) {
    const bool fin = at + 40001 >= text.size();
    stream += parley_test::encode_frame(at == 0 ? parley_test::kOpText : parley_test::kOpContinuation,
                                        text.substr(at, 40001), fragment(fin));
    if (at == 0) stream += parley_test::encode_frame(parley_test::kOpPing, "between");
  }
  ASSERT_TRUE(client.send_chopped(stream, 3000, 1ms, 30s)) << client.error();
  parley_test::Received pong = client.recv_frame();
  ASSERT_TRUE(pong.ok()) << pong.error;
  EXPECT_EQ(pong.opcode, parley_test::kOpPong);
  EXPECT_EQ(pong.payload, "between");
  expect_echo(client, parley_test::kOpText, text);
}

TEST(PartialFrames, SplitAtEveryByteNearTheEdgesOfALargeFrame) {
  ParleydProcess server;
  ASSERT_TRUE(server.ok()) << server.error();
  WsTestClient client;
  ASSERT_TRUE(client.connect("127.0.0.1", server.port())) << client.error();
  const std::string text = mixed_text(40000);
  const std::string wire = parley_test::encode_frame(parley_test::kOpText, text);
  // Inside the header, where the rest first drops below 16 KiB (the direct-read threshold),
  // and the last bytes.
  std::vector<size_t> cuts;
  for (size_t k = 1; k <= 12; ++k) cuts.push_back(k);
  for (size_t k = wire.size() - 16384 - 4; k <= wire.size() - 16384 + 4; ++k) cuts.push_back(k);
  for (size_t k = wire.size() - 6; k < wire.size(); ++k) cuts.push_back(k);
  for (size_t cut : cuts) {
    ASSERT_TRUE(client.send_raw(wire.substr(0, cut))) << client.error();
    std::this_thread::sleep_for(2ms);  // the server reads the first part on its own
    ASSERT_TRUE(client.send_raw(wire.substr(cut))) << client.error();
    expect_echo(client, parley_test::kOpText, text);
    if (testing::Test::HasFailure()) FAIL() << "cut " << cut;
  }
}

TEST(PartialFrames, TooBigIsFoundMidAssemblyOnTheCrossingHeader) {
  ParleydProcess server({"--max-message-size", "64K"});
  ASSERT_TRUE(server.ok()) << server.error();
  WsTestClient client;
  ASSERT_TRUE(client.connect("127.0.0.1", server.port())) << client.error();
  // 48 KiB in small writes (assembled in the message buffer), then a fragment that would take the
  // message past 64 KiB: 1009 on its header, before any of its payload is sent.
  ASSERT_TRUE(client.send_chopped(parley_test::encode_frame(parley_test::kOpBinary, binary_pattern(48 * 1024), fragment(false)),
                                  2048, 1ms, 30s))
      << client.error();
  const std::string next = parley_test::encode_frame(parley_test::kOpContinuation, binary_pattern(20 * 1024));
  ASSERT_TRUE(client.send_raw(next.substr(0, 8))) << client.error();  // 126, length, mask key
  parley_test::CloseResult close = client.expect_close();
  EXPECT_TRUE(close.close_received) << close.error;
  EXPECT_EQ(close.code, 1009);
}

TEST(PartialFrames, InvalidUtf8InALargeFrameFailsBeforeTheFrameEnds) {
  ParleydProcess server;
  ASSERT_TRUE(server.ok()) << server.error();
  WsTestClient client;
  ASSERT_TRUE(client.connect("127.0.0.1", server.port())) << client.error();
  std::string text = mixed_text(400 * 1024);
  text[100 * 1024] = '\xFF';
  const std::string wire = parley_test::encode_frame(parley_test::kOpText, text);
  const size_t header = wire.size() - text.size();
  // Only up to the bad byte: RFC 6455 8.1 fails the connection then, not at the frame's end.
  ASSERT_TRUE(client.send_chopped(wire.substr(0, header + 100 * 1024 + 1), 4096, 1ms, 30s)) << client.error();
  parley_test::CloseResult close = client.expect_close();
  EXPECT_TRUE(close.close_received) << close.error;
  EXPECT_EQ(close.code, 1007);
}

TEST(PartialFrames, HalfAssembledMessageIsCountedAndGivenBack) {
  ParleydProcess server;
  ASSERT_TRUE(server.ok()) << server.error();
  WsTestClient client;
  ASSERT_TRUE(client.connect("127.0.0.1", server.port())) << client.error();
  // A 16 MiB - 1 frame announced and 20 bytes of it sent: the announcement alone allocates
  // nothing large.
  const std::string huge = parley_test::encode_frame(parley_test::kOpBinary, std::string((16 << 20) - 1, 'h'));
  ASSERT_TRUE(client.send_raw(huge.substr(0, 14 + 20))) << client.error();
  long input = input_bytes_when(server.port(), [](long v) { return v > 0; });
  EXPECT_GT(input, 0);
  EXPECT_LT(input, 16 * 1024) << "the announced length was allocated";
  // 600 KiB more: counted, and at most about twice what arrived.
  ASSERT_TRUE(client.send_chopped(huge.substr(14 + 20, 600 * 1024), 8192, 0ms, 30s)) << client.error();
  input = input_bytes_when(server.port(), [](long v) { return v >= 600 * 1024; });
  EXPECT_GE(input, 600 * 1024);
  EXPECT_LE(input, 2 * 600 * 1024 + 64 * 1024);
  // The rest: the echo arrives and the buffer is given back.
  ASSERT_TRUE(client.send_raw(huge.substr(14 + 20 + 600 * 1024), 60s)) << client.error();
  parley_test::Received r = client.recv_message(30s);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.payload.size(), (16u << 20) - 1);
  EXPECT_EQ(input_bytes_when(server.port(), [](long v) { return v == 0; }), 0);
}

TEST(PartialFrames, LargeFrameOverTlsInSmallRecords) {
  parley_test::TestCertificate cert;
  ASSERT_TRUE(cert.ok()) << cert.error();
  ParleydProcess server({"--tls-cert", cert.cert_path(), "--tls-key", cert.key_path()});
  ASSERT_TRUE(server.ok()) << server.error();
  WsTestClient client;
  ASSERT_TRUE(client.connect_tls("127.0.0.1", server.port())) << client.error();
  const std::string text = mixed_text(200 * 1024);
  // 1,000-byte records, their ciphertext in 1,500-byte writes: reads end mid-record and mid-code point.
  ASSERT_TRUE(client.send_tls_split(parley_test::encode_frame(parley_test::kOpText, text), 1000, 1500, 1ms, 30s))
      << client.error();
  expect_echo(client, parley_test::kOpText, text);
}

}  // namespace
