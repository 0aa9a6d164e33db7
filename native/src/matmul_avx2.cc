// AVX2 + FMA matmul for CPUs without AVX-512: the same register-tile plan as matmul_avx512.cc at 8 lanes, with a
// 4 × 2 tile (16 ymm registers), and the cols % 8 tail done in scalar code.
#include "kernels.h"
#if XV_X86
#include <immintrin.h>

#include "hsum_avx.h"

#include <cstring>

#include "convert.h"
#include "kernels.h"

#define TAVX2 __attribute__((target("avx2,fma,f16c")))
#define INL inline __attribute__((always_inline))

namespace xv {
namespace {

struct LF32 {
  const float* p;
  int64_t cols;
  TAVX2 INL __m256 load(int64_t r, int64_t k) const { return _mm256_loadu_ps(p + r * cols + k); }
  INL float rscale(int64_t) const { return 1.f; }
};

struct LBF16 {
  const uint16_t* p;
  int64_t cols;
  TAVX2 INL __m256 load(int64_t r, int64_t k) const {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + r * cols + k));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
  INL float rscale(int64_t) const { return 1.f; }
};

struct LF16 {
  const uint16_t* p;
  int64_t cols;
  TAVX2 INL __m256 load(int64_t r, int64_t k) const {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + r * cols + k)));
  }
  INL float rscale(int64_t) const { return 1.f; }
};

struct LQ8 {
  const int8_t* p;
  int64_t cols;
  const float* scales;
  TAVX2 INL __m256 load(int64_t r, int64_t k) const {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + r * cols + k))));
  }
  INL float rscale(int64_t r) const { return scales[r]; }
};

template <bool GROUP>
struct LQ4 {
  const uint8_t* p;
  int64_t cols;
  const float* scales;
  int64_t group;
  int gshift;  // log2(group) when group is a power of two (the usual 32/64/128), else -1: no divide per slice
  INL int64_t gidx(int64_t i) const { return gshift >= 0 ? i >> gshift : i / group; }
  TAVX2 INL __m256 load(int64_t r, int64_t k) const {
    int32_t four;
    std::memcpy(&four, p + (r * cols + k) / 2, 4);
    const __m128i b = _mm_cvtsi32_si128(four);
    const __m128i m4 = _mm_set1_epi8(0x0f), eight = _mm_set1_epi8(8);
    __m128i v = _mm_unpacklo_epi8(_mm_and_si128(b, m4), _mm_and_si128(_mm_srli_epi16(b, 4), m4));
    v = _mm_sub_epi8(_mm_xor_si128(v, eight), eight);
    __m256 f = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v));
    if (GROUP) f = _mm256_mul_ps(f, _mm256_set1_ps(scales[gidx(r * cols + k)]));
    return f;
  }
  INL float rscale(int64_t r) const { return GROUP ? 1.f : scales[r]; }
};


template <int R, int TT, class L>
TAVX2 void tile(const L& ld, const WView& w, int64_t r, const float* x, int64_t ldx, float* y, int64_t ldy) {
  const int64_t cols = w.cols, main = cols & ~int64_t(7);
  __m256 acc[R][TT];
#pragma GCC unroll 4
  for (int i = 0; i < R; i++)
#pragma GCC unroll 4
    for (int t = 0; t < TT; t++) acc[i][t] = _mm256_setzero_ps();
  for (int64_t k = 0; k < main; k += 8) {
    __m256 xv[TT];
#pragma GCC unroll 4
    for (int t = 0; t < TT; t++) xv[t] = _mm256_loadu_ps(x + t * ldx + k);
#pragma GCC unroll 4
    for (int i = 0; i < R; i++) {
      const __m256 wv = ld.load(r + i, k);
#pragma GCC unroll 4
      for (int t = 0; t < TT; t++) acc[i][t] = _mm256_fmadd_ps(wv, xv[t], acc[i][t]);
    }
  }
  for (int i = 0; i < R; i++) {
    const float s = ld.rscale(r + i);
    for (int t = 0; t < TT; t++) {
      float tail = 0;  // weight_at already includes the scale
      for (int64_t k = main; k < cols; k++) tail += x[t * ldx + k] * weight_at(w, r + i, k);
      y[t * ldy + r + i] = hsum256(acc[i][t]) * s + tail;
    }
  }
}

