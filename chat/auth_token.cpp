// HS256 JWT verification and minting. Security notes:
// - Only HS256 is accepted, whatever the header asks for, so there is no algorithm confusion
//   ("none", RS256-with-the-secret-as-public-key, ...): the header is read only to refuse others.
// - The claims JSON is parsed only after the signature checks out; before that, only the
//   header (a few bytes, bounded) meets the JSON parser.
// - The signature comparison is constant time (CRYPTO_memcmp) over a fixed 32 bytes.
// - base64url is decoded strictly (no padding, no whitespace, canonical trailing bits), so each
//   token has exactly one spelling and nothing can be smuggled past a cache or a log filter.
// - Duplicate known keys are refused: JSON parsers disagree on which one wins (RFC 8259 4).
#include "chat/auth_token.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <simdjson.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "chat/chat_codec.h"

namespace chat {

namespace {

constexpr size_t kSignatureBytes = 32;  // SHA-256 output
// The longest decoded header or payload: 3 bytes per 4 characters of a kMaxTokenBytes token.
constexpr size_t kMaxDecodedBytes = kMaxTokenBytes / 4 * 3;
// Headers and claims are flat; a little nesting in ignored fields is tolerated.
constexpr size_t kMaxJsonDepth = 16;
constexpr size_t kMaxSecretFileBytes = 64 * 1024;

constexpr char kBase64UrlAlphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

constexpr uint8_t kInvalid = 0xff;

constexpr std::array<uint8_t, 256> make_decode_table() {
  std::array<uint8_t, 256> table{};
  for (auto& v : table) v = kInvalid;
  for (uint8_t i = 0; i < 64; ++i) table[static_cast<unsigned char>(kBase64UrlAlphabet[i])] = i;
  return table;
}
constexpr std::array<uint8_t, 256> kDecode = make_decode_table();

// Strict base64url without padding (RFC 4648 5, RFC 7515 2): only the 64 alphabet characters,
// a length that is not 1 mod 4, and zero bits in the unused low bits of the last character
// (RFC 4648 3.5), so every byte string has exactly one accepted encoding. Sets `out_size` to
// the decoded size, and writes the bytes to `out` when they fit in `cap`; false on any
// violation.
bool decode_base64url(std::string_view in, unsigned char* out, size_t cap, size_t& out_size) {
  const size_t tail = in.size() % 4;
  if (tail == 1) return false;
  const size_t size = in.size() / 4 * 3 + (tail == 0 ? 0 : tail - 1);
  unsigned char discard[3];
  const bool write = size <= cap;
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  size_t o = 0;
  size_t i = 0;
  for (; i + 4 <= in.size(); i += 4) {
    const uint32_t a = kDecode[p[i]], b = kDecode[p[i + 1]], c = kDecode[p[i + 2]],
                   d = kDecode[p[i + 3]];
    if (((a | b | c | d) & 0xc0) != 0) return false;  // kInvalid has these bits set
    const uint32_t v = a << 18 | b << 12 | c << 6 | d;
    unsigned char* dst = write ? out + o : discard;
    dst[0] = static_cast<unsigned char>(v >> 16);
    dst[1] = static_cast<unsigned char>(v >> 8);
    dst[2] = static_cast<unsigned char>(v);
    o += 3;
  }
  if (tail == 2) {
    const uint32_t a = kDecode[p[i]], b = kDecode[p[i + 1]];
    if (((a | b) & 0xc0) != 0 || (b & 0x0f) != 0) return false;
    if (write) out[o] = static_cast<unsigned char>(a << 2 | b >> 4);
    o += 1;
  } else if (tail == 3) {
    const uint32_t a = kDecode[p[i]], b = kDecode[p[i + 1]], c = kDecode[p[i + 2]];
    if (((a | b | c) & 0xc0) != 0 || (c & 0x03) != 0) return false;
    if (write) {
      out[o] = static_cast<unsigned char>(a << 2 | b >> 4);
      out[o + 1] = static_cast<unsigned char>(b << 4 | c >> 2);
    }
    o += 2;
  }
  out_size = o;
  return true;
}

void append_base64url(std::string& out, const unsigned char* in, size_t size) {
  size_t i = 0;
  for (; i + 3 <= size; i += 3) {
    const uint32_t v = uint32_t{in[i]} << 16 | uint32_t{in[i + 1]} << 8 | in[i + 2];
    out.push_back(kBase64UrlAlphabet[v >> 18]);
    out.push_back(kBase64UrlAlphabet[(v >> 12) & 63]);
    out.push_back(kBase64UrlAlphabet[(v >> 6) & 63]);
    out.push_back(kBase64UrlAlphabet[v & 63]);
  }
  if (size - i == 1) {
    const uint32_t v = uint32_t{in[i]} << 16;
    out.push_back(kBase64UrlAlphabet[v >> 18]);
    out.push_back(kBase64UrlAlphabet[(v >> 12) & 63]);
  } else if (size - i == 2) {
    const uint32_t v = uint32_t{in[i]} << 16 | uint32_t{in[i + 1]} << 8;
    out.push_back(kBase64UrlAlphabet[v >> 18]);
    out.push_back(kBase64UrlAlphabet[(v >> 12) & 63]);
    out.push_back(kBase64UrlAlphabet[(v >> 6) & 63]);
  }
}

void append_base64url(std::string& out, std::string_view in) {
  append_base64url(out, reinterpret_cast<const unsigned char*>(in.data()), in.size());
}

// HMAC-SHA256 of `data` under `secret`. The secret must not be empty (callers check).
bool hmac_sha256(std::string_view secret, std::string_view data,
                 unsigned char out[kSignatureBytes]) {
  if (secret.size() > static_cast<size_t>(INT32_MAX)) return false;
  unsigned int size = 0;
  const unsigned char* md =
      HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &size);
  return md != nullptr && size == kSignatureBytes;
}

// A decoded header or payload with the zeroed tail simdjson reads past the end.
struct PaddedJson {
  std::array<unsigned char, kMaxDecodedBytes + simdjson::SIMDJSON_PADDING> bytes{};
  size_t size = 0;

