#include "tools/load_client.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "protocol/handshake.h"
#include "tools/load_chat.h"

namespace tools {
namespace {

using protocol::FrameHeader;
using protocol::Opcode;

constexpr char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
// A 101 response head larger than this is not a reasonable server.
constexpr size_t kMaxResponseHead = 8192;
// A partial-frame buffer bigger than this is freed once drained rather than kept for reuse.
constexpr size_t kKeepBufferCapacity = 64 * 1024;
constexpr uint16_t kCloseNormal = 1000;

char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// True when the comma-separated `list` holds `token` (case-insensitive), as Connection does.
bool has_token(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    if (iequals(trim(list.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

void mask_key_from(uint64_t random, uint8_t key[4]) {
  const uint32_t word = static_cast<uint32_t>(random >> 32);
  std::memcpy(key, &word, 4);
}

}  // namespace

// ---- ByteBuffer ----

ByteBuffer::ByteBuffer(ByteBuffer&& other) noexcept
    : storage_(other.storage_), head_(other.head_), tail_(other.tail_), capacity_(other.capacity_) {
  other.storage_ = nullptr;
  other.head_ = other.tail_ = other.capacity_ = 0;
}

ByteBuffer& ByteBuffer::operator=(ByteBuffer&& other) noexcept {
  if (this != &other) {
    release();
    storage_ = other.storage_;
    head_ = other.head_;
    tail_ = other.tail_;
    capacity_ = other.capacity_;
    other.storage_ = nullptr;
    other.head_ = other.tail_ = other.capacity_ = 0;
  }
  return *this;
}

void ByteBuffer::append(const void* bytes, size_t n) {
  if (n == 0) return;
  std::memcpy(prepare(n), bytes, n);
  tail_ += n;
}

void ByteBuffer::consume(size_t n) {
  head_ += std::min(n, size());
  if (head_ == tail_) head_ = tail_ = 0;
}

void ByteBuffer::release() {
  std::free(storage_);
  storage_ = nullptr;
  head_ = tail_ = capacity_ = 0;
}

void ByteBuffer::grow(size_t n) {
  // Slide the live bytes to the front first; reallocate only when that is not enough.
  const size_t live = size();
  if (head_ != 0 && capacity_ - live >= n && live <= head_) {
    std::memcpy(storage_, storage_ + head_, live);
    head_ = 0;
    tail_ = live;
    return;
  }
  if (head_ != 0) {
    std::memmove(storage_, storage_ + head_, live);
    head_ = 0;
    tail_ = live;
    if (capacity_ - tail_ >= n) return;
  }
  size_t capacity = std::max<size_t>(capacity_ * 2, 256);
  capacity = std::max(capacity, tail_ + n);
  auto* grown = static_cast<uint8_t*>(std::realloc(storage_, capacity));
  if (grown == nullptr) std::abort();  // out of memory in a load generator: nothing sane to do
  storage_ = grown;
  capacity_ = capacity;
}

// ---- EchoPayload ----

EchoPayload::EchoPayload(size_t size, bool binary) : filler_(size), binary_(binary) {
  stamp_length_ = std::min<size_t>(size, binary ? 8 : 11);
  for (size_t i = 0; i < size; ++i) {
    filler_[i] = binary ? static_cast<uint8_t>(i * 131 + 7) : static_cast<uint8_t>('a' + i % 26);
  }
}

void EchoPayload::stamp(uint64_t seq, uint8_t* out) const {
  if (binary_) {
    for (size_t i = 0; i < stamp_length_; ++i) out[i] = static_cast<uint8_t>(seq >> (8 * i));
  } else {
    for (size_t i = 0; i < stamp_length_; ++i) out[i] = static_cast<uint8_t>(kBase64[(seq >> (6 * i)) & 63]);
  }
}

void EchoPayload::write(uint64_t seq, uint8_t* out) const {
  if (filler_.empty()) return;
  stamp(seq, out);
  if (filler_.size() > stamp_length_) {
    std::memcpy(out + stamp_length_, filler_.data() + stamp_length_, filler_.size() - stamp_length_);
  }
}

bool EchoPayload::matches(uint64_t seq, std::span<const uint8_t> payload) const {
  if (payload.size() != filler_.size()) return false;
  if (payload.empty()) return true;
  uint8_t expected[16];
  stamp(seq, expected);
  return std::memcmp(payload.data(), expected, stamp_length_) == 0 &&
         std::memcmp(payload.data() + stamp_length_, filler_.data() + stamp_length_,
                     filler_.size() - stamp_length_) == 0;
}

// ---- ServerFrameReader ----

ServerFrameReader::Status ServerFrameReader::next(std::span<uint8_t>& data, FrameHeader& header,
                                                  std::span<uint8_t>& payload) {
  if (partial_done_) {
    partial_done_ = false;
    if (partial_.capacity() > kKeepBufferCapacity) {
      partial_.release();
    } else {
      partial_.clear();
    }
  }
  if (partial_.empty()) {
    // The common case: whole frames in the read buffer, returned in place.
    if (data.empty()) return Status::kNeedMore;
    const protocol::HeaderParse parse =
        protocol::parse_frame_header(data.data(), data.size(), protocol::Sender::kServer);
    if (parse.status == protocol::ParseStatus::kError) {
      error_ = parse.error;
      return Status::kError;
    }
    if (parse.status == protocol::ParseStatus::kNeedMore) {
      partial_.append(data.data(), data.size());
      data = {};
      return Status::kNeedMore;
    }
    if (parse.header.payload_length > max_payload_) {
      error_ = protocol::ProtocolError::kMessageTooBig;
      return Status::kError;
    }
    const uint64_t total = parse.header.header_length + parse.header.payload_length;
    if (data.size() >= total) {
      header = parse.header;
      payload = data.subspan(parse.header.header_length, parse.header.payload_length);
      data = data.subspan(total);
      return Status::kFrame;
    }
    header_ = parse.header;
    total_ = total;
    have_header_ = true;
    partial_.prepare(total);
    partial_.append(data.data(), data.size());
    data = {};
    return Status::kNeedMore;
  }

  // Continuing a frame split across reads.
  if (!have_header_) {
    // partial_ holds less than a whole header, so fewer than kMaxFrameHeaderLength bytes.
    size_t take = std::min(protocol::kMaxFrameHeaderLength - partial_.size(), data.size());
    partial_.append(data.data(), take);
    const protocol::HeaderParse parse =
        protocol::parse_frame_header(partial_.data(), partial_.size(), protocol::Sender::kServer);
    if (parse.status == protocol::ParseStatus::kError) {
      error_ = parse.error;
      return Status::kError;
    }
    if (parse.status == protocol::ParseStatus::kNeedMore) {
      data = data.subspan(take);
      return Status::kNeedMore;
    }
    if (parse.header.payload_length > max_payload_) {
      error_ = protocol::ProtocolError::kMessageTooBig;
      return Status::kError;
    }
    header_ = parse.header;
    total_ = parse.header.header_length + parse.header.payload_length;
    have_header_ = true;
    if (partial_.size() > total_) {
      // Took bytes of the next frame along with this header: give them back.
      take -= partial_.size() - total_;
      partial_.truncate(total_);
    }
    data = data.subspan(take);
  }
  const size_t take = static_cast<size_t>(std::min<uint64_t>(total_ - partial_.size(), data.size()));
  partial_.append(data.data(), take);
  data = data.subspan(take);
  if (partial_.size() < total_) return Status::kNeedMore;
  header = header_;
  payload = std::span<uint8_t>(partial_.data() + header_.header_length, header_.payload_length);
  have_header_ = false;
  partial_done_ = true;
  return Status::kFrame;
}

void ServerFrameReader::reset() {
  if (partial_.capacity() > kKeepBufferCapacity) {
    partial_.release();
  } else {
    partial_.clear();
  }
  have_header_ = false;
  partial_done_ = false;
  error_ = protocol::ProtocolError::kNone;
}

// ---- handshake ----

size_t write_upgrade_request(char* out, size_t cap, std::string_view path, std::string_view host,
                             std::string_view key) {
  const int n = std::snprintf(out, cap,
                              "GET %.*s HTTP/1.1\r\nHost: %.*s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                              "Sec-WebSocket-Key: %.*s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                              static_cast<int>(path.size()), path.data(), static_cast<int>(host.size()),
                              host.data(), static_cast<int>(key.size()), key.data());
  return n > 0 && static_cast<size_t>(n) < cap ? static_cast<size_t>(n) : 0;
}

std::string_view check_upgrade_response(std::string_view head, std::string_view expected_accept) {
  size_t eol = head.find("\r\n");
  if (eol == std::string_view::npos) return "no status line";
  std::string_view status_line = head.substr(0, eol);
  // RFC 6455 4.1: anything but 101 means the handshake did not complete.
  if (!status_line.starts_with("HTTP/1.1 101") ||
      (status_line.size() > 12 && status_line[12] != ' ')) {
    return "status is not 101";
  }
  bool upgrade = false, connection = false, accept = false;
  head.remove_prefix(eol + 2);
  while (!head.empty()) {
    eol = head.find("\r\n");
    if (eol == std::string_view::npos) return "unterminated header line";
    std::string_view line = head.substr(0, eol);
    head.remove_prefix(eol + 2);
    if (line.empty()) break;  // the blank line ending the head
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) return "header line without a colon";
    std::string_view name = line.substr(0, colon);
    std::string_view value = trim(line.substr(colon + 1));
    if (iequals(name, "upgrade")) {
      upgrade = iequals(value, "websocket");
    } else if (iequals(name, "connection")) {
      connection = has_token(value, "upgrade");
    } else if (iequals(name, "sec-websocket-accept")) {
      accept = value == expected_accept;
      if (!accept) return "wrong Sec-WebSocket-Accept";
    } else if (iequals(name, "sec-websocket-extensions")) {
      return "extension the client did not offer";  // RFC 6455 4.1 item 5
    } else if (iequals(name, "sec-websocket-protocol")) {
      return "subprotocol the client did not offer";  // RFC 6455 4.1 item 6
    }
  }
  if (!upgrade) return "no Upgrade: websocket";
  if (!connection) return "no Connection: Upgrade";
  if (!accept) return "no Sec-WebSocket-Accept";
  return {};
}

// ---- ClientContext ----

void ClientContext::count_error(ErrorKind kind, std::string_view detail) {
  const auto index = static_cast<size_t>(kind);
  ++result->counters.errors[index];
  if (!quiet && (error_printed & (1u << index)) == 0) {
    error_printed |= 1u << index;
    std::fprintf(stderr, "parley-load: first %s error: %.*s\n", error_kind_name(kind),
                 static_cast<int>(detail.size()), detail.data());
  }
}

// ---- LoadClient ----

void LoadClient::start(ClientContext& context, uint64_t now_ns, ByteBuffer& out) {
  abandon(context);
  // A chat user keeps its unacked messages for the resend (send_publish()); others start over.
  if (role_ != ChatRole::kUser) send_seq_ = receive_seq_ = 0;
  resend_end_ = receive_seq_;
  chat_step_ = ChatStep::kNone;
  joins_pending_ = 0;
  connect_start_ns_ = now_ns;
  phase_ = ClientPhase::kHandshake;
  ++context.result->counters.connects_started;
  // RFC 6455 4.1: a fresh base64-encoded 16-byte nonce per connection.
  uint8_t nonce[18] = {};
  const uint64_t a = context.rng->next(), b = context.rng->next();
  std::memcpy(nonce, &a, 8);
  std::memcpy(nonce + 8, &b, 8);
  for (size_t i = 0, o = 0; i < 18; i += 3, o += 4) {
    const uint32_t v = (uint32_t{nonce[i]} << 16) | (uint32_t{nonce[i + 1]} << 8) | nonce[i + 2];
    key_[o] = kBase64[(v >> 18) & 63];
    key_[o + 1] = kBase64[(v >> 12) & 63];
    key_[o + 2] = kBase64[(v >> 6) & 63];
    key_[o + 3] = kBase64[v & 63];
  }
  key_[22] = key_[23] = '=';  // 16 bytes encode to 22 characters and two pads
  char* request = reinterpret_cast<char*>(out.prepare(1024 + context.path.size() + context.host.size()));
  out.commit(write_upgrade_request(request, 1024 + context.path.size() + context.host.size(), context.path,
                                   context.host, std::string_view(key_, sizeof key_)));
}

void LoadClient::abandon(ClientContext& context) {
  if (phase_ == ClientPhase::kOpen || phase_ == ClientPhase::kClosing) --context.result->counters.open_connections;
  reader_.reset();
  head_.release();
  message_.release();
  gathering_ = false;
  server_closed_ = false;
  phase_ = ClientPhase::kIdle;
}

LoadClient::Status LoadClient::finish_handshake(ClientContext& context, std::string_view head, uint64_t now_ns,
                                                Feed& feed) {
  char accept[protocol::kAcceptKeyLength];
  protocol::compute_accept_key(std::string_view(key_, sizeof key_), accept);
  std::string_view why = check_upgrade_response(head, std::string_view(accept, sizeof accept));
  if (!why.empty()) {
    std::string detail(why);
    detail += ": ";
    detail += head.substr(0, std::min<size_t>(head.find("\r\n"), 200));
    context.count_error(ErrorKind::kHandshake, detail);
    phase_ = ClientPhase::kIdle;
    return Status::kFailed;
  }
  phase_ = ClientPhase::kOpen;
  feed.upgraded = true;
  LoadCounters& counters = context.result->counters;
  ++counters.upgrades;
  ++counters.open_connections;
  const bool measured = context.in_window(connect_start_ns_);
  if (measured) ++counters.upgrades_measured;
  if (measured || context.all_connects) context.result->connect_latency.record(now_ns - connect_start_ns_);
  return Status::kOk;
}

LoadClient::Feed LoadClient::feed(ClientContext& context, std::span<uint8_t> data, uint64_t now_ns,
                                  ByteBuffer& out) {
  Feed result;
  if (phase_ == ClientPhase::kIdle) return result;
  if (phase_ == ClientPhase::kHandshake) {
    // Look for the blank line ending the head, in place when the head arrived in one piece.
    std::string_view head;
    const size_t before = head_.size();
    if (before == 0) {
      std::string_view view(reinterpret_cast<const char*>(data.data()), data.size());
      size_t end = view.find("\r\n\r\n");
      if (end != std::string_view::npos) {
        head = view.substr(0, end + 4);
        data = data.subspan(end + 4);
      }
    }
    if (head.empty()) {
      const size_t take = std::min(data.size(), kMaxResponseHead + 1 - std::min(before, kMaxResponseHead + 1));
      head_.append(data.data(), take);
      std::string_view view(reinterpret_cast<const char*>(head_.data()), head_.size());
      size_t end = view.find("\r\n\r\n", before >= 3 ? before - 3 : 0);
      if (end == std::string_view::npos) {
        if (head_.size() > kMaxResponseHead) {
          context.count_error(ErrorKind::kHandshake, "response head over 8 KiB");
          phase_ = ClientPhase::kIdle;
          result.status = Status::kFailed;
        }
        return result;
      }
      head = view.substr(0, end + 4);
      data = data.subspan(end + 4 - before);
    }
    result.status = finish_handshake(context, head, now_ns, result);
    head_.release();
    if (result.status != Status::kOk) return result;
  }

  FrameHeader header;
  std::span<uint8_t> payload;
  for (;;) {
    const ServerFrameReader::Status status = reader_.next(data, header, payload);
    if (status == ServerFrameReader::Status::kNeedMore) break;
    if (status == ServerFrameReader::Status::kError) {
      context.count_error(ErrorKind::kProtocol, protocol::reason_for(reader_.error()));
      result.status = Status::kFailed;
      break;
    }
    result.status = handle_frame(context, header, payload, now_ns, out, result);
    if (result.status != Status::kOk) break;
  }
  if (result.status != Status::kOk) abandon(context);
  return result;
}

LoadClient::Status LoadClient::handle_frame(ClientContext& context, const FrameHeader& header,
                                            std::span<uint8_t> payload, uint64_t now_ns, ByteBuffer& out,
                                            Feed& feed) {
  if (phase_ == ClientPhase::kClosed) return Status::kOk;  // RFC 6455 5.5.1: nothing counts after a close
  switch (header.opcode) {
    case Opcode::kText:
    case Opcode::kBinary:
      if (gathering_) {
        context.count_error(ErrorKind::kProtocol, "new data frame inside a fragmented message");
        return Status::kFailed;
      }
      if (header.fin) return handle_message(context, header.opcode, payload, now_ns, out, feed);
      gathering_ = true;
      message_opcode_ = header.opcode;
      message_.clear();
      message_.append(payload.data(), payload.size());
      return Status::kOk;
    case Opcode::kContinuation:
      if (!gathering_) {
        context.count_error(ErrorKind::kProtocol, "continuation frame without a message");
        return Status::kFailed;
      }
      message_.append(payload.data(), payload.size());
      if (header.fin) {
        gathering_ = false;
        const Status status = handle_message(
            context, message_opcode_, std::span<const uint8_t>(message_.data(), message_.size()), now_ns, out, feed);
        message_.release();
        return status;
      }
      return Status::kOk;
    case Opcode::kPing:
      // RFC 6455 5.5.3: answer with a pong carrying the same application data.
      if (phase_ == ClientPhase::kOpen) append_control(context, Opcode::kPong, payload.data(), payload.size(), out);
      return Status::kOk;
    case Opcode::kPong:
      return Status::kOk;
    case Opcode::kClose:
      if (phase_ == ClientPhase::kClosing) {
        // RFC 6455 7.1.1: the server closes TCP first once the close handshake is done.
        ++context.result->counters.closes_clean;
        --context.result->counters.open_connections;
        phase_ = ClientPhase::kClosed;
        return Status::kOk;
      }
      if (phase_ == ClientPhase::kOpen) {
        // RFC 6455 5.5.1: echo the close, then the server ends the stream.
        std::string detail = "the server sent a close frame";
        if (payload.size() >= 2) detail += ", code " + std::to_string(payload[0] << 8 | payload[1]);
        context.count_error(ErrorKind::kClosed, detail);
        append_control(context, Opcode::kClose, payload.data(), std::min<size_t>(payload.size(), 2), out);
        server_closed_ = true;
        --context.result->counters.open_connections;
        phase_ = ClientPhase::kClosed;
      }
      return Status::kOk;
  }
  context.count_error(ErrorKind::kProtocol, "unknown opcode");
  return Status::kFailed;
}

LoadClient::Status LoadClient::handle_message(ClientContext& context, Opcode opcode, std::span<const uint8_t> payload,
                                              uint64_t now_ns, ByteBuffer& out, Feed& feed) {
  if (role_ != ChatRole::kNone) return handle_chat(context, opcode, payload, now_ns, out, feed);
  LoadCounters& counters = context.result->counters;
  if (in_flight() == 0) {
    context.count_error(ErrorKind::kMismatch, "a message arrived with no echo outstanding");
    return Status::kOk;
  }
  const uint64_t seq = receive_seq_++;
  ++feed.echoes;
  ++counters.received_total;
  const uint64_t sent_at = ring_[seq & ring_mask_];
  const bool measured = context.in_window(sent_at);
  if (measured) {
    ++counters.received;
    counters.payload_bytes_received += payload.size();
  }
  if (opcode != context.payload->opcode() || !context.payload->matches(seq, payload)) {
    context.count_error(ErrorKind::kMismatch, opcode != context.payload->opcode()
                                                  ? "echo came back with another opcode"
                                                  : "echo payload differs from the message sent");
    return Status::kOk;
  }
  if (measured) context.result->message_latency.record(now_ns > sent_at ? now_ns - sent_at : 0);
  return Status::kOk;
}

LoadClient::Status LoadClient::handle_chat(ClientContext& context, Opcode opcode, std::span<const uint8_t> payload,
                                           uint64_t now_ns, ByteBuffer& out, Feed& feed) {
  LoadCounters& counters = context.result->counters;
  if (opcode != Opcode::kText) {
    context.count_error(ErrorKind::kProtocol, "a binary message on the chat protocol");
    return Status::kOk;
  }
  const std::string_view text(reinterpret_cast<const char*>(payload.data()), payload.size());
  switch (classify_server_message(text)) {
    case ServerKind::kMsg: {
      // Publishers hear each other's messages too; those are not deliveries.
      if (role_ == ChatRole::kPublisher) return Status::kOk;
      if (role_ == ChatRole::kUser && !check_user_delivery(context, text)) return Status::kOk;
      uint64_t stamp_ns = 0;
      if (!find_stamp(text, stamp_ns)) {
        context.count_error(ErrorKind::kMismatch, "a msg whose text does not start with a t=<ns>; stamp");
        return Status::kOk;
      }
      ++counters.deliveries;
      context.last_delivery_ns = now_ns;
      context.result->message_latency.record(now_ns > stamp_ns ? now_ns - stamp_ns : 0);
      return Status::kOk;
    }
    case ServerKind::kAck:
      if (in_flight() == 0) {
        context.count_error(ErrorKind::kMismatch, "an ack with no msg outstanding");
        return Status::kOk;
      }
      if (receive_seq_ < resend_end_ && rejoin_seq_) {
        // The server's seqs only grow: a seq the rejoin already showed is the original ack.
        const uint64_t seq = last_seq_field(text);
        if (seq != 0 && seq <= rejoin_seq_[receive_seq_ % context.room_plan.per_user]) ++counters.duplicate_acks;
      }
      // docs/protocol.md: every other member of the room gets the msg.
      if (role_ == ChatRole::kUser) counters.deliveries_expected += context.room_plan.members(user_room(context, receive_seq_)) - 1;
      // Acks come in send order: the ring holds this msg's stamp (its send time).
      if (const uint64_t sent_ns = ring_[receive_seq_ & ring_mask_]; context.in_window(sent_ns)) {
        context.result->ack_latency.record(now_ns > sent_ns ? now_ns - sent_ns : 0);
      }
      ++receive_seq_;
      ++feed.acks;
      ++counters.acked;
      return Status::kOk;
    case ServerKind::kWelcome:
      if (chat_step_ == ChatStep::kHello) {
        // Every welcome replaces the token (docs/protocol.md "Session resume"); none: no sessions.
        const std::string_view tail = string_field_tail(text, "resume");
        const size_t end = tail.find('"');
        resume_length_ = end != std::string_view::npos && end <= sizeof resume_ ? static_cast<uint8_t>(end) : 0;
        if (resume_length_ != 0) std::memcpy(resume_, tail.data(), resume_length_);  // tail may be null
        chat_step_ = ChatStep::kJoining;
        std::string join;
        if (role_ == ChatRole::kUser) {
          // All joins at once; the server answers each with a history, in order.
          joins_pending_ = static_cast<uint32_t>(context.room_plan.per_user);
          for (uint64_t k = 0; k < context.room_plan.per_user; ++k) {
            join.clear();
            append_join(join, context.chat_rooms[context.room_plan.room_of(user_, k)]);
            append_text(context, join, out);
          }
        } else {
          joins_pending_ = 1;
          append_join(join, context.room);
          append_text(context, join, out);
        }
      }
      return Status::kOk;
    case ServerKind::kHistory:
      // A join's answer; a history for anything else would come after them.
      if (chat_step_ != ChatStep::kJoining) return Status::kOk;
      if (role_ == ChatRole::kUser && in_flight() != 0) {
        // Joins are answered in order: this is room k's, and its newest seq bounds what was stored.
        if (!rejoin_seq_) rejoin_seq_ = std::make_unique<uint64_t[]>(context.room_plan.per_user);
        rejoin_seq_[context.room_plan.per_user - joins_pending_] = last_seq_field(text);
      }
      if (--joins_pending_ == 0) {
        chat_step_ = ChatStep::kJoined;
        feed.joined = true;
        if (role_ == ChatRole::kSubscriber) ++counters.subscribers_joined;
        if (role_ == ChatRole::kUser) resend_unacked(context, out);
      }
      return Status::kOk;
    case ServerKind::kError: {
      if (chat_step_ == ChatStep::kHello && field_equals(text, "code", "resume_failed")) {
        // The window passed or the server restarted: plain hello (docs/protocol.md).
        resume_length_ = 0;
        send_hello(context, std::string_view(name_, name_length_), out);
        return Status::kOk;
      }
      const std::string detail(text.substr(0, 200));
      context.count_error(ErrorKind::kChat, detail);
      // The server answers each msg with an ack or an error, in order: this one was refused.
      if ((role_ == ChatRole::kPublisher || role_ == ChatRole::kUser) && chat_step_ == ChatStep::kJoined &&
          in_flight() != 0) {
        ++receive_seq_;
        ++feed.acks;
        ++counters.refused;
      }
      // A refused hello or join leaves a client that will never join: give up on it.
      return chat_step_ == ChatStep::kJoined ? Status::kOk : Status::kFailed;
    }
    case ServerKind::kJoined:
    case ServerKind::kLeft:
      if (role_ == ChatRole::kUser) ++counters.presence_events;
      return Status::kOk;
    case ServerKind::kOther:
      return Status::kOk;
  }
  return Status::kOk;
}

bool LoadClient::check_user_delivery(ClientContext& context, std::string_view message) const {
  // docs/protocol.md: "The sender does not get its own msg back".
  if (field_equals(message, "from", std::string_view(name_, name_length_))) {
    context.count_error(ErrorKind::kMismatch, "a user received its own msg back");
    return false;
  }
  for (uint64_t k = 0; k < context.room_plan.per_user; ++k) {
    if (field_equals(message, "room", context.chat_rooms[context.room_plan.room_of(user_, k)])) return true;
  }
  context.count_error(ErrorKind::kMismatch, "a msg for a room the user did not join");
  return false;
}

LoadClient::Status LoadClient::on_end_of_stream(ClientContext& context) {
  const ClientPhase phase = phase_;
  const bool server_closed = server_closed_;
  abandon(context);
  if (phase == ClientPhase::kClosed) return server_closed ? Status::kFailed : Status::kDone;
  if (phase == ClientPhase::kHandshake) {
    context.count_error(ErrorKind::kHandshake, "the server ended the stream before a 101");
  } else if (phase == ClientPhase::kOpen || phase == ClientPhase::kClosing) {
    context.count_error(ErrorKind::kClosed, phase == ClientPhase::kOpen
                                                ? "the server ended the stream without a close frame"
                                                : "the server ended the stream without answering our close");
  }
  return Status::kFailed;
}

void LoadClient::send_message(ClientContext& context, uint64_t intended_ns, ByteBuffer& out) {
  const EchoPayload& payload = *context.payload;
  const size_t size = payload.size();
  uint8_t key[4];
  mask_key_from(context.rng->next(), key);
  uint8_t* frame = out.prepare(protocol::kMaxFrameHeaderLength + size);
  const size_t header = protocol::encode_masked_frame_header(frame, payload.opcode(), size, key);
  uint8_t* body = frame + header;
  payload.write(send_seq_, body);
  protocol::unmask(body, size, key, 0);  // masking and unmasking are the same XOR
  out.commit(header + size);
  ring_[send_seq_ & ring_mask_] = intended_ns;
  ++send_seq_;
  LoadCounters& counters = context.result->counters;
  ++counters.sent_total;
  if (context.in_window(intended_ns)) ++counters.sent;
}

void LoadClient::send_hello(ClientContext& context, std::string_view name, ByteBuffer& out) {
  std::string hello;
  append_hello(hello, name, std::string_view(resume_, resume_length_));
  append_text(context, hello, out);
  chat_step_ = ChatStep::kHello;
  name_length_ = static_cast<uint8_t>(std::min(name.size(), sizeof name_));
  std::memcpy(name_, name.data(), name_length_);
}

void LoadClient::send_publish(ClientContext& context, uint64_t stamp_ns, ByteBuffer& out) {
  const std::string_view room =
      role_ == ChatRole::kUser ? std::string_view(context.chat_rooms[user_room(context, send_seq_)]) : context.room;
  write_msg(context, room, stamp_ns, role_ == ChatRole::kUser ? send_seq_ + 1 : 0, out);
  ring_[send_seq_ & ring_mask_] = stamp_ns;
  ++send_seq_;
  ++context.result->counters.published;
}

void LoadClient::write_msg(ClientContext& context, std::string_view room, uint64_t stamp_ns, uint64_t id,
                           ByteBuffer& out) {
  const size_t length = publish_length(room, stamp_ns, context.text_size, id);
  uint8_t key[4];
  mask_key_from(context.rng->next(), key);
  uint8_t* frame = out.prepare(protocol::kMaxFrameHeaderLength + length);
  const size_t header = protocol::encode_masked_frame_header(frame, Opcode::kText, length, key);
  uint8_t* body = frame + header;
  write_publish(room, stamp_ns, context.text_size, reinterpret_cast<char*>(body), id);
  protocol::unmask(body, length, key, 0);  // masking and unmasking are the same XOR
  out.commit(header + length);
}

void LoadClient::resend_unacked(ClientContext& context, ByteBuffer& out) {
  // The same stamp, room and id as the first time: the server stores each id once.
  for (uint64_t seq = receive_seq_; seq < send_seq_; ++seq) {
    write_msg(context, context.chat_rooms[user_room(context, seq)], ring_[seq & ring_mask_], seq + 1, out);
  }
  context.result->counters.resends += send_seq_ - receive_seq_;
  resend_end_ = send_seq_;
}

void LoadClient::append_text(ClientContext& context, std::string_view text, ByteBuffer& out) {
  uint8_t key[4];
  mask_key_from(context.rng->next(), key);
  uint8_t* frame = out.prepare(protocol::kMaxFrameHeaderLength + text.size());
  const size_t header = protocol::encode_masked_frame_header(frame, Opcode::kText, text.size(), key);
  std::memcpy(frame + header, text.data(), text.size());
  protocol::unmask(frame + header, text.size(), key, 0);
  out.commit(header + text.size());
}

void LoadClient::send_close(ClientContext& context, ByteBuffer& out) {
  const uint8_t code[2] = {kCloseNormal >> 8, kCloseNormal & 0xff};
  append_control(context, Opcode::kClose, code, sizeof code, out);
  phase_ = ClientPhase::kClosing;
}

void LoadClient::append_control(ClientContext& context, Opcode opcode, const uint8_t* payload, size_t length,
                                ByteBuffer& out) {
  uint8_t key[4];
  mask_key_from(context.rng->next(), key);
  uint8_t* frame = out.prepare(protocol::kMaxFrameHeaderLength + length);
  const size_t header = protocol::encode_masked_frame_header(frame, opcode, length, key);
  if (length != 0) std::memcpy(frame + header, payload, length);
  protocol::unmask(frame + header, length, key, 0);
  out.commit(header + length);
}

}  // namespace tools
