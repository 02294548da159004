// tools/cli_options.h: parley-cli's command line.
#include "tools/cli_options.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

using tools::cli::CliOptionsParse;
using Status = CliOptionsParse::Status;

CliOptionsParse parse(std::vector<const char*> args) {
  args.insert(args.begin(), "parley-cli");
  return tools::cli::parse_cli_options(static_cast<int>(args.size()), args.data());
}

std::string error_of(std::vector<const char*> args) {
  CliOptionsParse result = parse(std::move(args));
  EXPECT_EQ(result.status, Status::kUsageError);
  return result.error;
}

TEST(CliOptions, Defaults) {
  CliOptionsParse result = parse({"ws://127.0.0.1:8080/echo"});
  ASSERT_EQ(result.status, Status::kRun) << result.error;
  EXPECT_EQ(result.options.url.host, "127.0.0.1");
  EXPECT_EQ(result.options.url.port, 8080);
  EXPECT_EQ(result.options.url.path, "/echo");
  EXPECT_EQ(result.options.retries, 5u);
  EXPECT_EQ(result.options.retry_delay.count(), 500);
  EXPECT_EQ(result.options.retry_max.count(), 30000);
  EXPECT_TRUE(result.options.chat_name.empty());
  EXPECT_TRUE(result.options.headers.empty());
  EXPECT_FALSE(result.options.quiet);
}

TEST(CliOptions, EveryOption) {
  CliOptionsParse result =
      parse({"-H", "X-One: 1", "--header=X-Two:   two words ", "--token", "t0k.en", "--subprotocol", "chat.v1",
             "--chat", "alice", "--retries=0", "--retry-delay", "10", "--retry-max=20", "--connect-timeout", "300",
             "-q", "ws://[::1]:9000/chat?room=x"});
  ASSERT_EQ(result.status, Status::kRun) << result.error;
  const auto& o = result.options;
  ASSERT_EQ(o.headers.size(), 3u);
  EXPECT_EQ(o.headers[0], (std::pair<std::string, std::string>{"X-One", "1"}));
  EXPECT_EQ(o.headers[1], (std::pair<std::string, std::string>{"X-Two", "two words "}));
  EXPECT_EQ(o.headers[2], (std::pair<std::string, std::string>{"Authorization", "Bearer t0k.en"}));
  EXPECT_EQ(o.subprotocol, "chat.v1");
  EXPECT_EQ(o.chat_name, "alice");
  EXPECT_EQ(o.retries, 0u);
  EXPECT_EQ(o.retry_delay.count(), 10);
  EXPECT_EQ(o.retry_max.count(), 20);
  EXPECT_EQ(o.connect_timeout.count(), 300);
  EXPECT_TRUE(o.quiet);
  EXPECT_EQ(o.url.host, "::1");
  EXPECT_EQ(o.url.path, "/chat?room=x");
}

TEST(CliOptions, SecureUrlVerifiesByDefault) {
  CliOptionsParse result = parse({"wss://chat.example/chat"});
  ASSERT_EQ(result.status, Status::kRun) << result.error;
  EXPECT_TRUE(result.options.url.secure);
  EXPECT_EQ(result.options.url.port, 443);
  EXPECT_EQ(result.options.url.host, "chat.example");
  EXPECT_FALSE(result.options.tls.insecure);
  EXPECT_TRUE(result.options.tls.ca_file.empty());
}

TEST(CliOptions, InsecureAndCaFile) {
  CliOptionsParse result = parse({"-k", "wss://127.0.0.1:8443/echo"});
  ASSERT_EQ(result.status, Status::kRun) << result.error;
  EXPECT_TRUE(result.options.tls.insecure);
  result = parse({"--insecure", "--ca-file=certs/ca.pem", "wss://127.0.0.1:8443/echo"});
  ASSERT_EQ(result.status, Status::kRun) << result.error;
  EXPECT_TRUE(result.options.tls.insecure);
  EXPECT_EQ(result.options.tls.ca_file, "certs/ca.pem");
  result = parse({"wss://localhost:8443/echo", "--ca-file", "cert.pem"});
  ASSERT_EQ(result.status, Status::kRun) << result.error;
  EXPECT_FALSE(result.options.tls.insecure);
  EXPECT_EQ(result.options.tls.ca_file, "cert.pem");
  EXPECT_NE(tools::cli::cli_usage().find("--insecure"), std::string_view::npos);
  EXPECT_NE(tools::cli::cli_usage().find("--ca-file"), std::string_view::npos);
}

