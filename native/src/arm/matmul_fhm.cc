// f16 weights times f16 activations with FEAT_FHM (FMLAL / FMLAL2: f16 × f16 products added to f32 lanes, the
// product exact and one rounding per add), for the levels neon_dotprod / neon_i8mm on a CPU that reports FHM
// (Neoverse-V1 / N2 / V2, i.e. Graviton 3 / 4, Apple M1 and later; not Neoverse-N1 / Cortex-A76). dispatch.cc
// rounds x to f16 once per call (f16_fhm_matmul); the weights are used as stored, without matmul_f.cc's f32 row
// buffer.
//
// The only deviation from the f32 spec is that rounding of x, like the int8 paths' activation quantization: each
// token is scaled by a power of two first (its largest |x| into [2^14, 2^15)), so it neither overflows f16 nor
// falls into its subnormals, and the sums are scaled back exactly.
//
// Register tile: R = 4 weight rows × NT ≤ 4 tokens. Per 8 columns R + NT 16-byte loads feed 2 · R · NT FMLAL(2)s
// of 4 products each (the f32 path: per 8 columns 2 · (R + NT) loads, 2 · R · NT FMAs and the row decode). With
// NT ≤ 2 the low and high halves go to separate accumulators, so decode (T = 1) has 8 independent chains.
#include "../kernels.h"
#if XV_ARM
#include <arm_neon.h>

#include "../convert.h"
#include "arm.h"
#define XV_ARM_TARGET 3
#include "target_begin.inc"

namespace xv {
namespace arm {
namespace {

// R rows of w (n columns, in place) × NT tokens of xh (f16 bits, ldx apart, token t scaled by xs[t]) →
// out[t · ldo + i] = row i · token t.
template <int R, int NT>
inline void tile(const uint16_t* w, int64_t n, const uint16_t* xh, int64_t ldx, const float* xs, float* out,
                 int64_t ldo) {
  constexpr int A = NT <= 2 ? 2 : 1;  // accumulators per (row, token): low / high halves apart when few
  float32x4_t acc[R][NT][A];
#pragma GCC unroll 4
  for (int i = 0; i < R; i++)
#pragma GCC unroll 4
    for (int t = 0; t < NT; t++)
#pragma GCC unroll 2
      for (int a = 0; a < A; a++) acc[i][t][a] = vdupq_n_f32(0.f);
  const uint16_t* w0 = w;  // (the row pointers in registers)
  const uint16_t* w1 = w + (R > 1 ? n : 0);
  const uint16_t* w2 = w + (R > 2 ? 2 * n : 0);
  const uint16_t* w3 = w + (R > 3 ? 3 * n : 0);
  int64_t c = 0;
  for (; c + 8 <= n; c += 8) {
    float16x8_t xv[NT], wv[R];
#pragma GCC unroll 4
    for (int t = 0; t < NT; t++) xv[t] = vreinterpretq_f16_u16(vld1q_u16(xh + t * ldx + c));
    const uint16_t* wp[4] = {w0, w1, w2, w3};
#pragma GCC unroll 4
    for (int i = 0; i < R; i++) wv[i] = vreinterpretq_f16_u16(vld1q_u16(wp[i] + c));
#pragma GCC unroll 4
    for (int i = 0; i < R; i++)
#pragma GCC unroll 4
      for (int t = 0; t < NT; t++) {
        acc[i][t][0] = vfmlalq_low_f16(acc[i][t][0], wv[i], xv[t]);            // fmlal: halves 0-3
        acc[i][t][A - 1] = vfmlalq_high_f16(acc[i][t][A - 1], wv[i], xv[t]);  // fmlal2: halves 4-7
      }
  }
  float s[R][NT];
#pragma GCC unroll 4
  for (int i = 0; i < R; i++)
#pragma GCC unroll 4
    for (int t = 0; t < NT; t++) s[i][t] = vaddvq_f32(A == 2 ? vaddq_f32(acc[i][t][0], acc[i][t][A - 1]) : acc[i][t][0]);
  for (; c < n; c++)  // the last cols % 8 columns: the same exact products, in f32
    for (int i = 0; i < R; i++)
      for (int t = 0; t < NT; t++) s[i][t] += f16_to_f32(w[i * n + c]) * f16_to_f32(xh[t * ldx + c]);
  for (int i = 0; i < R; i++)
    for (int t = 0; t < NT; t++) out[t * ldo + i] = s[i][t] * xs[t];
}

// All T tokens for R rows starting at w: 4 tokens at a time, then the last 1 … 3.
template <int R>
inline void rows(const uint16_t* w, int64_t n, const uint16_t* xh, int64_t ldx, const float* xs, float* y,
                 int64_t ldy, int64_t T) {
  int64_t t = 0;
  for (; t + 4 <= T; t += 4) tile<R, 4>(w, n, xh + t * ldx, ldx, xs + t, y + t * ldy, ldy);
  switch (T - t) {
    case 3: tile<R, 3>(w, n, xh + t * ldx, ldx, xs + t, y + t * ldy, ldy); break;
    case 2: tile<R, 2>(w, n, xh + t * ldx, ldx, xs + t, y + t * ldy, ldy); break;
    case 1: tile<R, 1>(w, n, xh + t * ldx, ldx, xs + t, y + t * ldy, ldy); break;
    default: break;
  }
}

}  // namespace

void matmul_rows_f16_fhm(const WView& w, const uint16_t* xh, int64_t ldx, const float* xs, float* y, int64_t ldy,
                         int64_t T, int64_t r0, int64_t r1) {
  const int64_t n = w.cols;
  const uint16_t* p = static_cast<const uint16_t*>(w.data);
  int64_t r = r0;
  for (; r + 4 <= r1; r += 4) rows<4>(p + r * n, n, xh, ldx, xs, y + r, ldy, T);
  for (; r < r1; r++) rows<1>(p + r * n, n, xh, ldx, xs, y + r, ldy, T);
}

}  // namespace arm
}  // namespace xv

#include "target_end.inc"
#endif
