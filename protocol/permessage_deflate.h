#pragma once
// The server's permessage-deflate engine (RFC 7692): zlib streams, scratch buffers and the
// compress-once cache for broadcast frames, shared by every connection of one WsServer. Because
// parley negotiates no context takeover in both directions (deflate_offer.h), no connection owns
// any of this: a connection only records that it negotiated the extension and its window class.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "protocol/deflate_codec.h"
#include "reactor/shared_buffer.h"

namespace protocol {

// Default for WsServerConfig::deflate_threshold: below this many payload bytes a message is
// sent uncompressed. Deflate's fixed cost (block header, no history) makes smaller messages
// shrink by a few bytes at best, and every compressed message costs the peer an inflate.
inline constexpr size_t kDefaultDeflateThreshold = 64;

class PermessageDeflate {
 public:
  // Compressor windows come in four classes so a connection can store its class in two bits.
  static constexpr uint8_t kWindowClasses = 4;

  explicit PermessageDeflate(size_t threshold = kDefaultDeflateThreshold) : threshold_(threshold) {}
  ~PermessageDeflate();
  PermessageDeflate(const PermessageDeflate&) = delete;
  PermessageDeflate& operator=(const PermessageDeflate&) = delete;

  // The class for a peer that allows server_max_window_bits (8-15): the largest of the windows
  // 15, 13, 11, 9 that does not exceed it (8 maps to 9, see MessageDeflater).
  static uint8_t window_class(uint8_t server_max_window_bits);
  // The zlib window bits of `window_class`.
  static int window_bits_of(uint8_t window_class);

  size_t threshold() const { return threshold_; }

  // Inflates one compressed message (RFC 7692 7.2.2). On kOk `out` views the bytes, valid until
  // the next inflate(); the owner may modify them in place.
  InflateResult inflate(std::span<const uint8_t> compressed, uint64_t max_size, std::span<uint8_t>& out);

  // Compresses a data message's payload for a peer of `window_class`. False when it should go
  // uncompressed: below the threshold, no smaller once compressed, or zlib failed. On true `out`
  // views the compressed bytes (RSV1 goes on the frame), valid until the next compress().
  bool compress(uint8_t window_class, std::span<const uint8_t> payload, std::span<const uint8_t>& out);

  // For a complete, unmasked, final data frame in `frame` (header + payload, e.g. one broadcast
  // encoded once): the same message compressed with RSV1 set, built once per frame and class and
  // shared by every recipient, or `frame` itself when it goes uncompressed. The result is
  // borrowed: valid until the next call with another frame; push() it to keep it.
  reactor::SharedBuffer* compressed_frame(reactor::SharedBuffer* frame, uint8_t window_class);

  // Frees scratch buffers that one large message grew past kKeepScratchCapacity, so a single
  // 16 MiB message does not pin 16 MiB for the life of the server. Invalidates inflate() views.
  void release_large_buffers();
  static constexpr size_t kKeepScratchCapacity = 1u << 20;
  // Bytes the scratch buffers hold (their capacity).
  size_t scratch_bytes() const { return inflated_.capacity() + deflated_.capacity(); }

 private:
  void forget_cached_frames();

  size_t threshold_;
  MessageInflater inflater_;
  std::unique_ptr<MessageDeflater> deflaters_[kWindowClasses];  // created on first use
  std::vector<uint8_t> inflated_;
  std::vector<uint8_t> deflated_;
  // The compress-once cache. The source is retained, so its address cannot be reused by another
  // buffer while it is the key.
  reactor::SharedBuffer* cached_source_ = nullptr;
  reactor::SharedBuffer* cached_compressed_[kWindowClasses] = {};
};

}  // namespace protocol
