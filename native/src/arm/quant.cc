// Activation quantizers on NEON for the block kernels: the same bytes as the scalar ones (blocks.cc's legacy
// quantizer, kquants.cc's Q8K), because the f32 operations are the same — d = amax / 127, q = x · (127 / amax)
// rounded to nearest even (fcvtns), zeros for a block with amax < 1e-30 — only done 4 lanes at a time. maxnm
// ignores NaNs as std::max / std::fmax do there.
#include <algorithm>
#include <cmath>
#include <cstring>

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
void quantize_intq(const float* x, int64_t cols, int64_t nc, bool deint, int8_t* q, float* d) {
  const int64_t nb = (cols + 31) / 32;
  for (int64_t b = 0; b < nc * 4; b++) {
    int8_t* qb = q + 32 * b;
    if (b >= nb) {  // padding up to the chunk: zeros (d = 0) add nothing
      vst1q_s8(qb, vdupq_n_s8(0)), vst1q_s8(qb + 16, vdupq_n_s8(0));
      d[b] = 0.f;
      continue;
    }
    const float* xb = x + 32 * b;
    alignas(16) float tail[32];
    if (32 * b + 32 > cols) {  // a partial last block: zero padded, so amax (and every q) is over its own columns
      std::memset(tail, 0, sizeof tail);
      std::memcpy(tail, xb, static_cast<size_t>(cols - 32 * b) * sizeof(float));
      xb = tail;
    }
    const float amax = absmax(xb, 32);
    const float id = amax >= 1e-30f ? 127.f / amax : 0.f;
    int32x4_t s = vdupq_n_s32(0);
    const int8x16_t lo = q16(xb, id, &s), hi = q16(xb + 16, id, &s);
    // q4 order: even columns (the weights' low nibbles), then odd (high nibbles)
    vst1q_s8(qb, deint ? vuzp1q_s8(lo, hi) : lo);
    vst1q_s8(qb + 16, deint ? vuzp2q_s8(lo, hi) : hi);
    d[b] = amax / 127.f;
  }
}

void quantize_intq_pair(const int8_t* q0, const float* d0, const int8_t* q1, const float* d1, int64_t nc, int8_t* pq,
                        float* pd) {
  for (int64_t b = 0; b < nc * 4; b++) {
    for (int h = 0; h < 2; h++) {  // bytes 16h … 16h + 15 of both tokens' block → smmla's 2 × 8 operands
      const int64x2_t a = vreinterpretq_s64_s8(vld1q_s8(q0 + 32 * b + 16 * h));
      const int64x2_t c = q1 ? vreinterpretq_s64_s8(vld1q_s8(q1 + 32 * b + 16 * h)) : vdupq_n_s64(0);
      vst1q_s8(pq + 64 * b + 32 * h, vreinterpretq_s8_s64(vzip1q_s64(a, c)));
      vst1q_s8(pq + 64 * b + 32 * h + 16, vreinterpretq_s8_s64(vzip2q_s64(a, c)));
    }
    const float e0 = d0[b], e1 = q1 ? d1[b] : 0.f;
    const float v[4] = {e0, e1, e0, e1};
    vst1q_f32(pd + 4 * b, vld1q_f32(v));
  }
}
void round_f16_acts(const float* x, int64_t cols, uint16_t* h, float* scale) {
  float32x4_t m = vdupq_n_f32(0.f);
  int64_t c = 0;
  for (; c + 4 <= cols; c += 4) m = vmaxnmq_f32(m, vabsq_f32(vld1q_f32(x + c)));
  float amax = vmaxnmvq_f32(m);
  for (; c < cols; c++) amax = std::fmax(amax, std::fabs(x[c]));
  // amax = f · 2^e, f in [0.5, 1): x · 2^(15 - e) has max|x| in [2^14, 2^15), below f16's 65504 even rounded up.
  // |k| ≤ 120 keeps both powers normal f32; amax 0 / inf (or all NaN) leave x unscaled.
  int e = 0;
  const bool finite = amax > 0.f && std::isfinite(amax);
  if (finite) std::frexp(amax, &e);
  const int k = finite ? std::min(120, std::max(-120, e - 15)) : 0;
  const float down = std::ldexp(1.f, -k);
  *scale = std::ldexp(1.f, k);
  for (c = 0; c + 8 <= cols; c += 8) {  // exact scaling, then fcvtn / fcvtn2 (round to nearest even)
    const float16x4_t lo = vcvt_f16_f32(vmulq_n_f32(vld1q_f32(x + c), down));
    vst1q_u16(h + c, vreinterpretq_u16_f16(vcvt_high_f16_f32(lo, vmulq_n_f32(vld1q_f32(x + c + 4), down))));
  }
  if (c < cols) {  // the last cols % 8 through a zero-padded 8-lane buffer: the same instructions
    alignas(16) float t[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
    alignas(16) uint16_t o[8];
    std::memcpy(t, x + c, static_cast<size_t>(cols - c) * sizeof(float));
    const float16x4_t lo = vcvt_f16_f32(vmulq_n_f32(vld1q_f32(t), down));
    vst1q_u16(o, vreinterpretq_u16_f16(vcvt_high_f16_f32(lo, vmulq_n_f32(vld1q_f32(t + 4), down))));
    std::memcpy(h + c, o, static_cast<size_t>(cols - c) * sizeof(uint16_t));
  }
}
#else
void quantize_legacy(const float* x, int64_t cols, void* qact) { legacy_quantize(x, cols, qact, BlockIsa{}); }
void quantize_q8k(const float* x, int64_t cols, void* qact) { kquant_quantize(x, cols, qact, BlockIsa{}); }
// (the parity binary built on x86 links its NEON-level checks, which never run there)
void quantize_intq(const float*, int64_t, int64_t, bool, int8_t*, float*) {}
#endif

}  // namespace arm
}  // namespace xv
