#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <string>

#include "protocol/utf8.h"

namespace {

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | cp >> 6);
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | cp >> 12);
    out += static_cast<char>(0x80 | (cp >> 6 & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | cp >> 18);
    out += static_cast<char>(0x80 | (cp >> 12 & 0x3F));
    out += static_cast<char>(0x80 | (cp >> 6 & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

enum class Text { kAscii, kMixed, kCjk };

// Chat-like text of exactly `size` bytes (padded with ASCII at the end). kMixed: 30% of the
// characters are multibyte, drawn at random so branch predictors get no help: 15% Latin-1 accents
// (2 bytes), 10% CJK (3), 5% emoji (4); about half of the bytes are non-ASCII.
std::string make_text(Text kind, size_t size) {
  static const uint32_t kAccents[] = {0xE9, 0xE8, 0xE0, 0xFC, 0xF1, 0xE7, 0xF6, 0xC9, 0xDF, 0xE2};
  std::mt19937 rng(12345);
  std::string out;
  while (out.size() < size) {
    const unsigned roll = rng() % 100;
    uint32_t cp;
    if (kind == Text::kCjk) {
      cp = 0x4E00 + rng() % 0x5200;
    } else if (kind == Text::kAscii || roll < 70) {
      cp = rng() % 6 == 0 ? ' ' : 'a' + rng() % 26;
    } else if (roll < 85) {
      cp = kAccents[rng() % 10];
    } else if (roll < 95) {
      cp = 0x4E00 + rng() % 0x5200;
    } else {
      cp = 0x1F300 + rng() % 0x350;
    }
    std::string ch;
    append_utf8(ch, cp);
    if (out.size() + ch.size() > size) break;
    out += ch;
  }
  out.resize(size, 'z');
  return out;
}

void run(benchmark::State& state, Text kind) {
  const std::string text = make_text(kind, static_cast<size_t>(state.range(0)));
  if (!protocol::utf8_is_valid(text)) {
    state.SkipWithError("benchmark input is not valid UTF-8");
    return;
  }
  const auto* data = reinterpret_cast<const uint8_t*>(text.data());
  for (auto _ : state) {
    benchmark::DoNotOptimize(data);
    protocol::Utf8State result = protocol::utf8_feed(protocol::kUtf8Accept, data, text.size());
    benchmark::DoNotOptimize(result);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(text.size()));
}

void BM_Utf8Ascii(benchmark::State& state) { run(state, Text::kAscii); }
void BM_Utf8Mixed(benchmark::State& state) { run(state, Text::kMixed); }
void BM_Utf8Cjk(benchmark::State& state) { run(state, Text::kCjk); }

BENCHMARK(BM_Utf8Ascii)->Arg(32)->Arg(1 << 10)->Arg(64 << 10);
BENCHMARK(BM_Utf8Mixed)->Arg(32)->Arg(1 << 10)->Arg(64 << 10);
BENCHMARK(BM_Utf8Cjk)->Arg(1 << 10)->Arg(64 << 10);

// A 64 KiB mixed message arriving in 1400-byte reads (about one TCP segment each), the state
// carried between them as the frame reader does.
void BM_Utf8MixedInSegments(benchmark::State& state) {
  const std::string text = make_text(Text::kMixed, 64 << 10);
  const auto* data = reinterpret_cast<const uint8_t*>(text.data());
  constexpr size_t kSegment = 1400;
  for (auto _ : state) {
    protocol::Utf8State s = protocol::kUtf8Accept;
    for (size_t at = 0; at < text.size(); at += kSegment) {
      const size_t n = text.size() - at < kSegment ? text.size() - at : kSegment;
      s = protocol::utf8_feed(s, data + at, n);
    }
    benchmark::DoNotOptimize(s);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(text.size()));
}
BENCHMARK(BM_Utf8MixedInSegments);

}  // namespace
