#include "chat/auth_token.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "protocol/http_request.h"

namespace chat {
namespace {

constexpr std::string_view kSecret = "an-hs256-test-secret-of-32-bytes!!";
constexpr uint64_t kNow = 1'700'000'000;
constexpr uint64_t kLater = kNow + 3600;

// base64url through OpenSSL's standard base64, not through the code under test.
std::string b64url(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (char& c : out) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return out;
}

std::string hmac(const EVP_MD* md, std::string_view secret, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  HMAC(md, secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &size);
  return std::string(reinterpret_cast<char*>(out), size);
}

// A token with arbitrary header and payload JSON, signed with `md` under `secret`.
std::string sign(std::string_view header_json, std::string_view payload_json,
                 std::string_view secret = kSecret, const EVP_MD* md = EVP_sha256()) {
  const std::string input = b64url(header_json) + "." + b64url(payload_json);
  return input + "." + b64url(hmac(md, secret, input));
}

std::string hs256(std::string_view payload_json) {
  return sign(R"({"alg":"HS256","typ":"JWT"})", payload_json);
}

std::string claims(std::string_view extra = {}) {
  std::string s = R"({"sub":"alice","exp":)" + std::to_string(kLater);
  s += extra;
  s += "}";
  return s;
}

TokenStatus status_of(std::string_view token, uint64_t now = kNow) {
  return verify_token(token, kSecret, now).status;
}

// ---- round trips ----

TEST(AuthToken, MintVerifyRoundTrip) {
  const std::string token = mint_token("alice", {"general", "dev"}, kLater, kSecret);
  ASSERT_FALSE(token.empty());
  const TokenResult r = verify_token(token, kSecret, kNow);
  EXPECT_EQ(r.status, TokenStatus::kOk);
  EXPECT_TRUE(r.reason.empty());
  EXPECT_EQ(r.subject, "alice");
  EXPECT_TRUE(r.has_rooms);
  EXPECT_EQ(r.rooms, (std::vector<std::string>{"general", "dev"}));
  EXPECT_EQ(r.expires_at, kLater);
  EXPECT_EQ(r.not_before, 0u);
}

TEST(AuthToken, NoRoomsClaimMeansUnrestricted) {
  const TokenResult r = verify_token(mint_token("bob", {}, kLater, kSecret), kSecret, kNow);
  EXPECT_EQ(r.status, TokenStatus::kOk);
  EXPECT_FALSE(r.has_rooms);
  EXPECT_TRUE(r.rooms.empty());
}

TEST(AuthToken, EmptyRoomsClaimIsKeptApartFromNone) {
  TokenClaims c;
  c.subject = "bob";
  c.rooms.emplace();
  c.expires_at = kLater;
  const TokenResult r = verify_token(mint_token(c, kSecret), kSecret, kNow);
  EXPECT_EQ(r.status, TokenStatus::kOk);
  EXPECT_TRUE(r.has_rooms);
  EXPECT_TRUE(r.rooms.empty());
}

TEST(AuthToken, RoomHashPrefixIsRemoved) {
  const TokenResult r = verify_token(hs256(claims(R"(,"rooms":["#general","dev"])")), kSecret, kNow);
  EXPECT_EQ(r.status, TokenStatus::kOk);
  EXPECT_EQ(r.rooms, (std::vector<std::string>{"general", "dev"}));
}

TEST(AuthToken, MintWritesNbfAndIat) {
  TokenClaims c;
  c.subject = "a.b-c_d";
  c.expires_at = kLater;
  c.not_before = kNow + 10;
  c.issued_at = kNow;
  const std::string token = mint_token(c, kSecret);
  EXPECT_EQ(status_of(token, kNow), TokenStatus::kNotYetValid);
  const TokenResult r = verify_token(token, kSecret, kNow + 10);
  EXPECT_EQ(r.status, TokenStatus::kOk);
  EXPECT_EQ(r.subject, "a.b-c_d");
  EXPECT_EQ(r.not_before, kNow + 10);
}

TEST(AuthToken, MintRefusesBadInput) {
  EXPECT_EQ(mint_token("bad name", {}, kLater, kSecret), "");
  EXPECT_EQ(mint_token("", {}, kLater, kSecret), "");
  EXPECT_EQ(mint_token(std::string(33, 'a'), {}, kLater, kSecret), "");
  EXPECT_EQ(mint_token("alice", {"bad room"}, kLater, kSecret), "");
  EXPECT_EQ(mint_token("alice", {}, 0, kSecret), "");
  EXPECT_EQ(mint_token("alice", {}, kLater, ""), "");
  // Too many rooms for kMaxTokenBytes.
  std::vector<std::string> rooms(100, std::string(60, 'r'));
  EXPECT_EQ(mint_token("alice", rooms, kLater, kSecret), "");
}

TEST(AuthToken, MintedTokenHasTheStandardHeader) {
  const std::string token = mint_token("alice", {}, kLater, kSecret);
  // base64url of {"alg":"HS256","typ":"JWT"}, as every JWT library writes it.
  EXPECT_EQ(token.substr(0, token.find('.')), "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9");
  EXPECT_EQ(token.find('='), std::string::npos);
}

// ---- independent implementations ----

// Produced by Python's standard library alone (hmac, hashlib, base64, json):
//   secret = b"python-stdlib-fixture-secret-0123456789"
//   header = {"alg":"HS256","typ":"JWT"}
//   payload = {"sub":"alice.smith","exp":2000000000,"nbf":1600000000,"iat":1600000000,
//              "rooms":["general","#dev","ops_team"],"iss":"fixture"}
//   json.dumps(..., separators=(',',':')), base64.urlsafe_b64encode(...).rstrip(b'='),
//   hmac.new(secret, signing_input, hashlib.sha256).digest()
constexpr std::string_view kPythonSecret = "python-stdlib-fixture-secret-0123456789";
constexpr std::string_view kPythonToken =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiJhbGljZS5zbWl0aCIsImV4cCI6MjAwMDAwMDAwMCwibmJmIjoxNjAwMDAwMDAwLCJpYXQiOjE2MDAwMD"
    "AwMDAsInJvb21zIjpbImdlbmVyYWwiLCIjZGV2Iiwib3BzX3RlYW0iXSwiaXNzIjoiZml4dHVyZSJ9."
    "J-GQNiF4fQOOQ1hEglowRr-7o919jBjL-br_1y_J4dU";
// The same secret; header {"alg": "HS256"} and payload {"sub": "bob", "exp": 1700000000} with
// Python's default separators (spaces after ':' and ',').
constexpr std::string_view kPythonSpacedToken =
    "eyJhbGciOiAiSFMyNTYifQ.eyJzdWIiOiAiYm9iIiwgImV4cCI6IDE3MDAwMDAwMDB9."
    "W-NYycWT6JpUEIYI2YYiuxzNdWaQK_L2832_5eVY0fs";

TEST(AuthToken, VerifiesATokenFromPythonStdlib) {
  const TokenResult r = verify_token(kPythonToken, kPythonSecret, 1'700'000'000);
  ASSERT_EQ(r.status, TokenStatus::kOk) << r.reason;
  EXPECT_EQ(r.subject, "alice.smith");
  EXPECT_EQ(r.expires_at, 2'000'000'000u);
  EXPECT_EQ(r.not_before, 1'600'000'000u);
  EXPECT_EQ(r.rooms, (std::vector<std::string>{"general", "dev", "ops_team"}));
  EXPECT_EQ(verify_token(kPythonToken, kPythonSecret, 1'599'999'999).status,
            TokenStatus::kNotYetValid);
  EXPECT_EQ(verify_token(kPythonToken, kPythonSecret, 2'000'000'000).status, TokenStatus::kExpired);
  EXPECT_EQ(verify_token(kPythonToken, kSecret, 1'700'000'000).status, TokenStatus::kBadSignature);

  const TokenResult spaced = verify_token(kPythonSpacedToken, kPythonSecret, 1'699'999'999);
  ASSERT_EQ(spaced.status, TokenStatus::kOk) << spaced.reason;
  EXPECT_EQ(spaced.subject, "bob");
  EXPECT_FALSE(spaced.has_rooms);
}

TEST(AuthToken, MintMatchesPythonForTheSameClaims) {
  // Python: header {"alg":"HS256","typ":"JWT"}, payload {"sub":"bob","exp":1700000000}, compact.
  TokenClaims c;
  c.subject = "bob";
  c.expires_at = 1'700'000'000;
  EXPECT_EQ(mint_token(c, kPythonSecret),
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJib2IiLCJleHAiOjE3MDAwMDAwMDB9."
            "jA6F8kQg-RSsKa8B9nwGuwOZPRFYuuv7BqL21CJpNAc");
}

// RFC 7515 Appendix A.1: an HS256 JWS from the specification itself. Its header has a CRLF
// inside, its payload no "sub", so the signature verifies and then the claims are refused.
TEST(AuthToken, Rfc7515AppendixA1SignatureVerifies) {
  constexpr std::string_view kToken =
      "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9."
      "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ."
      "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
  // The JWK "k" value, base64url-decoded.
  const unsigned char key[] = {
      3,   35,  53,  75,  43,  15,  165, 188, 131, 126, 6,   101, 119, 123, 166, 143,
      90,  179, 40,  230, 240, 84,  201, 40,  169, 15,  132, 178, 210, 80,  46,  191,
      211, 251, 90,  146, 210, 6,   71,  239, 150, 138, 180, 195, 119, 98,  61,  34,
      61,  46,  33,  114, 5,   46,  79,  8,   192, 205, 154, 245, 103, 208, 128, 163};
  const std::string_view secret(reinterpret_cast<const char*>(key), sizeof key);
  const TokenResult r = verify_token(kToken, secret, 1'300'000'000);
  EXPECT_EQ(r.status, TokenStatus::kMalformed);
  EXPECT_EQ(r.reason, "missing \"sub\"");
  std::string tampered(kToken);
  tampered[tampered.size() - 5] = 'A';
  EXPECT_EQ(verify_token(tampered, secret, 1'300'000'000).status, TokenStatus::kBadSignature);
}

// ---- signatures ----

TEST(AuthToken, ForgedSignatureIsRejected) {
  const std::string token = mint_token("alice", {}, kLater, kSecret);
  const size_t sig = token.rfind('.') + 1;
  // Change each signature character but the last (whose low bits must stay zero).
  for (size_t i = sig; i + 1 < token.size(); ++i) {
    std::string forged = token;
    forged[i] = forged[i] == 'A' ? 'B' : 'A';
    EXPECT_EQ(status_of(forged), TokenStatus::kBadSignature) << i;
  }
}

TEST(AuthToken, TamperedPayloadIsRejected) {
  const std::string token = mint_token("alice", {"general"}, kLater, kSecret);
  const size_t dot1 = token.find('.'), dot2 = token.rfind('.');
  const std::string other = b64url(R"({"sub":"admin","exp":)" + std::to_string(kLater) + "}");
  const std::string forged = token.substr(0, dot1 + 1) + other + token.substr(dot2);
  EXPECT_EQ(status_of(forged), TokenStatus::kBadSignature);
}

TEST(AuthToken, WrongSecretIsRejected) {
  const std::string token = mint_token("alice", {}, kLater, kSecret);
  EXPECT_EQ(verify_token(token, "another-secret-of-thirty-two-bytes", kNow).status,
            TokenStatus::kBadSignature);
  EXPECT_EQ(verify_token(token, std::string(kSecret) + "x", kNow).status,
            TokenStatus::kBadSignature);
}

TEST(AuthToken, EmptySecretNeverVerifies) {
  // HMAC under an empty key is computable by anyone.
  const std::string token = sign(R"({"alg":"HS256"})", claims(), "");
  const TokenResult r = verify_token(token, "", kNow);
  EXPECT_EQ(r.status, TokenStatus::kBadSignature);
  EXPECT_TRUE(r.subject.empty());
}

TEST(AuthToken, SignatureOfTheWrongLengthIsABadSignature) {
  const std::string token = mint_token("alice", {}, kLater, kSecret);
  const std::string input = token.substr(0, token.rfind('.'));
  const std::string mac = hmac(EVP_sha256(), kSecret, input);
  EXPECT_EQ(status_of(input + "." + b64url(mac.substr(0, 31))), TokenStatus::kBadSignature);
  EXPECT_EQ(status_of(input + "." + b64url(mac + "x")), TokenStatus::kBadSignature);
  EXPECT_EQ(status_of(input + "." + b64url(mac + mac)), TokenStatus::kBadSignature);
  EXPECT_EQ(status_of(input + "."), TokenStatus::kBadSignature);
}

// ---- time ----

TEST(AuthToken, ExpiryIsExclusive) {
  const std::string token = mint_token("alice", {}, kLater, kSecret);
  EXPECT_EQ(status_of(token, kLater - 1), TokenStatus::kOk);
  const TokenResult r = verify_token(token, kSecret, kLater);
  EXPECT_EQ(r.status, TokenStatus::kExpired);
  EXPECT_EQ(r.subject, "alice");  // claims are still reported for logging
  EXPECT_EQ(r.expires_at, kLater);
  EXPECT_EQ(status_of(token, UINT64_MAX), TokenStatus::kExpired);
}

TEST(AuthToken, NotBeforeInTheFutureIsRejected) {
  const std::string token = hs256(claims(",\"nbf\":" + std::to_string(kNow + 60)));
  EXPECT_EQ(status_of(token, kNow), TokenStatus::kNotYetValid);
  EXPECT_EQ(status_of(token, kNow + 59), TokenStatus::kNotYetValid);
  EXPECT_EQ(status_of(token, kNow + 60), TokenStatus::kOk);
}

TEST(AuthToken, LargestExpiryIsAccepted) {
  const TokenResult r = verify_token(hs256(R"({"sub":"a","exp":18446744073709551615})"), kSecret, kNow);
  EXPECT_EQ(r.status, TokenStatus::kOk);
  EXPECT_EQ(r.expires_at, UINT64_MAX);
}

// ---- algorithms and headers ----

TEST(AuthToken, AlgNoneIsRejected) {
  const std::string payload = b64url(claims());
  for (std::string_view header : {R"({"alg":"none"})", R"({"alg":"none","typ":"JWT"})",
                                  R"({"alg":"None"})", R"({"alg":"NONE"})"}) {
    const std::string unsigned_token = b64url(header) + "." + payload + ".";
    EXPECT_EQ(status_of(unsigned_token), TokenStatus::kWrongAlgorithm) << header;
    // Even with a valid HS256 signature attached, "none" is not HS256.
    EXPECT_EQ(status_of(sign(header, claims())), TokenStatus::kWrongAlgorithm) << header;
  }
}

TEST(AuthToken, OtherAlgorithmsAreRejected) {
  EXPECT_EQ(status_of(sign(R"({"alg":"HS512","typ":"JWT"})", claims(), kSecret, EVP_sha512())),
            TokenStatus::kWrongAlgorithm);
  EXPECT_EQ(status_of(sign(R"({"alg":"HS384"})", claims(), kSecret, EVP_sha384())),
            TokenStatus::kWrongAlgorithm);
  // RS256 signed with the HMAC secret: the classic key-confusion attack.
  EXPECT_EQ(status_of(sign(R"({"alg":"RS256"})", claims())), TokenStatus::kWrongAlgorithm);
  EXPECT_EQ(status_of(sign(R"({"alg":"hs256"})", claims())), TokenStatus::kWrongAlgorithm);
  EXPECT_EQ(status_of(sign(R"({"alg":"HS256 "})", claims())), TokenStatus::kWrongAlgorithm);
  EXPECT_EQ(status_of(sign(R"({"typ":"JWT"})", claims())), TokenStatus::kWrongAlgorithm);
  EXPECT_EQ(status_of(sign(R"({})", claims())), TokenStatus::kWrongAlgorithm);
}

TEST(AuthToken, HeaderChecks) {
  EXPECT_EQ(status_of(sign(R"({"alg":"HS256"})", claims())), TokenStatus::kOk);
  EXPECT_EQ(status_of(sign(R"({"typ":"jwt","alg":"HS256"})", claims())), TokenStatus::kOk);
  EXPECT_EQ(status_of(sign(R"({"alg":"HS256","kid":"2024-01"})", claims())), TokenStatus::kOk);
  EXPECT_EQ(status_of(sign(R"({"alg":"HS256","typ":"at+jwt"})", claims())), TokenStatus::kMalformed);
  EXPECT_EQ(status_of(sign(R"({"alg":"HS256","typ":1})", claims())), TokenStatus::kMalformed);
  EXPECT_EQ(status_of(sign(R"({"alg":"HS256","crit":["exp"]})", claims())), TokenStatus::kMalformed);
  EXPECT_EQ(status_of(sign(R"({"alg":256})", claims())), TokenStatus::kMalformed);
  // Parsers disagree on which duplicate wins; refuse instead of guessing.
  EXPECT_EQ(status_of(sign(R"({"alg":"HS256","alg":"none"})", claims())), TokenStatus::kMalformed);
  EXPECT_EQ(status_of(sign(R"({"alg":"none","alg":"HS256"})", claims())), TokenStatus::kMalformed);
  EXPECT_EQ(status_of(sign(R"(["HS256"])", claims())), TokenStatus::kMalformed);
  EXPECT_EQ(status_of(sign(R"({"alg":"HS256"} x)", claims())), TokenStatus::kMalformed);
  EXPECT_EQ(status_of(sign("", claims())), TokenStatus::kMalformed);
}

// ---- base64url ----

TEST(AuthToken, NonBase64UrlCharactersAreMalformed) {
  const std::string token = mint_token("alice", {}, kLater, kSecret);
  const size_t dot1 = token.find('.'), dot2 = token.rfind('.');
  for (size_t pos : {size_t{3}, dot1 + 3, dot2 + 3}) {
    for (char bad : {'+', '/', '=', ' ', '\0', '\n', '%', '\x80', '\xff', '*'}) {
      std::string t = token;
      t[pos] = bad;
      EXPECT_EQ(status_of(t), TokenStatus::kMalformed) << pos << " " << int(bad);
    }
  }
}

TEST(AuthToken, PaddingIsMalformed) {
  const std::string token = mint_token("alice", {}, kLater, kSecret);
  const size_t dot1 = token.find('.');
  EXPECT_EQ(status_of(token + "="), TokenStatus::kMalformed);  // 43 chars + '=' is 44
  EXPECT_EQ(status_of(token + "=="), TokenStatus::kMalformed);
  // A 16-byte header (22 characters + "==" in padded base64), written with its padding and
  // correctly signed as written.
  const std::string header = b64url(R"({"alg":"HS256" })") + "==";
  const std::string payload = token.substr(dot1 + 1, token.rfind('.') - dot1 - 1);
  const std::string input = header + "." + payload;
  EXPECT_EQ(status_of(input + "." + b64url(hmac(EVP_sha256(), kSecret, input))),
            TokenStatus::kMalformed);
}

TEST(AuthToken, NonCanonicalTrailingBitsAreMalformed) {
  // The 43-character signature: its last character carries 4 bits of data and 2 zero bits.
  const std::string token = mint_token("alice", {}, kLater, kSecret);
  std::string t = token;
  constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const size_t value = kAlphabet.find(t.back());
  ASSERT_EQ(value & 3, 0u);
  for (size_t low = 1; low < 4; ++low) {
    t.back() = kAlphabet[value | low];
    EXPECT_EQ(status_of(t), TokenStatus::kMalformed) << t.back();
  }
  // A 16-byte header (22 characters): the last one carries 2 bits and 4 zero bits.
  const std::string header = b64url(R"({"alg":"HS256" })");
  ASSERT_EQ(header.size() % 4, 2u);
  const std::string payload = b64url(claims());
  EXPECT_EQ(status_of(sign(R"({"alg":"HS256" })", claims())), TokenStatus::kOk);
  const size_t last = kAlphabet.find(header.back());
  std::string bad_header = header;
  bad_header.back() = kAlphabet[last | 1];
  const std::string input = bad_header + "." + payload;
  EXPECT_EQ(status_of(input + "." + b64url(hmac(EVP_sha256(), kSecret, input))),
            TokenStatus::kMalformed);
}

TEST(AuthToken, ImpossibleLengthIsMalformed) {
  // A part of length 1 mod 4 cannot be base64.
  const std::string token = mint_token("alice", {}, kLater, kSecret);
  EXPECT_EQ(status_of("e" + token.substr(token.find('.'))), TokenStatus::kMalformed);
  EXPECT_EQ(status_of(token + "AA"), TokenStatus::kMalformed);  // 45 characters
  EXPECT_EQ(status_of(token + "AAAAAA"), TokenStatus::kMalformed);  // 49
  EXPECT_EQ(status_of(token + "A"), TokenStatus::kBadSignature);  // 44: decodes, 33 bytes
}

TEST(AuthToken, WrongNumberOfPartsIsMalformed) {
  const std::string token = mint_token("alice", {}, kLater, kSecret);
  for (std::string_view t : {std::string_view(""), std::string_view("."), std::string_view(".."),
                             std::string_view("..."), std::string_view("abcd"),
                             std::string_view("abcd.abcd")}) {
    EXPECT_EQ(status_of(t), TokenStatus::kMalformed) << t;
  }
  EXPECT_EQ(status_of(token + ".AAAA"), TokenStatus::kMalformed);
  EXPECT_EQ(status_of(token.substr(0, token.rfind('.'))), TokenStatus::kMalformed);
  EXPECT_EQ(status_of(token.substr(token.find('.'))), TokenStatus::kMalformed);  // no header
  EXPECT_EQ(status_of(" " + token), TokenStatus::kMalformed);
  EXPECT_EQ(status_of(token + "\n"), TokenStatus::kMalformed);
}

// ---- claims ----

TEST(AuthToken, BadPayloadJsonIsMalformed) {
  for (std::string_view payload : {"", "{", "[]", "\"alice\"", "null", "{\"sub\":\"alice\",}",
                                   "{\"sub\":\"alice\"} {}", "{\"sub\":\"al\xff\",\"exp\":1}"}) {
    const TokenResult r = verify_token(hs256(payload), kSecret, kNow);
    EXPECT_EQ(r.status, TokenStatus::kMalformed) << payload;
    EXPECT_TRUE(r.subject.empty());
  }
}

TEST(AuthToken, MissingOrInvalidClaimsAreMalformed) {
  const std::string exp = std::to_string(kLater);
  const std::vector<std::string> payloads = {
      "{\"exp\":" + exp + "}",                                        // no sub
      R"({"sub":"alice"})",                                           // no exp
      "{\"sub\":\"\",\"exp\":" + exp + "}",                           // empty sub
      "{\"sub\":\"al ice\",\"exp\":" + exp + "}",                     // space
      "{\"sub\":\"" + std::string(33, 'a') + "\",\"exp\":" + exp + "}",  // too long
      "{\"sub\":\"al\\u0000ice\",\"exp\":" + exp + "}",               // NUL via escape
      "{\"sub\":\"\xc3\xa9\",\"exp\":" + exp + "}",                   // non-ASCII
      "{\"sub\":42,\"exp\":" + exp + "}",
      "{\"sub\":null,\"exp\":" + exp + "}",
      R"({"sub":"alice","exp":"2000000000"})",
      R"({"sub":"alice","exp":-1})",
      R"({"sub":"alice","exp":1.7e9})",
      R"({"sub":"alice","exp":2000000000.5})",
      R"({"sub":"alice","exp":18446744073709551616})",
      R"({"sub":"alice","exp":null})",
      "{\"sub\":\"alice\",\"exp\":" + exp + ",\"nbf\":1.5}",
      "{\"sub\":\"alice\",\"exp\":" + exp + ",\"nbf\":-5}",
      "{\"sub\":\"alice\",\"exp\":" + exp + ",\"rooms\":\"general\"}",
      "{\"sub\":\"alice\",\"exp\":" + exp + ",\"rooms\":[1]}",
      "{\"sub\":\"alice\",\"exp\":" + exp + ",\"rooms\":[\"bad room\"]}",
      "{\"sub\":\"alice\",\"exp\":" + exp + ",\"rooms\":[\"\"]}",
      "{\"sub\":\"alice\",\"exp\":" + exp + ",\"rooms\":[\"#\"]}",
      "{\"sub\":\"alice\",\"exp\":" + exp + ",\"rooms\":[[\"a\"]]}",
      "{\"sub\":\"alice\",\"sub\":\"admin\",\"exp\":" + exp + "}",  // duplicate
      "{\"sub\":\"alice\",\"exp\":1,\"exp\":" + exp + "}",
      "{\"sub\":\"alice\",\"exp\":" + exp + ",\"nbf\":1,\"nbf\":2}",
      "{\"sub\":\"alice\",\"exp\":" + exp + ",\"rooms\":[],\"rooms\":[\"a\"]}",
  };
  for (const std::string& payload : payloads) {
    const TokenResult r = verify_token(hs256(payload), kSecret, kNow);
    EXPECT_EQ(r.status, TokenStatus::kMalformed) << payload;
    EXPECT_FALSE(r.reason.empty()) << payload;
    EXPECT_TRUE(r.subject.empty()) << payload;
    EXPECT_TRUE(r.rooms.empty()) << payload;
  }
}

TEST(AuthToken, UnknownClaimsAreIgnored) {
  const TokenResult r = verify_token(
      hs256(claims(R"(,"iss":"x","aud":["a"],"iat":1,"jti":"q","x":{"y":[1,2,{"z":null}]})")),
      kSecret, kNow);
  EXPECT_EQ(r.status, TokenStatus::kOk);
}

TEST(AuthToken, DeepNestingIsMalformed) {
  std::string deep = std::string(100, '[') + std::string(100, ']');
  EXPECT_EQ(status_of(hs256(claims(",\"x\":" + deep))), TokenStatus::kMalformed);
  deep = std::string(10, '[') + std::string(10, ']');
  EXPECT_EQ(status_of(hs256(claims(",\"x\":" + deep))), TokenStatus::kOk);
}

// ---- size ----

TEST(AuthToken, HugeTokensAreMalformed) {
  const std::string token = mint_token("alice", {}, kLater, kSecret);
  const std::string huge(1 << 20, 'A');
  EXPECT_EQ(verify_token(huge, kSecret, kNow).reason, "token too long");
  EXPECT_EQ(status_of(huge + token), TokenStatus::kMalformed);
  // A well-formed, correctly signed token one byte over the limit.
  std::string filler(10, 'f');
  std::string big;
  for (;;) {
    big = hs256(claims(",\"pad\":\"" + filler + "\""));
    if (big.size() > kMaxTokenBytes) break;
    filler.push_back('f');
  }
  EXPECT_EQ(big.size(), kMaxTokenBytes + 1);
  EXPECT_EQ(status_of(big), TokenStatus::kMalformed);
  filler.pop_back();
  const std::string fits = hs256(claims(",\"pad\":\"" + filler + "\""));
  EXPECT_LE(fits.size(), kMaxTokenBytes);
  EXPECT_EQ(status_of(fits), TokenStatus::kOk);
}

TEST(AuthToken, StatusNames) {
  EXPECT_EQ(token_status_name(TokenStatus::kOk), "ok");
  EXPECT_EQ(token_status_name(TokenStatus::kMalformed), "malformed");
  EXPECT_EQ(token_status_name(TokenStatus::kBadSignature), "bad_signature");
  EXPECT_EQ(token_status_name(TokenStatus::kExpired), "expired");
  EXPECT_EQ(token_status_name(TokenStatus::kNotYetValid), "not_yet_valid");
  EXPECT_EQ(token_status_name(TokenStatus::kWrongAlgorithm), "wrong_algorithm");
}

// ---- extraction ----

// An upgrade request and the parse that views into it: not copyable, so the views cannot
// dangle through a copy (a Request must also outlive any ExtractedToken taken from it).
struct Request {
  std::string bytes;
  protocol::HttpRequest request;

  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;

  explicit Request(std::string head) : bytes(std::move(head)) {
    bytes += "\r\n";
    const auto status = protocol::parse_http_request(bytes, request);
    EXPECT_EQ(status, protocol::HttpParseStatus::kComplete) << bytes;
  }
};

Request upgrade(std::string_view target, std::string_view extra_headers = {}) {
  std::string head = "GET ";
  head += target;
  head += " HTTP/1.1\r\nHost: chat.example.com\r\nUpgrade: websocket\r\n";
  head += extra_headers;
  return Request(head);
}

TEST(ExtractToken, FromAuthorizationBearer) {
  const Request r = upgrade("/chat", "Authorization: Bearer abc.def.ghi\r\n");
  const ExtractedToken t = extract_token(r.request);
  EXPECT_EQ(t.token, "abc.def.ghi");
  EXPECT_EQ(t.source, TokenSource::kAuthorization);
  EXPECT_TRUE(t.subprotocol.empty());
  EXPECT_EQ(extract_token(upgrade("/chat", "authorization: bearer   x.y.z\r\n").request).token,
            "x.y.z");
  EXPECT_EQ(extract_token(upgrade("/chat", "Authorization: BEARER x.y.z\r\n").request).token,
            "x.y.z");
}

TEST(ExtractToken, OtherAuthorizationSchemesAreIgnored) {
  for (std::string_view header : {"Authorization: Basic YWxpY2U6cHc=\r\n",
                                  "Authorization: Bearer\r\n", "Authorization: Bearerx.y.z\r\n",
                                  "Authorization: Bearer \r\n", "Authorization: x.y.z\r\n"}) {
    const Request r = upgrade("/chat", header);
    const ExtractedToken t = extract_token(r.request);
    EXPECT_EQ(t.source, TokenSource::kNone) << header;
    EXPECT_TRUE(t.token.empty()) << header;
  }
}

TEST(ExtractToken, FromSubprotocol) {
  const Request r = upgrade("/chat", "Sec-WebSocket-Protocol: parley.v1, parley.token.abc.def.ghi\r\n");
  const ExtractedToken t = extract_token(r.request);
  EXPECT_EQ(t.token, "abc.def.ghi");
  EXPECT_EQ(t.source, TokenSource::kSubprotocol);
  EXPECT_EQ(t.subprotocol, "parley.token.abc.def.ghi");
  // The echoed protocol is a view into the request, one of the offered entries.
  EXPECT_GE(t.subprotocol.data(), r.bytes.data());
  EXPECT_LE(t.subprotocol.data() + t.subprotocol.size(), r.bytes.data() + r.bytes.size());
}

TEST(ExtractToken, FromASecondSubprotocolHeader) {
  const Request r = upgrade("/chat",
                            "Sec-WebSocket-Protocol: parley.v1\r\n"
                            "sec-websocket-protocol: other ,parley.token.t1.t2.t3 , last\r\n");
  const ExtractedToken t = extract_token(r.request);
  EXPECT_EQ(t.token, "t1.t2.t3");
  EXPECT_EQ(t.subprotocol, "parley.token.t1.t2.t3");
}

TEST(ExtractToken, SubprotocolPrefixIsExact) {
  for (std::string_view header : {"Sec-WebSocket-Protocol: parley.token.\r\n",
                                  "Sec-WebSocket-Protocol: Parley.Token.x.y.z\r\n",
                                  "Sec-WebSocket-Protocol: parley.tokenx.y.z\r\n",
                                  "Sec-WebSocket-Protocol: xparley.token.x.y.z\r\n"}) {
    EXPECT_EQ(extract_token(upgrade("/chat", header).request).source, TokenSource::kNone) << header;
  }
}

TEST(ExtractToken, FromQuery) {
  const Request r = upgrade("/chat?room=a&token=q.r.s&x=1");
  const ExtractedToken t = extract_token(r.request);
  EXPECT_EQ(t.token, "q.r.s");
  EXPECT_EQ(t.source, TokenSource::kQuery);
  EXPECT_EQ(extract_token(upgrade("/chat?token=q.r.s").request).token, "q.r.s");
  EXPECT_EQ(extract_token(upgrade("/chat?token=first&token=second").request).token, "first");
  for (std::string_view target : {"/chat", "/chat?", "/chat?token=", "/chat?token",
                                  "/chat?xtoken=a.b.c", "/chat?tokens=a.b.c", "/chat?Token=a.b.c"}) {
    EXPECT_EQ(extract_token(upgrade(target).request).source, TokenSource::kNone) << target;
  }
}

TEST(ExtractToken, PrecedenceIsHeaderThenSubprotocolThenQuery) {
  const std::string all =
      "Sec-WebSocket-Protocol: parley.token.from.sub.protocol\r\n"
      "Authorization: Bearer from.auth.header\r\n";
  EXPECT_EQ(extract_token(upgrade("/chat?token=from.the.query", all).request).token,
            "from.auth.header");
  EXPECT_EQ(extract_token(upgrade("/chat?token=from.the.query",
                                  "Sec-WebSocket-Protocol: parley.token.from.sub.protocol\r\n")
                              .request)
                .source,
            TokenSource::kSubprotocol);
}

TEST(ExtractToken, ExtractedTokenVerifies) {
  const std::string token = mint_token("carol", {"ops"}, kLater, kSecret);
  for (const std::string& target : {"/chat?token=" + token}) {
    const Request r = upgrade(target, "Sec-WebSocket-Protocol: chat, parley.token." + token + "\r\n");
    const ExtractedToken t = extract_token(r.request);
    EXPECT_EQ(t.source, TokenSource::kSubprotocol);
    const TokenResult v = verify_token(t.token, kSecret, kNow);
    EXPECT_EQ(v.status, TokenStatus::kOk);
    EXPECT_EQ(v.subject, "carol");
  }
}

// ---- secret files ----

class SecretFile : public ::testing::Test {
 protected:
  void SetUp() override {
    char name[] = "/tmp/parley_secret_XXXXXX";
    const int fd = mkstemp(name);
    ASSERT_GE(fd, 0);
    close(fd);
    path_ = name;
  }
  void TearDown() override { std::remove(path_.c_str()); }
  void write(std::string_view bytes) {
    std::FILE* f = std::fopen(path_.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fwrite(bytes.data(), 1, bytes.size(), f);
    std::fclose(f);
  }
  std::string path_;
};

TEST_F(SecretFile, ReadsAndStripsOneNewline) {
  const std::string s(40, 'k');
  std::string secret, error;
  write(s + "\n");
  ASSERT_TRUE(read_token_secret(path_.c_str(), secret, error)) << error;
  EXPECT_EQ(secret, s);
  write(s + "\r\n");
  ASSERT_TRUE(read_token_secret(path_.c_str(), secret, error));
  EXPECT_EQ(secret, s);
  write(s + "\n\n");
  ASSERT_TRUE(read_token_secret(path_.c_str(), secret, error));
  EXPECT_EQ(secret, s + "\n");
  write(std::string("\0\x01\xff", 3) + s);  // binary secrets are kept as they are
  ASSERT_TRUE(read_token_secret(path_.c_str(), secret, error));
  EXPECT_EQ(secret.size(), 43u);
}

TEST_F(SecretFile, RejectsShortMissingAndOddFiles) {
  std::string secret = "unchanged", error;
  write(std::string(31, 'k') + "\n");
  EXPECT_FALSE(read_token_secret(path_.c_str(), secret, error));
  EXPECT_NE(error.find("31 bytes"), std::string::npos) << error;
  EXPECT_NE(error.find(path_), std::string::npos) << error;
  EXPECT_EQ(secret, "unchanged");
  write("");
  EXPECT_FALSE(read_token_secret(path_.c_str(), secret, error));
  write(std::string(70 * 1024, 'k'));
  EXPECT_FALSE(read_token_secret(path_.c_str(), secret, error));
  EXPECT_NE(error.find("64 KiB"), std::string::npos) << error;
  EXPECT_FALSE(read_token_secret("/nonexistent/parley/secret", secret, error));
  EXPECT_NE(error.find("cannot open"), std::string::npos) << error;
  EXPECT_FALSE(read_token_secret("/tmp", secret, error));
  EXPECT_NE(error.find("not a regular file"), std::string::npos) << error;
}

}  // namespace
}  // namespace chat
