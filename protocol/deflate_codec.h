#pragma once
// permessage-deflate payload codec (RFC 7692 section 7.2) over zlib raw deflate, one message at a
// time without context takeover: every message starts with an empty LZ77 window, so one stream
// can serve every connection in turn (see deflate_offer.h for why parley negotiates that).
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

struct z_stream_s;  // zlib's stream; kept out of this header

namespace protocol {

enum class InflateResult : uint8_t {
  kOk,
  kTooBig,       // more than max_size bytes would come out (stopped at max_size + 1)
  kInvalidData,  // not a valid deflate stream, or bytes after its final block
  kNoMemory,
};

// Decompresses messages. The zlib stream (~7 KiB + the 32 KiB window) is created on first use
// and reset, not freed, between messages.
class MessageInflater {
 public:
  MessageInflater() = default;
  ~MessageInflater();
  MessageInflater(const MessageInflater&) = delete;
  MessageInflater& operator=(const MessageInflater&) = delete;

  // Inflates one message's payload, appending the 00 00 ff ff that the sender removed (RFC 7692
  // 7.2.2), into `out` (replaced). Stops as soon as output passes `max_size`, so a small
  // "zip bomb" costs at most max_size + 1 bytes of work and memory.
  InflateResult inflate(std::span<const uint8_t> compressed, uint64_t max_size, std::vector<uint8_t>& out);

 private:
  z_stream_s* stream_ = nullptr;
};

// zlib's fastest level. Measured (bench/deflate_bench.cpp, BM_DeflateMessage): on 16 KiB of chat
// JSON level 1 takes ~32 us for a ratio of 0.20, level 6 ~115 us for 0.16; on 200 B both take ~4 us
// (the per-message reset dominates). A chat server pays CPU per message, so level 1.
inline constexpr int kDefaultDeflateLevel = 1;
// zlib's default memLevel; the stream is shared, so its 128 KiB of hash tables are paid once.
inline constexpr int kDefaultDeflateMemLevel = 8;

// Compresses messages within a window of 2^window_bits bytes (8..15).
class MessageDeflater {
 public:
  explicit MessageDeflater(int window_bits = 15, int level = kDefaultDeflateLevel,
                           int mem_level = kDefaultDeflateMemLevel);
  ~MessageDeflater();
  MessageDeflater(const MessageDeflater&) = delete;
  MessageDeflater& operator=(const MessageDeflater&) = delete;

  // Compresses `payload` as one message into `out` (replaced), ending in a sync flush whose
  // 00 00 ff ff is removed (RFC 7692 7.2.1). False when zlib fails (out of memory).
  bool deflate(std::span<const uint8_t> payload, std::vector<uint8_t>& out);

 private:
  z_stream_s* stream_ = nullptr;
  int window_bits_;
  int level_;
  int mem_level_;
};

}  // namespace protocol
