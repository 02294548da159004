// The opening handshake as a new connection sees it: parse the head, validate the upgrade, write
// the 101. The request mirrors what Chrome sends (~500 bytes).
#include <benchmark/benchmark.h>

#include <string_view>

#include "protocol/handshake.h"
#include "protocol/http_request.h"

namespace {

constexpr std::string_view kChromeUpgrade =
    "GET /chat?room=lobby HTTP/1.1\r\n"
    "Host: chat.example.com:8080\r\n"
    "Connection: Upgrade\r\n"
    "Pragma: no-cache\r\n"
    "Cache-Control: no-cache\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36\r\n"
    "Upgrade: websocket\r\n"
    "Origin: https://chat.example.com\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Accept-Encoding: gzip, deflate, br, zstd\r\n"
    "Accept-Language: en-US,en;q=0.9,de;q=0.8\r\n"
    "Cookie: session=5f2b9c1e8a7d4f3b9e6c2a1d0f8e7b6a\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    "\r\n";

void BM_ParseUpgradeRequest(benchmark::State& state) {
  protocol::HttpRequest request;
  for (auto _ : state) {
    auto status = protocol::parse_http_request(kChromeUpgrade, request);
    benchmark::DoNotOptimize(status);
    benchmark::DoNotOptimize(request.header_count);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kChromeUpgrade.size()));
}
BENCHMARK(BM_ParseUpgradeRequest);

void BM_FullHandshake(benchmark::State& state) {
  protocol::HttpRequest request;
  char out[512];
  for (auto _ : state) {
    if (protocol::parse_http_request(kChromeUpgrade, request) !=
        protocol::HttpParseStatus::kComplete) {
      state.SkipWithError("parse failed");
      break;
    }
    const protocol::UpgradeCheck check = protocol::check_upgrade_request(request);
    if (check.status != 101) {
      state.SkipWithError("upgrade rejected");
      break;
    }
    size_t n = protocol::write_upgrade_response(out, sizeof out, check.key);
    benchmark::DoNotOptimize(n);
    benchmark::DoNotOptimize(out);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kChromeUpgrade.size()));
}
BENCHMARK(BM_FullHandshake);

// Validation alone, on an already parsed request.
void BM_CheckUpgrade(benchmark::State& state) {
  protocol::HttpRequest request;
  if (protocol::parse_http_request(kChromeUpgrade, request) !=
      protocol::HttpParseStatus::kComplete) {
    state.SkipWithError("parse failed");
    return;
  }
  for (auto _ : state) {
    protocol::UpgradeCheck check = protocol::check_upgrade_request(request);
    benchmark::DoNotOptimize(check);
  }
}
BENCHMARK(BM_CheckUpgrade);

// The SHA-1 share of the full handshake.
void BM_AcceptKey(benchmark::State& state) {
  char out[protocol::kAcceptKeyLength];
  for (auto _ : state) {
    protocol::compute_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out);
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(BM_AcceptKey);

}  // namespace
