#pragma once
// Signed bearer tokens for /chat: JWT (RFC 7519) in JWS compact form (RFC 7515 7.1) with HS256
// (HMAC-SHA256, RFC 7518 3.2) only. header.payload.signature, each base64url without padding.
// Pure apart from read_token_secret: no I/O, no global state; safe to call from any thread.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/http_request.h"

namespace chat {

// Tokens longer than this are rejected unread (kMalformed): bounds decoding and JSON work per
// handshake, and stays well inside the request-head limit (protocol::kMaxRequestHead).
inline constexpr size_t kMaxTokenBytes = 4096;
// RFC 7518 3.2: an HS256 key must be at least as long as the hash output. verify_token and
// mint_token do not enforce it (tests use short keys); read_token_secret does.
inline constexpr size_t kMinSecretBytes = 32;
// The Sec-WebSocket-Protocol prefix that carries a token: "parley.token.<token>".
inline constexpr std::string_view kTokenSubprotocolPrefix = "parley.token.";

enum class TokenStatus : uint8_t {
  kOk,
  kMalformed,       // not three strict base64url parts, too long, bad JSON, missing/invalid claims
  kBadSignature,    // signature does not match this secret (or the secret is empty)
  kExpired,         // now_s >= exp (RFC 7519 4.1.4)
  kNotYetValid,     // now_s < nbf (RFC 7519 4.1.5)
  kWrongAlgorithm,  // header "alg" absent or not exactly "HS256" ("none" included)
};

// A stable lower-case name for `status` ("ok", "malformed", "bad_signature", "expired",
// "not_yet_valid", "wrong_algorithm").
std::string_view token_status_name(TokenStatus status);

struct TokenResult {
  TokenStatus status = TokenStatus::kMalformed;
  // Why, for logs and tools (a static string, never contains token bytes); empty when kOk.
  std::string_view reason;
  // The fields below are filled only when status is kOk, kExpired or kNotYetValid (the signature
  // was good); otherwise they stay empty/zero. Never trust them unless status == kOk.
  std::string subject;             // "sub": a valid user name (is_valid_user_name)
  std::vector<std::string> rooms;  // "rooms": valid room names, a leading '#' removed
  bool has_rooms = false;          // "rooms" was present (an empty list means: no room at all)
  uint64_t expires_at = 0;         // "exp", seconds since the epoch
  uint64_t not_before = 0;         // "nbf", 0 when absent
};

// Verifies `token` against `secret` at time `now_s` (seconds since the epoch). Order: size and
// base64url syntax of all three parts, the header (alg must be HS256; "crit" is refused),
// the signature (constant time), and only then the claims JSON, so unauthenticated input never
// reaches the claims parser. Claims: "sub" and "exp" required, "nbf" and "rooms" optional,
// others ignored; NumericDates must be non-negative integers. Duplicate known keys -> kMalformed.
// No clock-skew leeway: pass now_s adjusted if one is wanted.
TokenResult verify_token(std::string_view token, std::string_view secret, uint64_t now_s);

// What mint_token signs. Zero timestamps and an absent rooms list are left out of the payload.
struct TokenClaims {
  std::string subject;
  std::optional<std::vector<std::string>> rooms;
  uint64_t expires_at = 0;
  uint64_t not_before = 0;
  uint64_t issued_at = 0;
};

// Returns a signed HS256 token for `claims` (header {"alg":"HS256","typ":"JWT"}), or an empty
// string when the subject or a room name is invalid, exp is 0, the secret is empty, or the
// token would exceed kMaxTokenBytes.
std::string mint_token(const TokenClaims& claims, std::string_view secret);

// Shorthand: an empty `rooms` leaves the claim out (the token does not restrict rooms).
std::string mint_token(std::string_view subject, const std::vector<std::string>& rooms,
                       uint64_t expires_at, std::string_view secret);

enum class TokenSource : uint8_t { kNone, kAuthorization, kSubprotocol, kQuery };

struct ExtractedToken {
  std::string_view token;        // a view into the request; empty when none was found
  TokenSource source = TokenSource::kNone;
  // For kSubprotocol: the offered protocol that carried the token ("parley.token.<token>").
  // RFC 6455 4.2.2 lets the server select only a protocol the client offered, and a browser
  // fails the connection otherwise; echo this one unless the client offered another the server
  // speaks. Empty for other sources.
  std::string_view subprotocol;
};

// Finds the token in an upgrade request, first match wins:
// 1. "Authorization: Bearer <token>" (scheme case-insensitive, RFC 6750 2.1);
// 2. a Sec-WebSocket-Protocol entry "parley.token.<token>" (all such headers are searched;
//    this is how a browser's WebSocket can send one);
// 3. the query parameter "token" (RFC 6750 2.3). Taken verbatim, not percent-decoded: tokens
//    are base64url and '.', which need no escaping. Beware that URLs end up in access logs.
// Views point into `request`'s bytes. Does not verify anything.
ExtractedToken extract_token(const protocol::HttpRequest& request);

// Reads an HS256 secret from `path`: the file's bytes, less one trailing "\n" or "\r\n" (so
// `echo s3cret > file` works). Fails (false, `error` set to one line naming the file) when the
// file cannot be read, is not a regular file, is larger than 64 KiB, or the secret is shorter
// than kMinSecretBytes.
bool read_token_secret(const char* path, std::string& secret, std::string& error);

}  // namespace chat
