#include "protocol/deflate_offer.h"

#include <cstring>

namespace protocol {
namespace {

constexpr std::string_view kExtensionName = "permessage-deflate";
constexpr std::string_view kHeaderName = "Sec-WebSocket-Extensions";

// A parameter value after quoted-string unescaping (RFC 6455 9.1). Only window sizes (at most
// two digits) are meaningful to permessage-deflate, so longer values are remembered only as such.
struct ParamValue {
  bool present = false;
  bool too_long = false;
  uint8_t length = 0;
  char text[2] = {};

  void push(char c) {
    if (length == sizeof text) {
      too_long = true;
      return;
    }
    text[length++] = c;
  }
};

// Walks the header value; every method leaves the position unchanged when it fails.
class Cursor {
 public:
  explicit Cursor(std::string_view text) : text_(text) {}

  bool at_end() const { return pos_ == text_.size(); }
  char peek() const { return text_[pos_]; }
  void advance() { ++pos_; }
  void skip_ows() {
    while (!at_end() && (peek() == ' ' || peek() == '\t')) ++pos_;
  }
  bool eat(char c) {
    if (at_end() || peek() != c) return false;
    ++pos_;
    return true;
  }
  // The token at the position (RFC 9110 5.6.2), empty when there is none.
  std::string_view token() {
    const size_t start = pos_;
    while (!at_end() && is_token_char(peek())) ++pos_;
    return text_.substr(start, pos_ - start);
  }
  // token / quoted-string (RFC 9110 5.6.4); false on a syntax error.
  bool value(ParamValue& out) {
    out.present = true;
    if (!eat('"')) {
      const std::string_view t = token();
      for (char c : t) out.push(c);
      return !t.empty();
    }
    while (!at_end()) {
      char c = peek();
      ++pos_;
      if (c == '"') return true;
      if (c == '\\') {
        if (at_end()) return false;
        c = peek();
        ++pos_;
      }
      // qdtext and quoted-pair exclude control characters other than HTAB.
      if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) return false;
      out.push(c);
    }
    return false;  // unterminated
  }

 private:
  std::string_view text_;
  size_t pos_ = 0;
};

// RFC 7692 7.1.2: a window size is a decimal 8..15 without leading zeroes. -1 when it is not.
// RFC 6455 9.1: a quoted value must still be a token after unescaping, which digits are.
int window_bits_of(const ParamValue& v) {
  if (v.too_long || v.length == 0) return -1;
  if (v.length == 1) return v.text[0] == '8' || v.text[0] == '9' ? v.text[0] - '0' : -1;
  if (v.text[0] != '1' || v.text[1] < '0' || v.text[1] > '5') return -1;
  return 10 + (v.text[1] - '0');
}

// One permessage-deflate offer's parameters. RFC 7692 7.1: decline an offer with an unknown
// parameter, an invalid value, or a parameter given twice.
struct Offer {
  bool valid = true;
  bool server_no_context_takeover = false;
  bool client_no_context_takeover = false;
  bool client_max_window_bits = false;
  int server_max_window_bits = 0;  // 0: not offered

  void apply(std::string_view name, const ParamValue& value) {
    if (name == "server_no_context_takeover") {
      // RFC 7692 7.1.1.1: no value.
      valid = valid && !server_no_context_takeover && !value.present;
      server_no_context_takeover = true;
    } else if (name == "client_no_context_takeover") {
      // RFC 7692 7.1.1.2: no value.
      valid = valid && !client_no_context_takeover && !value.present;
      client_no_context_takeover = true;
    } else if (name == "server_max_window_bits") {
      // RFC 7692 7.1.2.1: a value is required.
      const int bits = window_bits_of(value);
      valid = valid && server_max_window_bits == 0 && bits > 0;
      server_max_window_bits = bits > 0 ? bits : 15;
    } else if (name == "client_max_window_bits") {
      // RFC 7692 7.1.2.2: the value is optional; when given it is a hint only.
      valid = valid && !client_max_window_bits && (!value.present || window_bits_of(value) > 0);
      client_max_window_bits = true;
    } else {
      valid = false;
    }
  }
};

class ResponseWriter {
 public:
  explicit ResponseWriter(DeflateAgreement& out) : out_(out) {}
  void put(std::string_view s) {
    std::memcpy(out_.response + out_.response_length, s.data(), s.size());
    out_.response_length = static_cast<uint8_t>(out_.response_length + s.size());
  }

 private:
  DeflateAgreement& out_;
};

DeflateAgreement accept(const Offer& offer) {
  DeflateAgreement agreement;
  agreement.accepted = true;
  ResponseWriter w(agreement);
  w.put(kExtensionName);
  // Always asked for, offered or not (RFC 7692 7.1.1.1 and 7.1.1.2 allow both unasked): every
  // message is compressed and decompressed on its own, so no zlib state is kept per connection.
  w.put("; server_no_context_takeover; client_no_context_takeover");
  if (offer.server_max_window_bits != 0) {
    // RFC 7692 7.1.2.1: accepting an offer with server_max_window_bits means answering it with a
    // value no larger; we answer the same value and stay within it.
    agreement.server_max_window_bits = static_cast<uint8_t>(offer.server_max_window_bits);
    const char digits[2] = {static_cast<char>('0' + offer.server_max_window_bits / 10),
                            static_cast<char>('0' + offer.server_max_window_bits % 10)};
    w.put("; server_max_window_bits=");
    if (offer.server_max_window_bits >= 10) {
      w.put(std::string_view(digits, 2));
    } else {
      w.put(std::string_view(digits + 1, 1));
    }
  }
  // client_max_window_bits is never answered: without context takeover the inflate window lives
  // for one message only, so limiting the client's window would cost ratio and save nothing.
  return agreement;
}

}  // namespace

DeflateAgreement negotiate_deflate(std::string_view extensions_header) {
  Cursor cursor(extensions_header);
  for (;;) {
    cursor.skip_ows();
    if (cursor.at_end()) return {};
    // RFC 9110 5.6.1: a recipient accepts and ignores empty list elements.
    if (cursor.eat(',')) continue;
    const std::string_view name = cursor.token();
    if (name.empty()) return {};
    const bool ours = name == kExtensionName;
    Offer offer;
    for (;;) {
      cursor.skip_ows();
      if (cursor.at_end() || cursor.peek() == ',') break;
      if (!cursor.eat(';')) return {};
      cursor.skip_ows();
      const std::string_view param = cursor.token();
      if (param.empty()) return {};
      ParamValue value;
      cursor.skip_ows();
      if (cursor.eat('=')) {
        cursor.skip_ows();
        if (!cursor.value(value)) return {};
      }
      if (ours) offer.apply(param, value);
    }
    if (ours && offer.valid) return accept(offer);
  }
}

DeflateAgreement negotiate_deflate(const HttpRequest& request) {
  for (size_t i = 0; i < request.header_count; ++i) {
    if (!equals_ignore_case(request.headers[i].name, kHeaderName)) continue;
    DeflateAgreement agreement = negotiate_deflate(request.headers[i].value);
    if (agreement.accepted) return agreement;
  }
  return {};
}

}  // namespace protocol
