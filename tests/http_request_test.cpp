#include "protocol/http_request.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace protocol {
namespace {

using S = HttpParseStatus;
using namespace std::string_literals;

// Copies `s` into a heap block of exactly its size, so ASan flags any read past the input.
class ExactBuffer {
 public:
  explicit ExactBuffer(std::string_view s)
      : data_(new char[s.size() == 0 ? 1 : s.size()]), size_(s.size()) {
    if (!s.empty()) std::memcpy(data_.get(), s.data(), s.size());
  }
  std::string_view view() const { return {data_.get(), size_}; }

 private:
  std::unique_ptr<char[]> data_;
  size_t size_;
};

// The views in `r` stay valid until the next call: the buffer they point into is kept until then.
S parse(std::string_view s, HttpRequest& r, size_t max_head = kMaxRequestHead) {
  static std::unique_ptr<ExactBuffer> last;
  last = std::make_unique<ExactBuffer>(s);
  return parse_http_request(last->view(), r, max_head);
}

S parse(std::string_view s, size_t max_head = kMaxRequestHead) {
  HttpRequest r;
  return parse(s, r, max_head);
}

bool within(std::string_view inner, std::string_view outer) {
  return inner.data() >= outer.data() && inner.data() + inner.size() <= outer.data() + outer.size();
}

const std::string kChrome =
    "GET /chat?room=lobby&user=ann HTTP/1.1\r\n"
    "Host: chat.example.com\r\n"
    "Connection: Upgrade\r\n"
    "Pragma: no-cache\r\n"
    "Cache-Control: no-cache\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36\r\n"
    "Upgrade: websocket\r\n"
    "Origin: https://chat.example.com\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Accept-Language: en-US,en;q=0.9\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    "\r\n";

TEST(HttpRequest, ParsesBrowserRequest) {
  HttpRequest r;
  ExactBuffer b(kChrome);
  ASSERT_EQ(parse_http_request(b.view(), r), S::kComplete);
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.target, "/chat?room=lobby&user=ann");
  EXPECT_EQ(r.path, "/chat");
  EXPECT_EQ(r.query, "room=lobby&user=ann");
  EXPECT_EQ(r.version_minor, 1);
  EXPECT_EQ(r.header_count, 12u);
  EXPECT_EQ(r.head_length, kChrome.size());
  EXPECT_EQ(r.headers[0].name, "Host");
  EXPECT_EQ(r.headers[0].value, "chat.example.com");
  EXPECT_EQ(r.header("sec-websocket-key"), "dGhlIHNhbXBsZSBub25jZQ==");
  EXPECT_EQ(r.header("SEC-WEBSOCKET-EXTENSIONS"), "permessage-deflate; client_max_window_bits");
  EXPECT_EQ(r.header("Accept-Language"), "en-US,en;q=0.9");
  EXPECT_TRUE(r.has_header("upgrade"));
  EXPECT_FALSE(r.has_header("Cookie"));
  EXPECT_EQ(r.header("Cookie"), "");
  // Zero-copy: every view points into the input.
  EXPECT_TRUE(within(r.method, b.view()));
  EXPECT_TRUE(within(r.target, b.view()));
  EXPECT_TRUE(within(r.path, b.view()));
  EXPECT_TRUE(within(r.query, b.view()));
  for (size_t i = 0; i < r.header_count; ++i) {
    EXPECT_TRUE(within(r.headers[i].name, b.view()));
    EXPECT_TRUE(within(r.headers[i].value, b.view()));
  }
}

TEST(HttpRequest, PathAndQuerySplitAtFirstQuestionMark) {
  HttpRequest r;
  ASSERT_EQ(parse("GET /a/b HTTP/1.1\r\n\r\n", r), S::kComplete);
  EXPECT_EQ(r.path, "/a/b");
  EXPECT_EQ(r.query, "");
  EXPECT_EQ(r.query.data(), r.target.data() + r.target.size());  // empty, yet inside the input
  ASSERT_EQ(parse("GET /?x=1?y=2 HTTP/1.1\r\n\r\n", r), S::kComplete);
  EXPECT_EQ(r.path, "/");
  EXPECT_EQ(r.query, "x=1?y=2");
  ASSERT_EQ(parse("GET /p? HTTP/1.1\r\n\r\n", r), S::kComplete);
  EXPECT_EQ(r.path, "/p");
  EXPECT_EQ(r.query, "");
  ASSERT_EQ(parse("OPTIONS * HTTP/1.1\r\n\r\n", r), S::kComplete);
  EXPECT_EQ(r.method, "OPTIONS");
  EXPECT_EQ(r.target, "*");
}

