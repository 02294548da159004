#include "protocol/permessage_deflate.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "protocol/frame_header.h"

namespace protocol {
namespace {

reactor::SharedBuffer* encoded_frame(Opcode opcode, const std::string& payload, bool fin = true) {
  uint8_t header[kMaxFrameHeaderLength];
  const size_t header_length = encode_frame_header(header, opcode, payload.size(), fin);
  reactor::SharedBuffer* frame = reactor::SharedBuffer::create(header_length + payload.size());
  frame->append(header, header_length);
  frame->append(payload.data(), payload.size());
  return frame;
}

std::string chat_json(size_t text_size) {
  return R"({"type":"msg","room":"lobby","from":"alice","text":")" + std::string(text_size, 'x') +
         R"(","ts":1700000000000,"seq":42})";
}

// Parses a compressed frame and inflates its payload.
std::string inflate_frame(reactor::SharedBuffer* frame, bool& rsv1) {
  const HeaderParse parse = parse_frame_header(frame->data(), frame->size(), Sender::kServer, kRsv1);
  EXPECT_EQ(parse.status, ParseStatus::kOk);
  rsv1 = parse.header.rsv1;
  EXPECT_EQ(parse.header.header_length + parse.header.payload_length, frame->size());
  const std::span<const uint8_t> payload(frame->data() + parse.header.header_length, parse.header.payload_length);
  if (!rsv1) return std::string(payload.begin(), payload.end());
  MessageInflater inflater;
  std::vector<uint8_t> out;
  EXPECT_EQ(inflater.inflate(payload, 1 << 20, out), InflateResult::kOk);
  return std::string(out.begin(), out.end());
}

TEST(PermessageDeflate, WindowClassesNeverExceedWhatThePeerAllows) {
  for (uint8_t bits = 8; bits <= 15; ++bits) {
    const int used = PermessageDeflate::window_bits_of(PermessageDeflate::window_class(bits));
    EXPECT_LE(used, bits < 9 ? 9 : bits) << int(bits);  // 8 is served by 9 (see MessageDeflater)
    EXPECT_GE(used, bits - 2) << int(bits);
  }
  EXPECT_EQ(PermessageDeflate::window_class(15), 0);
  EXPECT_EQ(PermessageDeflate::window_bits_of(0), 15);
  EXPECT_EQ(PermessageDeflate::window_bits_of(3), 9);
}

TEST(PermessageDeflate, CompressHonoursTheThresholdAndGain) {
  PermessageDeflate deflate(64);
  std::span<const uint8_t> out;
  const std::string small(63, 'a'), enough(64, 'a');
  EXPECT_FALSE(deflate.compress(0, {reinterpret_cast<const uint8_t*>(small.data()), small.size()}, out));
  ASSERT_TRUE(deflate.compress(0, {reinterpret_cast<const uint8_t*>(enough.data()), enough.size()}, out));
  EXPECT_LT(out.size(), enough.size());
  std::string noise(500, '\0');
  unsigned x = 1;
  for (char& c : noise) c = static_cast<char>((x = x * 1664525u + 1013904223u) >> 24);
  EXPECT_FALSE(deflate.compress(0, {reinterpret_cast<const uint8_t*>(noise.data()), noise.size()}, out));
}

TEST(PermessageDeflate, BroadcastFrameIsCompressedOncePerClass) {
  PermessageDeflate deflate;
  const std::string json = chat_json(300);
  reactor::SharedBuffer* plain = encoded_frame(Opcode::kText, json);
  reactor::SharedBuffer* a = deflate.compressed_frame(plain, 0);
  ASSERT_NE(a, plain);
  EXPECT_EQ(deflate.compressed_frame(plain, 0), a);  // shared, not rebuilt
  EXPECT_LT(a->size(), plain->size());
  reactor::SharedBuffer* b = deflate.compressed_frame(plain, 3);
  EXPECT_NE(b, a);
  EXPECT_EQ(deflate.compressed_frame(plain, 0), a);
  bool rsv1 = false;
  EXPECT_EQ(inflate_frame(a, rsv1), json);
  EXPECT_TRUE(rsv1);
  EXPECT_EQ(inflate_frame(b, rsv1), json);
  EXPECT_EQ(plain->references(), 2u);  // ours + the cache's
  // A new frame replaces the cache and drops its references.
  a->retain();
  reactor::SharedBuffer* other = encoded_frame(Opcode::kBinary, json);
  reactor::SharedBuffer* c = deflate.compressed_frame(other, 0);
  EXPECT_NE(c, a);
  EXPECT_EQ(plain->references(), 1u);
  EXPECT_EQ(a->references(), 1u);
  a->release();
  plain->release();
  other->release();
}

TEST(PermessageDeflate, FramesThatMustStayPlainAreReturnedAsTheyAre) {
  PermessageDeflate deflate;
  for (reactor::SharedBuffer* frame : {encoded_frame(Opcode::kText, "short"),
                                       encoded_frame(Opcode::kText, chat_json(300), false),
                                       encoded_frame(Opcode::kPing, std::string(100, 'p'))}) {
    EXPECT_EQ(deflate.compressed_frame(frame, 0), frame);
    EXPECT_EQ(deflate.compressed_frame(frame, 0), frame);
    frame->release();
  }
  // Bytes that are not one whole frame.
  reactor::SharedBuffer* torn = encoded_frame(Opcode::kText, chat_json(300));
  torn->set_size(torn->size() - 1);
  EXPECT_EQ(deflate.compressed_frame(torn, 0), torn);
  torn->release();
}

TEST(PermessageDeflate, InflateLimitsAndViews) {
  PermessageDeflate deflate;
  const std::string json = chat_json(1000);
  std::span<const uint8_t> compressed;
  ASSERT_TRUE(deflate.compress(0, {reinterpret_cast<const uint8_t*>(json.data()), json.size()}, compressed));
  const std::vector<uint8_t> copy(compressed.begin(), compressed.end());
  std::span<uint8_t> out;
  ASSERT_EQ(deflate.inflate(copy, json.size(), out), InflateResult::kOk);
  EXPECT_EQ(std::string(out.begin(), out.end()), json);
  EXPECT_EQ(deflate.inflate(copy, json.size() - 1, out), InflateResult::kTooBig);
  EXPECT_TRUE(out.empty());
}

TEST(PermessageDeflate, LargeScratchBuffersAreReleased) {
  PermessageDeflate deflate;
  const std::string big(3u << 20, 'q');
  std::span<const uint8_t> compressed;
  ASSERT_TRUE(deflate.compress(0, {reinterpret_cast<const uint8_t*>(big.data()), big.size()}, compressed));
  const std::vector<uint8_t> copy(compressed.begin(), compressed.end());
  std::span<uint8_t> out;
  ASSERT_EQ(deflate.inflate(copy, big.size(), out), InflateResult::kOk);
  EXPECT_EQ(out.size(), big.size());
  EXPECT_GT(deflate.scratch_bytes(), big.size());
  deflate.release_large_buffers();
  EXPECT_EQ(deflate.scratch_bytes(), 0u);
  // Small messages still work afterwards (buffers regrow on demand).
  const std::string small = chat_json(500);
  ASSERT_TRUE(deflate.compress(0, {reinterpret_cast<const uint8_t*>(small.data()), small.size()}, compressed));
  const std::vector<uint8_t> small_copy(compressed.begin(), compressed.end());
  ASSERT_EQ(deflate.inflate(small_copy, small.size(), out), InflateResult::kOk);
  EXPECT_EQ(std::string(out.begin(), out.end()), small);
}

}  // namespace
}  // namespace protocol
