// The horizontal sum of 8 floats for the AVX2 kernels: one copy instead of one per kernel file. Needs only AVX, so
// it inlines into any avx2 / fma / f16c target function.
#pragma once
#include <immintrin.h>

namespace xv {

__attribute__((target("avx"), always_inline)) inline float hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

}  // namespace xv
