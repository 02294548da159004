#include "tools/ws_url.h"

#include <algorithm>
#include <charconv>
#include <cstring>

namespace tools {

namespace {

// RFC 3986 3.2.2: a reg-name or IPv4 address is unreserved, pct-encoded or sub-delims
// characters; no ':' (that separates the port), '@' (userinfo), brackets or whitespace.
bool is_host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         (c != '\0' && std::strchr("-._~%!$&'()*+,;=", c) != nullptr);
}

// Inside brackets: an IPv6 address (hex groups, colons, an optional dotted IPv4 tail).
bool is_ipv6_char(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' || c == '.';
}

// Bytes that would break the HTTP request line the path is sent in.
bool is_space_or_control(char c) { return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f; }

}  // namespace

bool parse_ws_url(std::string_view text, WsUrl& out) {
  WsUrl url;
  if (text.starts_with("ws://")) {
    text.remove_prefix(5);
  } else if (text.starts_with("wss://")) {
    url.secure = true;
    url.port = 443;
    text.remove_prefix(6);
  } else {
    return false;
  }
  // RFC 6455 3: fragment identifiers must not be used ('#' must be escaped).
  if (text.find('#') != std::string_view::npos) return false;
  if (std::any_of(text.begin(), text.end(), is_space_or_control)) return false;
  // The authority ends at the path or, when the path is empty, at the query; the resource
  // name is then "/" followed by the query (RFC 6455 3).
  size_t authority_end = text.find_first_of("/?");
  std::string_view authority = text.substr(0, authority_end);
  if (authority_end != std::string_view::npos) {
    std::string_view rest = text.substr(authority_end);
    url.path = rest.front() == '?' ? "/" + std::string(rest) : std::string(rest);
  }
  std::string_view host = authority;
  std::string_view port;
  if (authority.starts_with("[")) {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return false;
    host = authority.substr(1, close - 1);
    std::string_view rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return false;
      port = rest.substr(1);
    }
  } else if (size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) return false;
  if (authority.starts_with("[")) {
    if (host.find(':') == std::string_view::npos || !std::all_of(host.begin(), host.end(), is_ipv6_char)) {
      return false;
    }
  } else if (!std::all_of(host.begin(), host.end(), is_host_char)) {
    return false;
  }
  if (!port.empty() || authority.ends_with(":")) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) return false;
    url.port = static_cast<uint16_t>(value);
  }
  url.host = std::string(host);
  out = std::move(url);
  return true;
}

std::string host_header_value(const WsUrl& url) {
  std::string host = url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host;
  if (url.port != (url.secure ? 443 : 80)) host += ":" + std::to_string(url.port);
  return host;
}

}  // namespace tools
