// parley-load against a real parleyd: echo (closed and open loop, one and two processes),
// connect (TCP close and close frame), broadcast (open and closed loop, one and two processes),
// chat (exact counts; idling and reconnecting users over two processes) and idle (pings
// answered) for about a second each, checking through --json that the counts add up and nothing
// failed; and that failures are reported as such.
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/load_run.h"
#include "tests/support/parleyd_process.h"
#include "tests/support/tls_test_certs.h"

namespace {

using parley_test::ParleydProcess;

using parley_test::json_number;
using parley_test::LoadRun;
using parley_test::run_load;

// More than `min_published` messages went out, each acknowledged and delivered `fanout` times,
// and the run counted no errors.
void expect_every_delivery(const LoadRun& run, double min_published, int fanout) {
  const double published = json_number(run.json, "published");
  EXPECT_GT(published, min_published) << run.output;
  EXPECT_EQ(json_number(run.json, "acked"), published);
  EXPECT_EQ(json_number(run.json, "deliveries"), published * fanout) << run.output;
  EXPECT_EQ(json_number(run.json, "total"), 0) << run.output;
}

class LoadIntegration : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.ok()) << server_.error(); }
  std::string url(const char* path = "/echo") const {
    return "ws://127.0.0.1:" + std::to_string(server_.port()) + path;
  }

  ParleydProcess server_;
};

