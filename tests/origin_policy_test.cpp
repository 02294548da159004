#include "chat/origin_policy.h"

#include <gtest/gtest.h>

#include <string>

namespace chat {
namespace {

OriginPolicy make(std::string_view list) {
  OriginPolicy policy;
  std::string error;
  EXPECT_TRUE(policy.parse(list, error)) << list << ": " << error;
  return policy;
}

std::string parse_error(std::string_view list) {
  OriginPolicy policy;
  std::string error;
  EXPECT_FALSE(policy.parse(list, error)) << list;
  return error;
}

TEST(OriginPolicy, ExactOrigin) {
  const OriginPolicy p = make("https://chat.example.com");
  EXPECT_TRUE(p.allows("https://chat.example.com"));
  EXPECT_FALSE(p.allows("http://chat.example.com"));    // scheme matters
  EXPECT_FALSE(p.allows("https://chat.example.com:8443"));  // port matters
  EXPECT_FALSE(p.allows("https://example.com"));
  EXPECT_FALSE(p.allows("https://sub.chat.example.com"));
  EXPECT_FALSE(p.allows("https://chat.example.com.evil.com"));
  EXPECT_FALSE(p.allows("https://chat.example.co"));
  EXPECT_FALSE(p.allows("https://chat.example.comm"));
  EXPECT_FALSE(p.allows("https://xchat.example.com"));
}

TEST(OriginPolicy, SchemeAndHostAreCaseInsensitive) {
  // RFC 6454 4: scheme and host are lower-cased; browsers send them that way, but need not.
  const OriginPolicy p = make("HTTPS://Chat.Example.COM");
  EXPECT_TRUE(p.allows("https://chat.example.com"));
  EXPECT_TRUE(p.allows("HTTPS://CHAT.EXAMPLE.COM"));
  EXPECT_TRUE(p.allows("hTtPs://cHaT.eXaMpLe.CoM"));
}

TEST(OriginPolicy, DefaultPortEqualsNoPort) {
  const OriginPolicy p = make("https://a.example.com:443, http://b.example.com");
  EXPECT_TRUE(p.allows("https://a.example.com"));
  EXPECT_TRUE(p.allows("https://a.example.com:443"));
  EXPECT_TRUE(p.allows("http://b.example.com:80"));
  EXPECT_FALSE(p.allows("http://b.example.com:443"));
  EXPECT_FALSE(p.allows("https://a.example.com:80"));
}

TEST(OriginPolicy, ExplicitPort) {
  const OriginPolicy p = make("http://localhost:3000");
  EXPECT_TRUE(p.allows("http://localhost:3000"));
  EXPECT_FALSE(p.allows("http://localhost"));
  EXPECT_FALSE(p.allows("http://localhost:3001"));
  EXPECT_FALSE(p.allows("http://localhost:30000"));
  EXPECT_FALSE(p.allows("http://localhost:300"));
}

TEST(OriginPolicy, WildcardSubdomains) {
  const OriginPolicy p = make("https://*.example.com");
  EXPECT_TRUE(p.allows("https://sub.example.com"));
  EXPECT_TRUE(p.allows("https://a.b.example.com"));
  EXPECT_TRUE(p.allows("https://A.Example.Com"));
  EXPECT_FALSE(p.allows("https://example.com"));       // not the domain itself
  EXPECT_FALSE(p.allows("https://evil-example.com"));  // not a suffix match on text
  EXPECT_FALSE(p.allows("https://evilexample.com"));
  EXPECT_FALSE(p.allows("https://.example.com"));      // empty label
  EXPECT_FALSE(p.allows("https://a..example.com"));
  EXPECT_FALSE(p.allows("https://sub.example.com.evil.net"));
  EXPECT_FALSE(p.allows("https://sub.example.co"));
  EXPECT_FALSE(p.allows("http://sub.example.com"));
  EXPECT_FALSE(p.allows("https://sub.example.com:8443"));
}

TEST(OriginPolicy, WildcardWithPort) {
  const OriginPolicy p = make("http://*.dev.example.com:8080");
  EXPECT_TRUE(p.allows("http://a.dev.example.com:8080"));
  EXPECT_FALSE(p.allows("http://a.dev.example.com"));
  EXPECT_FALSE(p.allows("http://dev.example.com:8080"));
}

TEST(OriginPolicy, SeveralEntriesWithWhitespace) {
  const OriginPolicy p = make(" https://a.example.com ,\thttps://*.b.example.org,http://[::1]:8080 ");
  EXPECT_TRUE(p.allows("https://a.example.com"));
  EXPECT_TRUE(p.allows("https://x.b.example.org"));
  EXPECT_TRUE(p.allows("http://[::1]:8080"));
  EXPECT_FALSE(p.allows("http://[::1]"));
  EXPECT_FALSE(p.allows("http://[::2]:8080"));
  EXPECT_FALSE(p.allows("https://b.example.org"));
}

TEST(OriginPolicy, IpAddresses) {
  const OriginPolicy p = make("http://127.0.0.1:8080,http://[FE80::1]");
  EXPECT_TRUE(p.allows("http://127.0.0.1:8080"));
  EXPECT_TRUE(p.allows("http://[fe80::1]"));
  EXPECT_FALSE(p.allows("http://127.0.0.1"));
  EXPECT_FALSE(p.allows("http://127.0.0.2:8080"));
}

TEST(OriginPolicy, MalformedHeadersAreRefused) {
  const OriginPolicy p = make("https://chat.example.com");
  for (std::string_view origin :
       {"null", "chat.example.com", "https://", "https:/chat.example.com", "//chat.example.com",
        "https://chat.example.com/", "https://chat.example.com/path", "https://chat.example.com?",
        "https://chat.example.com#", "https://user@chat.example.com",
        "https://chat.example.com:", "https://chat.example.com:0", "https://chat.example.com:65536",
        "https://chat.example.com:443x", "https://chat.example.com:-443",
        "https://chat.example.com:+443", "https://chat.example.com https://chat.example.com",
        "https://chat.example.com ", " https://chat.example.com", "https://chat.example.com.",
        "https://chat.example.com\r", "https://chat example.com",
        "https://chat.exam\xc3\xa9.com", "1https://chat.example.com", "https://*.example.com"}) {
    EXPECT_FALSE(p.allows(origin)) << origin;
  }
  using namespace std::string_view_literals;
  EXPECT_FALSE(p.allows("https://chat.example.com\0"sv));
  EXPECT_FALSE(p.allows("https://chat\0.example.com"sv));
}

TEST(OriginPolicy, MissingOriginSwitch) {
  OriginPolicy p = make("https://chat.example.com");
  EXPECT_EQ(p.missing_origin(), OriginPolicy::MissingOrigin::kAllow);
  EXPECT_TRUE(p.allows(""));
  p.set_missing_origin(OriginPolicy::MissingOrigin::kDeny);
  EXPECT_FALSE(p.allows(""));
  EXPECT_TRUE(p.allows("https://chat.example.com"));
}

TEST(OriginPolicy, AnyOrigin) {
  OriginPolicy p = make("*");
  EXPECT_TRUE(p.allows("https://anything.example"));
  EXPECT_TRUE(p.allows("null"));
  EXPECT_FALSE(p.empty());
  p.set_missing_origin(OriginPolicy::MissingOrigin::kDeny);
  EXPECT_FALSE(p.allows(""));  // the switch still governs absent headers
}

TEST(OriginPolicy, EmptyPolicyRefusesEveryOrigin) {
  const OriginPolicy p;
  EXPECT_TRUE(p.empty());
  EXPECT_FALSE(p.allows("https://chat.example.com"));
  EXPECT_FALSE(p.allows("null"));
  EXPECT_TRUE(p.allows(""));
}

TEST(OriginPolicy, OtherSchemes) {
  const OriginPolicy p = make("chrome-extension://abcdefghijklmnop,wss://x.example.com:443");
  EXPECT_TRUE(p.allows("chrome-extension://abcdefghijklmnop"));
  EXPECT_TRUE(p.allows("wss://x.example.com"));
  EXPECT_FALSE(p.allows("https://abcdefghijklmnop"));
}

TEST(OriginPolicy, ParseErrorsNameTheEntry) {
  struct Case {
    std::string_view list;
    std::string_view entry;
    std::string_view why;
  };
  const Case cases[] = {
      {"https://a.example.com,chat.example.com", "\"chat.example.com\"", "scheme://host"},
      {"https://a.example.com/", "\"https://a.example.com/\"", "no path"},
      {"https://user@a.example.com", "\"https://user@a.example.com\"", "user info"},
      {"https://a.example.com:99999", "\"https://a.example.com:99999\"", "port"},
      {"https://a.example.com:", "\"https://a.example.com:\"", "port"},
      {"https://a.example.com:https", "\"https://a.example.com:https\"", "port"},
      {"https://", "\"https://\"", "missing host"},
      {"ht tp://a.example.com", "\"ht tp://a.example.com\"", "ASCII"},
      {"1http://a.example.com", "\"1http://a.example.com\"", "scheme"},
      {"https://a..example.com", "\"https://a..example.com\"", "invalid host"},
      {"https://a.example.com.", "\"https://a.example.com.\"", "invalid host"},
      {"https://a_b!.example.com", "\"https://a_b!.example.com\"", "invalid host"},
      {"https://ex\xc3\xa4mple.com", "ex\xc3\xa4mple.com", "punycode"},
      {"https://*.com", "\"https://*.com\"", "two-label"},
      {"https://*", "\"https://*\"", "'*'"},
      {"https://*example.com", "\"https://*example.com\"", "'*'"},
      {"https://a.*.example.com", "\"https://a.*.example.com\"", "'*'"},
      {"https://*.*.example.com", "\"https://*.*.example.com\"", "after \"*.\""},
      {"https://*.", "\"https://*.\"", "after \"*.\""},
      {"https://[::1", "\"https://[::1\"", "IPv6"},
      {"https://[xyz]", "\"https://[xyz]\"", "invalid host"},
      {"null", "\"null\"", "opaque"},
      {"https://a.example.com,,https://b.example.com", "empty entry", ""},
      {"https://a.example.com,", "empty entry", ""},
      {"", "empty list", ""},
      {" , ", "empty entry", ""},
  };
  for (const Case& c : cases) {
    const std::string error = parse_error(c.list);
    EXPECT_NE(error.find(c.entry), std::string::npos) << c.list << " -> " << error;
    EXPECT_NE(error.find(c.why), std::string::npos) << c.list << " -> " << error;
    EXPECT_EQ(error.find('\n'), std::string::npos) << error;
  }
}

TEST(OriginPolicy, FailedParseLeavesPolicyUnchanged) {
  OriginPolicy p = make("https://a.example.com");
  std::string error;
  EXPECT_FALSE(p.parse("https://b.example.com, bogus", error));
  EXPECT_TRUE(p.allows("https://a.example.com"));
  EXPECT_FALSE(p.allows("https://b.example.com"));
}

TEST(OriginPolicy, WildcardLocalhostIsAllowed) {
  const OriginPolicy p = make("http://*.localhost:5173");
  EXPECT_TRUE(p.allows("http://app.localhost:5173"));
  EXPECT_FALSE(p.allows("http://localhost:5173"));
}

TEST(OriginPolicy, LongHostsAreBounded) {
  const std::string label(63, 'a');
  const std::string host = label + "." + label + "." + label + "." + std::string(61, 'b');
  ASSERT_EQ(host.size(), 253u);
  const OriginPolicy p = make("https://*.example.com");
  EXPECT_TRUE(p.allows("https://" + std::string(63, 'a') + ".example.com"));
  EXPECT_FALSE(p.allows("https://" + std::string(64, 'a') + ".example.com"));
  const OriginPolicy exact = make("https://" + host);
  EXPECT_TRUE(exact.allows("https://" + host));
  EXPECT_FALSE(exact.allows("https://x" + host));
}

}  // namespace
}  // namespace chat
