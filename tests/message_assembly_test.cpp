// Assembling messages that arrive in many reads (protocol/message_assembly.h, issue 18): the
// buffer's growth rule, direct reads into it, and a model of WsServer's read loop run over every
// way of cutting a stream into reads, which must always give the same messages and errors.
#include "protocol/message_assembly.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "tests/support/ws_test_client.h"
#include "tests/support/utf8_text.h"

namespace protocol {
namespace {

using parley_test::encode_frame;
using parley_test::FrameOptions;

std::string frame(Opcode opcode, std::string_view payload, bool fin = true) {
  FrameOptions options;
  options.fin = fin;
  options.mask_key = std::array<uint8_t, 4>{0x9a, 0x01, 0xc3, 0x7e};
  return encode_frame(static_cast<uint8_t>(opcode), payload, options);
}

using parley_test::mixed_text;

struct Message {
  Opcode opcode;
  std::string bytes;
  bool operator==(const Message&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Message& m) {
  return os << int(m.opcode) << " [" << m.bytes.size() << "] " << m.bytes.substr(0, 40);
}

// What WsServer::Reader does with pieces: a whole message is taken as it is, any other is
// assembled with assemble_piece and taken at its last piece.
class AssemblingSink : public MessageSink {
 public:
  explicit AssemblingSink(const ReaderState& state) : state_(state) {}

  bool on_data(Opcode opcode, std::span<uint8_t> piece, bool first, bool last) override {
    if (first && last) {
      messages.push_back({opcode, std::string(piece.begin(), piece.end())});
      return true;
    }
    const bool in_place = !piece.empty() && piece.data() == buffer.end() && piece.size() <= buffer.spare();
    if (!assemble_piece(buffer, piece, state_)) return false;
    (in_place ? direct_bytes : copied_bytes) += piece.size();
    largest_capacity = std::max(largest_capacity, buffer.capacity());
    if (last) {
      messages.push_back({opcode, std::string(buffer.data(), buffer.data() + buffer.size())});
      buffer.clear();
    }
    return true;
  }
  bool on_control(Opcode opcode, std::span<const uint8_t> payload) override {
    messages.push_back({opcode, std::string(payload.begin(), payload.end())});
    return true;
  }

  MessageBuffer buffer;
  std::vector<Message> messages;  // data messages and control frames, in order
  size_t direct_bytes = 0;        // message bytes read straight into the buffer
  size_t copied_bytes = 0;        // message bytes copied into it from a read buffer
  size_t largest_capacity = 0;