TEST(CliOptions, Help) {
  EXPECT_EQ(parse({"--help"}).status, Status::kHelp);
  EXPECT_EQ(parse({"ws://x/", "-h"}).status, Status::kHelp);
  EXPECT_NE(tools::cli::cli_usage().find("usage: parley-cli"), std::string_view::npos);
}

TEST(CliOptions, UsageErrors) {
  EXPECT_EQ(error_of({}), "no URL given");
  EXPECT_EQ(error_of({"ws://a/", "ws://b/"}), "more than one URL (ws://a/, ws://b/)");
  EXPECT_NE(error_of({"http://a/"}).find("bad URL"), std::string::npos);
  EXPECT_EQ(error_of({"--insecure", "ws://a/"}), "--insecure and --ca-file apply to wss:// URLs only");
  EXPECT_EQ(error_of({"--ca-file", "ca.pem", "ws://a/"}), "--insecure and --ca-file apply to wss:// URLs only");
  EXPECT_EQ(error_of({"wss://a/", "--ca-file"}), "--ca-file needs a value");
  EXPECT_EQ(error_of({"wss://a/", "--ca-file="}), "--ca-file needs a PEM file");
  EXPECT_EQ(error_of({"--bogus", "ws://a/"}), "unknown option --bogus");
  EXPECT_EQ(error_of({"ws://a/", "--chat"}), "--chat needs a value");
  EXPECT_NE(error_of({"--chat", "bad name", "ws://a/"}).find("--chat needs a user name"), std::string::npos);
  EXPECT_NE(error_of({"--retries", "-1", "ws://a/"}).find("--retries"), std::string::npos);
  EXPECT_NE(error_of({"--retries", "5x", "ws://a/"}).find("--retries"), std::string::npos);
  EXPECT_NE(error_of({"--retry-delay", "", "ws://a/"}).find("milliseconds"), std::string::npos);
  EXPECT_EQ(error_of({"--retry-delay", "100", "--retry-max", "50", "ws://a/"}), "--retry-max is below --retry-delay");
  EXPECT_NE(error_of({"--connect-timeout", "0", "ws://a/"}).find("above 0"), std::string::npos);
  EXPECT_NE(error_of({"--subprotocol", "a b", "ws://a/"}).find("--subprotocol"), std::string::npos);
}

TEST(CliOptions, HeaderChecks) {
  EXPECT_NE(error_of({"-H", "NoColon", "ws://a/"}).find("Name: value"), std::string::npos);
  EXPECT_NE(error_of({"-H", "Bad Name: x", "ws://a/"}).find("bad header name"), std::string::npos);
  EXPECT_NE(error_of({"-H", "X: a\r\nEvil: 1", "ws://a/"}).find("control character"), std::string::npos);
  EXPECT_NE(error_of({"--token", "a\nb", "ws://a/"}).find("--token"), std::string::npos);
  for (const char* managed : {"Upgrade: x", "connection: x", "Sec-WebSocket-Key: x", "Sec-WebSocket-Version: 8",
                              "Sec-WebSocket-Extensions: permessage-deflate"}) {
    EXPECT_NE(error_of({"-H", managed, "ws://a/"}).find("set by parley-cli"), std::string::npos) << managed;
  }
  EXPECT_NE(error_of({"-H", "Sec-WebSocket-Protocol: x", "ws://a/"}).find("--subprotocol"), std::string::npos);
  EXPECT_NE(error_of({"--token", "a", "-H", "Authorization: Basic x", "ws://a/"}).find("twice"), std::string::npos);
  EXPECT_EQ(parse({"-H", "Host: example.com", "ws://a/"}).status, Status::kRun);
}

}  // namespace
