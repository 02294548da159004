// libFuzzer target for the permessage-deflate codec (protocol/deflate_codec.h). The input is
// inflated as a compressed message under a 64 KiB limit (no crash, never more output than the
// limit), and compressed then inflated again (must round-trip exactly).
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "protocol/deflate_codec.h"

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

constexpr uint64_t kLimit = 64 * 1024;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  static protocol::MessageInflater inflater;
  static protocol::MessageDeflater wide(15), narrow(9);
  protocol::MessageDeflater& deflater = size % 2 == 0 ? wide : narrow;
  std::vector<uint8_t> out;
  const std::span<const uint8_t> input(bytes, size);
  const protocol::InflateResult r = inflater.inflate(input, kLimit, out);
  if (r == protocol::InflateResult::kOk) require(out.size() <= kLimit);

  std::vector<uint8_t> compressed;
  require(deflater.deflate(input, compressed));
  require(inflater.inflate(compressed, size, out) == protocol::InflateResult::kOk);
  require(out.size() == size && (size == 0 || std::equal(out.begin(), out.end(), bytes)));
  return 0;
}
