// Activation quantizers on NEON for the block kernels: the same bytes as the scalar ones (blocks.cc's legacy
// quantizer, kquants.cc's Q8K), because the f32 operations are the same — d = amax / 127, q = x · (127 / amax)
// rounded to nearest even (fcvtns), zeros for a block with amax < 1e-30 — only done 4 lanes at a time. maxnm
// ignores NaNs as std::max / std::fmax do there.
#include "../kquants.h"
#include "arm.h"
#if XV_ARM
#include <arm_neon.h>
#endif

namespace xv {
namespace arm {

#if XV_ARM
namespace {

// 16 values of x times id, rounded half to even, as int8 (|q| ≤ 127), and their sum added to *sum.
inline int8x16_t q16(const float* x, float id, int32x4_t* sum) {
  int32x4_t q[4];
  for (int k = 0; k < 4; k++) q[k] = vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + 4 * k), id));
  *sum = vaddq_s32(*sum, vaddq_s32(vaddq_s32(q[0], q[1]), vaddq_s32(q[2], q[3])));
  const int16x8_t a = vcombine_s16(vmovn_s32(q[0]), vmovn_s32(q[1])), b = vcombine_s16(vmovn_s32(q[2]), vmovn_s32(q[3]));
  return vcombine_s8(vmovn_s16(a), vmovn_s16(b));
}

inline float absmax(const float* x, int n) {
  float32x4_t m = vdupq_n_f32(0.f);
  for (int i = 0; i < n; i += 4) m = vmaxnmq_f32(m, vabsq_f32(vld1q_f32(x + i)));
  return vmaxnmvq_f32(m);
}

}  // namespace

void quantize_legacy(const float* x, int64_t cols, void* qact) {
  const LegacyAct a = legacy_act(qact, cols);
  const int64_t nb = cols / 32, nbp = (nb + 15) / 16 * 16;  // padded as blocks.cc's legacy_nbp
  for (int64_t b = 0; b < nbp; b++) {
    int8_t* q0 = a.q + legacy_q_index(b, 0);
    int8_t* q1 = a.q + legacy_q_index(b, 16);
    if (b >= nb) {  // padding block: contributes nothing
      vst1q_s8(q0, vdupq_n_s8(0)), vst1q_s8(q1, vdupq_n_s8(0));
      a.d[b] = a.sd[b] = 0.f;
      vst1q_f32(a.dl + 4 * b, vdupq_n_f32(0.f));
      continue;
    }
    const float* xb = x + 32 * b;
    const float amax = absmax(xb, 32);
    const float d = amax / 127.f, id = amax >= 1e-30f ? 127.f / amax : 0.f;
    int32x4_t s = vdupq_n_s32(0);
    vst1q_s8(q0, q16(xb, id, &s));
    vst1q_s8(q1, q16(xb + 16, id, &s));
    vst1q_f32(a.dl + 4 * b, vdupq_n_f32(d));
    a.d[b] = d;
    a.sd[b] = d * static_cast<float>(vaddvq_s32(s));
  }
}

void quantize_q8k(const float* x, int64_t cols, void* qact) {
  kq::Q8K* out = static_cast<kq::Q8K*>(qact);
  for (int64_t b = 0; b < cols / kq::QK; b++) {
    const float* v = x + b * kq::QK;
    kq::Q8K& o = out[b];
    const float amax = absmax(v, kq::QK);
    const float id = amax >= 1e-30f ? 127.f / amax : 0.f;
    o.d = amax / 127.f;
    for (int g = 0; g < kq::QK / 16; g++) {
      int32x4_t s = vdupq_n_s32(0);
      vst1q_s8(o.qs + 16 * g, q16(v + 16 * g, id, &s));
      o.bsums[g] = static_cast<int16_t>(vaddvq_s32(s));
    }
  }
}
#else
void quantize_legacy(const float* x, int64_t cols, void* qact) { legacy_quantize(x, cols, qact, BlockIsa{}); }
void quantize_q8k(const float* x, int64_t cols, void* qact) { kquant_quantize(x, cols, qact, BlockIsa{}); }
#endif

}  // namespace arm
}  // namespace xv
