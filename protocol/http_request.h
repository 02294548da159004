#pragma once
// Zero-copy HTTP/1.1 request-head parser (RFC 9112 sections 2-5): every output is a view into the
// caller's bytes, which must outlive the HttpRequest (the one exception: the path of an
// absolute-form target without one is the static string "/").
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace protocol {

inline constexpr size_t kMaxRequestHead = 8192;  // request line + headers; beyond -> 431
inline constexpr size_t kMaxHeaders = 64;        // beyond -> 431

struct HttpHeader {
  std::string_view name;
  std::string_view value;  // leading and trailing whitespace removed
};

struct HttpRequest {
  std::string_view method;
  std::string_view target;     // as sent: origin-form path?query, or absolute-form URI
  std::string_view path;       // the path: origin-form target up to '?', or the absolute-form
                               // URI's path ("/" when it has none; RFC 9112 3.2.2)
  std::string_view query;      // after '?', without it; empty if none
  std::string_view authority;  // absolute-form only: host[:port] from the target, else empty
  int version_minor = 1;    // HTTP/1.x
  HttpHeader headers[kMaxHeaders];
  size_t header_count = 0;
  size_t head_length = 0;  // bytes up to and including the blank line

  // The first header named `name` (case-insensitive), or an empty view when absent.
  std::string_view header(std::string_view name) const;
  // True when header `name` is present.
  bool has_header(std::string_view name) const;
};

enum class HttpParseStatus : uint8_t {
  kComplete,  // `out` filled; out.head_length bytes were the request head
  kNeedMore,  // no blank line yet and fewer than max_head bytes
  kBadRequest,   // malformed request line or header -> 400
  kTooLarge,     // head longer than max_head or more than kMaxHeaders headers -> 431
  kBadVersion,   // not HTTP/1.x -> 505
};

// Parses the request head at the start of `data`. Accepts CRLF line endings (and bare LF, as
// RFC 9112 2.2 allows). Rejects obsolete line folding and control characters with kBadRequest.
HttpParseStatus parse_http_request(std::string_view data, HttpRequest& out,
                                   size_t max_head = kMaxRequestHead);

// Where an incremental scan of a request head stopped (scan_request_head). Zero-initialised
// means "nothing scanned yet"; 8 bytes, so a connection waiting for its head can keep one.
struct HeadScanState {
  uint32_t offset = 0;  // bytes of the head already checked
  uint8_t phase = 0;    // position in the request grammar (internal)
  uint8_t step = 0;     // progress inside the phase, e.g. chars of "HTTP/1.1" seen (internal)
};

enum class HeadScanStatus : uint8_t {
  kNeedMore,  // every byte so far can begin a valid request head
  kComplete,  // the blank line ending the head was seen: parse it with parse_http_request
  kBad,       // no continuation can make this a valid HTTP/1.x request head -> 400
};

// Checks the bytes of `data` from `state.offset` on against the request-head grammar (RFC 9112
// 2-5) and advances `state`, so a head trickling in costs O(new bytes) per call and garbage
// (random bytes, a TLS ClientHello, control characters) is caught at the first byte that
// cannot be HTTP. `data` must hold the whole head so far (the same bytes as earlier calls plus
// new ones). Never stricter than parse_http_request: kBad implies that parsing any extension of
// `data` yields no kComplete. Size limits are the caller's (kMaxRequestHead).
HeadScanStatus scan_request_head(std::string_view data, HeadScanState& state);

// True when `c` is an RFC 9110 5.6.2 tchar (may appear in a token).
bool is_token_char(char c);

// Case-insensitive ASCII comparison.
bool equals_ignore_case(std::string_view a, std::string_view b);

// True when the comma-separated token list `list` (e.g. "keep-alive, Upgrade") contains `token`,
// compared case-insensitively (RFC 9110 5.6.1).
bool header_has_token(std::string_view list, std::string_view token);

}  // namespace protocol