TEST(HttpRequest, NoHeaders) {
  HttpRequest r;
  ASSERT_EQ(parse("GET / HTTP/1.1\r\n\r\n", r), S::kComplete);
  EXPECT_EQ(r.header_count, 0u);
  EXPECT_EQ(r.head_length, 18u);
}

TEST(HttpRequest, BareLfLineEndings) {
  HttpRequest r;
  const std::string req = "GET /x HTTP/1.1\nHost: a\nUpgrade: websocket\n\n";
  ASSERT_EQ(parse(req, r), S::kComplete);
  EXPECT_EQ(r.head_length, req.size());
  ASSERT_EQ(r.header_count, 2u);
  EXPECT_EQ(r.headers[1].name, "Upgrade");
  EXPECT_EQ(r.headers[1].value, "websocket");

  const std::string mixed = "GET /x HTTP/1.1\r\nHost: a\nUpgrade: websocket\r\n\n";
  ASSERT_EQ(parse(mixed, r), S::kComplete);
  EXPECT_EQ(r.head_length, mixed.size());
  EXPECT_EQ(r.header("Host"), "a");
  const std::string mixed2 = "GET /x HTTP/1.1\nHost: a\n\r\n";
  ASSERT_EQ(parse(mixed2, r), S::kComplete);
  EXPECT_EQ(r.head_length, mixed2.size());
}

TEST(HttpRequest, HeadLengthStopsAtBlankLine) {
  HttpRequest r;
  const std::string head = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
  ASSERT_EQ(parse(head + "\x81\x85garbage\r\n\r\n", r), S::kComplete);
  EXPECT_EQ(r.head_length, head.size());
}

TEST(HttpRequest, ValuesTrimmedOfSpaceAndTab) {
  HttpRequest r;
  ASSERT_EQ(parse("GET / HTTP/1.1\r\nA:   x  y \t \r\nB:\r\nC: \t\r\nD:z\r\n\r\n", r),
            S::kComplete);
  ASSERT_EQ(r.header_count, 4u);
  EXPECT_EQ(r.header("A"), "x  y");
  EXPECT_TRUE(r.has_header("B"));
  EXPECT_EQ(r.header("B"), "");
  EXPECT_EQ(r.header("C"), "");
  EXPECT_EQ(r.header("D"), "z");
}

TEST(HttpRequest, ValuesMayHoldTabAndObsText) {
  HttpRequest r;
  ASSERT_EQ(parse("GET / HTTP/1.1\r\nX-Name: caf\xc3\xa9\tlatte and more text\r\n\r\n", r),
            S::kComplete);
  EXPECT_EQ(r.header("x-name"), "caf\xc3\xa9\tlatte and more text");
}

TEST(HttpRequest, HeaderReturnsFirstOfDuplicates) {
  HttpRequest r;
  ASSERT_EQ(parse("GET / HTTP/1.1\r\nX: 1\r\nx: 2\r\n\r\n", r), S::kComplete);
  EXPECT_EQ(r.header_count, 2u);
  EXPECT_EQ(r.header("X"), "1");
}

TEST(HttpRequest, LeadingEmptyLinesIgnored) {
  HttpRequest r;
  const std::string req = "\r\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
  ASSERT_EQ(parse(req, r), S::kComplete);
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.head_length, req.size());
  EXPECT_EQ(parse("\r\n\r\n\r\n"), S::kNeedMore);
}

TEST(HttpRequest, Http10AndOtherMinors) {
  HttpRequest r;
  ASSERT_EQ(parse("GET / HTTP/1.0\r\n\r\n", r), S::kComplete);
  EXPECT_EQ(r.version_minor, 0);
  ASSERT_EQ(parse("GET / HTTP/1.9\r\n\r\n", r), S::kComplete);
  EXPECT_EQ(r.version_minor, 9);
}