  bool decode(std::string_view part) {
    // A part of a kMaxTokenBytes token always fits.
    if (!decode_base64url(part, bytes.data(), kMaxDecodedBytes, size) || size > kMaxDecodedBytes) {
      return false;
    }
    std::memset(bytes.data() + size, 0, simdjson::SIMDJSON_PADDING);
    return true;
  }
};

TokenResult fail(TokenStatus status, std::string_view reason) {
  TokenResult r;
  r.status = status;
  r.reason = reason;
  return r;
}

// Parses `json` into `object`; false when it is not valid JSON or not an object.
bool parse_object(simdjson::dom::parser& parser, const PaddedJson& json,
                  simdjson::dom::object& object) {
  simdjson::dom::element root;
  if (parser.parse(json.bytes.data(), json.size, false).get(root) != simdjson::SUCCESS) {
    return false;
  }
  return root.get_object().get(object) == simdjson::SUCCESS;
}

// RFC 7515 4.1: the JOSE header. Returns kOk or the failure.
TokenResult check_header(simdjson::dom::parser& parser, const PaddedJson& json) {
  simdjson::dom::object object;
  if (!parse_object(parser, json, object)) {
    return fail(TokenStatus::kMalformed, "header is not a JSON object");
  }
  std::string_view alg;
  std::string_view typ;
  bool has_alg = false, has_typ = false, has_crit = false;
  for (simdjson::dom::key_value_pair member : object) {
    if (member.key == "alg") {
      if (has_alg) return fail(TokenStatus::kMalformed, "duplicate \"alg\" in header");
      has_alg = true;
      if (member.value.get_string().get(alg) != simdjson::SUCCESS) {
        return fail(TokenStatus::kMalformed, "header \"alg\" is not a string");
      }
    } else if (member.key == "typ") {
      if (has_typ) return fail(TokenStatus::kMalformed, "duplicate \"typ\" in header");
      has_typ = true;
      if (member.value.get_string().get(typ) != simdjson::SUCCESS) {
        return fail(TokenStatus::kMalformed, "header \"typ\" is not a string");
      }
    } else if (member.key == "crit") {
      has_crit = true;
    }
  }
  if (!has_alg) return fail(TokenStatus::kWrongAlgorithm, "header has no \"alg\"");
  // RFC 7515 4.1.1: "alg" is case-sensitive. RFC 8725 2.1, 3.1: accept only the one we use.
  if (alg != "HS256") return fail(TokenStatus::kWrongAlgorithm, "algorithm is not HS256");
  // RFC 7519 5.1: "typ" is a media type, compared case-insensitively; only JWT is ours.
  if (has_typ && !protocol::equals_ignore_case(typ, "JWT")) {
    return fail(TokenStatus::kMalformed, "header \"typ\" is not JWT");
  }
  // RFC 7515 4.1.11: extensions listed in "crit" must be understood; we understand none.
  if (has_crit) return fail(TokenStatus::kMalformed, "header \"crit\" is not supported");
  return fail(TokenStatus::kOk, {});
}

// RFC 7519 2: NumericDate. Only non-negative integers (no fractions, no exponents).
bool read_numeric_date(simdjson::dom::element value, uint64_t& out) {
  return value.get_uint64().get(out) == simdjson::SUCCESS;
}

// Reads the claims into `r` (status left as is on success).
bool read_claims(simdjson::dom::parser& parser, const PaddedJson& json, TokenResult& r) {
  simdjson::dom::object object;
  auto malformed = [&](std::string_view reason) {
    r.status = TokenStatus::kMalformed;
    r.reason = reason;
    return false;
  };
  if (!parse_object(parser, json, object)) return malformed("payload is not a JSON object");
  std::string_view sub;
  bool has_sub = false, has_exp = false, has_nbf = false;
  for (simdjson::dom::key_value_pair member : object) {
    if (member.key == "sub") {
      if (has_sub) return malformed("duplicate \"sub\"");
      has_sub = true;
      if (member.value.get_string().get(sub) != simdjson::SUCCESS) {
        return malformed("\"sub\" is not a string");
      }
    } else if (member.key == "exp") {
      if (has_exp) return malformed("duplicate \"exp\"");
      has_exp = true;
      if (!read_numeric_date(member.value, r.expires_at)) {
        return malformed("\"exp\" is not a non-negative integer");
      }
    } else if (member.key == "nbf") {
      if (has_nbf) return malformed("duplicate \"nbf\"");
      has_nbf = true;
      if (!read_numeric_date(member.value, r.not_before)) {
        return malformed("\"nbf\" is not a non-negative integer");
      }
    } else if (member.key == "rooms") {
      if (r.has_rooms) return malformed("duplicate \"rooms\"");
      r.has_rooms = true;
      simdjson::dom::array rooms;
      if (member.value.get_array().get(rooms) != simdjson::SUCCESS) {
        return malformed("\"rooms\" is not an array");
      }
      for (simdjson::dom::element item : rooms) {
        std::string_view room;
        if (item.get_string().get(room) != simdjson::SUCCESS || !is_valid_room_name(room)) {
          return malformed("\"rooms\" holds something other than room names");
        }
        // The chat protocol treats "#general" and "general" as one room.
        if (room.front() == '#') room.remove_prefix(1);
        r.rooms.emplace_back(room);
      }
    }
  }
  if (!has_sub) return malformed("missing \"sub\"");
  if (!is_valid_user_name(sub)) return malformed("\"sub\" is not a valid user name");
  if (!has_exp) return malformed("missing \"exp\"");
  r.subject.assign(sub);
  return true;
}

}  // namespace

