// permessage-deflate micro-benchmarks: compress and decompress throughput for chat-like JSON
// (200 B, a typical room message, and 16 KiB), the compress-once broadcast frame, and what a zlib
// stream costs in memory per window size and memLevel (counted through zalloc).
// Run with --benchmark_filter='Deflate|Inflate'.
#include <benchmark/benchmark.h>
#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "protocol/deflate_codec.h"
#include "protocol/frame_header.h"
#include "protocol/permessage_deflate.h"

namespace protocol {
namespace {

// Room messages as parleyd sends them: JSON with varying users, text and sequence numbers.
std::string chat_json(size_t size, unsigned seed) {
  static const char* const kUsers[] = {"alice", "bob", "carol", "dave"};
  static const char* const kWords[] = {"hello", "lunch", "at", "noon", "the", "build", "is", "green", "again", "ok"};
  std::string s;
  unsigned x = seed;
  while (s.size() < size) {
    x = x * 1103515245u + 12345u;
    std::string text;
    for (int w = 0; w < 8; ++w) text += std::string(kWords[(x >> (w * 3)) % 10]) + " ";
    s += R"({"type":"msg","room":"general","from":")" + std::string(kUsers[x % 4]) + R"(","text":")" + text +
         R"(","ts":17000)" + std::to_string(x % 10000000) + R"(,"seq":)" + std::to_string(x % 9999) + "}";
  }
  s.resize(size);
  return s;
}

std::span<const uint8_t> bytes_of(const std::string& s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

// Args: payload size, zlib level, memLevel. Each message starts with deflateReset, which clears a
// hash table of 2^(memLevel + 8) bytes: the fixed cost that dominates small messages.
void BM_DeflateMessage(benchmark::State& state) {
  const std::string payload = chat_json(static_cast<size_t>(state.range(0)), 1);
  MessageDeflater deflater(15, static_cast<int>(state.range(1)), static_cast<int>(state.range(2)));
  std::vector<uint8_t> out;
  for (auto _ : state) {
    deflater.deflate(bytes_of(payload), out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
  state.counters["ratio"] = static_cast<double>(out.size()) / static_cast<double>(payload.size());
}
BENCHMARK(BM_DeflateMessage)->ArgsProduct({{200, 16384}, {1, 6, 9}, {4, 8}});

void BM_InflateMessage(benchmark::State& state) {
  const std::string payload = chat_json(static_cast<size_t>(state.range(0)), 1);
  MessageDeflater deflater;
  std::vector<uint8_t> compressed, out;
  deflater.deflate(bytes_of(payload), compressed);
  MessageInflater inflater;
  for (auto _ : state) {
    inflater.inflate(compressed, payload.size(), out);
    benchmark::DoNotOptimize(out.data());
  }
  // Throughput of the inflated (delivered) bytes.
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_InflateMessage)->Arg(200)->Arg(16384);

// One broadcast: the frame compressed once into a new shared buffer (what every deflate
// subscriber then references).
void BM_DeflateBroadcastFrame(benchmark::State& state) {
  const std::string json = chat_json(static_cast<size_t>(state.range(0)), 2);
  PermessageDeflate deflate;
  for (auto _ : state) {
    state.PauseTiming();
    uint8_t header[kMaxFrameHeaderLength];
    const size_t header_length = encode_frame_header(header, Opcode::kText, json.size());
    reactor::SharedBuffer* frame = reactor::SharedBuffer::create(header_length + json.size());
    frame->append(header, header_length);
    frame->append(json.data(), json.size());
    state.ResumeTiming();
    benchmark::DoNotOptimize(deflate.compressed_frame(frame, 0));
    frame->release();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_DeflateBroadcastFrame)->Arg(200)->Arg(16384);

// zalloc that counts bytes, to measure a stream's footprint.
struct AllocationCount {
  size_t bytes = 0;
};

voidpf counting_alloc(voidpf opaque, uInt items, uInt size) {
  static_cast<AllocationCount*>(opaque)->bytes += static_cast<size_t>(items) * size;
  return std::calloc(items, size);
}

void counting_free(voidpf, voidpf address) { std::free(address); }

// A stream whose allocations add up in `count`, and room for its output.
struct CountedStream {
  explicit CountedStream(AllocationCount& count) : out(4096, '\0') {
    count.bytes = 0;
    stream.zalloc = counting_alloc;
    stream.zfree = counting_free;
    stream.opaque = &count;
  }
  void set_io(const uint8_t* input, size_t length) {
    stream.next_in = const_cast<uint8_t*>(input);
    stream.avail_in = static_cast<uInt>(length);
    stream.next_out = reinterpret_cast<Bytef*>(out.data());
    stream.avail_out = static_cast<uInt>(out.size());
  }
  z_stream stream{};
  std::string out;
};

// Bytes zlib allocates for one deflate stream (window_bits, mem_level) after compressing a
// message: what a connection would carry if it kept its own compressor.
void BM_DeflateStreamMemory(benchmark::State& state) {
  const int window_bits = static_cast<int>(state.range(0));
  const int mem_level = static_cast<int>(state.range(1));
  const std::string payload = chat_json(200, 3);
  AllocationCount count;
  for (auto _ : state) {
    CountedStream counted(count);
    deflateInit2(&counted.stream, kDefaultDeflateLevel, Z_DEFLATED, -window_bits, mem_level, Z_DEFAULT_STRATEGY);
    counted.set_io(reinterpret_cast<const uint8_t*>(payload.data()), payload.size());
    deflate(&counted.stream, Z_SYNC_FLUSH);
    deflateEnd(&counted.stream);
  }
  state.counters["bytes"] = static_cast<double>(count.bytes);
}
BENCHMARK(BM_DeflateStreamMemory)->ArgsProduct({{9, 12, 15}, {1, 8, 9}})->Iterations(20);

// The same for an inflate stream (window allocated on the first inflate).
void BM_InflateStreamMemory(benchmark::State& state) {
  const int window_bits = static_cast<int>(state.range(0));
  MessageDeflater deflater(window_bits);
  std::vector<uint8_t> compressed;
  deflater.deflate(bytes_of(chat_json(2000, 4)), compressed);
  compressed.insert(compressed.end(), {0x00, 0x00, 0xff, 0xff});
  AllocationCount count;
  for (auto _ : state) {
    CountedStream counted(count);
    inflateInit2(&counted.stream, -window_bits);
    counted.set_io(compressed.data(), compressed.size());
    inflate(&counted.stream, Z_SYNC_FLUSH);
    inflateEnd(&counted.stream);
  }
  state.counters["bytes"] = static_cast<double>(count.bytes);
}
BENCHMARK(BM_InflateStreamMemory)->Arg(9)->Arg(12)->Arg(15)->Iterations(20);

}  // namespace
}  // namespace protocol
