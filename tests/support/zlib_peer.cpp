#include "tests/support/zlib_peer.h"

#include <zlib.h>

namespace parley_test {
namespace {

constexpr std::string_view kFlushTail("\x00\x00\xff\xff", 4);

}  // namespace

std::optional<std::string> peer_inflate(std::string_view compressed, int window_bits, size_t max_output) {
  z_stream s{};
  if (inflateInit2(&s, -window_bits) != Z_OK) return std::nullopt;
  std::string input(compressed);
  input += kFlushTail;
  std::string out(max_output + 1, '\0');
  s.next_in = reinterpret_cast<Bytef*>(input.data());
  s.avail_in = static_cast<uInt>(input.size());
  s.next_out = reinterpret_cast<Bytef*>(out.data());
  s.avail_out = static_cast<uInt>(out.size());
  const int rc = inflate(&s, Z_SYNC_FLUSH);
  out.resize(out.size() - s.avail_out);
  inflateEnd(&s);
  if ((rc != Z_OK && rc != Z_STREAM_END) || out.size() > max_output) return std::nullopt;
  return out;
}

std::string peer_deflate(std::string_view input, int window_bits) {
  z_stream s{};
  if (deflateInit2(&s, 9, Z_DEFLATED, -window_bits, 9, Z_DEFAULT_STRATEGY) != Z_OK) return {};
  std::string out(deflateBound(&s, input.size()) + 64, '\0');
  s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(input.data()));
  s.avail_in = static_cast<uInt>(input.size());
  s.next_out = reinterpret_cast<Bytef*>(out.data());
  s.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&s, Z_SYNC_FLUSH);
  out.resize(out.size() - s.avail_out);
  deflateEnd(&s);
  if (rc != Z_OK || out.size() < kFlushTail.size() || out.substr(out.size() - 4) != kFlushTail) return {};
  out.resize(out.size() - kFlushTail.size());
  return out;
}

}  // namespace parley_test
