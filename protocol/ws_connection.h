#pragma once
// Per-connection state of WsServer. An idle, upgraded connection owns nothing but this struct:
// no buffers, no reader state, no write queue (DESIGN.md "State per connection").
#include <cstdint>
#include <vector>

#include "protocol/http_request.h"
#include "protocol/message_assembly.h"
#include "protocol/message_reader.h"
#include "reactor/timer_wheel.h"
#include "reactor/write_queue.h"

namespace protocol {

enum class ConnectionState : uint8_t {
  kFree = 0,   // slot unused (zero-filled table pages read as free)
  kHandshake,  // reading the HTTP request head
  kOpen,       // upgraded: frames flow both ways
  kClosing,    // close frame or HTTP response sent; waiting for flush, peer close, EOF
  kClosed,     // gone; freed at the end of the iteration
};

enum ConnectionFlags : uint8_t {
  kCloseSent = 1 << 0,      // our close frame (or final HTTP response) is queued
  kCloseReceived = 1 << 1,  // the peer's close frame arrived, or it broke the protocol
  kShutdownSent = 1 << 2,   // shutdown(SHUT_WR) done: only waiting for the peer's EOF
  kOpenNotified = 1 << 3,   // the application saw on_open and is owed on_close
  kOnReadyList = 1 << 4,    // read budget ran out: queued on the loop's ready list
  kOnFlushList = 1 << 5,    // has queued output to write at the end of the iteration
  kHeardFrom = 1 << 6,      // bytes arrived since the last heartbeat ping
  kDataSeen = 1 << 7,       // a data message arrived since the last heartbeat (idle timeout)
};

enum ConnectionFlags2 : uint8_t {
  kRejectBusy = 1 << 0,         // over a connection limit on TLS: 503 once the handshake is done
  // Shares kRejectBusy's bit: that one lives only before the upgrade, this one only after it.
  kPeerCloseFrame = 1 << 0,     // the peer's close frame arrived with nothing after it (unlike
                                // kCloseReceived, also set when we failed the connection)
  kUpgraded = 1 << 1,           // the 101 went out: frames are read until the close completes
  kCloseNoticeQueued = 1 << 2,  // on_close is due at the end of this iteration
  kPeerHungUp = 1 << 3,         // epoll reported RDHUP/HUP/ERR: read on to the end of stream
  kReadPaused = 1 << 4,         // output over max_buffered: input stays in the kernel (TCP
                                // backpressure) until the queue drains
  kDeflate = 1 << 5,            // permessage-deflate negotiated (RFC 7692): RSV1 is allowed
  kDeflateWindow = 3 << 6,      // the peer's compressor window class (PermessageDeflate)
};
inline constexpr int kDeflateWindowShift = 6;

enum class TimerPurpose : uint8_t {
  kNone,
  kHandshake,  // the request head must arrive
  kPing,       // time to send the next heartbeat ping
  kPong,       // the peer must have sent something since the ping
  kClose,      // the close handshake / TCP shutdown must finish
};

// Input that is only needed while something is incomplete; pooled by WsServer.
struct ConnectionExtra {
  ReaderState reader;
  std::vector<uint8_t> pending;  // an unfinished request head
  HeadScanState head_scan;       // how far `pending` has been checked
  MessageBuffer message;         // an unfinished message's data (message_assembly.h)
  size_t charged = 0;            // bytes of both in the server's memory account (charge_extra)
};

struct Connection {
  reactor::TimerNode timer;          // the one deadline this connection waits for
  ConnectionExtra* extra = nullptr;  // null when no input is incomplete
  reactor::WriteQueue* out = nullptr;  // null when the kernel took everything
  uint32_t generation = 0;           // bumped on each reuse of the slot (24 bits significant)
  uint32_t user_data = 0;
  uint16_t close_code = 0;           // the code to report in on_close
  ConnectionState state = ConnectionState::kFree;
  uint8_t flags = 0;
  uint8_t route = 0;
  TimerPurpose timer_purpose = TimerPurpose::kNone;
  uint8_t idle_heartbeats = 0;  // heartbeats in a row without a data message
  uint8_t flags2 = 0;           // ConnectionFlags2
};

}  // namespace protocol