// Decode: one row at a time (a single linear stream), four accumulators to cover the FMA latency.
template <class L>
TAVX2 float row_dot(const L& ld, const WView& w, int64_t r, const float* x) {
  const int64_t cols = w.cols, main = cols & ~int64_t(7);
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  int64_t k = 0;
  for (; k + 32 <= main; k += 32) {
    a0 = _mm256_fmadd_ps(ld.load(r, k), _mm256_loadu_ps(x + k), a0);
    a1 = _mm256_fmadd_ps(ld.load(r, k + 8), _mm256_loadu_ps(x + k + 8), a1);
    a2 = _mm256_fmadd_ps(ld.load(r, k + 16), _mm256_loadu_ps(x + k + 16), a2);
    a3 = _mm256_fmadd_ps(ld.load(r, k + 24), _mm256_loadu_ps(x + k + 24), a3);
  }
  for (; k < main; k += 8) a0 = _mm256_fmadd_ps(ld.load(r, k), _mm256_loadu_ps(x + k), a0);
  float tail = 0;  // weight_at already includes the scale
  for (k = main; k < cols; k++) tail += x[k] * weight_at(w, r, k);
  return hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3))) * ld.rscale(r) + tail;
}

constexpr int64_t kTokenBlock = 64;

template <class L>
TAVX2 void drive(const L& ld, const WView& w, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t T,
                 int64_t r0, int64_t r1) {
  if (T == 1) {
    for (int64_t r = r0; r < r1; r++) y[r] = row_dot(ld, w, r, x);
    return;
  }
  for (int64_t tb = 0; tb < T; tb += kTokenBlock) {
    const int64_t te = tb + kTokenBlock < T ? tb + kTokenBlock : T;
    for (int64_t r = r0; r < r1; r += 4) {
      const int64_t R = r1 - r < 4 ? r1 - r : 4;
      for (int64_t t = tb; t < te; t += 2) {
        const bool two = te - t >= 2;
        const float* xt = x + t * ldx;
        float* yt = y + t * ldy;
        switch (R * 2 + (two ? 1 : 0)) {
          case 9: tile<4, 2>(ld, w, r, xt, ldx, yt, ldy); break;
          case 8: tile<4, 1>(ld, w, r, xt, ldx, yt, ldy); break;
          case 7: tile<3, 2>(ld, w, r, xt, ldx, yt, ldy); break;
          case 6: tile<3, 1>(ld, w, r, xt, ldx, yt, ldy); break;
          case 5: tile<2, 2>(ld, w, r, xt, ldx, yt, ldy); break;
          case 4: tile<2, 1>(ld, w, r, xt, ldx, yt, ldy); break;
          case 3: tile<1, 2>(ld, w, r, xt, ldx, yt, ldy); break;
          default: tile<1, 1>(ld, w, r, xt, ldx, yt, ldy); break;
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

bool avx2_supports(const WView& w) { return w.fmt != Fmt::Q4G || w.group % 8 == 0; }

TAVX2 void matmul_rows_avx2(const WView& w, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t T,
                            int64_t r0, int64_t r1) {
  const int64_t c = w.cols;
  switch (w.fmt) {
    case Fmt::F32: return drive(LF32{static_cast<const float*>(w.data), c}, w, x, ldx, y, ldy, T, r0, r1);
    case Fmt::BF16: return drive(LBF16{static_cast<const uint16_t*>(w.data), c}, w, x, ldx, y, ldy, T, r0, r1);
    case Fmt::F16: return drive(LF16{static_cast<const uint16_t*>(w.data), c}, w, x, ldx, y, ldy, T, r0, r1);
    case Fmt::Q8: return drive(LQ8{static_cast<const int8_t*>(w.data), c, w.scales}, w, x, ldx, y, ldy, T, r0, r1);
    case Fmt::Q4:
      return drive(LQ4<false>{static_cast<const uint8_t*>(w.data), c, w.scales, 0, 0}, w, x, ldx, y, ldy, T, r0, r1);
    case Fmt::Q4G:
      return drive(LQ4<true>{static_cast<const uint8_t*>(w.data), c, w.scales, w.group, log2_exact(w.group)}, w, x, ldx, y, ldy, T, r0,
                   r1);
    default: return;  // block formats never come here (blocks.h)
  }
}

}  // namespace xv

#endif  // XV_X86
