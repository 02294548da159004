#include "protocol/frame_header.h"

#include <cstring>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

namespace protocol {
namespace {

constexpr uint8_t kFinBit = 0x80;
constexpr uint8_t kRsvBits = kRsv1 | kRsv2 | kRsv3;
constexpr uint8_t kOpcodeBits = 0x0F;
constexpr uint8_t kMaskBit = 0x80;
constexpr uint8_t kLength7Bits = 0x7F;
constexpr uint8_t kLength16 = 126;
constexpr uint8_t kLength64 = 127;

bool is_known_opcode(uint8_t opcode) {
  switch (opcode) {
    case 0x0: case 0x1: case 0x2: case 0x8: case 0x9: case 0xA:
      return true;
    default:
      return false;
  }
}

HeaderParse parse_error(ProtocolError error) {
  HeaderParse result;
  result.status = ParseStatus::kError;
  result.error = error;
  return result;
}

uint64_t read_be(const uint8_t* p, size_t n) {
  uint64_t value = 0;
  for (size_t i = 0; i < n; ++i) value = (value << 8) | p[i];
  return value;
}

void write_be(uint8_t* p, uint64_t value, size_t n) {
  for (size_t i = n; i-- > 0;) {
    p[i] = static_cast<uint8_t>(value);
    value >>= 8;
  }
}

// Writes the base header and extended length; returns where the mask key (if any) goes.
size_t encode_base(uint8_t* out, Opcode opcode, uint64_t payload_length, bool fin, bool rsv1,
                   bool masked) {
  out[0] = static_cast<uint8_t>((fin ? kFinBit : 0) | (rsv1 ? kRsv1 : 0) |
                                (static_cast<uint8_t>(opcode) & kOpcodeBits));
  const uint8_t mask_bit = masked ? kMaskBit : 0;
  // RFC 6455 5.2: the minimal number of bytes must be used to encode the length.
  if (payload_length < kLength16) {
    out[1] = static_cast<uint8_t>(mask_bit | payload_length);
    return 2;
  }
  if (payload_length <= 0xFFFF) {
    out[1] = mask_bit | kLength16;
    write_be(out + 2, payload_length, 2);
    return 4;
  }
  out[1] = mask_bit | kLength64;
  write_be(out + 2, payload_length, 8);
  return 10;
}

// The mask key laid out three times: the 8 bytes starting at `phase` are the key as it applies to
// a run of payload starting at an index congruent to `phase` mod 4, in memory order, so whole
// words can be XORed without caring about endianness.
struct RepeatedKey {
  explicit RepeatedKey(const uint8_t mask_key[4]) {
    for (size_t i = 0; i < sizeof bytes; ++i) bytes[i] = mask_key[i & 3];
  }
  uint64_t word64(size_t phase) const {
    uint64_t word;
    std::memcpy(&word, bytes + phase, sizeof word);
    return word;
  }
  uint32_t word32(size_t phase) const {
    uint32_t word;
    std::memcpy(&word, bytes + phase, sizeof word);
    return word;
  }
  uint8_t bytes[12];
};

// memcpy keeps the word accesses free of alignment and aliasing assumptions; it compiles to one
// load and one store.
inline void xor64(uint8_t* p, uint64_t key) {
  uint64_t word;
  std::memcpy(&word, p, sizeof word);
  word ^= key;
  std::memcpy(p, &word, sizeof word);
}

inline void xor32(uint8_t* p, uint32_t key) {
  uint32_t word;
  std::memcpy(&word, p, sizeof word);
  word ^= key;
  std::memcpy(p, &word, sizeof word);
}

}  // namespace

HeaderParse parse_frame_header(const uint8_t* data, size_t len, Sender sender, uint8_t allowed_rsv) {
  // Rules are checked in wire order and reported as soon as the offending byte is present, so a
  // header split across reads fails with the same error as the whole header would.
  if (len < 1) return {};
  const uint8_t b0 = data[0];
  const bool fin = (b0 & kFinBit) != 0;
  // RFC 6455 5.2: RSV bits must be 0 unless an extension defining them was negotiated.
  if ((b0 & kRsvBits & ~allowed_rsv) != 0) return parse_error(ProtocolError::kReservedBitsSet);
  const uint8_t opcode_bits = b0 & kOpcodeBits;
  // RFC 6455 5.2: opcodes 0x3-0x7 and 0xB-0xF are reserved; receiving one fails the connection.
  if (!is_known_opcode(opcode_bits)) return parse_error(ProtocolError::kReservedOpcode);
  const Opcode opcode = static_cast<Opcode>(opcode_bits);
  // RFC 6455 5.5: control frames must not be fragmented.
  if (is_control(opcode) && !fin) return parse_error(ProtocolError::kFragmentedControlFrame);

  if (len < 2) return {};
  const uint8_t b1 = data[1];
  const bool masked = (b1 & kMaskBit) != 0;
  // RFC 6455 5.1: a server closes on an unmasked client frame; a client on a masked server frame.
  if (sender == Sender::kClient && !masked) return parse_error(ProtocolError::kUnmaskedClientFrame);
  if (sender == Sender::kServer && masked) return parse_error(ProtocolError::kMaskedServerFrame);
  const uint8_t length7 = b1 & kLength7Bits;
  // RFC 6455 5.5: all control frames have a payload length of 125 bytes or less.
  if (is_control(opcode) && length7 > kMaxControlPayload) {
    return parse_error(ProtocolError::kControlFrameTooLong);
  }

  size_t pos = 2;
  uint64_t payload_length = length7;
  if (length7 == kLength16) {
    if (len < pos + 2) return {};
    payload_length = read_be(data + pos, 2);
    // RFC 6455 5.2: "the minimal number of bytes MUST be used to encode the length".
    if (payload_length < kLength16) return parse_error(ProtocolError::kNonMinimalLength);
    pos += 2;
  } else if (length7 == kLength64) {
    if (len < pos + 1) return {};
    // RFC 6455 5.2: the most significant bit of the 64-bit length MUST be 0.
    if ((data[pos] & 0x80) != 0) return parse_error(ProtocolError::kLengthTopBitSet);
    if (len < pos + 8) return {};
    payload_length = read_be(data + pos, 8);
    if (payload_length <= 0xFFFF) return parse_error(ProtocolError::kNonMinimalLength);
    pos += 8;
  }

  const size_t header_length = pos + (masked ? 4 : 0);
  if (len < header_length) return {};

  HeaderParse result;
  result.status = ParseStatus::kOk;
  FrameHeader& header = result.header;
  header.payload_length = payload_length;
  if (masked) std::memcpy(header.mask_key, data + pos, 4);
  header.opcode = opcode;
  header.fin = fin;
  header.rsv1 = (b0 & kRsv1) != 0;
  header.masked = masked;
  header.header_length = static_cast<uint8_t>(header_length);
  return result;
}

void unmask(uint8_t* data, size_t len, const uint8_t mask_key[4], uint64_t payload_offset) {
  // Payload byte i of the frame is XORed with mask_key[i % 4] (RFC 6455 5.3); `phase` is that
  // index for data[0]. Every access stays inside data[0, len): each block below runs only while
  // a whole block remains, and nothing is read or written twice (blocks never overlap, since an
  // overlapping XOR would unmask a byte twice).
  const RepeatedKey key(mask_key);
  size_t phase = static_cast<size_t>(payload_offset & 3);
  uint8_t* p = data;
  uint8_t* const end = data + len;

  if (len >= 16) {
    // Walk to a 16-byte boundary so the wide loop uses aligned accesses that never split a
    // cache line: single bytes first (the only steps that move the phase), then 4 and 8 bytes.
    const size_t head = static_cast<size_t>(-reinterpret_cast<uintptr_t>(p) & 15);
    for (size_t i = 0; i < (head & 3); ++i) p[i] ^= key.bytes[phase + i];
    p += head & 3;
    phase = (phase + head) & 3;
    if ((head & 4) != 0) {
      xor32(p, key.word32(phase));
      p += 4;
    }
    if ((head & 8) != 0) {
      xor64(p, key.word64(phase));
      p += 8;
    }
  }
  // From here on every step is a multiple of 4 bytes, so the phase stays fixed.
  const uint64_t key64 = key.word64(phase);

#ifdef __SSE2__
  if (end - p >= 16) {
    // p is 16-byte aligned: len >= 16 took the head path above.
    const __m128i key128 = _mm_set1_epi64x(static_cast<long long>(key64));
    while (end - p >= 64) {
      const __m128i a = _mm_load_si128(reinterpret_cast<const __m128i*>(p));
      const __m128i b = _mm_load_si128(reinterpret_cast<const __m128i*>(p + 16));
      const __m128i c = _mm_load_si128(reinterpret_cast<const __m128i*>(p + 32));
      const __m128i d = _mm_load_si128(reinterpret_cast<const __m128i*>(p + 48));
      _mm_store_si128(reinterpret_cast<__m128i*>(p), _mm_xor_si128(a, key128));
      _mm_store_si128(reinterpret_cast<__m128i*>(p + 16), _mm_xor_si128(b, key128));
      _mm_store_si128(reinterpret_cast<__m128i*>(p + 32), _mm_xor_si128(c, key128));
      _mm_store_si128(reinterpret_cast<__m128i*>(p + 48), _mm_xor_si128(d, key128));
      p += 64;
    }
    if (end - p >= 32) {
      const __m128i a = _mm_load_si128(reinterpret_cast<const __m128i*>(p));
      const __m128i b = _mm_load_si128(reinterpret_cast<const __m128i*>(p + 16));
      _mm_store_si128(reinterpret_cast<__m128i*>(p), _mm_xor_si128(a, key128));
      _mm_store_si128(reinterpret_cast<__m128i*>(p + 16), _mm_xor_si128(b, key128));
      p += 32;
    }
    if (end - p >= 16) {
      const __m128i a = _mm_load_si128(reinterpret_cast<const __m128i*>(p));
      _mm_store_si128(reinterpret_cast<__m128i*>(p), _mm_xor_si128(a, key128));
      p += 16;
    }
  }
#endif

  while (end - p >= 8) {
    xor64(p, key64);
    p += 8;
  }
  if (end - p >= 4) {
    xor32(p, key.word32(phase));
    p += 4;
  }
  for (size_t i = 0; p + i < end; ++i) p[i] ^= key.bytes[phase + i];
}

size_t encode_frame_header(uint8_t* out, Opcode opcode, uint64_t payload_length, bool fin, bool rsv1) {
  return encode_base(out, opcode, payload_length, fin, rsv1, false);
}

size_t encode_masked_frame_header(uint8_t* out, Opcode opcode, uint64_t payload_length,
                                  const uint8_t mask_key[4], bool fin, bool rsv1) {
  const size_t pos = encode_base(out, opcode, payload_length, fin, rsv1, true);
  std::memcpy(out + pos, mask_key, 4);
  return pos + 4;
}

}  // namespace protocol
