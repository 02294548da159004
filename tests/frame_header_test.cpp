#include "protocol/frame_header.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

namespace protocol {
namespace {

const uint8_t kKey[4] = {0x37, 0xfa, 0x21, 0x3d};

// Parses from an exactly sized heap copy so AddressSanitizer sees any read past len.
HeaderParse parse_exact(const std::vector<uint8_t>& bytes, size_t len, Sender sender,
                        uint8_t allowed_rsv = 0) {
  std::unique_ptr<uint8_t[]> copy(new uint8_t[len == 0 ? 1 : len]);
  if (len > 0) std::memcpy(copy.get(), bytes.data(), len);
  return parse_frame_header(copy.get(), len, sender, allowed_rsv);
}

HeaderParse parse_all(const std::vector<uint8_t>& bytes, Sender sender, uint8_t allowed_rsv = 0) {
  return parse_exact(bytes, bytes.size(), sender, allowed_rsv);
}

std::vector<uint8_t> masked_header(Opcode opcode, uint64_t length, bool fin = true, bool rsv1 = false) {
  std::vector<uint8_t> out(kMaxFrameHeaderLength);
  out.resize(encode_masked_frame_header(out.data(), opcode, length, kKey, fin, rsv1));
  return out;
}

std::vector<uint8_t> server_header(Opcode opcode, uint64_t length, bool fin = true, bool rsv1 = false) {
  std::vector<uint8_t> out(kMaxFrameHeaderLength);
  out.resize(encode_frame_header(out.data(), opcode, length, fin, rsv1));
  return out;
}

// Every strict prefix of a good header needs more; every prefix of a bad one needs more or
// already fails with the final error, so split reads fail the same way.
void expect_prefixes_consistent(const std::vector<uint8_t>& bytes, Sender sender,
                                uint8_t allowed_rsv = 0) {
  const HeaderParse full = parse_all(bytes, sender, allowed_rsv);
  for (size_t k = 0; k < bytes.size(); ++k) {
    const HeaderParse partial = parse_exact(bytes, k, sender, allowed_rsv);
    if (full.status == ParseStatus::kOk) {
      EXPECT_EQ(partial.status, ParseStatus::kNeedMore) << "prefix " << k;
    } else if (partial.status == ParseStatus::kError) {
      EXPECT_EQ(partial.error, full.error) << "prefix " << k;
    } else {
      EXPECT_EQ(partial.status, ParseStatus::kNeedMore) << "prefix " << k;
    }
  }
}

struct LengthCase {
  uint64_t length;
  size_t length_bytes;  // extended length bytes on the wire
};

const LengthCase kLengthCases[] = {
    {0, 0},          {1, 0},          {125, 0},        {126, 2},
    {127, 2},        {65535, 2},      {65536, 8},      {(1ull << 32) - 1, 8},
    {1ull << 32, 8}, {(1ull << 32) + 5, 8}, {(1ull << 63) - 1, 8},
};

TEST(FrameHeader, MaskedLengthEncodingsRoundTrip) {
  for (const LengthCase& c : kLengthCases) {
    const std::vector<uint8_t> bytes = masked_header(Opcode::kBinary, c.length);
    ASSERT_EQ(bytes.size(), 2 + c.length_bytes + 4) << c.length;
    const HeaderParse parse = parse_all(bytes, Sender::kClient);
    ASSERT_EQ(parse.status, ParseStatus::kOk) << c.length;
    EXPECT_EQ(parse.header.payload_length, c.length);
    EXPECT_EQ(parse.header.header_length, bytes.size());
    EXPECT_EQ(parse.header.opcode, Opcode::kBinary);
    EXPECT_TRUE(parse.header.fin);
    EXPECT_TRUE(parse.header.masked);
    EXPECT_FALSE(parse.header.rsv1);
    EXPECT_EQ(0, std::memcmp(parse.header.mask_key, kKey, 4));
    expect_prefixes_consistent(bytes, Sender::kClient);
  }
}

TEST(FrameHeader, ServerLengthEncodingsRoundTrip) {
  for (const LengthCase& c : kLengthCases) {
    const std::vector<uint8_t> bytes = server_header(Opcode::kText, c.length);
    ASSERT_EQ(bytes.size(), 2 + c.length_bytes) << c.length;
    const HeaderParse parse = parse_all(bytes, Sender::kServer);
    ASSERT_EQ(parse.status, ParseStatus::kOk) << c.length;
    EXPECT_EQ(parse.header.payload_length, c.length);
    EXPECT_EQ(parse.header.header_length, bytes.size());
    EXPECT_FALSE(parse.header.masked);
    expect_prefixes_consistent(bytes, Sender::kServer);
  }
}

TEST(FrameHeader, EncodesExactBytes) {
  EXPECT_EQ(server_header(Opcode::kText, 0), (std::vector<uint8_t>{0x81, 0x00}));
  EXPECT_EQ(server_header(Opcode::kText, 125), (std::vector<uint8_t>{0x81, 0x7D}));
  EXPECT_EQ(server_header(Opcode::kBinary, 126), (std::vector<uint8_t>{0x82, 0x7E, 0x00, 0x7E}));
  EXPECT_EQ(server_header(Opcode::kBinary, 65535), (std::vector<uint8_t>{0x82, 0x7E, 0xFF, 0xFF}));
  EXPECT_EQ(server_header(Opcode::kBinary, 65536),
            (std::vector<uint8_t>{0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0}));
  EXPECT_EQ(server_header(Opcode::kBinary, 0x0102030405060708ull),
            (std::vector<uint8_t>{0x82, 0x7F, 1, 2, 3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(server_header(Opcode::kContinuation, 3, false), (std::vector<uint8_t>{0x00, 0x03}));
  EXPECT_EQ(server_header(Opcode::kText, 3, true, true), (std::vector<uint8_t>{0xC1, 0x03}));
  EXPECT_EQ(server_header(Opcode::kClose, 2), (std::vector<uint8_t>{0x88, 0x02}));
  EXPECT_EQ(server_header(Opcode::kPing, 0), (std::vector<uint8_t>{0x89, 0x00}));
  EXPECT_EQ(server_header(Opcode::kPong, 0), (std::vector<uint8_t>{0x8A, 0x00}));
  EXPECT_EQ(masked_header(Opcode::kText, 5),
            (std::vector<uint8_t>{0x81, 0x85, kKey[0], kKey[1], kKey[2], kKey[3]}));
  EXPECT_EQ(masked_header(Opcode::kText, 300, false),
            (std::vector<uint8_t>{0x01, 0xFE, 0x01, 0x2C, kKey[0], kKey[1], kKey[2], kKey[3]}));
}

TEST(FrameHeader, FinAndRsv1FlagsParse) {
  HeaderParse parse = parse_all(masked_header(Opcode::kText, 10, false), Sender::kClient);
  ASSERT_EQ(parse.status, ParseStatus::kOk);
  EXPECT_FALSE(parse.header.fin);
  EXPECT_EQ(parse.header.opcode, Opcode::kText);

  parse = parse_all(masked_header(Opcode::kContinuation, 10, true), Sender::kClient);
  ASSERT_EQ(parse.status, ParseStatus::kOk);
  EXPECT_TRUE(parse.header.fin);
  EXPECT_EQ(parse.header.opcode, Opcode::kContinuation);

  parse = parse_all(masked_header(Opcode::kText, 10, true, true), Sender::kClient, kRsv1);
  ASSERT_EQ(parse.status, ParseStatus::kOk);
  EXPECT_TRUE(parse.header.rsv1);
}

TEST(FrameHeader, LengthTopBitRejectedAsSoonAsSeen) {
  std::vector<uint8_t> bytes = {0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4};
  HeaderParse parse = parse_all(bytes, Sender::kClient);
  ASSERT_EQ(parse.status, ParseStatus::kError);
  EXPECT_EQ(parse.error, ProtocolError::kLengthTopBitSet);
  parse = parse_exact(bytes, 3, Sender::kClient);
  ASSERT_EQ(parse.status, ParseStatus::kError);
  EXPECT_EQ(parse.error, ProtocolError::kLengthTopBitSet);
  bytes[2] = 0xFF;  // every bit set
  EXPECT_EQ(parse_all(bytes, Sender::kClient).error, ProtocolError::kLengthTopBitSet);
  expect_prefixes_consistent(bytes, Sender::kClient);
}

TEST(FrameHeader, NonMinimalLengthsRejected) {
  // 16-bit form carrying values that fit in 7 bits.
  for (uint16_t value : {0, 1, 125}) {
    const std::vector<uint8_t> bytes = {0x82, 0xFE, static_cast<uint8_t>(value >> 8),
                                        static_cast<uint8_t>(value), 1, 2, 3, 4};
    const HeaderParse parse = parse_all(bytes, Sender::kClient);
    ASSERT_EQ(parse.status, ParseStatus::kError) << value;
    EXPECT_EQ(parse.error, ProtocolError::kNonMinimalLength) << value;
    expect_prefixes_consistent(bytes, Sender::kClient);
  }
  // 64-bit form carrying values that fit in 16 bits.
  for (uint32_t value : {0u, 125u, 126u, 65535u}) {
    const std::vector<uint8_t> bytes = {0x82, 0xFF, 0, 0, 0, 0, 0, 0, static_cast<uint8_t>(value >> 8),
                                        static_cast<uint8_t>(value), 1, 2, 3, 4};
    const HeaderParse parse = parse_all(bytes, Sender::kClient);
    ASSERT_EQ(parse.status, ParseStatus::kError) << value;
    EXPECT_EQ(parse.error, ProtocolError::kNonMinimalLength) << value;
    expect_prefixes_consistent(bytes, Sender::kClient);
  }
  // The smallest lengths of each form are minimal.
  EXPECT_EQ(parse_all({0x82, 0xFE, 0x00, 0x7E, 1, 2, 3, 4}, Sender::kClient).status, ParseStatus::kOk);
  EXPECT_EQ(parse_all({0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4}, Sender::kClient).status,
            ParseStatus::kOk);
}

TEST(FrameHeader, EveryReservedOpcodeRejected) {
  for (uint8_t opcode = 0; opcode < 16; ++opcode) {
    const bool known = opcode <= 2 || (opcode >= 8 && opcode <= 10);
    const std::vector<uint8_t> bytes = {static_cast<uint8_t>(0x80 | opcode), 0x80, 1, 2, 3, 4};
    const HeaderParse parse = parse_all(bytes, Sender::kClient);
    if (known) {
      EXPECT_EQ(parse.status, ParseStatus::kOk) << int(opcode);
      EXPECT_EQ(static_cast<uint8_t>(parse.header.opcode), opcode);
    } else {
      ASSERT_EQ(parse.status, ParseStatus::kError) << int(opcode);
      EXPECT_EQ(parse.error, ProtocolError::kReservedOpcode) << int(opcode);
      // Detected from the first byte alone.
      EXPECT_EQ(parse_exact(bytes, 1, Sender::kClient).error, ProtocolError::kReservedOpcode);
    }
  }
}

TEST(FrameHeader, IsControlMatchesRfc) {
  EXPECT_FALSE(is_control(Opcode::kContinuation));
  EXPECT_FALSE(is_control(Opcode::kText));
  EXPECT_FALSE(is_control(Opcode::kBinary));
  EXPECT_TRUE(is_control(Opcode::kClose));
  EXPECT_TRUE(is_control(Opcode::kPing));
  EXPECT_TRUE(is_control(Opcode::kPong));
}

TEST(FrameHeader, RsvBitsAllowedOnlyWhenNegotiated) {
  const uint8_t bits[] = {kRsv1, kRsv2, kRsv3};
  for (uint8_t bit : bits) {
    const std::vector<uint8_t> bytes = {static_cast<uint8_t>(0x81 | bit), 0x80, 1, 2, 3, 4};
    HeaderParse parse = parse_all(bytes, Sender::kClient);
    ASSERT_EQ(parse.status, ParseStatus::kError) << int(bit);
    EXPECT_EQ(parse.error, ProtocolError::kReservedBitsSet);
    EXPECT_EQ(parse_exact(bytes, 1, Sender::kClient).error, ProtocolError::kReservedBitsSet);
    parse = parse_all(bytes, Sender::kClient, bit);
    ASSERT_EQ(parse.status, ParseStatus::kOk) << int(bit);
    EXPECT_EQ(parse.header.rsv1, bit == kRsv1);
    // Allowing one bit does not allow the others.
    const uint8_t other = bit == kRsv1 ? kRsv2 : kRsv1;
    parse = parse_all(bytes, Sender::kClient, other);
    ASSERT_EQ(parse.status, ParseStatus::kError);
    EXPECT_EQ(parse.error, ProtocolError::kReservedBitsSet);
  }
  const std::vector<uint8_t> all = {0xF1, 0x80, 1, 2, 3, 4};
  EXPECT_EQ(parse_all(all, Sender::kClient, kRsv1 | kRsv2 | kRsv3).status, ParseStatus::kOk);
  EXPECT_EQ(parse_all(all, Sender::kClient, kRsv1 | kRsv2).error, ProtocolError::kReservedBitsSet);
}

TEST(FrameHeader, MaskingMustMatchSender) {
  const std::vector<uint8_t> unmasked = {0x81, 0x05};
  HeaderParse parse = parse_all(unmasked, Sender::kClient);
  ASSERT_EQ(parse.status, ParseStatus::kError);
  EXPECT_EQ(parse.error, ProtocolError::kUnmaskedClientFrame);
  EXPECT_EQ(parse_all(unmasked, Sender::kServer).status, ParseStatus::kOk);

  const std::vector<uint8_t> masked = {0x81, 0x85, 1, 2, 3, 4};
  parse = parse_all(masked, Sender::kServer);
  ASSERT_EQ(parse.status, ParseStatus::kError);
  EXPECT_EQ(parse.error, ProtocolError::kMaskedServerFrame);
  // Detected from the second byte, before the mask key arrives.
  EXPECT_EQ(parse_exact(masked, 2, Sender::kServer).error, ProtocolError::kMaskedServerFrame);
}

TEST(FrameHeader, ControlFrameRules) {
  for (Opcode opcode : {Opcode::kClose, Opcode::kPing, Opcode::kPong}) {
    const std::vector<uint8_t> fragmented = masked_header(opcode, 0, false);
    EXPECT_EQ(parse_all(fragmented, Sender::kClient).error, ProtocolError::kFragmentedControlFrame);
    EXPECT_EQ(parse_exact(fragmented, 1, Sender::kClient).error, ProtocolError::kFragmentedControlFrame);

    const HeaderParse ok = parse_all(masked_header(opcode, kMaxControlPayload), Sender::kClient);
    ASSERT_EQ(ok.status, ParseStatus::kOk);
    EXPECT_EQ(ok.header.payload_length, kMaxControlPayload);

    for (uint64_t length : {126ull, 65535ull, 65536ull}) {
      const std::vector<uint8_t> bytes = masked_header(opcode, length);
      EXPECT_EQ(parse_all(bytes, Sender::kClient).error, ProtocolError::kControlFrameTooLong);
      // Known from the 7-bit length alone.
      EXPECT_EQ(parse_exact(bytes, 2, Sender::kClient).error, ProtocolError::kControlFrameTooLong);
    }
  }
  // Data frames may be long and fragmented.
  EXPECT_EQ(parse_all(masked_header(Opcode::kBinary, 126, false), Sender::kClient).status, ParseStatus::kOk);
}

TEST(FrameHeader, EmptyInputNeedsMore) {
  EXPECT_EQ(parse_frame_header(nullptr, 0, Sender::kClient).status, ParseStatus::kNeedMore);
}

TEST(FrameHeader, ParsesHeaderFollowedByPayload) {
  std::vector<uint8_t> bytes = masked_header(Opcode::kText, 3);
  const size_t header_length = bytes.size();
  bytes.insert(bytes.end(), {9, 9, 9, 0x81, 0x80});
  const HeaderParse parse = parse_all(bytes, Sender::kClient);
  ASSERT_EQ(parse.status, ParseStatus::kOk);
  EXPECT_EQ(parse.header.header_length, header_length);
  EXPECT_EQ(parse.header.payload_length, 3u);
}

// ---- unmask ----

void reference_unmask(uint8_t* data, size_t len, const uint8_t key[4], uint64_t offset) {
  for (size_t i = 0; i < len; ++i) data[i] ^= key[(offset + i) % 4];
}

std::vector<uint8_t> pattern(size_t len, uint32_t seed) {
  std::vector<uint8_t> out(len);
  uint32_t x = seed * 2654435761u + 1;
  for (uint8_t& b : out) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    b = static_cast<uint8_t>(x);
  }
  return out;
}

TEST(Unmask, MatchesReferenceForAllLengthsOffsetsAndAlignments) {
  constexpr size_t kGuard = 32;
  constexpr uint8_t kGuardByte = 0xA5;
  for (size_t len = 0; len <= 300; ++len) {
    const std::vector<uint8_t> input = pattern(len, static_cast<uint32_t>(len));
    for (uint64_t offset = 0; offset < 8; ++offset) {
      for (size_t misalign = 0; misalign < 16; ++misalign) {
        // 16-byte aligned backing store, payload placed `misalign` bytes past a boundary,
        // with guard bytes on both sides that must stay untouched.
        alignas(16) uint8_t buffer[kGuard + 16 + 300 + kGuard];
        std::memset(buffer, kGuardByte, sizeof buffer);
        uint8_t* data = buffer + kGuard + misalign;
        if (len > 0) std::memcpy(data, input.data(), len);
        std::vector<uint8_t> expected = input;
        reference_unmask(expected.data(), len, kKey, offset);

        unmask(data, len, kKey, offset);
        ASSERT_EQ(std::vector<uint8_t>(data, data + len), expected)
            << "len " << len << " offset " << offset << " misalign " << misalign;
        for (size_t i = 0; i < kGuard + misalign; ++i) ASSERT_EQ(buffer[i], kGuardByte);
        for (size_t i = kGuard + misalign + len; i < sizeof buffer; ++i) ASSERT_EQ(buffer[i], kGuardByte);
      }
    }
  }
}

TEST(Unmask, ExactHeapBufferStaysInBounds) {
  // Exactly sized heap blocks so AddressSanitizer reports any access past data + len.
  for (size_t len = 0; len <= 300; ++len) {
    for (uint64_t offset = 0; offset < 4; ++offset) {
      std::unique_ptr<uint8_t[]> data(new uint8_t[len == 0 ? 1 : len]);
      const std::vector<uint8_t> input = pattern(len, 7);
      if (len > 0) std::memcpy(data.get(), input.data(), len);
      std::vector<uint8_t> expected = input;
      reference_unmask(expected.data(), len, kKey, offset);
      unmask(data.get(), len, kKey, offset);
      ASSERT_EQ(std::vector<uint8_t>(data.get(), data.get() + len), expected) << len;
    }
  }
}

TEST(Unmask, LargeOffsetsUseOnlyTheirPhase) {
  const std::vector<uint8_t> input = pattern(1000, 3);
  for (uint64_t offset : {4ull, 1ull << 32, (1ull << 32) + 1, (1ull << 63) + 3, ~0ull}) {
    std::vector<uint8_t> actual = input;
    std::vector<uint8_t> expected = input;
    unmask(actual.data(), actual.size(), kKey, offset);
    reference_unmask(expected.data(), expected.size(), kKey, offset);
    EXPECT_EQ(actual, expected) << offset;
  }
}

TEST(Unmask, PiecewiseEqualsWhole) {
  const std::vector<uint8_t> input = pattern(777, 11);
  std::vector<uint8_t> whole = input;
  unmask(whole.data(), whole.size(), kKey, 0);
  for (size_t split = 0; split <= input.size(); split += 13) {
    for (size_t split2 = split; split2 <= input.size(); split2 += 97) {
      std::vector<uint8_t> pieces = input;
      unmask(pieces.data(), split, kKey, 0);
      unmask(pieces.data() + split, split2 - split, kKey, split);
      unmask(pieces.data() + split2, pieces.size() - split2, kKey, split2);
      ASSERT_EQ(pieces, whole) << split << " " << split2;
    }
  }
}

TEST(Unmask, MaskingTwiceIsIdentityAndKnownVector) {
  // RFC 6455 5.7: "Hello" masked with 37 fa 21 3d is 7f 9f 4d 51 58.
  uint8_t hello[5] = {'H', 'e', 'l', 'l', 'o'};
  unmask(hello, 5, kKey, 0);
  const uint8_t expected[5] = {0x7f, 0x9f, 0x4d, 0x51, 0x58};
  EXPECT_EQ(0, std::memcmp(hello, expected, 5));
  unmask(hello, 5, kKey, 0);
  EXPECT_EQ(0, std::memcmp(hello, "Hello", 5));

  std::vector<uint8_t> data = pattern(65536 + 3, 5);
  const std::vector<uint8_t> original = data;
  unmask(data.data() + 1, data.size() - 1, kKey, 2);
  EXPECT_NE(data, original);
  unmask(data.data() + 1, data.size() - 1, kKey, 2);
  EXPECT_EQ(data, original);
}

TEST(Unmask, ZeroKeyLeavesDataAlone) {
  const uint8_t zero[4] = {0, 0, 0, 0};
  std::vector<uint8_t> data = pattern(100, 9);
  const std::vector<uint8_t> original = data;
  unmask(data.data(), data.size(), zero, 1);
  EXPECT_EQ(data, original);
}

}  // namespace
}  // namespace protocol
