#include "protocol/http_request.h"

#include <array>
#include <cstring>

namespace protocol {
namespace {

// RFC 9110 5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" /
// "`" / "|" / "~" / DIGIT / ALPHA.
constexpr std::array<bool, 256> make_tchar_table() {
  std::array<bool, 256> table{};
  for (int c = '0'; c <= '9'; ++c) table[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) table[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) table[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) table[static_cast<unsigned char>(c)] = true;
  return table;
}
constexpr std::array<bool, 256> kTchar = make_tchar_table();

constexpr uint64_t kOnes = 0x0101010101010101ULL;
constexpr uint64_t kHighs = 0x8080808080808080ULL;

constexpr unsigned char to_lower(unsigned char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<unsigned char>(c | 0x20) : c;
}

// Folds the ASCII letters 'A'..'Z' in each byte of `w` to lower case and leaves every other
// byte, including those >= 0x80, alone.
constexpr uint64_t lower_word(uint64_t w) {
  const uint64_t low7 = w & ~kHighs;
  const uint64_t ge_a = low7 + kOnes * (0x80 - 'A');  // high bit set where low7 >= 'A'
  const uint64_t gt_z = low7 + kOnes * (0x7f - 'Z');  // high bit set where low7 > 'Z'
  const uint64_t upper = ge_a & ~gt_z & ~w & kHighs;  // ... and the byte itself is ASCII
  return w | (upper >> 2);                            // 0x80 >> 2 == 0x20, the case bit
}

constexpr bool is_ows(char c) { return c == ' ' || c == '\t'; }

// Nonzero when some byte of `w` is below `n` (n <= 128); exact as a boolean.
constexpr uint64_t has_byte_below(uint64_t w, uint64_t n) { return (w - kOnes * n) & ~w & kHighs; }
// Nonzero when some byte of `w` equals `b`; exact as a boolean.
constexpr uint64_t has_byte_equal(uint64_t w, uint64_t b) {
  const uint64_t x = w ^ (kOnes * b);
  return (x - kOnes) & ~x & kHighs;
}

// RFC 9110 5.5: field-content is field-vchar (VCHAR / obs-text) with SP and HTAB inside.
// Everything else below 0x20, and DEL, is a control character a value must not carry.
constexpr bool is_value_byte(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

// Word-at-a-time check: controls are rare, so most 8-byte words need one test. Reads only
// [p, p + n).
bool valid_field_value(const char* p, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    if ((has_byte_below(w, 0x20) | has_byte_equal(w, 0x7f)) == 0) continue;
    for (size_t j = i; j < i + 8; ++j) {
      if (!is_value_byte(static_cast<unsigned char>(p[j]))) return false;
    }
  }
  for (; i < n; ++i) {
    if (!is_value_byte(static_cast<unsigned char>(p[i]))) return false;
  }
  return true;
}

// The request-target may hold no controls, SP or DEL (RFC 9112 3.2; RFC 3986 has no room for
// them). Bytes >= 0x80 are let through as picohttpparser does; routing compares exact paths.
bool valid_target(const char* p, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    if ((has_byte_below(w, 0x21) | has_byte_equal(w, 0x7f)) != 0) return false;
  }
  for (; i < n; ++i) {
    const auto c = static_cast<unsigned char>(p[i]);
    if (c <= 0x20 || c == 0x7f) return false;
  }
  return true;
}

// Length of the token at the start of [p, p + n).
size_t token_length(const char* p, size_t n) {
  size_t i = 0;
  while (i < n && kTchar[static_cast<unsigned char>(p[i])]) ++i;
  return i;
}

// Offset just past the blank line that ends the head, searching [from, end) of `p`; 0 when the
// blank line is not (yet) inside the window. A line always ends at LF, so the head ends at the
// first LF that is followed by LF or CR LF (RFC 9112 2.1, with bare LF per 2.2).
size_t find_head_end(const char* p, size_t from, size_t end) {
  size_t i = from;
  while (i < end) {
    const void* lf = std::memchr(p + i, '\n', end - i);
    if (lf == nullptr) return 0;
    const size_t next = static_cast<size_t>(static_cast<const char*>(lf) - p) + 1;
    if (next < end && p[next] == '\n') return next + 1;
    if (next + 1 < end && p[next] == '\r' && p[next + 1] == '\n') return next + 2;
    i = next;
  }
  return 0;
}

HttpParseStatus parse_version(std::string_view v, int& minor) {
  // RFC 9112 2.3: HTTP-version = "HTTP" "/" DIGIT "." DIGIT, case-sensitive.
  const bool named = v.size() > 5 && v.substr(0, 5) == "HTTP/";
  if (!named) return HttpParseStatus::kBadRequest;
  const bool digit_major = v[5] >= '0' && v[5] <= '9';
  if (!digit_major) return HttpParseStatus::kBadRequest;
  // A well-named version with another major ("HTTP/2.0", "HTTP/3") is one we do not speak.
  if (v[5] != '1') return HttpParseStatus::kBadVersion;
  if (v.size() != 8 || v[6] != '.' || v[7] < '0' || v[7] > '9') {
    return HttpParseStatus::kBadRequest;
  }
  minor = v[7] - '0';
  return HttpParseStatus::kComplete;
}

// RFC 9112 3.2.2: a request-target in absolute-form ("http://host:port/path?query"), which a
// server MUST accept. Returns the offset where the authority ends (at '/', '?' or the end), or
// 0 when `target` is not absolute-form with one of the schemes HTTP carries (http, https, and
// ws/wss, whose requests are HTTP requests, RFC 6455 3); other forms route on the raw target.
size_t absolute_form_authority_end(std::string_view target) {
  if (target.empty() || target[0] == '/') return 0;
  const size_t sep = target.find("://");
  if (sep == std::string_view::npos) return 0;
  const std::string_view scheme = target.substr(0, sep);
  if (!equals_ignore_case(scheme, "http") && !equals_ignore_case(scheme, "https") &&
      !equals_ignore_case(scheme, "ws") && !equals_ignore_case(scheme, "wss")) {
    return 0;
  }
  const size_t end = target.find_first_of("/?", sep + 3);
  return end == std::string_view::npos ? target.size() : end;
}

HttpParseStatus parse_request_line(const char* p, size_t n, HttpRequest& out) {
  // RFC 9112 3: request-line = method SP request-target SP HTTP-version, single SPs.
  const size_t method_len = token_length(p, n);
  if (method_len == 0 || method_len == n || p[method_len] != ' ') {
    return HttpParseStatus::kBadRequest;
  }
  const size_t target_start = method_len + 1;
  const void* sp = std::memchr(p + target_start, ' ', n - target_start);
  if (sp == nullptr) return HttpParseStatus::kBadRequest;
  const size_t target_end = static_cast<size_t>(static_cast<const char*>(sp) - p);
  const size_t target_len = target_end - target_start;
  if (target_len == 0 || !valid_target(p + target_start, target_len)) {
    return HttpParseStatus::kBadRequest;
  }
  const HttpParseStatus version =
      parse_version(std::string_view(p + target_end + 1, n - target_end - 1), out.version_minor);
  if (version != HttpParseStatus::kComplete) return version;

  out.method = std::string_view(p, method_len);
  out.target = std::string_view(p + target_start, target_len);
  out.authority = {};
  std::string_view rest = out.target;  // path?query
  const size_t authority_end = absolute_form_authority_end(out.target);
  if (authority_end != 0) {
    const size_t authority_start = out.target.find("://") + 3;
    out.authority = out.target.substr(authority_start, authority_end - authority_start);
    // RFC 9110 4.2.4: userinfo in an http(s) URI is deprecated and to be treated as an error.
    if (out.authority.empty() || out.authority.find('@') != std::string_view::npos) {
      return HttpParseStatus::kBadRequest;
    }
    rest = out.target.substr(authority_end);
  }
  const size_t q = rest.find('?');
  out.path = rest.substr(0, q);
  out.query = q == std::string_view::npos ? rest.substr(rest.size()) : rest.substr(q + 1);
  // RFC 9112 3.2.2 / RFC 9110 4.2.1: an absolute URI with an empty path means "/".
  if (out.path.empty() && authority_end != 0) out.path = "/";
  return HttpParseStatus::kComplete;
}

HttpParseStatus parse_header_line(const char* p, size_t n, HttpHeader& header) {
  // RFC 9112 5.1: no whitespace between field name and colon; RFC 9112 5.2: a line starting
  // with SP/HTAB is obs-fold, which we reject rather than unfold. Both leave name_len == 0 or
  // stop the token short of the colon.
  const size_t name_len = token_length(p, n);
  if (name_len == 0 || name_len == n || p[name_len] != ':') return HttpParseStatus::kBadRequest;
  size_t begin = name_len + 1;
  size_t end = n;
  while (begin < end && is_ows(p[begin])) ++begin;
  while (end > begin && is_ows(p[end - 1])) --end;
  if (!valid_field_value(p + begin, end - begin)) return HttpParseStatus::kBadRequest;
  header.name = std::string_view(p, name_len);
  header.value = std::string_view(p + begin, end - begin);
  return HttpParseStatus::kComplete;
}

}  // namespace