std::string_view token_status_name(TokenStatus status) {
  switch (status) {
    case TokenStatus::kOk: return "ok";
    case TokenStatus::kMalformed: return "malformed";
    case TokenStatus::kBadSignature: return "bad_signature";
    case TokenStatus::kExpired: return "expired";
    case TokenStatus::kNotYetValid: return "not_yet_valid";
    case TokenStatus::kWrongAlgorithm: return "wrong_algorithm";
  }
  return "unknown";
}

TokenResult verify_token(std::string_view token, std::string_view secret, uint64_t now_s) {
  if (token.empty()) return fail(TokenStatus::kMalformed, "empty token");
  if (token.size() > kMaxTokenBytes) return fail(TokenStatus::kMalformed, "token too long");
  const size_t dot1 = token.find('.');
  if (dot1 == std::string_view::npos) return fail(TokenStatus::kMalformed, "not three parts");
  const size_t dot2 = token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return fail(TokenStatus::kMalformed, "not three parts");
  }
  const std::string_view header_part = token.substr(0, dot1);
  const std::string_view payload_part = token.substr(dot1 + 1, dot2 - dot1 - 1);
  const std::string_view signature_part = token.substr(dot2 + 1);
  if (header_part.empty() || payload_part.empty()) {
    return fail(TokenStatus::kMalformed, "empty header or payload");
  }

  // Decode everything up front: a syntax error is kMalformed whatever the signature says.
  // Both buffers together are ~6 KiB of stack.
  PaddedJson header, payload;
  if (!header.decode(header_part)) return fail(TokenStatus::kMalformed, "header is not base64url");
  if (!payload.decode(payload_part)) {
    return fail(TokenStatus::kMalformed, "payload is not base64url");
  }
  // A signature of the wrong length is syntax-checked but not stored.
  unsigned char signature[kSignatureBytes];
  size_t signature_size = 0;
  if (!decode_base64url(signature_part, signature, sizeof signature, signature_size)) {
    return fail(TokenStatus::kMalformed, "signature is not base64url");
  }

  simdjson::dom::parser parser;
  if (parser.allocate(kMaxDecodedBytes, kMaxJsonDepth) != simdjson::SUCCESS) {
    return fail(TokenStatus::kMalformed, "out of memory");
  }
  TokenResult r = check_header(parser, header);
  if (r.status != TokenStatus::kOk) return r;

  // An empty secret would let anyone mint tokens; refuse rather than "verify".
  if (secret.empty()) return fail(TokenStatus::kBadSignature, "no secret configured");
  if (signature_size != kSignatureBytes) {
    return fail(TokenStatus::kBadSignature, "signature is not 32 bytes");
  }
  unsigned char expected[kSignatureBytes];
  // RFC 7515 5.2: the signing input is the encoded header and payload, as sent.
  if (!hmac_sha256(secret, token.substr(0, dot2), expected)) {
    return fail(TokenStatus::kBadSignature, "HMAC failed");
  }
  if (CRYPTO_memcmp(expected, signature, kSignatureBytes) != 0) {
    return fail(TokenStatus::kBadSignature, "signature mismatch");
  }

  if (!read_claims(parser, payload, r)) return fail(r.status, r.reason);  // no half-read claims
  // RFC 7519 4.1.4: valid only while now is before exp. 4.1.5: not before nbf.
  if (now_s >= r.expires_at) {
    r.status = TokenStatus::kExpired;
    r.reason = "token expired";
  } else if (now_s < r.not_before) {
    r.status = TokenStatus::kNotYetValid;
    r.reason = "token not valid yet (nbf)";
  }
  return r;
}

