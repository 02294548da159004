#pragma once
// The other end of permessage-deflate for tests, written against zlib directly rather than with
// the server's codec, so that tests do not check the codec against itself. Test support only.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace parley_test {

// Inflates a message payload (RFC 7692 7.2.2: 00 00 ff ff appended here) as a peer with a
// 2^window_bits window (8..15) would; nullopt when zlib rejects it or it exceeds max_output.
std::optional<std::string> peer_inflate(std::string_view compressed, int window_bits,
                                        size_t max_output = 4u << 20);

// Compresses `input` as one message the way another implementation would (zlib raw deflate,
// level 9, sync flush, the 00 00 ff ff tail removed per RFC 7692 7.2.1). Empty on zlib failure.
std::string peer_deflate(std::string_view input, int window_bits = 15);

}  // namespace parley_test
