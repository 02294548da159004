// wss:// and https against a real parleyd started with --tls-cert/--tls-key: handshake, ALPN,
// echo, records split and byte-sized, large messages, backpressure, close_notify, timeouts,
// plain HTTP on the TLS port, TLS 1.2 and 1.3, and session resumption (also across workers).
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>

#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/parleyd_process.h"
#include "tests/support/tls_test_certs.h"
#include "tests/support/ws_test_client.h"

namespace {

using namespace std::chrono_literals;
using parley_test::ParleydProcess;
using parley_test::TestCertificate;
using parley_test::TlsClientOptions;
using parley_test::WsTestClient;

constexpr char kHost[] = "127.0.0.1";

std::vector<std::string> tls_args(const TestCertificate& cert, std::vector<std::string> more = {}) {
  std::vector<std::string> args = {"--tls-cert", cert.cert_path(), "--tls-key", cert.key_path()};
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

// Deterministic bytes of every value, different for each seed.
std::string pattern(size_t size, uint32_t seed) {
  std::mt19937 random(seed);
  std::string out(size, '\0');
  for (char& c : out) c = static_cast<char>(random());
  return out;
}

class TlsServer : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cert_.ok()) << cert_.error();
    server_ = std::make_unique<ParleydProcess>(tls_args(cert_, extra_args()));
    ASSERT_TRUE(server_->ok()) << server_->error();
  }
  void TearDown() override {
    if (server_ && server_->ok()) {
      EXPECT_TRUE(server_->running()) << server_->status_text() << server_->stderr_text();
    }
  }
  virtual std::vector<std::string> extra_args() { return {}; }
  uint16_t port() const { return server_->port(); }

  void expect_echo(WsTestClient& client, uint8_t opcode, const std::string& payload) {
    ASSERT_TRUE(client.send_frame(opcode, payload, {}, 20s)) << client.error();
    parley_test::Received r = client.recv_message(20s);
    ASSERT_TRUE(r.ok()) << r.error << client.error();
    EXPECT_EQ(r.opcode, opcode);
    EXPECT_EQ(r.payload.size(), payload.size());
    EXPECT_TRUE(r.payload == payload);
  }

  TestCertificate cert_;
  std::unique_ptr<ParleydProcess> server_;
};

TEST_F(TlsServer, EchoOverWssWithAlpnHttp11) {
  WsTestClient client;
  ASSERT_TRUE(client.connect_tls(kHost, port())) << client.error();
  EXPECT_EQ(client.tls()->alpn_selected(), "http/1.1");
  expect_echo(client, parley_test::kOpText, "hello over TLS");
  expect_echo(client, parley_test::kOpBinary, pattern(70000, 1));
}

TEST_F(TlsServer, ClientOfferingOnlyH2StillGetsHttp11) {
  WsTestClient client;
  TlsClientOptions options;
  options.alpn = "h2";
  ASSERT_TRUE(client.connect_tls(kHost, port(), "/echo", options)) << client.error();
  EXPECT_EQ(client.tls()->alpn_selected(), "");
  expect_echo(client, parley_test::kOpText, "no ALPN agreed");
}

TEST_F(TlsServer, PermessageDeflateOverTls) {
  WsTestClient client;
  ASSERT_TRUE(client.connect_tcp(kHost, port()));
  ASSERT_TRUE(client.start_tls()) << client.error();
  ASSERT_TRUE(client.upgrade("/echo", {"Sec-WebSocket-Extensions: permessage-deflate"})) << client.error();
  ASSERT_TRUE(client.handshake_response().header("Sec-WebSocket-Extensions").has_value());
  client.set_deflate(true);
  // Compressible and above the threshold: the echo comes back compressed (RSV1), inflated here.
  expect_echo(client, parley_test::kOpText, std::string(100000, 'z'));
}

TEST_F(TlsServer, Tls12AndTls13BothWork) {
  for (int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    WsTestClient client;
    TlsClientOptions options;
    options.min_version = options.max_version = version;
    ASSERT_TRUE(client.connect_tls(kHost, port(), "/echo", options)) << client.error();
    EXPECT_EQ(client.tls()->version(), version);
    expect_echo(client, parley_test::kOpText, "version " + std::to_string(version));
  }
}

