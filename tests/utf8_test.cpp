#include "protocol/utf8.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace protocol {
namespace {

using Bytes = std::vector<uint8_t>;

// Each chunk is copied into a heap block of exactly its size, so ASan reports any read outside
// [data, data + len) (the SIMD path must not overrun either end).
Utf8State feed(Utf8State state, const uint8_t* data, size_t len) {
  std::unique_ptr<uint8_t[]> exact(new uint8_t[len]);
  std::copy(data, data + len, exact.get());
  return utf8_feed(state, exact.get(), len);
}

Utf8State feed(Utf8State state, const Bytes& bytes) {
  return feed(state, bytes.data(), bytes.size());
}
Utf8State feed_prefix(const Bytes& bytes, size_t n) { return feed(kUtf8Accept, bytes.data(), n); }

enum class Verdict { kValid, kIncomplete, kInvalid };

const char* to_string(Verdict v) {
  switch (v) {
    case Verdict::kValid:
      return "valid";
    case Verdict::kIncomplete:
      return "incomplete";
    case Verdict::kInvalid:
      return "invalid";
  }
  return "?";
}

Verdict verdict(Utf8State state) {
  if (state == kUtf8Accept) return Verdict::kValid;
  if (state == kUtf8Reject) return Verdict::kInvalid;
  return Verdict::kIncomplete;
}

std::string hex(const Bytes& bytes) {
  static const char kDigits[] = "0123456789ABCDEF";
  std::string out;
  for (uint8_t b : bytes) {
    if (!out.empty()) out += ' ';
    out += kDigits[b >> 4];
    out += kDigits[b & 15];
  }
  return out;
}

// Encodes `cp` in exactly `length` bytes with the generic bit layout, whether or not RFC 3629
// allows it (so overlong forms, surrogates and values past U+10FFFF can be built). Lengths 5 and 6
// are the pre-RFC 3629 forms.
Bytes encode(uint32_t cp, int length) {
  if (length == 1) return {static_cast<uint8_t>(cp)};
  static const uint8_t kLeadMark[] = {0, 0, 0xC0, 0xE0, 0xF0, 0xF8, 0xFC};
  Bytes out(length);
  for (int i = length - 1; i > 0; --i) {
    out[i] = static_cast<uint8_t>(0x80 | (cp & 0x3F));
    cp >>= 6;
  }
  out[0] = static_cast<uint8_t>(kLeadMark[length] | cp);
  return out;
}

Bytes encode(uint32_t cp) {
  return encode(cp, cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4);
}

Bytes concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& part : parts) out.insert(out.end(), part.begin(), part.end());
  return out;
}

Bytes ascii(size_t n, char c = 'a') { return Bytes(n, static_cast<uint8_t>(c)); }

// Reference: decodes by value rather than by byte ranges. A sequence cut off by the end of the
// input is incomplete when some continuation bytes would complete it to a scalar value of its own
// length (the values it can still reach form one interval), and invalid otherwise.
Verdict reference(const uint8_t* s, size_t n) {
  static const uint32_t kMinForLength[] = {0, 0, 0x80, 0x800, 0x10000};
  size_t i = 0;
  while (i < n) {
    const uint8_t b = s[i];
    size_t length;
    uint32_t cp;
    if (b < 0x80) {
      ++i;
      continue;
    } else if ((b & 0xE0) == 0xC0) {
      length = 2, cp = b & 0x1F;
    } else if ((b & 0xF0) == 0xE0) {
      length = 3, cp = b & 0x0F;
    } else if ((b & 0xF8) == 0xF0) {
      length = 4, cp = b & 0x07;
    } else {
      return Verdict::kInvalid;
    }
    const size_t have = std::min(length, n - i);
    for (size_t k = 1; k < have; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return Verdict::kInvalid;
      cp = cp << 6 | (s[i + k] & 0x3F);
    }
    uint32_t lo = cp, hi = cp;
    for (size_t k = have; k < length; ++k) {
      lo = lo << 6;
      hi = hi << 6 | 0x3F;
    }
    lo = std::max(lo, kMinForLength[length]);
    hi = std::min<uint32_t>(hi, 0x10FFFF);
    if (lo > hi || (lo >= 0xD800 && hi <= 0xDFFF)) return Verdict::kInvalid;
    if (have < length) return Verdict::kIncomplete;
    i += length;
  }
  return Verdict::kValid;
}

