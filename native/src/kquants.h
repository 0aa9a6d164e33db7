// K-quant kernels (q2_k … q6_k, ggml's 256-value super-blocks) shared between kquants.cc (quantizer, scalar,
// dispatch) and the ISA files kquants_avx2.cc / kquants_avx512.cc. The public entry points are declared in
// blocks.h's K-quant section; everything here is internal to the family.
//
// Activations are quantized Q8_K-style, one Q8K block per 256 columns: d = amax / 127, q = x · (127 / amax)
// rounded half to even (the CPU's default, as the legacy-block and int4 paths do; a block with amax < 1e-30
// quantizes to zeros, where 127 / amax could overflow to inf), and the sums of q per 16
// columns, which the mins (q2_k, q4_k, q5_k) and the unsigned-offset corrections (q3_k: −4, q6_k: −32) need.
// Every kernel then works in integers within a super-block and converts once per block:
//   Σ_j d·sc_j·(u_j − off)·dx·q_j − dmin·m_j·dx·q_j  =  d·dx·(Σ sc·u·q − off·Σ sc·bsum) − dmin·dx·Σ m·bsum
// with u the stored unsigned weight code (0 … 63).
#pragma once
#include <cstdint>

#include "kernels.h"
#if XV_X86
#include <immintrin.h>
#endif

namespace xv {
namespace kq {

constexpr int QK = 256;

// One token's 256 columns. 320 bytes (a multiple of 64), so consecutive blocks keep qs 64-byte aligned when the
// first one is.
struct Q8K {
  int8_t qs[QK];
  int16_t bsums[QK / 16];
  float d;
  uint8_t pad[28];
};
static_assert(sizeof(Q8K) == 320, "Q8K layout");

// The five types, in format-code order (q2_k = 11 … q6_k = 15).
enum class KType : int { Q2K = 0, Q3K = 1, Q4K = 2, Q5K = 3, Q6K = 4 };
constexpr int BLOCK_BYTES[5] = {84, 110, 144, 176, 210};

// Rows [r0, r1) of W (rows of cols / 256 blocks of type kt, row r at w + r · rowBytes) times T tokens; token t's
// activations are the cols / 256 blocks at x + t · nb.  y[t · ldy + r].
using RowsFn = void (*)(KType kt, const uint8_t* w, int64_t cols, const Q8K* x, float* y, int64_t ldy, int64_t T,
                        int64_t r0, int64_t r1);
void rows_scalar(KType kt, const uint8_t* w, int64_t cols, const Q8K* x, float* y, int64_t ldy, int64_t T,
                 int64_t r0, int64_t r1);
void rows_avx2(KType kt, const uint8_t* w, int64_t cols, const Q8K* x, float* y, int64_t ldy, int64_t T, int64_t r0,
               int64_t r1);
void rows_avx512(KType kt, const uint8_t* w, int64_t cols, const Q8K* x, float* y, int64_t ldy, int64_t T,
                 int64_t r0, int64_t r1);
void rows_vnni(KType kt, const uint8_t* w, int64_t cols, const Q8K* x, float* y, int64_t ldy, int64_t T, int64_t r0,
               int64_t r1);

// K-quant rows [r0, r1) with rows as lanes (kquants_lanes_avx2.cc), whole groups of 8 rows; returns where the rest
// starts (every row below the type's threshold). One Zen 3 core, 4096², lanes / row plan: q4_k / q5_k from
// kLanesMinT tokens (1.02 / 0.93 at T = 4, 1.21 / 1.16 at 5, 1.45 / 1.53 at 128); the 16-value sub-block types, whose
// transpose costs more, from kLanesS16MinT (q6_k 0.90 at 8, 1.05 at 16, 1.25 at 128; q2_k 1.00 / 1.08 / 1.28; q3_k
// 1.00 / 1.11 / 1.31). (blocks.cc chunks rows in multiples of 32 from kIlMinT ≤ kLanesMinT tokens, so the threads'
// chunks hold whole groups of 8.)
int64_t rows_lanes_avx2(KType kt, const uint8_t* w, int64_t cols, const Q8K* x, float* y, int64_t ldy, int64_t T,
                        int64_t r0, int64_t r1);
constexpr int64_t kLanesMinT = 5, kLanesS16MinT = 16;

// x (cols values, cols % 256 == 0) → cols / 256 Q8K blocks. All variants give identical bytes.
void quantize_scalar(const float* x, int64_t cols, Q8K* out);
void quantize_avx2(const float* x, int64_t cols, Q8K* out);
void quantize_avx512(const float* x, int64_t cols, Q8K* out);

// ggml's 12-byte scale/min field of q4_k / q5_k: 8 six-bit scales and 8 six-bit mins, returned as two 8-byte
// words (byte j = scale j / min j). Bytes 0–3 hold scales 0–3 (low 6 bits) and the top 2 bits of scales 4–7;
// bytes 4–7 the same for the mins; bytes 8–11 the low 4 bits of scales 4–7 (low nibble) and mins 4–7 (high).
static inline void unpack_scale_min_k4(const uint8_t* s, uint64_t* sc, uint64_t* mn) {
  uint32_t a, b, c;
  __builtin_memcpy(&a, s, 4);
  __builtin_memcpy(&b, s + 4, 4);
  __builtin_memcpy(&c, s + 8, 4);
  const uint32_t lo6 = 0x3f3f3f3fu, lo4 = 0x0f0f0f0fu, lo2 = 0x03030303u;
  const uint32_t sc03 = a & lo6, mn03 = b & lo6;
  const uint32_t sc47 = (c & lo4) | (((a >> 6) & lo2) << 4);
  const uint32_t mn47 = ((c >> 4) & lo4) | (((b >> 6) & lo2) << 4);
  *sc = uint64_t(sc03) | (uint64_t(sc47) << 32);
  *mn = uint64_t(mn03) | (uint64_t(mn47) << 32);
}

// q3_k's 12-byte field: 16 six-bit scales, biased by 32 (returned as int8, 32 already taken off). Scale i has
// its low 4 bits in byte i % 8 (low nibble for i < 8, high for i ≥ 8) and its top 2 bits in byte 8 + i % 4 at
// bit 2 · (i / 4).
static inline void unpack_scales_q3k(const uint8_t* s, int8_t out[16]) {
  uint32_t a, b, c;
  __builtin_memcpy(&a, s, 4);
  __builtin_memcpy(&b, s + 4, 4);
  __builtin_memcpy(&c, s + 8, 4);
  const uint32_t lo4 = 0x0f0f0f0fu, lo2 = 0x03030303u;
  const uint32_t w[4] = {
      (a & lo4) | ((c & lo2) << 4),              // scales 0–3
      (b & lo4) | (((c >> 2) & lo2) << 4),       // 4–7
      ((a >> 4) & lo4) | (((c >> 4) & lo2) << 4),  // 8–11
      ((b >> 4) & lo4) | (((c >> 6) & lo2) << 4),  // 12–15
  };
  for (int k = 0; k < 4; k++)
    for (int i = 0; i < 4; i++) out[4 * k + i] = static_cast<int8_t>(static_cast<int>((w[k] >> (8 * i)) & 63) - 32);
}

#if XV_X86
// The same two unpackings in SSE registers, for the vector kernels (AVX2 subset, so they inline into the AVX2 and
// the AVX-512 code alike).
#define KQ_SSE __attribute__((target("avx2"), always_inline)) inline

// → bytes 0–7 the scales, 8–15 the mins (as unpack_scale_min_k4). Reads 16 bytes: the field and the 4 after it,
// still inside the block (q4_k / q5_k continue with qh / qs).
KQ_SSE __m128i scale_min_k4_sse(const uint8_t* s) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s));  // dwords a, b, c (, junk)
  const __m128i u = _mm_shuffle_epi32(v, 0x50);                            // a, a, b, b
  const __m128i x = _mm_blend_epi32(u, _mm_shuffle_epi32(v, 0xaa), 0xa);   // a, c, b, c
  const __m128i lo = _mm_and_si128(_mm_srlv_epi32(x, _mm_setr_epi32(0, 0, 0, 4)),
                                   _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f));
  // top 2 bits of a / b's bytes → bits 4–5 of scales / mins 4–7
  const __m128i hi = _mm_and_si128(_mm_srli_epi32(u, 2), _mm_setr_epi32(0, 0x30303030, 0, 0x30303030));
  return _mm_or_si128(lo, hi);
}