TEST(HttpRequest, NonHttp1VersionsAreBadVersion) {
  for (const char* v : {"HTTP/2.0", "HTTP/3.0", "HTTP/0.9", "HTTP/2", "HTTP/3"}) {
    EXPECT_EQ(parse(std::string("GET / ") + v + "\r\nHost: a\r\n\r\n"), S::kBadVersion) << v;
  }
  EXPECT_EQ(parse("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), S::kBadVersion);
}

TEST(HttpRequest, MalformedRequestLines) {
  const char* lines[] = {
      "GET  / HTTP/1.1",     // empty target
      "GET /  HTTP/1.1",     // double space before version
      " GET / HTTP/1.1",     // leading space
      "GET / HTTP/1.1 ",     // trailing space
      "GET /",               // no version
      "GET",                 // method only
      "GET ",                // method and space only
      "G(T / HTTP/1.1",      // '(' is not a tchar
      "GET\t/ HTTP/1.1",     // HTAB is not SP
      "GET /a\tb HTTP/1.1",  // control in target
      "GET /a\x01 HTTP/1.1",
      "GET /a\x7f HTTP/1.1",  // DEL in target
      "GET / http/1.1",       // HTTP-name is case-sensitive
      "GET / HTTP/1.1x",
      "GET / HTTP/1.",
      "GET / HTTP/1.x",
      "GET / HTTP/1,1",
      "GET / HTTP/x.1",
      "GET / HTTP/",
      "GET / HTTP/10.0",
      "GET / HTTP/1.1\r",  // stray CR before the CRLF
      "\rGET / HTTP/1.1",
  };
  for (const char* line : lines) {
    EXPECT_EQ(parse(std::string(line) + "\r\nHost: a\r\n\r\n"), S::kBadRequest)
        << "line: " << ::testing::PrintToString(std::string(line));
  }
  EXPECT_EQ(parse("GET /a\0b HTTP/1.1\r\n\r\n"s), S::kBadRequest);
}

TEST(HttpRequest, MalformedHeaderLines) {
  const char* headers[] = {
      "Host : a",  // RFC 9112 5.1: whitespace before colon
      "Host\t: a",
      "Host a",    // no colon
      ": a",       // empty name
      "Ho(st: a",  // '(' is not a tchar
      "Ho st: a",
      "X: a\x01z",  // controls in value
      "X: a\x7fz",
      "X: a\rz",
      "X: \x1b[31m",
      "X: a\x0b",
      "X: a\r",            // stray CR before the CRLF
      " X: folded-first",  // RFC 9112 2.2: whitespace before the first field line
      "\tX: folded-first",
      "   ",
      "X: 1\r\n continued",  // RFC 9112 5.2: obs-fold
      "X: 1\r\n\tcontinued",
      "X: 1\n continued",
      "caf\xc3\xa9: x",  // non-ASCII name
  };
  for (const char* h : headers) {
    EXPECT_EQ(parse(std::string("GET / HTTP/1.1\r\n") + h + "\r\nHost: a\r\n\r\n"), S::kBadRequest)
        << "header: " << ::testing::PrintToString(std::string(h));
  }
  EXPECT_EQ(parse("GET / HTTP/1.1\r\nX: a\0b\r\n\r\n"s), S::kBadRequest);
}

// A head of exactly `size` bytes, padded with one X-Pad header.
std::string head_of_size(size_t size, const std::string& line_end = "\r\n") {
  std::string start = "GET / HTTP/1.1" + line_end + "X-Pad: ";
  std::string end = line_end + line_end;
  std::string pad(size - start.size() - end.size(), 'p');
  return start + pad + end;
}

TEST(HttpRequest, SizeCapIsInclusive) {
  HttpRequest r;
  const std::string at_cap = head_of_size(kMaxRequestHead);
  ASSERT_EQ(at_cap.size(), kMaxRequestHead);
  EXPECT_EQ(parse(at_cap, r), S::kComplete);
  EXPECT_EQ(r.head_length, kMaxRequestHead);
  EXPECT_EQ(parse(at_cap + "trailing frame bytes"), S::kComplete);
  const std::string over = head_of_size(kMaxRequestHead + 1);
  EXPECT_EQ(parse(over), S::kTooLarge);
  // Too large is decided as soon as max_head bytes hold no blank line.
  EXPECT_EQ(parse(over.substr(0, kMaxRequestHead)), S::kTooLarge);
  EXPECT_EQ(parse(over.substr(0, kMaxRequestHead - 1)), S::kNeedMore);
  // The blank line straddling the cap still counts as beyond it.
  const std::string lf_over = head_of_size(kMaxRequestHead + 1, "\n");
  EXPECT_EQ(parse(lf_over), S::kTooLarge);
  EXPECT_EQ(parse(head_of_size(kMaxRequestHead, "\n")), S::kComplete);
}

TEST(HttpRequest, SizeCapFollowsMaxHead) {
  const std::string req = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
  EXPECT_EQ(parse(req, req.size()), S::kComplete);
  EXPECT_EQ(parse(req, req.size() - 1), S::kTooLarge);
  EXPECT_EQ(parse(req.substr(0, 10), 10), S::kTooLarge);
  EXPECT_EQ(parse(req.substr(0, 10), 11), S::kNeedMore);
  EXPECT_EQ(parse("", 0), S::kTooLarge);
  EXPECT_EQ(parse(std::string(kMaxRequestHead, '\n')), S::kTooLarge);
  EXPECT_EQ(parse(std::string(kMaxRequestHead, 'A')), S::kTooLarge);
  EXPECT_EQ(parse(std::string(kMaxRequestHead - 1, 'A')), S::kNeedMore);
}

std::string with_headers(size_t n) {
  std::string s = "GET / HTTP/1.1\r\n";
  for (size_t i = 0; i < n; ++i) s += "X-H" + std::to_string(i) + ": v\r\n";
  return s + "\r\n";
}

TEST(HttpRequest, HeaderCountCap) {
  HttpRequest r;
  ASSERT_EQ(parse(with_headers(kMaxHeaders), r), S::kComplete);
  EXPECT_EQ(r.header_count, kMaxHeaders);
  EXPECT_EQ(r.headers[kMaxHeaders - 1].name, "X-H63");
  EXPECT_EQ(parse(with_headers(kMaxHeaders + 1)), S::kTooLarge);
  EXPECT_EQ(parse(with_headers(200)), S::kTooLarge);
}

TEST(HttpRequest, IncompleteIsNeedMore) {
  EXPECT_EQ(parse(""), S::kNeedMore);
  EXPECT_EQ(parse("GET / HTTP/1.1\r\nHost: a\r\n"), S::kNeedMore);
  EXPECT_EQ(parse("GET / HTTP/1.1\r\nHost: a\r\n\r"), S::kNeedMore);
  // Validation waits for the whole head, so even an invalid start is need-more until then.
  EXPECT_EQ(parse("\x16\x03\x01 tls hello"), S::kNeedMore);
}

// Every strict prefix must be kNeedMore and the full input must give `expected`, whichever byte
// the reads happen to be split at.
void expect_every_split(const std::string& req, S expected) {
  for (size_t i = 0; i < req.size(); ++i) {
    ASSERT_EQ(parse(req.substr(0, i)), S::kNeedMore) << "prefix " << i << " of " << req.size();
  }
  ASSERT_EQ(parse(req), expected);
}

TEST(HttpRequest, EverySplitPointOfValidRequests) {
  expect_every_split(kChrome, S::kComplete);
  expect_every_split("GET /x?y HTTP/1.1\nHost: a\nX:  b \n\n", S::kComplete);
  expect_every_split("\r\nGET / HTTP/1.0\r\n\r\n", S::kComplete);

  // Fields from the full buffer equal those from a parse of the same bytes followed by more.
  HttpRequest whole;
  HttpRequest extended;
  ExactBuffer a(kChrome);
  ExactBuffer b(kChrome + "GET / HTTP/1.1\r\n\r\n");
  ASSERT_EQ(parse_http_request(a.view(), whole), S::kComplete);
  ASSERT_EQ(parse_http_request(b.view(), extended), S::kComplete);
  EXPECT_EQ(whole.head_length, extended.head_length);
  EXPECT_EQ(whole.target, extended.target);
  ASSERT_EQ(whole.header_count, extended.header_count);
  for (size_t i = 0; i < whole.header_count; ++i) {
    EXPECT_EQ(whole.headers[i].name, extended.headers[i].name);
    EXPECT_EQ(whole.headers[i].value, extended.headers[i].value);
  }
}

TEST(HttpRequest, EverySplitPointOfInvalidRequests) {
  expect_every_split("GET / HTTP/2.0\r\nHost: a\r\n\r\n", S::kBadVersion);
  expect_every_split("GET / HTTP/1.1\r\nHost : a\r\n\r\n", S::kBadRequest);
  expect_every_split("GET / HTTP/1.1\r\nX: 1\r\n folded\r\n\r\n", S::kBadRequest);
  expect_every_split(with_headers(kMaxHeaders + 1), S::kTooLarge);
}

TEST(HttpRequest, EqualsIgnoreCase) {
  EXPECT_TRUE(equals_ignore_case("Sec-WebSocket-Key", "sec-websocket-key"));
  EXPECT_TRUE(equals_ignore_case("", ""));
  EXPECT_FALSE(equals_ignore_case("Host", "Hos"));
  EXPECT_FALSE(equals_ignore_case("Host", "Hast"));
  // Only ASCII letters fold: '@' and '`' differ from each other by the case bit.
  EXPECT_FALSE(equals_ignore_case("@", "`"));
  EXPECT_FALSE(equals_ignore_case("[", "{"));
}

TEST(HttpRequest, EqualsIgnoreCaseMatchesBytewiseReference) {
  // Every byte pair at a word-path position (3) and at a tail position (9) of an 11-byte name.
  auto fold = [](unsigned char c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; };
  for (int c1 = 0; c1 < 256; ++c1) {
    for (int c2 = 0; c2 < 256; ++c2) {
      const bool expected =
          fold(static_cast<unsigned char>(c1)) == fold(static_cast<unsigned char>(c2));
      for (size_t at : {size_t{3}, size_t{9}}) {
        std::string a = "Sec-WebSock";
        std::string b = "sEC-wEBsOCK";
        a[at] = static_cast<char>(c1);
        b[at] = static_cast<char>(c2);
        ASSERT_EQ(equals_ignore_case(a, b), expected) << c1 << " " << c2 << " at " << at;
      }
    }
  }
}

TEST(HttpRequest, HeaderHasToken) {
  EXPECT_TRUE(header_has_token("Upgrade", "Upgrade"));
  EXPECT_TRUE(header_has_token("upgrade", "Upgrade"));
  EXPECT_TRUE(header_has_token("keep-alive, Upgrade", "Upgrade"));
  EXPECT_TRUE(header_has_token("keep-alive,UPGRADE", "upgrade"));
  EXPECT_TRUE(header_has_token(" ,\tUpgrade\t, ,", "Upgrade"));
  EXPECT_TRUE(header_has_token("WebSocket", "websocket"));
  EXPECT_FALSE(header_has_token("", "Upgrade"));
  EXPECT_FALSE(header_has_token(",,,", "Upgrade"));
  EXPECT_FALSE(header_has_token("keep-alive", "Upgrade"));
  EXPECT_FALSE(header_has_token("Upgrades", "Upgrade"));
  EXPECT_FALSE(header_has_token("NoUpgrade", "Upgrade"));
  EXPECT_FALSE(header_has_token("Up grade", "Upgrade"));
  EXPECT_FALSE(header_has_token("websocket/13", "websocket"));
}

namespace scan_tests {

using H = HeadScanStatus;

// Scans `req` split after `split` bytes (two calls, the second seeing all of it, as a server
// appends to its pending buffer), and returns the final status and state.
H scan_split(const std::string& req, size_t split, HeadScanState& state) {
  ExactBuffer whole(req);
  state = HeadScanState();
  H first = scan_request_head(whole.view().substr(0, split), state);
  if (first != H::kNeedMore) return first;
  return scan_request_head(whole.view(), state);
}

// Every prefix of a valid head is kNeedMore, the head is kComplete with the offset just past its
// blank line, and the answer is the same whichever byte the reads split at.
void expect_scan_complete(const std::string& req) {
  HttpRequest r;
  ASSERT_EQ(parse(req, r), S::kComplete) << req;
  const size_t head = r.head_length;
  for (size_t cut = 0; cut < head; ++cut) {
    HeadScanState state;
    ASSERT_EQ(scan_request_head(ExactBuffer(req.substr(0, cut)).view(), state), H::kNeedMore) << "prefix " << cut;
  }
  for (size_t split = 0; split <= req.size(); ++split) {
    HeadScanState state;
    ASSERT_EQ(scan_split(req, split, state), H::kComplete) << "split " << split;
    ASSERT_EQ(state.offset, head) << "split " << split;
  }
}

// Garbage is kBad as soon as `bad_at` bytes are in (and not before), at every split.
void expect_scan_bad_at(const std::string& req, size_t bad_at) {
  for (size_t cut = 0; cut < bad_at; ++cut) {
    HeadScanState state;
    ASSERT_EQ(scan_request_head(ExactBuffer(req.substr(0, cut)).view(), state), H::kNeedMore) << "prefix " << cut;
  }
  for (size_t split = 0; split <= req.size(); ++split) {
    HeadScanState state;
    ASSERT_EQ(scan_split(req, split, state), H::kBad) << "split " << split;
  }
  // Never stricter than the parser: the whole request, however it ends, is not kComplete.
  EXPECT_NE(parse(req + "\r\n\r\n"), S::kComplete);
}

TEST(HeadScan, ValidHeadsCompleteAtTheirBlankLine) {
  expect_scan_complete(kChrome);
  expect_scan_complete("GET /x?y HTTP/1.1\nHost: a\nX:  b \n\n");
  expect_scan_complete("\r\nGET / HTTP/1.0\r\n\r\n");
  expect_scan_complete("\n\nGET / HTTP/1.1\r\n\n");
  expect_scan_complete("GET / HTTP/1.1\r\n\r\nframes after the head");
  expect_scan_complete("GET http://example.com:8080/chat?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n");
  expect_scan_complete("GET / HTTP/1.1\r\nX: tab\there \x80\xff obs-text\r\nEmpty:\r\n\r\n");
  expect_scan_complete("M-SEARCH * HTTP/1.1\r\n\r\n");
}

TEST(HeadScan, OtherVersionsCompleteForThe505) {
  // A well-formed version we do not speak is the parser's to answer (505), not a 400.
  const std::string req = "GET / HTTP/2.0\r\nHost: a\r\n\r\n";
  for (size_t split = 0; split <= req.size(); ++split) {
    HeadScanState state;
    ASSERT_EQ(scan_split(req, split, state), H::kComplete) << "split " << split;
    EXPECT_EQ(state.offset, req.size());
  }
  EXPECT_EQ(parse(req), S::kBadVersion);
}

TEST(HeadScan, GarbageIsBadAtTheFirstImpossibleByte) {
  expect_scan_bad_at("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 1);  // TLS ClientHello
  expect_scan_bad_at(std::string("\0GET / HTTP/1.1", 15), 1);
  expect_scan_bad_at(" GET / HTTP/1.1", 1);
  expect_scan_bad_at("\r\rGET / HTTP/1.1", 2);
  expect_scan_bad_at("GET\t/ HTTP/1.1", 4);
  expect_scan_bad_at("GET  / HTTP/1.1", 5);                  // empty target
  expect_scan_bad_at("GET /a\x01 HTTP/1.1", 7);              // control byte in the target
  expect_scan_bad_at("GET / HTTX/1.1", 10);
  expect_scan_bad_at("GET / HTTP/x.1", 12);
  expect_scan_bad_at("GET / HTTP/1,1", 13);
  expect_scan_bad_at("GET / HTTP/1.1x", 15);
  expect_scan_bad_at("GET / HTTP/1.1\r\r\n", 16);            // bare CR
  expect_scan_bad_at("GET / HTTP\r\n\r\n", 11);
  expect_scan_bad_at("GET / HTTP/1.1\r\n folded: x", 17);    // obs-fold
  expect_scan_bad_at("GET / HTTP/1.1\r\nHost : a", 21);      // space before the colon
  expect_scan_bad_at("GET / HTTP/1.1\r\n:x", 17);            // empty field name
  expect_scan_bad_at("GET / HTTP/1.1\r\nX: a\x00b", 21);     // NUL in a value
  expect_scan_bad_at("GET / HTTP/1.1\r\nX: a\x7f", 21);      // DEL in a value
  expect_scan_bad_at("GET / HTTP/1.1\r\nX: a\rb", 22);       // CR inside a value
  expect_scan_bad_at("GET / HTTP/1.1\r\n\rx", 18);           // CR not ending the head
}

TEST(HeadScan, RandomBytesAreRefusedWithinAFewBytes) {
  // Most garbage fails at its first byte (only tchars start a method), and everything that is
  // not HTTP fails long before kMaxRequestHead: a deterministic sample of 2,000 random heads.
  uint64_t x = 0x9E3779B97F4A7C15ull;
  size_t worst = 0;
  for (int round = 0; round < 2000; ++round) {
    std::string bytes(256, '\0');
    for (char& c : bytes) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      c = static_cast<char>(x);
    }
    HeadScanState state;
    ASSERT_EQ(scan_request_head(bytes, state), H::kBad) << round;
    size_t at = 0;
    for (;;) {
      HeadScanState s;
      if (scan_request_head(std::string_view(bytes).substr(0, ++at), s) == H::kBad) break;
    }
    worst = std::max(worst, at);
  }
  EXPECT_LE(worst, 64u);
}

TEST(HeadScan, ResumesWhereItStopped) {
  // A head trickled in a byte at a time is checked once per byte, never from the start again.
  const std::string req = kChrome;
  HeadScanState state;
  for (size_t n = 1; n < req.size(); ++n) {
    H h = scan_request_head(std::string_view(req).substr(0, n), state);
    ASSERT_EQ(state.offset, n);
    if (h == H::kComplete) {
      EXPECT_EQ(n, req.size());
      break;
    }
    ASSERT_EQ(h, H::kNeedMore);
  }
}

}  // namespace scan_tests

TEST(HttpRequest, AbsoluteFormRoutesOnItsPath) {
  // RFC 9112 3.2.2: a server MUST accept the absolute form.
  HttpRequest r;
  ASSERT_EQ(parse("GET http://chat.example.com:8080/chat?room=a HTTP/1.1\r\nHost: x\r\n\r\n", r), S::kComplete);
  EXPECT_EQ(r.target, "http://chat.example.com:8080/chat?room=a");
  EXPECT_EQ(r.authority, "chat.example.com:8080");
  EXPECT_EQ(r.path, "/chat");
  EXPECT_EQ(r.query, "room=a");
  ASSERT_EQ(parse("GET HTTPS://h/ HTTP/1.1\r\n\r\n", r), S::kComplete);
  EXPECT_EQ(r.authority, "h");
  EXPECT_EQ(r.path, "/");
  ASSERT_EQ(parse("GET ws://h/echo HTTP/1.1\r\n\r\n", r), S::kComplete);
  EXPECT_EQ(r.path, "/echo");
  // An empty path is "/" (RFC 9110 4.2.1), also before a query.
  ASSERT_EQ(parse("GET http://h HTTP/1.1\r\n\r\n", r), S::kComplete);
  EXPECT_EQ(r.path, "/");
  EXPECT_EQ(r.query, "");
  ASSERT_EQ(parse("GET http://h?a=b HTTP/1.1\r\n\r\n", r), S::kComplete);
  EXPECT_EQ(r.path, "/");
  EXPECT_EQ(r.query, "a=b");
  // Origin form has no authority.
  ASSERT_EQ(parse("GET /chat HTTP/1.1\r\n\r\n", r), S::kComplete);
  EXPECT_EQ(r.authority, "");
  EXPECT_EQ(r.path, "/chat");
  // Other forms and schemes route on the raw target (and so find no route).
  ASSERT_EQ(parse("GET ftp://h/chat HTTP/1.1\r\n\r\n", r), S::kComplete);
  EXPECT_EQ(r.path, "ftp://h/chat");
  ASSERT_EQ(parse("OPTIONS * HTTP/1.1\r\n\r\n", r), S::kComplete);
  EXPECT_EQ(r.path, "*");
}

TEST(HttpRequest, AbsoluteFormWithoutHostOrWithUserinfoIsBad) {
  EXPECT_EQ(parse("GET http:///chat HTTP/1.1\r\n\r\n"), S::kBadRequest);
  EXPECT_EQ(parse("GET http:// HTTP/1.1\r\n\r\n"), S::kBadRequest);
  // RFC 9110 4.2.4: userinfo in an http(s) URI is to be treated as an error.
  EXPECT_EQ(parse("GET http://user:pw@h/chat HTTP/1.1\r\n\r\n"), S::kBadRequest);
}

}  // namespace
}  // namespace protocol
