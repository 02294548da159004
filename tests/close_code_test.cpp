#include "protocol/close_code.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "protocol/frame_header.h"
#include "protocol/protocol_error.h"

namespace protocol {
namespace {

std::vector<uint8_t> close_body(uint16_t code, const std::string& reason = "") {
  std::vector<uint8_t> out(2 + reason.size());
  out[0] = static_cast<uint8_t>(code >> 8);
  out[1] = static_cast<uint8_t>(code);
  std::copy(reason.begin(), reason.end(), out.begin() + 2);
  return out;
}

ProtocolError validate(const std::vector<uint8_t>& body) {
  return validate_close_payload(body.data(), body.size());
}

TEST(CloseCode, WireValidityOverWholeRange) {
  for (uint32_t code = 0; code <= 0xFFFF; ++code) {
    const bool expected = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
                          (code >= 3000 && code <= 4999);
    ASSERT_EQ(is_valid_wire_close_code(static_cast<uint16_t>(code)), expected) << code;
  }
}

TEST(CloseCode, NamedBoundaries) {
  for (uint16_t code : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000,
                        3999, 4000, 4999}) {
    EXPECT_TRUE(is_valid_wire_close_code(code)) << code;
  }
  for (uint16_t code : {0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535}) {
    EXPECT_FALSE(is_valid_wire_close_code(code)) << code;
  }
  EXPECT_FALSE(is_valid_wire_close_code(kCloseNoStatus));
  EXPECT_FALSE(is_valid_wire_close_code(kCloseAbnormal));
}

TEST(ClosePayload, EmptyIsValidAndReportsNoStatus) {
  EXPECT_EQ(validate_close_payload(nullptr, 0), ProtocolError::kNone);
  EXPECT_EQ(close_payload_code(nullptr, 0), kCloseNoStatus);
}

TEST(ClosePayload, OneByteIsInvalid) {
  const uint8_t one[1] = {0x03};
  EXPECT_EQ(validate_close_payload(one, 1), ProtocolError::kInvalidClosePayload);
}

TEST(ClosePayload, CodeMustBeValid) {
  EXPECT_EQ(validate(close_body(1000)), ProtocolError::kNone);
  EXPECT_EQ(validate(close_body(4999, "bye")), ProtocolError::kNone);
  for (uint16_t code : {0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000}) {
    EXPECT_EQ(validate(close_body(code)), ProtocolError::kInvalidCloseCode) << code;
    EXPECT_EQ(validate(close_body(code, "reason")), ProtocolError::kInvalidCloseCode) << code;
  }
}

TEST(ClosePayload, ReasonMustBeUtf8) {
  EXPECT_EQ(validate(close_body(1000, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80")), ProtocolError::kNone);
  EXPECT_EQ(validate(close_body(1000, "bad \xff")), ProtocolError::kInvalidUtf8);
  EXPECT_EQ(validate(close_body(1000, "\xc0\xaf")), ProtocolError::kInvalidUtf8);   // overlong
  EXPECT_EQ(validate(close_body(1000, "\xed\xa0\x80")), ProtocolError::kInvalidUtf8);  // surrogate
  // A reason ending inside a code point is not complete UTF-8.
  EXPECT_EQ(validate(close_body(1000, "caf\xc3")), ProtocolError::kInvalidUtf8);
}

TEST(ClosePayload, LongerThanControlLimitIsInvalid) {
  const std::vector<uint8_t> max = close_body(1000, std::string(kMaxControlPayload - 2, 'r'));
  EXPECT_EQ(validate(max), ProtocolError::kNone);
  const std::vector<uint8_t> over = close_body(1000, std::string(kMaxControlPayload - 1, 'r'));
  EXPECT_EQ(validate(over), ProtocolError::kInvalidClosePayload);
}

TEST(ClosePayload, CodeIsBigEndian) {
  const std::vector<uint8_t> body = close_body(4321, "x");
  EXPECT_EQ(body[0], 0x10);
  EXPECT_EQ(body[1], 0xE1);
  EXPECT_EQ(close_payload_code(body.data(), body.size()), 4321);
}

TEST(EncodeClosePayload, WritesCodeAndReason) {
  uint8_t out[kMaxControlPayload];
  const size_t len = encode_close_payload(out, kCloseGoingAway, "server restart");
  ASSERT_EQ(len, 2 + std::strlen("server restart"));
  EXPECT_EQ(out[0], 0x03);
  EXPECT_EQ(out[1], 0xE9);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(out) + 2, len - 2), "server restart");
  EXPECT_EQ(validate_close_payload(out, len), ProtocolError::kNone);
  EXPECT_EQ(close_payload_code(out, len), kCloseGoingAway);
}

TEST(EncodeClosePayload, EmptyReason) {
  uint8_t out[kMaxControlPayload];
  ASSERT_EQ(encode_close_payload(out, kCloseNormal, ""), 2u);
  EXPECT_EQ(close_payload_code(out, 2), kCloseNormal);
  ASSERT_EQ(encode_close_payload(out, kCloseNormal, std::string_view()), 2u);
}

TEST(EncodeClosePayload, NoStatusIsAnEmptyBody) {
  uint8_t out[kMaxControlPayload];
  EXPECT_EQ(encode_close_payload(out, kCloseNoStatus, "ignored"), 0u);
}

TEST(EncodeClosePayload, TruncatesAsciiToControlLimit) {
  uint8_t out[kMaxControlPayload];
  const std::string reason(500, 'z');
  const size_t len = encode_close_payload(out, kClosePolicyViolation, reason);
  EXPECT_EQ(len, kMaxControlPayload);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(out) + 2, len - 2), reason.substr(0, len - 2));
  EXPECT_EQ(validate_close_payload(out, len), ProtocolError::kNone);
}

