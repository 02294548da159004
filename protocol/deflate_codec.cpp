#include "protocol/deflate_codec.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <new>

namespace protocol {
namespace {

// RFC 7692 7.2.1: the empty stored block a sync flush ends with, removed by the sender.
constexpr uint8_t kFlushTail[4] = {0x00, 0x00, 0xff, 0xff};
constexpr size_t kMinInflateOutput = 1024;
// Raw deflate (RFC 7692 7.2: no zlib header or trailer) with the largest window: a 15-bit
// inflate window reads streams compressed with any smaller one.
constexpr int kInflateWindowBits = 15;

}  // namespace

MessageInflater::~MessageInflater() {
  if (stream_ == nullptr) return;
  inflateEnd(stream_);
  delete stream_;
}

InflateResult MessageInflater::inflate(std::span<const uint8_t> compressed, uint64_t max_size,
                                       std::vector<uint8_t>& out) {
  if (stream_ == nullptr) {
    auto* stream = new (std::nothrow) z_stream();
    if (stream == nullptr) return InflateResult::kNoMemory;
    if (inflateInit2(stream, -kInflateWindowBits) != Z_OK) {
      delete stream;
      return InflateResult::kNoMemory;
    }
    stream_ = stream;
  } else if (inflateReset(stream_) != Z_OK) {
    return InflateResult::kNoMemory;
  }
  // Output never grows past max_size + 1: one byte over the limit is proof enough.
  const uint64_t limit = max_size < SIZE_MAX - 1 ? max_size + 1 : SIZE_MAX;
  size_t capacity = static_cast<size_t>(std::min<uint64_t>(limit, std::max(kMinInflateOutput, compressed.size() * 4)));
  if (out.size() < capacity) out.resize(capacity);
  capacity = static_cast<size_t>(std::min<uint64_t>(limit, out.size()));
  size_t produced = 0;

  const std::span<const uint8_t> inputs[2] = {compressed, std::span<const uint8_t>(kFlushTail)};
  for (const std::span<const uint8_t>& input : inputs) {
    stream_->next_in = const_cast<uint8_t*>(input.data());
    stream_->avail_in = static_cast<uInt>(input.size());
    int rc = Z_OK;
    for (;;) {
      if (produced == capacity) {
        if (capacity >= limit) return InflateResult::kTooBig;
        capacity = static_cast<size_t>(std::min<uint64_t>(limit, static_cast<uint64_t>(capacity) * 2));
        if (out.size() < capacity) out.resize(capacity);
      }
      stream_->next_out = out.data() + produced;
      stream_->avail_out = static_cast<uInt>(std::min<size_t>(capacity - produced, UINT32_MAX));
      const uInt offered = stream_->avail_out;
      rc = ::inflate(stream_, Z_SYNC_FLUSH);
      produced += offered - stream_->avail_out;
      if (rc == Z_STREAM_END) break;
      if (rc == Z_MEM_ERROR) return InflateResult::kNoMemory;
      if (rc != Z_OK && rc != Z_BUF_ERROR) return InflateResult::kInvalidData;
      // Done with this input once it is consumed and zlib had room to spare.
      if (stream_->avail_in == 0 && stream_->avail_out != 0) break;
      if (rc == Z_BUF_ERROR && stream_->avail_out != 0) return InflateResult::kInvalidData;
    }
    if (rc == Z_STREAM_END) {
      // A final block (BFINAL) may end the message; only our own tail may follow it.
      if (input.data() == compressed.data() && stream_->avail_in != 0) return InflateResult::kInvalidData;
      break;
    }
  }
  if (produced > max_size) return InflateResult::kTooBig;
  out.resize(produced);
  return InflateResult::kOk;
}

MessageDeflater::MessageDeflater(int window_bits, int level, int mem_level)
    // zlib refuses a raw window of 8 bits. 9 is safe for a peer that asked for 8: deflate never
    // matches farther back than the window minus MIN_LOOKAHEAD (262), and 512 - 262 = 250 < 256.
    : window_bits_(std::clamp(window_bits, 9, 15)), level_(level), mem_level_(mem_level) {}

MessageDeflater::~MessageDeflater() {
  if (stream_ == nullptr) return;
  deflateEnd(stream_);
  delete stream_;
}

bool MessageDeflater::deflate(std::span<const uint8_t> payload, std::vector<uint8_t>& out) {
  if (stream_ == nullptr) {
    auto* stream = new (std::nothrow) z_stream();
    if (stream == nullptr) return false;
    if (deflateInit2(stream, level_, Z_DEFLATED, -window_bits_, mem_level_, Z_DEFAULT_STRATEGY) != Z_OK) {
      delete stream;
      return false;
    }
    stream_ = stream;
  } else if (deflateReset(stream_) != Z_OK) {
    // No context takeover (RFC 7692 7.1.1.1): each message starts from an empty window.
    return false;
  }
  // deflateBound does not count the sync flush's empty stored block; the loop covers any excess.
  size_t capacity = deflateBound(stream_, static_cast<uLong>(payload.size())) + 16;
  if (out.size() < capacity) out.resize(capacity);
  capacity = out.size();
  stream_->next_in = const_cast<uint8_t*>(payload.data());
  stream_->avail_in = static_cast<uInt>(payload.size());
  size_t produced = 0;
  for (;;) {
    stream_->next_out = out.data() + produced;
    stream_->avail_out = static_cast<uInt>(std::min<size_t>(capacity - produced, UINT32_MAX));
    const uInt offered = stream_->avail_out;
    const int rc = ::deflate(stream_, Z_SYNC_FLUSH);
    produced += offered - stream_->avail_out;
    if (rc != Z_OK && rc != Z_BUF_ERROR) return false;
    // zlib: a flush is complete when deflate returns with output space left over.
    if (stream_->avail_out != 0 && stream_->avail_in == 0) break;
    capacity *= 2;
    out.resize(capacity);
  }
  if (produced < sizeof kFlushTail ||
      std::memcmp(out.data() + produced - sizeof kFlushTail, kFlushTail, sizeof kFlushTail) != 0) {
    return false;
  }
  out.resize(produced - sizeof kFlushTail);
  return true;
}

}  // namespace protocol
