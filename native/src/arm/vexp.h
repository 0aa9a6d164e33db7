// Vector expf on NEON for SiLU and softmax: exp(x) = 2^n · p(r), n = round(x · log2 e), r = x − n · ln 2 (ln 2 in
// two parts so r stays exact), p a degree-7 polynomial (Cephes' expf coefficients). About 1-2 ulp on [−87, 88].
// Inputs are clamped to [−87.33, 88]: −∞ gives ~1e-38 (not 0) and large inputs ~1.6e38 (not ∞); the 2^n
// factor is built in the exponent bits, which the clamp keeps in range (n ∈ [−126, 127]).
#pragma once
#include <arm_neon.h>

namespace xv {
namespace arm {

static inline float32x4_t vexpq(float32x4_t x) {
  x = vminq_f32(vmaxq_f32(x, vdupq_n_f32(-87.3365478515625f)), vdupq_n_f32(88.0f));
  const float32x4_t n = vrndnq_f32(vmulq_n_f32(x, 1.44269504088896341f));
  float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(0.693359375f));
  r = vfmsq_f32(r, n, vdupq_n_f32(-2.12194440e-4f));
  float32x4_t p = vdupq_n_f32(1.9875691500e-4f);
  p = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), p, r);
  p = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), p, r);
  p = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), p, r);
  p = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), p, r);
  p = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.f)), p, vmulq_f32(r, r));
  const int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
  return vmulq_f32(p, vreinterpretq_f32_s32(e));
}

}  // namespace arm
}  // namespace xv
