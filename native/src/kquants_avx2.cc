// K-quants on AVX2 (CPUs without AVX-512): the plan of kquants_avx512.inc in 256-bit registers. A super-block
// is 8 chunks of 32 columns; each chunk's codes unpack to 32 unsigned bytes in column order, vpmaddubsw with the
// Q8K activations gives 16 s16 pair sums (no saturation: ≤ 2 · 63 · 127), vpmaddwd multiplies them by their
// sub-block scale and adds neighbours into int32 lanes. The scale register is one vpshufb per chunk of a table the
// block's scales are widened into once (int16; q4_k / q5_k's 8 in both 128-bit lanes, the 16-value types' even
// scales in the low lane and odd ones in the high lane, which hold values 0-15 / 16-31 of a chunk): every pair lane
// picks its chunk's slot. (A vpshufb of the int8 scales into each word's high byte and a vpsraw to sign-extend cost
// one more op per chunk: decode 4-11 % slower on one Zen 3 core, q4_k 18.6 → 16.7 GB/s.)
#include "kquants.h"
#if XV_X86
#include <immintrin.h>

#include "hsum_avx.h"

#define TAVX2 __attribute__((target("avx2,fma,f16c")))
#define INL inline __attribute__((always_inline))

namespace xv {
namespace kq {
namespace {

TAVX2 INL float f16(const uint8_t* p) { return _cvtsh_ss(static_cast<unsigned short>(p[0] | (p[1] << 8))); }
TAVX2 INL __m256i ld(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
TAVX2 INL __m256i bits(__m256i v, int shift, int mask) {
  return _mm256_and_si256(_mm256_srl_epi16(v, _mm_cvtsi32_si128(shift)), _mm256_set1_epi8(static_cast<char>(mask)));
}

// 16 int8 scales of 16-value sub-blocks → the table: even scales (int16) in the low lane, odd ones in the high.
TAVX2 INL __m256i table16(__m128i s) {
  return _mm256_cvtepi8_epi16(_mm_shuffle_epi8(s, _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15)));
}
// 8 unsigned scales of 32-value sub-blocks (bytes 0-7 of s) → the table: int16, in both lanes.
TAVX2 INL __m256i table32(__m128i s) { return _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(s)); }

// Per block: the int16 scale table (see the header), the 16 int16 `side` values multiplied with the bsums (mins, or
// the scales for the offset types), d, dmin.
struct Prep {
  __m256i table, side;
  float d, dmin;
};

struct Q2K {
  static constexpr int bytes = 84, offset_shift = -1;
  TAVX2 static INL Prep prep(const uint8_t* q) {
    const __m128i s = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q)), m4 = _mm_set1_epi8(15);
    return {table16(_mm_and_si128(s, m4)), _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(s, 4), m4)),
            f16(q + 80), f16(q + 82)};
  }
  // chunk c = columns 32c … 32c+31: bits 2(c % 4) of qs[32(c / 4) …]
  TAVX2 static INL __m256i chunk(const uint8_t* q, int c) { return bits(ld(q + 16 + 32 * (c / 4)), 2 * (c % 4), 3); }
};

struct Q3K {
  static constexpr int bytes = 110, offset_shift = 2;
  TAVX2 static INL Prep prep(const uint8_t* q) {
    const __m128i s = scales_q3k_sse(q + 96);
    return {table16(s), _mm256_cvtepi8_epi16(s), f16(q + 108), 0.f};
  }
  TAVX2 static INL __m256i chunk(const uint8_t* q, int c) {
    const int n = c / 4, j = c % 4;
    return _mm256_or_si256(bits(ld(q + 32 + 32 * n), 2 * j, 3), field_to(ld(q), 4 * n + j, 2, 1));
  }
};

template <bool Q5>
struct Q45K {
  static constexpr int bytes = Q5 ? 176 : 144, offset_shift = -1;
  TAVX2 static INL Prep prep(const uint8_t* q) {
    const __m128i s = scale_min_k4_sse(q + 4);
    return {table32(s), _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(s, s)), f16(q), f16(q + 2)};
  }
  // chunk c: nibble c % 2 of qs[32(c / 2) …] (q5_k: plus bit c of qh as the fifth bit)
  TAVX2 static INL __m256i chunk(const uint8_t* q, int c) {
    const __m256i lo = bits(ld(q + (Q5 ? 48 : 16) + 32 * (c / 2)), 4 * (c % 2), 15);
    if (!Q5) return lo;
    return _mm256_or_si256(lo, field_to(ld(q + 16), c, 4, 1));
  }
};

