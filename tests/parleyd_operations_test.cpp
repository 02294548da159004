// parleyd run as an operator runs it (issue 16): --check-config and start-up errors as a
// process, SIGHUP reload on a running server, warn lines per refusal and their rate limit,
// --metrics-listen, /readyz during drain, and /metrics against a known load.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "chat/auth_token.h"
#include "tests/support/chat_test_support.h"
#include "tests/support/parleyd_process.h"
#include "tests/support/shell_command.h"
#include "tests/support/ws_test_client.h"

namespace {

using namespace std::chrono_literals;
using parley_test::ParleydProcess;
using parley_test::WsTestClient;

bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return condition();
}

std::string temp_path(const char* stem) {
  return "/tmp/" + std::string(stem) + "_" + std::to_string(getpid()) + ".toml";
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::trunc) << text;
}

size_t count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

parley_test::HttpResponse get(uint16_t port, const std::string& path) {
  return parley_test::http_request("127.0.0.1", port, "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n");
}

// The port of the metrics listener, from the "metrics listening address=127.0.0.1:N" line.
uint16_t metrics_port(ParleydProcess& server) {
  uint16_t port = 0;
  wait_until([&] {
    const std::string err = server.stderr_text();
    size_t at = err.find("metrics listening address=127.0.0.1:");
    if (at == std::string::npos) return false;
    port = static_cast<uint16_t>(std::stoi(err.substr(at + std::strlen("metrics listening address=127.0.0.1:"))));
    return true;
  }, 5s);
  return port;
}

// The value of sample `series` (name with labels, if any) in a Prometheus `body`, or -1.
double sample(const std::string& body, const std::string& series) {
  size_t at = body.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(body.substr(at + series.size() + 2));
}

std::string run(const std::string& command, int& status) {
  std::string output;
  status = parley_test::run_shell(command, output);
  return output;
}

