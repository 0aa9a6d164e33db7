// GGUF Q4_0 blocks → our q4_group (group 32) layout, at load. Q4_0 is exactly q4_group with one f16 scale per 32
// columns (w = (q − 8) · d), but its nibble order differs: a block's byte j holds column j (low nibble) and j + 16
// (high), unsigned with offset 8; ours holds columns 2k and 2k + 1 in byte k, two's complement. (q − 8) as a
// two's-complement nibble is q ^ 8. The TS reference is q4_0ToGroupWeight (src/gguf/weights.ts).
#include <cstdint>

#include "convert.h"
#include "kernels.h"
#if XV_X86
#include <emmintrin.h>
#endif

namespace xv {

namespace {

// One block's 16 qs bytes → our 16 bytes. As 16-bit words, word k of the low nibbles is lo(2k) | lo(2k+1) << 8;
// w | w >> 4 puts lo(2k) | lo(2k+1) << 4 in its low byte, and packus keeps those bytes: 8 ops per block (SSE2).
inline void repack_block(const uint8_t* qs, uint8_t* o) {
#if XV_X86
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i m4 = _mm_set1_epi8(0x0f), ff = _mm_set1_epi16(0x00ff);
  const __m128i lo = _mm_and_si128(v, m4), hi = _mm_and_si128(_mm_srli_epi16(v, 4), m4);
  const __m128i l = _mm_and_si128(_mm_or_si128(lo, _mm_srli_epi16(lo, 4)), ff);
  const __m128i h = _mm_and_si128(_mm_or_si128(hi, _mm_srli_epi16(hi, 4)), ff);
  // q − 8 in two's complement is q ^ 8, per nibble
  _mm_storeu_si128(reinterpret_cast<__m128i*>(o), _mm_xor_si128(_mm_packus_epi16(l, h), _mm_set1_epi8(static_cast<char>(0x88))));
#else
  for (int k = 0; k < 8; k++) {
    const uint8_t a = qs[2 * k], c = qs[2 * k + 1];
    o[k] = static_cast<uint8_t>(((a & 15) ^ 8) | (((c & 15) ^ 8) << 4));    // columns 2k, 2k + 1
    o[8 + k] = static_cast<uint8_t>(((a >> 4) ^ 8) | (((c >> 4) ^ 8) << 4));  // columns 16 + 2k, 16 + 2k + 1
  }
#endif
}

}  // namespace

// Rows [r0, r1) of a [rows, cols] Q4_0 tensor (cols % 32 == 0).
void repack_q4_0_rows(const uint8_t* src, int64_t cols, uint8_t* dst, float* scales, int64_t r0, int64_t r1) {
  const int64_t nb = cols / 32;
  for (int64_t r = r0; r < r1; r++) {
    for (int64_t b = 0; b < nb; b++) {
      const uint8_t* blk = src + (r * nb + b) * 18;
      scales[r * nb + b] = f16_to_f32(static_cast<uint16_t>(blk[0] | (blk[1] << 8)));
      repack_block(blk + 2, dst + (r * nb + b) * 16);
    }
  }
}

}  // namespace xv