struct Q6K {
  static constexpr int bytes = 210, offset_shift = 5;
  TAVX2 static INL Prep prep(const uint8_t* q) {
    const __m128i s = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + 192));
    return {table16(s), _mm256_cvtepi8_epi16(s), f16(q + 208), 0.f};
  }
  // chunk c: half n = c / 4, k = c % 4: nibble k / 2 of ql[64n + 32(k % 2) …], bits 2k of qh[32n …]
  TAVX2 static INL __m256i chunk(const uint8_t* q, int c) {
    const int n = c / 4, k = c % 4;
    const __m256i lo = bits(ld(q + 64 * n + 32 * (k % 2)), 4 * (k / 2), 15);
    return _mm256_or_si256(lo, field_to(ld(q + 128 + 32 * n), 2 * k, 4, 3));
  }
};

// vpshufb indices for chunk c's scale: slot c of the table (its bytes 2c, 2c + 1) in every pair lane.
TAVX2 INL __m256i scale_idx(int c) { return _mm256_set1_epi16(static_cast<short>((2 * c + 1) << 8 | 2 * c)); }

// The row kernel prefetches every line of the block kAvx2Prefetch bytes ahead: at T = 1 one Zen 3 core streamed
// q4_k at ~14.7 GB/s and q6_k at ~18.5 GB/s from DRAM (2 KB ahead), against ~10.5 for both with one prefetch per
// block 8 blocks ahead (a block spans 2.25-3.3 lines, so that left lines to the hardware prefetcher).
constexpr int64_t kPf = kAvx2Prefetch;

// One row × TT tokens. Per super-block each token's integer sum stays in int32 lanes; it and the side term (mins:
// − dmin · dx · Σ m · bsum; offsets: in the integers) go into one f32 accumulator per token.
template <class K, int TT>
TAVX2 INL void row(const uint8_t* w, int64_t nb, const Q8K* const* x, float* out) {
  __m256 acc[TT];
  for (int t = 0; t < TT; t++) acc[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; b++) {
    const uint8_t* q = w + b * K::bytes;
#pragma GCC unroll 4
    for (int o = 0; o < K::bytes; o += 64) _mm_prefetch(reinterpret_cast<const char*>(q + kPf + o), _MM_HINT_T0);
    const Prep p = K::prep(q);
    __m256i ai[TT];
    for (int t = 0; t < TT; t++) ai[t] = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int c = 0; c < 8; c++) {
      const __m256i wq = K::chunk(q, c);
      const __m256i sc = _mm256_shuffle_epi8(p.table, scale_idx(c));
      for (int t = 0; t < TT; t++) {
        const __m256i pr = _mm256_maddubs_epi16(wq, ld(reinterpret_cast<const uint8_t*>(x[t][b].qs + 32 * c)));
        ai[t] = _mm256_add_epi32(ai[t], _mm256_madd_epi16(pr, sc));
        // keeps the sum a running one: otherwise GCC reassociates it into a tree and spills the 32 products
        __asm__("" : "+x"(ai[t]));
      }
    }
    for (int t = 0; t < TT; t++) {
      const Q8K& xb = x[t][b];
      const __m256i side = _mm256_madd_epi16(p.side, ld(reinterpret_cast<const uint8_t*>(xb.bsums)));
      if (K::offset_shift >= 0) ai[t] = _mm256_sub_epi32(ai[t], _mm256_slli_epi32(side, K::offset_shift));
      else acc[t] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(side), _mm256_set1_ps(p.dmin * xb.d), acc[t]);
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ai[t]), _mm256_set1_ps(p.d * xb.d), acc[t]);
    }
  }
  for (int t = 0; t < TT; t++) out[t] = hsum256(acc[t]);
}

// Tokens per row pass: each chunk of weights is unpacked once for all of them. 8 int32 accumulators, the chunk, its
// scales and one token's product fit the 16 ymm registers (the f32 accumulators change once per super-block and
// may live in memory); 8 rather than 4 tokens: +10-20 % (Zen 3), the unpacking being a third of the work at 4.
constexpr int kTT = 8;