Verdict reference(const Bytes& s) { return reference(s.data(), s.size()); }

// Index of the first byte after which the reference says no continuation can be valid, or
// s.size() when there is none.
size_t reference_first_bad(const Bytes& s) {
  for (size_t n = 1; n <= s.size(); ++n) {
    if (reference(s.data(), n) == Verdict::kInvalid) return n - 1;
  }
  return s.size();
}

// Index of the first byte after which the validator rejects, or s.size() when it never does.
size_t first_reject(const Bytes& s) {
  for (size_t n = 1; n <= s.size(); ++n) {
    if (feed_prefix(s, n) == kUtf8Reject) return n - 1;
  }
  return s.size();
}

// Asserts that `s` is rejected exactly when byte `bad` arrives: the prefix before it is still
// acceptable and the prefix through it is not.
void expect_rejected_at(const Bytes& s, size_t bad) {
  ASSERT_LT(bad, s.size()) << hex(s);
  EXPECT_NE(feed_prefix(s, bad), kUtf8Reject) << hex(s) << " rejected before byte " << bad;
  EXPECT_EQ(feed_prefix(s, bad + 1), kUtf8Reject) << hex(s) << " not rejected at byte " << bad;
  EXPECT_EQ(feed(kUtf8Accept, s), kUtf8Reject) << hex(s);
}

// Asserts that the validator agrees with the reference on `s`, and that the first rejection is at
// the byte the reference says.
void expect_matches_reference(const Bytes& s) {
  const Verdict want = reference(s);
  ASSERT_EQ(to_string(verdict(feed(kUtf8Accept, s))), std::string(to_string(want))) << hex(s);
  if (want == Verdict::kInvalid) expect_rejected_at(s, reference_first_bad(s));
}

TEST(Utf8, EmptyInputKeepsState) {
  EXPECT_EQ(utf8_feed(kUtf8Accept, nullptr, 0), kUtf8Accept);
  EXPECT_EQ(utf8_feed(kUtf8Reject, nullptr, 0), kUtf8Reject);
  const Utf8State mid = feed(kUtf8Accept, Bytes{0xE2, 0x82});
  EXPECT_EQ(utf8_feed(mid, nullptr, 0), mid);
  EXPECT_TRUE(utf8_is_valid(""));
}

TEST(Utf8, RejectIsSticky) {
  EXPECT_EQ(feed(kUtf8Reject, ascii(1)), kUtf8Reject);
  EXPECT_EQ(feed(kUtf8Reject, ascii(100)), kUtf8Reject);
  EXPECT_EQ(feed(kUtf8Reject, encode(0x20AC)), kUtf8Reject);
}

TEST(Utf8, UnknownStateIsRejected) {
  for (int state = 9; state < 256; ++state) {
    EXPECT_EQ(feed(static_cast<Utf8State>(state), ascii(1)), kUtf8Reject) << state;
  }
}

TEST(Utf8, EncoderMatchesRfc3629Examples) {
  // RFC 3629 section 7.
  EXPECT_EQ(concat({encode('A'), encode(0x2262), encode(0x0391), encode('.')}),
            (Bytes{0x41, 0xE2, 0x89, 0xA2, 0xCE, 0x91, 0x2E}));
  EXPECT_EQ(concat({encode(0xD55C), encode(0xAD6D), encode(0xC5B4)}),
            (Bytes{0xED, 0x95, 0x9C, 0xEA, 0xB5, 0xAD, 0xEC, 0x96, 0xB4}));
  EXPECT_EQ(concat({encode(0x65E5), encode(0x672C), encode(0x8A9E)}),
            (Bytes{0xE6, 0x97, 0xA5, 0xE6, 0x9C, 0xAC, 0xE8, 0xAA, 0x9E}));
  EXPECT_EQ(concat({encode(0xFEFF), encode(0x233B4)}),
            (Bytes{0xEF, 0xBB, 0xBF, 0xF0, 0xA3, 0x8E, 0xB4}));
}

