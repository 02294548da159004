#pragma once
// One parley-load connection as a pure state machine: it writes the upgrade request, checks the
// 101 (RFC 6455 4.1), parses server frames incrementally, matches echoes to what it sent and
// measures their latency, and answers pings and closes. It does no I/O: the worker feeds it the
// bytes it read and writes out what it appends to an output buffer.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/frame_header.h"
#include "tools/load_chat.h"
#include "tools/load_report.h"

namespace tools {

// A growable byte buffer with a read offset, which never zero-fills what it grows into. Empty
// buffers own no memory once release() is called.
class ByteBuffer {
 public:
  ByteBuffer() = default;
  ~ByteBuffer() { release(); }
  ByteBuffer(ByteBuffer&& other) noexcept;
  ByteBuffer& operator=(ByteBuffer&& other) noexcept;
  ByteBuffer(const ByteBuffer&) = delete;
  ByteBuffer& operator=(const ByteBuffer&) = delete;

  uint8_t* data() { return storage_ + head_; }
  const uint8_t* data() const { return storage_ + head_; }
  size_t size() const { return tail_ - head_; }
  bool empty() const { return tail_ == head_; }
  size_t capacity() const { return capacity_; }

  // Makes room for `n` more bytes and returns where they go; commit() them once written.
  uint8_t* prepare(size_t n) {
    if (capacity_ - tail_ < n) grow(n);
    return storage_ + tail_;
  }
  void commit(size_t n) { tail_ += n; }
  void append(const void* bytes, size_t n);
  // Drops `n` bytes from the front.
  void consume(size_t n);
  // Keeps only the first `n` bytes.
  void truncate(size_t n) { tail_ = head_ + n; }
  void clear() { head_ = tail_ = 0; }
  // Frees the memory.
  void release();

 private:
  void grow(size_t n);

  uint8_t* storage_ = nullptr;
  size_t head_ = 0;
  size_t tail_ = 0;
  size_t capacity_ = 0;
};

// xorshift64*: mask keys and handshake nonces. RFC 6455 10.3 asks for unpredictable masks to
// protect intermediaries; a load generator talking to its own server needs only variety.
class FastRng {
 public:
  explicit FastRng(uint64_t seed) : state_(seed | 1) {}
  uint64_t next() {
    state_ ^= state_ >> 12;
    state_ ^= state_ << 25;
    state_ ^= state_ >> 27;
    return state_ * 0x2545F4914F6CDD1DULL;
  }

 private:
  uint64_t state_;
};

// The echo message body: a per-connection sequence number stamped at the front (8 bytes little
// endian for binary; up to 11 base64-alphabet characters for text, so text stays valid UTF-8),
// then a fixed filler. Messages shorter than the stamp carry its low-order part.
class EchoPayload {
 public:
  EchoPayload(size_t size, bool binary);

  size_t size() const { return filler_.size(); }
  protocol::Opcode opcode() const { return binary_ ? protocol::Opcode::kBinary : protocol::Opcode::kText; }
  // Writes the payload of message `seq` to out[0, size()).
  void write(uint64_t seq, uint8_t* out) const;
  // True when `payload` is exactly the payload of message `seq`.
  bool matches(uint64_t seq, std::span<const uint8_t> payload) const;

 private:
  void stamp(uint64_t seq, uint8_t* out) const;

  std::vector<uint8_t> filler_;
  size_t stamp_length_ = 0;
  bool binary_ = false;
};

// Incremental parser for frames from a server (unmasked; RFC 6455 5.1). Complete frames are
// returned in place when the input holds them whole; a frame split across reads is gathered in
// a buffer of its own (freed when large).
class ServerFrameReader {
 public:
  enum class Status : uint8_t {
    kFrame,     // `header` / `payload` hold a frame, valid until the next call
    kNeedMore,  // every byte of `data` was consumed; feed more
    kError,     // malformed header or frame over the size limit; error() says which
  };

  explicit ServerFrameReader(uint64_t max_payload = uint64_t{64} << 20) : max_payload_(max_payload) {}

  // Takes the next frame out of the bytes kept from earlier calls plus `data`, advancing `data`
  // past what it used. The payload may point into `data` or into the reader's own buffer.
  Status next(std::span<uint8_t>& data, protocol::FrameHeader& header, std::span<uint8_t>& payload);
  // Why the last kError happened (kMessageTooBig for the size limit).
  protocol::ProtocolError error() const { return error_; }
  // Bytes of an incomplete frame kept for the next call.
  size_t buffered() const { return partial_done_ ? 0 : partial_.size(); }
  // Drops any partial frame (the connection is being reused).
  void reset();

