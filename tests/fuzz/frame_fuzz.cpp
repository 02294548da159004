// libFuzzer target for the frame codec, the streaming message reader and message assembly.
// Input: byte 0 picks a split point, byte 1 picks reader limits, the rest is the byte stream.
// The stream is read whole, split in two, byte at a time (short inputs) and with a sink that stops
// after every event; all must agree, and every event must satisfy the reader's promises. It is
// also assembled the way WsServer does it (direct reads into the message buffer, with thresholds
// of one byte so every read takes that path), which must give the same messages.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "protocol/close_code.h"
#include "protocol/frame_header.h"
#include "protocol/message_assembly.h"
#include "protocol/message_reader.h"
#include "protocol/utf8.h"

namespace {

using protocol::Opcode;
using protocol::ProtocolError;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "invariant broken: %s\n", what);
    std::abort();
  }
}

struct Event {
  bool control;
  Opcode opcode;
  std::vector<uint8_t> bytes;
  bool first;  // the record starts a message (data) -- false for a run resumed after a control
  bool last;
  bool operator==(const Event&) const = default;
};

class CheckingSink : public protocol::MessageSink {
 public:
  CheckingSink(const uint8_t* buffer, size_t length, bool stop_every_event)
      : buffer_(buffer), length_(length), stop_every_event_(stop_every_event) {}

  void set_buffer(const uint8_t* buffer, size_t length) {
    buffer_ = buffer;
    length_ = length;
  }

  bool on_data(Opcode opcode, std::span<uint8_t> piece, bool first, bool last) override {
    return record(opcode, piece, first, last, false);
  }
  // RFC 7692 6.1: a message whose first frame has RSV1 arrives still compressed, so its text is
  // not UTF-8 yet (the inflating sink validates it); every piece of it must come this way.
  bool on_compressed_data(Opcode opcode, std::span<uint8_t> piece, bool first, bool last) override {
    return record(opcode, piece, first, last, true);
  }

  bool on_control(Opcode opcode, std::span<const uint8_t> payload) override {
    check(protocol::is_control(opcode), "control opcode");
    check(payload.size() <= protocol::kMaxControlPayload, "control payload length");
    if (opcode == Opcode::kClose) {
      check(protocol::validate_close_payload(payload.data(), payload.size()) == ProtocolError::kNone,
            "delivered close payload is valid");
    }
    events_.push_back({true, opcode, std::vector<uint8_t>(payload.begin(), payload.end()), false, false});
    return !stop_every_event_;
  }

  std::vector<Event> take_events() { return std::move(events_); }

 private:
  bool record(Opcode opcode, std::span<uint8_t> piece, bool first, bool last, bool compressed) {
    check(opcode == Opcode::kText || opcode == Opcode::kBinary, "data opcode");
    check(piece.empty() || (piece.data() >= buffer_ && piece.data() + piece.size() <= buffer_ + length_),
          "data piece is a view into the input");
    if (first) {
      check(!open_, "first piece while a message is open");
      open_ = true;
      opcode_ = opcode;
      compressed_ = compressed;
      utf8_ = protocol::kUtf8Accept;
      events_.push_back({false, opcode, {}, true, false});
    } else {
      check(open_, "continuing piece without an open message");
      check(opcode == opcode_, "opcode changed inside a message");
      check(compressed == compressed_, "compression changed inside a message");
      // Pieces are merged into one record per run between control frames, so records do not
      // depend on where the reads were cut.
      if (events_.back().control) events_.push_back({false, opcode, {}, false, false});
    }
    if (opcode == Opcode::kText && !compressed) {
      utf8_ = protocol::utf8_feed(utf8_, piece.data(), piece.size());
      check(utf8_ != protocol::kUtf8Reject, "delivered text is not UTF-8");
      if (last) check(utf8_ == protocol::kUtf8Accept, "text message ends inside a code point");
    }
    std::vector<uint8_t>& bytes = events_.back().bytes;
    bytes.insert(bytes.end(), piece.begin(), piece.end());
    if (last) {
      events_.back().last = true;
      open_ = false;
    }
    return !stop_every_event_;
  }

  const uint8_t* buffer_;
  size_t length_;
  bool stop_every_event_;
  bool open_ = false;
  Opcode opcode_ = Opcode::kContinuation;
  bool compressed_ = false;
  protocol::Utf8State utf8_ = protocol::kUtf8Accept;
  std::vector<Event> events_;
};

struct Outcome {
  std::vector<Event> events;
  ProtocolError error = ProtocolError::kNone;
  bool operator==(const Outcome&) const = default;
};