TEST(EncodeClosePayload, TruncatesOnCodePointBoundary) {
  // Shift multi-byte code points across the cut so every width of code point straddles it.
  const std::string points[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
  for (const std::string& point : points) {
    for (size_t lead = 0; lead < 8; ++lead) {
      std::string reason(lead, 'a');
      while (reason.size() < 200) reason += point;
      uint8_t out[kMaxControlPayload];
      const size_t len = encode_close_payload(out, kCloseNormal, reason);
      ASSERT_LE(len, kMaxControlPayload);
      EXPECT_GT(len, kMaxControlPayload - point.size());
      EXPECT_EQ(validate_close_payload(out, len), ProtocolError::kNone) << point.size() << " " << lead;
      EXPECT_EQ(std::string(reinterpret_cast<char*>(out) + 2, len - 2), reason.substr(0, len - 2));
    }
  }
}

TEST(ProtocolErrorMapping, CloseCodes) {
  EXPECT_EQ(close_code_for(ProtocolError::kInvalidUtf8), kCloseInvalidPayload);
  EXPECT_EQ(close_code_for(ProtocolError::kMessageTooBig), kCloseMessageTooBig);
  EXPECT_EQ(close_code_for(ProtocolError::kInvalidCompressedData), kCloseInvalidPayload);
  EXPECT_EQ(close_code_for(ProtocolError::kMisplacedRsv1), kCloseProtocolError);
  for (ProtocolError error :
       {ProtocolError::kUnmaskedClientFrame, ProtocolError::kMaskedServerFrame,
        ProtocolError::kReservedBitsSet, ProtocolError::kReservedOpcode,
        ProtocolError::kFragmentedControlFrame, ProtocolError::kControlFrameTooLong,
        ProtocolError::kLengthTopBitSet, ProtocolError::kNonMinimalLength,
        ProtocolError::kUnexpectedContinuation, ProtocolError::kExpectedContinuation,
        ProtocolError::kInvalidClosePayload, ProtocolError::kInvalidCloseCode}) {
    EXPECT_EQ(close_code_for(error), kCloseProtocolError) << int(error);
  }
}

TEST(ProtocolErrorMapping, ReasonsFitACloseFrameAndAreDistinct) {
  std::vector<std::string_view> seen;
  for (int value = 1; value <= static_cast<int>(ProtocolError::kInvalidCompressedData); ++value) {
    const ProtocolError error = static_cast<ProtocolError>(value);
    const std::string_view reason = reason_for(error);
    EXPECT_FALSE(reason.empty()) << value;
    EXPECT_LE(reason.size(), kMaxControlPayload - 2) << value;
    for (std::string_view other : seen) EXPECT_NE(reason, other) << value;
    seen.push_back(reason);
    // Every reason must encode into a valid close frame with its mapped code.
    uint8_t out[kMaxControlPayload];
    const size_t len = encode_close_payload(out, close_code_for(error), reason);
    EXPECT_EQ(validate_close_payload(out, len), ProtocolError::kNone) << value;
  }
}

}  // namespace
}  // namespace protocol
