#include "protocol/handshake.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <cstring>

namespace protocol {
namespace {

// RFC 6455 1.3: the GUID appended to the client's key before hashing.
constexpr std::string_view kWebSocketGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

// SHA-1, fetched from OpenSSL's providers once. SHA1() and EVP_sha1() look the algorithm up
// by name on every call (a locked store, a name hash): about 2-3 times the cost of hashing the
// 60 bytes of a key. Null if no provider offers SHA-1; the digests then come out zeroed.
const EVP_MD* sha1_digest() {
  static EVP_MD* const kSha1 = EVP_MD_fetch(nullptr, "SHA1", nullptr);
  return kSha1;
}

constexpr bool is_base64_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

// RFC 6455 4.2.1 item 5: the key is a base64-encoded 16-byte value. 16 bytes encode as 22
// alphabet characters plus "==" (RFC 4648 4). The unused low bits of the 22nd character are not
// required to be zero: we only hash the key as text, so a non-canonical encoding harms nothing.
bool valid_key(std::string_view key) {
  if (key.size() != 24 || key[22] != '=' || key[23] != '=') return false;
  for (size_t i = 0; i < 22; ++i) {
    if (!is_base64_char(key[i])) return false;
  }
  return true;
}

// RFC 9110 5.3: several field lines with one name are one comma-joined list, so a token may sit
// in any of them ("Connection: keep-alive" then "Connection: Upgrade").
bool any_header_has_token(const HttpRequest& request, std::string_view name,
                          std::string_view token) {
  for (size_t i = 0; i < request.header_count; ++i) {
    if (equals_ignore_case(request.headers[i].name, name) &&
        header_has_token(request.headers[i].value, token)) {
      return true;
    }
  }
  return false;
}

bool has_line_break(std::string_view s) {
  return s.find_first_of("\r\n") != std::string_view::npos;
}

// Appends into a fixed buffer; once anything fails to fit, every later append is refused too,
// so one check at the end suffices.
class Writer {
 public:
  Writer(char* out, size_t cap) : out_(out), cap_(cap) {}
  void put(std::string_view s) {
    if (overflow_ || s.size() > cap_ - len_) {
      overflow_ = true;
      return;
    }
    if (!s.empty()) std::memcpy(out_ + len_, s.data(), s.size());
    len_ += s.size();
  }
  void put_uint(size_t v) {
    char digits[20];
    size_t n = 0;
    do {
      digits[sizeof digits - 1 - n++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    put(std::string_view(digits + sizeof digits - n, n));
  }
  size_t result() const { return overflow_ ? 0 : len_; }

 private:
  char* out_;
  size_t cap_;
  size_t len_ = 0;
  bool overflow_ = false;
};

// What check_upgrade_request needs from the headers. The first occurrence wins for single
// values; Upgrade and Connection may be split over several lines (RFC 9110 5.3).
struct UpgradeFields {
  size_t hosts = 0;
  size_t versions = 0;
  size_t keys = 0;
  bool upgrade_websocket = false;
  bool connection_upgrade = false;
  bool body = false;  // Transfer-Encoding, or a Content-Length other than 0
  std::string_view version;
  std::string_view key;
  std::string_view origin;
  std::string_view protocols;
  std::string_view extensions;

  void add(const HttpHeader& h) {
    // Dispatch on length first: most browser headers match none of these and cost one compare.
    // A parsed value never has a null data(), so null means "not seen yet".
    switch (h.name.size()) {
      case 4:
        if (equals_ignore_case(h.name, "Host")) ++hosts;
        break;
      case 6:
        if (origin.data() == nullptr && equals_ignore_case(h.name, "Origin")) origin = h.value;
        break;
      case 7:
        if (equals_ignore_case(h.name, "Upgrade") && header_has_token(h.value, "websocket")) {
          upgrade_websocket = true;
        }
        break;
      case 10:
        if (equals_ignore_case(h.name, "Connection") && header_has_token(h.value, "Upgrade")) {
          connection_upgrade = true;
        }
        break;
      case 14:
        // Anything but a plain 0 announces (or garbles) a body.
        if (equals_ignore_case(h.name, "Content-Length") && h.value != "0") body = true;
        break;
      case 17:
        if (equals_ignore_case(h.name, "Sec-WebSocket-Key")) {
          if (keys++ == 0) key = h.value;
        } else if (equals_ignore_case(h.name, "Transfer-Encoding")) {
          body = true;
        }
        break;
      case 21:
        if (equals_ignore_case(h.name, "Sec-WebSocket-Version") && versions++ == 0)
          version = h.value;
        break;
      case 22:
        if (protocols.data() == nullptr && equals_ignore_case(h.name, "Sec-WebSocket-Protocol")) {
          protocols = h.value;
        }
        break;
      case 24:
        if (extensions.data() == nullptr &&
            equals_ignore_case(h.name, "Sec-WebSocket-Extensions")) {
          extensions = h.value;
        }
        break;
      default: break;
    }
  }
};

UpgradeCheck reject(UpgradeCheck check, int status, std::string_view reason) {
  check.status = status;
  check.reason = reason;
  check.key = {};
  return check;
}

}  // namespace

bool is_upgrade_request(const HttpRequest& request) {
  return any_header_has_token(request, "Upgrade", "websocket");
}

UpgradeCheck check_upgrade_request(const HttpRequest& request) {
  // One pass over the headers instead of a lookup per rule: a browser sends a dozen or more.
  UpgradeFields f;
  for (size_t i = 0; i < request.header_count; ++i) f.add(request.headers[i]);

  UpgradeCheck check;
  check.origin = f.origin;
  check.protocols = f.protocols;
  check.extensions = f.extensions;

  // RFC 6455 4.2.1 item 1: an HTTP/1.1 or higher GET request. RFC 9110 9.1: methods are
  // case-sensitive, so "get" is not GET.
  if (request.method != "GET") return reject(check, 405, "method must be GET");
  if (request.version_minor < 1) return reject(check, 400, "HTTP/1.1 or later required");
  // RFC 6455 4.2.1 item 2; RFC 9112 3.2: no Host, or more than one, is a 400.
  if (f.hosts == 0) return reject(check, 400, "missing Host header");
  if (f.hosts > 1) return reject(check, 400, "duplicate Host header");
  // RFC 6455 4.2.1 items 3 and 4: both are token lists, matched case-insensitively.
  if (!f.upgrade_websocket) return reject(check, 400, "Upgrade header must include websocket");
  if (!f.connection_upgrade) return reject(check, 400, "Connection header must include Upgrade");
  // RFC 6455 4.2.1 item 6 and 4.4: an unsupported version gets 426 and the caller adds
  // "Sec-WebSocket-Version: 13". RFC 6455 11.3.5: the field appears at most once in a request.
  if (f.versions > 1) return reject(check, 400, "duplicate Sec-WebSocket-Version header");
  if (f.version != "13") return reject(check, 426, "Sec-WebSocket-Version must be 13");
  // RFC 6455 11.3.1: Sec-WebSocket-Key must not appear more than once in a request.
  if (f.keys == 0) return reject(check, 400, "missing Sec-WebSocket-Key header");
  if (f.keys > 1) return reject(check, 400, "duplicate Sec-WebSocket-Key header");
  if (!valid_key(f.key)) return reject(check, 400, "Sec-WebSocket-Key must be 16 bytes in base64");
  // RFC 9110 9.3.1: a GET body has no defined meaning, and after a 101 the bytes that follow
  // the head are WebSocket frames (RFC 6455 4.1): a body would be read as frames, and framing
  // that two parsers may disagree on is how requests get smuggled. Refused outright.
  if (f.body) return reject(check, 400, "upgrade request must not have a body");

  check.status = 101;
  check.reason = {};
  check.key = f.key;
  return check;
}

void compute_accept_key(std::string_view key, char out[kAcceptKeyLength]) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  // Valid keys are 24 chars; the stack buffer covers those without allocating. Longer input
  // (never from a validated request) takes OpenSSL's streaming API, which allocates a context.
  char joined[128];
  if (key.size() <= sizeof joined - kWebSocketGuid.size()) {
    // An empty view may carry a null data(), and memcpy's pointers must never be null.
    if (!key.empty()) std::memcpy(joined, key.data(), key.size());
    std::memcpy(joined + key.size(), kWebSocketGuid.data(), kWebSocketGuid.size());
    unsigned int len = 0;
    if (EVP_Digest(joined, key.size() + kWebSocketGuid.size(), digest, &len, sha1_digest(), nullptr) != 1) {
      std::memset(digest, 0, sizeof digest);
    }
  } else {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    unsigned int len = 0;
    const bool ok = ctx != nullptr && EVP_DigestInit_ex(ctx, sha1_digest(), nullptr) == 1 &&
                    EVP_DigestUpdate(ctx, key.data(), key.size()) == 1 &&
                    EVP_DigestUpdate(ctx, kWebSocketGuid.data(), kWebSocketGuid.size()) == 1 &&
                    EVP_DigestFinal_ex(ctx, digest, &len) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok) std::memset(digest, 0, sizeof digest);
  }
  // EVP_EncodeBlock NUL-terminates, so it needs one byte more than the 28 we hand back.
  unsigned char encoded[kAcceptKeyLength + 1];
  EVP_EncodeBlock(encoded, digest, SHA_DIGEST_LENGTH);
  std::memcpy(out, encoded, kAcceptKeyLength);
}

size_t write_upgrade_response(char* out, size_t cap, std::string_view key,
                              std::string_view subprotocol, std::string_view extensions) {
  // A CR or LF here would let a caller-supplied value split the response (header injection).
  if (has_line_break(key) || has_line_break(subprotocol) || has_line_break(extensions)) return 0;
  char accept[kAcceptKeyLength];
  compute_accept_key(key, accept);
  // RFC 6455 4.2.2 item 5.
  Writer w(out, cap);
  w.put(
      "HTTP/1.1 101 Switching Protocols\r\n"
      "Upgrade: websocket\r\n"
      "Connection: Upgrade\r\n"
      "Sec-WebSocket-Accept: ");
  w.put(std::string_view(accept, kAcceptKeyLength));
  w.put("\r\n");
  if (!subprotocol.empty()) {
    w.put("Sec-WebSocket-Protocol: ");
    w.put(subprotocol);
    w.put("\r\n");
  }
  if (!extensions.empty()) {
    w.put("Sec-WebSocket-Extensions: ");
    w.put(extensions);
    w.put("\r\n");
  }
  w.put("\r\n");
  return w.result();
}

size_t write_http_response(char* out, size_t cap, int status, std::string_view content_type,
                           std::string_view body, std::string_view extra_headers) {
  // RFC 9110 15: a status code is three digits.
  if (status < 100 || status > 999 || has_line_break(content_type)) return 0;
  // RFC 9110 8.6 and 15.3.5: 1xx and 204 responses carry neither Content-Length nor content.
  const bool bodiless = status < 200 || status == 204;
  Writer w(out, cap);
  w.put("HTTP/1.1 ");
  w.put_uint(static_cast<size_t>(status));
  w.put(" ");
  w.put(status_reason(status));
  w.put("\r\n");
  if (!content_type.empty()) {
    w.put("Content-Type: ");
    w.put(content_type);
    w.put("\r\n");
  }
  if (!bodiless) {
    w.put("Content-Length: ");
    w.put_uint(body.size());
    w.put("\r\n");
  }
  w.put("Connection: close\r\n");
  w.put(extra_headers);
  w.put("\r\n");
  if (!bodiless) w.put(body);
  return w.result();
}

std::string_view status_reason(int status) {
  // RFC 9110 15, plus RFC 6585 for 429 and 431.
  switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 402: return "Payment Required";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: break;
  }
  // An embedder may answer any status (parley::Authorization::status): name its class rather
  // than say "Unknown" (RFC 9110 15: the class is what a client must understand).
  if (status >= 100 && status < 200) return "Informational";
  if (status >= 200 && status < 300) return "Success";
  if (status >= 300 && status < 400) return "Redirection";
  if (status >= 400 && status < 500) return "Client Error";
  return "Server Error";
}

}  // namespace protocol
