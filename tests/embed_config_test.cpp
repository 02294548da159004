// parley::Config against parleyd (issue 17): the same defaults field by field; every numeric
// option of parleyd's table reachable from a Config field, which start() checks with that table
// (each end of the range accepted, one past it refused); clear start() errors for other bad
// values; then limits shown to reach the running server. When parleyd gains or changes an
// option, these fail until parley::Config follows.
#include <gtest/gtest.h>
#include <errno.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "chat/parley_impl.h"
#include "chat/parley.h"
#include "chat/parleyd_options.h"
#include "tests/embed_support.h"
#include "tests/support/tls_test_certs.h"

namespace parley_test {
namespace {


TEST(EmbedConfigTest, DefaultsEqualParleydsFieldByField) {
  const parley::Config c;
  const chat::ParleydOptions o;
  EXPECT_EQ(c.listen, o.listen);
  EXPECT_EQ(c.reuse_port, o.reuse_port);
  EXPECT_EQ(c.max_message_size, o.max_message_size);
  EXPECT_EQ(c.handshake_timeout_ms, o.handshake_timeout_ms);
  EXPECT_EQ(c.close_timeout_ms, o.close_timeout_ms);
  EXPECT_EQ(c.drain_timeout_ms, o.drain_timeout_ms);
  EXPECT_EQ(c.ping_interval_ms, o.ping_interval_ms);
  EXPECT_EQ(c.pong_timeout_ms, o.pong_timeout_ms);
  EXPECT_EQ(c.idle_timeout_ms, o.idle_timeout_ms);
  EXPECT_EQ(c.max_pings_per_second, o.max_pings_per_second);
  EXPECT_EQ(c.max_buffered, o.max_buffered);
  EXPECT_EQ(c.max_memory, o.max_memory);
  EXPECT_EQ(c.slow_consumer_drop, o.slow_consumer_drop);
  EXPECT_EQ(c.deflate, o.deflate);
  EXPECT_EQ(c.deflate_threshold, o.deflate_threshold);
  EXPECT_EQ(c.max_connections, o.max_connections);
  EXPECT_EQ(c.max_connections_per_ip, o.max_connections_per_ip);
  EXPECT_EQ(c.max_handshakes_per_ip, o.max_handshakes_per_ip);
  EXPECT_EQ(c.max_handshakes, o.max_handshakes);
  EXPECT_EQ(c.history_size, o.history_size);
  EXPECT_EQ(c.max_text_bytes, o.max_text_bytes);
  EXPECT_EQ(c.max_rooms_per_connection, o.max_rooms_per_connection);
  EXPECT_EQ(c.rate_limit, o.rate_limit);
  EXPECT_EQ(c.rate_burst, o.rate_burst);
  EXPECT_EQ(c.handshake_rate, o.handshake_rate);
  EXPECT_EQ(c.max_room_members, o.max_room_members);
  EXPECT_EQ(c.history_memory, o.history_memory);
  EXPECT_EQ(c.max_rooms, o.max_rooms);
  EXPECT_EQ(c.max_rooms_per_ip, o.max_rooms_per_ip);
  EXPECT_EQ(c.token_secret_file, o.auth_secret_file);
  EXPECT_EQ(c.allow_origin, o.allow_origin);
  EXPECT_EQ(c.deny_missing_origin, o.deny_missing_origin);
  EXPECT_EQ(c.tls_cert_file, o.tls_cert_file);
  EXPECT_EQ(c.tls_key_file, o.tls_key_file);
  EXPECT_EQ(c.sync_full, o.sync_full);
  EXPECT_EQ(c.history_keep, o.history_keep);
  EXPECT_EQ(c.recovery_limit, o.recovery_limit);
  EXPECT_EQ(c.dedup_window_minutes, o.dedup_window_minutes);
  EXPECT_EQ(c.history_max_age_seconds, o.history_max_age_seconds);
  EXPECT_EQ(c.resume_window_seconds, o.resume_window_seconds);
  // The one deliberate difference (parley.h says why): a library stores nothing unless asked.
  EXPECT_EQ(o.store, "parley.db");
  EXPECT_EQ(c.store, "none");
}

// The Config field behind one of parleyd's numeric options.
struct Limit {
  const char* option;  // parleyd's option name (its table's)
  void (*set)(parley::Config&, uint64_t);
};

#define PARLEY_LIMIT(option, field) \
  Limit { option, [](parley::Config& c, uint64_t v) { c.field = static_cast<decltype(c.field)>(v); } }

const std::vector<Limit>& all_limits() {
  static const std::vector<Limit> table = {
      PARLEY_LIMIT("max-message-size", max_message_size),
      PARLEY_LIMIT("handshake-timeout", handshake_timeout_ms),
      PARLEY_LIMIT("close-timeout", close_timeout_ms),
      PARLEY_LIMIT("drain-timeout", drain_timeout_ms),
      PARLEY_LIMIT("ping-interval", ping_interval_ms),
      PARLEY_LIMIT("pong-timeout", pong_timeout_ms),
      PARLEY_LIMIT("idle-timeout", idle_timeout_ms),
      PARLEY_LIMIT("max-pings-per-second", max_pings_per_second),
      PARLEY_LIMIT("max-buffered", max_buffered),
      PARLEY_LIMIT("max-memory", max_memory),
      PARLEY_LIMIT("deflate-threshold", deflate_threshold),
      PARLEY_LIMIT("max-connections", max_connections),
      PARLEY_LIMIT("max-connections-per-ip", max_connections_per_ip),
      PARLEY_LIMIT("max-handshakes-per-ip", max_handshakes_per_ip),
      PARLEY_LIMIT("max-handshakes", max_handshakes),
      PARLEY_LIMIT("history", history_size),
      PARLEY_LIMIT("max-text", max_text_bytes),
      PARLEY_LIMIT("max-rooms-per-connection", max_rooms_per_connection),
      PARLEY_LIMIT("rate-limit", rate_limit),
      PARLEY_LIMIT("rate-burst", rate_burst),
      PARLEY_LIMIT("handshake-rate", handshake_rate),
      PARLEY_LIMIT("max-room-members", max_room_members),
      PARLEY_LIMIT("history-memory", history_memory),
      PARLEY_LIMIT("max-rooms", max_rooms),
      PARLEY_LIMIT("max-rooms-per-ip", max_rooms_per_ip),
      PARLEY_LIMIT("history-keep", history_keep),
      PARLEY_LIMIT("recovery-limit", recovery_limit),
      PARLEY_LIMIT("dedup-window", dedup_window_minutes),
      PARLEY_LIMIT("history-max-age", history_max_age_seconds),
      PARLEY_LIMIT("resume-window", resume_window_seconds),
  };
  return table;
}

// parleyd's numeric options that an embedded server has no use for: the worker processes.
bool process_only(std::string_view option) { return option == "workers"; }

// start() on a Config with one field set; 0 or -errno, with its error() in `error`.
int start_with(const Limit& limit, uint64_t value, std::string& error) {
  parley::Config config;
  config.listen = "127.0.0.1:0";
  limit.set(config, value);
  parley::Server server(config);
  int rc = server.start();
  error = server.error();
  return rc;
}

TEST(EmbedConfigTest, EveryNumericParleydOptionIsAConfigFieldCheckedByItsTable) {
  size_t numeric = 0;
  for (const chat::OptionSpec& spec : chat::parleyd_option_specs()) {
    if (std::holds_alternative<bool chat::ParleydOptions::*>(spec.field) ||
        std::holds_alternative<std::string chat::ParleydOptions::*>(spec.field) || process_only(spec.name)) {
      continue;
    }
    ++numeric;
    SCOPED_TRACE(std::string(spec.name));
    const Limit* limit = nullptr;
    for (const Limit& candidate : all_limits()) {
      if (spec.name == candidate.option) limit = &candidate;
    }
    ASSERT_NE(limit, nullptr) << "parleyd has --" << spec.name << " and parley::Config has no field for it";
    // The Config field lands in that option's ParleydOptions field (parleyd_view).
    parley::Config config;
    limit->set(config, spec.min + 1);
    EXPECT_EQ(chat::parleyd_option_text(spec, parley::parleyd_view(config)), std::to_string(spec.min + 1));
    std::string error;
    EXPECT_EQ(start_with(*limit, spec.min, error), 0) << error;
    if (spec.min > 0) {
      EXPECT_EQ(start_with(*limit, spec.min - 1, error), -EINVAL);
      EXPECT_NE(error.find("--" + std::string(spec.name)), std::string::npos) << error;
      EXPECT_NE(error.find(spec.expected), std::string::npos) << error;
    }
    // One past the range, when the field's type (the same in both) can hold it.
    const bool wide = std::holds_alternative<uint64_t chat::ParleydOptions::*>(spec.field);
    if (wide ? spec.max < UINT64_MAX : spec.max < UINT32_MAX) {
      EXPECT_EQ(start_with(*limit, spec.max + 1, error), -EINVAL);
      EXPECT_NE(error.find("--" + std::string(spec.name)), std::string::npos) << error;
    }
  }
  EXPECT_EQ(numeric, all_limits().size()) << "a Config limit names an option parleyd does not have";
}

TEST(EmbedConfigTest, OtherBadValuesGetAClearStartError) {
  auto start_error = [](void (*tweak)(parley::Config&)) {
    parley::Config config;
    config.listen = "127.0.0.1:0";
    tweak(config);
    parley::Server server(config);
    EXPECT_EQ(server.start(), -EINVAL);
    EXPECT_EQ(server.start(), -EINVAL);  // final
    return server.error();
  };
  EXPECT_NE(start_error([](parley::Config& c) { c.token_secret = "short"; }).find("at least 32"), std::string::npos);
  EXPECT_NE(start_error([](parley::Config& c) { c.token_secret_file = "/nonexistent/secret"; })
                .find("Config: cannot open secret file /nonexistent/secret"),
            std::string::npos);
  EXPECT_NE(start_error([](parley::Config& c) { c.tls_cert_file = "cert.pem"; }).find("given together"),
            std::string::npos);
  EXPECT_NE(start_error([](parley::Config& c) { c.allow_origin = "not an origin"; }).find("--allow-origin"),
            std::string::npos);
  EXPECT_NE(start_error([](parley::Config& c) { c.path = "chat"; }).find("Config::path"), std::string::npos);
  EXPECT_NE(start_error([](parley::Config& c) { c.listen = "nowhere"; }).find("--listen"), std::string::npos);
  EXPECT_NE(start_error([](parley::Config& c) {
              c.tls_cert_file = "/nonexistent/cert.pem";
              c.tls_key_file = "/nonexistent/key.pem";
            }).find("cert"),
            std::string::npos);
}

TEST(EmbedConfigTest, LimitsReachTheRunningServer) {
  parley::Config config;
  config.max_room_members = 1;
  config.rate_limit = 1;
  config.rate_burst = 3;
  config.max_connections_per_ip = 3;
  config.allow_origin = "https://chat.example.com";
  ServerThread server(config, {});
  ASSERT_EQ(server.start_rc(), 0) << server.server().error();
  auto alice = server.hello("alice");
  auto bob = server.hello("bob");
  ServerThread::join(*alice, "lobby");
  // max_room_members: bob cannot join a full room.
  ASSERT_TRUE(bob->send_frame(kOpText, R"({"type":"join","room":"lobby"})"));
  std::string reply = next_text(*bob);
  EXPECT_NE(json_field(reply, "reason").find("room_full"), std::string::npos) << reply;
  // rate_limit: bob has used 2 of his burst of 3 (hello, join); the fourth message is dropped.
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(bob->send_frame(kOpText, R"({"type":"ping"})"));
  EXPECT_EQ(json_field(next_text(*bob), "type"), "pong");
  reply = next_text(*bob);
  EXPECT_NE(json_field(reply, "reason").find("rate_limited"), std::string::npos) << reply;
  EXPECT_GE(server.server().stats().rate_limited, 1u);
  // max_connections_per_ip: alice, bob and one more; the fourth from this address gets 503.
  WsTestClient third;
  EXPECT_TRUE(third.connect("127.0.0.1", server.port(), "/chat")) << third.error();
  WsTestClient fourth;
  EXPECT_FALSE(fourth.connect("127.0.0.1", server.port(), "/chat"));
  EXPECT_EQ(fourth.handshake_response().status, 503);
  fourth.disconnect();
  third.disconnect();
  // A refused socket may count until the loop frees it: wait for room (pitfall in PREAMBLE).
  auto deadline = std::chrono::steady_clock::now() + kEmbedTimeout;
  while (server.server().stats().connections > 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  // allow_origin: another site's page is refused 403.
  WsTestClient foreign;
  EXPECT_FALSE(foreign.connect("127.0.0.1", server.port(), "/chat", {"Origin: https://evil.example"}));
  EXPECT_EQ(foreign.handshake_response().status, 403);
}

TEST(EmbedConfigTest, TlsTokenFileAndMetricsReachTheRunningServer) {
  TestCertificate cert;
  ASSERT_TRUE(cert.ok()) << cert.error();
  const std::string secret_path = cert.dir() + "/secret";
  std::ofstream(secret_path) << "0123456789abcdef0123456789abcdef-config17\n";
  parley::Config config;
  config.tls_cert_file = cert.cert_path();
  config.tls_key_file = cert.key_path();
  config.token_secret_file = secret_path;
  ServerThread server(config, {});
  ASSERT_EQ(server.start_rc(), 0) << server.server().error();
  // wss:// with the token secret on: no token, refused 401 over TLS.
  WsTestClient client;
  EXPECT_FALSE(client.connect_tls("127.0.0.1", server.port(), "/chat"));
  EXPECT_EQ(client.handshake_response().status, 401) << client.error();
  // /metrics over https counts it.
  WsTestClient metrics;
  ASSERT_TRUE(metrics.connect_tcp("127.0.0.1", server.port()));
  ASSERT_TRUE(metrics.start_tls()) << metrics.error();
  ASSERT_TRUE(metrics.send_raw("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  HttpResponse reply = metrics.read_http_response();
  EXPECT_EQ(reply.status, 200);
  EXPECT_NE(reply.body.find("parley_chat_unauthorized_total 1"), std::string::npos) << reply.body;
  EXPECT_EQ(server.server().stats().unauthorized, 1u);
}

TEST(EmbedConfigTest, HeartbeatReachesTheRunningServer) {
  parley::Config config;
  config.ping_interval_ms = 100;
  config.pong_timeout_ms = 100;
  ServerThread server(config, {});
  ASSERT_EQ(server.start_rc(), 0) << server.server().error();
  WsTestClient client;
  ASSERT_TRUE(client.connect("127.0.0.1", server.port(), "/chat"));
  Received frame = client.recv_frame(kEmbedTimeout);
  ASSERT_TRUE(frame.ok()) << frame.error;
  EXPECT_EQ(frame.opcode, 0x9);  // RFC 6455 5.5.2 ping
  // Not answering: closed once the pong deadline passes (generous margin on a loaded machine).
  EXPECT_TRUE(client.wait_tcp_closed(kEmbedTimeout));
}

}  // namespace
}  // namespace parley_test