std::string mint_token(const TokenClaims& claims, std::string_view secret) {
  if (secret.empty() || claims.expires_at == 0 || !is_valid_user_name(claims.subject)) return {};
  std::string payload = "{\"sub\":";
  append_json_string(payload, claims.subject);
  if (claims.rooms) {
    payload += ",\"rooms\":[";
    bool first = true;
    for (const std::string& room : *claims.rooms) {
      if (!is_valid_room_name(room)) return {};
      if (!first) payload.push_back(',');
      first = false;
      append_json_string(payload, room);
    }
    payload.push_back(']');
  }
  if (claims.issued_at != 0) payload += ",\"iat\":" + std::to_string(claims.issued_at);
  if (claims.not_before != 0) payload += ",\"nbf\":" + std::to_string(claims.not_before);
  payload += ",\"exp\":" + std::to_string(claims.expires_at) + "}";

  std::string token;
  append_base64url(token, R"({"alg":"HS256","typ":"JWT"})");
  token.push_back('.');
  append_base64url(token, payload);
  unsigned char signature[kSignatureBytes];
  if (!hmac_sha256(secret, token, signature)) return {};
  token.push_back('.');
  append_base64url(token, signature, sizeof signature);
  if (token.size() > kMaxTokenBytes) return {};
  return token;
}

