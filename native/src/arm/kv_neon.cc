// Paged-attention pieces on NEON for kv.cc's kernel table (4 lanes): storing a head row as f16 / q8_0, converting
// stored runs back to f32, the narrow kernel (one query row against a chunk of packed keys, online softmax) and
// the wide prefill tile (4 or 8 query rows in vector lanes, kv.cc's plan).
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
    for (; i + 4 <= e; i += 4) mx = vmaxnmq_f32(mx, vabsq_f32(vld1q_f32(s + i)));  // NaNs ignored, as std::max here
    float amax = vmaxnmvq_f32(mx);
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

// --- the wide tile: R = 4·RV query rows in lanes (kv_wide.h), as kv.cc's x86 tiles ---

namespace {

// exp that is exactly 0 below −87.3 (masked keys come in as −∞).
inline float32x4_t exp_z(float32x4_t x) {
  return vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(vexpq(x)), vcgeq_f32(x, vdupq_n_f32(-87.3f))));
}

// acc += p · v[l] for the 4 lanes l of v (4 output dims), per row vector.
template <int RV>
inline void axpy4(float32x4_t (*acc)[RV], const float32x4_t* p, float32x4_t v) {
#pragma GCC unroll 2
  for (int rv = 0; rv < RV; rv++) {
    acc[0][rv] = vfmaq_laneq_f32(acc[0][rv], p[rv], v, 0);
    acc[1][rv] = vfmaq_laneq_f32(acc[1][rv], p[rv], v, 1);
    acc[2][rv] = vfmaq_laneq_f32(acc[2][rv], p[rv], v, 2);
    acc[3][rv] = vfmaq_laneq_f32(acc[3][rv], p[rv], v, 3);
  }
}

// Oᵀ rows ib … ib + 4·NI − 1: Oᵀ · corr + Σ_j V[j][i] · Pᵀ[j], with 4·NI·RV accumulators.
template <int RV, int NI>
inline void out_block(const Wide& w, const float* Vp, int64_t n, int64_t ib, const float32x4_t* cv) {
  constexpr int R = 4 * RV;
  float32x4_t acc[4 * NI][RV];
  float* ot = w.OT + ib * R;
#pragma GCC unroll 8
  for (int ii = 0; ii < 4 * NI; ii++)
#pragma GCC unroll 2
    for (int rv = 0; rv < RV; rv++) acc[ii][rv] = vmulq_f32(vld1q_f32(ot + ii * R + 4 * rv), cv[rv]);
  for (int64_t j = 0; j < n; j++) {
    float32x4_t pt[RV];
#pragma GCC unroll 2
    for (int rv = 0; rv < RV; rv++) pt[rv] = vld1q_f32(w.ST + j * R + 4 * rv);
    const float* v = Vp + j * w.hdp + ib;
    axpy4<RV>(acc, pt, vld1q_f32(v));
    if (NI == 2) axpy4<RV>(acc + 4, pt, vld1q_f32(v + 4));
  }
#pragma GCC unroll 8
  for (int ii = 0; ii < 4 * NI; ii++)
#pragma GCC unroll 2
    for (int rv = 0; rv < RV; rv++) vst1q_f32(ot + ii * R + 4 * rv, acc[ii][rv]);
}

