// Paged-attention pieces on NEON for kv.cc's kernel table (4 lanes): storing a head row as f16 / q8_0, converting
// stored runs back to f32, and the narrow kernel (one query row against a chunk of packed keys, online softmax).
// Stored bytes must equal the reference's exactly (src/backend/ts/kv.ts): f16 rounds to nearest even in hardware
// (fcvtn, FPCR's default mode) with NaNs rewritten to the reference's plain quiet NaN; q8_0 rounds half away
// from zero (fcvtas), as std::round.
#include <algorithm>
#include <cmath>

#include "../convert.h"
#include "arm.h"
#if XV_ARM
#include "vexp.h"
#endif

namespace xv {
namespace arm {

#if XV_ARM
namespace {
inline uint16_t to_f16(float x) {
  return vget_lane_u16(vreinterpret_u16_f16(vcvt_f16_f32(vdupq_n_f32(x))), 0);
}
}  // namespace

void kv_store_f16(uint16_t* d, const float* s, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const float32x4_t x = vld1q_f32(s + i);
    uint16x4_t h = vreinterpret_u16_f16(vcvt_f16_f32(x));
    // NaN lanes → sign | 0x7e00 (hardware keeps the payload's top bits)
    const uint16x4_t nan = vmovn_u32(vmvnq_u32(vceqq_f32(x, x)));
    const uint16x4_t plain = vorr_u16(vand_u16(h, vdup_n_u16(0x8000)), vdup_n_u16(0x7e00));
    h = vbsl_u16(nan, plain, h);
    vst1_u16(d + i, h);
  }
  for (; i < n; i++) {
    const float x = s[i];
    d[i] = x != x ? static_cast<uint16_t>((to_f16(x) & 0x8000) | 0x7e00) : to_f16(x);
  }
}

void kv_quant_q8(int8_t* d, uint16_t* sc, const float* s, int64_t n, int64_t group) {
  for (int64_t g = 0; g < n; g += group, sc++) {
    const int64_t e = g + group;
    float32x4_t mx = vdupq_n_f32(0.f);
    int64_t i = g;
    for (; i + 4 <= e; i += 4) mx = vmaxq_f32(mx, vabsq_f32(vld1q_f32(s + i)));
    float amax = vmaxvq_f32(mx);
    for (; i < e; i++) amax = std::max(amax, std::fabs(s[i]));
    const float dd = amax / 127.f, id = dd != 0.f ? 1.f / dd : 0.f;
    i = g;
    for (; i + 4 <= e; i += 4) {
      const int32x4_t q = vcvtaq_s32_f32(vmulq_n_f32(vld1q_f32(s + i), id));  // half away from zero
      const int16x4_t q16 = vmovn_s32(q);
      d[i] = static_cast<int8_t>(vget_lane_s16(q16, 0)), d[i + 1] = static_cast<int8_t>(vget_lane_s16(q16, 1));
      d[i + 2] = static_cast<int8_t>(vget_lane_s16(q16, 2)), d[i + 3] = static_cast<int8_t>(vget_lane_s16(q16, 3));
    }
    for (; i < e; i++) d[i] = static_cast<int8_t>(std::round(s[i] * id));
    *sc = to_f16(dd);
  }
}

void kv_cvt_f16(float* d, const uint16_t* s, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const float16x8_t h = vreinterpretq_f16_u16(vld1q_u16(s + i));
    vst1q_f32(d + i, vcvt_f32_f16(vget_low_f16(h)));
    vst1q_f32(d + i + 4, vcvt_high_f32_f16(h));
  }
  for (; i < n; i++) d[i] = f16_to_f32(s[i]);
}

void kv_cvt_q8(float* d, const int8_t* s, const uint16_t* sc, int64_t n, int64_t group) {
  for (int64_t g = 0; g < n; g += group, sc++) {
    const float f = f16_to_f32(*sc);
    const int64_t e = std::min(n, g + group);
    int64_t i = g;
    for (; i + 8 <= e; i += 8) {
      const int16x8_t q = vmovl_s8(vld1_s8(s + i));
      vst1q_f32(d + i, vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(q))), f));
      vst1q_f32(d + i + 4, vmulq_n_f32(vcvtq_f32_s32(vmovl_high_s16(q)), f));
    }
    for (; i < e; i++) d[i] = s[i] * f;
  }
}