TEST(Utf8, Rfc3629ExamplesAreValid) {
  EXPECT_TRUE(utf8_is_valid("\x41\xE2\x89\xA2\xCE\x91\x2E"));
  EXPECT_TRUE(utf8_is_valid("\xED\x95\x9C\xEA\xB5\xAD\xEC\x96\xB4"));
  EXPECT_TRUE(utf8_is_valid("\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E"));
  EXPECT_TRUE(utf8_is_valid("\xEF\xBB\xBF\xF0\xA3\x8E\xB4"));
  EXPECT_TRUE(utf8_is_valid(std::string_view("a\0b", 3)));
  EXPECT_TRUE(
      utf8_is_valid("Hello-\xC2\xB5@\xC3\x9F\xC3\xB6\xC3\xA4\xC3\xBC\xC3\xA0\xC3\xA1-UTF-8!!"));
  EXPECT_FALSE(utf8_is_valid(
      "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5\xED\xA0\x80\x65\x64\x69\x74\x65\x64"));
  EXPECT_FALSE(utf8_is_valid("\xE2\x82"));
}

TEST(Utf8, Boundaries) {
  struct Case {
    uint32_t cp;
    Bytes bytes;
  };
  const Case cases[] = {
      {0x0000, {0x00}},
      {0x007F, {0x7F}},
      {0x0080, {0xC2, 0x80}},
      {0x07FF, {0xDF, 0xBF}},
      {0x0800, {0xE0, 0xA0, 0x80}},
      {0x0FFF, {0xE0, 0xBF, 0xBF}},
      {0x1000, {0xE1, 0x80, 0x80}},
      {0xCFFF, {0xEC, 0xBF, 0xBF}},
      {0xD000, {0xED, 0x80, 0x80}},
      {0xD7FF, {0xED, 0x9F, 0xBF}},
      {0xE000, {0xEE, 0x80, 0x80}},
      {0xFFFD, {0xEF, 0xBF, 0xBD}},
      {0xFFFF, {0xEF, 0xBF, 0xBF}},
      {0x10000, {0xF0, 0x90, 0x80, 0x80}},
      {0x3FFFF, {0xF0, 0xBF, 0xBF, 0xBF}},
      {0x40000, {0xF1, 0x80, 0x80, 0x80}},
      {0xFFFFF, {0xF3, 0xBF, 0xBF, 0xBF}},
      {0x100000, {0xF4, 0x80, 0x80, 0x80}},
      {0x10FFFF, {0xF4, 0x8F, 0xBF, 0xBF}},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(encode(c.cp), c.bytes) << std::hex << c.cp;
    EXPECT_EQ(feed(kUtf8Accept, c.bytes), kUtf8Accept) << hex(c.bytes);
    EXPECT_EQ(feed(kUtf8Accept, concat({ascii(20), c.bytes, ascii(20)})), kUtf8Accept)
        << hex(c.bytes);
  }
}

TEST(Utf8, EveryScalarValueIsValidAloneAndTogether) {
  Bytes all;
  for (uint32_t cp = 0; cp <= 0x10FFFF; ++cp) {
    if (cp == 0xD800) cp = 0xE000;
    const Bytes bytes = encode(cp);
    ASSERT_EQ(feed(kUtf8Accept, bytes), kUtf8Accept) << hex(bytes);
    all.insert(all.end(), bytes.begin(), bytes.end());
  }
  EXPECT_EQ(feed(kUtf8Accept, all), kUtf8Accept);
}

TEST(Utf8, ValidSequencesOfEachLength) {
  const Bytes samples[] = {encode('$'),    encode(0xA3),    encode(0x0418), encode(0x20AC),
                           encode(0xD55C), encode(0x10348), encode(0x1F600)};
  EXPECT_EQ(samples[0].size(), 1u);
  EXPECT_EQ(samples[1].size(), 2u);
  EXPECT_EQ(samples[3].size(), 3u);
  EXPECT_EQ(samples[5].size(), 4u);
  for (const Bytes& a : samples) {
    for (const Bytes& b : samples) {
      EXPECT_EQ(feed(kUtf8Accept, concat({a, b})), kUtf8Accept) << hex(a) << " | " << hex(b);
      EXPECT_EQ(feed(kUtf8Accept, concat({ascii(13), a, b, ascii(17)})), kUtf8Accept);
    }
  }
}