HttpParseStatus parse_http_request(std::string_view data, HttpRequest& out, size_t max_head) {
  out.header_count = 0;
  out.head_length = 0;
  const char* p = data.data();
  // Nothing past max_head is ever looked at, so a head that only completes beyond it is 431 no
  // matter what follows.
  const size_t window = data.size() < max_head ? data.size() : max_head;

  // RFC 9112 2.2: a server SHOULD ignore empty lines received before the request-line.
  size_t start = 0;
  for (;;) {
    if (start < window && p[start] == '\n') {
      start += 1;
    } else if (start + 1 < window && p[start] == '\r' && p[start + 1] == '\n') {
      start += 2;
    } else {
      break;
    }
  }

  // Validate only a complete head: a client trickling bytes costs one memchr pass per read
  // instead of a full re-parse, and every prefix of a head is kNeedMore. When the window ends
  // in a blank line (a whole request in one read, the common case) the head is known complete
  // and the line walk below finds the first blank line itself, so the pre-scan is skipped.
  // The trailing blank line counts only if the LF before it ends a line at or after `start`.
  size_t limit = window;
  const bool ends_blank = (window >= start + 2 && p[window - 1] == '\n' && p[window - 2] == '\n') ||
                          (window >= start + 3 && p[window - 1] == '\n' && p[window - 2] == '\r' &&
                           p[window - 3] == '\n');
  if (!ends_blank) {
    limit = find_head_end(p, start, window);
    if (limit == 0) {
      return data.size() >= max_head ? HttpParseStatus::kTooLarge : HttpParseStatus::kNeedMore;
    }
  }

  // Invariant: a blank line ends at or before `limit`, so every line up to it has an LF there.
  size_t line = start;
  bool request_line = true;
  for (;;) {
    const char* lf = static_cast<const char*>(std::memchr(p + line, '\n', limit - line));
    const size_t lf_at = static_cast<size_t>(lf - p);
    size_t line_len = lf_at - line;
    if (line_len > 0 && p[lf_at - 1] == '\r') --line_len;
    if (request_line) {
      const HttpParseStatus s = parse_request_line(p + line, line_len, out);
      if (s != HttpParseStatus::kComplete) return s;
      request_line = false;
    } else if (line_len == 0) {
      out.head_length = lf_at + 1;  // the first empty line after the request line
      return HttpParseStatus::kComplete;
    } else {
      if (out.header_count == kMaxHeaders) return HttpParseStatus::kTooLarge;
      const HttpParseStatus s =
          parse_header_line(p + line, line_len, out.headers[out.header_count]);
      if (s != HttpParseStatus::kComplete) return s;
      ++out.header_count;
    }
    line = lf_at + 1;
  }
}

