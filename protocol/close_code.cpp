#include "protocol/close_code.h"

#include <cstring>

#include "protocol/frame_header.h"
#include "protocol/utf8.h"

namespace protocol {
namespace {

constexpr size_t kCodeLength = 2;

uint16_t read_code(const uint8_t* data) {
  return static_cast<uint16_t>((data[0] << 8) | data[1]);
}

}  // namespace

bool is_valid_wire_close_code(uint16_t code) {
  // RFC 6455 7.4.1 defines 1000-1003 and 1007-1011; 1004 is reserved and 1005, 1006, 1015 must
  // never be sent. The IANA registry (7.4.2) added 1012-1014, which peers do send.
  if (code >= 1000 && code <= 1003) return true;
  if (code >= 1007 && code <= 1014) return true;
  // RFC 6455 7.4.2: 3000-3999 are registered with IANA, 4000-4999 are private use.
  return code >= 3000 && code <= 4999;
}

ProtocolError validate_close_payload(const uint8_t* data, size_t len) {
  if (len == 0) return ProtocolError::kNone;
  // RFC 6455 5.5.1: a close body starts with a 2-byte code; one byte cannot hold one.
  if (len < kCodeLength || len > kMaxControlPayload) return ProtocolError::kInvalidClosePayload;
  if (!is_valid_wire_close_code(read_code(data))) return ProtocolError::kInvalidCloseCode;
  // RFC 6455 5.5.1: the reason after the code is UTF-8 encoded.
  if (utf8_feed(kUtf8Accept, data + kCodeLength, len - kCodeLength) != kUtf8Accept) {
    return ProtocolError::kInvalidUtf8;
  }
  return ProtocolError::kNone;
}

uint16_t close_payload_code(const uint8_t* data, size_t len) {
  // RFC 6455 7.1.5: a close frame with no status code is reported as 1005.
  if (len < kCodeLength) return kCloseNoStatus;
  return read_code(data);
}

size_t encode_close_payload(uint8_t* out, uint16_t code, std::string_view reason) {
  // RFC 6455 7.4.1: 1005 means "no status code was present", so it is sent as an empty body.
  if (code == kCloseNoStatus) return 0;
  out[0] = static_cast<uint8_t>(code >> 8);
  out[1] = static_cast<uint8_t>(code);
  size_t reason_length = reason.size();
  if (reason_length > kMaxControlPayload - kCodeLength) {
    reason_length = kMaxControlPayload - kCodeLength;
    // Cut on a code point boundary so a valid UTF-8 reason stays valid (RFC 6455 5.5.1):
    // back off over continuation bytes (10xxxxxx) to the lead byte and drop it too.
    while (reason_length > 0 &&
           (static_cast<uint8_t>(reason[reason_length]) & 0xC0) == 0x80) {
      --reason_length;
    }
  }
  if (reason_length > 0) std::memcpy(out + kCodeLength, reason.data(), reason_length);
  return kCodeLength + reason_length;
}

}  // namespace protocol
