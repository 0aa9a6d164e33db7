// AVX-512 matmul for every format, f32 accumulation. Compiled with a per-function target attribute so the same
// binary runs on CPUs without AVX-512 (the dispatcher never calls in there).
//
// Plan: a register tile of R weight rows × TT tokens (4 × 4 → 16 zmm accumulators). Each 16-wide weight slice
// is decoded to f32 once and used for TT tokens; each x slice is used for R rows. T = 1 (decode) runs 4 × 1:
// four weight streams in flight, x stays in L1. Tails (cols % 16) use masked loads, so no scalar loop.
#include "kernels.h"
#if XV_X86
#include <immintrin.h>

#include <type_traits>

#include "kernels.h"

#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")))
#define INL inline __attribute__((always_inline))

namespace xv {
namespace {

struct LF32 {
  const float* p;
  int64_t cols;
  T512 INL __m512 load(int64_t r, int64_t k) const { return _mm512_loadu_ps(p + r * cols + k); }
  T512 INL __m512 tail(int64_t r, int64_t k, __mmask16 m) const { return _mm512_maskz_loadu_ps(m, p + r * cols + k); }
  INL float rscale(int64_t) const { return 1.f; }
};

struct LBF16 {
  const uint16_t* p;
  int64_t cols;
  T512 INL static __m512 cvt(__m256i h) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
  T512 INL __m512 load(int64_t r, int64_t k) const {
    return cvt(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + r * cols + k)));
  }
  T512 INL __m512 tail(int64_t r, int64_t k, __mmask16 m) const { return cvt(_mm256_maskz_loadu_epi16(m, p + r * cols + k)); }
  INL float rscale(int64_t) const { return 1.f; }
};

struct LF16 {
  const uint16_t* p;
  int64_t cols;
  T512 INL __m512 load(int64_t r, int64_t k) const {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + r * cols + k)));
  }
  T512 INL __m512 tail(int64_t r, int64_t k, __mmask16 m) const {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p + r * cols + k));
  }
  INL float rscale(int64_t) const { return 1.f; }
};

// q8: the row scale is applied once to the finished dot product.
struct LQ8 {
  const int8_t* p;
  int64_t cols;
  const float* scales;
  T512 INL __m512 load(int64_t r, int64_t k) const {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + r * cols + k))));
  }
  T512 INL __m512 tail(int64_t r, int64_t k, __mmask16 m) const {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, p + r * cols + k)));
  }
  INL float rscale(int64_t r) const { return scales[r]; }
};

// 8 packed bytes → 16 signed int4 values in column order (low nibble first) as f32.
T512 INL __m512 unpack_q4(__m128i b) {
  const __m128i m4 = _mm_set1_epi8(0x0f), eight = _mm_set1_epi8(8);
  __m128i lo = _mm_and_si128(b, m4);
  __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), m4);
  __m128i v = _mm_unpacklo_epi8(lo, hi);
  v = _mm_sub_epi8(_mm_xor_si128(v, eight), eight);  // sign-extend the nibbles
  return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(v));
}

// q4 (row scale) and q4g (group scale; the group is a multiple of 16, so a 16-slice sits in one group).
template <bool GROUP>
struct LQ4 {
  const uint8_t* p;
  int64_t cols;
  const float* scales;
  int64_t group;
  int gshift;  // log2(group) when group is a power of two (the usual 32/64/128), else -1: no divide per slice
  INL int64_t gidx(int64_t i) const { return gshift >= 0 ? i >> gshift : i / group; }
  T512 INL __m512 gs(__m512 v, int64_t r, int64_t k) const {
    if (!GROUP) return v;
    return _mm512_mul_ps(v, _mm512_set1_ps(scales[gidx(r * cols + k)]));
  }
  T512 INL __m512 load(int64_t r, int64_t k) const {
    return gs(unpack_q4(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + (r * cols + k) / 2))), r, k);
  }
  T512 INL __m512 tail(int64_t r, int64_t k, __mmask16 m) const {
    // m covers an even number of columns (cols is even): take half as many bytes.
    const int cnt = __builtin_popcount(m) / 2;
    const __mmask16 bm = static_cast<__mmask16>((1u << cnt) - 1);
    return gs(unpack_q4(_mm_maskz_loadu_epi8(bm, p + (r * cols + k) / 2)), r, k);
  }
  INL float rscale(int64_t r) const { return GROUP ? 1.f : scales[r]; }
};

template <int R, int TT, class L>
T512 void tile(const L& ld, int64_t r, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t cols) {
  __m512 acc[R][TT];
#pragma GCC unroll 4
  for (int i = 0; i < R; i++)
#pragma GCC unroll 4
    for (int t = 0; t < TT; t++) acc[i][t] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= cols; k += 16) {
    __m512 xv[TT];
#pragma GCC unroll 4
    for (int t = 0; t < TT; t++) xv[t] = _mm512_loadu_ps(x + t * ldx + k);
#pragma GCC unroll 4
    for (int i = 0; i < R; i++) {
      const __m512 wv = ld.load(r + i, k);
#pragma GCC unroll 4
      for (int t = 0; t < TT; t++) acc[i][t] = _mm512_fmadd_ps(wv, xv[t], acc[i][t]);
    }
  }
  if (k < cols) {
    const __mmask16 m = static_cast<__mmask16>((1u << (cols - k)) - 1);
    __m512 xv[TT];
#pragma GCC unroll 4
    for (int t = 0; t < TT; t++) xv[t] = _mm512_maskz_loadu_ps(m, x + t * ldx + k);
#pragma GCC unroll 4
    for (int i = 0; i < R; i++) {
      const __m512 wv = ld.tail(r + i, k, m);
#pragma GCC unroll 4
      for (int t = 0; t < TT; t++) acc[i][t] = _mm512_fmadd_ps(wv, xv[t], acc[i][t]);
    }
  }
