#pragma once
// Which browser origins may open a WebSocket (RFC 6455 4.2.2 step 4, 10.2): a browser always
// sends Origin on a WebSocket handshake, so checking it stops other sites' pages from using a
// visitor's cookies or network position (cross-site WebSocket hijacking). Non-browser clients
// usually send no Origin at all; whether they are let in is a separate switch.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace chat {

class OriginPolicy {
 public:
  enum class MissingOrigin : uint8_t { kAllow, kDeny };

  // An empty policy: every request with an Origin is refused; requests without one are allowed.
  OriginPolicy() = default;

  // Parses a comma-separated --allow-origin list; whitespace around entries is ignored. Entries:
  //   "https://chat.example.com[:port]"  exact origin (scheme and host case-insensitive,
  //                                       RFC 6454 4-6; a default port equals no port)
  //   "https://*.example.com[:port]"     any subdomain, at any depth, of example.com (not
  //                                       example.com itself); the suffix needs two labels
  //                                       (or is "localhost")
  //   "*"                                any origin, "null" included
  // Hosts must be ASCII (browsers send IDNs as punycode) or a bracketed IPv6 address (compared
  // as written: use the browser's canonical form, e.g. "[::1]"). Returns false and sets
  // `error` to one line naming the bad entry; `*this` is then left unchanged.
  bool parse(std::string_view list, std::string& error);

  void set_missing_origin(MissingOrigin policy) { missing_ = policy; }
  MissingOrigin missing_origin() const { return missing_; }

  // True when a handshake with this Origin header value may proceed. An empty value means the
  // header was absent (the MissingOrigin switch decides). "null" (opaque origins: sandboxed
  // frames, file: pages) and anything that is not one serialized origin are refused unless
  // "*" is in the list. Does not allocate.
  bool allows(std::string_view origin_header) const;

  // True when the list has no entries (no browser origin is allowed).
  bool empty() const { return !allow_any_ && entries_.empty(); }

 private:
  struct Entry {
    std::string scheme;  // lower case
    std::string host;    // lower case; for wildcards the suffix after "*." (no leading dot)
    uint16_t port = 0;   // 0: the scheme's default (or none)
    bool wildcard = false;
  };

  std::vector<Entry> entries_;
  bool allow_any_ = false;
  MissingOrigin missing_ = MissingOrigin::kAllow;
};

}  // namespace chat
