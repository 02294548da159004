#include "chat/parleyd_options.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

namespace {

using chat::parse_parleyd_options;
using chat::ParleydOptions;

struct Parsed {
  bool ok;
  ParleydOptions options;
  std::string error;
};

Parsed parse(const std::vector<std::string>& args) {
  Parsed result;
  result.ok = parse_parleyd_options(args, result.options, result.error);
  return result;
}

// A failure whose message is one line and names `option`.
void expect_error_naming(const std::vector<std::string>& args, const std::string& option) {
  Parsed result = parse(args);
  std::string joined;
  for (const auto& arg : args) joined += "[" + arg + "]";
  EXPECT_FALSE(result.ok) << joined;
  EXPECT_FALSE(result.error.empty()) << joined;
  EXPECT_NE(result.error.find(option), std::string::npos) << joined << ": " << result.error;
  EXPECT_EQ(result.error.find('\n'), std::string::npos) << joined << ": " << result.error;
}

TEST(ParleydOptionsTest, Defaults) {
  Parsed result = parse({});
  ASSERT_TRUE(result.ok) << result.error;
  EXPECT_EQ(result.options.listen, "127.0.0.1:8080");
  EXPECT_FALSE(result.options.reuse_port);
  EXPECT_EQ(result.options.max_message_size, 16u << 20);
  EXPECT_EQ(result.options.handshake_timeout_ms, 10000u);
  EXPECT_EQ(result.options.close_timeout_ms, 5000u);
  EXPECT_FALSE(result.options.show_help);
  EXPECT_FALSE(result.options.show_version);
  EXPECT_TRUE(result.error.empty());
}

TEST(ParleydOptionsTest, Listen) {
  Parsed result = parse({"--listen", "0.0.0.0:0"});
  ASSERT_TRUE(result.ok) << result.error;
  EXPECT_EQ(result.options.listen, "0.0.0.0:0");
  result = parse({"--listen", "[::1]:9000"});
  ASSERT_TRUE(result.ok) << result.error;
  EXPECT_EQ(result.options.listen, "[::1]:9000");
}

TEST(ParleydOptionsTest, Flags) {
  Parsed result = parse({"--reuseport"});
  ASSERT_TRUE(result.ok);
  EXPECT_TRUE(result.options.reuse_port);
  result = parse({"--help"});
  ASSERT_TRUE(result.ok);
  EXPECT_TRUE(result.options.show_help);
  result = parse({"-h"});
  ASSERT_TRUE(result.ok);
  EXPECT_TRUE(result.options.show_help);
  result = parse({"--version"});
  ASSERT_TRUE(result.ok);
  EXPECT_TRUE(result.options.show_version);
  EXPECT_FALSE(result.options.show_help);
}

TEST(ParleydOptionsTest, EveryOptionTogether) {
  Parsed result = parse({"--listen", "127.0.0.1:0", "--reuseport", "--max-message-size", "64K",
                         "--handshake-timeout", "2500", "--close-timeout", "750"});
  ASSERT_TRUE(result.ok) << result.error;
  EXPECT_EQ(result.options.listen, "127.0.0.1:0");
  EXPECT_TRUE(result.options.reuse_port);
  EXPECT_EQ(result.options.max_message_size, 64u * 1024);
  EXPECT_EQ(result.options.handshake_timeout_ms, 2500u);
  EXPECT_EQ(result.options.close_timeout_ms, 750u);
  EXPECT_FALSE(result.options.show_help);
  EXPECT_FALSE(result.options.show_version);
}

TEST(ParleydOptionsTest, LaterValuesWin) {
  Parsed result = parse({"--listen", "127.0.0.1:1", "--listen", "127.0.0.1:2", "--close-timeout", "1",
                         "--close-timeout", "2"});
  ASSERT_TRUE(result.ok);
  EXPECT_EQ(result.options.listen, "127.0.0.1:2");
  EXPECT_EQ(result.options.close_timeout_ms, 2u);
}

TEST(ParleydOptionsTest, SizeSuffixes) {
  struct Case {
    const char* text;
    uint64_t bytes;
  };
  const Case cases[] = {
      {"1", 1},
      {"65536", 65536},
      {"64K", 64ull << 10},
      {"64k", 64ull << 10},
      {"64KiB", 64ull << 10},
      {"16M", 16ull << 20},
      {"16MiB", 16ull << 20},
      {"1G", 1ull << 30},
      {"1GiB", 1ull << 30},
  };
  for (const Case& c : cases) {
    Parsed result = parse({"--max-message-size", c.text});
    ASSERT_TRUE(result.ok) << c.text << ": " << result.error;
    EXPECT_EQ(result.options.max_message_size, c.bytes) << c.text;
  }
  // Messages are capped at 1 GiB: queues and buffers index them with 32-bit lengths.
  for (const char* too_big : {"1025M", "3GiB", "18446744073709551615", "17179869183G"}) {
    expect_error_naming({"--max-message-size", too_big}, "--max-message-size");
  }
}

TEST(ParleydOptionsTest, InvalidSizes) {
  for (const char* text : {"", "0", "0K", "-1", "+5", "K", "abc", "1.5M", "16X", "16KB", "16 M", " 16", "16M ",
                           "0x10", "18446744073709551616", "17179869184G", "16777216T"}) {
    expect_error_naming({"--max-message-size", text}, "--max-message-size");
  }
}

TEST(ParleydOptionsTest, Timeouts) {
  Parsed result = parse({"--handshake-timeout", "1", "--close-timeout", "86400000"});
  ASSERT_TRUE(result.ok) << result.error;
  EXPECT_EQ(result.options.handshake_timeout_ms, 1u);
  EXPECT_EQ(result.options.close_timeout_ms, 86400000u);
}

TEST(ParleydOptionsTest, InvalidTimeouts) {
  for (const char* option : {"--handshake-timeout", "--close-timeout"}) {
    for (const char* text : {"", "0", "-1", "86400001", "99999999999999999999", "10s", "1.5", "ten", " 5", "5K"}) {
      expect_error_naming({option, text}, option);
    }
  }
}

TEST(ParleydOptionsTest, InvalidValueDoesNotChangeTheOption) {
  ParleydOptions options;
  std::string error;
  EXPECT_FALSE(parse_parleyd_options({"--max-message-size", "nope"}, options, error));
  EXPECT_EQ(options.max_message_size, 16u << 20);
  EXPECT_FALSE(parse_parleyd_options({"--close-timeout", "0"}, options, error));
  EXPECT_EQ(options.close_timeout_ms, 5000u);
}

TEST(ParleydOptionsTest, ErrorQuotesTheBadValue) {
  Parsed result = parse({"--close-timeout", "forever"});
  ASSERT_FALSE(result.ok);
  EXPECT_NE(result.error.find("forever"), std::string::npos) << result.error;
}

TEST(ParleydOptionsTest, MissingValue) {
  for (const char* option : {"--listen", "--max-message-size", "--handshake-timeout", "--close-timeout"}) {
    expect_error_naming({option}, option);
    expect_error_naming({"--reuseport", option}, option);
  }
}

TEST(ParleydOptionsTest, UnknownOption) {
  for (const char* arg : {"--bogus", "-x", "listen", "--listen=127.0.0.1:1", "--Listen", "--", "-", ""}) {
    Parsed result = parse({arg});
    EXPECT_FALSE(result.ok) << arg;
    EXPECT_NE(result.error.find(std::string("'") + arg + "'"), std::string::npos) << result.error;
    EXPECT_EQ(result.error.find('\n'), std::string::npos) << result.error;
  }
  // Reported even after valid options.
  Parsed result = parse({"--reuseport", "--listen", "127.0.0.1:1", "--nope"});
  EXPECT_FALSE(result.ok);
  EXPECT_NE(result.error.find("--nope"), std::string::npos);
}

TEST(ParleydOptionsTest, FlagsTakeNoValue) {
  // A stray word after a flag is an unknown option, not the flag's value.
  Parsed result = parse({"--reuseport", "yes"});
  EXPECT_FALSE(result.ok);
  EXPECT_NE(result.error.find("'yes'"), std::string::npos) << result.error;
}

TEST(ParleydOptionsTest, UsageMentionsEveryOption) {
  const std::string usage = chat::parleyd_usage();
  for (const char* option : {"--listen", "--reuseport", "--max-message-size", "--handshake-timeout",
                             "--close-timeout", "--tls-cert", "--tls-key", "--help", "--version"}) {
    EXPECT_NE(usage.find(option), std::string::npos) << option;
  }
  EXPECT_EQ(usage.rfind("usage: parleyd", 0), 0u);
}

TEST(ParleydOptionsTest, VersionIsSet) {
  EXPECT_NE(std::string(chat::kParleyVersion), "");
}

}  // namespace

