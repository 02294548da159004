#pragma once
// RFC 6455 section 5.2 base framing: header parsing and encoding. Pure functions over bytes.
#include <cstddef>
#include <cstdint>

#include "protocol/protocol_error.h"

namespace protocol {

enum class Opcode : uint8_t {
  kContinuation = 0x0,
  kText = 0x1,
  kBinary = 0x2,
  kClose = 0x8,
  kPing = 0x9,
  kPong = 0xA,
};

// RFC 6455 5.5: opcodes with the high bit set are control frames.
constexpr bool is_control(Opcode opcode) { return (static_cast<uint8_t>(opcode) & 0x8) != 0; }

// 2 bytes + 8 bytes of extended length + 4 bytes of mask key.
inline constexpr size_t kMaxFrameHeaderLength = 14;
// RFC 6455 5.5: control frame payloads are at most 125 bytes.
inline constexpr size_t kMaxControlPayload = 125;

// RSV bit masks as they sit in the first header byte; `allowed_rsv` arguments take these.
inline constexpr uint8_t kRsv1 = 0x40;
inline constexpr uint8_t kRsv2 = 0x20;
inline constexpr uint8_t kRsv3 = 0x10;

struct FrameHeader {
  uint64_t payload_length = 0;
  uint8_t mask_key[4] = {0, 0, 0, 0};
  Opcode opcode = Opcode::kContinuation;
  bool fin = false;
  bool rsv1 = false;
  bool masked = false;
  uint8_t header_length = 0;  // bytes the header occupies on the wire: 2 to 14
};

// Which side sent the bytes being parsed: a server parses kClient frames (must be masked),
// a client parses kServer frames (must not be masked).
enum class Sender : uint8_t { kClient, kServer };

enum class ParseStatus : uint8_t { kOk, kNeedMore, kError };

struct HeaderParse {
  ParseStatus status = ParseStatus::kNeedMore;
  ProtocolError error = ProtocolError::kNone;  // set when status == kError
  FrameHeader header;                          // valid when status == kOk
};

// Parses the frame header at the start of data[0, len). kNeedMore when the header is incomplete;
// kError for any per-frame rule broken (masking for `sender`, RSV bits outside `allowed_rsv`,
// reserved opcodes, fragmented or over-long control frames, length top bit, non-minimal length).
// Reads nothing past data + len. Message-level rules (continuations) are MessageReader's.
HeaderParse parse_frame_header(const uint8_t* data, size_t len, Sender sender, uint8_t allowed_rsv = 0);

// XORs data[0, len) with the mask key in place. `payload_offset` is data[0]'s index within the
// frame's payload, so a payload that arrives in pieces can be unmasked piece by piece.
void unmask(uint8_t* data, size_t len, const uint8_t mask_key[4], uint64_t payload_offset);

// Writes an unmasked (server) frame header into out[0, kMaxFrameHeaderLength); returns its length.
size_t encode_frame_header(uint8_t* out, Opcode opcode, uint64_t payload_length, bool fin = true,
                           bool rsv1 = false);

// Writes a masked (client) frame header with `mask_key`; returns its length. The caller masks the
// payload with unmask(payload, len, mask_key, 0).
size_t encode_masked_frame_header(uint8_t* out, Opcode opcode, uint64_t payload_length,
                                  const uint8_t mask_key[4], bool fin = true, bool rsv1 = false);

}  // namespace protocol