// hdp is a multiple of 4 (kv.cc pads head rows to the kernel table's lane count with zeros).
void kv_narrow(const float* q, const float* Kp, const float* Vp, int64_t hdp, int64_t n, float* sc, float* m,
               float* l, float* o) {
  float cmax = -INFINITY;
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) {  // 4 keys per pass, one combined horizontal sum
    const float* k = Kp + j * hdp;
    float32x4_t a0 = vdupq_n_f32(0), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t i = 0; i < hdp; i += 4) {
      const float32x4_t qv = vld1q_f32(q + i);
      a0 = vfmaq_f32(a0, qv, vld1q_f32(k + i));
      a1 = vfmaq_f32(a1, qv, vld1q_f32(k + hdp + i));
      a2 = vfmaq_f32(a2, qv, vld1q_f32(k + 2 * hdp + i));
      a3 = vfmaq_f32(a3, qv, vld1q_f32(k + 3 * hdp + i));
    }
    const float32x4_t s = vpaddq_f32(vpaddq_f32(a0, a1), vpaddq_f32(a2, a3));  // lane t = key j + t
    vst1q_f32(sc + j, s);
    cmax = std::max(cmax, vmaxvq_f32(s));
  }
  for (; j < n; j++) {
    const float* k = Kp + j * hdp;
    float32x4_t a = vdupq_n_f32(0);
    for (int64_t i = 0; i < hdp; i += 4) a = vfmaq_f32(a, vld1q_f32(q + i), vld1q_f32(k + i));
    sc[j] = vaddvq_f32(a);
    cmax = std::max(cmax, sc[j]);
  }
  const float mo = *m, mn = std::max(mo, cmax);
  const float corr = mo == -INFINITY ? 0.f : std::exp(mo - mn);
  float32x4_t sum4 = vdupq_n_f32(0);
  const float32x4_t mnv = vdupq_n_f32(mn);
  j = 0;
  for (; j + 4 <= n; j += 4) {
    const float32x4_t p = vexpq(vsubq_f32(vld1q_f32(sc + j), mnv));
    vst1q_f32(sc + j, p);
    sum4 = vaddq_f32(sum4, p);
  }
  float sum = vaddvq_f32(sum4);
  for (; j < n; j++) sum += (sc[j] = std::exp(sc[j] - mn));
  *m = mn;
  *l = *l * corr + sum;
  // o = o · corr + Σ p · V, 16 output values in registers per pass over the keys
  int64_t i = 0;
  for (; i + 16 <= hdp; i += 16) {
    float32x4_t o0 = vmulq_n_f32(vld1q_f32(o + i), corr), o1 = vmulq_n_f32(vld1q_f32(o + i + 4), corr);
    float32x4_t o2 = vmulq_n_f32(vld1q_f32(o + i + 8), corr), o3 = vmulq_n_f32(vld1q_f32(o + i + 12), corr);
    for (int64_t jj = 0; jj < n; jj++) {
      const float* v = Vp + jj * hdp + i;
      const float p = sc[jj];
      o0 = vfmaq_n_f32(o0, vld1q_f32(v), p), o1 = vfmaq_n_f32(o1, vld1q_f32(v + 4), p);
      o2 = vfmaq_n_f32(o2, vld1q_f32(v + 8), p), o3 = vfmaq_n_f32(o3, vld1q_f32(v + 12), p);
    }
    vst1q_f32(o + i, o0), vst1q_f32(o + i + 4, o1), vst1q_f32(o + i + 8, o2), vst1q_f32(o + i + 12, o3);
  }
  for (; i < hdp; i += 4) {
    float32x4_t o0 = vmulq_n_f32(vld1q_f32(o + i), corr);
    for (int64_t jj = 0; jj < n; jj++) o0 = vfmaq_n_f32(o0, vld1q_f32(Vp + jj * hdp + i), sc[jj]);
    vst1q_f32(o + i, o0);
  }
}
#endif

}  // namespace arm
}  // namespace xv
