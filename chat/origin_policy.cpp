// Origin allow-list. The same grammar check runs on configuration entries and on request
// headers, so a header that could not have been written in the list never matches one.
#include "chat/origin_policy.h"

#include "protocol/http_request.h"

namespace chat {

namespace {

constexpr size_t kMaxHostBytes = 253;   // RFC 1035 2.3.4, as text without the root dot
constexpr size_t kMaxLabelBytes = 63;

constexpr bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
constexpr bool is_digit(char c) { return c >= '0' && c <= '9'; }
constexpr char to_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c | 0x20) : c; }

// An origin split into parts; views into the parsed text.
struct OriginParts {
  std::string_view scheme;
  std::string_view host;  // brackets kept for IPv6
  uint16_t port = 0;      // 0: none or the scheme's default
};

// RFC 3986 3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
bool valid_scheme(std::string_view s) {
  if (s.empty() || !is_alpha(s[0])) return false;
  for (char c : s) {
    if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '-' && c != '.') return false;
  }
  return true;
}

// A DNS-style host: dot-separated labels of letters, digits, '-' and '_' (underscores occur in
// real names), each 1-63 bytes, no leading/trailing dot; also covers IPv4 dotted quads.
bool valid_reg_name(std::string_view host) {
  if (host.empty() || host.size() > kMaxHostBytes) return false;
  size_t label = 0;
  for (char c : host) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
    } else if (is_alpha(c) || is_digit(c) || c == '-' || c == '_') {
      if (++label > kMaxLabelBytes) return false;
    } else {
      return false;
    }
  }
  return label != 0;
}

// "[...]" with hex digits, ':' and '.' inside (RFC 3986 3.2.2 IP-literal, loosely: browsers
// send the canonical RFC 5952 form, and we compare text).
bool valid_ip_literal(std::string_view host) {
  if (host.size() < 4 || host.front() != '[' || host.back() != ']') return false;
  for (char c : host.substr(1, host.size() - 2)) {
    const char l = to_lower(c);
    if (!is_digit(l) && !(l >= 'a' && l <= 'f') && l != ':' && l != '.') return false;
  }
  return true;
}

uint16_t default_port(std::string_view scheme) {
  if (protocol::equals_ignore_case(scheme, "https") || protocol::equals_ignore_case(scheme, "wss")) {
    return 443;
  }
  if (protocol::equals_ignore_case(scheme, "http") || protocol::equals_ignore_case(scheme, "ws")) {
    return 80;
  }
  return 0;
}

// Splits "scheme://host[:port]" (RFC 6454 6.2 serialization). `why` explains a failure.
// The host is checked only for the characters that delimit it; callers validate its grammar.
bool split_origin(std::string_view s, OriginParts& out, std::string_view& why) {
  const size_t sep = s.find("://");
  if (sep == std::string_view::npos) {
    why = "expected scheme://host[:port]";
    return false;
  }
  out.scheme = s.substr(0, sep);
  if (!valid_scheme(out.scheme)) {
    why = "invalid scheme";
    return false;
  }
  std::string_view rest = s.substr(sep + 3);
  if (rest.find_first_of("/?#") != std::string_view::npos) {
    why = "an origin has no path, query or fragment";
    return false;
  }
  if (rest.find('@') != std::string_view::npos) {
    why = "an origin has no user info";
    return false;
  }
  size_t host_end;
  if (!rest.empty() && rest.front() == '[') {
    host_end = rest.find(']');
    if (host_end == std::string_view::npos) {
      why = "unterminated IPv6 address";
      return false;
    }
    ++host_end;
  } else {
    host_end = rest.find(':');
    if (host_end == std::string_view::npos) host_end = rest.size();
  }
  out.host = rest.substr(0, host_end);
  if (out.host.empty()) {
    why = "missing host";
    return false;
  }
  out.port = 0;
  if (host_end < rest.size()) {
    const std::string_view port = rest.substr(host_end);
    // port = ":" 1*5DIGIT, 1-65535
    if (port.size() < 2 || port.size() > 6 || port[0] != ':') {
      why = "invalid port";
      return false;
    }
    uint32_t value = 0;
    for (char c : port.substr(1)) {
      if (!is_digit(c)) {
        why = "invalid port";
        return false;
      }
      value = value * 10 + static_cast<uint32_t>(c - '0');
    }
    if (value == 0 || value > 65535) {
      why = "port out of range 1-65535";
      return false;
    }
    out.port = static_cast<uint16_t>(value);
  }
  // RFC 6454 4: an origin with the scheme's default port is the same as one without a port.
  if (out.port != 0 && out.port == default_port(out.scheme)) out.port = 0;
  return true;
}