 private:
  ByteBuffer partial_;
  protocol::FrameHeader header_;
  uint64_t total_ = 0;  // header + payload bytes of the frame in partial_, once its header parsed
  uint64_t max_payload_;
  protocol::ProtocolError error_ = protocol::ProtocolError::kNone;
  bool have_header_ = false;
  bool partial_done_ = false;  // partial_ holds a frame already returned: clear on the next call
};

// Writes "GET path ... Sec-WebSocket-Key: key ..." (RFC 6455 4.1) into out; returns its length,
// or 0 when `cap` is too small.
size_t write_upgrade_request(char* out, size_t cap, std::string_view path, std::string_view host,
                             std::string_view key);

// Checks a server's response head (status line through the blank line) to our upgrade: status
// 101, Upgrade: websocket, Connection: Upgrade, the expected Sec-WebSocket-Accept, and no
// extension or subprotocol we did not offer (RFC 6455 4.1, client requirements 1-6). Returns
// an empty view when acceptable, else why not.
std::string_view check_upgrade_response(std::string_view head, std::string_view expected_accept);

// What every client of one worker shares: the message template, the measurement window and
// where results go. Owned by the worker (or a test).
struct ClientContext {
  const EchoPayload* payload = nullptr;
  LoadResult* result = nullptr;
  FastRng* rng = nullptr;
  std::string path = "/";
  std::string host = "127.0.0.1";
  uint64_t window_start_ns = 0;  // messages / connects whose start falls in
  uint64_t window_end_ns = UINT64_MAX;  // [window_start, window_end) are measured
  bool all_connects = false;     // record connect latency for every connect, not just the window's
  std::string room;              // broadcast: the room chat clients join and publish to
  std::vector<std::string> chat_rooms;  // chat: every room's name, by room index
  ChatRoomPlan room_plan;        // chat: which rooms each user is in
  uint64_t text_size = 0;        // broadcast, chat: bytes of a published text (at least the stamp)
  uint64_t last_delivery_ns = 0; // broadcast: when the latest delivery was read
  bool quiet = false;            // do not print the first error of each kind to stderr
  uint32_t error_printed = 0;    // bit per ErrorKind already printed

  bool in_window(uint64_t t) const { return t >= window_start_ns && t < window_end_ns; }
  // Counts one error of `kind`; the first of each kind also goes to stderr with `detail`.
  void count_error(ErrorKind kind, std::string_view detail);
};

enum class ClientPhase : uint8_t {
  kIdle,       // not started, or finished
  kHandshake,  // upgrade request written, waiting for the 101
  kOpen,       // upgraded
  kClosing,    // we sent a close frame; waiting for the server's, then its end of stream
  kClosed,     // the close handshake finished; waiting for the server's end of stream
};

// What a connection does on /chat in the broadcast scenario; kNone is an echo connection.
enum class ChatRole : uint8_t {
  kNone,
  kSubscriber,  // hello, join, then record each stamped msg event as a delivery
  kPublisher,   // hello, join, then send stamped msg and count their acks
  kUser,        // chat scenario: hello, join its rooms, then both: send to its rooms in turn, count
                // acks (and the deliveries each implies) and record every delivery it receives
};

class LoadClient {
 public:
  enum class Status : uint8_t {
    kOk,      // keep going
    kDone,    // finished cleanly (close handshake and end of stream): close the socket
    kFailed,  // an error, already counted: write out what is queued, then close the socket
  };
  struct Feed {
    Status status = Status::kOk;
    bool upgraded = false;  // the 101 arrived in this call
    uint32_t echoes = 0;    // echo messages consumed in this call (matched or not)
    bool joined = false;    // chat: the answer to our (last) join (history) arrived in this call
    uint32_t acks = 0;      // chat: answers (ack or error) to our msg consumed in this call
  };

  // `ring` holds send times of messages in flight, indexed by sequence & ring_mask; its size
  // (ring_mask + 1, a power of two) bounds in_flight(). Owned by the caller.
  void attach_ring(uint64_t* ring, uint32_t ring_mask) {
    ring_ = ring;
    ring_mask_ = ring_mask;
  }
  // Starts a new attempt at now_ns (connect() time): a fresh key, the upgrade request appended
  // to `out`, every earlier state forgotten.
  void start(ClientContext& context, uint64_t now_ns, ByteBuffer& out);
  // Consumes bytes read from the socket at now_ns; may append frames (pongs, closes) to `out`.
  Feed feed(ClientContext& context, std::span<uint8_t> data, uint64_t now_ns, ByteBuffer& out);
  // The server ended the stream: kDone after a finished close handshake, else kFailed (counted).
  Status on_end_of_stream(ClientContext& context);

  // Appends one echo message whose intended send time is intended_ns. Requires kOpen and
  // in_flight() <= ring_mask.
  void send_message(ClientContext& context, uint64_t intended_ns, ByteBuffer& out);
  // Appends a close frame (1000) and moves to kClosing. Requires kOpen.
  void send_close(ClientContext& context, ByteBuffer& out);

