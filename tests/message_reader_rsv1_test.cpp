// MessageReader with permessage-deflate negotiated (RFC 7692 6.1): RSV1 marks a compressed
// message on its first frame only, compressed pieces go to on_compressed_data unchecked.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "protocol/message_reader.h"

namespace protocol {
namespace {

const uint8_t kKey[4] = {0x11, 0x22, 0x33, 0x44};

std::vector<uint8_t> frame(Opcode opcode, std::string_view payload, bool fin = true, bool rsv1 = false) {
  std::vector<uint8_t> out(kMaxFrameHeaderLength);
  out.resize(encode_masked_frame_header(out.data(), opcode, payload.size(), kKey, fin, rsv1));
  const size_t start = out.size();
  out.insert(out.end(), payload.begin(), payload.end());
  unmask(out.data() + start, payload.size(), kKey, 0);
  return out;
}

std::vector<uint8_t> concat(std::initializer_list<std::vector<uint8_t>> parts) {
  std::vector<uint8_t> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

struct Sink : MessageSink {
  std::string plain, compressed, log;
  bool on_data(Opcode, std::span<uint8_t> piece, bool first, bool last) override {
    plain.append(piece.begin(), piece.end());
    log += std::string("P") + (first ? "f" : "") + (last ? "l" : "") + " ";
    return true;
  }
  bool on_compressed_data(Opcode, std::span<uint8_t> piece, bool first, bool last) override {
    compressed.append(piece.begin(), piece.end());
    log += std::string("C") + (first ? "f" : "") + (last ? "l" : "") + " ";
    return true;
  }
  bool on_control(Opcode, std::span<const uint8_t>) override {
    log += "K ";
    return true;
  }
};

ReaderLimits deflate_limits() {
  ReaderLimits limits;
  limits.allowed_rsv = kRsv1;
  return limits;
}

// Feeds `stream` split at every position; every split must give the same events and error.
void check_all_splits(std::vector<uint8_t> stream, const ReaderLimits& limits, ProtocolError expected,
                      const std::string& compressed, const std::string& plain) {
  for (size_t split = 0; split <= stream.size(); ++split) {
    std::vector<uint8_t> copy = stream;
    ReaderState state;
    Sink sink;
    FeedResult r = feed_messages(state, copy.data(), split, limits, sink);
    if (r.error == ProtocolError::kNone) {
      r = feed_messages(state, copy.data() + split, copy.size() - split, limits, sink);
    }
    EXPECT_EQ(r.error, expected) << "split " << split;
    EXPECT_EQ(sink.compressed, compressed) << "split " << split;
    EXPECT_EQ(sink.plain, plain) << "split " << split;
  }
}

TEST(MessageReaderRsv1, CompressedMessagesGoToTheCompressedSinkUnchecked) {
  // Not UTF-8 (compressed bytes rarely are): no 1007 from the reader for a compressed text.
  const std::string junk("\xff\xfe\x00\xc3", 4);
  check_all_splits(concat({frame(Opcode::kText, junk, true, true), frame(Opcode::kText, "plain")}),
                   deflate_limits(), ProtocolError::kNone, junk, "plain");
}

TEST(MessageReaderRsv1, FragmentedCompressedMessageKeepsItsFlagAcrossContinuations) {
  const auto stream = concat({frame(Opcode::kBinary, "ab", false, true), frame(Opcode::kPing, "p"),
                              frame(Opcode::kContinuation, "cd", false), frame(Opcode::kContinuation, "ef", true),
                              frame(Opcode::kText, "after")});
  check_all_splits(stream, deflate_limits(), ProtocolError::kNone, "abcdef", "after");
  std::vector<uint8_t> copy = stream;
  ReaderState state;
  Sink sink;
  feed_messages(state, copy.data(), copy.size(), deflate_limits(), sink);
  EXPECT_EQ(sink.log, "Cf K C Cl Pfl ");
}

TEST(MessageReaderRsv1, Rsv1OnAContinuationFails) {
  check_all_splits(concat({frame(Opcode::kText, "ab", false, true), frame(Opcode::kContinuation, "cd", true, true)}),
                   deflate_limits(), ProtocolError::kMisplacedRsv1, "ab", "");
  check_all_splits(concat({frame(Opcode::kText, "ab", false), frame(Opcode::kContinuation, "cd", true, true)}),
                   deflate_limits(), ProtocolError::kMisplacedRsv1, "", "ab");
}

TEST(MessageReaderRsv1, Rsv1OnAControlFrameFails) {
  for (Opcode control : {Opcode::kPing, Opcode::kPong, Opcode::kClose}) {
    check_all_splits(frame(control, "", true, true), deflate_limits(), ProtocolError::kMisplacedRsv1, "", "");
  }
}

TEST(MessageReaderRsv1, Rsv1WithoutTheExtensionIsStillAReservedBit) {
  check_all_splits(frame(Opcode::kText, "x", true, true), ReaderLimits{}, ProtocolError::kReservedBitsSet, "", "");
}

TEST(MessageReaderRsv1, UncompressedTextAfterCompressedIsStillValidated) {
  check_all_splits(concat({frame(Opcode::kText, "\xff", true, true), frame(Opcode::kText, "ok\xff")}),
                   deflate_limits(), ProtocolError::kInvalidUtf8, "\xff", "ok");
}

}  // namespace
}  // namespace protocol
