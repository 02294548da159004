// Per-handshake and per-message costs of authentication: token verification (HMAC-SHA256 plus
// two small JSON documents), token extraction, the Origin check, and a token-bucket take.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <vector>

#include "chat/auth_token.h"
#include "chat/origin_policy.h"
#include "chat/token_bucket.h"
#include "protocol/http_request.h"

namespace {

constexpr std::string_view kSecret = "an-hs256-bench-secret-of-32-bytes!!";
constexpr uint64_t kNow = 1'700'000'000;

void BM_VerifyToken(benchmark::State& state) {
  const std::string token = chat::mint_token("alice", {"general", "dev", "ops"}, kNow + 3600, kSecret);
  for (auto _ : state) {
    chat::TokenResult r = chat::verify_token(token, kSecret, kNow);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_VerifyToken);

// A forged token is refused after the HMAC, before the claims are parsed.
void BM_VerifyForgedToken(benchmark::State& state) {
  std::string token = chat::mint_token("alice", {}, kNow + 3600, kSecret);
  token[token.size() - 5] = token[token.size() - 5] == 'A' ? 'B' : 'A';
  for (auto _ : state) {
    chat::TokenResult r = chat::verify_token(token, kSecret, kNow);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_VerifyForgedToken);

void BM_MintToken(benchmark::State& state) {
  for (auto _ : state) {
    std::string token = chat::mint_token("alice", {"general"}, kNow + 3600, kSecret);
    benchmark::DoNotOptimize(token);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MintToken);

void BM_ExtractTokenFromSubprotocol(benchmark::State& state) {
  const std::string token = chat::mint_token("alice", {}, kNow + 3600, kSecret);
  const std::string head =
      "GET /chat HTTP/1.1\r\nHost: chat.example.com\r\nUpgrade: websocket\r\n"
      "Connection: Upgrade\r\nOrigin: https://chat.example.com\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
      "Sec-WebSocket-Protocol: parley.v1, parley.token." + token + "\r\n\r\n";
  protocol::HttpRequest request;
  protocol::parse_http_request(head, request);
  for (auto _ : state) {
    chat::ExtractedToken t = chat::extract_token(request);
    benchmark::DoNotOptimize(t);
  }
}
BENCHMARK(BM_ExtractTokenFromSubprotocol);

void BM_OriginAllows(benchmark::State& state) {
  chat::OriginPolicy policy;
  std::string error;
  policy.parse("https://chat.example.com, https://*.example.org, http://localhost:3000", error);
  const std::string_view origins[] = {"https://chat.example.com", "https://a.b.example.org",
                                      "https://evil.example.net", "http://localhost:3000"};
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(policy.allows(origins[i++ & 3]));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_OriginAllows);

// One take per message on one of many connections' buckets, as the chat engine would.
void BM_TokenBucketTake(benchmark::State& state) {
  const chat::TokenBucketRate rate = *chat::TokenBucketRate::make(20, 40);
  std::vector<chat::TokenBucket> buckets(static_cast<size_t>(state.range(0)),
                                         chat::TokenBucket(rate, 0));
  uint64_t now = 0;
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(buckets[i].try_take(rate, now));
    if (++i == buckets.size()) {
      i = 0;
      ++now;
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TokenBucketTake)->Arg(1)->Arg(100'000);

}  // namespace