// Bits a … a + width of each byte of v moved to bit `to` (mask: `width` ones), the rest zero: one 16-bit shift (a
// byte's own bits stay in its masked field) and an and. The K-quant code unpackers (kquants_avx2.cc,
// kquants_lanes_avx2.cc).
KQ_SSE __m256i field_to(__m256i v, int a, int to, int mask) {
  const __m256i m = _mm256_set1_epi8(static_cast<char>(mask << to));
  if (a <= to) return _mm256_and_si256(_mm256_sll_epi16(v, _mm_cvtsi32_si128(to - a)), m);
  return _mm256_and_si256(_mm256_srl_epi16(v, _mm_cvtsi32_si128(a - to)), m);
}

// → 16 int8 scales of q3_k, bias taken off (as unpack_scales_q3k). Reads exactly the 12 bytes.
KQ_SSE __m128i scales_q3k_sse(const uint8_t* s) {
  const __m128i v = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(s));  // bytes 0–7
  const __m128i m4 = _mm_set1_epi8(15);
  const __m128i lo = _mm_unpacklo_epi64(_mm_and_si128(v, m4), _mm_and_si128(_mm_srli_epi16(v, 4), m4));
  uint32_t c;
  __builtin_memcpy(&c, s + 8, 4);
  const __m128i hi = _mm_and_si128(_mm_srlv_epi32(_mm_set1_epi32(static_cast<int>(c)), _mm_setr_epi32(0, 2, 4, 6)),
                                   _mm_set1_epi8(3));
  return _mm_sub_epi8(_mm_or_si128(lo, _mm_slli_epi16(hi, 4)), _mm_set1_epi8(32));
}
#endif

}  // namespace kq
}  // namespace xv
