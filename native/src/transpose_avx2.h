// The 8×8 dword transpose that turns 8 rows' bytes into "rows as lanes" registers, shared by the legacy-block
// (blocks_avx2.cc) and K-quant (kquants_lanes_avx2.cc) prefill kernels.
#pragma once
#include <immintrin.h>

namespace xv {

// c[j] = dword j of R[0] … R[7]: dword lane i of c[j] is R[i]'s dword j.
__attribute__((target("avx2"), always_inline)) inline void transpose8_epi32(const __m256i* R, __m256i* c) {
  __m256i t[8], u[8];
  for (int i = 0; i < 8; i += 2) t[i] = _mm256_unpacklo_epi32(R[i], R[i + 1]), t[i + 1] = _mm256_unpackhi_epi32(R[i], R[i + 1]);
  for (int g = 0; g < 8; g += 4) {
    u[g] = _mm256_unpacklo_epi64(t[g], t[g + 2]), u[g + 1] = _mm256_unpackhi_epi64(t[g], t[g + 2]);
    u[g + 2] = _mm256_unpacklo_epi64(t[g + 1], t[g + 3]), u[g + 3] = _mm256_unpackhi_epi64(t[g + 1], t[g + 3]);
  }
  for (int j = 0; j < 4; j++) c[j] = _mm256_permute2x128_si256(u[j], u[j + 4], 0x20), c[j + 4] = _mm256_permute2x128_si256(u[j], u[j + 4], 0x31);
}

}  // namespace xv
