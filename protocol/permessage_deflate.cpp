#include "protocol/permessage_deflate.h"

#include "protocol/frame_header.h"

namespace protocol {
namespace {

constexpr int kClassWindowBits[PermessageDeflate::kWindowClasses] = {15, 13, 11, 9};

}  // namespace

PermessageDeflate::~PermessageDeflate() { forget_cached_frames(); }

uint8_t PermessageDeflate::window_class(uint8_t server_max_window_bits) {
  for (uint8_t c = 0; c + 1 < kWindowClasses; ++c) {
    if (kClassWindowBits[c] <= server_max_window_bits) return c;
  }
  return kWindowClasses - 1;
}

int PermessageDeflate::window_bits_of(uint8_t window_class) {
  return kClassWindowBits[window_class < kWindowClasses ? window_class : kWindowClasses - 1];
}

InflateResult PermessageDeflate::inflate(std::span<const uint8_t> compressed, uint64_t max_size,
                                         std::span<uint8_t>& out) {
  const InflateResult result = inflater_.inflate(compressed, max_size, inflated_);
  out = result == InflateResult::kOk ? std::span<uint8_t>(inflated_) : std::span<uint8_t>();
  return result;
}

bool PermessageDeflate::compress(uint8_t window_class, std::span<const uint8_t> payload,
                                 std::span<const uint8_t>& out) {
  if (payload.size() < threshold_ || window_class >= kWindowClasses) return false;
  std::unique_ptr<MessageDeflater>& deflater = deflaters_[window_class];
  if (deflater == nullptr) deflater = std::make_unique<MessageDeflater>(window_bits_of(window_class));
  if (!deflater->deflate(payload, deflated_)) return false;
  // Incompressible data (already compressed media, random bytes) goes as it is: the peer is
  // spared an inflate that gains nothing.
  if (deflated_.size() >= payload.size()) return false;
  out = deflated_;
  return true;
}

reactor::SharedBuffer* PermessageDeflate::compressed_frame(reactor::SharedBuffer* frame, uint8_t window_class) {
  if (window_class >= kWindowClasses) return frame;
  if (frame != cached_source_) {
    forget_cached_frames();
    frame->retain();
    cached_source_ = frame;
  }
  if (cached_compressed_[window_class] != nullptr) return cached_compressed_[window_class];
  reactor::SharedBuffer* result = frame;
  const HeaderParse parse = parse_frame_header(frame->data(), frame->size(), Sender::kServer);
  const FrameHeader& h = parse.header;
  std::span<const uint8_t> compressed;
  if (parse.status == ParseStatus::kOk && !is_control(h.opcode) && h.opcode != Opcode::kContinuation && h.fin &&
      h.header_length + h.payload_length == frame->size() &&
      compress(window_class, {frame->data() + h.header_length, static_cast<size_t>(h.payload_length)}, compressed)) {
    uint8_t header[kMaxFrameHeaderLength];
    // RFC 7692 6.1: RSV1 on the (only) frame of a compressed message.
    const size_t header_length = encode_frame_header(header, h.opcode, compressed.size(), true, true);
    reactor::SharedBuffer* built = reactor::SharedBuffer::create(header_length + compressed.size());
    if (built != nullptr) {
      built->append(header, header_length);
      built->append(compressed.data(), compressed.size());
      result = built;
    }
  }
  if (result == frame) frame->retain();  // the cache holds one reference per entry
  cached_compressed_[window_class] = result;
  return result;
}

void PermessageDeflate::release_large_buffers() {
  if (inflated_.capacity() > kKeepScratchCapacity) std::vector<uint8_t>().swap(inflated_);
  if (deflated_.capacity() > kKeepScratchCapacity) std::vector<uint8_t>().swap(deflated_);
}

void PermessageDeflate::forget_cached_frames() {
  for (reactor::SharedBuffer*& entry : cached_compressed_) {
    if (entry != nullptr) entry->release();
    entry = nullptr;
  }
  if (cached_source_ != nullptr) cached_source_->release();
  cached_source_ = nullptr;
}

}  // namespace protocol