TEST(ParleydOperations, CheckConfigOnTheExampleFileAndOnErrors) {
  const std::string parleyd = parley_test::build_dir() + "/parleyd";
  const auto root = parley_test::find_repo_root("docs/parley.toml");
  ASSERT_FALSE(root.empty()) << "docs/parley.toml not found";
  int status = -1;
  std::string out = run("env -u PARLEY_CONFIG " + parleyd + " --check-config --config " +
                            (root / "docs/parley.toml").string(), status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_NE(out.find("(config file "), std::string::npos) << out;
  EXPECT_NE(out.find("docs/parley.toml:"), std::string::npos) << "no value came from the example file: " << out;

  const std::string bad = temp_path("parley_bad");
  write_file(bad, "listen = \"127.0.0.1:0\"\nmax-text = \"huge\"\n");
  out = run(parleyd + " --check-config --config " + bad, status);
  EXPECT_EQ(status, 1) << out;
  EXPECT_EQ(out, "parleyd: " + bad + ":2: invalid max-text 'huge' (bytes, 1 to 64M, e.g. 4096 or 16K)\n");
  // Starting (not checking) with the same mistakes: one line, exit 2, like any usage error.
  out = run(parleyd + " --config " + bad, status);
  EXPECT_EQ(status, 2) << out;
  EXPECT_EQ(count(out, "\n"), 1u) << out;
  out = run("PARLEY_RATE_LIMIT=lots " + parleyd + " --store none", status);
  EXPECT_EQ(status, 2) << out;
  EXPECT_EQ(out, "parleyd: PARLEY_RATE_LIMIT: invalid rate-limit 'lots' (messages per second, 0 (off) to 1000000)\n");
  // The secret file is checked too, and the secret itself is never printed.
  const std::string secret = temp_path("parley_secret");
  write_file(secret, "0123456789abcdef0123456789abcdef-very-secret");
  out = run(parleyd + " --check-config --auth-secret " + secret, status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_EQ(out.find("very-secret"), std::string::npos) << out;
  out = run(parleyd + " --check-config --auth-secret /nonexistent/secret", status);
  EXPECT_EQ(status, 1) << out;
  std::remove(bad.c_str());
  std::remove(secret.c_str());
}

TEST(ParleydOperations, SighupReloadChangesThePerAddressCapAndSaysSo) {
  const std::string file = temp_path("parley_reload");
  write_file(file, "max-connections-per-ip = 5\nrate-limit = 20\n");
  ParleydProcess server({"--config", file});
  ASSERT_TRUE(server.ok()) << server.error();
  std::vector<std::unique_ptr<WsTestClient>> clients;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(std::make_unique<WsTestClient>());
    ASSERT_TRUE(clients.back()->connect("127.0.0.1", server.port(), "/echo")) << clients.back()->error();
  }
  write_file(file, "max-connections-per-ip = 3\nrate-limit = 7\nworkers = 2\n");
  ASSERT_EQ(kill(server.pid(), SIGHUP), 0);
  ASSERT_TRUE(wait_until([&] { return server.stderr_text().find(" reloaded ") != std::string::npos; }, 5s))
      << server.stderr_text();
  const std::string err = server.stderr_text();
  EXPECT_NE(err.find("changed max-connections-per-ip 5 -> 3, rate-limit 20 -> 7"), std::string::npos) << err;
  EXPECT_NE(err.find("needs a restart (kept the running value): workers 1 -> 2"), std::string::npos) << err;
  // A fourth connection from this address is now over the cap: 503.
  WsTestClient fourth;
  EXPECT_FALSE(fourth.connect("127.0.0.1", server.port(), "/echo"));
  EXPECT_EQ(fourth.handshake_response().status, 503);
  // A configuration that does not load keeps the running one.
  write_file(file, "max-connections-per-ip = -1\n");
  ASSERT_EQ(kill(server.pid(), SIGHUP), 0);
  ASSERT_TRUE(wait_until([&] { return server.stderr_text().find("reload failed") != std::string::npos; }, 5s));
  EXPECT_TRUE(server.running());
  clients.pop_back();
  WsTestClient again;
  EXPECT_TRUE(wait_until([&] { return again.connect("127.0.0.1", server.port(), "/echo"); }, 5s)) << again.error();
  std::remove(file.c_str());
}

// Key rotation: a SIGHUP re-reads the secret file (same path, new contents), and from then on both
// /chat and /echo take tokens signed with the new key only; dropping the option needs a restart.
TEST(ParleydOperations, SighupRotatesTheTokenSecretForChatAndEcho) {
  const std::string old_key(40, 'a');
  const std::string new_key(40, 'b');
  const std::string secret = temp_path("parley_rotate_secret");
  const std::string file = temp_path("parley_rotate");
  write_file(secret, old_key);
  write_file(file, "auth-secret = \"" + secret + "\"\n");
  ParleydProcess server({"--config", file});
  ASSERT_TRUE(server.ok()) << server.error();
  const uint64_t later = static_cast<uint64_t>(time(nullptr)) + 3600;
  const std::string old_token = chat::mint_token("alice", {}, later, old_key);
  const std::string new_token = chat::mint_token("alice", {}, later, new_key);
  // The status of an upgrade to `path` carrying `token` (none when empty).
  auto upgrade_status = [&](const char* path, const std::string& token) {
    WsTestClient client;
    std::vector<std::string> headers;
    if (!token.empty()) headers.push_back("Authorization: Bearer " + token);
    client.connect("127.0.0.1", server.port(), path, headers);
    return client.handshake_response().status;
  };
  for (const char* path : {"/echo", "/chat"}) {
    EXPECT_EQ(upgrade_status(path, old_token), 101) << path;
    EXPECT_EQ(upgrade_status(path, new_token), 401) << path;
    EXPECT_EQ(upgrade_status(path, ""), 401) << path;
  }
  write_file(secret, new_key);
  ASSERT_EQ(kill(server.pid(), SIGHUP), 0);
  ASSERT_TRUE(wait_until([&] { return server.stderr_text().find("auth-secret contents reloaded") != std::string::npos; },
                         5s))
      << server.stderr_text();
  for (const char* path : {"/echo", "/chat"}) {
    EXPECT_EQ(upgrade_status(path, old_token), 401) << path;
    EXPECT_EQ(upgrade_status(path, new_token), 101) << path;
  }
  // Turning authentication off is a restart: said so, and both endpoints keep asking for the
  // (current) key.
  write_file(file, "");
  ASSERT_EQ(kill(server.pid(), SIGHUP), 0);
  ASSERT_TRUE(wait_until([&] { return count(server.stderr_text(), " reloaded ") == 2; }, 5s)) << server.stderr_text();
  EXPECT_NE(server.stderr_text().find("turning token authentication on or off"), std::string::npos)
      << server.stderr_text();
  for (const char* path : {"/echo", "/chat"}) {
    EXPECT_EQ(upgrade_status(path, ""), 401) << path;
    EXPECT_EQ(upgrade_status(path, new_token), 101) << path;
  }
  std::remove(file.c_str());
  std::remove(secret.c_str());
}

TEST(ParleydOperations, EachRefusalLogsOneWarnLineAndTheRateLimitCapsThem) {
  ParleydProcess server({"--max-connections-per-ip", "1", "--max-handshakes-per-ip", "64", "--metrics-listen",
                         "127.0.0.1:0"});
  ASSERT_TRUE(server.ok()) << server.error();
  const uint16_t port = metrics_port(server);
  ASSERT_NE(port, 0);
  WsTestClient first;
  ASSERT_TRUE(first.connect("127.0.0.1", server.port(), "/echo")) << first.error();
  constexpr int kRefused = 30;
  for (int i = 0; i < kRefused; ++i) {
    WsTestClient refused;
    EXPECT_FALSE(refused.connect("127.0.0.1", server.port(), "/echo"));
    EXPECT_EQ(refused.handshake_response().status, 503);
  }
  // One line per refusal up to 5 per second and reason, then one summary of the rest.
  ASSERT_TRUE(wait_until([&] { return server.stderr_text().find("more like this") != std::string::npos; }, 5s))
      << server.stderr_text();
  const std::string err = server.stderr_text();
  const size_t lines = count(err, " warn refused peer=127.0.0.1:");
  EXPECT_GE(lines, 5u) << err;
  EXPECT_LT(lines, static_cast<size_t>(kRefused)) << err;
  EXPECT_NE(err.find("code=503"), std::string::npos) << err;
  // The suppressed ones are counted for /metrics.
  const double suppressed =
      sample(get(port, "/metrics").body, "parley_log_suppressed_lines_total");
  EXPECT_EQ(suppressed, static_cast<double>(kRefused) - static_cast<double>(lines)) << err;
}

TEST(ParleydOperations, MetricsListenServesTheFiguresAndTheMainPortDoesNot) {
  ParleydProcess server({"--metrics-listen", "127.0.0.1:0"});
  ASSERT_TRUE(server.ok()) << server.error();
  const uint16_t port = metrics_port(server);
  ASSERT_NE(port, 0) << server.stderr_text();
  EXPECT_EQ(get(server.port(), "/metrics").status, 404);
  EXPECT_EQ(get(server.port(), "/healthz").status, 200);
  EXPECT_EQ(get(server.port(), "/readyz").status, 200);
  parley_test::HttpResponse metrics = get(port, "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("parley_build_info{version=\"0.1.0\",commit=\""), std::string::npos) << metrics.body;
  for (const char* name : {"process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
                           "parley_log_dropped_lines_total", "parley_upgrades_total"}) {
    EXPECT_GE(sample(metrics.body, name), 0) << name;
  }
  EXPECT_EQ(get(port, "/readyz").status, 200);
  EXPECT_EQ(get(port, "/").status, 404);  // the metrics port serves nothing else
}

TEST(ParleydOperations, ReadyzSaysNotReadyWhileDraining) {
  ParleydProcess server({"--metrics-listen", "127.0.0.1:0", "--drain-timeout", "4000", "--close-timeout", "4000"});
  ASSERT_TRUE(server.ok()) << server.error();
  const uint16_t port = metrics_port(server);
  ASSERT_NE(port, 0);
  // A client that never answers the close keeps the drain going.
  WsTestClient client;
  ASSERT_TRUE(client.connect("127.0.0.1", server.port(), "/echo")) << client.error();
  ASSERT_EQ(get(port, "/readyz").status, 200);
  ASSERT_EQ(kill(server.pid(), SIGTERM), 0);
  ASSERT_TRUE(wait_until([&] { return server.stderr_text().find("info draining") != std::string::npos; }, 5s));
  parley_test::HttpResponse readyz = get(port, "/readyz");
  EXPECT_EQ(readyz.status, 503);
  EXPECT_EQ(readyz.body, "draining\n");
  EXPECT_EQ(get(port, "/healthz").status, 200);  // alive, just not taking traffic
}

TEST(ParleydOperations, MetricsCountAKnownLoadExactly) {
  ParleydProcess server({"--metrics-listen", "127.0.0.1:0", "--max-connections-per-ip", "0",
                         "--max-handshakes-per-ip", "0"});
  ASSERT_TRUE(server.ok()) << server.error();
  const uint16_t port = metrics_port(server);
  ASSERT_NE(port, 0);
  constexpr int kClients = 4;
  constexpr int kMessages = 25;
  std::vector<std::unique_ptr<WsTestClient>> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<WsTestClient>());
    ASSERT_TRUE(clients.back()->connect("127.0.0.1", server.port(), "/echo")) << clients.back()->error();
  }
  size_t bytes = 0;
  for (auto& client : clients) {
    for (int m = 0; m < kMessages; ++m) {
      const std::string text = "message " + std::to_string(m);
      bytes += text.size();
      ASSERT_TRUE(client->send_frame(0x1, text));
      ASSERT_TRUE(client->recv_message().ok());
    }
  }
  const std::string body = get(port, "/metrics").body;
  EXPECT_EQ(sample(body, "parley_upgrades_total"), kClients) << body;
  EXPECT_EQ(sample(body, "parley_messages_received_total"), kClients * kMessages);
  EXPECT_EQ(sample(body, "parley_messages_sent_total"), kClients * kMessages);
  EXPECT_EQ(sample(body, "parley_connections"), kClients);  // scrapes go to the other listener
  EXPECT_EQ(sample(body, "parley_http_responses_total"), 0);
  // Every loop iteration so far is in the histogram, once.
  const double iterations = sample(body, "parley_loop_iterations_total");
  const double timed = sample(body, "parley_loop_iteration_seconds_count");
  EXPECT_GT(timed, kClients * kMessages / 2);
  EXPECT_LE(timed, iterations);
  EXPECT_GE(timed, iterations - 2);  // the scrape's own iteration is still running
  EXPECT_EQ(sample(body, "parley_loop_iteration_seconds_bucket{le=\"+Inf\"}"), timed);
  EXPECT_GT(bytes, 0u);
}