namespace {

TEST(ParleydOptionsTest, ServerLimitsAndHeartbeat) {
  Parsed result = parse({"--ping-interval", "0", "--pong-timeout", "2500", "--idle-timeout", "60000",
                         "--max-buffered", "256K", "--slow-consumer", "drop", "--max-connections", "1000",
                         "--max-connections-per-ip", "10", "--drain-timeout", "100", "--workers", "4"});
  ASSERT_TRUE(result.ok) << result.error;
  EXPECT_EQ(result.options.ping_interval_ms, 0u);
  EXPECT_EQ(result.options.pong_timeout_ms, 2500u);
  EXPECT_EQ(result.options.idle_timeout_ms, 60000u);
  EXPECT_EQ(result.options.max_buffered, 256u << 10);
  EXPECT_TRUE(result.options.slow_consumer_drop);
  EXPECT_EQ(result.options.max_connections, 1000u);
  EXPECT_EQ(result.options.max_connections_per_ip, 10u);
  EXPECT_EQ(result.options.drain_timeout_ms, 100u);
  EXPECT_EQ(result.options.workers, 4u);
  expect_error_naming({"--slow-consumer", "sometimes"}, "--slow-consumer");
  expect_error_naming({"--workers", "0"}, "--workers");
  expect_error_naming({"--max-buffered", "10"}, "--max-buffered");
  expect_error_naming({"--pong-timeout", "0"}, "--pong-timeout");
}

TEST(ParleydOptionsTest, AFailedParseLeavesTheOptionsUntouched) {
  ParleydOptions options;
  std::string error;
  EXPECT_FALSE(chat::parse_parleyd_options({"--max-text", "99", "--history", "x"}, options, error));
  EXPECT_EQ(options.max_text_bytes, ParleydOptions().max_text_bytes);
}

TEST(ParleydOptionsTest, AccessControlAndLimits) {
  Parsed defaults = parse({});
  ASSERT_TRUE(defaults.ok);
  EXPECT_TRUE(defaults.options.auth_secret_file.empty());
  EXPECT_TRUE(defaults.options.allow_origin.empty());
  EXPECT_FALSE(defaults.options.deny_missing_origin);
  EXPECT_EQ(defaults.options.rate_limit, 20u);
  EXPECT_EQ(defaults.options.rate_burst, 40u);
  EXPECT_EQ(defaults.options.handshake_rate, 0u);
  EXPECT_EQ(defaults.options.max_room_members, 10000u);

  Parsed result = parse({"--auth-secret", "/etc/parley/secret", "--allow-origin", "https://chat.example.com",
                         "--allow-origin", "https://*.example.org", "--deny-missing-origin", "--rate-limit", "0",
                         "--rate-burst", "5", "--handshake-rate", "10", "--max-room-members", "0"});
  ASSERT_TRUE(result.ok) << result.error;
  EXPECT_EQ(result.options.auth_secret_file, "/etc/parley/secret");
  EXPECT_EQ(result.options.allow_origin, "https://chat.example.com,https://*.example.org");
  EXPECT_TRUE(result.options.deny_missing_origin);
  EXPECT_EQ(result.options.rate_limit, 0u);
  EXPECT_EQ(result.options.rate_burst, 5u);
  EXPECT_EQ(result.options.handshake_rate, 10u);
  EXPECT_EQ(result.options.max_room_members, 0u);

  expect_error_naming({"--allow-origin", "not an origin"}, "--allow-origin");
  expect_error_naming({"--allow-origin", ""}, "--allow-origin");
  expect_error_naming({"--auth-secret", ""}, "--auth-secret");
  expect_error_naming({"--auth-secret"}, "--auth-secret");
  expect_error_naming({"--rate-burst", "0"}, "--rate-burst");
  expect_error_naming({"--rate-burst", "5000"}, "--rate-burst");
  expect_error_naming({"--handshake-rate", "-1"}, "--handshake-rate");
  expect_error_naming({"--rate-limit", "x"}, "--rate-limit");
  std::string usage = chat::parleyd_usage();
  for (const char* flag : {"--auth-secret", "--allow-origin", "--deny-missing-origin", "--rate-limit", "--rate-burst",
                           "--handshake-rate", "--max-room-members"}) {
    EXPECT_NE(usage.find(flag), std::string::npos) << flag;
  }
}

TEST(ParleydOptionsTest, TlsCertificateAndKeyGoTogether) {
  Parsed result = parse({"--tls-cert", "c.pem", "--tls-key", "k.pem"});
  ASSERT_TRUE(result.ok) << result.error;
  EXPECT_EQ(result.options.tls_cert_file, "c.pem");
  EXPECT_EQ(result.options.tls_key_file, "k.pem");
  EXPECT_TRUE(parse({}).options.tls_cert_file.empty());
  expect_error_naming({"--tls-cert", "c.pem"}, "--tls-key");
  expect_error_naming({"--tls-key", "k.pem"}, "--tls-cert");
  expect_error_naming({"--tls-cert", ""}, "--tls-cert");
  expect_error_naming({"--tls-key"}, "--tls-key");
}

}  // namespace
