#pragma once
// Close frame payloads and status codes, RFC 6455 sections 5.5.1 and 7.4.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "protocol/protocol_error.h"

namespace protocol {

inline constexpr uint16_t kCloseNormal = 1000;
inline constexpr uint16_t kCloseGoingAway = 1001;
inline constexpr uint16_t kCloseProtocolError = 1002;
inline constexpr uint16_t kCloseUnsupportedData = 1003;
inline constexpr uint16_t kCloseNoStatus = 1005;  // never on the wire
inline constexpr uint16_t kCloseAbnormal = 1006;  // never on the wire
inline constexpr uint16_t kCloseInvalidPayload = 1007;
inline constexpr uint16_t kClosePolicyViolation = 1008;
inline constexpr uint16_t kCloseMessageTooBig = 1009;
inline constexpr uint16_t kCloseMandatoryExtension = 1010;
inline constexpr uint16_t kCloseInternalError = 1011;

// True when `code` may appear in a close frame on the wire (RFC 6455 7.4.1/7.4.2: 1000-1003,
// 1007-1011 as registered, 3000-4999 for libraries and applications; not 1004-1006, 1015).
bool is_valid_wire_close_code(uint16_t code);

// Checks a received close payload: empty, or a valid code followed by a UTF-8 reason.
// Returns kNone, kInvalidClosePayload (one byte), kInvalidCloseCode or kInvalidUtf8.
ProtocolError validate_close_payload(const uint8_t* data, size_t len);

// The code in a validated close payload, or kCloseNoStatus when it is empty.
uint16_t close_payload_code(const uint8_t* data, size_t len);

// Writes code + reason (reason truncated to fit 125 bytes) into out[0, 125); returns the length.
size_t encode_close_payload(uint8_t* out, uint16_t code, std::string_view reason);

}  // namespace protocol
