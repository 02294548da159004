#include "protocol/protocol_error.h"

#include "protocol/close_code.h"

namespace protocol {

uint16_t close_code_for(ProtocolError error) {
  switch (error) {
    case ProtocolError::kNone:
      return kCloseNormal;
    // RFC 6455 7.4.1: 1007 is for data inconsistent with the message type (non-UTF-8 text).
    case ProtocolError::kInvalidUtf8:
    case ProtocolError::kInvalidCompressedData:
      return kCloseInvalidPayload;
    // RFC 6455 7.4.1: 1009 is for a message too big to process.
    case ProtocolError::kMessageTooBig:
      return kCloseMessageTooBig;
    case ProtocolError::kUnmaskedClientFrame:
    case ProtocolError::kMaskedServerFrame:
    case ProtocolError::kReservedBitsSet:
    case ProtocolError::kReservedOpcode:
    case ProtocolError::kFragmentedControlFrame:
    case ProtocolError::kControlFrameTooLong:
    case ProtocolError::kLengthTopBitSet:
    case ProtocolError::kNonMinimalLength:
    case ProtocolError::kUnexpectedContinuation:
    case ProtocolError::kExpectedContinuation:
    case ProtocolError::kInvalidClosePayload:
    case ProtocolError::kInvalidCloseCode:
    case ProtocolError::kMisplacedRsv1:
      return kCloseProtocolError;
  }
  // An out-of-range enum value can only come from memory corruption; fail as a protocol error.
  return kCloseProtocolError;
}

std::string_view reason_for(ProtocolError error) {
  switch (error) {
    case ProtocolError::kNone: return "";
    case ProtocolError::kUnmaskedClientFrame: return "client frame not masked";
    case ProtocolError::kMaskedServerFrame: return "server frame masked";
    case ProtocolError::kReservedBitsSet: return "reserved bits set";
    case ProtocolError::kReservedOpcode: return "reserved opcode";
    case ProtocolError::kFragmentedControlFrame: return "fragmented control frame";
    case ProtocolError::kControlFrameTooLong: return "control frame too long";
    case ProtocolError::kLengthTopBitSet: return "payload length top bit set";
    case ProtocolError::kNonMinimalLength: return "non-minimal payload length";
    case ProtocolError::kUnexpectedContinuation: return "unexpected continuation frame";
    case ProtocolError::kExpectedContinuation: return "expected continuation frame";
    case ProtocolError::kInvalidClosePayload: return "invalid close payload";
    case ProtocolError::kInvalidCloseCode: return "invalid close code";
    case ProtocolError::kInvalidUtf8: return "invalid UTF-8";
    case ProtocolError::kMessageTooBig: return "message too big";
    case ProtocolError::kMisplacedRsv1: return "RSV1 on a continuation or control frame";
    case ProtocolError::kInvalidCompressedData: return "invalid compressed data";
  }
  return "protocol error";
}

}  // namespace protocol