bool equals_ignore_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  const size_t n = a.size();
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t x;
    uint64_t y;
    std::memcpy(&x, a.data() + i, 8);
    std::memcpy(&y, b.data() + i, 8);
    if (x != y && lower_word(x) != lower_word(y)) return false;
  }
  for (; i < n; ++i) {
    if (to_lower(static_cast<unsigned char>(a[i])) != to_lower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

bool header_has_token(std::string_view list, std::string_view token) {
  // RFC 9110 5.6.1: #element lists are comma-separated with optional whitespace, and empty
  // elements are to be ignored.
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t comma = list.find(',', pos);
    if (comma == std::string_view::npos) comma = list.size();
    size_t begin = pos;
    size_t end = comma;
    while (begin < end && is_ows(list[begin])) ++begin;
    while (end > begin && is_ows(list[end - 1])) --end;
    if (end > begin && equals_ignore_case(list.substr(begin, end - begin), token)) return true;
    pos = comma + 1;
  }
  return false;
}

std::string_view HttpRequest::header(std::string_view name) const {
  for (size_t i = 0; i < header_count; ++i) {
    if (equals_ignore_case(headers[i].name, name)) return headers[i].value;
  }
  return {};
}

bool HttpRequest::has_header(std::string_view name) const {
  for (size_t i = 0; i < header_count; ++i) {
    if (equals_ignore_case(headers[i].name, name)) return true;
  }
  return false;
}

namespace {

// The phases of scan_request_head, in grammar order (RFC 9112 2.1: request-line *( field-line
// CRLF ) CRLF, with bare LF accepted as a line end per 2.2).
enum ScanPhase : uint8_t {
  kLeading,        // empty lines before the request-line (RFC 9112 2.2 says to ignore them)
  kLeadingCr,      // a CR there; LF must follow
  kMethod,         // method = token
  kTargetStart,    // after the SP: the target's first byte
  kTarget,         // request-target: no CTL, SP or DEL
  kVersion,        // "HTTP/1." DIGIT, `step` chars in
  kOtherVersion,   // HTTP/ with another major: 505 once complete, so nothing more is judged
  kOtherLineStart, // ... just after an LF there
  kOtherCr,        // ... a CR right after that LF
  kLineCr,         // a CR ending a line; LF must follow
  kLineStart,      // the first byte of a field line, or of the final empty line
  kEndCr,          // a CR opening the final empty line; LF must follow
  kName,           // field-name = token, up to ':'
  kValue,          // field-value bytes up to the line end
};

constexpr std::string_view kVersionPrefix = "HTTP/1.";

}  // namespace

HeadScanStatus scan_request_head(std::string_view data, HeadScanState& state) {
  size_t i = state.offset;
  uint8_t phase = state.phase;
  uint8_t step = state.step;
  HeadScanStatus result = HeadScanStatus::kNeedMore;
  for (; i < data.size() && result == HeadScanStatus::kNeedMore; ++i) {
    const auto c = static_cast<unsigned char>(data[i]);
    bool ok = true;
    switch (phase) {
      case kLeading:
        if (c == '\r') phase = kLeadingCr;
        else if (kTchar[c]) phase = kMethod;
        else ok = c == '\n';
        break;
      case kLeadingCr:
        ok = c == '\n';
        phase = kLeading;
        break;
      case kMethod:
        if (c == ' ') phase = kTargetStart;
        else ok = kTchar[c];
        break;
      case kTargetStart:
      case kTarget:
        if (c == ' ' && phase == kTarget) {
          phase = kVersion;
          step = 0;
        } else {
          ok = c > 0x20 && c != 0x7f;
          phase = kTarget;
        }
        break;
      case kVersion:
        // RFC 9112 2.3: HTTP-version = "HTTP" "/" DIGIT "." DIGIT. A major other than 1 is a
        // well-formed version we do not speak (505), decided by the full parse.
        if (step == 5 && c != '1' && c >= '0' && c <= '9') {
          phase = kOtherVersion;
        } else if (step < kVersionPrefix.size()) {
          ok = c == static_cast<unsigned char>(kVersionPrefix[step++]);
        } else if (step == kVersionPrefix.size()) {
          ok = c >= '0' && c <= '9';
          ++step;
        } else if (c == '\r') {
          phase = kLineCr;
        } else {
          ok = c == '\n';
          phase = kLineStart;
        }
        break;
      case kOtherVersion:
        if (c == '\n') phase = kOtherLineStart;
        break;
      case kOtherLineStart:
        if (c == '\n') result = HeadScanStatus::kComplete;
        else phase = c == '\r' ? kOtherCr : kOtherVersion;
        break;
      case kOtherCr:
        if (c == '\n') result = HeadScanStatus::kComplete;
        else phase = kOtherVersion;
        break;
      case kLineCr:
        ok = c == '\n';
        phase = kLineStart;
        break;
      case kLineStart:
        // RFC 9112 5.2: a line opening with SP/HTAB is obs-fold, which we refuse.
        if (c == '\n') result = HeadScanStatus::kComplete;
        else if (c == '\r') phase = kEndCr;
        else if (kTchar[c]) phase = kName;
        else ok = false;
        break;
      case kEndCr:
        ok = c == '\n';
        result = HeadScanStatus::kComplete;
        break;
      case kName:
        // RFC 9112 5.1: no whitespace between the field name and the colon.
        if (c == ':') phase = kValue;
        else ok = kTchar[c];
        break;
      case kValue:
        if (c == '\r') phase = kLineCr;
        else if (c == '\n') phase = kLineStart;
        else ok = is_value_byte(c);
        break;
      default:
        ok = false;
        break;
    }
    if (!ok) return HeadScanStatus::kBad;
  }
  state.offset = static_cast<uint32_t>(i);
  state.phase = phase;
  state.step = step;
  return result;
}

bool is_token_char(char c) { return kTchar[static_cast<unsigned char>(c)]; }

}  // namespace protocol