#pragma GCC unroll 4
  for (int i = 0; i < R; i++) {
    const float s = ld.rscale(r + i);
#pragma GCC unroll 4
    for (int t = 0; t < TT; t++) y[t * ldy + r + i] = _mm512_reduce_add_ps(acc[i][t]) * s;
  }
}

template <int R, class L>
T512 void tile_t(const L& ld, int64_t r, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t cols, int tt) {
  switch (tt) {
    case 4: return tile<R, 4>(ld, r, x, ldx, y, ldy, cols);
    case 3: return tile<R, 3>(ld, r, x, ldx, y, ldy, cols);
    case 2: return tile<R, 2>(ld, r, x, ldx, y, ldy, cols);
    default: return tile<R, 1>(ld, r, x, ldx, y, ldy, cols);
  }
}

// Decode: one row at a time is a single linear stream (best for the hardware prefetcher), with four accumulators
// so the FMA latency does not cap a row at 16 floats per 4 cycles.
template <class L>
T512 float row_dot(const L& ld, int64_t r, const float* x, int64_t cols) {
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  int64_t k = 0;
  for (; k + 64 <= cols; k += 64) {
    a0 = _mm512_fmadd_ps(ld.load(r, k), _mm512_loadu_ps(x + k), a0);
    a1 = _mm512_fmadd_ps(ld.load(r, k + 16), _mm512_loadu_ps(x + k + 16), a1);
    a2 = _mm512_fmadd_ps(ld.load(r, k + 32), _mm512_loadu_ps(x + k + 32), a2);
    a3 = _mm512_fmadd_ps(ld.load(r, k + 48), _mm512_loadu_ps(x + k + 48), a3);
  }
  for (; k + 16 <= cols; k += 16) a0 = _mm512_fmadd_ps(ld.load(r, k), _mm512_loadu_ps(x + k), a0);
  if (k < cols) {
    const __mmask16 m = static_cast<__mmask16>((1u << (cols - k)) - 1);
    a1 = _mm512_fmadd_ps(ld.tail(r, k, m), _mm512_maskz_loadu_ps(m, x + k), a1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3))) * ld.rscale(r);
}

// Token blocks of 64 outermost keep that slice of x (≤ 64 × cols f32) in L2 while the rows of this chunk pass.
constexpr int64_t kTokenBlock = 64;

template <class L>
T512 void drive(const L& ld, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t T, int64_t r0, int64_t r1,
                int64_t cols) {
  // f32 rows (16 KB at 4096 columns) measured faster through the 4-row tile: 20 vs 16 GB/s; narrower formats
  // the other way round (bf16 21 vs 18, int8 18 vs 15), A/B in one process on the dev machine.
  if (T == 1 && !std::is_same<L, LF32>::value) {
    for (int64_t r = r0; r < r1; r++) y[r] = row_dot(ld, r, x, cols);
    return;
  }
  for (int64_t tb = 0; tb < T; tb += kTokenBlock) {
    const int64_t te = tb + kTokenBlock < T ? tb + kTokenBlock : T;
    for (int64_t r = r0; r < r1; r += 4) {
      const int64_t R = r1 - r < 4 ? r1 - r : 4;
      for (int64_t t = tb; t < te; t += 4) {
        const int tt = static_cast<int>(te - t < 4 ? te - t : 4);
        const float* xt = x + t * ldx;
        float* yt = y + t * ldy;
        switch (R) {
          case 4: tile_t<4>(ld, r, xt, ldx, yt, ldy, cols, tt); break;
          case 3: tile_t<3>(ld, r, xt, ldx, yt, ldy, cols, tt); break;
          case 2: tile_t<2>(ld, r, xt, ldx, yt, ldy, cols, tt); break;
          default: tile_t<1>(ld, r, xt, ldx, yt, ldy, cols, tt); break;
        }
      }
    }
  }
}

}  // namespace

static int log2_exact(int64_t g) {
  for (int s = 0; s < 62; s++)
    if ((int64_t(1) << s) == g) return s;
  return -1;
}

bool avx512_supports(const WView& w) { return w.fmt != Fmt::Q4G || w.group % 16 == 0; }

T512 void matmul_rows_avx512(const WView& w, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t T,
                             int64_t r0, int64_t r1) {
  const int64_t c = w.cols;
  switch (w.fmt) {
    case Fmt::F32: return drive(LF32{static_cast<const float*>(w.data), c}, x, ldx, y, ldy, T, r0, r1, c);
    case Fmt::BF16: return drive(LBF16{static_cast<const uint16_t*>(w.data), c}, x, ldx, y, ldy, T, r0, r1, c);
    case Fmt::F16: return drive(LF16{static_cast<const uint16_t*>(w.data), c}, x, ldx, y, ldy, T, r0, r1, c);
    case Fmt::Q8: return drive(LQ8{static_cast<const int8_t*>(w.data), c, w.scales}, x, ldx, y, ldy, T, r0, r1, c);
    case Fmt::Q4:
      return drive(LQ4<false>{static_cast<const uint8_t*>(w.data), c, w.scales, 0, 0}, x, ldx, y, ldy, T, r0, r1, c);
    case Fmt::Q4G:
      return drive(LQ4<true>{static_cast<const uint8_t*>(w.data), c, w.scales, w.group, log2_exact(w.group)}, x, ldx, y, ldy, T, r0, r1, c);
    default: return;  // block formats never come here (blocks.h)
  }
}

}  // namespace xv

#endif  // XV_X86