TEST(ParleydOperations, ChatFiguresCountAKnownConversationExactly) {
  ParleydProcess server({"--metrics-listen", "127.0.0.1:0", "--rate-limit", "0"});
  ASSERT_TRUE(server.ok()) << server.error();
  const uint16_t port = metrics_port(server);
  ASSERT_NE(port, 0);
  std::vector<std::unique_ptr<parley_test::ChatClient>> users;
  for (const char* name : {"alice", "bob", "carol"}) {
    users.push_back(std::make_unique<parley_test::ChatClient>());
    ASSERT_TRUE(users.back()->connect(server.port()));
    users.back()->hello(name);
    users.back()->join("room");
  }
  constexpr int kMessages = 10;
  for (int i = 0; i < kMessages; ++i) {
    ASSERT_TRUE(users[0]->send(R"({"type":"msg","room":"room","text":"m)" + std::to_string(i) + R"("})"));
  }
  // Each of the others sees all ten (skipping the "joined" notices that came first).
  for (size_t u = 1; u < users.size(); ++u) {
    int seen = 0;
    while (seen < kMessages) {
      const std::string message = users[u]->recv();
      ASSERT_FALSE(message.empty());
      if (message.find(R"("type":"msg")") != std::string::npos) ++seen;
    }
  }
  const std::string body = get(port, "/metrics").body;
  EXPECT_EQ(sample(body, "parley_chat_users"), 3) << body;
  EXPECT_EQ(sample(body, "parley_chat_room_members"), 3);
  EXPECT_EQ(sample(body, "parley_chat_messages_total"), kMessages);
  EXPECT_EQ(sample(body, "parley_chat_direct_messages_total"), 0);
  // Frames in: 3 hellos, 3 joins, the messages.
  EXPECT_EQ(sample(body, "parley_messages_received_total"), 3 + 3 + kMessages);
  EXPECT_GE(sample(body, "parley_chat_deliveries_total"), 2 * kMessages);
}

