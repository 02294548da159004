#include "tools/ws_url.h"

#include <gtest/gtest.h>

#include <string>

namespace {

using tools::parse_ws_url;
using tools::WsUrl;

WsUrl parsed(const std::string& text) {
  WsUrl url;
  EXPECT_TRUE(parse_ws_url(text, url)) << text;
  return url;
}

TEST(WsUrlTest, PlainWsDefaults) {
  WsUrl url = parsed("ws://example.com");
  EXPECT_FALSE(url.secure);
  EXPECT_EQ(url.host, "example.com");
  EXPECT_EQ(url.port, 80);
  EXPECT_EQ(url.path, "/");
}

TEST(WsUrlTest, SecureWssDefaultsTo443) {
  WsUrl url = parsed("wss://example.com/chat");
  EXPECT_TRUE(url.secure);
  EXPECT_EQ(url.host, "example.com");
  EXPECT_EQ(url.port, 443);
  EXPECT_EQ(url.path, "/chat");
}

TEST(WsUrlTest, ExplicitPorts) {
  WsUrl url = parsed("ws://127.0.0.1:8080/echo");
  EXPECT_EQ(url.host, "127.0.0.1");
  EXPECT_EQ(url.port, 8080);
  EXPECT_EQ(url.path, "/echo");

  url = parsed("wss://h:1");
  EXPECT_TRUE(url.secure);
  EXPECT_EQ(url.port, 1);
  EXPECT_EQ(url.path, "/");

  url = parsed("ws://h:65535");
  EXPECT_EQ(url.port, 65535);

  // The default of the other scheme, given explicitly, is kept.
  url = parsed("ws://h:443");
  EXPECT_FALSE(url.secure);
  EXPECT_EQ(url.port, 443);
  url = parsed("wss://h:80");
  EXPECT_TRUE(url.secure);
  EXPECT_EQ(url.port, 80);
}

TEST(WsUrlTest, Ipv6InBrackets) {
  WsUrl url = parsed("ws://[::1]:9001/echo");
  EXPECT_EQ(url.host, "::1");
  EXPECT_EQ(url.port, 9001);
  EXPECT_EQ(url.path, "/echo");

  url = parsed("wss://[2001:db8::7]");
  EXPECT_EQ(url.host, "2001:db8::7");
  EXPECT_EQ(url.port, 443);
  EXPECT_EQ(url.path, "/");

  url = parsed("ws://[::ffff:192.0.2.1]/x");
  EXPECT_EQ(url.host, "::ffff:192.0.2.1");
  EXPECT_EQ(url.port, 80);
}

TEST(WsUrlTest, PathsAndQueries) {
  EXPECT_EQ(parsed("ws://h/").path, "/");
  EXPECT_EQ(parsed("ws://h/a/b/c").path, "/a/b/c");
  EXPECT_EQ(parsed("ws://h/chat?room=lobby&user=ann").path, "/chat?room=lobby&user=ann");
  EXPECT_EQ(parsed("ws://h:8080/chat?room=a%20b").path, "/chat?room=a%20b");
  EXPECT_EQ(parsed("ws://[::1]:8080/a?b=c").path, "/a?b=c");
  // A query with an empty path: the resource name is "/" then the query (RFC 6455 3).
  WsUrl url = parsed("ws://h?token=abc");
  EXPECT_EQ(url.host, "h");
  EXPECT_EQ(url.path, "/?token=abc");
  url = parsed("ws://h:9000?x=1");
  EXPECT_EQ(url.host, "h");
  EXPECT_EQ(url.port, 9000);
  EXPECT_EQ(url.path, "/?x=1");
  url = parsed("ws://[::1]?x");
  EXPECT_EQ(url.host, "::1");
  EXPECT_EQ(url.path, "/?x");
  // A ':' or '@' after the authority belongs to the path.
  url = parsed("ws://h/a:b@c");
  EXPECT_EQ(url.host, "h");
  EXPECT_EQ(url.port, 80);
  EXPECT_EQ(url.path, "/a:b@c");
}

TEST(WsUrlTest, RegisteredNameCharacters) {
  EXPECT_EQ(parsed("ws://my-host_1.example~x").host, "my-host_1.example~x");
  EXPECT_EQ(parsed("ws://LOCALHOST:5").host, "LOCALHOST");
}

TEST(WsUrlTest, RejectsMalformed) {
  const char* bad[] = {
      "",
      "example.com",           // no scheme
      "http://example.com/",   // not a WebSocket scheme
      "wss:/h",                // one slash
      "ws:h",
      "ws://",                 // no host
      "ws:///path",            // empty host
      "ws://:80/",             // empty host with a port
      "ws://h:",               // empty port
      "ws://h:/x",
      "ws://h:0",              // port 0
      "ws://h:65536",          // port too large
      "ws://h:99999999999",    // port overflows
      "ws://h:-1",
      "ws://h:+80",
      "ws://h:8o",             // junk in the port
      "ws://h:80:90",          // two ports
      "ws://::1/",             // IPv6 without brackets
      "ws://::1:80/",
      "ws://[::1",             // unclosed bracket
      "ws://[::1/x",
      "ws://[]:80",            // empty brackets
      "ws://[::1]80",          // no colon after the bracket
      "ws://[::1]:",           // empty port after the bracket
      "ws://[::1]:0",
      "ws://[::1]:65536",
      "ws://[not-v6]/",        // brackets hold an IPv6 address only
      "ws://[1.2.3.4]/",
      "ws://h]:80",            // stray bracket
      "ws://user@h/",          // userinfo is not part of a ws URI
      "ws://h/x#frag",         // RFC 6455 3: no fragments
      "ws://h#frag",
      "ws://h /x",             // whitespace
      "ws://h/a b",
      "ws://h/x\r\nHost: evil",  // would break the request line
      "ws://h\t/",
  };
  for (const char* text : bad) {
    WsUrl url;
    url.host = "untouched";
    EXPECT_FALSE(parse_ws_url(text, url)) << "'" << text << "'";
    EXPECT_EQ(url.host, "untouched") << "output written on failure for '" << text << "'";
  }
}

TEST(WsUrlTest, SuccessReplacesEveryField) {
  WsUrl url;
  url.secure = true;
  url.host = "old";
  url.port = 1234;
  url.path = "/old";
  ASSERT_TRUE(parse_ws_url("ws://new", url));
  EXPECT_FALSE(url.secure);
  EXPECT_EQ(url.host, "new");
  EXPECT_EQ(url.port, 80);
  EXPECT_EQ(url.path, "/");
}

TEST(WsUrlTest, HostHeaderOmitsOnlyTheSchemesDefaultPort) {
  EXPECT_EQ(tools::host_header_value(parsed("ws://example.com/")), "example.com");
  EXPECT_EQ(tools::host_header_value(parsed("ws://example.com:443/")), "example.com:443");
  EXPECT_EQ(tools::host_header_value(parsed("wss://example.com/")), "example.com");
  EXPECT_EQ(tools::host_header_value(parsed("wss://example.com:80/")), "example.com:80");
  EXPECT_EQ(tools::host_header_value(parsed("wss://127.0.0.1:8443/echo")), "127.0.0.1:8443");
  EXPECT_EQ(tools::host_header_value(parsed("wss://[::1]:8443/")), "[::1]:8443");
  EXPECT_EQ(tools::host_header_value(parsed("ws://[::1]/")), "[::1]");
}

}  // namespace