TEST(Utf8, EveryOverlongFormIsRejectedAtItsFirstImpossibleByte) {
  // RFC 3629 section 3: only the shortest form is legal. C0/C1 cannot begin a shortest form at
  // all; E0 and F0 can only with a high enough second byte.
  for (uint32_t cp = 0; cp < 0x80; ++cp) expect_rejected_at(encode(cp, 2), 0);
  for (uint32_t cp = 0; cp < 0x800; ++cp) expect_rejected_at(encode(cp, 3), 1);
  for (uint32_t cp = 0; cp < 0x10000; ++cp) {
    const Bytes bytes = encode(cp, 4);
    ASSERT_NE(feed_prefix(bytes, 1), kUtf8Reject) << hex(bytes);  // F0 alone can still be valid
    ASSERT_EQ(feed_prefix(bytes, 2), kUtf8Reject) << hex(bytes);
  }
  // Five- and six-byte forms (withdrawn by RFC 3629) are rejected at their lead byte.
  for (uint32_t cp : {0x0u, 0x41u, 0x10FFFFu, 0x3FFFFFFu}) {
    expect_rejected_at(encode(cp, 5), 0);
    expect_rejected_at(encode(cp, 6), 0);
  }
}

TEST(Utf8, SurrogatesAreRejectedAtTheSecondByte) {
  // RFC 3629 section 3: U+D800..U+DFFF are not scalar values.
  for (uint32_t cp = 0xD800; cp <= 0xDFFF; ++cp) expect_rejected_at(encode(cp), 1);
  for (uint32_t cp : {0xD800u, 0xDB7Fu, 0xDB80u, 0xDBFFu, 0xDC00u, 0xDFFFu}) {
    expect_rejected_at(concat({ascii(30), encode(cp), ascii(30)}), 31);
  }
  EXPECT_EQ(feed(kUtf8Accept, encode(0xD7FF)), kUtf8Accept);
  EXPECT_EQ(feed(kUtf8Accept, encode(0xE000)), kUtf8Accept);
  // A CESU-8 / Modified UTF-8 surrogate pair (U+10000) is rejected at its second byte.
  expect_rejected_at(Bytes{0xED, 0xA0, 0x80, 0xED, 0xB0, 0x80}, 1);
  // The last byte before ED A0: ED 9F is a legal start.
  EXPECT_NE(feed(kUtf8Accept, Bytes{0xED, 0x9F}), kUtf8Reject);
}

TEST(Utf8, ValuesPastU10FFFFAreRejected) {
  for (uint32_t cp = 0x110000; cp <= 0x1FFFFF; ++cp) {
    const Bytes bytes = encode(cp, 4);
    const size_t bad = bytes[0] == 0xF4 ? 1 : 0;  // F4 90..BF, or a lead F5..F7
    ASSERT_NE(feed_prefix(bytes, bad), kUtf8Reject) << hex(bytes);
    ASSERT_EQ(feed_prefix(bytes, bad + 1), kUtf8Reject) << hex(bytes);
  }
  expect_rejected_at(Bytes{0xF4, 0x90, 0x80, 0x80}, 1);
  expect_rejected_at(Bytes{0xF4, 0xBF, 0xBF, 0xBF}, 1);
  expect_rejected_at(Bytes{0xF5, 0x80, 0x80, 0x80}, 0);
  expect_rejected_at(Bytes{0xF7, 0xBF, 0xBF, 0xBF}, 0);
}

TEST(Utf8, EverySingleByte) {
  for (int b = 0; b < 256; ++b) {
    const Bytes one{static_cast<uint8_t>(b)};
    const Utf8State state = feed(kUtf8Accept, one);
    if (b < 0x80) {
      EXPECT_EQ(state, kUtf8Accept) << b;
    } else if (b < 0xC2 || b > 0xF4) {
      EXPECT_EQ(state, kUtf8Reject) << b;  // continuation, C0/C1, F5..FF
    } else {
      EXPECT_NE(state, kUtf8Accept) << b;
      EXPECT_NE(state, kUtf8Reject) << b;
    }
    EXPECT_EQ(verdict(state), reference(one)) << b;
  }
}

TEST(Utf8, InvalidLeadBytesAreRejectedWherever) {
  for (int b :
       {0x80, 0x8F, 0x90, 0xBF, 0xC0, 0xC1, 0xF5, 0xF6, 0xF7, 0xF8, 0xFB, 0xFC, 0xFE, 0xFF}) {
    const Bytes bad{static_cast<uint8_t>(b)};
    expect_rejected_at(bad, 0);
    expect_rejected_at(concat({ascii(5), bad}), 5);
    expect_rejected_at(concat({encode(0x20AC), bad, ascii(40)}), 3);
    expect_rejected_at(concat({ascii(40), encode(0x1F600), bad, ascii(40)}), 44);
  }
}

