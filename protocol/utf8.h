#pragma once
// Incremental UTF-8 validation (RFC 3629) for text messages, RFC 6455 section 8.1.
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace protocol {

// Validator state between chunks. One byte, so a connection can carry it across fragments.
using Utf8State = uint8_t;
// The input so far is valid and ends on a code point boundary.
inline constexpr Utf8State kUtf8Accept = 0;
// The input so far contains an invalid sequence; the state never leaves kUtf8Reject.
inline constexpr Utf8State kUtf8Reject = 1;

// Feeds `len` bytes after `state`; returns the new state. Rejects at the first byte that makes the
// input invalid (overlong forms, surrogates, code points past U+10FFFF), so callers can fail fast.
// Any other value than kUtf8Accept/kUtf8Reject means "valid so far, inside a code point".
Utf8State utf8_feed(Utf8State state, const uint8_t* data, size_t len);

// True when `text` is complete, valid UTF-8.
bool utf8_is_valid(std::string_view text);

}  // namespace protocol