TEST_F(TlsServer, OneBytePerRecordAndRecordsSplitAcrossWrites) {
  WsTestClient client;
  ASSERT_TRUE(client.connect_tcp(kHost, port()));
  ASSERT_TRUE(client.start_tls()) << client.error();
  // The upgrade request itself in 1-byte records.
  ASSERT_TRUE(client.upgrade("/echo", {}, 1, 0ms)) << client.error();
  std::string frame = parley_test::encode_frame(parley_test::kOpText, "split records");
  ASSERT_TRUE(client.send_chopped(frame, 1, 1ms)) << client.error();
  parley_test::Received r = client.recv_message();
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.payload, "split records");
  // Ciphertext cut into 1- and 7-byte writes: every record arrives in pieces.
  for (size_t chop : {size_t{1}, size_t{7}}) {
    std::string payload = pattern(300, static_cast<uint32_t>(chop));
    ASSERT_TRUE(client.send_tls_split(parley_test::encode_frame(parley_test::kOpBinary, payload), 100, chop, 0ms))
        << client.error();
    r = client.recv_message();
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_TRUE(r.payload == payload);
  }
}

TEST_F(TlsServer, LargeMessagesBothWays) {
  WsTestClient client;
  ASSERT_TRUE(client.connect_tls(kHost, port())) << client.error();
  for (size_t size : {size_t{1} << 20, size_t{16} << 20}) {
    expect_echo(client, parley_test::kOpBinary, pattern(size, static_cast<uint32_t>(size >> 20)));
  }
}

TEST_F(TlsServer, CloseHandshakeEndsWithCloseNotifyAndFin) {
  WsTestClient client;
  ASSERT_TRUE(client.connect_tls(kHost, port())) << client.error();
  ASSERT_TRUE(client.send_close(1000, "bye")) << client.error();
  parley_test::CloseResult close = client.expect_close();
  EXPECT_TRUE(close.close_received) << close.error;
  EXPECT_EQ(close.code, 1000);
  EXPECT_TRUE(close.tcp_closed) << close.error;
  EXPECT_FALSE(close.tcp_reset);
  EXPECT_TRUE(client.tls()->close_notify_received());
}

TEST_F(TlsServer, ProtocolErrorClosesWith1002OverTls) {
  WsTestClient client;
  ASSERT_TRUE(client.connect_tls(kHost, port())) << client.error();
  parley_test::FrameOptions unmasked;
  unmasked.masked = false;
  ASSERT_TRUE(client.send_frame(parley_test::kOpText, "x", unmasked)) << client.error();
  parley_test::CloseResult close = client.expect_close();
  EXPECT_TRUE(close.close_received) << close.error;
  EXPECT_EQ(close.code, 1002);
  EXPECT_TRUE(close.tcp_closed) << close.error;
}

TEST_F(TlsServer, HttpsHealthzAndMetrics) {
  for (const char* path : {"/healthz", "/metrics"}) {
    WsTestClient client;
    ASSERT_TRUE(client.connect_tcp(kHost, port()));
    ASSERT_TRUE(client.start_tls()) << client.error();
    ASSERT_TRUE(client.send_raw(std::string("GET ") + path + " HTTP/1.1\r\nHost: localhost\r\n\r\n"));
    parley_test::HttpResponse response = client.read_http_response();
    ASSERT_TRUE(response.complete) << response.error;
    EXPECT_EQ(response.status, 200);
    if (std::string(path) == "/healthz") {
      EXPECT_EQ(response.body, "ok\n");
    } else {
      EXPECT_NE(response.body.find("parley_connections "), std::string::npos);
    }
    EXPECT_TRUE(client.wait_tcp_closed(3s));
  }
}