TEST(Utf8, WrongContinuationCounts) {
  expect_rejected_at(Bytes{0xC2, 0x80, 0x80}, 2);
  expect_rejected_at(Bytes{0xE2, 0x82, 0xAC, 0x80}, 3);
  expect_rejected_at(Bytes{0xF0, 0x9F, 0x98, 0x80, 0x80}, 4);
  expect_rejected_at(Bytes{0xC2, 0x41}, 1);
  expect_rejected_at(Bytes{0xE2, 0x82, 0x41}, 2);
  expect_rejected_at(Bytes{0xF0, 0x9F, 0x98, 0x41}, 3);
  expect_rejected_at(Bytes{0xC2, 0xC2, 0x80}, 1);
  expect_rejected_at(Bytes{0xE2, 0xE2, 0x82, 0xAC}, 1);
  expect_rejected_at(Bytes{0xF0, 0x9F, 0xF0, 0x9F, 0x98, 0x80}, 2);
  expect_rejected_at(Bytes{0x80, 0x80, 0x80, 0x80}, 0);
}

TEST(Utf8, TruncatedAtEveryByteIsIncompleteUntilTheEnd) {
  std::vector<Bytes> sequences;
  for (uint32_t cp : {0x80u, 0x7FFu, 0x800u, 0xFFFu, 0x1000u, 0xD7FFu, 0xE000u, 0xFFFFu, 0x10000u,
                      0x3FFFFu, 0x40000u, 0xFFFFFu, 0x100000u, 0x10FFFFu}) {
    sequences.push_back(encode(cp));
  }
  for (uint32_t cp = 0x80; cp <= 0x10FFFF; cp += 997) {
    if (cp < 0xD800 || cp > 0xDFFF) sequences.push_back(encode(cp));
  }
  for (const Bytes& seq : sequences) {
    for (const Bytes& before : {Bytes{}, ascii(1), ascii(16), ascii(47), encode(0x4E2D)}) {
      const Bytes s = concat({before, seq});
      for (size_t cut = before.size() + 1; cut < s.size(); ++cut) {
        const Utf8State state = feed_prefix(s, cut);
        ASSERT_NE(state, kUtf8Accept) << hex(s) << " cut " << cut;
        ASSERT_NE(state, kUtf8Reject) << hex(s) << " cut " << cut;
        // The rest completes it; anything else ends it badly.
        ASSERT_EQ(feed(state, s.data() + cut, s.size() - cut), kUtf8Accept) << hex(s);
        ASSERT_EQ(feed(state, ascii(1)), kUtf8Reject) << hex(s);
        ASSERT_EQ(feed(state, encode(0xE9)), kUtf8Reject) << hex(s);
      }
      ASSERT_EQ(feed(kUtf8Accept, s), kUtf8Accept) << hex(s);
    }
  }
}

std::vector<Bytes> split_corpus() {
  std::vector<Bytes> corpus;
  Bytes mixed;
  for (uint32_t cp : {0x48u, 0xE9u, 0x6Cu, 0x4E2Du, 0x1F600u, 0x20u, 0x7FFu, 0x800u, 0xFFFFu,
                      0x10000u, 0x10FFFFu, 0xD7FFu, 0xE000u, 0x41u}) {
    const Bytes b = encode(cp);
    mixed.insert(mixed.end(), b.begin(), b.end());
  }
  corpus.push_back(mixed);
  corpus.push_back(concat({ascii(33), mixed, ascii(21), mixed}));
  corpus.push_back(concat({mixed, mixed, mixed, mixed}));
  corpus.push_back(concat({mixed, Bytes{0xF0, 0x9F}}));                         // truncated
  corpus.push_back(concat({ascii(40), mixed, Bytes{0xE2}}));                    // truncated
  corpus.push_back(concat({mixed, Bytes{0xED, 0xA0, 0x80}, mixed}));            // surrogate
  corpus.push_back(concat({ascii(31), Bytes{0xF4, 0x90, 0x80, 0x80}, mixed}));  // > U+10FFFF
  corpus.push_back(concat({mixed, ascii(17), Bytes{0xE0, 0x80, 0xAF}}));        // overlong
  corpus.push_back(concat({mixed, mixed, Bytes{0x80}, ascii(50)}));  // stray continuation
  corpus.push_back(concat({ascii(64), Bytes{0xC0, 0xAF}, ascii(64)}));
  corpus.push_back(concat({ascii(100), Bytes{0xFF}}));
  return corpus;
}

