#pragma once
// ws:// and wss:// URLs for the bundled tools (RFC 6455 3).
#include <cstdint>
#include <string>
#include <string_view>

namespace tools {

struct WsUrl {
  bool secure = false;  // wss://
  std::string host;     // without brackets for IPv6
  uint16_t port = 80;
  std::string path = "/";  // path and query, never empty
};

// Parses "ws://host[:port][/path]" or "wss://..."; false when malformed.
bool parse_ws_url(std::string_view text, WsUrl& out);

// The Host header value for `url` (RFC 7230 5.4): the host, bracketed when IPv6, with ":port"
// unless it is the scheme's default (80 for ws://, 443 for wss://; RFC 6455 3).
std::string host_header_value(const WsUrl& url);

}  // namespace tools
