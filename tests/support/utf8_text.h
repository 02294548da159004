#pragma once
// Test text for UTF-8 paths: code points of every length, so that cuts at arbitrary bytes fall
// inside them. Test support only.
#include <cstddef>
#include <string>

namespace parley_test {

// Text of `size` bytes with 1-, 2-, 3- and 4-byte code points throughout (padded with '.').
inline std::string mixed_text(size_t size) {
  static const std::string kUnit = "ab \xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 xyz";
  std::string text;
  while (text.size() + kUnit.size() <= size) text += kUnit;
  text.append(size - text.size(), '.');
  return text;
}

}  // namespace parley_test
