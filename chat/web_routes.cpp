#include "chat/web_routes.h"

namespace chat {
namespace {

// The page loads only its own script and stylesheet and talks only to its own origin's /chat:
// no inline script or style, no frames, no forms posting elsewhere. Images are limited to
// 'self' and data: (the favicon is a data: URL).
constexpr std::string_view kContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self' ws: wss:; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

// The page itself must be revalidated every time, so a new build's page is seen at once; its
// script and stylesheet may be reused for five minutes (then revalidated by ETag).
constexpr std::string_view kPageCacheControl = "no-cache";
constexpr std::string_view kAssetCacheControl = "public, max-age=300";

bool is_page(const WebAsset& asset) { return asset.path == "/index.html"; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

bool if_none_match_matches(std::string_view if_none_match, std::string_view etag) {
  // RFC 9110 8.8.3.2: weak comparison ignores the W/ prefix on either side.
  if (etag.starts_with("W/")) etag.remove_prefix(2);
  while (!if_none_match.empty()) {
    size_t comma = if_none_match.find(',');
    std::string_view candidate = trim(if_none_match.substr(0, comma));
    if_none_match = comma == std::string_view::npos ? std::string_view{} : if_none_match.substr(comma + 1);
    if (candidate == "*") return true;
    if (candidate.starts_with("W/")) candidate.remove_prefix(2);
    if (!candidate.empty() && candidate == etag) return true;
  }
  return false;
}

std::string web_headers(const WebAsset& asset) {
  std::string headers;
  headers.reserve(512);
  headers.append("ETag: ").append(asset.etag).append("\r\n");
  headers.append("Cache-Control: ").append(is_page(asset) ? kPageCacheControl : kAssetCacheControl).append("\r\n");
  headers.append("Content-Security-Policy: ").append(kContentSecurityPolicy).append("\r\n");
  headers.append("X-Content-Type-Options: nosniff\r\n");
  headers.append("Referrer-Policy: no-referrer\r\n");
  return headers;
}

void serve_web_asset(const WebAsset& asset, const protocol::HttpRequest& request, protocol::HttpReply& reply) {
  reply.extra_headers = web_headers(asset);
  reply.content_type = std::string(asset.content_type);
  std::string_view if_none_match = request.header("If-None-Match");
  if (!if_none_match.empty() && if_none_match_matches(if_none_match, asset.etag)) {
    // RFC 9110 15.4.5: 304 repeats ETag and Cache-Control and sends no content.
    reply.status = 304;
    reply.body.clear();
    return;
  }
  reply.status = 200;
  reply.body.assign(asset.body);
}

void add_web_routes(protocol::WsServer& server) {
  for (const WebAsset& asset : web_assets()) {
    const WebAsset* pointer = &asset;  // static storage: outlives the server
    auto handler = [pointer](const protocol::HttpRequest& request, protocol::HttpReply& reply) {
      serve_web_asset(*pointer, request, reply);
    };
    if (is_page(asset)) server.add_http_route("/", handler);
    server.add_http_route(std::string(asset.path), handler);
  }
}

}  // namespace chat
