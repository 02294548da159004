// Frame codec micro-benchmarks: header parsing, in-place unmasking and the streaming reader.
// Run one group with --benchmark_filter='Frame'.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "protocol/frame_header.h"
#include "protocol/message_reader.h"

namespace protocol {
namespace {

const uint8_t kKey[4] = {0x12, 0x34, 0x56, 0x78};

// A masked client binary frame carrying `payload_length` bytes, at a 64-byte-aligned address as a
// loop-wide receive buffer would be.
struct FrameBuffer {
  explicit FrameBuffer(size_t payload_length) : storage(payload_length + kMaxFrameHeaderLength + 64) {
    uint8_t* base = storage.data();
    data = base + ((64 - reinterpret_cast<uintptr_t>(base) % 64) % 64);
    length = encode_masked_frame_header(data, Opcode::kBinary, payload_length, kKey);
    for (size_t i = 0; i < payload_length; ++i) data[length + i] = static_cast<uint8_t>(i);
    length += payload_length;
  }
  std::vector<uint8_t> storage;
  uint8_t* data = nullptr;
  size_t length = 0;
};

// Parse the header, then unmask the payload in place: the per-frame work of a server read.
void BM_FrameParseUnmask(benchmark::State& state) {
  const size_t payload_length = static_cast<size_t>(state.range(0));
  FrameBuffer frame(payload_length);
  for (auto _ : state) {
    const HeaderParse parse = parse_frame_header(frame.data, frame.length, Sender::kClient);
    uint8_t* payload = frame.data + parse.header.header_length;
    unmask(payload, static_cast<size_t>(parse.header.payload_length), parse.header.mask_key, 0);
    benchmark::DoNotOptimize(payload);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(payload_length));
}
BENCHMARK(BM_FrameParseUnmask)->Arg(16)->Arg(1024)->Arg(64 * 1024);

// Unmask alone; the offset argument exercises the rotated-key path.
void BM_FrameUnmask(benchmark::State& state) {
  const size_t payload_length = static_cast<size_t>(state.range(0));
  FrameBuffer frame(payload_length);
  uint8_t* payload = frame.data + frame.length - payload_length;
  for (auto _ : state) {
    unmask(payload, payload_length, kKey, 1);
    benchmark::DoNotOptimize(payload);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(payload_length));
}
BENCHMARK(BM_FrameUnmask)->Arg(16)->Arg(1024)->Arg(64 * 1024);

// Unmask starting one byte past an aligned address: the usual case after a 6- or 8-byte header.
void BM_FrameUnmaskMisaligned(benchmark::State& state) {
  const size_t payload_length = static_cast<size_t>(state.range(0));
  FrameBuffer frame(payload_length + 1);
  uint8_t* payload = frame.data + frame.length - payload_length;
  for (auto _ : state) {
    unmask(payload, payload_length, kKey, 0);
    benchmark::DoNotOptimize(payload);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(payload_length));
}
BENCHMARK(BM_FrameUnmaskMisaligned)->Arg(1024)->Arg(64 * 1024);

void BM_FrameEncodeHeader(benchmark::State& state) {
  const uint64_t payload_length = static_cast<uint64_t>(state.range(0));
  uint8_t out[kMaxFrameHeaderLength];
  for (auto _ : state) {
    benchmark::DoNotOptimize(encode_frame_header(out, Opcode::kText, payload_length));
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_FrameEncodeHeader)->Arg(16)->Arg(1024)->Arg(64 * 1024);

class CountingSink : public MessageSink {
 public:
  bool on_data(Opcode, std::span<uint8_t> piece, bool, bool) override {
    bytes += piece.size();
    return true;
  }
  bool on_control(Opcode, std::span<const uint8_t>) override { return true; }
  size_t bytes = 0;
};

// The full reader over a buffer of back-to-back binary frames (a busy connection's read).
void BM_FrameFeedMessages(benchmark::State& state) {
  const size_t payload_length = static_cast<size_t>(state.range(0));
  const FrameBuffer one(payload_length);
  constexpr size_t kFrames = 16;
  std::vector<uint8_t> stream;
  for (size_t i = 0; i < kFrames; ++i) stream.insert(stream.end(), one.data, one.data + one.length);
  CountingSink sink;
  const ReaderLimits limits;
  for (auto _ : state) {
    ReaderState reader;
    const FeedResult result = feed_messages(reader, stream.data(), stream.size(), limits, sink);
    benchmark::DoNotOptimize(result);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(kFrames * payload_length));
}
BENCHMARK(BM_FrameFeedMessages)->Arg(16)->Arg(1024)->Arg(64 * 1024);

}  // namespace
}  // namespace protocol
