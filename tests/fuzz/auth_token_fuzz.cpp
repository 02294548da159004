// libFuzzer target for token verification (chat/auth_token.h). The first byte picks a mode, so
// one corpus reaches every layer, including the ones behind the signature check that random
// bytes could never pass:
//   0: the rest is a token, verified as is;
//   1: the rest is "<header JSON>\0<payload JSON>": the harness encodes and signs it;
//   2: the rest is "<header.payload text>": the harness appends a valid signature over it;
//   3: the rest is an HTTP request head: extract_token, then verify what it found.
// Checked: no crash or sanitizer report, claims only come out of a good signature, an
// accepted token honours its claims' rules, and re-minting accepted claims round-trips.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "chat/auth_token.h"
#include "chat/chat_codec.h"
#include "protocol/http_request.h"

namespace {

constexpr std::string_view kSecret = "fuzzing-secret-fuzzing-secret-32";
constexpr uint64_t kNow = 1'700'000'000;

void require(bool ok) {
  if (!ok) std::abort();
}

std::string b64url(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t bits = 0;
  int have = 0;
  for (unsigned char c : in) {
    bits = (bits << 8) | c;
    have += 8;
    while (have >= 6) {
      have -= 6;
      out.push_back(kAlphabet[(bits >> have) & 63]);
    }
  }
  if (have > 0) out.push_back(kAlphabet[(bits << (6 - have)) & 63]);
  return out;
}

std::string signed_token(std::string_view signing_input) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  HMAC(EVP_sha256(), kSecret.data(), static_cast<int>(kSecret.size()),
       reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size(), mac,
       &size);
  std::string token(signing_input);
  token.push_back('.');
  token += b64url(std::string_view(reinterpret_cast<const char*>(mac), size));
  return token;
}

void check(std::string_view token, uint64_t now) {
  const chat::TokenResult r = chat::verify_token(token, kSecret, now);
  require(static_cast<uint8_t>(r.status) <= static_cast<uint8_t>(chat::TokenStatus::kWrongAlgorithm));
  require(r.status == chat::TokenStatus::kOk || !r.reason.empty());
  const bool signature_ok = r.status == chat::TokenStatus::kOk ||
                            r.status == chat::TokenStatus::kExpired ||
                            r.status == chat::TokenStatus::kNotYetValid;
  if (!signature_ok) {
    require(r.subject.empty() && r.rooms.empty() && r.expires_at == 0 && r.not_before == 0);
    return;
  }
  require(token.size() <= chat::kMaxTokenBytes);
  require(chat::is_valid_user_name(r.subject));
  for (const std::string& room : r.rooms) {
    require(chat::is_valid_room_name(room) && room.front() != '#');
  }
  if (!r.has_rooms) require(r.rooms.empty());
  // Another secret never accepts what this one signed.
  require(chat::verify_token(token, "another-secret-another-secret-32", now).status ==
          chat::TokenStatus::kBadSignature);
  if (r.status != chat::TokenStatus::kOk) {
    require(r.status == chat::TokenStatus::kExpired ? now >= r.expires_at : now < r.not_before);
    return;
  }
  require(now < r.expires_at && now >= r.not_before);
  // Accepted claims survive a mint/verify round trip.
  chat::TokenClaims claims;
  claims.subject = r.subject;
  if (r.has_rooms) claims.rooms = r.rooms;
  claims.expires_at = r.expires_at;
  claims.not_before = r.not_before;
  const std::string again = chat::mint_token(claims, kSecret);
  if (again.empty()) return;  // the re-encoding may be longer than kMaxTokenBytes
  const chat::TokenResult r2 = chat::verify_token(again, kSecret, now);
  require(r2.status == chat::TokenStatus::kOk && r2.subject == r.subject && r2.rooms == r.rooms &&
          r2.has_rooms == r.has_rooms && r2.expires_at == r.expires_at &&
          r2.not_before == r.not_before);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = bytes[0] % 4;
  const std::string_view input(reinterpret_cast<const char*>(bytes) + 1, size - 1);
  // A clock that varies with the input, so exp/nbf boundaries get hit from both sides.
  const uint64_t now = kNow + (bytes[0] >> 2) * 1000;
  switch (mode) {
    case 0:
      check(input, now);
      break;
    case 1: {
      const size_t nul = input.find('\0');
      if (nul == std::string_view::npos) return 0;
      check(signed_token(b64url(input.substr(0, nul)) + "." + b64url(input.substr(nul + 1))), now);
      break;
    }
    case 2:
      check(signed_token(input), now);
      break;
    case 3: {
      static protocol::HttpRequest request;
      if (protocol::parse_http_request(input, request) != protocol::HttpParseStatus::kComplete) {
        return 0;
      }
      const chat::ExtractedToken t = chat::extract_token(request);
      const char* begin = input.data();
      const char* end = begin + input.size();
      require(t.source == chat::TokenSource::kNone ? t.token.empty() : !t.token.empty());
      if (!t.token.empty()) require(t.token.data() >= begin && t.token.data() + t.token.size() <= end);
      if (t.source == chat::TokenSource::kSubprotocol) {
        require(t.subprotocol.size() == chat::kTokenSubprotocolPrefix.size() + t.token.size());
        require(t.subprotocol.data() + chat::kTokenSubprotocolPrefix.size() == t.token.data());
      } else {
        require(t.subprotocol.empty());
      }
      check(t.token, now);
      break;
    }
  }
  return 0;
}