 private:
  const ReaderState& state_;
};

struct Outcome {
  std::vector<Message> messages;
  ProtocolError error = ProtocolError::kNone;
  bool operator==(const Outcome&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Outcome& o) {
  os << "error " << int(o.error) << "\n";
  for (const Message& m : o.messages) os << "  " << m << "\n";
  return os;
}

struct ReadRun {
  Outcome outcome;
  size_t direct_bytes = 0;
  size_t copied_bytes = 0;
  size_t largest_capacity = 0;
};

// WsServer::on_readable's loop over `stream` arriving in chunks that end at `cuts`: each read
// goes into the direct read window when there is one (taking at most what the window holds, as
// read(2) would), else into an exactly sized heap buffer standing in for the receive buffer.
ReadRun read_in_chunks(const std::string& stream, const std::vector<size_t>& cuts, const ReaderLimits& limits = {},
                   const DirectReadLimits& direct = {}) {
  ReaderState state;
  AssemblingSink sink(state);
  ReadRun run;
  size_t begin = 0;
  for (size_t i = 0; i <= cuts.size() && run.outcome.error == ProtocolError::kNone; ++i) {
    const size_t end = i < cuts.size() ? cuts[i] : stream.size();
    while (begin < end) {
      std::span<uint8_t> window = direct_read_window(state, sink.buffer, direct);
      std::unique_ptr<uint8_t[]> scratch;
      uint8_t* into = window.data();
      size_t n = std::min(window.size(), end - begin);
      if (window.empty()) {
        n = end - begin;
        scratch.reset(new uint8_t[n]);
        into = scratch.get();
      }
      std::memcpy(into, stream.data() + begin, n);
      const FeedResult result = feed_messages(state, into, n, limits, sink);
      if (result.error != ProtocolError::kNone) {
        run.outcome.error = result.error;
        break;
      }
      EXPECT_EQ(result.consumed, n);
      begin += n;
    }
    begin = end;
  }
  run.outcome.messages = sink.messages;
  run.direct_bytes = sink.direct_bytes;
  run.copied_bytes = sink.copied_bytes;
  run.largest_capacity = sink.largest_capacity;
  return run;
}

std::vector<size_t> every_byte(size_t size) {
  std::vector<size_t> cuts;
  for (size_t i = 1; i < size; ++i) cuts.push_back(i);
  return cuts;
}

std::vector<size_t> every_n(size_t size, size_t n) {
  std::vector<size_t> cuts;
  for (size_t i = n; i < size; i += n) cuts.push_back(i);
  return cuts;
}

// Tiny thresholds, so a stream of a few hundred bytes takes the direct path at every cut.
constexpr DirectReadLimits kTinyDirect{8, 4};

// ---- MessageBuffer ----

TEST(MessageBuffer, GrowsByDoublingAndKeepsItsBytes) {
  MessageBuffer buffer;
  EXPECT_EQ(buffer.capacity(), 0u);
  ASSERT_TRUE(buffer.append(reinterpret_cast<const uint8_t*>("abc"), 3));
  EXPECT_EQ(buffer.capacity(), 3u);
  ASSERT_TRUE(buffer.append(reinterpret_cast<const uint8_t*>("d"), 1));
  EXPECT_EQ(buffer.capacity(), 6u) << "doubles rather than growing by what was asked";
  EXPECT_EQ(std::string(buffer.data(), buffer.data() + buffer.size()), "abcd");
  ASSERT_TRUE(buffer.reserve_more(100));
  EXPECT_EQ(buffer.capacity(), 104u) << "at least what was asked";
  EXPECT_EQ(std::string(buffer.data(), buffer.data() + buffer.size()), "abcd");
}

TEST(MessageBuffer, AtMostCapsTheGrowth) {
  MessageBuffer buffer;
  ASSERT_TRUE(buffer.reserve_more(1000));
  buffer.commit(1000);
  ASSERT_TRUE(buffer.reserve_more(10, 1200));
  EXPECT_EQ(buffer.capacity(), 1200u) << "not doubled past the known end";
  // An at_most below what is needed is ignored rather than making the buffer too small.
  buffer.commit(200);
  ASSERT_TRUE(buffer.reserve_more(50, 1100));
  EXPECT_EQ(buffer.capacity(), 2400u);
}

TEST(MessageBuffer, ClearKeepsMemoryReleaseFreesIt) {
  MessageBuffer buffer;
  ASSERT_TRUE(buffer.reserve_more(4096));
  buffer.commit(10);
  buffer.clear();
  EXPECT_TRUE(buffer.empty());
  EXPECT_EQ(buffer.capacity(), 4096u);
  EXPECT_EQ(buffer.spare(), 4096u);
  buffer.release();
  EXPECT_EQ(buffer.capacity(), 0u);
  EXPECT_EQ(buffer.data(), nullptr);
}

TEST(MessageBuffer, ImpossibleGrowthFailsAndChangesNothing) {
  MessageBuffer buffer;
  ASSERT_TRUE(buffer.append(reinterpret_cast<const uint8_t*>("x"), 1));
  EXPECT_FALSE(buffer.reserve_more(SIZE_MAX));
  EXPECT_EQ(buffer.size(), 1u);
  EXPECT_EQ(buffer.capacity(), 1u);
  EXPECT_EQ(buffer.data()[0], 'x');
}

// ---- direct_read_window / assemble_piece ----

TEST(DirectReadWindow, OnlyInsideALargeDataFrame) {
  MessageBuffer buffer;
  ReaderState state;
  EXPECT_TRUE(direct_read_window(state, buffer).empty()) << "no frame open";
  state.in_frame = true;
  state.frame.opcode = Opcode::kPing;
  state.frame.payload_length = 100;
  EXPECT_TRUE(direct_read_window(state, buffer, kTinyDirect).empty()) << "control frames are collected whole";
  state.frame.opcode = Opcode::kBinary;
  state.frame.payload_length = 20000;
  state.frame_done = 4000;
  EXPECT_TRUE(direct_read_window(state, buffer).empty()) << "16000 left: below the 16 KiB default";
  state.frame_done = 3000;
  std::span<uint8_t> window = direct_read_window(state, buffer);
  EXPECT_EQ(window.size(), 4096u) << "the first window is small";
  EXPECT_EQ(window.data(), buffer.end());
  EXPECT_EQ(buffer.capacity(), 4096u);
}

TEST(DirectReadWindow, NeverPastTheFrameAndNoMoreThanDoubling) {
  MessageBuffer buffer;
  ReaderState state;
  state.in_frame = true;
  state.frame.opcode = Opcode::kText;
  state.frame.fin = false;  // more frames may follow: no end is known
  state.frame.payload_length = 1 << 20;
  ASSERT_TRUE(buffer.reserve_more(50000));
  buffer.commit(50000);
  state.frame_done = 50000;
  std::span<uint8_t> window = direct_read_window(state, buffer);
  EXPECT_GE(window.size(), 50000u);
  EXPECT_LE(buffer.capacity(), 100000u) << "at most twice what arrived";
  state.frame_done = (1 << 20) - 30000;
  buffer.commit(window.size());
  window = direct_read_window(state, buffer);
  EXPECT_EQ(window.size(), 30000u) << "stops at the frame's end, even with more room";
}

TEST(DirectReadWindow, TheLastFrameBoundsTheBuffer) {
  MessageBuffer buffer;
  ReaderState state;
  state.in_frame = true;
  state.frame.opcode = Opcode::kBinary;
  state.frame.fin = true;
  state.frame.payload_length = 100000;
  state.frame_done = 70000;
  ASSERT_TRUE(buffer.reserve_more(70000));
  buffer.commit(70000);
  std::span<uint8_t> window = direct_read_window(state, buffer);
  EXPECT_EQ(window.size(), 30000u);
  EXPECT_EQ(buffer.capacity(), 100000u) << "exactly the message: no doubling past its end";
}

TEST(AssemblePiece, CountsBytesReadInPlaceAndCopiesOthers) {
  MessageBuffer buffer;
  ReaderState state;
  ASSERT_TRUE(buffer.reserve_more(64));
  std::memcpy(buffer.end(), "in place", 8);
  ASSERT_TRUE(assemble_piece(buffer, {buffer.end(), 8}, state));
  EXPECT_EQ(buffer.size(), 8u);
  const std::string elsewhere = "copied";
  ASSERT_TRUE(assemble_piece(buffer, {reinterpret_cast<const uint8_t*>(elsewhere.data()), elsewhere.size()}, state));
  EXPECT_EQ(std::string(buffer.data(), buffer.data() + buffer.size()), "in placecopied");
  ASSERT_TRUE(assemble_piece(buffer, {}, state));
  EXPECT_EQ(buffer.size(), 14u);
}

// ---- the read loop over every split ----

// A stream with every kind of unit: a whole text message, a text message fragmented with code
// points split across its frames and a ping between them, an empty continuation, binary, and a
// long text frame that the direct path reads.
struct Stream {
  std::string bytes;
  Outcome expected;
};

Stream mixed_stream() {
  Stream s;
  const std::string part1 = "one \xF0\x9F\x98";  // an emoji's first three bytes
  const std::string part2 = "\x80 two \xE2\x82";  // its last byte, a euro sign's first two
  const std::string part3 = "\xAC three";
  const std::string binary(90, '\xFE');
  const std::string long_text = mixed_text(150);
  s.bytes = frame(Opcode::kText, "hello") + frame(Opcode::kText, part1, false) + frame(Opcode::kPing, "p") +
            frame(Opcode::kContinuation, part2, false) + frame(Opcode::kContinuation, "", false) +
            frame(Opcode::kContinuation, part3) + frame(Opcode::kBinary, binary) + frame(Opcode::kText, long_text);
  s.expected.messages = {{Opcode::kText, "hello"},
                         {Opcode::kPing, "p"},
                         {Opcode::kText, part1 + part2 + part3},
                         {Opcode::kBinary, binary},
                         {Opcode::kText, long_text}};
  return s;
}

TEST(MessageAssembly, EverySplitGivesTheSameMessages) {
  const Stream s = mixed_stream();
  ASSERT_EQ(read_in_chunks(s.bytes, {}, {}, kTinyDirect).outcome, s.expected);
  const ReadRun bytewise = read_in_chunks(s.bytes, every_byte(s.bytes.size()), {}, kTinyDirect);
  ASSERT_EQ(bytewise.outcome, s.expected) << "byte at a time";
  EXPECT_GT(bytewise.direct_bytes, 100u) << "the direct path was taken";
  for (size_t cut = 1; cut < s.bytes.size(); ++cut) {
    ASSERT_EQ(read_in_chunks(s.bytes, {cut}, {}, kTinyDirect).outcome, s.expected) << "cut " << cut;
    ASSERT_EQ(read_in_chunks(s.bytes, {cut}).outcome, s.expected) << "cut " << cut << ", default limits";
  }
  for (size_t a = 1; a < s.bytes.size(); ++a) {
    for (size_t b = a + 1; b < s.bytes.size(); b += 3) {
      ASSERT_EQ(read_in_chunks(s.bytes, {a, b}, {}, kTinyDirect).outcome, s.expected) << "cuts " << a << " " << b;
    }
  }
}

TEST(MessageAssembly, ALargeFrameInSmallReadsIsCopiedOnlyUntilTheDirectPathTakesOver) {
  const std::string text = mixed_text(300 * 1024);
  const std::string stream = frame(Opcode::kText, text);
  for (size_t chunk : {64u, 1000u, 4096u, 70000u}) {
    const ReadRun run = read_in_chunks(stream, every_n(stream.size(), chunk));
    ASSERT_EQ(run.outcome.messages, std::vector<Message>({{Opcode::kText, text}})) << "chunk " << chunk;
    // Copied only from the first read (before a frame is open there is no window) and once less
    // than 16 KiB of the frame is left.
    EXPECT_LE(run.copied_bytes, chunk + 16 * 1024) << "chunk " << chunk;
    EXPECT_GE(run.direct_bytes, text.size() - chunk - 16 * 1024) << "chunk " << chunk;
    EXPECT_EQ(run.direct_bytes + run.copied_bytes, text.size());
    EXPECT_EQ(run.largest_capacity, text.size()) << "grown to exactly the message, chunk " << chunk;
  }
}

TEST(MessageAssembly, FragmentedLargeMessageAcrossFramesAndReads) {
  // Four 40,000-byte frames; the cuts land inside code points, headers and frame ends.
  const std::string text = mixed_text(160000);
  std::string stream;
  for (size_t at = 0; at < text.size(); at += 40000) {
    stream += frame(at == 0 ? Opcode::kText : Opcode::kContinuation, text.substr(at, 40000), at + 40000 == text.size());
    if (at == 40000) stream += frame(Opcode::kPong, "between");
  }
  const std::vector<Message> expected = {{Opcode::kPong, "between"}, {Opcode::kText, text}};
  for (size_t chunk : {1u, 7u, 500u, 3000u, 16391u}) {
    const ReadRun run = read_in_chunks(stream, every_n(stream.size(), chunk));
    ASSERT_EQ(run.outcome.messages, expected) << "chunk " << chunk;
    if (chunk <= 3000) {
      EXPECT_GT(run.direct_bytes, text.size() / 2) << "chunk " << chunk;
    }
  }
}

TEST(MessageAssembly, AnnouncedLengthAllocatesNothingUntilTheBytesCome) {
  // A 10 MiB frame announced, 1,000 bytes of it sent: the buffer stays near what arrived.
  std::string stream = frame(Opcode::kBinary, std::string(10 << 20, 'b')).substr(0, 14 + 1000);
  const ReadRun run = read_in_chunks(stream, every_n(stream.size(), 100));
  EXPECT_TRUE(run.outcome.messages.empty());
  EXPECT_LE(run.largest_capacity, 4096u + 1000u);
}

TEST(MessageAssembly, TooBigIsFoundOnTheCrossingHeaderMidAssembly) {
  ReaderLimits limits;
  limits.max_message_size = 64 * 1024;
  const std::string stream = frame(Opcode::kBinary, std::string(48 * 1024, 'x'), false) +
                             frame(Opcode::kContinuation, std::string(20 * 1024, 'y'));
  const size_t second_header = 48 * 1024 + 8;
  for (size_t chunk : {1000u, 5000u}) {
    const ReadRun run = read_in_chunks(stream, every_n(stream.size(), chunk), limits);
    EXPECT_EQ(run.outcome.error, ProtocolError::kMessageTooBig) << "chunk " << chunk;
    EXPECT_TRUE(run.outcome.messages.empty());
  }
  // Cut at every byte around the second header: the error never waits for its payload.
  for (size_t cut = second_header - 3; cut <= second_header + 10; ++cut) {
    const std::string head = stream.substr(0, cut);
    const ReadRun run = read_in_chunks(head, every_n(head.size(), 4096), limits);
    const bool fails = cut >= second_header + 8;  // 126, a 16-bit length and the mask key
    EXPECT_EQ(run.outcome.error, fails ? ProtocolError::kMessageTooBig : ProtocolError::kNone) << "cut " << cut;
  }
}

TEST(MessageAssembly, InvalidUtf8FailsAtTheReadThatBringsIt) {
  // A 200,000-byte text frame whose byte 100,000 is 0xFF: the stream is stopped right after it,
  // so the error cannot come from waiting for the frame's end.
  std::string text = mixed_text(200000);
  text[100000] = '\xFF';
  const std::string whole = frame(Opcode::kText, text);
  const std::string stream = whole.substr(0, whole.size() - text.size() + 100001);
  for (size_t chunk : {1u, 999u, 4096u}) {
    const ReadRun run = read_in_chunks(stream, every_n(stream.size(), chunk), {}, chunk == 1 ? kTinyDirect : DirectReadLimits{});
    EXPECT_EQ(run.outcome.error, ProtocolError::kInvalidUtf8) << "chunk " << chunk;
    EXPECT_GT(run.direct_bytes, 50000u) << "found by the direct path, chunk " << chunk;
  }
  // A code point cut across reads and frames is valid: only the bad byte fails.
  std::string good = mixed_text(200000);
  const std::string split = frame(Opcode::kText, good.substr(0, 100001), false) +
                            frame(Opcode::kContinuation, good.substr(100001));
  const ReadRun run = read_in_chunks(split, every_n(split.size(), 777));
  EXPECT_EQ(run.outcome.error, ProtocolError::kNone);
  ASSERT_EQ(run.outcome.messages.size(), 1u);
  EXPECT_EQ(run.outcome.messages[0].bytes, good);
}

TEST(MessageAssembly, GrowthIsGeometricAcrossFrames) {
  // Fifty 4 KiB fragments: the buffer is reallocated a logarithmic number of times.
  std::string stream;
  std::string all;
  for (int i = 0; i < 50; ++i) {
    const std::string part(4096, static_cast<char>('a' + i % 26));
    all += part;
    stream += frame(i == 0 ? Opcode::kBinary : Opcode::kContinuation, part, i == 49);
  }
  ReaderState state;
  AssemblingSink sink(state);
  std::set<size_t> capacities;
  for (size_t at = 0; at < stream.size(); at += 1000) {
    std::string chunk = stream.substr(at, 1000);
    ASSERT_EQ(feed_messages(state, reinterpret_cast<uint8_t*>(chunk.data()), chunk.size(), {}, sink).error,
              ProtocolError::kNone);
    capacities.insert(sink.buffer.capacity());
  }
  ASSERT_EQ(sink.messages.size(), 1u);
  EXPECT_EQ(sink.messages[0].bytes, all);
  EXPECT_LE(capacities.size(), 12u);
}

}  // namespace
}  // namespace protocol