// Rows in blocks of 32 (their weights, ≤ 32 · 210 · cols / 256 bytes, stay in L2); per block every group of kTT
// tokens in turn over its rows, so the group's activations (kTT · 320 bytes per 256 columns) stay in L1 / L2
// while the rows stream.
template <class K, int TT>
TAVX2 INL void group(const uint8_t* w, int64_t nb, const Q8K* x, float* y, int64_t ldy, int64_t t, int64_t rb,
                     int64_t re) {
  const Q8K* xs[TT];
  for (int i = 0; i < TT; i++) xs[i] = x + (t + i) * nb;
  for (int64_t r = rb; r < re; r++) {
    float o[TT];
    row<K, TT>(w + r * nb * K::bytes, nb, xs, o);
    for (int i = 0; i < TT; i++) y[(t + i) * ldy + r] = o[i];
  }
}

template <class K>
TAVX2 void rows_k(const uint8_t* w, int64_t cols, const Q8K* x, float* y, int64_t ldy, int64_t T, int64_t r0,
                  int64_t r1) {
  const int64_t nb = cols / QK;
  constexpr int64_t kRowBlock = 32;
  for (int64_t rb = r0; rb < r1; rb += kRowBlock) {
    const int64_t re = rb + kRowBlock < r1 ? rb + kRowBlock : r1;
    int64_t t = 0;
    for (; t + kTT <= T; t += kTT) group<K, kTT>(w, nb, x, y, ldy, t, rb, re);
    if (t + 4 <= T) group<K, 4>(w, nb, x, y, ldy, t, rb, re), t += 4;
    if (t + 2 <= T) group<K, 2>(w, nb, x, y, ldy, t, rb, re), t += 2;
    if (t < T) group<K, 1>(w, nb, x, y, ldy, t, rb, re);
  }
}

}  // namespace

void rows_avx2(KType kt, const uint8_t* w, int64_t cols, const Q8K* x, float* y, int64_t ldy, int64_t T, int64_t r0,
               int64_t r1) {
  if (T >= kLanesMinT) r0 = rows_lanes_avx2(kt, w, cols, x, y, ldy, T, r0, r1);
  switch (kt) {
    case KType::Q2K: return rows_k<Q2K>(w, cols, x, y, ldy, T, r0, r1);
    case KType::Q3K: return rows_k<Q3K>(w, cols, x, y, ldy, T, r0, r1);
    case KType::Q4K: return rows_k<Q45K<false>>(w, cols, x, y, ldy, T, r0, r1);
    case KType::Q5K: return rows_k<Q45K<true>>(w, cols, x, y, ldy, T, r0, r1);
    case KType::Q6K: return rows_k<Q6K>(w, cols, x, y, ldy, T, r0, r1);
  }
}

// Same arithmetic as quantize_scalar (vcvtps2dq rounds half to even like nearbyint).
TAVX2 void quantize_avx2(const float* x, int64_t cols, Q8K* out) {
  const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  for (int64_t b = 0; b < cols / QK; b++) {
    const float* v = x + b * QK;
    __m256 mx = _mm256_setzero_ps();
    for (int i = 0; i < QK; i += 8) mx = _mm256_max_ps(mx, _mm256_and_ps(_mm256_loadu_ps(v + i), absmask));
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    const float amax = _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
    const __m256 id = _mm256_set1_ps(amax >= 1e-30f ? 127.f / amax : 0.f);
    Q8K& o = out[b];
    o.d = amax / 127.f;
    for (int g = 0; g < QK / 16; g++) {
      const __m256i q0 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(v + 16 * g), id));
      const __m256i q1 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(v + 16 * g + 8), id));
      // packs interleaves the 128-bit lanes: put the 64-bit pieces back in column order before the byte pack
      const __m256i w16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(q0, q1), 0xd8);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(o.qs + 16 * g),
                       _mm_packs_epi16(_mm256_castsi256_si128(w16), _mm256_extracti128_si256(w16, 1)));
      const __m256i s = _mm256_add_epi32(q0, q1);
      __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
      h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
      h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1));
      o.bsums[g] = static_cast<int16_t>(_mm_cvtsi128_si32(h));
    }
  }
}

}  // namespace kq
}  // namespace xv
#endif  // XV_X86