std::string mint_token(std::string_view subject, const std::vector<std::string>& rooms,
                       uint64_t expires_at, std::string_view secret) {
  TokenClaims claims;
  claims.subject.assign(subject);
  if (!rooms.empty()) claims.rooms = rooms;
  claims.expires_at = expires_at;
  return mint_token(claims, secret);
}

namespace {

constexpr std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

ExtractedToken extract_token(const protocol::HttpRequest& request) {
  // RFC 6750 2.1: credentials = "Bearer" 1*SP b64token; RFC 9110 11.1: the scheme is
  // case-insensitive.
  const std::string_view auth = request.header("Authorization");
  if (auth.size() > 7 && protocol::equals_ignore_case(auth.substr(0, 6), "Bearer") &&
      auth[6] == ' ') {
    const std::string_view token = trim_ows(auth.substr(7));
    if (!token.empty()) return {token, TokenSource::kAuthorization, {}};
  }
  // RFC 6455 4.1: Sec-WebSocket-Protocol is a comma-separated list and may be repeated.
  for (size_t i = 0; i < request.header_count; ++i) {
    if (!protocol::equals_ignore_case(request.headers[i].name, "Sec-WebSocket-Protocol")) continue;
    std::string_view list = request.headers[i].value;
    while (!list.empty()) {
      const size_t comma = list.find(',');
      const std::string_view item = trim_ows(list.substr(0, comma));
      list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
      if (item.size() > kTokenSubprotocolPrefix.size() &&
          item.substr(0, kTokenSubprotocolPrefix.size()) == kTokenSubprotocolPrefix) {
        return {item.substr(kTokenSubprotocolPrefix.size()), TokenSource::kSubprotocol, item};
      }
    }
  }
  std::string_view query = request.query;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (pair.size() > 6 && pair.substr(0, 6) == "token=") {
      return {pair.substr(6), TokenSource::kQuery, {}};
    }
  }
  return {};
}

bool read_token_secret(const char* path, std::string& secret, std::string& error) {
  const std::string name = path;
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    error = "cannot open secret file " + name + ": " + std::strerror(errno);
    return false;
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    error = "secret file " + name + " is not a regular file";
    return false;
  }
  if (static_cast<uint64_t>(st.st_size) > kMaxSecretFileBytes) {
    ::close(fd);
    error = "secret file " + name + " is larger than 64 KiB";
    return false;
  }
  // One byte more than the size, to notice a file that grew meanwhile.
  std::string bytes(static_cast<size_t>(st.st_size) + 1, '\0');
  size_t have = 0;
  while (have < bytes.size()) {
    const ssize_t n = ::read(fd, bytes.data() + have, bytes.size() - have);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int saved = errno;
      ::close(fd);
      error = "cannot read secret file " + name + ": " + std::strerror(saved);
      return false;
    }
    if (n == 0) break;
    have += static_cast<size_t>(n);
  }
  ::close(fd);
  if (have > static_cast<size_t>(st.st_size)) {
    OPENSSL_cleanse(bytes.data(), bytes.size());
    error = "secret file " + name + " changed while being read";
    return false;
  }
  bytes.resize(have);
  if (!bytes.empty() && bytes.back() == '\n') {
    bytes.pop_back();
    if (!bytes.empty() && bytes.back() == '\r') bytes.pop_back();
  }
  if (bytes.size() < kMinSecretBytes) {
    error = "secret in " + name + " is " + std::to_string(bytes.size()) +
            " bytes; HS256 needs at least " + std::to_string(kMinSecretBytes) +
            " (e.g. head -c 32 /dev/urandom | base64 > " + name + ")";
    OPENSSL_cleanse(bytes.data(), bytes.size());
    return false;
  }
  secret = std::move(bytes);
  return true;
}

}  // namespace chat
