#pragma once
// Why a WebSocket connection is failed, and the close code each reason maps to (RFC 6455 7.4.1).
#include <cstdint>
#include <string_view>

namespace protocol {

enum class ProtocolError : uint8_t {
  kNone = 0,
  kUnmaskedClientFrame,     // RFC 6455 5.1: client frames must be masked -> 1002
  kMaskedServerFrame,       // RFC 6455 5.1: server frames must not be masked -> 1002
  kReservedBitsSet,         // RFC 6455 5.2: RSV1-3 without a negotiated extension -> 1002
  kReservedOpcode,          // RFC 6455 5.2: opcodes 3-7 and B-F -> 1002
  kFragmentedControlFrame,  // RFC 6455 5.5: control frames must not be fragmented -> 1002
  kControlFrameTooLong,     // RFC 6455 5.5: control payload at most 125 bytes -> 1002
  kLengthTopBitSet,         // RFC 6455 5.2: the 64-bit length's most significant bit must be 0 -> 1002
  kNonMinimalLength,        // RFC 6455 5.2: the minimal number of length bytes must be used -> 1002
  kUnexpectedContinuation,  // RFC 6455 5.4: continuation with no message open -> 1002
  kExpectedContinuation,    // RFC 6455 5.4: new data frame while a fragmented message is open -> 1002
  kInvalidClosePayload,     // RFC 6455 5.5.1: a one-byte close payload -> 1002
  kInvalidCloseCode,        // RFC 6455 7.4: 1005, 1006, 1015, unassigned or out-of-range codes -> 1002
  kInvalidUtf8,             // RFC 6455 8.1: text message or close reason not UTF-8 -> 1007
  kMessageTooBig,           // configured message size limit exceeded -> 1009
  kMisplacedRsv1,           // RFC 7692 6.1: RSV1 on a continuation or control frame -> 1002
  kInvalidCompressedData,   // RFC 7692 6.2: a compressed message that does not inflate -> 1007
};

// The close code to send when failing the connection for `error` (1002, 1007 or 1009).
uint16_t close_code_for(ProtocolError error);

// A short human-readable close reason for `error` (fits a close frame; static storage).
std::string_view reason_for(ProtocolError error);

}  // namespace protocol
