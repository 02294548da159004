#include "tools/load_options.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tools {
namespace {

// Parses `args` (without the program name); returns parse_load_options()'s result.
int parse(std::vector<std::string> args, LoadOptions& out) {
  args.insert(args.begin(), "parley-load");
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  testing::internal::CaptureStderr();
  testing::internal::CaptureStdout();
  const int rc = parse_load_options(static_cast<int>(args.size()), argv.data(), out);
  testing::internal::GetCapturedStdout();
  testing::internal::GetCapturedStderr();
  return rc;
}

TEST(LoadOptions, Defaults) {
  LoadOptions o;
  ASSERT_EQ(parse({}, o), kOptionsOk);
  EXPECT_EQ(o.scenario, Scenario::kEcho);
  EXPECT_EQ(o.url.host, "127.0.0.1");
  EXPECT_EQ(o.url.port, 8080);
  EXPECT_EQ(o.url.path, "/echo");
  EXPECT_EQ(o.connections, 100u);
  EXPECT_EQ(o.rate, 0u);
  EXPECT_EQ(o.pipeline, 1u);
  EXPECT_EQ(o.processes, 1u);
}

TEST(LoadOptions, EveryOption) {
  LoadOptions o;
  ASSERT_EQ(parse({"connect", "--url", "ws://127.0.0.2:9000/x", "-c", "2k", "--rate=50k", "--duration", "1.5",
                   "--warmup", "0.5", "--size", "64", "--binary", "--pipeline", "8", "--max-in-flight", "32",
                   "--ramp", "1M", "--sources", "10", "-j", "2", "--close", "--json", "out.json", "--quiet"},
                  o),
            kOptionsOk);
  EXPECT_EQ(o.scenario, Scenario::kConnect);
  EXPECT_EQ(o.url.port, 9000);
  EXPECT_EQ(o.connections, 2000u);
  EXPECT_EQ(o.rate, 50000u);
  EXPECT_DOUBLE_EQ(o.duration_s, 1.5);
  EXPECT_DOUBLE_EQ(o.warmup_s, 0.5);
  EXPECT_EQ(o.size, 64u);
  EXPECT_TRUE(o.binary);
  EXPECT_EQ(o.pipeline, 8u);
  EXPECT_EQ(o.max_in_flight, 32u);
  EXPECT_EQ(o.ramp, 1'000'000u);
  EXPECT_EQ(o.sources, 10u);
  EXPECT_EQ(o.processes, 2u);
  EXPECT_TRUE(o.close_handshake);
  EXPECT_EQ(o.json_path, "out.json");
  EXPECT_FALSE(o.progress);
}

TEST(LoadOptions, HelpExitsZero) {
  LoadOptions o;
  EXPECT_EQ(parse({"--help"}, o), 0);
}

TEST(LoadOptions, BadUsageExitsTwo) {
  const std::vector<std::vector<std::string>> bad = {
      {"--bogus"},          {"-c"},                 {"-c", "0"},           {"-c", "x"},
      {"--url", "http://x"}, {"--url", "wss://:1/"}, {"--duration", "0"},   {"--duration", "-1"},
      {"--pipeline", "0"},  {"--sources", "251"},   {"--rate", "0"},       {"-c", "19001"},
      {"-j", "0"},          {"--rate", "1", "-j", "2", "-c", "4"},         {"--size", "100M"},
      {"echo", "connect"},  {"--json", ""},         {"--insecure"},        {"--ca-file", "ca.pem"},
      {"--url", "wss://127.0.0.1:1/", "--ca-file"},   {"--url", "wss://127.0.0.1:1/", "--ca-file="},
  };
  for (const auto& args : bad) {
    LoadOptions o;
    EXPECT_EQ(parse(args, o), 2) << args[0];
  }
}

TEST(LoadOptions, SecureUrl) {
  LoadOptions o;
  ASSERT_EQ(parse({"--url", "wss://127.0.0.1/echo"}, o), kOptionsOk);
  EXPECT_TRUE(o.url.secure);
  EXPECT_EQ(o.url.port, 443);
  EXPECT_FALSE(o.tls.insecure);
  EXPECT_TRUE(o.tls.ca_file.empty());

  LoadOptions k;
  ASSERT_EQ(parse({"connect", "--url", "wss://127.0.0.1:8443/echo", "-k"}, k), kOptionsOk);
  EXPECT_TRUE(k.tls.insecure);

  LoadOptions ca;
  ASSERT_EQ(parse({"chat", "--url=wss://127.0.0.1:8443/chat", "--ca-file", "cert.pem", "--insecure"}, ca), kOptionsOk);
  EXPECT_EQ(ca.tls.ca_file, "cert.pem");
  EXPECT_TRUE(ca.tls.insecure);
  EXPECT_EQ(ca.url.path, "/chat");
}

TEST(LoadOptions, Broadcast) {
  LoadOptions o;
  ASSERT_EQ(parse({"broadcast", "-c", "10k", "--publishers", "3", "--rate", "500", "--room", "#bench.1",
                   "--server-pid", "4242"},
                  o),
            kOptionsOk);
  EXPECT_EQ(o.scenario, Scenario::kBroadcast);
  EXPECT_EQ(o.url.path, "/chat");  // the chat endpoint unless --url says otherwise
  EXPECT_EQ(o.connections, 10'000u);
  EXPECT_EQ(o.publishers, 3u);
  EXPECT_EQ(o.room, "#bench.1");
  EXPECT_EQ(o.server_pids, std::vector<int>{4242});
  EXPECT_STREQ(scenario_name(o.scenario), "broadcast");
  LoadOptions url;
  ASSERT_EQ(parse({"broadcast", "--url", "ws://127.0.0.1:1/other"}, url), kOptionsOk);
  EXPECT_EQ(url.url.path, "/other");
  LoadOptions rate;  // the whole rate goes to the first worker, so it need not cover -j
  EXPECT_EQ(parse({"broadcast", "-c", "8", "-j", "4", "--rate", "1"}, rate), kOptionsOk);
  for (const std::vector<std::string>& bad : std::vector<std::vector<std::string>>{
           {"broadcast", "--publishers", "0"},
           {"broadcast", "--publishers", "1001"},
           {"broadcast", "--room", "no spaces"},
           {"broadcast", "--room", ""},
           {"broadcast", "--server-pid", "0"},
           {"broadcast", "--server-pid", "12,"},
           {"broadcast", "--server-pid", ",12"},
           {"broadcast", "--server-pid", "12,,13"},
           {"broadcast", "--server-pid", "12,0"},
           {"broadcast", "--server-pid", "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17"},  // over kMaxServerPids
           {"broadcast", "-c", "19000"},  // plus the publisher: over the first worker's budget
       }) {
    LoadOptions o2;
    EXPECT_EQ(parse(bad, o2), 2) << bad[1] << " " << bad[2];
  }
  LoadOptions fits;
  EXPECT_EQ(parse({"broadcast", "-c", "18999"}, fits), kOptionsOk);
  LoadOptions several;  // a server of several processes: parleyd's workers and Redis
  ASSERT_EQ(parse({"broadcast", "--server-pid", "31,32,33"}, several), kOptionsOk);
  EXPECT_EQ(several.server_pids, (std::vector<int>{31, 32, 33}));
}

TEST(LoadOptions, Chat) {
  LoadOptions o;
  ASSERT_EQ(parse({"chat", "-c", "2k", "--rooms", "50", "--rooms-per-user", "3", "--user-rate", "0.5", "--idle-share",
                   "0.25", "--reconnect-share", "0.1", "--room", "bench", "--size", "64", "--warmup", "1", "--ramp",
                   "500", "--sources", "8", "-j", "2"},
                  o),
            kOptionsOk);
  EXPECT_EQ(o.scenario, Scenario::kChat);
  EXPECT_STREQ(scenario_name(o.scenario), "chat");
  EXPECT_EQ(o.url.path, "/chat");  // the chat endpoint unless --url says otherwise
  EXPECT_EQ(o.connections, 2000u);
  EXPECT_EQ(o.rooms, 50u);
  EXPECT_EQ(o.rooms_per_user, 3u);
  EXPECT_EQ(o.rate, 1000u);  // 0.5 msg/s for each of 2,000 users
  EXPECT_DOUBLE_EQ(o.idle_share, 0.25);
  EXPECT_DOUBLE_EQ(o.reconnect_share, 0.1);
  EXPECT_EQ(o.room, "bench");
  EXPECT_EQ(o.size, 64u);
  EXPECT_EQ(o.ramp, 500u);
  EXPECT_EQ(o.sources, 8u);
  LoadOptions defaults;
  ASSERT_EQ(parse({"chat", "-c", "30"}, defaults), kOptionsOk);
  EXPECT_EQ(defaults.rate, 30u);  // one message per user per second
  EXPECT_EQ(defaults.rooms, 10u);
  EXPECT_EQ(defaults.rooms_per_user, 2u);
  EXPECT_EQ(defaults.idle_share, 0);
  EXPECT_EQ(defaults.reconnect_share, 0);
  LoadOptions total;
  ASSERT_EQ(parse({"chat", "-c", "30", "--rate=7", "--reconnect-share", "1"}, total), kOptionsOk);
  EXPECT_EQ(total.rate, 7u);
  EXPECT_FALSE(total.reconnect_abrupt);
  LoadOptions abrupt;
  ASSERT_EQ(parse({"chat", "--reconnect-share", "0.5", "--reconnect-abrupt"}, abrupt), kOptionsOk);
  EXPECT_TRUE(abrupt.reconnect_abrupt);
  LoadOptions few;  // a tiny per-user rate still sends something
  ASSERT_EQ(parse({"chat", "-c", "3", "--user-rate", "0.01"}, few), kOptionsOk);
  EXPECT_EQ(few.rate, 1u);
  for (const std::vector<std::string>& bad : std::vector<std::vector<std::string>>{
           {"chat", "--rooms", "0"},
           {"chat", "--rooms", "100001"},
           {"chat", "--rooms", "3", "--rooms-per-user", "4"},
           {"chat", "--rooms-per-user", "0"},
           {"chat", "--user-rate", "0"},
           {"chat", "--user-rate", "x"},
           {"chat", "--rate", "10", "--user-rate", "1"},
           {"chat", "--pipeline", "2"},
           {"chat", "--idle-share", "1"},
           {"chat", "--idle-share", "-0.1"},
           {"chat", "--reconnect-share", "1.5"},
           {"chat", "--room", "bad room"},
           {"echo", "--idle-share", "0.5"},
           {"broadcast", "--reconnect-share", "0.5"},
           {"broadcast", "--reconnect-abrupt", "--quiet"},
           {"chat", "--reconnect-abrupt", "--quiet"},  // no --reconnect-share: nobody would drop
           {"echo", "--user-rate", "2"},
           {"broadcast", "--rooms", "2"},
           {"echo", "--rooms-per-user", "1"},
       }) {
    LoadOptions o2;
    EXPECT_EQ(parse(bad, o2), 2) << bad[0] << " " << bad[1] << " " << bad[2];
  }
  LoadOptions longest;  // "<62 r>-9": 64 bytes, the longest room name allowed
  EXPECT_EQ(parse({"chat", "--room", std::string(62, 'r'), "--rooms", "10"}, longest), kOptionsOk);
  LoadOptions longer;
  EXPECT_EQ(parse({"chat", "--room", std::string(62, 'r'), "--rooms", "11"}, longer), 2);  // "-10": 65 bytes
}

TEST(LoadOptions, Idle) {
  LoadOptions o;
  ASSERT_EQ(parse({"idle", "-c", "19k", "--ramp", "2000", "--duration", "30", "--warmup", "2", "--sources", "200",
                   "--server-pid", "77"},
                  o),
            kOptionsOk);
  EXPECT_EQ(o.scenario, Scenario::kIdle);
  EXPECT_STREQ(scenario_name(o.scenario), "idle");
  EXPECT_EQ(o.url.path, "/echo");
  EXPECT_EQ(o.connections, 19'000u);
  EXPECT_EQ(o.ramp, 2000u);
  EXPECT_DOUBLE_EQ(o.duration_s, 30);
  EXPECT_DOUBLE_EQ(o.warmup_s, 2);
  EXPECT_EQ(o.server_pids, std::vector<int>{77});
  LoadOptions many;
  ASSERT_EQ(parse({"idle", "-c", "100k", "-j", "6", "--url", "ws://127.0.0.1:9/chat"}, many), kOptionsOk);
  EXPECT_EQ(many.url.path, "/chat");
  for (const std::vector<std::string>& bad : std::vector<std::vector<std::string>>{
           {"idle", "--rate", "100"},     // idle sends no messages
           {"idle", "--pipeline", "2"},
           {"idle", "-c", "19001"},
           {"idle", "--rooms", "2", "--user-rate", "1"},
       }) {
    LoadOptions o2;
    EXPECT_EQ(parse(bad, o2), 2) << bad[1];
  }
}

TEST(LoadOptions, ProcessesSplitTheFdBudget) {
  LoadOptions o;
  EXPECT_EQ(parse({"-c", "38000", "-j", "2"}, o), kOptionsOk);
  LoadOptions more;
  EXPECT_EQ(parse({"-c", "38001", "-j", "2"}, more), 2);
  LoadOptions few;
  ASSERT_EQ(parse({"-c", "3", "-j", "8"}, few), kOptionsOk);
  EXPECT_EQ(few.processes, 3u);  // never more workers than connections
}

}  // namespace
}  // namespace tools