// Feeds `stream` as reads ending at `cuts`, each in an exactly sized heap copy so the sanitizers
// catch any access outside a read.
Outcome run(const uint8_t* stream, size_t size, const std::vector<size_t>& cuts,
            const protocol::ReaderLimits& limits, bool stop_every_event) {
  CheckingSink sink(nullptr, 0, stop_every_event);
  protocol::ReaderState state;
  Outcome outcome;
  size_t begin = 0;
  for (size_t i = 0; i <= cuts.size(); ++i) {
    const size_t end = i < cuts.size() ? cuts[i] : size;
    const size_t n = end - begin;
    std::unique_ptr<uint8_t[]> read(new uint8_t[n == 0 ? 1 : n]);
    if (n > 0) std::memcpy(read.get(), stream + begin, n);
    sink.set_buffer(read.get(), n);
    size_t offset = 0;
    do {
      const protocol::FeedResult result =
          protocol::feed_messages(state, read.get() + offset, n - offset, limits, sink);
      check(result.consumed <= n - offset, "consumed within input");
      if (result.error != ProtocolError::kNone) {
        outcome.error = result.error;
        outcome.events = sink.take_events();
        return outcome;
      }
      check(offset == n || result.consumed > 0, "progress after a stop");
      offset += result.consumed;
    } while (offset < n);
    begin = end;
  }
  outcome.events = sink.take_events();
  return outcome;
}

// Complete messages and control frames in order, and the error: what an application sees.
struct Assembled {
  std::vector<std::pair<Opcode, std::vector<uint8_t>>> units;
  ProtocolError error = ProtocolError::kNone;
  bool operator==(const Assembled&) const = default;
};

// The reader's events joined into messages (a message's runs are split by control frames).
Assembled assembled_from(const Outcome& outcome) {
  Assembled out;
  out.error = outcome.error;
  std::vector<uint8_t> message;
  for (const Event& e : outcome.events) {
    if (e.control) {
      out.units.emplace_back(e.opcode, e.bytes);
      continue;
    }
    if (e.first) message.clear();
    message.insert(message.end(), e.bytes.begin(), e.bytes.end());
    if (e.last) out.units.emplace_back(e.opcode, message);
  }
  return out;
}

// WsServer::Reader's handling of pieces: whole messages as they are, others via assemble_piece.
class AssemblingSink : public protocol::MessageSink {
 public:
  explicit AssemblingSink(const protocol::ReaderState& state) : state_(state) {}
  bool on_data(Opcode opcode, std::span<uint8_t> piece, bool first, bool last) override {
    if (first && last) {
      units.emplace_back(opcode, std::vector<uint8_t>(piece.begin(), piece.end()));
      return true;
    }
    check(protocol::assemble_piece(buffer, piece, state_), "assemble_piece");
    if (last) {
      units.emplace_back(opcode, std::vector<uint8_t>(buffer.data(), buffer.data() + buffer.size()));
      buffer.clear();
    }
    return true;
  }
  bool on_control(Opcode opcode, std::span<const uint8_t> payload) override {
    units.emplace_back(opcode, std::vector<uint8_t>(payload.begin(), payload.end()));
    return true;
  }

  protocol::MessageBuffer buffer;
  std::vector<std::pair<Opcode, std::vector<uint8_t>>> units;

 private:
  const protocol::ReaderState& state_;
};

// WsServer::on_readable's loop: each read goes into the direct read window when there is one
// (at most what it holds), else into an exactly sized heap copy.
Assembled assemble(const uint8_t* stream, size_t size, const std::vector<size_t>& cuts,
                   const protocol::ReaderLimits& limits) {
  static constexpr protocol::DirectReadLimits kEveryRead{1, 1};
  protocol::ReaderState state;
  AssemblingSink sink(state);
  Assembled out;
  size_t begin = 0;
  for (size_t i = 0; i <= cuts.size() && out.error == ProtocolError::kNone; ++i) {
    const size_t end = i < cuts.size() ? cuts[i] : size;
    while (begin < end) {
      const std::span<uint8_t> window = protocol::direct_read_window(state, sink.buffer, kEveryRead);
      std::unique_ptr<uint8_t[]> copy;
      uint8_t* into = window.data();
      size_t n = window.size() < end - begin ? window.size() : end - begin;
      if (window.empty()) {
        n = end - begin;
        copy.reset(new uint8_t[n]);
        into = copy.get();
      }
      std::memcpy(into, stream + begin, n);
      const protocol::FeedResult result = protocol::feed_messages(state, into, n, limits, sink);
      if (result.error != ProtocolError::kNone) {
        out.error = result.error;
        break;
      }
      check(result.consumed == n, "an assembling read is consumed whole");
      begin += n;
    }
  }
  out.units = std::move(sink.units);
  return out;
}