// Scores Sᵀ = K · Qᵀ as outer products (8 keys × R rows per pass: 4 consecutive head dims of each key in one
// vector, each lane times that dim's Qᵀ row), masking, online-softmax update, then Σ p·V — kv.cc's plan.
template <int RV>
void wide(const Wide& w, const float* Kp, const float* Vp, int64_t n, int64_t c0, bool mask) {
  constexpr int R = 4 * RV, JB = 8;
  const int64_t hd = w.hd, hdp = w.hdp, npad = (n + JB - 1) / JB * JB;  // Kp is zero padded to 16 keys
  int64_t pfi = 0;
  const float32x4_t ninf = vdupq_n_f32(-INFINITY);
  float32x4_t cmax[RV];
  int32x4_t limv[RV];
  for (int rv = 0; rv < RV; rv++) cmax[rv] = ninf, limv[rv] = vld1q_s32(w.lim + 4 * rv);
  for (int64_t jb = 0; jb < npad; jb += JB) {
    float32x4_t acc[RV][JB];
#pragma GCC unroll 2
    for (int rv = 0; rv < RV; rv++)
#pragma GCC unroll 8
      for (int jj = 0; jj < JB; jj++) acc[rv][jj] = vdupq_n_f32(0.f);
    const float* k = Kp + jb * hdp;
    int64_t i = 0;
    for (; i + 4 <= hd; i += 4) {
      if (pfi < w.npf) __builtin_prefetch(w.pf[pfi++]);
      float32x4_t q[4][RV];
#pragma GCC unroll 4
      for (int l = 0; l < 4; l++)
#pragma GCC unroll 2
        for (int rv = 0; rv < RV; rv++) q[l][rv] = vld1q_f32(w.QT + (i + l) * R + 4 * rv);
#pragma GCC unroll 8
      for (int jj = 0; jj < JB; jj++) {
        const float32x4_t kv = vld1q_f32(k + jj * hdp + i);
#pragma GCC unroll 2
        for (int rv = 0; rv < RV; rv++) {
          acc[rv][jj] = vfmaq_laneq_f32(acc[rv][jj], q[0][rv], kv, 0);
          acc[rv][jj] = vfmaq_laneq_f32(acc[rv][jj], q[1][rv], kv, 1);
          acc[rv][jj] = vfmaq_laneq_f32(acc[rv][jj], q[2][rv], kv, 2);
          acc[rv][jj] = vfmaq_laneq_f32(acc[rv][jj], q[3][rv], kv, 3);
        }
      }
    }
    for (; i < hd; i++) {  // the last hd % 4 dims
      float32x4_t q[RV];
      for (int rv = 0; rv < RV; rv++) q[rv] = vld1q_f32(w.QT + i * R + 4 * rv);
#pragma GCC unroll 8
      for (int jj = 0; jj < JB; jj++)
#pragma GCC unroll 2
        for (int rv = 0; rv < RV; rv++) acc[rv][jj] = vfmaq_n_f32(acc[rv][jj], q[rv], k[jj * hdp + i]);
    }
    const int64_t real = std::min<int64_t>(JB, n - jb);
#pragma GCC unroll 8
    for (int jj = 0; jj < JB; jj++) {
      const int32x4_t pos = vdupq_n_s32(static_cast<int32_t>(c0 + jb + jj));
#pragma GCC unroll 2
      for (int rv = 0; rv < RV; rv++) {
        if (mask) acc[rv][jj] = vbslq_f32(vcgtq_s32(pos, limv[rv]), ninf, acc[rv][jj]);
        vst1q_f32(w.ST + (jb + jj) * R + 4 * rv, acc[rv][jj]);
        if (jj < real) cmax[rv] = vmaxq_f32(cmax[rv], acc[rv][jj]);
      }
    }
  }
  for (; pfi < w.npf; pfi++) __builtin_prefetch(w.pf[pfi]);
  float32x4_t msub[RV], sum[RV], cv[RV];
  for (int rv = 0; rv < RV; rv++) {
    const float32x4_t mo = vld1q_f32(w.m + 4 * rv), mn = vmaxq_f32(mo, cmax[rv]);
    // a row with no visible key yet keeps −∞ as its max; subtract 0 there instead (−∞ − −∞ is NaN)
    msub[rv] = vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(mn), vceqq_f32(mn, ninf)));
    cv[rv] = exp_z(vsubq_f32(mo, msub[rv]));
    vst1q_f32(w.corr + 4 * rv, cv[rv]);
    vst1q_f32(w.m + 4 * rv, mn);
    sum[rv] = vdupq_n_f32(0.f);
  }
  for (int64_t j = 0; j < n; j++)
#pragma GCC unroll 2
    for (int rv = 0; rv < RV; rv++) {
      float* st = w.ST + j * R + 4 * rv;
      const float32x4_t p = exp_z(vsubq_f32(vld1q_f32(st), msub[rv]));
      vst1q_f32(st, p);
      sum[rv] = vaddq_f32(sum[rv], p);
    }
  for (int rv = 0; rv < RV; rv++) vst1q_f32(w.l + 4 * rv, vfmaq_f32(sum[rv], vld1q_f32(w.l + 4 * rv), cv[rv]));
  int64_t ib = 0;
  for (; ib + 8 <= hdp; ib += 8) out_block<RV, 2>(w, Vp, n, ib, cv);
  for (; ib < hdp; ib += 4) out_block<RV, 1>(w, Vp, n, ib, cv);
}

}  // namespace

void kv_wide1(const Wide& w, const float* Kp, const float* Vp, int64_t n, int64_t c0, bool mask) {
  wide<1>(w, Kp, Vp, n, c0, mask);
}
void kv_wide2(const Wide& w, const float* Kp, const float* Vp, int64_t n, int64_t c0, bool mask) {
  wide<2>(w, Kp, Vp, n, c0, mask);
}
#endif

}  // namespace arm
}  // namespace xv