TEST(Utf8, SplitAtEveryPointGivesTheSameState) {
  for (const Bytes& s : split_corpus()) {
    const Utf8State whole = feed(kUtf8Accept, s);
    EXPECT_EQ(verdict(whole), reference(s)) << hex(s);
    for (size_t cut = 0; cut <= s.size(); ++cut) {
      const Utf8State head = feed(kUtf8Accept, s.data(), cut);
      ASSERT_EQ(feed(head, s.data() + cut, s.size() - cut), whole) << hex(s) << " cut " << cut;
    }
    Utf8State bytewise = kUtf8Accept;
    for (uint8_t b : s) bytewise = feed(bytewise, &b, 1);
    EXPECT_EQ(bytewise, whole) << hex(s);
  }
}

TEST(Utf8, SplitAtEveryPairOfPointsGivesTheSameState) {
  for (const Bytes& s : split_corpus()) {
    if (s.size() > 140) continue;
    const Utf8State whole = feed(kUtf8Accept, s);
    for (size_t a = 0; a <= s.size(); ++a) {
      const Utf8State first = feed(kUtf8Accept, s.data(), a);
      for (size_t b = a; b <= s.size(); ++b) {
        const Utf8State second = feed(first, s.data() + a, b - a);
        ASSERT_EQ(feed(second, s.data() + b, s.size() - b), whole)
            << hex(s) << " cuts " << a << "," << b;
      }
    }
  }
}

TEST(Utf8, FailsFastAtTheFirstImpossibleByte) {
  struct Case {
    Bytes bytes;
    size_t bad;
  };
  const Case cases[] = {
      {{0xF4, 0x90}, 1},
      {{0xED, 0xA0}, 1},
      {{0xE0, 0x80}, 1},
      {{0xE0, 0x9F}, 1},
      {{0xF0, 0x80}, 1},
      {{0xF0, 0x8F}, 1},
      {{0xED, 0xBF, 0xBF}, 1},
      {{0xC0}, 0},
      {{0xC1, 0xBF}, 0},
      {{0xF5}, 0},
      {{0xFF}, 0},
      {{0x80}, 0},
      {{0xE2, 0x82, 0x41}, 2},
      {{0xF0, 0x9F, 0x98, 0x41}, 3},
      {{0xC2, 0x80, 0xBF}, 2},
  };
  for (const Case& c : cases) {
    expect_rejected_at(c.bytes, c.bad);
    // Embedded at every offset of a longer message, so the first rejection comes from the block
    // path as well as from the byte path.
    const Bytes tail = concat({encode(0x4E2D), ascii(20), encode(0xE9)});
    for (size_t offset = 0; offset <= 70; ++offset) {
      for (const Bytes& filler : {ascii(offset), Bytes{}}) {
        Bytes head = filler;
        while (head.size() < offset) {  // mixed filler: 'a', U+00E9, U+4E2D, U+1F600, cut to fit
          const Bytes next =
              encode(std::vector<uint32_t>{'a', 0xE9, 0x4E2D, 0x1F600}[head.size() % 4]);
          if (head.size() + next.size() > offset) {
            head.push_back('b');
          } else {
            head.insert(head.end(), next.begin(), next.end());
          }
        }
        const Bytes s = concat({head, c.bytes, tail});
        expect_rejected_at(s, offset + c.bad);
      }
    }
  }
}

TEST(Utf8, OneBadByteAtEveryOffsetOfAnAsciiRun) {
  const uint8_t bad_bytes[] = {0x80, 0xBF, 0xC0, 0xC1, 0xF5, 0xFF, 0xC2, 0xE0, 0xED, 0xF0, 0xF4};
  for (size_t length = 1; length <= 130; ++length) {
    for (size_t offset = 0; offset <= 64 && offset < length; ++offset) {
      for (uint8_t bad : bad_bytes) {
        Bytes s = ascii(length);
        s[offset] = bad;
        expect_matches_reference(s);
      }
    }
  }
}