void check_header_prefixes(const uint8_t* data, size_t size, protocol::Sender sender, uint8_t allowed_rsv) {
  const size_t n = size < protocol::kMaxFrameHeaderLength ? size : protocol::kMaxFrameHeaderLength;
  const protocol::HeaderParse full = protocol::parse_frame_header(data, n, sender, allowed_rsv);
  for (size_t k = 0; k < n; ++k) {
    std::unique_ptr<uint8_t[]> prefix(new uint8_t[k == 0 ? 1 : k]);
    if (k > 0) std::memcpy(prefix.get(), data, k);
    const protocol::HeaderParse partial = protocol::parse_frame_header(prefix.get(), k, sender, allowed_rsv);
    if (partial.status == protocol::ParseStatus::kError) {
      check(full.status == protocol::ParseStatus::kError && full.error == partial.error,
            "header prefix error matches the whole header");
    } else if (full.status == protocol::ParseStatus::kOk) {
      check(partial.status == protocol::ParseStatus::kNeedMore || k >= full.header.header_length,
            "header prefix needs more");
    }
  }
  if (full.status == protocol::ParseStatus::kOk) {
    // Re-encoding a parsed header gives back the same bytes (lengths are minimal).
    uint8_t encoded[protocol::kMaxFrameHeaderLength];
    size_t length;
    if (full.header.masked) {
      length = protocol::encode_masked_frame_header(encoded, full.header.opcode, full.header.payload_length,
                                                    full.header.mask_key, full.header.fin, full.header.rsv1);
    } else {
      length = protocol::encode_frame_header(encoded, full.header.opcode, full.header.payload_length,
                                             full.header.fin, full.header.rsv1);
    }
    check(length == full.header.header_length, "re-encoded header length");
    // RSV2/RSV3 are not in FrameHeader, so compare byte 0 without them.
    check((encoded[0] | (data[0] & (protocol::kRsv2 | protocol::kRsv3))) == data[0], "re-encoded byte 0");
    check(std::memcmp(encoded + 1, data + 1, length - 1) == 0, "re-encoded header bytes");
  }
}

void check_unmask(const uint8_t* data, size_t size, uint64_t offset) {
  const uint8_t key[4] = {0xA1, 0x5B, 0x03, 0xFE};
  const size_t start = size % 16;  // varies the alignment of the unmasked run
  const size_t n = size - start;
  std::unique_ptr<uint8_t[]> fast(new uint8_t[size == 0 ? 1 : size]);
  if (size > 0) std::memcpy(fast.get(), data, size);
  protocol::unmask(fast.get() + start, n, key, offset);
  for (size_t i = 0; i < size; ++i) {
    const uint8_t expected = i < start ? data[i] : static_cast<uint8_t>(data[i] ^ key[(offset + i - start) & 3]);
    check(fast[i] == expected, "unmask matches the reference");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t split_byte = data[0];
  const uint8_t config = data[1];
  const uint8_t* stream = data + 2;
  const size_t n = size - 2;

  protocol::ReaderLimits limits;
  limits.sender = (config & 1) ? protocol::Sender::kServer : protocol::Sender::kClient;
  limits.allowed_rsv = (config & 2) ? protocol::kRsv1 : 0;
  // Small limits so kMessageTooBig is reachable, and the default.
  static const uint64_t kLimits[4] = {0, 7, 300, 16u << 20};
  limits.max_message_size = kLimits[(config >> 2) & 3];

  check_header_prefixes(stream, n, limits.sender, limits.allowed_rsv);
  check_unmask(stream, n, config);

  const Outcome whole = run(stream, n, {}, limits, false);
  const size_t cut = n == 0 ? 0 : split_byte % (n + 1);
  check(run(stream, n, {cut}, limits, false) == whole, "split in two matches whole");
  check(run(stream, n, {cut}, limits, true) == whole, "split, stopping after events, matches whole");
  if (n <= 256) {
    std::vector<size_t> cuts;
    for (size_t i = 1; i < n; ++i) cuts.push_back(i);
    check(run(stream, n, cuts, limits, (config & 0x10) != 0) == whole, "byte at a time matches whole");
    check(assemble(stream, n, cuts, limits) == assembled_from(whole), "assembled byte at a time");
  }
  check(assemble(stream, n, {}, limits) == assembled_from(whole), "assembled whole");
  check(assemble(stream, n, {cut}, limits) == assembled_from(whole), "assembled split in two");
  return 0;
}
