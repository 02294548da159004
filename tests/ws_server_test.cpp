// Integration tests of WsServer behaviour that the conformance cases do not cover: timeouts,
// running out of file descriptors, pipelined input, metrics. Each starts a real parleyd.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/parleyd_process.h"
#include "tests/support/ws_test_client.h"

namespace {

using namespace std::chrono_literals;
using parley_test::ParleydProcess;
using parley_test::WsTestClient;

constexpr char kUpgradeRequest[] =
    "GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

// CPU time (user + system) the process has used, in clock ticks.
long cpu_ticks(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
  std::string rest = line.substr(line.rfind(')') + 2);
  std::vector<std::string> fields;
  size_t start = 0;
  while (start < rest.size()) {
    size_t end = rest.find(' ', start);
    if (end == std::string::npos) end = rest.size();
    fields.push_back(rest.substr(start, end - start));
    start = end + 1;
  }
  return std::stol(fields[11]) + std::stol(fields[12]);
}

TEST(WsServer, IncompleteRequestHeadTimesOutWith408) {
  ParleydProcess server({"--handshake-timeout", "300"});
  ASSERT_TRUE(server.ok()) << server.error();
  WsTestClient client;
  ASSERT_TRUE(client.connect_tcp("127.0.0.1", server.port()));
  ASSERT_TRUE(client.send_raw("GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n"));
  auto started = std::chrono::steady_clock::now();
  parley_test::HttpResponse response = client.read_http_response(3000ms);
  auto waited = std::chrono::steady_clock::now() - started;
  EXPECT_TRUE(response.complete) << response.error;
  EXPECT_EQ(response.status, 408);
  EXPECT_GE(waited, 250ms);
  EXPECT_TRUE(client.wait_tcp_closed(2000ms));
}

TEST(WsServer, SilentConnectionTimesOut) {
  ParleydProcess server({"--handshake-timeout", "200"});
  ASSERT_TRUE(server.ok()) << server.error();
  WsTestClient client;
  ASSERT_TRUE(client.connect_tcp("127.0.0.1", server.port()));
  EXPECT_TRUE(client.wait_tcp_closed(3000ms));
}

TEST(WsServer, FramesSentWithTheRequestAreProcessedAfterTheUpgrade) {
  ParleydProcess server;
  ASSERT_TRUE(server.ok()) << server.error();
  WsTestClient client;
  ASSERT_TRUE(client.connect_tcp("127.0.0.1", server.port()));
  std::string bytes = kUpgradeRequest;
  bytes += parley_test::encode_frame(parley_test::kOpText, "early");
  bytes += parley_test::encode_frame(parley_test::kOpText, "bird");
  ASSERT_TRUE(client.send_raw(bytes));
  parley_test::HttpResponse response = client.read_http_response();
  ASSERT_EQ(response.status, 101) << response.error;
  parley_test::Received first = client.recv_message();
  parley_test::Received second = client.recv_message();
  ASSERT_TRUE(first.ok()) << first.error;
  ASSERT_TRUE(second.ok()) << second.error;
  EXPECT_EQ(first.payload, "early");
  EXPECT_EQ(second.payload, "bird");
}

TEST(WsServer, HeadRequestGetsHeadersWithoutBody) {
  ParleydProcess server;
  ASSERT_TRUE(server.ok()) << server.error();
  parley_test::HttpResponse r =
      parley_test::http_request("127.0.0.1", server.port(), "HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.body.empty());
}

TEST(WsServer, MetricsCountUpgradesAndMessages) {
  ParleydProcess server;
  ASSERT_TRUE(server.ok()) << server.error();
  {
    WsTestClient client;
    ASSERT_TRUE(client.connect("127.0.0.1", server.port())) << client.error();
    for (int i = 0; i < 5; ++i) {
      ASSERT_TRUE(client.send_frame(parley_test::kOpText, "m" + std::to_string(i)));
      ASSERT_TRUE(client.recv_message().ok());
    }
    client.send_close(1000);
    EXPECT_TRUE(client.expect_close().close_received);
  }
  EXPECT_EQ(parley_test::parleyd_metric(server.port(), "parley_upgrades_total"), 1);
  EXPECT_EQ(parley_test::parleyd_metric(server.port(), "parley_messages_received_total"), 5);
  EXPECT_EQ(parley_test::parleyd_metric(server.port(), "parley_messages_sent_total"), 5);
}

// RFC 6455 7.1.1: once both close frames are exchanged the server closes TCP first. It closes
// the socket outright (a FIN, not a reset) instead of waiting for the client's FIN, so the
// connection is gone from the server while the client still holds its end open.
TEST(WsServer, CloseHandshakeFreesTheConnectionBeforeTheClientsFin) {
  ParleydProcess server({"--close-timeout", "5000"});
  ASSERT_TRUE(server.ok()) << server.error();
  WsTestClient client;
  ASSERT_TRUE(client.connect("127.0.0.1", server.port())) << client.error();
  ASSERT_TRUE(client.send_close(1000, "bye"));
  parley_test::CloseResult result = client.expect_close();
  EXPECT_TRUE(result.close_received) << result.error;
  EXPECT_EQ(result.code, 1000);
  EXPECT_TRUE(result.tcp_closed) << result.error;
  EXPECT_FALSE(result.tcp_reset);
  // Only the /metrics request itself is open: `client` has not closed its socket yet.
  EXPECT_EQ(parley_test::parleyd_metric(server.port(), "parley_connections"), 1);

  // A peer that sends more after its close (against RFC 6455 5.5.1) might still be sending:
  // the server keeps reading until that peer's FIN, so it never answers with a reset.
  WsTestClient rude;
  ASSERT_TRUE(rude.connect("127.0.0.1", server.port())) << rude.error();
  std::string close_then_text = parley_test::encode_frame(parley_test::kOpClose, std::string("\x03\xe8", 2));
  close_then_text += parley_test::encode_frame(parley_test::kOpText, "after the close");
  ASSERT_TRUE(rude.send_raw(close_then_text));
  result = rude.expect_close();
  EXPECT_TRUE(result.close_received) << result.error;
  EXPECT_TRUE(result.tcp_closed) << result.error;
  EXPECT_FALSE(result.tcp_reset);
  EXPECT_EQ(parley_test::parleyd_metric(server.port(), "parley_connections"), 2);
}

TEST(WsServer, ManyConcurrentConnectionsAllEcho) {
  ParleydProcess server;
  ASSERT_TRUE(server.ok()) << server.error();
  constexpr int kClients = 300;
  std::vector<std::unique_ptr<WsTestClient>> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<WsTestClient>());
    ASSERT_TRUE(clients.back()->connect("127.0.0.1", server.port())) << i << ": " << clients.back()->error();
  }
  for (int i = 0; i < kClients; ++i) ASSERT_TRUE(clients[i]->send_frame(parley_test::kOpText, std::to_string(i)));
  for (int i = 0; i < kClients; ++i) {
    parley_test::Received r = clients[i]->recv_message();
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.payload, std::to_string(i));
  }
}