TEST_F(TlsServer, PlainHttpOnTheTlsPortIsClosedAndTheServerCarriesOn) {
  parley_test::HttpResponse response =
      parley_test::http_request(kHost, port(), "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 3s);
  EXPECT_FALSE(response.complete);
  EXPECT_NE(response.error.find("closed"), std::string::npos) << response.error;
  // A plain WebSocket client fails the same way.
  WsTestClient plain;
  EXPECT_FALSE(plain.connect(kHost, port()));
  WsTestClient client;
  ASSERT_TRUE(client.connect_tls(kHost, port())) << client.error();
  expect_echo(client, parley_test::kOpText, "still serving");
}

TEST_F(TlsServer, GarbageAfterTheHandshakeIsABadRecordAndCloses) {
  WsTestClient client;
  ASSERT_TRUE(client.connect_tls(kHost, port())) << client.error();
  // Bytes that are not a TLS record, written under TLS: the server's TLS layer fails.
  ASSERT_TRUE(::send(client.fd(), "\x17\x03\x03\x00\x05hello", 10, MSG_NOSIGNAL) == 10);
  // Raw reads: the server may answer with an alert, then it must close TCP.
  bool closed = false;
  auto deadline = std::chrono::steady_clock::now() + 3s;
  while (!closed && std::chrono::steady_clock::now() < deadline) {
    pollfd p{client.fd(), POLLIN, 0};
    if (poll(&p, 1, 100) != 1) continue;
    char buffer[4096];
    ssize_t n = recv(client.fd(), buffer, sizeof buffer, 0);
    closed = n == 0 || (n < 0 && errno == ECONNRESET);
  }
  EXPECT_TRUE(closed);
}

class TlsServerShortTimeout : public TlsServer {
 protected:
  std::vector<std::string> extra_args() override { return {"--handshake-timeout", "300"}; }
};

TEST_F(TlsServerShortTimeout, ClientThatNeverFinishesTlsIsDropped) {
  // One client sends nothing, another half a ClientHello (a record header announcing more).
  for (std::string_view opening : {std::string_view(), std::string_view("\x16\x03\x01\x02\x00\x01", 6)}) {
    WsTestClient client;
    ASSERT_TRUE(client.connect_tcp(kHost, port()));
    if (!opening.empty()) {
      ASSERT_TRUE(client.send_raw(opening));
    }
    auto started = std::chrono::steady_clock::now();
    EXPECT_TRUE(client.wait_tcp_closed(3s));
    EXPECT_GE(std::chrono::steady_clock::now() - started, 250ms);
  }
  // The timeout covers the request head after the TLS handshake too: 408 inside TLS.
  WsTestClient slow;
  ASSERT_TRUE(slow.connect_tcp(kHost, port()));
  ASSERT_TRUE(slow.start_tls()) << slow.error();
  ASSERT_TRUE(slow.send_raw("GET /echo HTTP/1.1\r\n"));
  parley_test::HttpResponse response = slow.read_http_response(3s);
  ASSERT_TRUE(response.complete) << response.error;
  EXPECT_EQ(response.status, 408);
}

// A session from a first connection, offered by a second; `version` fixes the protocol.
void expect_resumption(uint16_t port, int version, int connections = 1) {
  TlsClientOptions options;
  options.min_version = options.max_version = version;
  SSL_SESSION* session = nullptr;
  {
    WsTestClient first;
    ASSERT_TRUE(first.connect_tls(kHost, port, "/echo", options)) << first.error();
    EXPECT_FALSE(first.tls()->session_reused());
    // TLS 1.3 tickets arrive after the handshake; the 101 came after them.
    session = first.tls()->get1_session();
    ASSERT_NE(session, nullptr);
    ASSERT_TRUE(SSL_SESSION_is_resumable(session));
  }
  options.resume = session;
  for (int i = 0; i < connections; ++i) {
    WsTestClient again;
    ASSERT_TRUE(again.connect_tls(kHost, port, "/echo", options)) << again.error();
    EXPECT_TRUE(again.tls()->session_reused()) << "connection " << i << ", version " << version;
    ASSERT_TRUE(again.send_frame(parley_test::kOpText, "resumed"));
    EXPECT_EQ(again.recv_message().payload, "resumed");
  }
  SSL_SESSION_free(session);
}

TEST_F(TlsServer, SessionResumptionWithTickets) {
  expect_resumption(port(), TLS1_3_VERSION);
  expect_resumption(port(), TLS1_2_VERSION);
}

class TlsServerOneConnection : public TlsServer {
 protected:
  std::vector<std::string> extra_args() override { return {"--max-connections", "1"}; }
};

TEST_F(TlsServerOneConnection, ConnectionOverTheLimitGets503InsideTls) {
  WsTestClient first;
  ASSERT_TRUE(first.connect_tls(kHost, port())) << first.error();
  WsTestClient second;
  ASSERT_TRUE(second.connect_tcp(kHost, port()));
  ASSERT_TRUE(second.start_tls()) << second.error();
  ASSERT_TRUE(second.send_raw("GET /echo HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  parley_test::HttpResponse response = second.read_http_response();
  ASSERT_TRUE(response.complete) << response.error;
  EXPECT_EQ(response.status, 503);
  EXPECT_EQ(response.header("Retry-After").value_or(""), "5");
  EXPECT_TRUE(second.wait_tcp_closed(3s));
  // The admitted one is unaffected.
  expect_echo(first, parley_test::kOpText, "still here");
}

class TlsServerWorkers : public TlsServer {
 protected:
  std::vector<std::string> extra_args() override { return {"--workers", "2"}; }
};

TEST_F(TlsServerWorkers, SessionsResumeOnEitherWorker) {
  // The kernel spreads the connections over both workers; all share the ticket keys.
  expect_resumption(port(), TLS1_3_VERSION, 8);
}

class TlsServerSmallBuffer : public TlsServer {
 protected:
  std::vector<std::string> extra_args() override { return {"--max-buffered", "64K"}; }
};

TEST_F(TlsServerSmallBuffer, SlowReaderIsThrottledOrClosedWith1008WhileOthersKeepReceiving) {
  WsTestClient slow;
  ASSERT_TRUE(slow.connect_tcp(kHost, port()));
  int small = 64 * 1024;
  setsockopt(slow.fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  ASSERT_TRUE(slow.start_tls()) << slow.error();
  ASSERT_TRUE(slow.upgrade()) << slow.error();
  WsTestClient healthy;
  ASSERT_TRUE(healthy.connect_tls(kHost, port())) << healthy.error();
  // 16 MiB of echo requests, encrypted up front and written raw without ever reading. The
  // echoes pile up behind the server's stalled TLS writes: past --max-buffered it stops reading
  // this client (TCP pushes back) or, when one read produced more than the cap, closes it 1008.
  constexpr size_t kFlood = 4096;
  std::vector<std::string> records;
  for (size_t i = 0; i < kFlood; ++i) {
    records.push_back(slow.tls()->encrypt(parley_test::encode_frame(parley_test::kOpText, std::string(4096, 'x'))));
  }
  size_t started = 0;   // records begun
  std::string leftover;  // the unsent end of the last one begun
  std::thread writer([&] {
    for (; started < kFlood; ++started) {
      const std::string& record = records[started];
      size_t sent = 0;
      while (sent < record.size()) {
        ssize_t n = ::send(slow.fd(), record.data() + sent, record.size() - sent, MSG_NOSIGNAL);
        if (n > 0) {
          sent += static_cast<size_t>(n);
          continue;
        }
        pollfd p{slow.fd(), POLLOUT, 0};
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && poll(&p, 1, 1000) == 1) continue;
        leftover = record.substr(sent);  // stalled: the server stopped reading us
        ++started;
        return;
      }
    }
  });
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(healthy.send_frame(parley_test::kOpText, "ok " + std::to_string(i)));
    parley_test::Received r = healthy.recv_message(5000ms);  // generous: ASan builds are slow
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.payload, "ok " + std::to_string(i));
  }
  writer.join();
  ASSERT_TRUE(slow.send_unencrypted(leftover, 10000ms)) << slow.error();
  size_t echoes = 0;
  uint16_t close_code = 0;
  while (close_code == 0 && echoes < started) {
    parley_test::Received r = slow.recv_frame(10000ms);
    ASSERT_TRUE(r.ok()) << r.error << " after " << echoes << " of " << started << " echoes";
    if (r.opcode == parley_test::kOpClose) {
      ASSERT_GE(r.payload.size(), 2u);
      close_code = static_cast<uint16_t>(static_cast<uint8_t>(r.payload[0]) << 8 | static_cast<uint8_t>(r.payload[1]));
    } else {
      ASSERT_EQ(r.payload.size(), 4096u);
      ++echoes;
    }
  }
  if (close_code != 0) {
    EXPECT_EQ(close_code, 1008);
    EXPECT_LT(echoes, started);
  } else {
    EXPECT_LT(started, kFlood) << "neither throttled nor closed";
    EXPECT_EQ(echoes, started);  // throttled, nothing lost
  }
}

}  // namespace
