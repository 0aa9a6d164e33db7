// Float-format matmul on base NEON: f32, f16, bf16, q8_row, q4_row, q4_group, q8_group, all with exact f32
// accumulation (the same numbers as the scalar kernel up to summation order).
//
// Plan, as the scalar kernel's (matmul_scalar.cc) but vectorized and tiled like the x86 ones: 4 weight rows are
// decoded to f32 once into an L1-resident buffer (4 · cols floats), then multiplied with 4 tokens at a time in a
// register tile of 4 × 4 accumulators, so prefill reads each weight row from memory once and each loaded vector
// feeds 4 FMAs. Decode (T = 1) is bound by the weight bytes streamed from DRAM.
#include <algorithm>
#include <vector>

#include "../convert.h"
#include "arm.h"
#if XV_ARM
#include <arm_neon.h>
#endif

namespace xv {
namespace arm {

#if XV_ARM
namespace {

// Row r of w as f32 into out[0 … cols). int formats: q · scale, exactly as weight_at.
void decode_row(const WView& w, int64_t r, float* out) {
  const int64_t n = w.cols;
  int64_t c = 0;
  switch (w.fmt) {
    case Fmt::F16: {
      const uint16_t* p = static_cast<const uint16_t*>(w.data) + r * n;
      for (; c + 8 <= n; c += 8) {
        const float16x8_t h = vreinterpretq_f16_u16(vld1q_u16(p + c));
        vst1q_f32(out + c, vcvt_f32_f16(vget_low_f16(h)));  // fcvtl: base ARMv8, exact
        vst1q_f32(out + c + 4, vcvt_high_f32_f16(h));
      }
      for (; c < n; c++) out[c] = f16_to_f32(p[c]);
      return;
    }
    case Fmt::BF16: {
      const uint16_t* p = static_cast<const uint16_t*>(w.data) + r * n;
      for (; c + 8 <= n; c += 8) {
        const uint16x8_t h = vld1q_u16(p + c);
        vst1q_f32(out + c, vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h), 16)));
        vst1q_f32(out + c + 4, vreinterpretq_f32_u32(vshll_high_n_u16(h, 16)));
      }
      for (; c < n; c++) out[c] = bf16_to_f32(p[c]);
      return;
    }
    case Fmt::Q8:
    case Fmt::Q8G: {
      const int8_t* p = static_cast<const int8_t*>(w.data) + r * n;
      const bool row = w.fmt == Fmt::Q8;
      const int64_t g = row ? n : w.group;
      const float* sc = row ? w.scales + r : w.scales + r * (n / g);
      for (int64_t g0 = 0; g0 < n; g0 += g) {  // one scale per group (q8_row: the whole row)
        const float s = sc[g0 / g];
        const float32x4_t vs = vdupq_n_f32(s);
        const int64_t e = g0 + g;
        for (c = g0; c + 8 <= e; c += 8) {
          const int16x8_t q = vmovl_s8(vld1_s8(p + c));
          vst1q_f32(out + c, vmulq_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(q))), vs));
          vst1q_f32(out + c + 4, vmulq_f32(vcvtq_f32_s32(vmovl_high_s16(q)), vs));
        }
        for (; c < e; c++) out[c] = p[c] * s;
      }
      return;
    }
    case Fmt::Q4:
    case Fmt::Q4G: {
      const uint8_t* p = static_cast<const uint8_t*>(w.data) + r * n / 2;
      const int64_t g = w.fmt == Fmt::Q4 ? n : w.group;
      const float* sc = w.fmt == Fmt::Q4 ? w.scales + r : w.scales + r * (n / g);
      // Column order: byte j = columns 2j (low nibble), 2j + 1 (high). When every 32 columns share one scale
      // (q4_row, group % 32 == 0: the releases' 32 / 128) it is applied here, in one pass; else after.
      const bool fused = g % 32 == 0;
      for (; c + 32 <= n; c += 32) {
        const int8x16_t b = vreinterpretq_s8_u8(vld1q_u8(p + c / 2));
        const int8x16_t lo = vshrq_n_s8(vshlq_n_s8(b, 4), 4), hi = vshrq_n_s8(b, 4);  // sign-extended nibbles
        const int8x16_t v0 = vzip1q_s8(lo, hi), v1 = vzip2q_s8(lo, hi);
        const int16x8_t h[4] = {vmovl_s8(vget_low_s8(v0)), vmovl_high_s8(v0), vmovl_s8(vget_low_s8(v1)),
                                vmovl_high_s8(v1)};
        const float32x4_t vs = vdupq_n_f32(fused ? sc[c / g] : 1.f);
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) {
          vst1q_f32(out + c + 8 * k, vmulq_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(h[k]))), vs));
          vst1q_f32(out + c + 8 * k + 4, vmulq_f32(vcvtq_f32_s32(vmovl_high_s16(h[k])), vs));
        }
      }
      for (; c < n; c++) {
        const uint8_t b = p[c >> 1];
        out[c] = static_cast<float>((c & 1) ? nib(b >> 4) : nib(b)) * (fused ? sc[c / g] : 1.f);
      }
      if (fused) return;
      for (int64_t g0 = 0; g0 < n; g0 += g) {
        const float s = sc[g0 / g];
        const float32x4_t vs = vdupq_n_f32(s);
        const int64_t e = g0 + g;
        for (c = g0; c + 4 <= e; c += 4) vst1q_f32(out + c, vmulq_f32(vld1q_f32(out + c), vs));
        for (; c < e; c++) out[c] *= s;
      }
      return;
    }
    default:
      for (; c < n; c++) out[c] = weight_at(w, r, c);
      return;
  }
}

