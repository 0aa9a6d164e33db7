// Legacy block kernels (q4_0, q4_1, q5_0, q5_1, q8_0) on AVX2, and the vector activation quantizer.
#include "blocks.h"
#if XV_X86
#include <immintrin.h>

#include <cstring>

#define TAVX2 __attribute__((target("avx2,fma,f16c")))

namespace xv {

// Same f32 operations as the scalar quantizer (amax / 127, x · (127 / amax), round to nearest even), so the
// bytes are identical.
TAVX2 void legacy_quantize_avx2(const float* x, int64_t cols, const LegacyAct& a) {
  const int64_t nb = cols / 32, nbp = (nb + 1) / 2 * 2;
  const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  for (int64_t b = 0; b < nbp; b++) {
    int8_t* q = a.q + 32 * b;
    if (b >= nb) {
      std::memset(q, 0, 32);
      a.d[b] = a.sd[b] = 0.f;
      a.s[b] = 0;
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(a.ls + 8 * b), _mm256_setzero_si256());
      _mm256_storeu_ps(a.dl + 8 * b, _mm256_setzero_ps());
      continue;
    }
    const float* xb = x + 32 * b;
    __m256 v[4];
    __m256 m = _mm256_setzero_ps();
    for (int i = 0; i < 4; i++) {
      v[i] = _mm256_loadu_ps(xb + 8 * i);
      m = _mm256_max_ps(m, _mm256_and_ps(v[i], absmask));
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float amax = _mm_cvtss_f32(m4);
    const float d = amax / 127.f, id = amax > 0 ? 127.f / amax : 0.f;
    const __m256 idv = _mm256_set1_ps(id);
    __m256i qi[4];
    for (int i = 0; i < 4; i++) qi[i] = _mm256_cvtps_epi32(_mm256_mul_ps(v[i], idv));  // MXCSR: nearest even
    // Lane sums of 4 consecutive values: horizontal adds of pairs, twice, then restore lane order.
    const __m256i h01 = _mm256_hadd_epi32(qi[0], qi[1]), h23 = _mm256_hadd_epi32(qi[2], qi[3]);
    const __m256i h = _mm256_hadd_epi32(h01, h23);  // [l0 l2 l4 l6 | l1 l3 l5 l7] in 128-bit halves
    const __m256i ls = _mm256_permutevar8x32_epi32(h, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(a.ls + 8 * b), ls);
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(ls), _mm256_extracti128_si256(ls, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
    const int32_t s = _mm_cvtsi128_si32(s4);
    // int32 → int8: packs keep values (|q| ≤ 127); the packs interleave 128-bit halves, undone by the permute.
    const __m256i p01 = _mm256_packs_epi32(qi[0], qi[1]), p23 = _mm256_packs_epi32(qi[2], qi[3]);
    const __m256i p = _mm256_packs_epi16(p01, p23);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q), _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
    _mm256_storeu_ps(a.dl + 8 * b, _mm256_set1_ps(d));
    a.d[b] = d;
    a.s[b] = s;
    a.sd[b] = d * static_cast<float>(s);
  }
}

BlockRowsFn legacy_rows_avx2(Fmt) { return nullptr; }

}  // namespace xv
#endif