// With its fd limit reached, the server must neither spin on the readable listener nor stop
// serving once descriptors free up (the reserve-fd trick).
TEST(WsServer, RunningOutOfFileDescriptorsNeitherSpinsNorWedges) {
  // A hard limit too: parleyd raises its soft limit to the hard one at start.
  ParleydProcess server({}, parley_test::ProcessLimits{48, 48});
  ASSERT_TRUE(server.ok()) << server.error();

  // Upgraded connections, so no incomplete handshake can give up its fd: the accepts beyond
  // the limit take the reserve-fd path.
  std::vector<std::unique_ptr<WsTestClient>> clients;
  for (int i = 0; i < 80; ++i) {
    clients.push_back(std::make_unique<WsTestClient>());
    clients.back()->connect("127.0.0.1", server.port());
  }
  std::this_thread::sleep_for(200ms);
  long before = cpu_ticks(server.pid());
  std::this_thread::sleep_for(500ms);
  long used = cpu_ticks(server.pid()) - before;
  EXPECT_LT(used, 20) << "parleyd burned CPU while out of descriptors";
  EXPECT_TRUE(server.running());

  clients.clear();
  std::this_thread::sleep_for(300ms);
  WsTestClient client;
  ASSERT_TRUE(client.connect("127.0.0.1", server.port())) << client.error();
  ASSERT_TRUE(client.send_frame(parley_test::kOpText, "still here"));
  parley_test::Received r = client.recv_message();
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.payload, "still here");
  EXPECT_GT(parley_test::parleyd_metric(server.port(), "parley_accept_rejected_total"), 0);
}

TEST(WsServer, SigtermStopsTheServerWithStatusZero) {
  ParleydProcess server;
  ASSERT_TRUE(server.ok()) << server.error();
  int status = server.stop();
  ASSERT_TRUE(WIFEXITED(status)) << server.status_text();
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(WsServer, SigtermSendsGoingAwayThenExitsZero) {
  ParleydProcess server({"--drain-timeout", "2000"});
  ASSERT_TRUE(server.ok()) << server.error();
  WsTestClient client;
  ASSERT_TRUE(client.connect("127.0.0.1", server.port())) << client.error();
  kill(server.pid(), SIGTERM);
  parley_test::CloseResult close = client.expect_close(3000ms);  // answers the close
  ASSERT_TRUE(close.close_received) << close.error;
  EXPECT_EQ(close.code, 1001);
  EXPECT_TRUE(close.tcp_closed);
  int status = server.stop(3000ms);
  ASSERT_TRUE(WIFEXITED(status)) << server.status_text();
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(WsServer, WorkersShareOnePortAndStopTogether) {
  ParleydProcess server({"--workers", "3"});
  ASSERT_TRUE(server.ok()) << server.error();
  std::vector<std::unique_ptr<WsTestClient>> clients;
  for (int i = 0; i < 30; ++i) {
    clients.push_back(std::make_unique<WsTestClient>());
    ASSERT_TRUE(clients.back()->connect("127.0.0.1", server.port())) << clients.back()->error();
    ASSERT_TRUE(clients.back()->send_frame(parley_test::kOpText, "w" + std::to_string(i)));
    parley_test::Received r = clients.back()->recv_message();
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.payload, "w" + std::to_string(i));
  }
  int status = server.stop(6000ms);
  ASSERT_TRUE(WIFEXITED(status)) << server.status_text();
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