inline float dot1(const float* a, const float* b, int64_t n) {
  float32x4_t s0 = vdupq_n_f32(0), s1 = s0, s2 = s0, s3 = s0;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
    s1 = vfmaq_f32(s1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
    s2 = vfmaq_f32(s2, vld1q_f32(a + i + 8), vld1q_f32(b + i + 8));
    s3 = vfmaq_f32(s3, vld1q_f32(a + i + 12), vld1q_f32(b + i + 12));
  }
  for (; i + 4 <= n; i += 4) s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
  float s = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
  for (; i < n; i++) s += a[i] * b[i];
  return s;
}

// A register tile: 4 weight rows w[0 … 3] × NT tokens (x, ldx apart) → 4 · NT accumulators; per 4 columns 4 + NT
// loads feed 4 · NT FMAs (the x86 kernels' row × token tiling). out[t · ldo + i] = row i · token t.
template <int NT>
inline void tile4(const float* const* w, const float* x, int64_t ldx, int64_t n, float* out, int64_t ldo) {
  float32x4_t acc[4][NT];
  const float* w0 = w[0];  // (the row pointers in registers)
  const float* w1 = w[1];
  const float* w2 = w[2];
  const float* w3 = w[3];
#pragma GCC unroll 4
  for (int i = 0; i < 4; i++)
#pragma GCC unroll 4
    for (int t = 0; t < NT; t++) acc[i][t] = vdupq_n_f32(0.f);
  int64_t c = 0;
  for (; c + 4 <= n; c += 4) {  // fully unrolled: 4 · NT accumulators stay in registers
    float32x4_t xv[NT];
#pragma GCC unroll 4
    for (int t = 0; t < NT; t++) xv[t] = vld1q_f32(x + t * ldx + c);
    const float32x4_t wv[4] = {vld1q_f32(w0 + c), vld1q_f32(w1 + c), vld1q_f32(w2 + c), vld1q_f32(w3 + c)};
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++)
#pragma GCC unroll 4
      for (int t = 0; t < NT; t++) acc[i][t] = vfmaq_f32(acc[i][t], wv[i], xv[t]);
  }
  float s[4][NT];
#pragma GCC unroll 4
  for (int i = 0; i < 4; i++)
#pragma GCC unroll 4
    for (int t = 0; t < NT; t++) s[i][t] = vaddvq_f32(acc[i][t]);
  for (; c < n; c++)  // the last cols % 4 columns
    for (int i = 0; i < 4; i++)
      for (int t = 0; t < NT; t++) s[i][t] += w[i][c] * x[t * ldx + c];
  for (int i = 0; i < 4; i++)
    for (int t = 0; t < NT; t++) out[t * ldo + i] = s[i][t];
}

// Decode (T = 1) without the row buffer: 4 rows × one token, each chunk of W columns widened to f32 in registers
// and FMA'd at once (dec(row, col, out) gives W / 4 vectors). Only the last cols % W columns go through weight_at.
template <int W, class Dec>
inline void rows4_t1(const WView& w, int64_t r, const float* x, float* y, Dec dec) {
  const int64_t n = w.cols;
  float32x4_t acc[4][2];
#pragma GCC unroll 4
  for (int i = 0; i < 4; i++) acc[i][0] = acc[i][1] = vdupq_n_f32(0.f);
  int64_t c = 0;
  for (; c + W <= n; c += W) {
    float32x4_t xv[W / 4];
#pragma GCC unroll 4
    for (int k = 0; k < W / 4; k++) xv[k] = vld1q_f32(x + c + 4 * k);
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
      float32x4_t wv[W / 4];
      dec(r + i, c, wv);
#pragma GCC unroll 4
      for (int k = 0; k < W / 4; k++) acc[i][k & 1] = vfmaq_f32(acc[i][k & 1], wv[k], xv[k]);
    }
  }
  for (int i = 0; i < 4; i++) {
    float s = vaddvq_f32(vaddq_f32(acc[i][0], acc[i][1]));
    for (int64_t k = c; k < n; k++) s += weight_at(w, r + i, k) * x[k];
    y[i] = s;
  }
}

