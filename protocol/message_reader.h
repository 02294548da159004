#pragma once
// Streaming, zero-copy reader of a client's frames into messages (RFC 6455 sections 5.2-5.5).
// Pure: it unmasks in place in the caller's buffer and hands views up; it does no I/O and no
// allocation. Everything it must remember between reads lives in ReaderState.
#include <cstddef>
#include <cstdint>
#include <span>

#include "protocol/frame_header.h"
#include "protocol/protocol_error.h"
#include "protocol/utf8.h"

namespace protocol {

struct ReaderLimits {
  uint64_t max_message_size = 16u << 20;  // bytes of one (reassembled) data message -> 1009
  uint8_t allowed_rsv = 0;                // RSV bits a negotiated extension gives meaning to;
                                          // kRsv1 means permessage-deflate (RFC 7692 6)
  Sender sender = Sender::kClient;        // whose frames these are (servers read kClient)
};

// What a connection must keep between reads. Only needed while a frame or fragmented message is
// incomplete; when idle() it carries no information and the owner may drop it.
struct ReaderState {
  FrameHeader frame;               // the frame being read, valid while in_frame
  uint64_t frame_done = 0;         // payload bytes of `frame` already consumed
  uint64_t message_length = 0;     // data bytes of the open message delivered so far
  uint8_t header_bytes[kMaxFrameHeaderLength];  // a header split across reads
  uint8_t header_have = 0;
  bool in_frame = false;
  Opcode message_opcode = Opcode::kContinuation;  // kText/kBinary while a message is open
  Utf8State utf8 = kUtf8Accept;    // validator state for an open text message
  bool message_compressed = false;  // the open message's first frame had RSV1 (RFC 7692 6.1)
  uint8_t control_have = 0;        // bytes of a control payload split across reads
  uint8_t control_payload[kMaxControlPayload];

  // True when no frame, header or message is partially read.
  bool idle() const { return !in_frame && header_have == 0 && message_opcode == Opcode::kContinuation; }
};

// Receives what the reader finds. Views point into the caller's buffer (already unmasked) and
// are valid only during the call. Returning false stops feed() right after this event.
class MessageSink {
 public:
  virtual ~MessageSink() = default;
  // A piece of a data message, in order. `first`: the message's first piece; `last`: it is
  // complete. A message whose single frame lies whole in one read arrives as one call with
  // first && last. Text pieces are UTF-8-checked before delivery (a piece may end mid code point;
  // the message as a whole is valid when `last` arrives). Empty pieces may occur.
  virtual bool on_data(Opcode opcode, std::span<uint8_t> piece, bool first, bool last) = 0;
  // The same for a message whose first frame had RSV1 (only when limits allow kRsv1): pieces are
  // still compressed and not UTF-8-checked; the sink inflates and validates the whole message.
  virtual bool on_compressed_data(Opcode opcode, std::span<uint8_t> piece, bool first, bool last) {
    return on_data(opcode, piece, first, last);
  }
  // A complete, validated control frame: ping, pong, or close (payload checked by
  // validate_close_payload). Control frames may arrive between pieces of a fragmented message.
  virtual bool on_control(Opcode opcode, std::span<const uint8_t> payload) = 0;
};

struct FeedResult {
  size_t consumed = 0;                         // bytes of the input used
  ProtocolError error = ProtocolError::kNone;  // the connection must be failed with this
};

// Reads data[0, len): parses headers, unmasks payloads in place, enforces message-level rules
// (continuations, interleaving, UTF-8 of text messages failing fast on the first bad byte,
// max_message_size) and calls `sink`. Consumes all input (storing a split header or control
// payload in `state`) unless an error occurs or the sink returns false.
FeedResult feed_messages(ReaderState& state, uint8_t* data, size_t len, const ReaderLimits& limits,
                         MessageSink& sink);

}  // namespace protocol
