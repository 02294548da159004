#include "protocol/message_reader.h"

#include <cstring>

#include "protocol/close_code.h"

namespace protocol {
namespace {

// Where `data` stops being valid UTF-8 after `state`; only called once utf8_feed has rejected
// the piece, so the byte-at-a-time cost is paid on the error path alone.
size_t first_invalid_utf8(Utf8State state, const uint8_t* data, size_t len) {
  for (size_t i = 0; i < len; ++i) {
    state = utf8_feed(state, data + i, 1);
    if (state == kUtf8Reject) return i;
  }
  return len;
}

void close_message(ReaderState& state) {
  state.message_opcode = Opcode::kContinuation;
  state.message_length = 0;
  state.utf8 = kUtf8Accept;
  state.message_compressed = false;
}

// Applies the message-level rules to a complete header and opens a message on a new data frame.
ProtocolError begin_frame(ReaderState& state, const FrameHeader& header, const ReaderLimits& limits) {
  const bool continuation = header.opcode == Opcode::kContinuation;
  // RFC 7692 6.1: RSV1 marks a compressed message on its first frame only; control frames are
  // never compressed. (Without the extension negotiated, the header parser refused RSV1.)
  if (header.rsv1 && (continuation || is_control(header.opcode))) return ProtocolError::kMisplacedRsv1;
  // RFC 6455 5.4: control frames may be injected in the middle of a fragmented message.
  if (is_control(header.opcode)) return ProtocolError::kNone;
  const bool message_open = state.message_opcode != Opcode::kContinuation;
  // RFC 6455 5.4: a fragmented message is one non-continuation frame followed by continuations
  // only; fragments of different messages must not interleave.
  if (continuation && !message_open) return ProtocolError::kUnexpectedContinuation;
  if (!continuation && message_open) return ProtocolError::kExpectedContinuation;
  // Fail on the announced length, before buffering or delivering any of the payload.
  const uint64_t so_far = continuation ? state.message_length : 0;
  if (so_far > limits.max_message_size || header.payload_length > limits.max_message_size - so_far) {
    return ProtocolError::kMessageTooBig;
  }
  if (!continuation) {
    state.message_opcode = header.opcode;
    state.message_length = 0;
    state.utf8 = kUtf8Accept;
    state.message_compressed = header.rsv1;
  }
  return ProtocolError::kNone;
}

}  // namespace

// On error, `consumed` counts the bytes of this input accepted before the offending unit: the
// start of a bad header (0 if it began in an earlier read), the first byte that breaks UTF-8, the
// end of a text message left mid code point, or the start of this read's part of a bad close
// payload. Input past `consumed` may already have been unmasked.
//
// Split invariance: a frame's pieces are cut only where a read ends, a non-empty frame never
// yields an empty piece, an empty frame always yields exactly one, and on a UTF-8 error the valid
// prefix of the failing piece is delivered first. So any split of a stream produces the same
// messages (pieces concatenated), the same control frames in the same order and the same error.
FeedResult feed_messages(ReaderState& state, uint8_t* data, size_t len, const ReaderLimits& limits,
                         MessageSink& sink) {
  size_t pos = 0;
  for (;;) {
    if (!state.in_frame) {
      if (pos == len) break;
      HeaderParse parse;
      size_t header_used = 0;  // bytes of `data` the header occupies
      if (state.header_have == 0) {
        parse = parse_frame_header(data + pos, len - pos, limits.sender, limits.allowed_rsv);
        if (parse.status == ParseStatus::kNeedMore) {
          // A header is at most 14 bytes, so what is left here fits header_bytes.
          std::memcpy(state.header_bytes, data + pos, len - pos);
          state.header_have = static_cast<uint8_t>(len - pos);
          return {len, ProtocolError::kNone};
        }
        header_used = parse.header.header_length;
      } else {
        const size_t room = kMaxFrameHeaderLength - state.header_have;
        const size_t copy = len - pos < room ? len - pos : room;
        std::memcpy(state.header_bytes + state.header_have, data + pos, copy);
        parse = parse_frame_header(state.header_bytes, state.header_have + copy, limits.sender,
                                   limits.allowed_rsv);
        if (parse.status == ParseStatus::kNeedMore) {
          state.header_have = static_cast<uint8_t>(state.header_have + copy);
          return {len, ProtocolError::kNone};
        }
        if (parse.status == ParseStatus::kOk) {
          header_used = parse.header.header_length - state.header_have;
        }
      }
      if (parse.status == ParseStatus::kError) return {pos, parse.error};
      const ProtocolError error = begin_frame(state, parse.header, limits);
      if (error != ProtocolError::kNone) return {pos, error};
      state.header_have = 0;
      state.frame = parse.header;
      state.frame_done = 0;
      state.control_have = 0;
      state.in_frame = true;
      pos += header_used;
    }

    const FrameHeader& frame = state.frame;
    const uint64_t remaining = frame.payload_length - state.frame_done;
    const size_t avail = len - pos < remaining ? len - pos : static_cast<size_t>(remaining);
    if (avail == 0 && remaining > 0) break;
    uint8_t* const piece = data + pos;
    if (frame.masked) unmask(piece, avail, frame.mask_key, state.frame_done);
    const bool frame_end = avail == remaining;

    if (is_control(frame.opcode)) {
      const Opcode opcode = frame.opcode;
      const size_t payload_length = static_cast<size_t>(frame.payload_length);
      const size_t piece_pos = pos;
      const uint8_t* payload = piece;
      pos += avail;
      if (!frame_end || state.control_have > 0) {
        // RFC 6455 5.5: control payloads are at most 125 bytes, so one split across reads is
        // collected here and delivered whole.
        std::memcpy(state.control_payload + state.control_have, piece, avail);
        state.control_have = static_cast<uint8_t>(state.control_have + avail);
        state.frame_done += avail;
        if (!frame_end) return {pos, ProtocolError::kNone};
        payload = state.control_payload;
      }
      if (opcode == Opcode::kClose) {
        // RFC 6455 5.5.1, 7.4: the close body is a valid code and a UTF-8 reason, or empty.
        const ProtocolError error = validate_close_payload(payload, payload_length);
        if (error != ProtocolError::kNone) return {piece_pos, error};
      }
      state.in_frame = false;
      state.frame_done = 0;
      state.control_have = 0;
      if (!sink.on_control(opcode, std::span<const uint8_t>(payload, payload_length))) {
        return {pos, ProtocolError::kNone};
      }
      continue;
    }

    const Opcode opcode = state.message_opcode;
    const bool first = frame.opcode != Opcode::kContinuation && state.frame_done == 0;
    const bool last = frame_end && frame.fin;
    const bool compressed = state.message_compressed;
    if (opcode == Opcode::kText && !compressed) {
      // RFC 6455 8.1: fail the connection as soon as the text stops being UTF-8, even mid-frame.
      const Utf8State next = utf8_feed(state.utf8, piece, avail);
      if (next == kUtf8Reject) {
        const size_t bad = first_invalid_utf8(state.utf8, piece, avail);
        if (bad > 0) sink.on_data(opcode, std::span<uint8_t>(piece, bad), first, false);
        return {pos + bad, ProtocolError::kInvalidUtf8};
      }
      if (last && next != kUtf8Accept) {
        // The message ends inside a code point; its bytes so far were valid, so they are
        // delivered (as a split read would have) before failing.
        if (avail > 0) sink.on_data(opcode, std::span<uint8_t>(piece, avail), first, false);
        return {pos + avail, ProtocolError::kInvalidUtf8};
      }
      state.utf8 = next;
    }
    pos += avail;
    state.frame_done += avail;
    state.message_length += avail;
    if (frame_end) {
      state.in_frame = false;
      state.frame_done = 0;
      if (frame.fin) close_message(state);
    }
    const std::span<uint8_t> data_piece(piece, avail);
    const bool more = compressed ? sink.on_compressed_data(opcode, data_piece, first, last)
                                 : sink.on_data(opcode, data_piece, first, last);
    if (!more) return {pos, ProtocolError::kNone};
  }
  return {pos, ProtocolError::kNone};
}

}  // namespace protocol
