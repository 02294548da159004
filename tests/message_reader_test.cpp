#include "protocol/message_reader.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/close_code.h"

namespace protocol {
namespace {

const uint8_t kKey[4] = {0x9a, 0x01, 0xc3, 0x7e};

using Bytes = std::vector<uint8_t>;

Bytes bytes_of(std::string_view text) { return Bytes(text.begin(), text.end()); }

// A client frame: masked with kKey (or a server frame when `masked` is false).
Bytes frame(Opcode opcode, const Bytes& payload, bool fin = true, uint8_t rsv = 0, bool masked = true) {
  Bytes out(kMaxFrameHeaderLength);
  size_t header;
  if (masked) {
    header = encode_masked_frame_header(out.data(), opcode, payload.size(), kKey, fin);
  } else {
    header = encode_frame_header(out.data(), opcode, payload.size(), fin);
  }
  out[0] |= rsv;
  out.resize(header);
  const size_t start = out.size();
  out.insert(out.end(), payload.begin(), payload.end());
  if (masked) unmask(out.data() + start, payload.size(), kKey, 0);
  return out;
}

Bytes frame(Opcode opcode, std::string_view payload, bool fin = true, uint8_t rsv = 0) {
  return frame(opcode, bytes_of(payload), fin, rsv);
}

Bytes concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& part : parts) out.insert(out.end(), part.begin(), part.end());
  return out;
}

struct Event {
  bool control = false;
  Opcode opcode = Opcode::kContinuation;
  Bytes bytes;
  bool first = false;
  bool last = false;

  bool operator==(const Event&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Event& e) {
  os << (e.control ? "control " : "data ") << int(e.opcode) << " [" << e.bytes.size() << "] \""
     << std::string(e.bytes.begin(), e.bytes.end()) << "\"" << (e.first ? " first" : "")
     << (e.last ? " last" : "");
  return os;
}

Event data_event(Opcode opcode, std::string_view text, bool first, bool last) {
  return {false, opcode, bytes_of(text), first, last};
}

Event control_event(Opcode opcode, const Bytes& payload) { return {true, opcode, payload, false, false}; }

class RecordingSink : public MessageSink {
 public:
  bool on_data(Opcode opcode, std::span<uint8_t> piece, bool first, bool last) override {
    events.push_back({false, opcode, Bytes(piece.begin(), piece.end()), first, last});
    pieces.push_back(piece.data());
    return !stop_every_event;
  }
  bool on_control(Opcode opcode, std::span<const uint8_t> payload) override {
    events.push_back({true, opcode, Bytes(payload.begin(), payload.end()), false, false});
    pieces.push_back(payload.data());
    return !stop_every_event;
  }

  std::vector<Event> events;
  std::vector<const uint8_t*> pieces;
  bool stop_every_event = false;
};

struct Outcome {
  std::vector<Event> events;  // data pieces of one message run merged
  ProtocolError error = ProtocolError::kNone;
  bool idle = false;  // the reader ended idle; false after an error