bool valid_host(std::string_view host) { return valid_reg_name(host) || valid_ip_literal(host); }

bool ends_with_ignore_case(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         protocol::equals_ignore_case(s.substr(s.size() - suffix.size()), suffix);
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = to_lower(c);
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

bool OriginPolicy::parse(std::string_view list, std::string& error) {
  std::vector<Entry> entries;
  bool allow_any = false;
  auto bad = [&](std::string_view entry, std::string_view why) {
    error = "bad origin \"";
    error.append(entry);
    error += "\" in --allow-origin: ";
    error.append(why);
    return false;
  };
  if (trim(list).empty()) {
    error = "--allow-origin: empty list (give scheme://host[:port] entries, comma-separated)";
    return false;
  }
  std::string_view rest = list;
  while (true) {
    const size_t comma = rest.find(',');
    const std::string_view entry = trim(rest.substr(0, comma));
    if (entry.empty()) {
      error = "--allow-origin: empty entry in \"";
      error.append(list);
      error += "\"";
      return false;
    }
    if (entry == "*") {
      allow_any = true;
    } else if (entry == "null") {
      return bad(entry, "opaque origins (sandboxed frames, file: pages) cannot be told apart; "
                        "use \"*\" to allow everything");
    } else {
      for (char c : entry) {
        if (static_cast<unsigned char>(c) >= 0x80 || static_cast<unsigned char>(c) < 0x21) {
          return bad(entry, "only printable ASCII (write international names in punycode)");
        }
      }
      OriginParts parts;
      std::string_view why;
      if (!split_origin(entry, parts, why)) return bad(entry, why);
      Entry e;
      e.scheme = lower(parts.scheme);
      e.port = parts.port;
      std::string_view host = parts.host;
      if (host.size() >= 2 && host.substr(0, 2) == "*.") {
        host.remove_prefix(2);
        if (!valid_reg_name(host)) return bad(entry, "invalid host after \"*.\"");
        if (host.find('.') == std::string_view::npos &&
            !protocol::equals_ignore_case(host, "localhost")) {
          return bad(entry, "a wildcard must name at least a two-label domain (*.example.com)");
        }
        e.wildcard = true;
      } else if (host.find('*') != std::string_view::npos) {
        return bad(entry, "'*' is allowed only as a whole leading label (https://*.example.com)");
      } else if (!valid_host(host)) {
        return bad(entry, "invalid host");
      }
      e.host = lower(host);
      entries.push_back(std::move(e));
    }
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  entries_ = std::move(entries);
  allow_any_ = allow_any;
  return true;
}

bool OriginPolicy::allows(std::string_view origin_header) const {
  if (origin_header.empty()) return missing_ == MissingOrigin::kAllow;
  if (allow_any_) return true;
  OriginParts parts;
  std::string_view why;
  if (!split_origin(origin_header, parts, why) || !valid_host(parts.host)) return false;
  for (const Entry& e : entries_) {
    if (e.port != parts.port || !protocol::equals_ignore_case(e.scheme, parts.scheme)) continue;
    if (!e.wildcard) {
      if (protocol::equals_ignore_case(e.host, parts.host)) return true;
      continue;
    }
    // "*.example.com": the host is "<one or more labels>.example.com". valid_host rules out
    // empty labels, so a '.' right before the suffix leaves a non-empty label in front of it.
    const std::string_view host = parts.host;
    if (host.size() > e.host.size() + 1 && ends_with_ignore_case(host, e.host) &&
        host[host.size() - e.host.size() - 1] == '.' && host.front() != '[') {
      return true;
    }
  }
  return false;
}

}  // namespace chat