// rows4_t1 for w's format; false when it has no chunk decoder for it (f32: read in place already; groups that do
// not hold whole chunks).
bool rows4_t1_fmt(const WView& w, int64_t r, const float* x, float* y) {
  const int64_t n = w.cols;
  switch (w.fmt) {
    case Fmt::F16: {
      const uint16_t* p = static_cast<const uint16_t*>(w.data);
      rows4_t1<8>(w, r, x, y, [&](int64_t row, int64_t c, float32x4_t* o) {
        const float16x8_t h = vreinterpretq_f16_u16(vld1q_u16(p + row * n + c));
        o[0] = vcvt_f32_f16(vget_low_f16(h)), o[1] = vcvt_high_f32_f16(h);
      });
      return true;
    }
    case Fmt::BF16: {
      const uint16_t* p = static_cast<const uint16_t*>(w.data);
      rows4_t1<8>(w, r, x, y, [&](int64_t row, int64_t c, float32x4_t* o) {
        const uint16x8_t h = vld1q_u16(p + row * n + c);
        o[0] = vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h), 16));
        o[1] = vreinterpretq_f32_u32(vshll_high_n_u16(h, 16));
      });
      return true;
    }
    case Fmt::Q8:
    case Fmt::Q8G: {
      const int8_t* p = static_cast<const int8_t*>(w.data);
      const bool row = w.fmt == Fmt::Q8;
      const int64_t g = row ? n : w.group, ng = n / g;
      if (!row && g % 8) return false;
      rows4_t1<8>(w, r, x, y, [&](int64_t rr, int64_t c, float32x4_t* o) {
        const float s = row ? w.scales[rr] : w.scales[rr * ng + c / g];
        const int16x8_t q = vmovl_s8(vld1_s8(p + rr * n + c));
        o[0] = vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(q))), s);
        o[1] = vmulq_n_f32(vcvtq_f32_s32(vmovl_high_s16(q)), s);
      });
      return true;
    }
    case Fmt::Q4:
    case Fmt::Q4G: {
      const uint8_t* p = static_cast<const uint8_t*>(w.data);
      const bool row = w.fmt == Fmt::Q4;
      const int64_t g = row ? n : w.group, ng = n / g;
      if (!row && g % 16) return false;
      rows4_t1<16>(w, r, x, y, [&](int64_t rr, int64_t c, float32x4_t* o) {
        const float s = row ? w.scales[rr] : w.scales[rr * ng + c / g];
        const int8x8_t b = vreinterpret_s8_u8(vld1_u8(p + (rr * n + c) / 2));  // 16 nibbles, column order
        const int8x8_t lo = vshr_n_s8(vshl_n_s8(b, 4), 4), hi = vshr_n_s8(b, 4);
        const int16x8_t v0 = vmovl_s8(vzip1_s8(lo, hi)), v1 = vmovl_s8(vzip2_s8(lo, hi));
        o[0] = vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(v0))), s);
        o[1] = vmulq_n_f32(vcvtq_f32_s32(vmovl_high_s16(v0)), s);
        o[2] = vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(v1))), s);
        o[3] = vmulq_n_f32(vcvtq_f32_s32(vmovl_high_s16(v1)), s);
      });
      return true;
    }
    default: return false;
  }
}

}  // namespace

void matmul_rows_f(const WView& w, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t T, int64_t r0,
                   int64_t r1) {
  const int64_t n = w.cols;
  thread_local std::vector<float> buf;
  if (static_cast<int64_t>(buf.size()) < 4 * n) buf.resize(4 * n);
  int64_t r = r0;
  for (; r + 4 <= r1; r += 4) {  // 4 rows at a time, each decoded once into L1 (f32: read in place)
    if (T == 1 && w.fmt != Fmt::F32 && rows4_t1_fmt(w, r, x, y + r)) continue;
    const float* wr[4];
    for (int i = 0; i < 4; i++) {
      if (w.fmt == Fmt::F32) {
        wr[i] = static_cast<const float*>(w.data) + (r + i) * n;
      } else {
        decode_row(w, r + i, buf.data() + i * n);
        wr[i] = buf.data() + i * n;
      }
    }
    int64_t t = 0;
    for (; t + 4 <= T; t += 4) tile4<4>(wr, x + t * ldx, ldx, n, y + t * ldy + r, ldy);
    switch (T - t) {
      case 3: tile4<3>(wr, x + t * ldx, ldx, n, y + t * ldy + r, ldy); break;
      case 2: tile4<2>(wr, x + t * ldx, ldx, n, y + t * ldy + r, ldy); break;
      case 1: tile4<1>(wr, x + t * ldx, ldx, n, y + t * ldy + r, ldy); break;
      default: break;
    }
  }
  for (; r < r1; r++) {  // the last rows one at a time
    const float* wr = buf.data();
    if (w.fmt == Fmt::F32) wr = static_cast<const float*>(w.data) + r * n;
    else decode_row(w, r, buf.data());
    for (int64_t t = 0; t < T; t++) y[t * ldy + r] = dot1(wr, x + t * ldx, n);
  }
}

#else
void matmul_rows_f(const WView& w, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t T, int64_t r0,
                   int64_t r1) {
  matmul_rows_scalar(w, x, ldx, y, ldy, T, r0, r1);
}
#endif

}  // namespace arm
}  // namespace xv