TEST_F(LoadIntegration, EchoClosedLoopCountsAddUp) {
  const LoadRun run = run_load({"echo", "--url", url(), "-c", "20", "--pipeline", "8", "--duration", "1", "--quiet"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const double sent = json_number(run.json, "messages_sent");
  EXPECT_GT(sent, 1000) << run.output;
  EXPECT_EQ(json_number(run.json, "messages_received"), sent) << run.output;
  EXPECT_EQ(json_number(run.json, "total"), 0) << run.output;  // errors
  EXPECT_EQ(json_number(run.json, "upgrades"), 20);
  EXPECT_EQ(json_number(run.json, "closes_clean"), 20);  // every connection closed by handshake
  EXPECT_EQ(json_number(run.json, "count"), sent);      // one latency sample per echo
}

TEST_F(LoadIntegration, EchoOpenLoopSendsTheSchedule) {
  const LoadRun run = run_load({"echo", "--url", url(), "-c", "10", "--rate", "2000", "--warmup", "0.3", "--duration",
                                "1", "--binary", "--size", "100", "--quiet"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const double sent = json_number(run.json, "messages_sent");
  // The schedule decides what is due in the window, not how fast the server answers; what the
  // in-flight cap held back (a server far behind) is reported as unsent.
  EXPECT_NEAR(sent + json_number(run.json, "messages_unsent"), 2000, 10) << run.output;
  EXPECT_EQ(json_number(run.json, "messages_received"), sent) << run.output;
  EXPECT_EQ(json_number(run.json, "payload_bytes_received"), sent * 100);
  EXPECT_EQ(json_number(run.json, "total"), 0) << run.output;
}

TEST_F(LoadIntegration, EchoTwoProcessesMerge) {
  const LoadRun run =
      run_load({"echo", "--url", url(), "-c", "21", "-j", "2", "--pipeline", "2", "--duration", "1", "--quiet"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const double sent = json_number(run.json, "messages_sent");
  EXPECT_GT(sent, 100);
  EXPECT_EQ(json_number(run.json, "messages_received"), sent);
  EXPECT_EQ(json_number(run.json, "upgrades"), 21);
  EXPECT_EQ(json_number(run.json, "processes"), 2);
  EXPECT_EQ(json_number(run.json, "total"), 0) << run.output;
}

TEST_F(LoadIntegration, ConnectWithTcpClose) {
  const LoadRun run = run_load({"connect", "--url", url(), "-c", "4", "--duration", "1"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const double cycles = json_number(run.json, "cycles");
  EXPECT_GT(cycles, 10) << run.output;
  EXPECT_GE(json_number(run.json, "upgrades"), cycles);
  EXPECT_EQ(json_number(run.json, "total"), 0) << run.output;
  EXPECT_NE(run.output.find("handshakes/s"), std::string::npos) << run.output;  // progress line
}

TEST_F(LoadIntegration, ConnectWithCloseHandshake) {
  const LoadRun run = run_load({"connect", "--url", url(), "-c", "4", "--duration", "1", "--close", "--quiet"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const double cycles = json_number(run.json, "cycles");
  EXPECT_GT(cycles, 10) << run.output;
  EXPECT_GE(json_number(run.json, "closes_clean"), cycles);
  EXPECT_EQ(json_number(run.json, "total"), 0) << run.output;
}

TEST_F(LoadIntegration, UnknownPathIsAHandshakeError) {
  const LoadRun run = run_load({"echo", "--url", url("/no-such-endpoint"), "-c", "3", "--duration", "0.3", "--quiet"});
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_EQ(json_number(run.json, "handshake"), 3) << run.output;
  EXPECT_EQ(json_number(run.json, "messages_sent"), 0);
}

// parleyd limits chat messages per connection by default; a benchmark turns that off.
class BroadcastIntegration : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.ok()) << server_.error(); }
  std::string url() const { return "ws://127.0.0.1:" + std::to_string(server_.port()) + "/chat"; }

  ParleydProcess server_{{"--rate-limit", "0"}};
};

TEST_F(BroadcastIntegration, OpenLoopEverySubscriberGetsEveryMessage) {
  const LoadRun run = run_load({"broadcast", "--url", url(), "-c", "5", "--rate", "300", "--duration", "1",
                                "--server-pid", std::to_string(server_.pid())});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const double published = json_number(run.json, "published");
  EXPECT_NEAR(published + json_number(run.json, "messages_unsent"), 300, 3) << run.output;
  EXPECT_EQ(json_number(run.json, "acked"), published);
  EXPECT_EQ(json_number(run.json, "subscribers_joined"), 5);
  EXPECT_EQ(json_number(run.json, "deliveries_expected"), published * 5);
  EXPECT_EQ(json_number(run.json, "deliveries"), published * 5) << run.output;
  EXPECT_EQ(json_number(run.json, "deliveries_missing"), 0);
  EXPECT_EQ(json_number(run.json, "count"), published * 5);  // one latency sample per delivery
  EXPECT_EQ(json_number(run.json, "upgrades"), 6);           // and the publisher
  EXPECT_GT(json_number(run.json, "server_cpu_window_s"), 0.5);
  EXPECT_EQ(json_number(run.json, "total"), 0) << run.output;  // errors
  EXPECT_NE(run.output.find("deliveries/s"), std::string::npos) << run.output;  // progress line
}

TEST_F(BroadcastIntegration, ClosedLoopAcrossTwoProcesses) {
  const LoadRun run = run_load({"broadcast", "--url", url(), "-c", "7", "-j", "2", "--publishers", "2", "--pipeline",
                                "4", "--size", "1024", "--duration", "1", "--warmup", "0.2", "--quiet"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  expect_every_delivery(run, 50, 7);
  EXPECT_EQ(json_number(run.json, "processes"), 2);
  EXPECT_EQ(json_number(run.json, "subscribers_joined"), 7);
}

// The chat scenario against a server with no per-connection message limit.
using ChatIntegration = BroadcastIntegration;

TEST_F(ChatIntegration, EveryMessageReachesEveryOtherMemberExactly) {
  // 16 users, 4 rooms, 3 each: 12 members per room, so each accepted msg makes 11 deliveries.
  // Half the user-seconds are idle (16 users x 1 s: all 16 draws busy has odds of 1 in 65,536).
  const LoadRun run = run_load({"chat", "--url", url(), "-c", "16", "--rooms", "4", "--rooms-per-user", "3",
                                "--user-rate", "20", "--idle-share", "0.5", "--duration", "1", "--server-pid",
                                std::to_string(server_.pid())});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const double published = json_number(run.json, "published");
  const double skipped = json_number(run.json, "skipped");
  EXPECT_GT(skipped, 0) << run.output;
  EXPECT_NEAR(published + skipped + json_number(run.json, "messages_unsent"), 320, 3) << run.output;
  EXPECT_EQ(json_number(run.json, "acked"), published);
  EXPECT_EQ(json_number(run.json, "refused"), 0);
  EXPECT_EQ(json_number(run.json, "users_joined"), 16);
  EXPECT_NE(run.json.find("\"deliveries_exact\": true"), std::string::npos) << run.json;
  EXPECT_EQ(json_number(run.json, "deliveries_expected"), published * 11);
  EXPECT_EQ(json_number(run.json, "deliveries"), published * 11) << run.output;
  EXPECT_EQ(json_number(run.json, "count"), published * 11);  // one latency sample per delivery
  EXPECT_EQ(json_number(run.json, "upgrades"), 16);
  // Each join was announced to the members already in: 12 x 11 / 2 joined events per room.
  EXPECT_EQ(json_number(run.json, "presence_events"), 4 * 66) << run.output;
  EXPECT_GT(json_number(run.json, "server_cpu_window_s"), 0.5);
  EXPECT_EQ(json_number(run.json, "total"), 0) << run.output;  // errors: no own msg back, no stray room
  EXPECT_NE(run.output.find("deliveries/s"), std::string::npos) << run.output;  // progress line
}

TEST_F(ChatIntegration, IdleAndReconnectingUsersAcrossTwoProcesses) {
  // Every user closes once and comes back: presence events flow, deliveries stay within the bound.
  const LoadRun run = run_load({"chat", "--url", url(), "-c", "10", "-j", "2", "--rooms", "3", "--rooms-per-user", "2",
                                "--user-rate", "20", "--idle-share", "0.3", "--reconnect-share", "1", "--duration",
                                "1.2", "--quiet"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const double published = json_number(run.json, "published");
  EXPECT_GT(published, 50) << run.output;
  EXPECT_EQ(json_number(run.json, "acked"), published);
  EXPECT_EQ(json_number(run.json, "processes"), 2);
  EXPECT_EQ(json_number(run.json, "reconnects_planned"), 10);
  EXPECT_EQ(json_number(run.json, "reconnects"), 10) << run.output;
  EXPECT_EQ(json_number(run.json, "upgrades"), 20);
  EXPECT_EQ(json_number(run.json, "closes_clean"), 10);
  // Each comeback is announced (left, then joined) to the other members of the user's rooms.
  EXPECT_GE(json_number(run.json, "presence_events"), 20) << run.output;
  EXPECT_GT(json_number(run.json, "skipped"), 0) << run.output;  // idle seconds, time away
  EXPECT_NE(run.json.find("\"deliveries_exact\": false"), std::string::npos) << run.json;
  const double deliveries = json_number(run.json, "deliveries");
  EXPECT_GT(deliveries, published) << run.output;
  EXPECT_LE(deliveries, json_number(run.json, "deliveries_expected")) << run.output;
  EXPECT_EQ(json_number(run.json, "total"), 0) << run.output;
}

// parleyd with a fast heartbeat, so a second's hold sees pings. (parleyd pings again only after
// the pong deadline, so the period is the longer of the two.)
class IdleIntegration : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.ok()) << server_.error(); }
  std::string url() const { return "ws://127.0.0.1:" + std::to_string(server_.port()) + "/echo"; }

  ParleydProcess server_{{"--ping-interval", "300", "--pong-timeout", "250"}};
};

TEST_F(IdleIntegration, HoldsEveryConnectionAndAnswersPings) {
  const LoadRun run = run_load({"idle", "--url", url(), "-c", "30", "-j", "2", "--ramp", "1000", "--warmup", "0.2",
                                "--duration", "1", "--server-pid", std::to_string(server_.pid())});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(json_number(run.json, "open"), 30) << run.output;
  EXPECT_EQ(json_number(run.json, "upgrades"), 30);
  EXPECT_EQ(json_number(run.json, "lost"), 0);
  // A ping every 300 ms to each of 30 connections over about a second measured.
  const double pings = json_number(run.json, "pings");
  EXPECT_GE(pings, 30 * 2) << run.output;
  EXPECT_LE(pings, 30 * 6) << run.output;
  EXPECT_GT(json_number(run.json, "measured_s"), 0.8);
  EXPECT_GT(json_number(run.json, "ramp_s"), 0);
  EXPECT_GT(json_number(run.json, "server_cpu_window_s"), 0.5);
  EXPECT_EQ(json_number(run.json, "total"), 0) << run.output;
  EXPECT_NE(run.output.find("pings/s"), std::string::npos) << run.output;  // progress line
}

// Every scenario over wss:// against parleyd serving TLS with a fresh self-signed certificate
// (subjectAltName localhost and 127.0.0.1): trusted through --ca-file, or not checked (-k).
class WssLoadIntegration : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cert_.ok()) << cert_.error();
    ASSERT_TRUE(server_.ok()) << server_.error();
  }
  std::string url(const char* path = "/echo") const {
    return "wss://127.0.0.1:" + std::to_string(server_.port()) + path;
  }

  parley_test::TestCertificate cert_;
  ParleydProcess server_{{"--tls-cert", cert_.cert_path(), "--tls-key", cert_.key_path(), "--rate-limit", "0",
                          "--ping-interval", "300", "--pong-timeout", "250"}};
};

TEST_F(WssLoadIntegration, EchoClosedLoopWithTheCertificateTrusted) {
  const LoadRun run = run_load({"echo", "--url", url(), "--ca-file", cert_.cert_path(), "-c", "10", "--pipeline", "4",
                                "--size", "3000", "--duration", "1", "--quiet"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const double sent = json_number(run.json, "messages_sent");
  EXPECT_GT(sent, 500) << run.output;
  EXPECT_EQ(json_number(run.json, "messages_received"), sent) << run.output;
  EXPECT_EQ(json_number(run.json, "payload_bytes_received"), sent * 3000);
  EXPECT_EQ(json_number(run.json, "upgrades"), 10);
  EXPECT_EQ(json_number(run.json, "closes_clean"), 10);
  EXPECT_EQ(json_number(run.json, "total"), 0) << run.output;
  EXPECT_NE(run.output.find("wss://127.0.0.1:" + std::to_string(server_.port()) + "/echo (TLS, certificate verified)"),
            std::string::npos)
      << run.output;
  EXPECT_NE(run.json.find("\"tls\": \"verified\""), std::string::npos) << run.json;
}

TEST_F(WssLoadIntegration, EchoOpenLoopLargeMessagesTwoProcesses) {
  // 40 KiB messages span several TLS records each way.
  const LoadRun run = run_load({"echo", "--url", url(), "-k", "-c", "6", "-j", "2", "--rate", "300", "--binary",
                                "--size", "40000", "--warmup", "0.3", "--duration", "1", "--quiet"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const double sent = json_number(run.json, "messages_sent");
  EXPECT_NEAR(sent + json_number(run.json, "messages_unsent"), 300, 5) << run.output;
  EXPECT_EQ(json_number(run.json, "messages_received"), sent) << run.output;
  EXPECT_EQ(json_number(run.json, "total"), 0) << run.output;
  EXPECT_NE(run.json.find("\"tls\": \"unverified\""), std::string::npos) << run.json;
}

TEST_F(WssLoadIntegration, ConnectWithTcpCloseAndWithCloseHandshake) {
  for (const bool close_frame : {false, true}) {
    std::vector<std::string> args = {"connect", "--url", url(), "--ca-file", cert_.cert_path(), "-c", "4",
                                     "--duration", "0.7", "--quiet"};
    if (close_frame) args.push_back("--close");
    const LoadRun run = run_load(args);
    ASSERT_EQ(run.exit_code, 0) << run.output;
    const double cycles = json_number(run.json, "cycles");
    EXPECT_GT(cycles, 10) << run.output;
    EXPECT_GE(json_number(run.json, "upgrades"), cycles);
    if (close_frame) {
      EXPECT_GE(json_number(run.json, "closes_clean"), cycles);
    }
    // Every handshake after the first few resumes the session the server's ticket gave.
    EXPECT_GE(json_number(run.json, "tls_handshakes"), cycles);
    EXPECT_GT(json_number(run.json, "tls_resumed"), cycles / 2) << run.output;
    EXPECT_EQ(json_number(run.json, "total"), 0) << run.output;
  }
}

TEST_F(WssLoadIntegration, BroadcastEverySubscriberGetsEveryMessage) {
  const LoadRun run = run_load({"broadcast", "--url", url("/chat"), "-k", "-c", "5", "--rate", "200", "--duration",
                                "0.8", "--quiet"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  expect_every_delivery(run, 100, 5);
}

TEST_F(WssLoadIntegration, ChatEveryMessageReachesEveryOtherMember) {
  // 8 users, 2 rooms, both each: each accepted msg makes 7 deliveries.
  const LoadRun run = run_load({"chat", "--url", url("/chat"), "--ca-file", cert_.cert_path(), "-c", "8", "--rooms",
                                "2", "--rooms-per-user", "2", "--user-rate", "10", "--duration", "0.8", "--quiet"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  expect_every_delivery(run, 20, 7);
}

TEST_F(WssLoadIntegration, IdleHoldsEveryConnectionAndAnswersPings) {
  const LoadRun run = run_load({"idle", "--url", url(), "--ca-file", cert_.cert_path(), "-c", "20", "--ramp", "1000",
                                "--duration", "1"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(json_number(run.json, "open"), 20) << run.output;
  EXPECT_EQ(json_number(run.json, "lost"), 0);
  EXPECT_GE(json_number(run.json, "pings"), 20 * 2) << run.output;
  EXPECT_EQ(json_number(run.json, "total"), 0) << run.output;
}

TEST_F(WssLoadIntegration, SelfSignedCertificateIsAHandshakeErrorWithTheReason) {
  const LoadRun run = run_load({"echo", "--url", url(), "-c", "3", "--duration", "0.3", "--quiet"});
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_EQ(json_number(run.json, "handshake"), 3) << run.output;
  EXPECT_EQ(json_number(run.json, "messages_sent"), 0);
  EXPECT_NE(run.output.find("TLS handshake: certificate verify failed: self-signed certificate"), std::string::npos)
      << run.output;
}

TEST_F(LoadIntegration, WssToAPlainServerIsAHandshakeError) {
  // A ClientHello cannot start an HTTP request: parleyd answers 400 and closes at once (issue
  // 13), so each connection fails its TLS handshake instead of timing out.
  const std::string wss = "wss://127.0.0.1:" + std::to_string(server_.port()) + "/echo";
  const LoadRun run = run_load({"echo", "--url", wss, "-k", "-c", "2", "--duration", "0.3", "--quiet"});
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_EQ(json_number(run.json, "timeout"), 0) << run.output;
  EXPECT_GE(json_number(run.json, "handshake"), 2) << run.output;
  EXPECT_NE(run.output.find("TLS handshake: failed (is the server speaking TLS?)"), std::string::npos) << run.output;
}

TEST(BroadcastIntegrationLimited, ServerRefusalsAreChatErrors) {
  // parleyd's default per-connection message limit (20/s, bursts of 40) refuses some of 100/s
  // (never 20 in a row, which would close the publisher).
  ParleydProcess server;
  ASSERT_TRUE(server.ok()) << server.error();
  const std::string url = "ws://127.0.0.1:" + std::to_string(server.port()) + "/chat";
  const LoadRun run = run_load({"broadcast", "--url", url, "-c", "2", "--rate", "100", "--duration", "0.6", "--quiet"});
  EXPECT_EQ(run.exit_code, 1) << run.output;
  const double refused = json_number(run.json, "refused");
  EXPECT_GT(refused, 0) << run.output;
  EXPECT_EQ(json_number(run.json, "chat"), refused) << run.output;
  EXPECT_NE(run.output.find("rate_limited"), std::string::npos) << run.output;
  // A refused msg is no missing delivery: the others all arrive.
  EXPECT_EQ(json_number(run.json, "deliveries"), (json_number(run.json, "published") - refused) * 2) << run.output;
  EXPECT_EQ(json_number(run.json, "deliveries_missing"), 0) << run.output;
  EXPECT_EQ(json_number(run.json, "total"), refused) << run.output;  // no other error
}

TEST(LoadIntegrationNoServer, RefusedConnectionsAreConnectErrors) {
  // A port nobody listens on: bind one, note it, close it.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  socklen_t length = sizeof address;
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);
  const std::string url = "ws://127.0.0.1:" + std::to_string(ntohs(address.sin_port)) + "/echo";
  const LoadRun run = run_load({"echo", "--url", url, "-c", "2", "--duration", "0.2", "--quiet"});
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_EQ(json_number(run.json, "connect"), 2) << run.output;
}

TEST(LoadIntegrationNoServer, BadUsageExitsWithTwo) {
  EXPECT_EQ(run_load({"--url", "http://x"}).exit_code, 2);
  EXPECT_EQ(run_load({"-c", "40000"}).exit_code, 2);  // over 19,000 per process without -j
  EXPECT_EQ(run_load({"--bogus"}).exit_code, 2);
}

}  // namespace
