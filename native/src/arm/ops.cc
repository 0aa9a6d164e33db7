// The small O(T · dim) kernels on NEON: RMSNorm, RoPE, SiLU·mul, add. Same contracts as ops.cc; the reference's
// accumulation order is kept where it sets the error (RMSNorm's sum of squares stays in double).
#include <cmath>

#include "arm.h"
#if XV_ARM
#include "vexp.h"
#endif

namespace xv {
namespace arm {

#if XV_ARM
void rmsnorm(float* y, const float* x, const float* w, int64_t T, int64_t dim, float eps) {
  for (int64_t t = 0; t < T; t++) {
    const float* xr = x + t * dim;
    float* yr = y + t * dim;
    float64x2_t s0 = vdupq_n_f64(0), s1 = s0;  // double, as the reference: f32 loses bits over 5k squares
    int64_t i = 0;
    for (; i + 4 <= dim; i += 4) {
      const float32x4_t v = vld1q_f32(xr + i);
      const float64x2_t lo = vcvt_f64_f32(vget_low_f32(v)), hi = vcvt_high_f64_f32(v);
      s0 = vfmaq_f64(s0, lo, lo), s1 = vfmaq_f64(s1, hi, hi);
    }
    double ss = vaddvq_f64(vaddq_f64(s0, s1));
    for (; i < dim; i++) ss += static_cast<double>(xr[i]) * xr[i];
    const float inv = static_cast<float>(1.0 / std::sqrt(ss / dim + eps));
    i = 0;
    for (; i + 4 <= dim; i += 4)  // (x · inv) · w, the reference's order
      vst1q_f32(yr + i, vmulq_f32(vmulq_n_f32(vld1q_f32(xr + i), inv), vld1q_f32(w + i)));
    for (; i < dim; i++) yr[i] = xr[i] * inv * w[i];
  }
}

void rope(float* x, int64_t T, int64_t nHeads, int64_t headDim, const float* cos, const float* sin) {
  const int64_t half = headDim / 2;
  for (int64_t t = 0; t < T; t++) {
    const float* c = cos + t * half;
    const float* s = sin + t * half;
    for (int64_t h = 0; h < nHeads; h++) {
      float* a = x + (t * nHeads + h) * headDim;
      float* b = a + half;
      int64_t i = 0;
      for (; i + 4 <= half; i += 4) {
        const float32x4_t ai = vld1q_f32(a + i), bi = vld1q_f32(b + i), ci = vld1q_f32(c + i), si = vld1q_f32(s + i);
        vst1q_f32(a + i, vfmsq_f32(vmulq_f32(ai, ci), bi, si));
        vst1q_f32(b + i, vfmaq_f32(vmulq_f32(bi, ci), ai, si));
      }
      for (; i < half; i++) {
        const float ai = a[i], bi = b[i];
        a[i] = ai * c[i] - bi * s[i];
        b[i] = bi * c[i] + ai * s[i];
      }
    }
  }
}

void silu_mul(float* gate, const float* up, int64_t begin, int64_t end) {
  int64_t i = begin;
  const float32x4_t one = vdupq_n_f32(1.f);
  for (; i + 4 <= end; i += 4) {
    const float32x4_t g = vld1q_f32(gate + i);
    const float32x4_t s = vdivq_f32(g, vaddq_f32(one, vexpq(vnegq_f32(g))));
    vst1q_f32(gate + i, vmulq_f32(s, vld1q_f32(up + i)));
  }
  for (; i < end; i++) {
    const float g = gate[i];
    gate[i] = g / (1.f + std::exp(-g)) * up[i];
  }
}

void add_in_place(float* y, const float* x, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vaddq_f32(vld1q_f32(y + i), vld1q_f32(x + i)));
  for (; i < n; i++) y[i] += x[i];
}
#else
void rmsnorm(float* y, const float* x, const float* w, int64_t T, int64_t dim, float eps) { xv::rmsnorm(y, x, w, T, dim, eps); }
void rope(float* x, int64_t T, int64_t nHeads, int64_t headDim, const float* cos, const float* sin) {
  xv::rope(x, T, nHeads, headDim, cos, sin);
}
void silu_mul(float* gate, const float* up, int64_t begin, int64_t end) { xv::silu_mul(gate, up, begin, end, Isa::Scalar); }
void add_in_place(float* y, const float* x, int64_t n) { xv::add_in_place(y, x, n); }
#endif

}  // namespace arm
}  // namespace xv