TEST(Utf8, MultibyteCharacterAtEveryOffsetOfAnAsciiRun) {
  for (uint32_t cp :
       {0xE9u, 0x7FFu, 0x800u, 0x20ACu, 0xD7FFu, 0xFFFFu, 0x10000u, 0x1F600u, 0x10FFFFu}) {
    const Bytes ch = encode(cp);
    for (size_t length = 1; length <= 100; ++length) {
      for (size_t offset = 0; offset <= 64 && offset < length; ++offset) {
        Bytes s = ascii(length);
        for (size_t k = 0; k < ch.size() && offset + k < length; ++k) s[offset + k] = ch[k];
        const bool whole = offset + ch.size() <= length;
        ASSERT_EQ(verdict(feed(kUtf8Accept, s)), whole ? Verdict::kValid : Verdict::kIncomplete)
            << hex(s);
        ASSERT_EQ(verdict(feed(kUtf8Accept, s)), reference(s)) << hex(s);
      }
    }
  }
}

// A code point cut short by ASCII, after non-ASCII text of every length: whichever path is running
// when the ASCII arrives must not skip it as a plain ASCII run.
TEST(Utf8, CodePointCutShortByAsciiAfterTextOfEveryLength) {
  const Bytes cut_leads[] = {{0xC2}, {0xE2},       {0xE2, 0x82},
                             {0xF0}, {0xF0, 0x9F}, {0xF0, 0x9F, 0x98}};
  Bytes head;
  for (int i = 0; head.size() < 80; ++i) {
    for (const Bytes& lead : cut_leads) {
      for (size_t run : {1, 7, 8, 9, 16, 40}) {
        expect_rejected_at(concat({head, lead, ascii(run)}), head.size() + lead.size());
        expect_rejected_at(concat({ascii(9), head, lead, ascii(run)}),
                           9 + head.size() + lead.size());
      }
    }
    const Bytes ch = encode(std::vector<uint32_t>{0xE9, 0x4E2D, 0x1F600, 0x439}[i % 4]);
    head.insert(head.end(), ch.begin(), ch.end());
  }
}

// Non-ASCII text, so the block path runs on consecutive non-ASCII blocks, with one byte replaced.
TEST(Utf8, OneBadByteAtEveryOffsetOfMixedText) {
  Bytes text;
  for (int i = 0; text.size() < 96; ++i) {
    const Bytes ch =
        encode(std::vector<uint32_t>{0xE9, 0x4E2D, 0x1F600, 'x', 0x439, 0xD55C, 0x10FFFF}[i % 7]);
    text.insert(text.end(), ch.begin(), ch.end());
  }
  for (size_t length : {text.size() - 1, text.size()}) {
    for (size_t offset = 0; offset < length; ++offset) {
      for (uint8_t bad : {0x00, 0x41, 0x80, 0x9F, 0xA0, 0xBF, 0xC0, 0xC2, 0xE0, 0xED, 0xEF, 0xF0,
                          0xF4, 0xF5, 0xFF}) {
        Bytes s(text.begin(), text.begin() + length);
        s[offset] = bad;
        expect_matches_reference(s);
      }
    }
  }
}

