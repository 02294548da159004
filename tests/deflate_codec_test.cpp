#include "protocol/deflate_codec.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <optional>
#include <random>
#include <string>
#include <vector>

#include "tests/support/zlib_peer.h"

namespace protocol {
namespace {

std::span<const uint8_t> bytes_of(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

std::string text_of(const std::vector<uint8_t>& v) { return std::string(v.begin(), v.end()); }

std::string chat_like(size_t size, unsigned seed) {
  static const char* const kWords[] = {"hello", "room", "parley", "message", "the", "quick", "fox", "ok",
                                       "{\"type\":\"msg\"", "\"text\":", "lunch?", "see you"};
  std::mt19937 rng(seed);
  std::string s;
  while (s.size() < size) {
    s += kWords[rng() % 12];
    s += ' ';
  }
  s.resize(size);
  return s;
}

std::string random_bytes(size_t size, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(size, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

using parley_test::peer_deflate;

// Inflates with a peer's window (as a client holding us to server_max_window_bits would).
bool peer_inflate(const std::vector<uint8_t>& compressed, int window_bits, std::string& out) {
  std::optional<std::string> inflated =
      parley_test::peer_inflate(std::string_view(reinterpret_cast<const char*>(compressed.data()), compressed.size()),
                                window_bits);
  if (!inflated) return false;
  out = std::move(*inflated);
  return true;
}

TEST(DeflateCodec, RoundTripsManySizesAndKinds) {
  MessageDeflater deflater;
  MessageInflater inflater;
  std::vector<uint8_t> compressed, inflated;
  for (size_t size : {0u, 1u, 16u, 64u, 200u, 1000u, 16384u, 131072u, 1000000u}) {
    for (int kind = 0; kind < 3; ++kind) {
      const std::string input = kind == 0 ? chat_like(size, 1) : kind == 1 ? random_bytes(size, 2) : std::string(size, 'a');
      ASSERT_TRUE(deflater.deflate(bytes_of(input), compressed)) << size;
      ASSERT_EQ(inflater.inflate(compressed, size, inflated), InflateResult::kOk) << size << " kind " << kind;
      EXPECT_EQ(text_of(inflated), input) << size << " kind " << kind;
      if (kind == 2 && size >= 1000) {
        EXPECT_LT(compressed.size(), size / 50);
      }
    }
  }
}

TEST(DeflateCodec, EveryMessageStandsAlone) {
  // No context takeover: each compressed message inflates with a fresh stream, in any order.
  MessageDeflater deflater;
  std::vector<std::vector<uint8_t>> messages;
  std::vector<uint8_t> compressed;
  for (unsigned i = 0; i < 5; ++i) {
    ASSERT_TRUE(deflater.deflate(bytes_of(chat_like(3000, 7)), compressed));
    messages.push_back(compressed);
  }
  for (const auto& m : messages) EXPECT_EQ(m, messages[0]);  // same input, same bytes: no history
  std::string out;
  ASSERT_TRUE(peer_inflate(messages[3], 15, out));
  EXPECT_EQ(out, chat_like(3000, 7));
}

TEST(DeflateCodec, InflatesForeignStreamsOfEveryWindow) {
  MessageInflater inflater;
  std::vector<uint8_t> out;
  for (int bits = 9; bits <= 15; ++bits) {
    const std::string input = chat_like(70000, static_cast<unsigned>(bits));
    const std::string compressed = peer_deflate(input, bits);
    ASSERT_EQ(inflater.inflate(bytes_of(compressed), input.size(), out), InflateResult::kOk) << bits;
    EXPECT_EQ(text_of(out), input);
  }
}

TEST(DeflateCodec, DeflaterStaysWithinTheNegotiatedWindow) {
  // A peer that asked for server_max_window_bits=N inflates with a 2^N window; distances past it
  // would fail there. 8 is served with zlib's 9-bit window (matches reach at most 250 back).
  const std::string input = chat_like(200000, 3) + random_bytes(3000, 4) + chat_like(50000, 3);
  std::vector<uint8_t> compressed;
  for (int bits = 8; bits <= 15; ++bits) {
    MessageDeflater deflater(bits);
    ASSERT_TRUE(deflater.deflate(bytes_of(input), compressed)) << bits;
    std::string out;
    ASSERT_TRUE(peer_inflate(compressed, bits, out)) << bits;
    EXPECT_EQ(out, input) << bits;
  }
}

TEST(DeflateCodec, ZipBombStopsAtTheLimit) {
  // 16 MiB of zeros compress to ~16 KiB; with a 64 KiB limit the inflater must stop early.
  const std::string zeros(16u << 20, '\0');
  const std::string bomb = peer_deflate(zeros, 15);
  ASSERT_LT(bomb.size(), 20000u);
  MessageInflater inflater;
  std::vector<uint8_t> out;
  EXPECT_EQ(inflater.inflate(bytes_of(bomb), 65536, out), InflateResult::kTooBig);
  EXPECT_LE(out.capacity(), 4u * 65536);  // never allocated anywhere near 16 MiB
  // Exactly at the limit is fine; one byte less is not.
  const std::string exact(5000, 'x');
  const std::string c = peer_deflate(exact, 15);
  EXPECT_EQ(inflater.inflate(bytes_of(c), 5000, out), InflateResult::kOk);
  EXPECT_EQ(out.size(), 5000u);
  EXPECT_EQ(inflater.inflate(bytes_of(c), 4999, out), InflateResult::kTooBig);
  EXPECT_EQ(inflater.inflate(bytes_of(c), 0, out), InflateResult::kTooBig);
}

TEST(DeflateCodec, InvalidDataIsReported) {
  MessageInflater inflater;
  std::vector<uint8_t> out;
  // 0xff: BTYPE 11 is reserved (RFC 1951 3.2.3).
  const std::string reserved_block = "\xff\xff\xff";
  EXPECT_EQ(inflater.inflate(bytes_of(reserved_block), 1000, out), InflateResult::kInvalidData);
  // A stored block whose NLEN is not the complement of LEN.
  const std::string bad_stored("\x00\x05\x00\x00\x00", 5);
  EXPECT_EQ(inflater.inflate(bytes_of(bad_stored), 1000, out), InflateResult::kInvalidData);
  // A final block followed by more data.
  z_stream s{};
  ASSERT_EQ(deflateInit2(&s, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string hello = "hello", final_block(64, '\0');
  s.next_in = reinterpret_cast<Bytef*>(hello.data());
  s.avail_in = 5;
  s.next_out = reinterpret_cast<Bytef*>(final_block.data());
  s.avail_out = 64;
  ASSERT_EQ(deflate(&s, Z_FINISH), Z_STREAM_END);
  final_block.resize(64 - s.avail_out);
  deflateEnd(&s);
  ASSERT_EQ(inflater.inflate(bytes_of(final_block), 100, out), InflateResult::kOk);  // BFINAL is allowed
  EXPECT_EQ(text_of(out), "hello");
  EXPECT_EQ(inflater.inflate(bytes_of(final_block + "junk"), 100, out), InflateResult::kInvalidData);
  // The inflater recovers for the next message.
  const std::string ok = peer_deflate("fine", 15);
  EXPECT_EQ(inflater.inflate(bytes_of(ok), 100, out), InflateResult::kOk);
  EXPECT_EQ(text_of(out), "fine");
}

TEST(DeflateCodec, EmptyMessage) {
  // RFC 7692 7.2.3.6: an empty message may be sent as a single 0x00 (an empty stored block's
  // first byte once the tail is removed) and inflates to nothing.
  MessageInflater inflater;
  std::vector<uint8_t> out{1, 2, 3};
  const uint8_t empty_block[] = {0x00};
  EXPECT_EQ(inflater.inflate(empty_block, 10, out), InflateResult::kOk);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(inflater.inflate({}, 10, out), InflateResult::kOk);
  EXPECT_TRUE(out.empty());
}

}  // namespace
}  // namespace protocol
