#include "protocol/handshake.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace protocol {
namespace {

using S = HttpParseStatus;

const char kKey[] = "dGhlIHNhbXBsZSBub25jZQ==";
// RFC 6455 1.3 gives this accept value for kKey.
const char kAccept[] = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

// Builds a request from a request line and header lines, keeping the bytes alive for the views.
struct Request {
  std::string bytes;
  HttpRequest parsed;
  S status;

  Request(const std::string& request_line, const std::vector<std::string>& headers) {
    bytes = request_line + "\r\n";
    for (const auto& h : headers) bytes += h + "\r\n";
    bytes += "\r\n";
    status = parse_http_request(bytes, parsed);
  }
};

std::vector<std::string> good_headers() {
  return {"Host: server.example.com",
          "Upgrade: websocket",
          "Connection: Upgrade",
          std::string("Sec-WebSocket-Key: ") + kKey,
          "Origin: http://example.com",
          "Sec-WebSocket-Protocol: chat, superchat",
          "Sec-WebSocket-Extensions: permessage-deflate",
          "Sec-WebSocket-Version: 13"};
}

// good_headers() with the header named `name` removed (case-sensitive exact name) and `extra`
// appended.
std::vector<std::string> headers_without(const std::string& name,
                                         const std::vector<std::string>& extra = {}) {
  std::vector<std::string> out;
  for (const auto& h : good_headers()) {
    if (h.compare(0, name.size() + 1, name + ":") != 0) out.push_back(h);
  }
  out.insert(out.end(), extra.begin(), extra.end());
  return out;
}

UpgradeCheck check(const std::string& request_line, const std::vector<std::string>& headers) {
  Request r(request_line, headers);
  EXPECT_EQ(r.status, S::kComplete) << r.bytes;
  return check_upgrade_request(r.parsed);
}

int status_of(const std::vector<std::string>& headers) {
  return check("GET /chat HTTP/1.1", headers).status;
}

TEST(Handshake, AcceptsRfcExample) {
  Request r("GET /chat HTTP/1.1", good_headers());
  ASSERT_EQ(r.status, S::kComplete);
  EXPECT_TRUE(is_upgrade_request(r.parsed));
  const UpgradeCheck c = check_upgrade_request(r.parsed);
  EXPECT_EQ(c.status, 101);
  EXPECT_EQ(c.reason, "");
  EXPECT_EQ(c.key, kKey);
  EXPECT_EQ(c.origin, "http://example.com");
  EXPECT_EQ(c.protocols, "chat, superchat");
  EXPECT_EQ(c.extensions, "permessage-deflate");
}

TEST(Handshake, OptionalHeadersMayBeAbsent) {
  const UpgradeCheck c = check(
      "GET / HTTP/1.1", {"Host: h", "Upgrade: websocket", "Connection: Upgrade",
                         std::string("Sec-WebSocket-Key: ") + kKey, "Sec-WebSocket-Version: 13"});
  EXPECT_EQ(c.status, 101);
  EXPECT_EQ(c.origin, "");
  EXPECT_EQ(c.protocols, "");
  EXPECT_EQ(c.extensions, "");
}

TEST(Handshake, IsUpgradeRequest) {
  Request plain("GET / HTTP/1.1", {"Host: a"});
  EXPECT_FALSE(is_upgrade_request(plain.parsed));
  Request h2c("GET / HTTP/1.1", {"Host: a", "Upgrade: h2c", "Connection: Upgrade"});
  EXPECT_FALSE(is_upgrade_request(h2c.parsed));
  Request mixed("GET / HTTP/1.1", {"Host: a", "upgrade: h2c, WebSocket"});
  EXPECT_TRUE(is_upgrade_request(mixed.parsed));
  Request second("GET / HTTP/1.1", {"Upgrade: h2c", "Upgrade: websocket"});
  EXPECT_TRUE(is_upgrade_request(second.parsed));
}

TEST(Handshake, MethodMustBeGet) {
  for (const char* line : {"POST /chat HTTP/1.1", "HEAD /chat HTTP/1.1", "get /chat HTTP/1.1"}) {
    const UpgradeCheck c = check(line, good_headers());
    EXPECT_EQ(c.status, 405) << line;
    EXPECT_FALSE(c.reason.empty());
    EXPECT_EQ(c.key, "");
  }
}

TEST(Handshake, VersionMustBeAtLeast11) {
  EXPECT_EQ(check("GET /chat HTTP/1.0", good_headers()).status, 400);
  EXPECT_EQ(check("GET /chat HTTP/1.2", good_headers()).status, 101);
}

TEST(Handshake, HostRequiredOnce) {
  EXPECT_EQ(status_of(headers_without("Host")), 400);
  EXPECT_EQ(status_of(headers_without("Host", {"host: a", "HOST: b"})), 400);
  EXPECT_EQ(status_of(headers_without("Host", {"hOsT: a"})), 101);
}

TEST(Handshake, UpgradeMustNameWebsocket) {
  EXPECT_EQ(status_of(headers_without("Upgrade")), 400);
  EXPECT_EQ(status_of(headers_without("Upgrade", {"Upgrade: h2c"})), 400);
  EXPECT_EQ(status_of(headers_without("Upgrade", {"Upgrade: websockets"})), 400);
  EXPECT_EQ(status_of(headers_without("Upgrade", {"Upgrade: WebSocket"})), 101);
  EXPECT_EQ(status_of(headers_without("Upgrade", {"UPGRADE: WEBSOCKET"})), 101);
  EXPECT_EQ(status_of(headers_without("Upgrade", {"Upgrade: h2c, websocket"})), 101);
  const UpgradeCheck c = check("GET / HTTP/1.1", headers_without("Upgrade"));
  EXPECT_NE(c.reason.find("Upgrade"), std::string_view::npos);
}

TEST(Handshake, ConnectionMustNameUpgrade) {
  EXPECT_EQ(status_of(headers_without("Connection")), 400);
  EXPECT_EQ(status_of(headers_without("Connection", {"Connection: keep-alive"})), 400);
  EXPECT_EQ(status_of(headers_without("Connection", {"Connection: close"})), 400);
  EXPECT_EQ(status_of(headers_without("Connection", {"Connection: keep-alive, Upgrade"})), 101);
  EXPECT_EQ(status_of(headers_without("Connection", {"connection: keep-alive,upgrade"})), 101);
  EXPECT_EQ(status_of(headers_without("Connection", {"Connection: UPGRADE"})), 101);
  // RFC 9110 5.3: two field lines form one list.
  EXPECT_EQ(
      status_of(headers_without("Connection", {"Connection: keep-alive", "Connection: Upgrade"})),
      101);
}

TEST(Handshake, VersionMustBe13) {
  EXPECT_EQ(status_of(headers_without("Sec-WebSocket-Version")), 426);
  for (const char* v : {"8", "12", "14", "013", "13, 8", ""}) {
    EXPECT_EQ(status_of(headers_without("Sec-WebSocket-Version",
                                        {std::string("Sec-WebSocket-Version: ") + v})),
              426)
        << v;
  }
  EXPECT_EQ(status_of(headers_without("Sec-WebSocket-Version", {"sec-websocket-version:  13 "})),
            101);
  EXPECT_EQ(status_of(headers_without("Sec-WebSocket-Version",
                                      {"Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8"})),
            400);
}

TEST(Handshake, KeyMustBe16BytesOfBase64) {
  EXPECT_EQ(status_of(headers_without("Sec-WebSocket-Key")), 400);
  const char* bad[] = {
      "",
      "dGhlIHNhbXBsZSBub25jZQ=",                       // 23 chars
      "dGhlIHNhbXBsZSBub25jZQ===",                     // 25 chars
      "dGhlIHNhbXBsZSBub25jZQ",                        // padding missing
      "AAAAAAAAAAAAAAAAAAAA",                          // 15 bytes
      "AAAAAAAAAAAAAAAAAAAAAAAA",                      // 18 bytes, no padding
      "AAAAAAAAAAAAAAAAAAAAA===",                      // 15 bytes plus an extra '='
      "dGhlIHNhbXBsZSBub25jZQA=",                      // 17 bytes
      "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",  // 32 bytes
      "dGhlIHNhbXBsZSBub25jZ!==",                      // '!' outside the alphabet
      "dGhlIHNhbXBsZSBub25jZ-==",                      // base64url is not base64
      "dGhlIHNhbXBsZSBub25j Q==",                      // inner space
      "=GhlIHNhbXBsZSBub25jZQ==",                      // padding at the front
      "dGhlIHNhbXBsZSBub25jZQ=A",
  };
  for (const char* key : bad) {
    const UpgradeCheck c =
        check("GET / HTTP/1.1",
              headers_without("Sec-WebSocket-Key", {std::string("Sec-WebSocket-Key: ") + key}));
    EXPECT_EQ(c.status, 400) << key;
    EXPECT_EQ(c.key, "") << key;
  }
  EXPECT_EQ(status_of(headers_without("Sec-WebSocket-Key",
                                      {"sec-websocket-key: AAAAAAAAAAAAAAAAAAAAAA=="})),
            101);
  EXPECT_EQ(status_of(headers_without("Sec-WebSocket-Key",
                                      {"Sec-WebSocket-Key: +/+/+/+/+/+/+/+/+/+/+w=="})),
            101);
}

TEST(Handshake, DuplicateKeyRejected) {
  const UpgradeCheck c =
      check("GET / HTTP/1.1",
            headers_without("Sec-WebSocket-Key", {std::string("Sec-WebSocket-Key: ") + kKey,
                                                  "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA=="}));
  EXPECT_EQ(c.status, 400);
  EXPECT_NE(c.reason.find("duplicate"), std::string_view::npos);
}

TEST(Handshake, UpgradeWithABodyIsRefused) {
  // After a 101 the bytes behind the head are frames: a body would be read as frames.
  for (const char* h : {"Content-Length: 5", "content-length: 1", "Content-Length: 00", "Content-Length: x",
                        "Transfer-Encoding: chunked", "TRANSFER-ENCODING: identity"}) {
    const UpgradeCheck c = check("GET /chat HTTP/1.1", headers_without("X", {h}));
    EXPECT_EQ(c.status, 400) << h;
    EXPECT_NE(c.reason.find("body"), std::string_view::npos) << h;
    EXPECT_TRUE(c.key.empty());
  }
  // Content-Length: 0 announces no body.
  EXPECT_EQ(status_of(headers_without("X", {"Content-Length: 0"})), 101);
}

TEST(Handshake, AbsoluteFormUpgradeIsValid) {
  EXPECT_EQ(check("GET http://server.example.com/chat HTTP/1.1", good_headers()).status, 101);
}

TEST(Handshake, ChecksRunInRfcOrder) {
  // A POST that is wrong in every other way is still reported as 405 first.
  EXPECT_EQ(check("POST / HTTP/1.0", {"X: y"}).status, 405);
  // Version 8 with a bad key is reported as 426, so the client can retry with 13.
  EXPECT_EQ(check("GET / HTTP/1.1", {"Host: h", "Upgrade: websocket", "Connection: Upgrade",
                                     "Sec-WebSocket-Version: 8", "Sec-WebSocket-Key: x"})
                .status,
            426);
}

TEST(Handshake, AcceptKeyRfcVector) {
  char out[kAcceptKeyLength];
  compute_accept_key(kKey, out);
  EXPECT_EQ(std::string_view(out, kAcceptKeyLength), kAccept);
  compute_accept_key("x3JJHMbDL1EzLkh9GBhXDw==", out);
  EXPECT_EQ(std::string_view(out, kAcceptKeyLength), "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
  // Past the stack buffer, the streaming path must agree with Python's hashlib.
  compute_accept_key(std::string(200, 'A'), out);
  EXPECT_EQ(std::string_view(out, kAcceptKeyLength), "epQuepyJZUpkXo4+7CeEEfXbmv8=");
  // An empty view with a null data() (found by the handshake fuzzer: memcpy from null is UB).
  compute_accept_key(std::string_view(), out);
  EXPECT_EQ(std::string_view(out, kAcceptKeyLength), "Kfh9QIsMVZcl6xEPYxPHzW8SZ8w=");
}

TEST(Handshake, UpgradeResponseByteExact) {
  char buf[512];
  size_t n = write_upgrade_response(buf, sizeof buf, kKey);
  EXPECT_EQ(std::string_view(buf, n),
            "HTTP/1.1 101 Switching Protocols\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
            "\r\n");
  n = write_upgrade_response(buf, sizeof buf, kKey, "chat", "permessage-deflate");
  EXPECT_EQ(std::string_view(buf, n),
            "HTTP/1.1 101 Switching Protocols\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
            "Sec-WebSocket-Protocol: chat\r\n"
            "Sec-WebSocket-Extensions: permessage-deflate\r\n"
            "\r\n");
  n = write_upgrade_response(buf, sizeof buf, kKey, {}, "permessage-deflate");
  EXPECT_EQ(std::string_view(buf, n),
            "HTTP/1.1 101 Switching Protocols\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
            "Sec-WebSocket-Extensions: permessage-deflate\r\n"
            "\r\n");
}

TEST(Handshake, UpgradeResponseRespectsCap) {
  char buf[256];
  const size_t full = write_upgrade_response(buf, sizeof buf, kKey, "chat");
  ASSERT_GT(full, 0u);
  for (size_t cap = 0; cap < full; ++cap) {
    std::vector<char> exact(cap + 1, '#');
    EXPECT_EQ(write_upgrade_response(exact.data(), cap, kKey, "chat"), 0u) << cap;
    EXPECT_EQ(exact[cap], '#') << "wrote past cap " << cap;
  }
  std::vector<char> exact(full);
  EXPECT_EQ(write_upgrade_response(exact.data(), full, kKey, "chat"), full);
}

TEST(Handshake, UpgradeResponseRefusesLineBreaks) {
  char buf[512];
  EXPECT_EQ(write_upgrade_response(buf, sizeof buf, kKey, "chat\r\nSet-Cookie: x"), 0u);
  EXPECT_EQ(write_upgrade_response(buf, sizeof buf, kKey, {}, "a\nb"), 0u);
}

TEST(Handshake, HttpResponseByteExact) {
  char buf[512];
  size_t n = write_http_response(buf, sizeof buf, 404, "text/plain", "not found\n");
  EXPECT_EQ(std::string_view(buf, n),
            "HTTP/1.1 404 Not Found\r\n"
            "Content-Type: text/plain\r\n"
            "Content-Length: 10\r\n"
            "Connection: close\r\n"
            "\r\n"
            "not found\n");
  n = write_http_response(buf, sizeof buf, 426, "text/plain", "version",
                          "Sec-WebSocket-Version: 13\r\n");
  EXPECT_EQ(std::string_view(buf, n),
            "HTTP/1.1 426 Upgrade Required\r\n"
            "Content-Type: text/plain\r\n"
            "Content-Length: 7\r\n"
            "Connection: close\r\n"
            "Sec-WebSocket-Version: 13\r\n"
            "\r\n"
            "version");
  n = write_http_response(buf, sizeof buf, 400, {}, {});
  EXPECT_EQ(std::string_view(buf, n),
            "HTTP/1.1 400 Bad Request\r\n"
            "Content-Length: 0\r\n"
            "Connection: close\r\n"
            "\r\n");
  n = write_http_response(buf, sizeof buf, 599, {}, "x");
  EXPECT_EQ(std::string_view(buf, n),
            "HTTP/1.1 599 Server Error\r\n"
            "Content-Length: 1\r\n"
            "Connection: close\r\n"
            "\r\n"
            "x");
}

TEST(Handshake, NoContentHasNoLengthOrBody) {
  char buf[256];
  const size_t n = write_http_response(buf, sizeof buf, 204, "text/plain", "ignored");
  EXPECT_EQ(std::string_view(buf, n),
            "HTTP/1.1 204 No Content\r\n"
            "Content-Type: text/plain\r\n"
            "Connection: close\r\n"
            "\r\n");
}

TEST(Handshake, HttpResponseLargeBodyAndCap) {
  const std::string body(100000, 'b');
  std::vector<char> buf(body.size() + 200);
  const size_t n = write_http_response(buf.data(), buf.size(), 200, "text/html", body);
  const std::string head =
      "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 100000\r\n"
      "Connection: close\r\n\r\n";
  ASSERT_EQ(n, head.size() + body.size());
  EXPECT_EQ(std::string_view(buf.data(), head.size()), head);
  EXPECT_EQ(std::string_view(buf.data() + head.size(), body.size()), body);
  EXPECT_EQ(write_http_response(buf.data(), n - 1, 200, "text/html", body), 0u);
  EXPECT_EQ(write_http_response(buf.data(), n, 200, "text/html", body), n);
  EXPECT_EQ(write_http_response(buf.data(), 0, 200, {}, {}), 0u);
  EXPECT_EQ(write_http_response(nullptr, 0, 200, {}, {}), 0u);
}

TEST(Handshake, HttpResponseRejectsBadInput) {
  char buf[256];
  EXPECT_EQ(write_http_response(buf, sizeof buf, 99, {}, {}), 0u);
  EXPECT_EQ(write_http_response(buf, sizeof buf, 1000, {}, {}), 0u);
  EXPECT_EQ(write_http_response(buf, sizeof buf, -404, {}, {}), 0u);
  EXPECT_EQ(write_http_response(buf, sizeof buf, 200, "text/plain\r\nX: y", {}), 0u);
}

TEST(Handshake, StatusReasons) {
  const std::pair<int, const char*> expected[] = {
      {101, "Switching Protocols"},
      {200, "OK"},
      {204, "No Content"},
      {400, "Bad Request"},
      {401, "Unauthorized"},
      {403, "Forbidden"},
      {404, "Not Found"},
      {405, "Method Not Allowed"},
      {426, "Upgrade Required"},
      {429, "Too Many Requests"},
      {431, "Request Header Fields Too Large"},
      {500, "Internal Server Error"},
      {503, "Service Unavailable"},
      {505, "HTTP Version Not Supported"},
  };
  for (const auto& [code, reason] : expected) EXPECT_EQ(status_reason(code), reason) << code;
  EXPECT_EQ(status_reason(0), "Server Error");  // no class: never "Unknown" (issue 17)
  EXPECT_EQ(status_reason(409), "Conflict");
  EXPECT_EQ(status_reason(418), "Client Error");
  EXPECT_EQ(status_reason(599), "Server Error");
}

TEST(Handshake, EndToEndAtEverySplit) {
  Request full("GET /chat HTTP/1.1", good_headers());
  const std::string& bytes = full.bytes;
  for (size_t i = 0; i < bytes.size(); ++i) {
    HttpRequest r;
    ASSERT_EQ(parse_http_request(std::string_view(bytes.data(), i), r), S::kNeedMore) << i;
  }
  HttpRequest r;
  ASSERT_EQ(parse_http_request(bytes, r), S::kComplete);
  const UpgradeCheck c = check_upgrade_request(r);
  ASSERT_EQ(c.status, 101);
  char buf[256];
  const size_t n = write_upgrade_response(buf, sizeof buf, c.key, "chat");
  EXPECT_NE(std::string_view(buf, n).find(std::string("Sec-WebSocket-Accept: ") + kAccept + "\r\n"),
            std::string_view::npos);
}

}  // namespace
}  // namespace protocol