TEST(ParleydOperations, RateLimitCloseIsOneWarnLineWithThePeer) {
  ParleydProcess server({"--rate-limit", "1", "--rate-burst", "1"});
  ASSERT_TRUE(server.ok()) << server.error();
  parley_test::ChatClient flooder;
  ASSERT_TRUE(flooder.connect(server.port()));
  flooder.hello("flooder");
  for (int i = 0; i < 30; ++i) {
    if (!flooder.send(R"({"type":"typing","room":"r"})")) break;
  }
  ASSERT_TRUE(wait_until([&] { return server.stderr_text().find("code=1008") != std::string::npos; }, 5s))
      << server.stderr_text();
  const std::string err = server.stderr_text();
  EXPECT_EQ(count(err, "code=1008"), 1u) << err;
  EXPECT_NE(err.find(" warn closed peer=127.0.0.1:"), std::string::npos) << err;
  EXPECT_NE(err.find("reason=\"message rate limit exceeded\""), std::string::npos) << err;
}

TEST(ParleydOperations, DebugLogsEachConnectionAndJsonLinesParse) {
  ParleydProcess server({"--log-level", "debug", "--log-format", "json"});
  ASSERT_TRUE(server.ok()) << server.error();
  {
    WsTestClient client;
    ASSERT_TRUE(client.connect("127.0.0.1", server.port(), "/echo")) << client.error();
    ASSERT_TRUE(client.send_close(1000));
    client.expect_close();
  }
  ASSERT_TRUE(wait_until([&] { return server.stderr_text().find("\"msg\":\"close\"") != std::string::npos; }, 5s))
      << server.stderr_text();
  const std::string err = server.stderr_text();
  EXPECT_NE(err.find(R"("level":"info","prog":"parleyd","msg":"listening","address":"127.0.0.1:)"), std::string::npos)
      << err;
  EXPECT_NE(err.find(R"("level":"debug","prog":"parleyd","msg":"open","route":"/echo","peer":"127.0.0.1:)"),
            std::string::npos) << err;
  EXPECT_NE(err.find(R"("code":1000})"), std::string::npos) << err;
  // Every log line is one JSON object (the plain "parleyd: WARNING" start-up lines aside).
  size_t start = 0;
  for (size_t end; (end = err.find('\n', start)) != std::string::npos; start = end + 1) {
    const std::string line = err.substr(start, end - start);
    if (line.rfind("parleyd: ", 0) == 0) continue;
    EXPECT_EQ(line.front(), '{') << line;
    EXPECT_EQ(line.back(), '}') << line;
  }
}

TEST(ParleydOperations, WorkersReloadOnTheSupervisorsSighup) {
  const std::string file = temp_path("parley_workers_reload");
  write_file(file, "rate-limit = 20\n");
  ParleydProcess server({"--workers", "2", "--config", file});
  ASSERT_TRUE(server.ok()) << server.error();
  write_file(file, "rate-limit = 3\n");
  ASSERT_EQ(kill(server.pid(), SIGHUP), 0);
  ASSERT_TRUE(wait_until([&] { return count(server.stderr_text(), "changed rate-limit 20 -> 3") == 2; }, 5s))
      << server.stderr_text();
  EXPECT_NE(server.stderr_text().find("parleyd[0] info reloaded"), std::string::npos);
  EXPECT_NE(server.stderr_text().find("parleyd[1] info reloaded"), std::string::npos);
  // A broken file is reported once, by the supervisor, and the workers keep running.
  write_file(file, "rate-limit = \"x\"\n");
  ASSERT_EQ(kill(server.pid(), SIGHUP), 0);
  ASSERT_TRUE(wait_until([&] { return server.stderr_text().find("reload failed") != std::string::npos; }, 5s));
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(count(server.stderr_text(), "reload failed"), 1u) << server.stderr_text();
  EXPECT_TRUE(server.running());
  std::remove(file.c_str());
}

TEST(ParleydOperations, WorkersLabelTheirSamples) {
  ParleydProcess server({"--workers", "2", "--metrics-listen", "127.0.0.1:0"});
  ASSERT_TRUE(server.ok()) << server.error();
  const uint16_t port = metrics_port(server);
  ASSERT_NE(port, 0) << server.stderr_text();
  // Both workers listen on the one metrics port (port 0 resolved once by the supervisor).
  ASSERT_TRUE(wait_until([&] { return count(server.stderr_text(), "metrics listening") == 2; }, 5s));
  EXPECT_EQ(count(server.stderr_text(), "metrics listening address=127.0.0.1:" + std::to_string(port)), 2u)
      << server.stderr_text();
  // Each scrape is answered by one of them, labelled with its number; the kernel spreads
  // connections over the workers, so a few scrapes see both.
  bool seen[2] = {false, false};
  for (int i = 0; i < 200 && !(seen[0] && seen[1]); ++i) {
    const std::string body = get(port, "/metrics").body;
    for (int w = 0; w < 2; ++w) {
      if (body.find("parley_upgrades_total{worker=\"" + std::to_string(w) + "\"} ") != std::string::npos) seen[w] = true;
    }
    EXPECT_NE(body.find("parley_build_info{worker=\""), std::string::npos);
  }
  EXPECT_TRUE(seen[0] && seen[1]);
}

}  // namespace
