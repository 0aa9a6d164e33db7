// int4 matmul for AVX2 machines (no VNNI): the same plan and activation layout as matvec_vnni.cc, with
// vpmaddubsw (u8 × s8 → pairs summed to s16; at most 2 · 15 · 127, no saturation) + vpmaddwd (→ s32) in place of
// vpdpbusd, 32 weight bytes per step. Widening each nibble to f32 instead is ~3x slower on these CPUs.
#include "kernels.h"
#if XV_X86
#include <immintrin.h>

#include "hsum_avx.h"

#include <cstring>

#define TAVX2 __attribute__((target("avx2,fma")))

namespace xv {
namespace {

// Per-lane group scales, walked without a divide in the loop. Lane i of half hf of chunk c covers columns
// 128c + 64hf + 8i … +7. Group sizes (vnni_supports): 8, 16, 32, 64 (powers of two), or a multiple of 128.
struct HalfScales {
  int64_t G, ng;
  int shift = 0;     // log2(G) when G < 128
  __m256i idx, iota;
  TAVX2 void init(int64_t group, int64_t cols) {
    G = group;
    ng = cols / group;
    while (shift < 7 && (int64_t(1) << shift) < G) shift++;
    alignas(32) int32_t ix[8], io[8];
    for (int i = 0; i < 8; i++) {
      ix[i] = G < 128 ? static_cast<int32_t>((8 * i) >> shift) : 0;
      io[i] = i;
    }
    idx = _mm256_load_si256(reinterpret_cast<const __m256i*>(ix));
    iota = _mm256_load_si256(reinterpret_cast<const __m256i*>(io));
  }
  TAVX2 __m256 at(const float* s, int64_t c, int hf) const {
    const int64_t col = c * 128 + 64 * hf;
    if (G >= 128) return _mm256_set1_ps(s[col / G]);
    const int64_t first = col >> shift, per = 64 >> shift;
    // 8 scales from `first` still inside the row: a plain load (the lanes use the first `per` of them); the masked
    // load (~3x the work) only for the row's last few groups, where 8 would run past the row's scales
    if (first + 8 <= ng) return _mm256_permutevar8x32_ps(_mm256_loadu_ps(s + first), idx);
    const int64_t cnt = ng - first < per ? ng - first : per;
    const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int32_t>(cnt)), iota);
    return _mm256_permutevar8x32_ps(_mm256_maskload_ps(s + first, m), idx);
  }
};

template <int TT, bool GROUP>
TAVX2 void row_q4(const WView& w, const QuantX* qx, float* y, int64_t ldy, int64_t r) {
  const int64_t rb = w.cols / 2;
  const uint8_t* base = static_cast<const uint8_t*>(w.data) + r * rb;
  HalfScales hs;
  if (GROUP) hs.init(w.group, w.cols);
  const float* srow = GROUP ? w.scales + r * hs.ng : nullptr;
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x88)), m4 = _mm256_set1_epi8(0x0f);
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[TT];
  for (int t = 0; t < TT; t++) acc[t] = _mm256_setzero_ps();
  alignas(32) uint8_t last[64];
  for (int64_t c = 0; c * 64 < rb; c++) {
    const uint8_t* wb = base + c * 64;
    if (rb - c * 64 < 64) {  // partial last chunk: zero bytes decode to w = 0 against zero-padded x
      std::memset(last, 0, 64);
      std::memcpy(last, wb, rb - c * 64);
      wb = last;
    }
    _mm_prefetch(reinterpret_cast<const char*>(base + c * 64 + kAvx2Prefetch), _MM_HINT_T0);
#pragma GCC unroll 2
    for (int hf = 0; hf < 2; hf++) {
      const __m256i b = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb + 32 * hf)), flip);
      const __m256i lo = _mm256_and_si256(b, m4);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(b, 4), m4);
      const __m256 sw = GROUP ? hs.at(srow, c, hf) : _mm256_set1_ps(1.f);
#pragma GCC unroll 4
      for (int t = 0; t < TT; t++) {
        const int8_t* q = qx[t].q + c * 128 + 32 * hf;
        const __m256i xlo = _mm256_load_si256(reinterpret_cast<const __m256i*>(q));
        const __m256i xhi = _mm256_load_si256(reinterpret_cast<const __m256i*>(q + 64));
        // the two halves' pair sums add in int16 (≤ 2 · 2 · 15 · 127), then one widening vpmaddwd
        const __m256i p = _mm256_madd_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(lo, xlo), _mm256_maddubs_epi16(hi, xhi)), ones);
        const __m256i xs = _mm256_load_si256(reinterpret_cast<const __m256i*>(qx[t].xs + c * 16 + 8 * hf));
        const __m256 dx = _mm256_load_ps(qx[t].dx + c * 16 + 8 * hf);
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(p, xs)), GROUP ? _mm256_mul_ps(dx, sw) : dx, acc[t]);
      }
    }
  }
  const float rs = GROUP ? 1.f : w.scales[r];
  for (int t = 0; t < TT; t++) y[t * ldy + r] = hsum256(acc[t]) * rs;
}

template <int TT>
TAVX2 void row_any(const WView& w, const QuantX* qx, float* y, int64_t ldy, int64_t r) {
  if (w.fmt == Fmt::Q4) return row_q4<TT, false>(w, qx, y, ldy, r);
  return row_q4<TT, true>(w, qx, y, ldy, r);
}

}  // namespace

// One row at a time (a single stream through the weights), up to 4 tokens per pass over it.
TAVX2 void matmul_q4_avx2_rows(const WView& w, const QuantX* qx, float* y, int64_t ldy, int64_t T, int64_t r0,
                               int64_t r1) {
  for (int64_t tb = 0; tb < T; tb += 64) {  // token blocks keep their activations in L2
    const int64_t te = tb + 64 < T ? tb + 64 : T;
    for (int64_t r = r0; r < r1; r++) {
      int64_t t = tb;
      for (; t + 4 <= te; t += 4) row_any<4>(w, qx + t, y + t * ldy, ldy, r);
      for (; t < te; t++) row_any<1>(w, qx + t, y + t * ldy, ldy, r);
    }
  }
}

}  // namespace xv

#endif  // XV_X86
