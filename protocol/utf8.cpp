#include "protocol/utf8.h"

#include <array>
#include <cstring>

// PARLEY_UTF8_PORTABLE forces the word-at-a-time path on SSE2 machines, so tests can cover it.
#if defined(__SSE2__) && !defined(PARLEY_UTF8_PORTABLE)
#include <emmintrin.h>
#define PARLEY_UTF8_SSE2 1
#endif

namespace protocol {
namespace {

// RFC 3629 section 4 (UTF8-octets syntax), split wherever the set of allowed next bytes differs.
enum ByteClass : uint8_t {
  kAscii,   // 00..7F
  kCont80,  // 80..8F
  kCont90,  // 90..9F
  kContA0,  // A0..BF
  kBad,     // C0, C1 (only overlong 2-byte forms), F5..FF (past U+10FFFF)
  kLead2,   // C2..DF
  kLeadE0,  // E0: second byte A0..BF, lower would be overlong
  kLead3,   // E1..EC, EE..EF
  kLeadED,  // ED: second byte 80..9F, higher would be a surrogate U+D800..DFFF
  kLeadF0,  // F0: second byte 90..BF, lower would be overlong
  kLead4,   // F1..F3
  kLeadF4,  // F4: second byte 80..8F, higher would be past U+10FFFF
  kClassCount
};

// DFA states. The numbers are the public Utf8State values: kUtf8Accept and kUtf8Reject are fixed by
// the header; the rest say what the pending code point still needs.
enum DfaState : uint8_t {
  kAccept = kUtf8Accept,
  kReject = kUtf8Reject,
  kNeed1,    // one more 80..BF
  kNeed2,    // two more 80..BF
  kAfterE0,  // A0..BF, then one more
  kAfterED,  // 80..9F, then one more
  kNeed3,    // three more 80..BF
  kAfterF0,  // 90..BF, then two more
  kAfterF4,  // 80..8F, then two more
  kStateCount
};

constexpr ByteClass byte_class(unsigned b) {
  if (b < 0x80) return kAscii;
  if (b < 0x90) return kCont80;
  if (b < 0xA0) return kCont90;
  if (b < 0xC0) return kContA0;
  if (b < 0xC2) return kBad;
  if (b < 0xE0) return kLead2;
  if (b == 0xE0) return kLeadE0;
  if (b == 0xED) return kLeadED;
  if (b < 0xF0) return kLead3;
  if (b == 0xF0) return kLeadF0;
  if (b < 0xF4) return kLead4;
  if (b == 0xF4) return kLeadF4;
  return kBad;
}

// One row per byte: row[b] holds, in the 6-bit field at bit 6*s, the value 6*next(s, b). The
// running state is kept as the shift 6*s, so a step is one load (independent of the state) and one
// shift: the loop-carried dependency is a single shift per byte. Fields above the low six bits are
// left in place; x86 masks 64-bit shift counts to six bits, so the `& 63` costs nothing there.
constexpr int kFieldBits = 6;
static_assert(kStateCount * kFieldBits <= 64);

constexpr std::array<uint64_t, 256> make_rows() {
  // next[state][class]. Every byte that no valid continuation of the input could contain goes to
  // reject at once: RFC 6455 8.1 wants the connection failed as soon as invalid text arrives.
  constexpr uint8_t a = kAccept, r = kReject, n1 = kNeed1, n2 = kNeed2, n3 = kNeed3, e0 = kAfterE0,
                    ed = kAfterED, f0 = kAfterF0, f4 = kAfterF4;
  // clang-format off
  constexpr uint8_t next[kStateCount][kClassCount] = {
      //         Ascii 80  90  A0  Bad Lead2 E0 Lead3 ED  F0  Lead4 F4
      /* a  */ {a,    r,  r,  r,  r,  n1,   e0, n2,   ed, f0, n3,   f4},
      /* r  */ {r,    r,  r,  r,  r,  r,    r,  r,    r,  r,  r,    r},
      /* n1 */ {r,    a,  a,  a,  r,  r,    r,  r,    r,  r,  r,    r},
      /* n2 */ {r,    n1, n1, n1, r,  r,    r,  r,    r,  r,  r,    r},
      /* e0 */ {r,    r,  r,  n1, r,  r,    r,  r,    r,  r,  r,    r},
      /* ed */ {r,    n1, n1, r,  r,  r,    r,  r,    r,  r,  r,    r},
      /* n3 */ {r,    n2, n2, n2, r,  r,    r,  r,    r,  r,  r,    r},
      /* f0 */ {r,    r,  n2, n2, r,  r,    r,  r,    r,  r,  r,    r},
      /* f4 */ {r,    n2, r,  r,  r,  r,    r,  r,    r,  r,  r,    r},
  };
  // clang-format on
  std::array<uint64_t, 256> rows{};
  for (unsigned b = 0; b < 256; ++b) {
    uint64_t row = 0;
    for (unsigned s = 0; s < kStateCount; ++s) {
      const uint64_t to = next[s][byte_class(b)];
      row |= (to * kFieldBits) << (s * kFieldBits);
    }
    rows[b] = row;
  }
  return rows;
}
constexpr std::array<uint64_t, 256> kRows = make_rows();

constexpr uint64_t kAcceptShift = kAccept * kFieldBits;
constexpr uint64_t kRejectShift = kReject * kFieldBits;

inline uint64_t dfa_step(uint64_t shift, uint8_t b) { return kRows[b] >> (shift & 63); }

// Feeds [p, end) from `shift` byte by byte, skipping 8-byte all-ASCII words while on a code point
// boundary. Returns the final shift (low six bits meaningful).
uint64_t scalar_feed(uint64_t shift, const uint8_t* p, const uint8_t* end) {
  constexpr uint64_t kHighBits = 0x8080808080808080ull;
  while (p != end) {
    if ((shift & 63) == kAcceptShift) {
      while (end - p >= 8) {
        uint64_t word;
        std::memcpy(&word, p, sizeof word);
        if (word & kHighBits) break;
        p += 8;
      }
    }
    // Up to 16 bytes before looking for ASCII words again, so short ASCII runs inside text stay in
    // the DFA rather than flipping a branch at every character.
    const uint8_t* stop = end - p > 16 ? p + 16 : end;
    for (; p != stop; ++p) shift = dfa_step(shift, *p);
    if ((shift & 63) == kRejectShift) break;
  }
  return shift & 63;
}

#ifdef PARLEY_UTF8_SSE2

inline __m128i load16(const uint8_t* p) {
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
}
inline __m128i splat(uint8_t b) { return _mm_set1_epi8(static_cast<char>(b)); }
inline bool is_continuation(uint8_t b) { return (b & 0xC0) == 0x80; }

// Lanes (0xFF) where `cur` breaks RFC 3629 given the three bytes before each lane (prev1 is the
// byte just before). Checks every lane's own constraints; a code point still open after lane 15
// is not an error here. SSE2 byte compares are signed, so 80..FF compare as negative numbers.
inline __m128i block_errors(__m128i cur, __m128i prev1, __m128i prev2, __m128i prev3) {
  // A lane must be a continuation byte exactly when one of the three bytes before it is a lead
  // whose sequence reaches it: C0+ one back, E0+ two back, F0+ three back.
  const __m128i reach = _mm_or_si128(
      _mm_or_si128(_mm_subs_epu8(prev1, splat(0xBF)), _mm_subs_epu8(prev2, splat(0xDF))),
      _mm_subs_epu8(prev3, splat(0xEF)));
  const __m128i must_continue = _mm_cmpgt_epi8(reach, _mm_setzero_si128());  // reach < 0x80
  const __m128i is_continuation = _mm_cmplt_epi8(cur, splat(0xC0));          // 80..BF only
  __m128i err = _mm_xor_si128(must_continue, is_continuation);
  // C0, C1 only start overlong forms; F5..FF would encode past U+10FFFF.
  err = _mm_or_si128(err, _mm_cmpeq_epi8(_mm_and_si128(cur, splat(0xFE)), splat(0xC0)));
  err = _mm_or_si128(err, _mm_cmpeq_epi8(_mm_max_epu8(cur, splat(0xF5)), cur));
  // Second-byte ranges of the four special leads (RFC 3629 section 4). A lane here is already a
  // continuation or flagged above, so one signed bound per lead suffices.
  const __m128i e0_low =
      _mm_and_si128(_mm_cmpeq_epi8(prev1, splat(0xE0)), _mm_cmplt_epi8(cur, splat(0xA0)));
  const __m128i ed_high =
      _mm_and_si128(_mm_cmpeq_epi8(prev1, splat(0xED)), _mm_cmpgt_epi8(cur, splat(0x9F)));
  const __m128i f0_low =
      _mm_and_si128(_mm_cmpeq_epi8(prev1, splat(0xF0)), _mm_cmplt_epi8(cur, splat(0x90)));
  const __m128i f4_high =
      _mm_and_si128(_mm_cmpeq_epi8(prev1, splat(0xF4)), _mm_cmpgt_epi8(cur, splat(0x8F)));
  return _mm_or_si128(err,
                      _mm_or_si128(_mm_or_si128(e0_low, ed_high), _mm_or_si128(f0_low, f4_high)));
}

// Errors of the block at `p`, where p is a code point boundary (the state there is accept). The
// bytes before a boundary cannot reach past it, so zeros stand in for them and nothing before p
// is read.
inline __m128i first_block_errors(__m128i cur) {
  return block_errors(cur, _mm_slli_si128(cur, 1), _mm_slli_si128(cur, 2), _mm_slli_si128(cur, 3));
}

// Errors of the block at `p` using the real bytes p[-3..-1]; they must lie in the input and be
// either checked or at/before a boundary.
inline __m128i block_errors_at(const uint8_t* p) {
  return block_errors(load16(p), load16(p - 1), load16(p - 2), load16(p - 3));
}

// Validates from `start`, a code point boundary with at least 16 bytes after it, in 16-byte
// blocks, never reading outside [data, end). Returns the start of the last code point it may have
// left open (the DFA resumes there in the accept state), or nullptr when the input is invalid.
const uint8_t* validate_blocks(const uint8_t* data, const uint8_t* start, const uint8_t* end) {
  const uint8_t* p = start;
  for (;;) {
    // All-ASCII blocks need no other check while p is on a boundary.
    while (end - p >= 64) {
      const __m128i any = _mm_or_si128(_mm_or_si128(load16(p), load16(p + 16)),
                                       _mm_or_si128(load16(p + 32), load16(p + 48)));
      if (_mm_movemask_epi8(any) != 0) break;
      p += 64;
    }
    while (end - p >= 16 && _mm_movemask_epi8(load16(p)) == 0) p += 16;
    if (end - p < 16) break;

    __m128i cur = load16(p);
    if (_mm_movemask_epi8(first_block_errors(cur)) != 0) return nullptr;
    p += 16;
    bool boundary = false;
    while (end - p >= 16) {
      cur = load16(p);
      if (_mm_movemask_epi8(block_errors_at(p)) != 0) return nullptr;
      p += 16;
      // A checked all-ASCII block closes every code point before it: p is a boundary again.
      if (_mm_movemask_epi8(cur) == 0) {
        boundary = true;
        break;
      }
    }
    if (!boundary) break;
  }

  // Fewer than 16 bytes left: check the last 16 bytes of the input instead, overlapping checked
  // ones, when the three bytes before them are input. Those bytes are either checked or precede
  // `start`, a boundary, so they cannot make a checked lane look wrong.
  const uint8_t* last = end - 16;  // >= start
  if (p != end && last - data >= 3) {
    if (_mm_movemask_epi8(block_errors_at(last)) != 0) return nullptr;
    p = end;
  }
  // Every lane before p is checked, so the code point holding p[-1] starts at most three bytes
  // back (a fourth continuation would have been flagged), and the state at its lead is accept.
  const uint8_t* lead = p - 1;
  for (int i = 0; i < 3 && is_continuation(*lead); ++i) --lead;
  return lead;
}

#endif  // PARLEY_UTF8_SSE2

}  // namespace

Utf8State utf8_feed(Utf8State state, const uint8_t* data, size_t len) {
  // A state this validator never produced cannot be trusted to mean "valid so far".
  if (state >= kStateCount) return kUtf8Reject;
  uint64_t shift = state * kFieldBits;
  const uint8_t* p = data;
  const uint8_t* const end = data + len;
#ifdef PARLEY_UTF8_SSE2
  // Finish a code point carried over from the previous chunk so the blocks start on a boundary.
  while (shift > kRejectShift && p != end) shift = dfa_step(shift, *p++) & 63;
  if (shift != kAcceptShift) return static_cast<Utf8State>(shift / kFieldBits);
  if (end - p >= 16) {
    p = validate_blocks(data, p, end);
    if (p == nullptr) return kUtf8Reject;
  }
#endif
  return static_cast<Utf8State>(scalar_feed(shift, p, end) / kFieldBits);
}

bool utf8_is_valid(std::string_view text) {
  return utf8_feed(kUtf8Accept, reinterpret_cast<const uint8_t*>(text.data()), text.size()) ==
         kUtf8Accept;
}

}  // namespace protocol