// Random strings, mostly well formed with a few random edits, compared prefix by prefix with the
// reference. Seeded, so a failure reproduces.
TEST(Utf8, RandomInputsMatchTheReferenceAtEveryPrefix) {
  std::mt19937_64 rng(20240611);
  auto pick = [&](uint32_t lo, uint32_t hi) {
    return static_cast<uint32_t>(std::uniform_int_distribution<uint64_t>(lo, hi)(rng));
  };
  auto random_scalar = [&]() -> uint32_t {
    switch (pick(0, 5)) {
      case 0:
      case 1:
        return pick(0x20, 0x7E);
      case 2:
        return pick(0x80, 0x7FF);
      case 3: {
        uint32_t cp = pick(0x800, 0xFFFF);
        return cp >= 0xD800 && cp <= 0xDFFF ? cp + 0x800 : cp;
      }
      case 4:
        return pick(0x10000, 0x10FFFF);
      default: {  // near the edges that matter
        static const uint32_t kEdges[] = {0x7F,    0x80,    0x7FF,   0x800,    0xFFF,
                                          0x1000,  0xD7FF,  0xE000,  0xFFFF,   0x10000,
                                          0x3FFFF, 0x40000, 0xFFFFF, 0x100000, 0x10FFFF};
        return kEdges[pick(0, std::size(kEdges) - 1)];
      }
    }
  };
  for (int iteration = 0; iteration < 3000; ++iteration) {
    Bytes s;
    const size_t target = pick(0, iteration % 4 == 0 ? 160 : 48);
    while (s.size() < target) {
      const Bytes ch = encode(random_scalar());
      s.insert(s.end(), ch.begin(), ch.end());
    }
    const int edits = static_cast<int>(pick(0, 3));
    for (int e = 0; e < edits && !s.empty(); ++e) {
      const size_t at = pick(0, s.size() - 1);
      switch (pick(0, 3)) {
        case 0:
          s[at] = static_cast<uint8_t>(pick(0, 255));
          break;
        case 1:
          s[at] = static_cast<uint8_t>(pick(0x80, 0xFF));
          break;
        case 2:
          s.insert(s.begin() + at, static_cast<uint8_t>(pick(0x80, 0xFF)));
          break;
        default:
          s.erase(s.begin() + at);
          break;
      }
    }
    if (iteration % 10 == 0) {  // plain random bytes
      s.resize(pick(0, 40));
      for (uint8_t& b : s) b = static_cast<uint8_t>(pick(0, 255));
    }
    for (size_t n = 0; n <= s.size(); ++n) {
      ASSERT_EQ(to_string(verdict(feed_prefix(s, n))),
                std::string(to_string(reference(s.data(), n))))
          << hex(s) << " prefix " << n;
    }
    ASSERT_EQ(first_reject(s), reference_first_bad(s)) << hex(s);
    // Random chunking gives the same state as feeding it whole.
    const Utf8State whole = feed(kUtf8Accept, s);
    Utf8State chunked = kUtf8Accept;
    for (size_t at = 0; at < s.size();) {
      const size_t n = std::min<size_t>(pick(0, 40), s.size() - at);
      chunked = feed(chunked, s.data() + at, n);
      at += n;
    }
    ASSERT_EQ(chunked, whole) << hex(s);
  }
}

TEST(Utf8, LongMessagesWithOneBadByteFar) {
  Bytes text;
  for (int i = 0; text.size() < 70000; ++i) {
    const Bytes ch =
        encode(std::vector<uint32_t>{'h', 'e', 'l', 'l', 'o', ' ', 0xE9, 0x4E2D, 0x1F600}[i % 9]);
    text.insert(text.end(), ch.begin(), ch.end());
  }
  const Bytes plain = ascii(70000);
  EXPECT_EQ(feed(kUtf8Accept, text), kUtf8Accept);
  EXPECT_EQ(feed(kUtf8Accept, plain), kUtf8Accept);
  for (size_t at : {size_t{4096}, size_t{65535}, size_t{69950}}) {
    for (const Bytes* base : {static_cast<const Bytes*>(&text), &plain}) {
      Bytes s = *base;
      s[at] = 0xFF;
      expect_rejected_at(s, at);
    }
  }
}

TEST(Utf8, StatesFitTheHeaderContract) {
  // Any state other than accept/reject means "inside a code point"; feeding it what completes the
  // code point accepts.
  const Bytes leads[] = {{0xC2}, {0xE0}, {0xE1},       {0xED},       {0xF0},
                         {0xF1}, {0xF4}, {0xF0, 0x90}, {0xE1, 0x80}, {0xF1, 0x80, 0x80}};
  const Bytes completions[] = {{0x80},
                               {0xA0, 0x80},
                               {0x80, 0x80},
                               {0x80, 0x80},
                               {0x90, 0x80, 0x80},
                               {0x80, 0x80, 0x80},
                               {0x80, 0x80, 0x80},
                               {0x80, 0x80},
                               {0x80},
                               {0x80}};
  for (size_t i = 0; i < std::size(leads); ++i) {
    const Utf8State state = feed(kUtf8Accept, leads[i]);
    EXPECT_NE(state, kUtf8Accept);
    EXPECT_NE(state, kUtf8Reject);
    EXPECT_EQ(feed(state, concat({completions[i], ascii(40)})), kUtf8Accept) << hex(leads[i]);
  }
}

}  // namespace
}  // namespace protocol
