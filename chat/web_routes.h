#pragma once
// Serves the browser chat page (chat/web/*, embedded by tools/embed_web_assets.sh) over plain
// HTTP on the WsServer that also serves /chat.
#include <string>
#include <string_view>

#include "chat/web_assets.h"
#include "protocol/http_request.h"
#include "protocol/ws_server.h"

namespace chat {

// Registers GET/HEAD routes for "/" (index.html) and for every embedded asset. Each response
// carries the asset's ETag (a matching If-None-Match gets 304 without a body), Cache-Control
// (no-cache for the page, a short max-age for the rest) and the security headers of
// web_security_headers(). Call once, before server.listen().
void add_web_routes(protocol::WsServer& server);

// The header lines (each ending in \r\n) sent with `asset`: ETag, Cache-Control,
// Content-Security-Policy, X-Content-Type-Options, Referrer-Policy.
std::string web_headers(const WebAsset& asset);

// Fills `reply` for a request of `asset`: 200 with the body, or 304 when If-None-Match matches.
void serve_web_asset(const WebAsset& asset, const protocol::HttpRequest& request, protocol::HttpReply& reply);

// True when an If-None-Match value (RFC 9110 13.1.2: "*" or a comma-separated list of entity
// tags, weak ones prefixed by W/) matches `etag` under the weak comparison a GET uses.
bool if_none_match_matches(std::string_view if_none_match, std::string_view etag);

}  // namespace chat
