#pragma once
// permessage-deflate negotiation, server side (RFC 7692 section 7.1): reads the client's
// Sec-WebSocket-Extensions offers and picks the first acceptable one. Pure: no allocation, no I/O.
//
// parley's answer is always "no context takeover" in both directions: server_no_context_takeover
// (RFC 7692 7.1.1.1: the server may add it unasked) lets one compressed frame serve every
// subscriber of a broadcast, and client_no_context_takeover (7.1.1.2: the server may add it
// unasked) means no inflate state outlives a message. So no connection keeps a zlib stream.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "protocol/http_request.h"

namespace protocol {

// Longest response we write: the name plus all four parameters with two-digit values.
inline constexpr size_t kMaxDeflateResponse = 128;

struct DeflateAgreement {
  bool accepted = false;               // an offer was acceptable; the rest is valid only then
  uint8_t server_max_window_bits = 15;  // the LZ77 window our compressor must stay within (8-15)
  uint8_t response_length = 0;
  char response[kMaxDeflateResponse] = {};  // the Sec-WebSocket-Extensions value to send back

  std::string_view response_view() const { return {response, response_length}; }
};

// Negotiates over one Sec-WebSocket-Extensions value (a comma-separated list of offers, RFC 6455
// 9.1). Offers are tried left to right; the first permessage-deflate offer whose parameters are
// all known, unrepeated and well-valued (RFC 7692 7.1) is accepted. Offers of other extensions are
// skipped. A syntax error ends the search: nothing after it is trusted. Never fails the handshake:
// no acceptable offer just means accepted == false.
DeflateAgreement negotiate_deflate(std::string_view extensions_header);

// The same over every Sec-WebSocket-Extensions line of `request`, in order (RFC 9110 5.3: several
// lines form one list); each line is parsed on its own, so a broken line does not hide the next.
DeflateAgreement negotiate_deflate(const HttpRequest& request);

}  // namespace protocol
