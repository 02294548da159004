#include "protocol/deflate_offer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace protocol {
namespace {

constexpr std::string_view kBase = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

std::string response_for(int server_max_window_bits) {
  std::string r(kBase);
  if (server_max_window_bits != 0) r += "; server_max_window_bits=" + std::to_string(server_max_window_bits);
  return r;
}

void expect_accepted(std::string_view header, int server_max_window_bits = 0) {
  const DeflateAgreement a = negotiate_deflate(header);
  ASSERT_TRUE(a.accepted) << header;
  EXPECT_EQ(a.response_view(), response_for(server_max_window_bits)) << header;
  EXPECT_EQ(a.server_max_window_bits, server_max_window_bits == 0 ? 15 : server_max_window_bits) << header;
}

void expect_declined(std::string_view header) {
  const DeflateAgreement a = negotiate_deflate(header);
  EXPECT_FALSE(a.accepted) << header << " -> " << a.response_view();
}

// Every combination of the four RFC 7692 parameters, each absent or with every legal value, in
// two parameter orders: all are acceptable, and the answer is always both no-context-takeover
// parameters plus the server window when it was offered.
TEST(DeflateOffer, NegotiationMatrixAcceptsEveryLegalCombination) {
  int cases = 0;
  for (int server_nct = 0; server_nct < 2; ++server_nct) {
    for (int client_nct = 0; client_nct < 2; ++client_nct) {
      for (int smwb = 7; smwb <= 15; ++smwb) {      // 7 stands for "absent"
        for (int cmwb = 6; cmwb <= 15; ++cmwb) {    // 6: absent, 7: without a value
          for (int reversed = 0; reversed < 2; ++reversed) {
            std::vector<std::string> params;
            if (server_nct) params.push_back("server_no_context_takeover");
            if (client_nct) params.push_back("client_no_context_takeover");
            if (smwb >= 8) params.push_back("server_max_window_bits=" + std::to_string(smwb));
            if (cmwb == 7) params.push_back("client_max_window_bits");
            if (cmwb >= 8) params.push_back("client_max_window_bits=" + std::to_string(cmwb));
            if (reversed) std::reverse(params.begin(), params.end());
            std::string offer = "permessage-deflate";
            for (const std::string& p : params) offer += "; " + p;
            expect_accepted(offer, smwb >= 8 ? smwb : 0);
            ++cases;
          }
        }
      }
    }
  }
  EXPECT_EQ(cases, 2 * 2 * 9 * 10 * 2);
}

TEST(DeflateOffer, AutobahnCase13Offers) {
  // The offers Autobahn|Testsuite 12.* and 13.* clients send.
  expect_accepted("permessage-deflate; client_no_context_takeover; client_max_window_bits");
  expect_accepted("permessage-deflate; client_no_context_takeover; client_max_window_bits; server_no_context_takeover");
  expect_accepted("permessage-deflate; client_no_context_takeover; client_max_window_bits; server_max_window_bits=8", 8);
  expect_accepted("permessage-deflate; client_no_context_takeover; client_max_window_bits; server_max_window_bits=15", 15);
  expect_accepted(
      "permessage-deflate; client_no_context_takeover; client_max_window_bits; server_no_context_takeover; "
      "server_max_window_bits=8, permessage-deflate; client_no_context_takeover; client_max_window_bits; "
      "server_no_context_takeover, permessage-deflate; client_no_context_takeover; client_max_window_bits",
      8);
}

TEST(DeflateOffer, BrowserAndLibraryDefaults) {
  expect_accepted("permessage-deflate; client_max_window_bits");  // Chrome, Firefox, Node ws
  expect_accepted("permessage-deflate; server_max_window_bits=12; client_max_window_bits=12", 12);
  expect_accepted("permessage-deflate");
}

TEST(DeflateOffer, InvalidParameterValuesDeclineTheOffer) {
  for (const char* bad : {"server_max_window_bits", "server_max_window_bits=7", "server_max_window_bits=16",
                          "server_max_window_bits=08", "server_max_window_bits=0", "server_max_window_bits=abc",
                          "server_max_window_bits=150", "server_max_window_bits=-9", "server_max_window_bits=\"\"",
                          "client_max_window_bits=7", "client_max_window_bits=16", "client_max_window_bits=010",
                          "client_max_window_bits=x", "server_no_context_takeover=1",
                          "client_no_context_takeover=true", "server_no_context_takeover=\"\"",
                          "unknown_parameter", "mem_level=8", "Server_No_Context_Takeover"}) {
    expect_declined(std::string("permessage-deflate; ") + bad);
  }
}

TEST(DeflateOffer, RepeatedParametersDeclineTheOffer) {
  for (const char* p : {"server_no_context_takeover", "client_no_context_takeover", "server_max_window_bits=10",
                        "client_max_window_bits", "client_max_window_bits=10"}) {
    expect_declined(std::string("permessage-deflate; ") + p + "; " + p);
  }
  expect_declined("permessage-deflate; server_max_window_bits=10; server_max_window_bits=11");
  expect_declined("permessage-deflate; client_max_window_bits; client_max_window_bits=9");
}

TEST(DeflateOffer, QuotedValuesAreUnescaped) {
  // RFC 6455 9.1: a quoted-string value must be a token once unescaped.
  expect_accepted("permessage-deflate; server_max_window_bits=\"10\"", 10);
  expect_accepted("permessage-deflate; server_max_window_bits=\"1\\3\"", 13);
  expect_accepted("permessage-deflate; client_max_window_bits=\"9\"");
  expect_declined("permessage-deflate; server_max_window_bits=\"10 \"");
  expect_declined("permessage-deflate; server_max_window_bits=\"10");  // unterminated: syntax error
}

TEST(DeflateOffer, FirstAcceptableOfferWins) {
  expect_accepted("permessage-deflate; server_max_window_bits=10, permessage-deflate; server_max_window_bits=11", 10);
  // An unacceptable offer is skipped; the next one is taken.
  expect_accepted("permessage-deflate; bogus, permessage-deflate; server_max_window_bits=9", 9);
  expect_accepted("permessage-deflate; server_max_window_bits=7, permessage-deflate", 0);
  // Other extensions (with parameters, even quoted commas) are skipped.
  expect_accepted("x-webkit-deflate-frame, foo; a=\"b,c\"; d, permessage-deflate; server_max_window_bits=14", 14);
  expect_declined("x-webkit-deflate-frame, foo; bar=1");
  expect_declined("permessage-deflate; bogus, permessage-deflate; server_max_window_bits=99");
}

TEST(DeflateOffer, WhitespaceAndEmptyElementsAreTolerated) {
  expect_accepted("  permessage-deflate ;server_max_window_bits = 10 ", 10);
  expect_accepted("\tpermessage-deflate\t;\tclient_max_window_bits\t");
  expect_accepted(", ,permessage-deflate,", 0);
}

TEST(DeflateOffer, SyntaxErrorsEndTheSearch) {
  expect_declined("");
  expect_declined(",");
  expect_declined(";permessage-deflate");
  expect_declined("permessage-deflate;");
  expect_declined("permessage-deflate; ;server_no_context_takeover");
  expect_declined("permessage-deflate server_no_context_takeover");
  expect_declined("permessage-deflate; server_max_window_bits=");
  expect_declined("permessage-deflate; server_max_window_bits=\"1\x01\"");
  expect_declined("@, permessage-deflate");
  expect_declined("foo; a=\"unterminated, permessage-deflate");
  // An acceptable offer before the error was already chosen.
  expect_accepted("permessage-deflate, @@@");
}

TEST(DeflateOffer, NameIsMatchedExactly) {
  expect_declined("Permessage-Deflate");
  expect_declined("permessage-deflatex");
  expect_declined("permessage_deflate");
}

TEST(DeflateOffer, EveryExtensionsHeaderLineIsConsidered) {
  const std::string bytes =
      "GET /echo HTTP/1.1\r\nHost: a\r\n"
      "Sec-WebSocket-Extensions: foo, permessage-deflate; nope\r\n"
      "X-Other: 1\r\n"
      "sec-websocket-extensions: permessage-deflate; server_max_window_bits=11\r\n"
      "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n";
  HttpRequest request;
  ASSERT_EQ(parse_http_request(bytes, request), HttpParseStatus::kComplete);
  const DeflateAgreement a = negotiate_deflate(request);
  ASSERT_TRUE(a.accepted);
  EXPECT_EQ(a.response_view(), response_for(11));

  HttpRequest none;
  ASSERT_EQ(parse_http_request("GET / HTTP/1.1\r\nHost: a\r\n\r\n", none), HttpParseStatus::kComplete);
  EXPECT_FALSE(negotiate_deflate(none).accepted);
}

TEST(DeflateOffer, ResponseFitsAndLongHeadersAreSafe) {
  std::string huge = "permessage-deflate";
  for (int i = 0; i < 2000; ++i) huge += "; client_max_window_bits=" + std::string(50, '9');
  expect_declined(huge);
  std::string many(5000, ',');
  many += "permessage-deflate; server_max_window_bits=15";
  expect_accepted(many, 15);
}

}  // namespace
}  // namespace protocol