  // Makes this a chat connection (or an echo one again, kNone); kept across start().
  void set_chat_role(ChatRole role) { role_ = role; }
  ChatRole chat_role() const { return role_; }
  // kUser: this client is user `user` (global index into context.room_plan); kept across start().
  void set_chat_user(uint64_t user) { user_ = user; }
  // Appends hello as `name`; the welcome that answers it makes the client join context.room.
  // Requires kOpen and a chat role.
  void send_hello(ClientContext& context, std::string_view name, ByteBuffer& out);
  // Appends a msg whose text carries `stamp_ns` (the publish time) to context.room, or for
  // kUser to its rooms in turn, with the id <its number + 1>; counts it as published and in
  // flight until its ack. Requires chat_joined() and can_send().
  //
  // kUser keeps what is in flight across start() (docs/protocol.md "Exactly-once sends"): the
  // ring (at most ring_mask + 1 messages, the --max-in-flight bound) holds each unacked msg's
  // stamp, and its number gives its room and id. The next connection says hello with the last
  // resume token, joins its rooms again and, once every join is answered, resends them all with
  // the same ids, in order; an ack of a resend whose seq is at most the newest seq the rejoin's
  // history showed for that room is a duplicate ack: the server had stored it already and
  // answered with the original (counted in duplicate_acks).
  void send_publish(ClientContext& context, uint64_t stamp_ns, ByteBuffer& out);
  // True once the server answered our join.
  bool chat_joined() const { return chat_step_ == ChatStep::kJoined; }

  ClientPhase phase() const { return phase_; }
  bool can_send() const { return phase_ == ClientPhase::kOpen && in_flight() <= ring_mask_; }
  uint64_t in_flight() const { return send_seq_ - receive_seq_; }
  uint64_t sent() const { return send_seq_; }
  uint64_t received() const { return receive_seq_; }
  uint64_t connect_start_ns() const { return connect_start_ns_; }
  // Forgets the resume token (a clean close ends the session at once: docs/protocol.md).
  void forget_resume() { resume_length_ = 0; }
  // Ends the attempt without any close handshake (the worker closed the socket); keeps the
  // open-connection gauge right.
  void abandon(ClientContext& context);

 private:
  enum class ChatStep : uint8_t { kNone, kHello, kJoining, kJoined };

  Status handle_frame(ClientContext& context, const protocol::FrameHeader& header, std::span<uint8_t> payload,
                      uint64_t now_ns, ByteBuffer& out, Feed& feed);
  Status handle_message(ClientContext& context, protocol::Opcode opcode, std::span<const uint8_t> payload,
                        uint64_t now_ns, ByteBuffer& out, Feed& feed);
  // kFailed (counted) when the server refuses our hello or join: such a client never joins.
  Status handle_chat(ClientContext& context, protocol::Opcode opcode, std::span<const uint8_t> payload,
                     uint64_t now_ns, ByteBuffer& out, Feed& feed);
  // Appends `text` as one masked text frame.
  void append_text(ClientContext& context, std::string_view text, ByteBuffer& out);
  Status finish_handshake(ClientContext& context, std::string_view head, uint64_t now_ns, Feed& feed);
  // kUser: the room index of its msg number `seq` (its rooms in turn).
  uint64_t user_room(const ClientContext& context, uint64_t seq) const {
    return context.room_plan.room_of(user_, seq % context.room_plan.per_user);
  }
  // kMsg for kUser: false (counted) when it is the user's own message or for a room it is not in.
  bool check_user_delivery(ClientContext& context, std::string_view message) const;
  void append_control(ClientContext& context, protocol::Opcode opcode, const uint8_t* payload, size_t length,
                      ByteBuffer& out);
  // Appends one msg frame to `room` stamped `stamp_ns`, with "id" when `id` != 0.
  void write_msg(ClientContext& context, std::string_view room, uint64_t stamp_ns, uint64_t id, ByteBuffer& out);
  // kUser, once every rejoin is answered: every unacked msg again, in order (see send_publish()).
  void resend_unacked(ClientContext& context, ByteBuffer& out);

  ServerFrameReader reader_;
  ByteBuffer head_;     // an incomplete handshake response
  ByteBuffer message_;  // a fragmented message being gathered
  uint64_t* ring_ = nullptr;
  uint64_t send_seq_ = 0;
  uint64_t receive_seq_ = 0;
  uint64_t connect_start_ns_ = 0;
  uint64_t user_ = 0;          // kUser: global user index
  uint64_t resend_end_ = 0;    // kUser: messages numbered below this were resent on this connection
  std::unique_ptr<uint64_t[]> rejoin_seq_;  // kUser: per room k, the newest seq the rejoin showed
  uint32_t ring_mask_ = 0;
  uint32_t joins_pending_ = 0; // joins sent and not yet answered
  uint8_t name_length_ = 0;
  char name_[32] = {};         // the name sent in hello (user names are at most 32 bytes)
  uint8_t resume_length_ = 0;
  char resume_[64] = {};       // the last welcome's resume token (at most 64 bytes)
  ClientPhase phase_ = ClientPhase::kIdle;
  ChatRole role_ = ChatRole::kNone;
  ChatStep chat_step_ = ChatStep::kNone;
  protocol::Opcode message_opcode_ = protocol::Opcode::kContinuation;  // of message_ when gathering
  bool gathering_ = false;
  bool server_closed_ = false;  // the server sent a close frame first
  char key_[24] = {};
};

}  // namespace tools