  bool operator==(const Outcome&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Outcome& o) {
  os << "error " << int(o.error) << (o.idle ? " idle" : " busy") << "\n";
  for (const Event& e : o.events) os << "  " << e << "\n";
  return os;
}

// Merges consecutive pieces of one message: what an application reassembling pieces sees.
std::vector<Event> merge_pieces(const std::vector<Event>& events) {
  std::vector<Event> out;
  for (const Event& e : events) {
    if (!e.control && !e.first && !out.empty() && !out.back().control && !out.back().last) {
      out.back().bytes.insert(out.back().bytes.end(), e.bytes.begin(), e.bytes.end());
      out.back().last = e.last;
    } else {
      out.push_back(e);
    }
  }
  return out;
}

// Feeds `stream` as consecutive reads ending at `cuts` (ascending), each read in its own exactly
// sized heap buffer as a socket read would deliver it. Resumes after the sink stops.
Outcome feed_split(const Bytes& stream, const std::vector<size_t>& cuts, const ReaderLimits& limits = {},
                   bool stop_every_event = false) {
  RecordingSink sink;
  sink.stop_every_event = stop_every_event;
  ReaderState state;
  Outcome outcome;
  size_t begin = 0;
  for (size_t i = 0; i <= cuts.size() && outcome.error == ProtocolError::kNone; ++i) {
    const size_t end = i < cuts.size() ? cuts[i] : stream.size();
    const size_t n = end - begin;
    std::unique_ptr<uint8_t[]> read(new uint8_t[n == 0 ? 1 : n]);
    if (n > 0) std::memcpy(read.get(), stream.data() + begin, n);
    size_t offset = 0;
    do {
      const FeedResult result = feed_messages(state, read.get() + offset, n - offset, limits, sink);
      EXPECT_LE(result.consumed, n - offset);
      if (result.error != ProtocolError::kNone) {
        outcome.error = result.error;
        break;
      }
      // A stop is always after an event that used at least one byte of this read.
      if (offset < n && result.consumed == 0) {
        ADD_FAILURE() << "no progress";
        break;
      }
      offset += result.consumed;
    } while (offset < n);
    begin = end;
  }
  outcome.events = merge_pieces(sink.events);
  // After an error the state is dead and its contents depend on where the reads were cut.
  outcome.idle = outcome.error == ProtocolError::kNone && state.idle();
  return outcome;
}

Outcome feed_whole(const Bytes& stream, const ReaderLimits& limits = {}) {
  return feed_split(stream, {}, limits);
}

std::vector<size_t> every_byte(size_t size) {
  std::vector<size_t> cuts;
  for (size_t i = 1; i < size; ++i) cuts.push_back(i);
  return cuts;
}

// Whole, byte-at-a-time, every single split point, and (for short streams) every pair of split
// points must all give the same outcome; also with the sink stopping after every event.
void expect_split_invariant(const Bytes& stream, const Outcome& expected, const ReaderLimits& limits = {}) {
  ASSERT_EQ(feed_whole(stream, limits), expected);
  ASSERT_EQ(feed_split(stream, every_byte(stream.size()), limits), expected) << "byte at a time";
  ASSERT_EQ(feed_split(stream, every_byte(stream.size()), limits, true), expected) << "byte, stopping";
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    ASSERT_EQ(feed_split(stream, {cut}, limits), expected) << "cut " << cut;
    ASSERT_EQ(feed_split(stream, {cut}, limits, true), expected) << "cut " << cut << ", stopping";
  }
  if (stream.size() <= 160) {
    for (size_t a = 1; a < stream.size(); ++a) {
      for (size_t b = a; b < stream.size(); ++b) {
        ASSERT_EQ(feed_split(stream, {a, b}, limits), expected) << "cuts " << a << " " << b;
      }
    }
  }
  std::mt19937 rng(12345);
  for (int round = 0; round < 200; ++round) {
    std::vector<size_t> cuts;
    size_t at = 0;
    while (true) {
      at += 1 + rng() % 40;
      if (at >= stream.size()) break;
      cuts.push_back(at);
    }
    ASSERT_EQ(feed_split(stream, cuts, limits, round % 2 == 1), expected) << "random round " << round;
  }
}

// ---- single frames ----

TEST(MessageReader, SingleFrameIsOneZeroCopyPiece) {
  Bytes stream = frame(Opcode::kText, "Hello, world");
  RecordingSink sink;
  ReaderState state;
  const FeedResult result = feed_messages(state, stream.data(), stream.size(), {}, sink);
  EXPECT_EQ(result.error, ProtocolError::kNone);
  EXPECT_EQ(result.consumed, stream.size());
  ASSERT_EQ(sink.events.size(), 1u);
  EXPECT_EQ(sink.events[0], data_event(Opcode::kText, "Hello, world", true, true));
  // The piece is the caller's buffer, unmasked in place.
  EXPECT_EQ(sink.pieces[0], stream.data() + 6);
  EXPECT_EQ(0, std::memcmp(stream.data() + 6, "Hello, world", 12));
  EXPECT_TRUE(state.idle());
}

TEST(MessageReader, EmptyMessagesAreDelivered) {
  const Bytes stream = concat({frame(Opcode::kText, ""), frame(Opcode::kBinary, "")});
  const Outcome outcome = feed_whole(stream);
  EXPECT_EQ(outcome.error, ProtocolError::kNone);
  ASSERT_EQ(outcome.events.size(), 2u);
  EXPECT_EQ(outcome.events[0], data_event(Opcode::kText, "", true, true));
  EXPECT_EQ(outcome.events[1], data_event(Opcode::kBinary, "", true, true));
}

TEST(MessageReader, AllLengthEncodingsDeliverPayload) {
  for (size_t length : {0u, 1u, 125u, 126u, 127u, 65535u, 65536u, 70000u}) {
    Bytes payload(length);
    for (size_t i = 0; i < length; ++i) payload[i] = static_cast<uint8_t>(i * 7 + 3);
    Bytes stream = frame(Opcode::kBinary, payload);
    RecordingSink sink;
    ReaderState state;
    const FeedResult result = feed_messages(state, stream.data(), stream.size(), {}, sink);
    EXPECT_EQ(result.error, ProtocolError::kNone) << length;
    EXPECT_EQ(result.consumed, stream.size()) << length;
    ASSERT_EQ(sink.events.size(), 1u) << length;
    EXPECT_EQ(sink.events[0].bytes, payload) << length;
    EXPECT_TRUE(sink.events[0].first && sink.events[0].last);
  }
}

TEST(MessageReader, PartialFrameDeliversPiecesAsTheyArrive) {
  Bytes stream = frame(Opcode::kBinary, "abcdefghij");
  RecordingSink sink;
  ReaderState state;
  // Header plus 4 payload bytes.
  FeedResult result = feed_messages(state, stream.data(), 10, {}, sink);
  EXPECT_EQ(result.consumed, 10u);
  ASSERT_EQ(sink.events.size(), 1u);
  EXPECT_EQ(sink.events[0], data_event(Opcode::kBinary, "abcd", true, false));
  EXPECT_FALSE(state.idle());
  EXPECT_TRUE(state.in_frame);
  result = feed_messages(state, stream.data() + 10, stream.size() - 10, {}, sink);
  EXPECT_EQ(result.consumed, stream.size() - 10);
  ASSERT_EQ(sink.events.size(), 2u);
  EXPECT_EQ(sink.events[1], data_event(Opcode::kBinary, "efghij", false, true));
  EXPECT_TRUE(state.idle());
}

TEST(MessageReader, SplitHeaderIsKeptInState) {
  Bytes stream = frame(Opcode::kBinary, Bytes(300, 0x41));  // 8-byte header
  RecordingSink sink;
  ReaderState state;
  FeedResult result = feed_messages(state, stream.data(), 3, {}, sink);
  EXPECT_EQ(result.consumed, 3u);
  EXPECT_EQ(result.error, ProtocolError::kNone);
  EXPECT_EQ(state.header_have, 3);
  EXPECT_FALSE(state.idle());
  EXPECT_TRUE(sink.events.empty());
  result = feed_messages(state, stream.data() + 3, stream.size() - 3, {}, sink);
  EXPECT_EQ(result.consumed, stream.size() - 3);
  ASSERT_EQ(sink.events.size(), 1u);
  EXPECT_EQ(sink.events[0].bytes, Bytes(300, 0x41));
  EXPECT_TRUE(sink.events[0].first && sink.events[0].last);
  EXPECT_TRUE(state.idle());
}

TEST(MessageReader, ServerFramesNeedNoMask) {
  const Bytes stream = concat({frame(Opcode::kText, bytes_of("hi"), true, 0, false),
                               frame(Opcode::kPing, bytes_of("p"), true, 0, false)});
  ReaderLimits limits;
  limits.sender = Sender::kServer;
  const Outcome expected{{data_event(Opcode::kText, "hi", true, true),
                          control_event(Opcode::kPing, bytes_of("p"))},
                         ProtocolError::kNone, true};
  expect_split_invariant(stream, expected, limits);
  EXPECT_EQ(feed_whole(stream).error, ProtocolError::kUnmaskedClientFrame);
  ReaderLimits server;
  server.sender = Sender::kServer;
  EXPECT_EQ(feed_whole(frame(Opcode::kText, "x"), server).error, ProtocolError::kMaskedServerFrame);
}

// ---- fragmentation ----

TEST(MessageReader, FragmentedMessage) {
  const Bytes stream = concat({frame(Opcode::kText, "Hel", false), frame(Opcode::kContinuation, "lo ", false),
                               frame(Opcode::kContinuation, "", false),
                               frame(Opcode::kContinuation, "world", true)});
  RecordingSink sink;
  ReaderState state;
  Bytes buffer = stream;
  const FeedResult result = feed_messages(state, buffer.data(), buffer.size(), {}, sink);
  EXPECT_EQ(result.error, ProtocolError::kNone);
  const std::vector<Event> expected = {
      data_event(Opcode::kText, "Hel", true, false), data_event(Opcode::kText, "lo ", false, false),
      data_event(Opcode::kText, "", false, false), data_event(Opcode::kText, "world", false, true)};
  EXPECT_EQ(sink.events, expected);
  EXPECT_TRUE(state.idle());
  expect_split_invariant(stream, {{data_event(Opcode::kText, "Hello world", true, true)}, ProtocolError::kNone, true});
}

TEST(MessageReader, OpenMessageIsNotIdle) {
  Bytes stream = frame(Opcode::kBinary, "ab", false);
  RecordingSink sink;
  ReaderState state;
  feed_messages(state, stream.data(), stream.size(), {}, sink);
  EXPECT_FALSE(state.in_frame);
  EXPECT_EQ(state.message_opcode, Opcode::kBinary);
  EXPECT_FALSE(state.idle());
}

TEST(MessageReader, ControlFramesInterleaveWithFragments) {
  const Bytes stream = concat({frame(Opcode::kBinary, "one-", false), frame(Opcode::kPing, "are you there"),
                               frame(Opcode::kContinuation, "two-", false), frame(Opcode::kPong, ""),
                               frame(Opcode::kContinuation, "three", true), frame(Opcode::kPing, "after")});
  const Outcome expected{{data_event(Opcode::kBinary, "one-", true, false),
                          control_event(Opcode::kPing, bytes_of("are you there")),
                          data_event(Opcode::kBinary, "two-", false, false),
                          control_event(Opcode::kPong, {}),
                          data_event(Opcode::kBinary, "three", false, true),
                          control_event(Opcode::kPing, bytes_of("after"))},
                         ProtocolError::kNone, true};
  // Whole: each fragment is exactly one piece around the control frames.
  RecordingSink sink;
  ReaderState state;
  Bytes buffer = stream;
  feed_messages(state, buffer.data(), buffer.size(), {}, sink);
  EXPECT_EQ(sink.events, expected.events);
  expect_split_invariant(stream, expected);
}

TEST(MessageReader, ContinuationWithoutMessageFails) {
  const Bytes stream = concat({frame(Opcode::kText, "ok"), frame(Opcode::kContinuation, "x")});
  Bytes buffer = stream;
  RecordingSink sink;
  ReaderState state;
  const FeedResult result = feed_messages(state, buffer.data(), buffer.size(), {}, sink);
  EXPECT_EQ(result.error, ProtocolError::kUnexpectedContinuation);
  EXPECT_EQ(result.consumed, 8u);  // the bad frame's header starts after the 8-byte first frame
  EXPECT_EQ(sink.events.size(), 1u);
  expect_split_invariant(stream, {{data_event(Opcode::kText, "ok", true, true)},
                                  ProtocolError::kUnexpectedContinuation, false});
  EXPECT_EQ(feed_whole(frame(Opcode::kContinuation, "", true)).error, ProtocolError::kUnexpectedContinuation);
}

TEST(MessageReader, NewDataFrameWhileMessageOpenFails) {
  for (Opcode second : {Opcode::kText, Opcode::kBinary}) {
    const Bytes stream = concat({frame(Opcode::kBinary, "a", false), frame(second, "b")});
    expect_split_invariant(stream, {{data_event(Opcode::kBinary, "a", true, false)},
                                    ProtocolError::kExpectedContinuation, false});
  }
}

TEST(MessageReader, ContinuationAfterCompletedMessageFails) {
  const Bytes stream = concat({frame(Opcode::kText, "a", false), frame(Opcode::kContinuation, "b", true),
                               frame(Opcode::kContinuation, "c", true)});
  expect_split_invariant(stream, {{data_event(Opcode::kText, "ab", true, true)},
                                  ProtocolError::kUnexpectedContinuation, false});
}

// ---- control frames ----

TEST(MessageReader, ControlPayloadSplitIsDeliveredWhole) {
  const Bytes payload(kMaxControlPayload, 0x5a);
  Bytes stream = frame(Opcode::kPing, payload);
  RecordingSink sink;
  ReaderState state;
  FeedResult result = feed_messages(state, stream.data(), 20, {}, sink);
  EXPECT_EQ(result.consumed, 20u);
  EXPECT_TRUE(sink.events.empty());
  EXPECT_GT(state.control_have, 0);
  result = feed_messages(state, stream.data() + 20, stream.size() - 20, {}, sink);
  EXPECT_EQ(result.consumed, stream.size() - 20);
  ASSERT_EQ(sink.events.size(), 1u);
  EXPECT_EQ(sink.events[0], control_event(Opcode::kPing, payload));
  EXPECT_TRUE(state.idle());
  expect_split_invariant(frame(Opcode::kPing, payload), {{control_event(Opcode::kPing, payload)}, ProtocolError::kNone, true});
}

TEST(MessageReader, WholeControlFrameIsZeroCopy) {
  Bytes stream = frame(Opcode::kPong, "pong!");
  RecordingSink sink;
  ReaderState state;
  feed_messages(state, stream.data(), stream.size(), {}, sink);
  ASSERT_EQ(sink.pieces.size(), 1u);
  EXPECT_EQ(sink.pieces[0], stream.data() + 6);
}

TEST(MessageReader, ValidCloseIsDelivered) {
  const Bytes body = concat({Bytes{0x03, 0xE8}, bytes_of("bye \xc3\xa9")});
  expect_split_invariant(frame(Opcode::kClose, body), {{control_event(Opcode::kClose, body)}, ProtocolError::kNone, true});
  expect_split_invariant(frame(Opcode::kClose, Bytes{}), {{control_event(Opcode::kClose, {})}, ProtocolError::kNone, true});
}

TEST(MessageReader, InvalidClosePayloadsFail) {
  expect_split_invariant(frame(Opcode::kClose, Bytes{0x03}), {{}, ProtocolError::kInvalidClosePayload, false});
  expect_split_invariant(frame(Opcode::kClose, Bytes{0x03, 0xED}), {{}, ProtocolError::kInvalidCloseCode, false});
  expect_split_invariant(frame(Opcode::kClose, Bytes{0x03, 0xE8, 0xFF}), {{}, ProtocolError::kInvalidUtf8, false});
  expect_split_invariant(frame(Opcode::kClose, Bytes{0x0B, 0xB8, 0xE2, 0x82}), {{}, ProtocolError::kInvalidUtf8, false});
  // Close rules apply to close alone: a ping may carry any bytes.
  expect_split_invariant(frame(Opcode::kPing, Bytes{0xFF}), {{control_event(Opcode::kPing, {0xFF})}, ProtocolError::kNone, true});
}

TEST(MessageReader, HeaderErrorsPropagate) {
  // Fragmented ping, 126-byte ping, reserved opcode, RSV2 without extension.
  Bytes fragmented_ping = frame(Opcode::kPing, "", false);
  EXPECT_EQ(feed_whole(fragmented_ping).error, ProtocolError::kFragmentedControlFrame);
  EXPECT_EQ(feed_whole(frame(Opcode::kPing, Bytes(126, 1))).error, ProtocolError::kControlFrameTooLong);
  Bytes reserved = frame(Opcode::kBinary, "x");
  reserved[0] = 0x83;
  EXPECT_EQ(feed_whole(reserved).error, ProtocolError::kReservedOpcode);
  EXPECT_EQ(feed_whole(frame(Opcode::kBinary, "x", true, kRsv2)).error, ProtocolError::kReservedBitsSet);
  const Bytes top_bit = {0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4};
  EXPECT_EQ(feed_whole(top_bit).error, ProtocolError::kLengthTopBitSet);
  const Bytes non_minimal = {0x82, 0xFE, 0x00, 0x05, 1, 2, 3, 4, 0, 0, 0, 0, 0};
  EXPECT_EQ(feed_whole(non_minimal).error, ProtocolError::kNonMinimalLength);
}

TEST(MessageReader, HeaderErrorReportsStartOfBadHeader) {
  Bytes stream = concat({frame(Opcode::kPing, ""), frame(Opcode::kBinary, "x", true, kRsv3)});
  RecordingSink sink;
  ReaderState state;
  const FeedResult result = feed_messages(state, stream.data(), stream.size(), {}, sink);
  EXPECT_EQ(result.error, ProtocolError::kReservedBitsSet);
  EXPECT_EQ(result.consumed, 6u);
  ASSERT_EQ(sink.events.size(), 1u);
}

TEST(MessageReader, NegotiatedRsvBitsAreAccepted) {
  ReaderLimits limits;
  limits.allowed_rsv = kRsv1;
  const Bytes stream = frame(Opcode::kBinary, "zz", true, kRsv1);
  expect_split_invariant(stream, {{data_event(Opcode::kBinary, "zz", true, true)}, ProtocolError::kNone, true},
                         limits);
  EXPECT_EQ(feed_whole(stream).error, ProtocolError::kReservedBitsSet);
}

// ---- UTF-8 ----

TEST(MessageReader, InvalidUtf8FailsMidFrameBeforeTheRestArrives) {
  // A text frame announcing 1000 bytes of which only "abc\xFF" has arrived.
  Bytes payload = bytes_of("abc\xff");
  payload.resize(1000, 'x');
  Bytes stream = frame(Opcode::kText, payload);
  const size_t header = 8;
  RecordingSink sink;
  ReaderState state;
  const FeedResult result = feed_messages(state, stream.data(), header + 4, {}, sink);
  EXPECT_EQ(result.error, ProtocolError::kInvalidUtf8);
  EXPECT_EQ(result.consumed, header + 3);  // the offending byte
  ASSERT_EQ(sink.events.size(), 1u);
  EXPECT_EQ(sink.events[0], data_event(Opcode::kText, "abc", true, false));
}

TEST(MessageReader, InvalidUtf8InLaterFragmentFails) {
  const Bytes stream = concat({frame(Opcode::kText, "fine ", false), frame(Opcode::kPing, ""),
                               frame(Opcode::kContinuation, "then \xed\xa0\x80 surrogate", true)});
  expect_split_invariant(stream, {{data_event(Opcode::kText, "fine ", true, false), control_event(Opcode::kPing, {}),
                                   data_event(Opcode::kText, "then \xed", false, false)},
                                  ProtocolError::kInvalidUtf8, false});
}

TEST(MessageReader, InvalidUtf8FirstByteDeliversNothing) {
  expect_split_invariant(frame(Opcode::kText, "\x80rest"), {{}, ProtocolError::kInvalidUtf8, false});
}

TEST(MessageReader, BinaryIsNotUtf8Checked) {
  expect_split_invariant(frame(Opcode::kBinary, "\xff\xfe\xc0"),
                         {{data_event(Opcode::kBinary, "\xff\xfe\xc0", true, true)}, ProtocolError::kNone, true});
}

TEST(MessageReader, TextEndingInsideCodePointFails) {
  expect_split_invariant(frame(Opcode::kText, "ab\xe2\x82"),
                         {{data_event(Opcode::kText, "ab\xe2\x82", true, false)}, ProtocolError::kInvalidUtf8, false});
  const Bytes stream = concat({frame(Opcode::kText, "ab\xc3", false), frame(Opcode::kContinuation, "", true)});
  expect_split_invariant(stream, {{data_event(Opcode::kText, "ab\xc3", true, false)}, ProtocolError::kInvalidUtf8, false});
}

TEST(MessageReader, Utf8SplitAcrossFragmentsAtEveryBoundary) {
  const std::string text = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z\xf4\x8f\xbf\xbf";
  for (size_t i = 0; i <= text.size(); ++i) {
    for (size_t j = i; j <= text.size(); ++j) {
      const Bytes stream = concat({frame(Opcode::kText, std::string_view(text).substr(0, i), false),
                                   frame(Opcode::kContinuation, std::string_view(text).substr(i, j - i), false),
                                   frame(Opcode::kPing, "x"),
                                   frame(Opcode::kContinuation, std::string_view(text).substr(j), true)});
      const Outcome outcome = feed_whole(stream);
      ASSERT_EQ(outcome.error, ProtocolError::kNone) << i << " " << j;
      ASSERT_EQ(outcome.events.size(), 3u);
      // Pieces before and after the ping concatenate to the text.
      Bytes joined = outcome.events[0].bytes;
      joined.insert(joined.end(), outcome.events[2].bytes.begin(), outcome.events[2].bytes.end());
      EXPECT_EQ(joined, bytes_of(text));
      EXPECT_TRUE(outcome.events[2].last);
      EXPECT_EQ(feed_split(stream, every_byte(stream.size())), outcome);
    }
  }
}

TEST(MessageReader, Utf8StateCarriesAcrossReadsWithinAFrame) {
  const std::string text = "\xf0\x9f\x98\x80\xe2\x82\xac";
  expect_split_invariant(frame(Opcode::kText, text), {{data_event(Opcode::kText, text, true, true)}, ProtocolError::kNone, true});
}

// ---- message size ----

TEST(MessageReader, MessageAtLimitIsAccepted) {
  ReaderLimits limits;
  limits.max_message_size = 10;
  const Bytes stream = concat({frame(Opcode::kBinary, "0123456789"), frame(Opcode::kText, "01234", false),
                               frame(Opcode::kPing, Bytes(100, 1)), frame(Opcode::kContinuation, "56789")});
  expect_split_invariant(stream,
                         {{data_event(Opcode::kBinary, "0123456789", true, true),
                           data_event(Opcode::kText, "01234", true, false), control_event(Opcode::kPing, Bytes(100, 1)),
                           data_event(Opcode::kText, "56789", false, true)},
                          ProtocolError::kNone, true},
                         limits);
}

TEST(MessageReader, OversizedFrameFailsOnItsHeader) {
  ReaderLimits limits;
  limits.max_message_size = 10;
  Bytes stream = frame(Opcode::kBinary, "0123456789A");
  RecordingSink sink;
  ReaderState state;
  // Only the header: the length alone must fail it.
  const FeedResult result = feed_messages(state, stream.data(), 6, limits, sink);
  EXPECT_EQ(result.error, ProtocolError::kMessageTooBig);
  EXPECT_EQ(result.consumed, 0u);
  EXPECT_TRUE(sink.events.empty());
  expect_split_invariant(stream, {{}, ProtocolError::kMessageTooBig, false}, limits);
}

TEST(MessageReader, OversizedFragmentedMessageFailsOnTheCrossingHeader) {
  ReaderLimits limits;
  limits.max_message_size = 10;
  const Bytes stream = concat({frame(Opcode::kText, "012345", false), frame(Opcode::kContinuation, "6789", false),
                               frame(Opcode::kContinuation, "X", true)});
  expect_split_invariant(stream, {{data_event(Opcode::kText, "0123456789", true, false)}, ProtocolError::kMessageTooBig, false},
                         limits);
}

TEST(MessageReader, HugeAnnouncedLengthsFailWithoutPayload) {
  // 2^32 + 1 bytes and 2^63 - 1 bytes announced with the default 16 MiB limit.
  for (uint64_t length : {(1ull << 32) + 1, (1ull << 63) - 1}) {
    uint8_t header[kMaxFrameHeaderLength];
    const size_t n = encode_masked_frame_header(header, Opcode::kBinary, length, kKey);
    RecordingSink sink;
    ReaderState state;
    const FeedResult result = feed_messages(state, header, n, {}, sink);
    EXPECT_EQ(result.error, ProtocolError::kMessageTooBig);
  }
  // With a large enough limit, a 2^32+ frame is read piece by piece.
  ReaderLimits limits;
  limits.max_message_size = ~0ull;
  Bytes stream(kMaxFrameHeaderLength);
  stream.resize(encode_masked_frame_header(stream.data(), Opcode::kBinary, (1ull << 32) + 1, kKey));
  stream.resize(stream.size() + 64, 0);
  RecordingSink sink;
  ReaderState state;
  const FeedResult result = feed_messages(state, stream.data(), stream.size(), limits, sink);
  EXPECT_EQ(result.error, ProtocolError::kNone);
  EXPECT_EQ(result.consumed, stream.size());
  ASSERT_EQ(sink.events.size(), 1u);
  EXPECT_EQ(sink.events[0].bytes.size(), 64u);
  EXPECT_EQ(sink.events[0].bytes[0], kKey[0]);  // zero bytes "unmask" to the key itself
  EXPECT_TRUE(sink.events[0].first);
  EXPECT_FALSE(sink.events[0].last);
  EXPECT_EQ(state.frame_done, 64u);
  EXPECT_EQ(state.message_length, 64u);
}

// ---- sink stopping ----

TEST(MessageReader, SinkStopReturnsRightAfterTheEvent) {
  Bytes stream = concat({frame(Opcode::kText, "one"), frame(Opcode::kPing, "p"), frame(Opcode::kBinary, "two")});
  RecordingSink sink;
  sink.stop_every_event = true;
  ReaderState state;
  FeedResult result = feed_messages(state, stream.data(), stream.size(), {}, sink);
  EXPECT_EQ(result.error, ProtocolError::kNone);
  EXPECT_EQ(result.consumed, 9u);
  EXPECT_EQ(sink.events.size(), 1u);
  EXPECT_TRUE(state.idle());
  result = feed_messages(state, stream.data() + 9, stream.size() - 9, {}, sink);
  EXPECT_EQ(result.consumed, 7u);
  EXPECT_EQ(sink.events.size(), 2u);
  result = feed_messages(state, stream.data() + 16, stream.size() - 16, {}, sink);
  EXPECT_EQ(result.consumed, stream.size() - 16);
  ASSERT_EQ(sink.events.size(), 3u);
  EXPECT_EQ(sink.events[2], data_event(Opcode::kBinary, "two", true, true));
}

TEST(MessageReader, EmptyInputIsANoOp) {
  RecordingSink sink;
  ReaderState state;
  const FeedResult result = feed_messages(state, nullptr, 0, {}, sink);
  EXPECT_EQ(result.consumed, 0u);
  EXPECT_EQ(result.error, ProtocolError::kNone);
  EXPECT_TRUE(sink.events.empty());
  EXPECT_TRUE(state.idle());
}

// ---- exhaustive splits ----

Bytes mixed_stream() {
  Bytes long_binary(130);  // 16-bit length encoding
  for (size_t i = 0; i < long_binary.size(); ++i) long_binary[i] = static_cast<uint8_t>(i);
  return concat({frame(Opcode::kText, "Hello"),
                 frame(Opcode::kBinary, long_binary, false),
                 frame(Opcode::kPing, "ping in the middle"),
                 frame(Opcode::kContinuation, "", false),
                 frame(Opcode::kPong, Bytes(kMaxControlPayload, 0x77)),
                 frame(Opcode::kContinuation, "end", true),
                 frame(Opcode::kText, "\xce\xba\xe1\xbd\xb9", false),
                 frame(Opcode::kContinuation, "\xcf\x83\xce\xbc\xce\xb5 \xf0\x9f\x98", false),
                 frame(Opcode::kContinuation, "\x80!", true),
                 frame(Opcode::kBinary, ""),
                 frame(Opcode::kClose, concat({Bytes{0x03, 0xE8}, bytes_of("done")}))});
}

TEST(MessageReader, EverySplitOfAMixedStreamGivesTheSameEvents) {
  const Bytes stream = mixed_stream();
  Bytes binary(130);
  for (size_t i = 0; i < binary.size(); ++i) binary[i] = static_cast<uint8_t>(i);
  const Outcome expected{
      {data_event(Opcode::kText, "Hello", true, true),
       Event{false, Opcode::kBinary, binary, true, false},
       control_event(Opcode::kPing, bytes_of("ping in the middle")),
       Event{false, Opcode::kBinary, {}, false, false},
       control_event(Opcode::kPong, Bytes(kMaxControlPayload, 0x77)),
       Event{false, Opcode::kBinary, bytes_of("end"), false, true},
       data_event(Opcode::kText, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5 \xf0\x9f\x98\x80!", true, true),
       data_event(Opcode::kBinary, "", true, true),
       control_event(Opcode::kClose, concat({Bytes{0x03, 0xE8}, bytes_of("done")}))},
      ProtocolError::kNone,
      true};
  expect_split_invariant(stream, expected);
}

TEST(MessageReader, EverySplitOfAStreamWithAnErrorGivesTheSameEvents) {
  const Bytes stream = concat({frame(Opcode::kText, "ok"), frame(Opcode::kText, "good ", false),
                               frame(Opcode::kPing, "p"),
                               frame(Opcode::kContinuation, "good \xe0\x80 bad", true),
                               frame(Opcode::kText, "never")});
  expect_split_invariant(stream, {{data_event(Opcode::kText, "ok", true, true),
                                   data_event(Opcode::kText, "good ", true, false),
                                   control_event(Opcode::kPing, bytes_of("p")),
                                   data_event(Opcode::kText, "good \xe0", false, false)},
                                  ProtocolError::kInvalidUtf8, false});
  Bytes reserved = concat({frame(Opcode::kBinary, "abc"), frame(Opcode::kBinary, "def")});
  reserved[9] = 0x8B;  // second frame's first byte: reserved control opcode 0xB
  expect_split_invariant(reserved, {{data_event(Opcode::kBinary, "abc", true, true)}, ProtocolError::kReservedOpcode, false});
}

}  // namespace
}  // namespace protocol
