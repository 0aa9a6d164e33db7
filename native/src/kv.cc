// Paged KV cache kernels: storing keys / values into blocks (f32, f16, q8_0) and causal GQA attention that reads
// the blocks in place through the block table. Byte layout: src/kv/layout.ts; the spec: src/backend/ts/kv.ts.
//
// Attention is flash-attention style. A work item is (kv head, a tile of query rows that share it, a key range);
// it walks its keys in chunks of kChunk consecutive positions (a chunk may span blocks). Each chunk's K and V for
// the kv head are converted to f32 once into a per-thread buffer (kChunk × hdp, hdp = headDim rounded up to the
// vector width, zero padded) and then used by every row of the tile from L1. Each row keeps an online softmax:
// running max m, running sum l, and an unnormalized output o that is rescaled by exp(m_old − m_new) whenever the
// max grows. Scratch is O(kChunk · headDim + rows · headDim) per thread, whatever the sequence length.
//
// Two inner kernels:
//  - narrow (decode and few rows per kv head): one query row at a time against the chunk; 16 (AVX2: 8) keys per
//    pass with one combined horizontal sum for all of them, then Σ p·V with the output slice in registers.
//  - wide (prefill): a tile of R = 16·RV (AVX2: 8·RV) rows in "transposed space": Qᵀ (headDim × R), scores Sᵀ
//    (keys × R) and Oᵀ (hdp × R), so the rows sit in vector lanes. Scores are outer-product FMAs (one broadcast key
//    element × the 16 rows' query elements), the softmax statistics are plain lane-wise vector ops, and Σ p·V is a
//    broadcast V element × the 16 rows' probabilities. No horizontal sums and no transposition of K or V; only Q
//    (once per tile) is transposed.
// Decode with few items per thread splits the key range too (flash-decoding) and merges the partial (m, l, o).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "convert.h"
#include "kernels.h"
#include "pool.h"
#include "vexp.h"
#include "arm/arm.h"
#include "kv_wide.h"
#if XV_X86
#include <immintrin.h>

#include "hsum_avx.h"
#endif

#define KV512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")))
#define KVAVX2 __attribute__((target("avx2,fma,f16c")))

namespace xv {
namespace {

constexpr int64_t kChunk = 32;    // keys per chunk: a multiple of 16 (the wide kernel's key blocking)
constexpr int64_t kMaxRows = 128;  // query rows per work item (up to 4 wide tiles of 32)

// Start of the K (isV 0) or V (isV 1) region of kv.layer inside block `blk`.
inline uint8_t* region(const PagedKv& kv, int64_t blk, int isV) {
  const int64_t s = blk / kv.blocksPerSegment;
  return kv.segs[s] + (blk - s * kv.blocksPerSegment) * kv.blockBytes + (2 * kv.layer + isV) * kv.regionBytes;
}

// f32 → f16 bits, round to nearest even; NaN → quiet NaN without payload. The same function as f32ToF16 in
// src/tensor.ts, bit for bit (the q8_0 scales always go through here).
uint16_t f32_to_f16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  const uint32_t sign = (u >> 16) & 0x8000;
  const int32_t exp = (u >> 23) & 0xff;
  uint32_t mant = u & 0x7fffff;
  if (exp == 0xff) return static_cast<uint16_t>(sign | 0x7c00 | (mant ? 0x200 : 0));
  int32_t e = exp - 127 + 15;
  if (e >= 31) return static_cast<uint16_t>(sign | 0x7c00);
  if (e <= 0) {
    if (e < -10) return static_cast<uint16_t>(sign);
    mant |= 0x800000;
    const uint32_t shift = 14 - e, half = 1u << (shift - 1);
    uint32_t r = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1);
    if (rem > half || (rem == half && (r & 1))) r++;
    return static_cast<uint16_t>(sign | r);
  }
  uint32_t r = mant >> 13;
  const uint32_t rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (r & 1))) {
    r++;
    if (r == 0x400) {
      r = 0;
      if (++e >= 31) return static_cast<uint16_t>(sign | 0x7c00);
    }
  }
  return static_cast<uint16_t>(sign | (e << 10) | r);
}

// q8_0 scale of one group: d = amax / 127 in f32 (llama.cpp's quantize_row_q8_0), and 1/d (0 for an all-zero group).
inline void q8_scale(float amax, float& d, float& id) {
  d = amax / 127.f;
  id = d != 0.f ? 1.f / d : 0.f;
}

// ---------------------------------------------------------------------------------------------------------------
// Per-ISA pieces. Each ISA provides: storing one head row (f16 / q8_0), converting a run of stored values to f32,
// the narrow row kernel and (x86) the wide tile kernel. The driver below is ISA-independent.

// The wide tile's state (struct Wide, rows in lanes) is in kv_wide.h.

struct Kern {
  int lanes;  // hdp is a multiple of this; the wide tile is lanes · RV rows
  void (*store_f16)(uint16_t* d, const float* s, int64_t n);
  // Quantizes n values (a head row) in groups of `group` into d, the scales (f16) into sc.
  void (*quant_q8)(int8_t* d, uint16_t* sc, const float* s, int64_t n, int64_t group);
  void (*cvt_f16)(float* d, const uint16_t* s, int64_t n);
  // n values starting at a group boundary; sc holds their scales, one per `group` values.
  void (*cvt_q8)(float* d, const int8_t* s, const uint16_t* sc, int64_t n, int64_t group);
  // One query row q (hdp, pre-scaled) against n packed keys: online-softmax update of (m, l, o). n ≥ 1.
  void (*narrow)(const float* q, const float* Kp, const float* Vp, int64_t hdp, int64_t n, float* sc, float* m,
                 float* l, float* o);
  // A wide tile against n packed keys at positions c0 … c0+n−1; `mask`: some row's limit falls inside the chunk.
  void (*wide[2])(const Wide& w, const float* Kp, const float* Vp, int64_t n, int64_t c0, bool mask);
  // narrow on n f16 keys / values read in place (rows of headDim, a multiple of the lanes), requesting the cache
  // lines pl[0 … npl) along the way; or null.
  void (*narrow_f16)(const float* q, const uint16_t* Kh, const uint16_t* Vh, int64_t hd, int64_t n, float* sc, float* m,
                     float* l, float* o, const uint8_t* const* pl, int64_t npl);
};

// --- scalar ---

void store_f16_scalar(uint16_t* d, const float* s, int64_t n) {
  for (int64_t i = 0; i < n; i++) d[i] = f32_to_f16(s[i]);
}

void quant_q8_scalar(int8_t* d, uint16_t* sc, const float* s, int64_t n, int64_t group) {
  for (int64_t g = 0; g < n; g += group, sc++) {
    float amax = 0.f;
    for (int64_t i = g; i < g + group; i++) amax = std::max(amax, std::fabs(s[i]));
    float dd, id;
    q8_scale(amax, dd, id);
    for (int64_t i = g; i < g + group; i++) d[i] = static_cast<int8_t>(std::round(s[i] * id));  // half away from 0
    *sc = f32_to_f16(dd);
  }
}

void cvt_f16_scalar(float* d, const uint16_t* s, int64_t n) {
  for (int64_t i = 0; i < n; i++) d[i] = f16_to_f32(s[i]);
}

void cvt_q8_scalar(float* d, const int8_t* s, const uint16_t* sc, int64_t n, int64_t group) {
  for (int64_t g = 0; g < n; g += group, sc++) {
    const float f = f16_to_f32(*sc);
    for (int64_t i = g; i < g + group; i++) d[i] = s[i] * f;
  }
}

void narrow_scalar(const float* q, const float* Kp, const float* Vp, int64_t hdp, int64_t n, float* sc, float* m,
                   float* l, float* o) {
  float cmax = -INFINITY;
  for (int64_t j = 0; j < n; j++) {
    const float* k = Kp + j * hdp;
    float s = 0.f;
    for (int64_t i = 0; i < hdp; i++) s += q[i] * k[i];
    sc[j] = s;
    cmax = std::max(cmax, s);
  }
  const float mo = *m, mn = std::max(mo, cmax);
  const float corr = mo == -INFINITY ? 0.f : std::exp(mo - mn);
  float sum = 0.f;
  for (int64_t j = 0; j < n; j++) sum += (sc[j] = std::exp(sc[j] - mn));
  *m = mn;
  *l = *l * corr + sum;
  for (int64_t i = 0; i < hdp; i++) o[i] *= corr;
  for (int64_t j = 0; j < n; j++) {
    const float p = sc[j];
    const float* v = Vp + j * hdp;
    for (int64_t i = 0; i < hdp; i++) o[i] += p * v[i];
  }
}

#if XV_X86

// --- AVX-512 ---

KV512 inline __mmask16 tail16(int64_t n) {
  return n >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << n) - 1);
}

// exp for x ≤ 0 that is exactly 0 below −87.3 (masked keys come in as −inf).
KV512 inline __m512 exp_z512(__m512 x) {
  return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.3f), _CMP_GE_OQ), exp512(x));
}

KV512 void store_f16_512(uint16_t* d, const float* s, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail16(n - i);
    const __m512 x = _mm512_maskz_loadu_ps(m, s + i);
    _mm256_mask_storeu_epi16(d + i, m, _mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    // F16C keeps a NaN's payload; the reference stores a plain quiet NaN.
    __mmask16 nan = _mm512_mask_cmp_ps_mask(m, x, x, _CMP_UNORD_Q);
    for (int j = 0; nan; j++, nan >>= 1)
      if (nan & 1) d[i + j] = f32_to_f16(s[i + j]);
  }
}

KV512 float quant_group_512(int8_t* d, const float* s, int64_t n) {
  __m512 mx = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) mx = _mm512_max_ps(mx, _mm512_abs_ps(_mm512_maskz_loadu_ps(tail16(n - i), s + i)));
  float dd, id;
  q8_scale(_mm512_reduce_max_ps(mx), dd, id);
  const __m512 idv = _mm512_set1_ps(id), half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail16(n - i);
    const __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, s + i), idv);
    // round half away from zero: truncate, then step away from zero when the (exact) fraction is ≥ 0.5
    __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __mmask16 up = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_sub_ps(v, t)), half, _CMP_GE_OQ);
    const __m512 step = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(one),
        _mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(static_cast<int>(0x80000000u)))));
    t = _mm512_mask_add_ps(t, up, t, step);
    _mm512_mask_cvtepi32_storeu_epi8(d + i, m, _mm512_cvtps_epi32(t));
  }
  return dd;
}

KV512 void quant_q8_512(int8_t* d, uint16_t* sc, const float* s, int64_t n, int64_t group) {
  for (int64_t g = 0; g < n; g += group) *sc++ = f32_to_f16(quant_group_512(d + g, s + g, group));
}

KV512 void cvt_f16_512(float* d, const uint16_t* s, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(d + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i))));
  if (i < n) {
    const __mmask16 m = tail16(n - i);
    _mm512_mask_storeu_ps(d + i, m, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, s + i)));
  }
}

KV512 void cvt_q8_512(float* d, const int8_t* s, const uint16_t* sc, int64_t n, int64_t group) {
  if (group % 16) return cvt_q8_scalar(d, s, sc, n, group);  // a vector would straddle two scales
  for (int64_t g = 0; g < n; g += group, sc++) {
    const __m512 f = _mm512_set1_ps(_cvtsh_ss(*sc));
    for (int64_t i = g; i < g + group; i += 16) {
      const __m512 v = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i))));
      _mm512_storeu_ps(d + i, _mm512_mul_ps(v, f));
    }
  }
}

// Sixteen horizontal sums at once: with in[kHsumPos[j]] = acc[j], lane j of the result is Σ acc[j]. Four levels
// of shuffle + add (30 ops) instead of sixteen separate reductions (~130).
constexpr int kHsumPos[16] = {0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15};

KV512 inline __m512 hsum16(const __m512* v) {
  __m512 l1[8], l2[4], l3[2];
#pragma GCC unroll 8
  for (int i = 0; i < 8; i++) {
    const __m512 a = v[2 * i], b = v[2 * i + 1];
    l1[i] = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(1, 0, 1, 0)), _mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(3, 2, 3, 2)));
  }
#pragma GCC unroll 4
  for (int i = 0; i < 4; i++) {
    const __m512 a = l1[2 * i], b = l1[2 * i + 1];
    l2[i] = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
  }
#pragma GCC unroll 2
  for (int i = 0; i < 2; i++) {
    const __m512 a = l2[2 * i], b = l2[2 * i + 1];
    l3[i] = _mm512_add_ps(_mm512_shuffle_ps(a, b, _MM_SHUFFLE(1, 0, 1, 0)), _mm512_shuffle_ps(a, b, _MM_SHUFFLE(3, 2, 3, 2)));
  }
  return _mm512_add_ps(_mm512_shuffle_ps(l3[0], l3[1], _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_ps(l3[0], l3[1], _MM_SHUFFLE(3, 1, 3, 1)));
}

// o[0 … 16·NC) = o · corr + Σ_j p[j] · V[j], the slice in NC registers (V rows hdp apart).
template <int NC>
KV512 void pv_slab_512(float* o, float corr, const float* p, const float* V, int64_t hdp, int64_t n) {
  __m512 acc[NC];
  const __m512 cv = _mm512_set1_ps(corr);
#pragma GCC unroll 8
  for (int c = 0; c < NC; c++) acc[c] = _mm512_mul_ps(_mm512_loadu_ps(o + 16 * c), cv);
  for (int64_t j = 0; j < n; j++) {
    const __m512 w = _mm512_set1_ps(p[j]);
    const float* v = V + j * hdp;
#pragma GCC unroll 8
    for (int c = 0; c < NC; c++) acc[c] = _mm512_fmadd_ps(w, _mm512_loadu_ps(v + 16 * c), acc[c]);
  }
#pragma GCC unroll 8
  for (int c = 0; c < NC; c++) _mm512_storeu_ps(o + 16 * c, acc[c]);
}

KV512 void narrow_512(const float* q, const float* Kp, const float* Vp, int64_t hdp, int64_t n, float* sc, float* m,
                      float* l, float* o) {
  // scores, 16 keys per pass: q streamed from L1 (one load per 16 FMAs), 16 accumulators, one combined hsum
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) {
    __m512 in[16];
#pragma GCC unroll 16
    for (int jj = 0; jj < 16; jj++) in[jj] = _mm512_setzero_ps();
    const float* k = Kp + j * hdp;
    for (int64_t c = 0; c < hdp; c += 16) {
      const __m512 qc = _mm512_loadu_ps(q + c);
#pragma GCC unroll 16
      for (int jj = 0; jj < 16; jj++)
        in[kHsumPos[jj]] = _mm512_fmadd_ps(qc, _mm512_loadu_ps(k + jj * hdp + c), in[kHsumPos[jj]]);
    }
    _mm512_storeu_ps(sc + j, hsum16(in));
  }
  for (; j < n; j++) {
    __m512 acc = _mm512_setzero_ps();
    for (int64_t c = 0; c < hdp; c += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(q + c), _mm512_loadu_ps(Kp + j * hdp + c), acc);
    sc[j] = _mm512_reduce_add_ps(acc);
  }
  // online softmax
  __m512 mxv = _mm512_set1_ps(-INFINITY);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 mk = tail16(n - i);
    mxv = _mm512_mask_max_ps(mxv, mk, mxv, _mm512_maskz_loadu_ps(mk, sc + i));
  }
  const float mo = *m, mn = std::max(mo, _mm512_reduce_max_ps(mxv));
  const float corr = mo == -INFINITY ? 0.f : std::exp(mo - mn);
  const __m512 mv = _mm512_set1_ps(mn);
  __m512 sum = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 mk = tail16(n - i);
    const __m512 e = _mm512_maskz_mov_ps(mk, exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(mk, sc + i), mv)));
    sum = _mm512_add_ps(sum, e);
    _mm512_mask_storeu_ps(sc + i, mk, e);
  }
  *m = mn;
  *l = *l * corr + _mm512_reduce_add_ps(sum);
  // Σ p·V, 128 output floats at a time in registers
  for (int64_t c0 = 0; c0 < hdp; c0 += 128) {
    switch (std::min<int64_t>(8, (hdp - c0) / 16)) {
      case 1: pv_slab_512<1>(o + c0, corr, sc, Vp + c0, hdp, n); break;
      case 2: pv_slab_512<2>(o + c0, corr, sc, Vp + c0, hdp, n); break;
      case 3: pv_slab_512<3>(o + c0, corr, sc, Vp + c0, hdp, n); break;
      case 4: pv_slab_512<4>(o + c0, corr, sc, Vp + c0, hdp, n); break;
      case 5: pv_slab_512<5>(o + c0, corr, sc, Vp + c0, hdp, n); break;
      case 6: pv_slab_512<6>(o + c0, corr, sc, Vp + c0, hdp, n); break;
      case 7: pv_slab_512<7>(o + c0, corr, sc, Vp + c0, hdp, n); break;
      default: pv_slab_512<8>(o + c0, corr, sc, Vp + c0, hdp, n); break;
    }
  }
}

// The wide tile: R = 16·RV rows. Key blocking JB and output blocking ID keep 16 accumulators live.
template <int RV>
KV512 void wide_512(const Wide& w, const float* Kp, const float* Vp, int64_t n, int64_t c0, bool mask) {
  constexpr int R = 16 * RV, JB = RV == 1 ? 16 : 8, ID = RV == 1 ? 16 : 8;
  const int64_t hd = w.hd, hdp = w.hdp, npad = (n + JB - 1) / JB * JB;  // Kp rows [n, npad) are zero
  int64_t pfi = 0;
  const __m512 ninf = _mm512_set1_ps(-INFINITY);
  __m512 cmax[RV];
  __m512i limv[RV];
#pragma GCC unroll 2
  for (int rv = 0; rv < RV; rv++) {
    cmax[rv] = ninf;
    limv[rv] = _mm512_loadu_si512(w.lim + 16 * rv);
  }
  // Sᵀ[j] (R lanes) = Σ_i K[j][i] · Qᵀ[i]
  for (int64_t jb = 0; jb < npad; jb += JB) {
    __m512 acc[RV][JB];
#pragma GCC unroll 16
    for (int jj = 0; jj < JB; jj++)
#pragma GCC unroll 2
      for (int rv = 0; rv < RV; rv++) acc[rv][jj] = _mm512_setzero_ps();
    const float* k = Kp + jb * hdp;
    for (int64_t i = 0; i < hd; i++) {
      if (pfi < w.npf) _mm_prefetch(reinterpret_cast<const char*>(w.pf[pfi++]), _MM_HINT_T0);
      __m512 qt[RV];
#pragma GCC unroll 2
      for (int rv = 0; rv < RV; rv++) qt[rv] = _mm512_loadu_ps(w.QT + i * R + 16 * rv);
#pragma GCC unroll 16
      for (int jj = 0; jj < JB; jj++) {
        const __m512 kb = _mm512_set1_ps(k[jj * hdp + i]);
#pragma GCC unroll 2
        for (int rv = 0; rv < RV; rv++) acc[rv][jj] = _mm512_fmadd_ps(kb, qt[rv], acc[rv][jj]);
      }
    }
    // Mask keys past a row's limit to −inf (chunks on the diagonal only), store, and take the row max over the
    // real keys (the zero rows padding the chunk to JB are left out of it).
    if (mask) {
#pragma GCC unroll 16
      for (int jj = 0; jj < JB; jj++) {
        const __m512i pos = _mm512_set1_epi32(static_cast<int>(c0 + jb + jj));
#pragma GCC unroll 2
        for (int rv = 0; rv < RV; rv++)
          acc[rv][jj] = _mm512_mask_mov_ps(ninf, _mm512_cmple_epi32_mask(pos, limv[rv]), acc[rv][jj]);
      }
    }
#pragma GCC unroll 16
    for (int jj = 0; jj < JB; jj++)
#pragma GCC unroll 2
      for (int rv = 0; rv < RV; rv++) _mm512_storeu_ps(w.ST + (jb + jj) * R + 16 * rv, acc[rv][jj]);
    const int64_t real = std::min<int64_t>(JB, n - jb);
#pragma GCC unroll 16
    for (int jj = 0; jj < JB; jj++)
      if (jj < real)
#pragma GCC unroll 2
        for (int rv = 0; rv < RV; rv++) cmax[rv] = _mm512_max_ps(cmax[rv], acc[rv][jj]);
  }
  for (; pfi < w.npf; pfi++) _mm_prefetch(reinterpret_cast<const char*>(w.pf[pfi]), _MM_HINT_T0);

  // online softmax, lane-wise; masked keys get probability exactly 0
  __m512 msub[RV], sum[RV];
#pragma GCC unroll 2
  for (int rv = 0; rv < RV; rv++) {
    const __m512 mo = _mm512_loadu_ps(w.m + 16 * rv), mn = _mm512_max_ps(mo, cmax[rv]);
    // a row with no key yet keeps m = −inf: subtract 0 instead, so −inf − −inf never makes a NaN
    msub[rv] = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(mn, ninf, _CMP_NEQ_OQ), mn);
    _mm512_storeu_ps(w.corr + 16 * rv, exp_z512(_mm512_sub_ps(mo, msub[rv])));
    _mm512_storeu_ps(w.m + 16 * rv, mn);
    sum[rv] = _mm512_setzero_ps();
  }
  for (int64_t j = 0; j < n; j++) {
#pragma GCC unroll 2
    for (int rv = 0; rv < RV; rv++) {
      float* st = w.ST + j * R + 16 * rv;
      const __m512 p = exp_z512(_mm512_sub_ps(_mm512_loadu_ps(st), msub[rv]));
      _mm512_storeu_ps(st, p);
      sum[rv] = _mm512_add_ps(sum[rv], p);
    }
  }
#pragma GCC unroll 2
  for (int rv = 0; rv < RV; rv++)
    _mm512_storeu_ps(w.l + 16 * rv, _mm512_fmadd_ps(_mm512_loadu_ps(w.l + 16 * rv), _mm512_loadu_ps(w.corr + 16 * rv), sum[rv]));

  // Oᵀ[i] (R lanes) = Oᵀ[i] · corr + Σ_j V[j][i] · Pᵀ[j]
  __m512 cv[RV];
#pragma GCC unroll 2
  for (int rv = 0; rv < RV; rv++) cv[rv] = _mm512_loadu_ps(w.corr + 16 * rv);
  for (int64_t ib = 0; ib < hdp; ib += ID) {
    __m512 acc[ID][RV];
    float* ot = w.OT + ib * R;
#pragma GCC unroll 16
    for (int ii = 0; ii < ID; ii++)
#pragma GCC unroll 2
      for (int rv = 0; rv < RV; rv++) acc[ii][rv] = _mm512_mul_ps(_mm512_loadu_ps(ot + ii * R + 16 * rv), cv[rv]);
    const float* v = Vp + ib;
    for (int64_t j = 0; j < n; j++) {
      __m512 pt[RV];
#pragma GCC unroll 2
      for (int rv = 0; rv < RV; rv++) pt[rv] = _mm512_loadu_ps(w.ST + j * R + 16 * rv);
#pragma GCC unroll 16
      for (int ii = 0; ii < ID; ii++) {
        const __m512 vb = _mm512_set1_ps(v[j * hdp + ii]);
#pragma GCC unroll 2
        for (int rv = 0; rv < RV; rv++) acc[ii][rv] = _mm512_fmadd_ps(vb, pt[rv], acc[ii][rv]);
      }
    }
#pragma GCC unroll 16
    for (int ii = 0; ii < ID; ii++)
#pragma GCC unroll 2
      for (int rv = 0; rv < RV; rv++) _mm512_storeu_ps(ot + ii * R + 16 * rv, acc[ii][rv]);
  }
}

// --- AVX2 + FMA + F16C ---

// Zero below −87.3 (and for −inf).
KVAVX2 inline __m256 exp_z256(__m256 x) {
  return _mm256_and_ps(exp256(x), _mm256_cmp_ps(x, _mm256_set1_ps(-87.3f), _CMP_GE_OQ));
}

KVAVX2 inline float hmax256(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}


KVAVX2 void store_f16_avx2(uint16_t* d, const float* s, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_loadu_ps(s + i);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i), _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    int nan = _mm256_movemask_ps(_mm256_cmp_ps(x, x, _CMP_UNORD_Q));
    for (int j = 0; nan; j++, nan >>= 1)
      if (nan & 1) d[i + j] = f32_to_f16(s[i + j]);
  }
  for (; i < n; i++) d[i] = f32_to_f16(s[i]);
}

KVAVX2 float quant_group_avx2(int8_t* d, const float* s, int64_t n) {
  const __m256 absm = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  __m256 mx = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) mx = _mm256_max_ps(mx, _mm256_and_ps(_mm256_loadu_ps(s + i), absm));
  float amax = hmax256(mx);
  for (; i < n; i++) amax = std::max(amax, std::fabs(s[i]));
  float dd, id;
  q8_scale(amax, dd, id);
  const __m256 idv = _mm256_set1_ps(id), half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.f);
  const __m256 sgn = _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(0x80000000u)));
  for (i = 0; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(s + i), idv);
    __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 up = _mm256_cmp_ps(_mm256_and_ps(_mm256_sub_ps(v, t), absm), half, _CMP_GE_OQ);
    t = _mm256_add_ps(t, _mm256_and_ps(up, _mm256_or_ps(one, _mm256_and_ps(v, sgn))));
    const __m128i q32lo = _mm256_castsi256_si128(_mm256_cvtps_epi32(t)), q32hi = _mm256_extracti128_si256(_mm256_cvtps_epi32(t), 1);
    const __m128i q16 = _mm_packs_epi32(q32lo, q32hi);  // values are within ±127: the saturating packs are exact
    _mm_storel_epi64(reinterpret_cast<__m128i*>(d + i), _mm_packs_epi16(q16, q16));
  }
  for (; i < n; i++) d[i] = static_cast<int8_t>(std::round(s[i] * id));
  return dd;
}

KVAVX2 void quant_q8_avx2(int8_t* d, uint16_t* sc, const float* s, int64_t n, int64_t group) {
  for (int64_t g = 0; g < n; g += group) *sc++ = f32_to_f16(quant_group_avx2(d + g, s + g, group));
}

KVAVX2 void cvt_f16_avx2(float* d, const uint16_t* s, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(d + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i))));
  for (; i < n; i++) d[i] = _cvtsh_ss(s[i]);
}

KVAVX2 void cvt_q8_avx2(float* d, const int8_t* s, const uint16_t* sc, int64_t n, int64_t group) {
  if (group % 8) return cvt_q8_scalar(d, s, sc, n, group);
  for (int64_t g = 0; g < n; g += group, sc++) {
    const __m256 f = _mm256_set1_ps(_cvtsh_ss(*sc));
    for (int64_t i = g; i < g + group; i += 8) {
      const __m256 v = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(s + i))));
      _mm256_storeu_ps(d + i, _mm256_mul_ps(v, f));
    }
  }
}

// Eight horizontal sums at once: lane j of the result is Σ a[j].
KVAVX2 inline __m256 hsum8(const __m256* a) {
  const __m256 h0123 = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
  const __m256 h4567 = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
  // h0123 = [Σ a0..a3 over lanes 0-3 | over lanes 4-7], likewise h4567 for a4..a7
  return _mm256_add_ps(_mm256_permute2f128_ps(h0123, h4567, 0x20), _mm256_permute2f128_ps(h0123, h4567, 0x31));
}

// 8 values of a packed f32 row, or of an f16 row read in place from the cache (decode: no pack, see run_item).
KVAVX2 inline __m256 ld8(const float* p) { return _mm256_loadu_ps(p); }
KVAVX2 inline __m256 ld8(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }

template <int NC, class E>
KVAVX2 void pv_slab_avx2(float* o, float corr, const float* p, const E* V, int64_t hdp, int64_t n,
                         const uint8_t* const* pl = nullptr, int64_t npl = 0) {
  __m256 acc[NC];
  const __m256 cv = _mm256_set1_ps(corr);
#pragma GCC unroll 8
  for (int c = 0; c < NC; c++) acc[c] = _mm256_mul_ps(_mm256_loadu_ps(o + 8 * c), cv);
  for (int64_t j = 0; j < n; j++) {
    const __m256 w = _mm256_set1_ps(p[j]);
    const E* v = V + j * hdp;
    if (j < npl) _mm_prefetch(reinterpret_cast<const char*>(pl[j]), _MM_HINT_T0);
#pragma GCC unroll 8
    for (int c = 0; c < NC; c++) acc[c] = _mm256_fmadd_ps(w, ld8(v + 8 * c), acc[c]);
  }
#pragma GCC unroll 8
  for (int c = 0; c < NC; c++) _mm256_storeu_ps(o + 8 * c, acc[c]);
}

// E = float: packed f32 rows (hdp apart); E = uint16_t: f16 rows of the cache itself (hdp = headDim, a multiple of 8).
// pl[0 … npl): cache lines to request while computing (the next chunk's), a few per inner step: a burst of
// them at the chunk's start stalled the loads behind the full miss buffers.
template <class E>
KVAVX2 void narrow_avx2_t(const float* q, const E* Kp, const E* Vp, int64_t hdp, int64_t n, float* sc, float* m,
                          float* l, float* o, const uint8_t* const* pl = nullptr, int64_t npl = 0) {
  int64_t pi = 0;
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    __m256 acc[8];
#pragma GCC unroll 8
    for (int jj = 0; jj < 8; jj++) acc[jj] = _mm256_setzero_ps();
    const E* k = Kp + j * hdp;
    for (int64_t c = 0; c < hdp; c += 8) {
      const __m256 qc = _mm256_loadu_ps(q + c);
      if (pi < npl) {
        _mm_prefetch(reinterpret_cast<const char*>(pl[pi]), _MM_HINT_T0);
        if (pi + 1 < npl) _mm_prefetch(reinterpret_cast<const char*>(pl[pi + 1]), _MM_HINT_T0);
        if (pi + 2 < npl) _mm_prefetch(reinterpret_cast<const char*>(pl[pi + 2]), _MM_HINT_T0);
        pi += 3;
      }
#pragma GCC unroll 8
      for (int jj = 0; jj < 8; jj++) acc[jj] = _mm256_fmadd_ps(qc, ld8(k + jj * hdp + c), acc[jj]);
    }
    _mm256_storeu_ps(sc + j, hsum8(acc));
  }
  for (; j < n; j++) {
    __m256 acc = _mm256_setzero_ps();
    for (int64_t c = 0; c < hdp; c += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + c), ld8(Kp + j * hdp + c), acc);
    sc[j] = hsum256(acc);
  }
  float cmax = -INFINITY;
  for (int64_t i = 0; i < n; i++) cmax = std::max(cmax, sc[i]);
  const float mo = *m, mn = std::max(mo, cmax);
  const float corr = mo == -INFINITY ? 0.f : std::exp(mo - mn);
  const __m256 mv = _mm256_set1_ps(mn);
  __m256 sum = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(sc + i), mv));
    sum = _mm256_add_ps(sum, e);
    _mm256_storeu_ps(sc + i, e);
  }
  float s = hsum256(sum);
  for (; i < n; i++) s += (sc[i] = std::exp(sc[i] - mn));
  *m = mn;
  *l = *l * corr + s;
  for (int64_t c0 = 0; c0 < hdp; c0 += 64) {
    const int64_t np = std::min(n, std::max<int64_t>(0, npl - pi));
    const uint8_t* const* pp = pl + pi;
    pi += np;
    switch (std::min<int64_t>(8, (hdp - c0) / 8)) {
      case 1: pv_slab_avx2<1, E>(o + c0, corr, sc, Vp + c0, hdp, n, pp, np); break;
      case 2: pv_slab_avx2<2, E>(o + c0, corr, sc, Vp + c0, hdp, n, pp, np); break;
      case 3: pv_slab_avx2<3, E>(o + c0, corr, sc, Vp + c0, hdp, n, pp, np); break;
      case 4: pv_slab_avx2<4, E>(o + c0, corr, sc, Vp + c0, hdp, n, pp, np); break;
      case 5: pv_slab_avx2<5, E>(o + c0, corr, sc, Vp + c0, hdp, n, pp, np); break;
      case 6: pv_slab_avx2<6, E>(o + c0, corr, sc, Vp + c0, hdp, n, pp, np); break;
      case 7: pv_slab_avx2<7, E>(o + c0, corr, sc, Vp + c0, hdp, n, pp, np); break;
      default: pv_slab_avx2<8, E>(o + c0, corr, sc, Vp + c0, hdp, n, pp, np); break;
    }
  }
}

KVAVX2 void narrow_avx2(const float* q, const float* Kp, const float* Vp, int64_t hdp, int64_t n, float* sc, float* m,
                        float* l, float* o) {
  narrow_avx2_t<float>(q, Kp, Vp, hdp, n, sc, m, l, o);
}
KVAVX2 void narrow_f16_avx2(const float* q, const uint16_t* Kh, const uint16_t* Vh, int64_t hd, int64_t n, float* sc,
                            float* m, float* l, float* o, const uint8_t* const* pl, int64_t npl) {
  narrow_avx2_t<uint16_t>(q, Kh, Vh, hd, n, sc, m, l, o, pl, npl);
}

// The wide tile on AVX2: R = 8·RV rows, 8 accumulators (16 ymm registers in all).
template <int RV>
KVAVX2 void wide_avx2(const Wide& w, const float* Kp, const float* Vp, int64_t n, int64_t c0, bool mask) {
  constexpr int R = 8 * RV, JB = 8 / RV, ID = 8 / RV;
  const int64_t hd = w.hd, hdp = w.hdp, npad = (n + JB - 1) / JB * JB;
  int64_t pfi = 0;
  const __m256 ninf = _mm256_set1_ps(-INFINITY);
  __m256 cmax[RV];
  __m256i limv[RV];
#pragma GCC unroll 2
  for (int rv = 0; rv < RV; rv++) {
    cmax[rv] = ninf;
    limv[rv] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w.lim + 8 * rv));
  }
  for (int64_t jb = 0; jb < npad; jb += JB) {
    __m256 acc[RV][JB];
#pragma GCC unroll 8
    for (int jj = 0; jj < JB; jj++)
#pragma GCC unroll 2
      for (int rv = 0; rv < RV; rv++) acc[rv][jj] = _mm256_setzero_ps();
    const float* k = Kp + jb * hdp;
    for (int64_t i = 0; i < hd; i++) {
      if (pfi < w.npf) _mm_prefetch(reinterpret_cast<const char*>(w.pf[pfi++]), _MM_HINT_T0);
      __m256 qt[RV];
#pragma GCC unroll 2
      for (int rv = 0; rv < RV; rv++) qt[rv] = _mm256_loadu_ps(w.QT + i * R + 8 * rv);
#pragma GCC unroll 8
      for (int jj = 0; jj < JB; jj++) {
        const __m256 kb = _mm256_broadcast_ss(k + jj * hdp + i);
#pragma GCC unroll 2
        for (int rv = 0; rv < RV; rv++) acc[rv][jj] = _mm256_fmadd_ps(kb, qt[rv], acc[rv][jj]);
      }
    }
    if (mask) {
#pragma GCC unroll 8
      for (int jj = 0; jj < JB; jj++) {
        const __m256i pos = _mm256_set1_epi32(static_cast<int>(c0 + jb + jj));
#pragma GCC unroll 2
        for (int rv = 0; rv < RV; rv++)
          acc[rv][jj] = _mm256_blendv_ps(acc[rv][jj], ninf, _mm256_castsi256_ps(_mm256_cmpgt_epi32(pos, limv[rv])));
      }
    }
#pragma GCC unroll 8
    for (int jj = 0; jj < JB; jj++)
#pragma GCC unroll 2
      for (int rv = 0; rv < RV; rv++) _mm256_storeu_ps(w.ST + (jb + jj) * R + 8 * rv, acc[rv][jj]);
    const int64_t real = std::min<int64_t>(JB, n - jb);
#pragma GCC unroll 8
    for (int jj = 0; jj < JB; jj++)
      if (jj < real)
#pragma GCC unroll 2
        for (int rv = 0; rv < RV; rv++) cmax[rv] = _mm256_max_ps(cmax[rv], acc[rv][jj]);
  }
  for (; pfi < w.npf; pfi++) _mm_prefetch(reinterpret_cast<const char*>(w.pf[pfi]), _MM_HINT_T0);
  __m256 msub[RV], sum[RV];
#pragma GCC unroll 2
  for (int rv = 0; rv < RV; rv++) {
    const __m256 mo = _mm256_loadu_ps(w.m + 8 * rv), mn = _mm256_max_ps(mo, cmax[rv]);
    msub[rv] = _mm256_and_ps(mn, _mm256_cmp_ps(mn, ninf, _CMP_NEQ_OQ));
    _mm256_storeu_ps(w.corr + 8 * rv, exp_z256(_mm256_sub_ps(mo, msub[rv])));
    _mm256_storeu_ps(w.m + 8 * rv, mn);
    sum[rv] = _mm256_setzero_ps();
  }
  for (int64_t j = 0; j < n; j++) {
#pragma GCC unroll 2
    for (int rv = 0; rv < RV; rv++) {
      float* st = w.ST + j * R + 8 * rv;
      const __m256 p = exp_z256(_mm256_sub_ps(_mm256_loadu_ps(st), msub[rv]));
      _mm256_storeu_ps(st, p);
      sum[rv] = _mm256_add_ps(sum[rv], p);
    }
  }
#pragma GCC unroll 2
  for (int rv = 0; rv < RV; rv++)
    _mm256_storeu_ps(w.l + 8 * rv, _mm256_fmadd_ps(_mm256_loadu_ps(w.l + 8 * rv), _mm256_loadu_ps(w.corr + 8 * rv), sum[rv]));
  __m256 cv[RV];
#pragma GCC unroll 2
  for (int rv = 0; rv < RV; rv++) cv[rv] = _mm256_loadu_ps(w.corr + 8 * rv);
  for (int64_t ib = 0; ib < hdp; ib += ID) {
    __m256 acc[ID][RV];
    float* ot = w.OT + ib * R;
#pragma GCC unroll 8
    for (int ii = 0; ii < ID; ii++)
#pragma GCC unroll 2
      for (int rv = 0; rv < RV; rv++) acc[ii][rv] = _mm256_mul_ps(_mm256_loadu_ps(ot + ii * R + 8 * rv), cv[rv]);
    const float* v = Vp + ib;
    for (int64_t j = 0; j < n; j++) {
      __m256 pt[RV];
#pragma GCC unroll 2
      for (int rv = 0; rv < RV; rv++) pt[rv] = _mm256_loadu_ps(w.ST + j * R + 8 * rv);
#pragma GCC unroll 8
      for (int ii = 0; ii < ID; ii++) {
        const __m256 vb = _mm256_broadcast_ss(v + j * hdp + ii);
#pragma GCC unroll 2
        for (int rv = 0; rv < RV; rv++) acc[ii][rv] = _mm256_fmadd_ps(vb, pt[rv], acc[ii][rv]);
      }
    }
#pragma GCC unroll 8
    for (int ii = 0; ii < ID; ii++)
#pragma GCC unroll 2
      for (int rv = 0; rv < RV; rv++) _mm256_storeu_ps(ot + ii * R + 8 * rv, acc[ii][rv]);
  }
}

#endif  // XV_X86

const Kern kScalar = {1, store_f16_scalar, quant_q8_scalar, cvt_f16_scalar, cvt_q8_scalar, narrow_scalar, {nullptr, nullptr}, nullptr};
#if XV_X86
const Kern kAvx2 = {8, store_f16_avx2, quant_q8_avx2, cvt_f16_avx2, cvt_q8_avx2, narrow_avx2, {wide_avx2<1>, wide_avx2<2>}, narrow_f16_avx2};
const Kern k512 = {16, store_f16_512, quant_q8_512, cvt_f16_512, cvt_q8_512, narrow_512, {wide_512<1>, wide_512<2>}, nullptr};
#endif

#if XV_ARM  // src/arm/kv_neon.cc
const Kern kNeon = {4, arm::kv_store_f16, arm::kv_quant_q8, arm::kv_cvt_f16, arm::kv_cvt_q8, arm::kv_narrow, {arm::kv_wide1, arm::kv_wide2}, nullptr};
#endif

const Kern& kernels_for(Isa isa) {
#if XV_X86
  if (isa == Isa::Avx512) return k512;
  if (isa == Isa::Avx2) return kAvx2;
#elif XV_ARM
  if (isa >= Isa::Neon) return kNeon;
#else
  (void)isa;
#endif
  return kScalar;
}

// ---------------------------------------------------------------------------------------------------------------
// The ISA-independent driver.

// Keys (isV 0) or values (isV 1) at positions s0 … s0+n−1 of kv head h as f32 rows of hdp floats (columns past
// headDim zero), then zero rows up to npad. Walks the block table: a chunk may cross blocks.
void pack(const PagedKv& kv, const Kern& K, int isV, int64_t h, int64_t s0, int64_t n, int64_t npad, float* dst,
          int64_t hdp) {
  const int64_t B = kv.blockSize, hd = kv.headDim;
  for (int64_t j = 0; j < n;) {
    const int64_t s = s0 + j, r = s % B, cnt = std::min(B - r, n - j);
    const uint8_t* reg = region(kv, kv.table[s / B], isV);
    const int64_t el = (h * B + r) * hd;  // first value, counted inside the region
    // one run when rows are not padded, else row by row
    const int64_t runs = hdp == hd ? 1 : cnt, len = hdp == hd ? cnt * hd : hd;
    for (int64_t i = 0; i < runs; i++) {
      float* d = dst + (j + i) * hdp;
      const int64_t e = el + i * hd;
      switch (kv.type) {
        case KvType::F32: std::memcpy(d, reinterpret_cast<const float*>(reg) + e, len * sizeof(float)); break;
        case KvType::F16: K.cvt_f16(d, reinterpret_cast<const uint16_t*>(reg) + e, len); break;
        case KvType::Q8:
          K.cvt_q8(d, reinterpret_cast<const int8_t*>(reg) + e,
                   reinterpret_cast<const uint16_t*>(reg + kv.scaleOffset) + e / kv.group, len, kv.group);
          break;
      }
      if (hdp != hd) std::memset(d + hd, 0, (hdp - hd) * sizeof(float));
    }
    j += cnt;
  }
  if (npad > n) std::memset(dst + n * hdp, 0, (npad - n) * hdp * sizeof(float));
}

// Asks for the cache lines of keys and values s0 … s0+n−1 of kv head h (and their q8_0 scales), so the next
// chunk streams in while this one is computed. Decode reads every chunk exactly once, from DRAM, and a chunk is
// only blockSize · headDim values long before it jumps to another block: too short a run for the hardware
// prefetcher to get ahead.
// With `lines`, records the addresses (for the wide kernel to request one at a time) and returns their count.
int64_t prefetch(const PagedKv& kv, int64_t h, int64_t s0, int64_t n, const uint8_t** lines = nullptr) {
  int64_t nl = 0;
  auto want = [&](const uint8_t* p) {
    if (lines) lines[nl++] = p;
    else __builtin_prefetch(p, 0, 3);
  };
  const int64_t B = kv.blockSize, hd = kv.headDim;
  const int64_t esz = kv.type == KvType::F32 ? 4 : kv.type == KvType::F16 ? 2 : 1;
  for (int64_t j = 0; j < n;) {
    const int64_t s = s0 + j, r = s % B, cnt = std::min(B - r, n - j);
    const int64_t el = (h * B + r) * hd;
    for (int isV = 0; isV < 2; isV++) {
      const uint8_t* reg = region(kv, kv.table[s / B], isV);
      const uint8_t* p = reg + el * esz;
      for (int64_t o = 0; o < cnt * hd * esz; o += 64) want(p + o);
      if (kv.type == KvType::Q8) {
        const uint8_t* sp = reg + kv.scaleOffset + (el / kv.group) * 2;
        for (int64_t o = 0; o < cnt * (hd / kv.group) * 2; o += 64) want(sp + o);
      }
    }
    j += cnt;
  }
  return nl;
}

// Most cache lines prefetch() records for one chunk: per key and K / V, its values (and q8_0 scales), with a
// partial line at each end of a run.
int64_t max_lines(int64_t hd) { return 2 * kChunk * ((hd * 4 + 63) / 64 + 2 + 2 * hd / 64 + 2) + 8; }

// 64-byte aligned floats inside a growable vector.
float* aligned(std::vector<float>& v, size_t n) {
  if (v.size() < n + 16) v.resize(n + 16);
  const uintptr_t p = reinterpret_cast<uintptr_t>(v.data());
  return reinterpret_cast<float*>((p + 63) & ~uintptr_t(63));
}

inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

struct Plan {
  const PagedKv* kv;
  const PagedAttnArgs* a;
  const Kern* K;
  int64_t g, rowsPerKv;  // query heads per kv head; rows (token, head in group) per kv head = T·g
  int64_t hd, hdp;
  int rv;                // 0: narrow kernel, else the wide kernel with R = lanes·rv rows per tile
  int64_t R;             // rows per tile (wide) or per item (narrow)
  int64_t itemRows;      // rows per work item: wide tiles of one item share each packed chunk
  int64_t nitems, nsplit, keysPerSplit;  // items per kv head; key ranges
  float* partial;        // nsplit > 1: per (kv head, item, split) and row: m, l, o[hd]
};

int64_t thread_floats(int64_t hdp) {
  // Kp, Vp (kChunk × hdp); Q rows / Qᵀ and O rows / Oᵀ (kMaxRows × hdp each); Sᵀ (kChunk × 32); narrow scores
  return 2 * kChunk * hdp + 2 * kMaxRows * hdp + kChunk * 32 + kChunk + 64;
}

// Rows are numbered ρ = t·g + hh within a kv head (token-major), head = kvh·g + hh. An item holds rows
// [r0, r0 + nr): one narrow group, or up to kMaxRows / R wide tiles of R rows, all fed from one packed chunk.
void run_item(const Plan& P, int64_t kvh, int64_t item, int64_t split, float* scratch, const uint8_t** lines) {
  const PagedKv& kv = *P.kv;
  const PagedAttnArgs& a = *P.a;
  const Kern& K = *P.K;
  const int64_t g = P.g, hd = P.hd, hdp = P.hdp, R = P.R;
  const int64_t r0 = item * P.itemRows, nr = std::min(P.itemRows, P.rowsPerKv - r0);
  const int64_t k0 = split * P.keysPerSplit;
  const int64_t kend = std::min(k0 + P.keysPerSplit, a.past + (r0 + nr - 1) / g + 1);  // past every row's limit: skipped

  float* Kp = scratch;
  float* Vp = Kp + kChunk * hdp;
  float* Q = Vp + kChunk * hdp;        // narrow: (nr, hdp) rows; wide: per tile Qᵀ (hd, R), hdp · R apart
  float* O = Q + kMaxRows * hdp;       // narrow: (nr, hdp) rows; wide: per tile Oᵀ (hdp, R)
  float* ST = O + kMaxRows * hdp;      // wide: Sᵀ (kChunk, R), reused by each tile
  float* sc = ST + kChunk * 32;        // narrow: one row's scores
  alignas(64) float m[kMaxRows], l[kMaxRows], corr[kMaxRows];
  alignas(64) int32_t lim[kMaxRows];
  const float* qp[kMaxRows];
  float* op[kMaxRows];

  const int64_t ntile = P.rv ? (nr + R - 1) / R : 1;
  const int64_t rows = P.rv ? ntile * R : nr;  // state rows (wide: padded to whole tiles)
  for (int64_t r = 0; r < rows; r++) {
    m[r] = -INFINITY;
    l[r] = 0.f;
    if (r < nr) {
      const int64_t rho = r0 + r, t = rho / g, off = (t * a.nHeads + kvh * g + rho % g) * hd;
      lim[r] = static_cast<int32_t>(a.past + t);
      qp[r] = a.q + off;
      op[r] = a.out + off;
    } else {
      lim[r] = INT32_MAX;  // padding lanes: never masked, their q is 0
    }
  }
  std::memset(O, 0, rows * hdp * sizeof(float));
  if (P.rv) {
    for (int64_t tl = 0; tl < ntile; tl++) {
      float* qt = Q + tl * hdp * R;
      for (int64_t rr = 0; rr < R; rr++) {
        const int64_t r = tl * R + rr;
        if (r < nr) {
          for (int64_t i = 0; i < hd; i++) qt[i * R + rr] = qp[r][i] * a.scale;
        } else {
          for (int64_t i = 0; i < hd; i++) qt[i * R + rr] = 0.f;
        }
      }
    }
  } else {
    for (int64_t r = 0; r < nr; r++) {
      for (int64_t i = 0; i < hd; i++) Q[r * hdp + i] = qp[r][i] * a.scale;
      for (int64_t i = hd; i < hdp; i++) Q[r * hdp + i] = 0.f;
    }
  }

  // Decode with one or two rows per kv head on an f16 cache (AVX2): the narrow kernel reads each block piece's
  // f16 keys and values in place. Packing them to f32 first stored and reloaded 2 · kChunk · headDim floats per
  // chunk for a single use, and that bounded the kernel at ~9 GB/s of cache per core (Zen 3, S = 640, hd 128); the
  // conversions are the same, so the results are bit-identical.
  const bool direct = !P.rv && nr <= 2 && kv.type == KvType::F16 && K.narrow_f16 && hdp == hd;
  for (int64_t c0 = k0; c0 < kend && direct; c0 += kChunk) {
    const int64_t n = std::min(kChunk, kend - c0);
    const int64_t nnext = std::max<int64_t>(0, std::min(kChunk, kend - c0 - n));
    const int64_t nl = nnext > 0 ? prefetch(kv, kvh, c0 + n, nnext, lines) : 0;  // requested inside the kernel
    const int64_t B = kv.blockSize;
    for (int64_t j = 0; j < n;) {
      const int64_t s = c0 + j, cnt = std::min(B - s % B, n - j), blk = kv.table[s / B];
      const int64_t el = (kvh * B + s % B) * hd;
      const uint16_t* Kh = reinterpret_cast<const uint16_t*>(region(kv, blk, 0)) + el;
      const uint16_t* Vh = reinterpret_cast<const uint16_t*>(region(kv, blk, 1)) + el;
      for (int64_t r = 0; r < nr; r++) {
        const int64_t nv = std::min<int64_t>(cnt, lim[r] + 1 - s);  // causal: a prefix of the piece
        // row 0 requests the piece's share of the next chunk's lines
        const int64_t pf0 = r ? 0 : nl * j / n, pf1 = r ? 0 : nl * (j + cnt) / n;
        if (nv > 0) K.narrow_f16(Q + r * hdp, Kh, Vh, hd, nv, sc, &m[r], &l[r], O + r * hdp, lines + pf0, pf1 - pf0);
      }
      j += cnt;
    }
  }
  for (int64_t c0 = k0; c0 < kend && !direct; c0 += kChunk) {
    const int64_t n = std::min(kChunk, kend - c0);
    const int64_t nnext = std::max<int64_t>(0, std::min(kChunk, kend - c0 - n));
    int64_t nl = 0;
    if (nnext > 0) {
      if (P.rv) nl = prefetch(kv, kvh, c0 + n, nnext, lines);  // requested from inside the tiles below
      else prefetch(kv, kvh, c0 + n, nnext);
    }
    pack(kv, K, 0, kvh, c0, n, P.rv ? round_up(n, 16) : n, Kp, hdp);
    pack(kv, K, 1, kvh, c0, n, n, Vp, hdp);
    if (P.rv) {
      // the tiles this chunk reaches (a tile is skipped once the chunk is past all its limits; later tiles
      // have later limits) share out the prefetches
      int64_t t0 = 0;
      while (t0 < ntile && c0 > lim[std::min(nr, (t0 + 1) * R) - 1]) t0++;
      for (int64_t tl = t0; tl < ntile; tl++) {
        const int64_t rb = tl * R;
        const int64_t pf0 = nl * (tl - t0) / (ntile - t0), pf1 = nl * (tl - t0 + 1) / (ntile - t0);
        const Wide w{Q + tl * hdp * R, O + tl * hdp * R, ST, m + rb, l + rb, corr + rb, lim + rb, hd, hdp,
                     lines + pf0, pf1 - pf0};
        K.wide[P.rv - 1](w, Kp, Vp, n, c0, c0 + n - 1 > lim[rb]);
      }
    } else {
      for (int64_t r = 0; r < nr; r++) {
        const int64_t nv = std::min<int64_t>(n, lim[r] + 1 - c0);  // causal: a prefix of the chunk
        if (nv > 0) K.narrow(Q + r * hdp, Kp, Vp, hdp, nv, sc, &m[r], &l[r], O + r * hdp);
      }
    }
  }

  // Write out: o / l, or this split's (m, l, o) for the merge.
  for (int64_t r = 0; r < nr; r++) {
    const float* o = P.rv ? O + (r / R) * hdp * R + r % R : O + r * hdp;
    const int64_t os = P.rv ? R : 1;  // wide: Oᵀ, one row is a column
    if (P.nsplit == 1) {
      const float inv = 1.f / l[r];  // every row sees key 0, so l ≥ 1
      for (int64_t i = 0; i < hd; i++) op[r][i] = o[i * os] * inv;
    } else {
      float* p = P.partial + (((kvh * P.nitems + item) * P.nsplit + split) * P.itemRows + r) * (hd + 2);
      p[0] = m[r];
      p[1] = l[r];
      for (int64_t i = 0; i < hd; i++) p[2 + i] = o[i * os];
    }
  }
}

// Merges the splits of one (kv head, item): out = Σ_s e^(m_s − M) o_s / Σ_s e^(m_s − M) l_s.
void merge(const Plan& P, int64_t kvh, int64_t item) {
  const PagedAttnArgs& a = *P.a;
  const int64_t g = P.g, hd = P.hd, r0 = item * P.itemRows, nr = std::min(P.itemRows, P.rowsPerKv - r0);
  for (int64_t r = 0; r < nr; r++) {
    auto part = [&](int64_t s) { return P.partial + (((kvh * P.nitems + item) * P.nsplit + s) * P.itemRows + r) * (hd + 2); };
    float M = -INFINITY;
    for (int64_t s = 0; s < P.nsplit; s++) M = std::max(M, part(s)[0]);
    const int64_t rho = r0 + r, t = rho / g, head = kvh * g + rho % g;
    float* out = a.out + (t * a.nHeads + head) * hd;
    for (int64_t i = 0; i < hd; i++) out[i] = 0.f;
    float L = 0.f;
    for (int64_t s = 0; s < P.nsplit; s++) {
      const float* p = part(s);
      if (p[1] == 0.f) continue;  // no key of this split is visible to the row
      const float f = std::exp(p[0] - M);
      L += f * p[1];
      for (int64_t i = 0; i < hd; i++) out[i] += f * p[2 + i];
    }
    const float inv = 1.f / L;
    for (int64_t i = 0; i < hd; i++) out[i] *= inv;
  }
}

}  // namespace

void kv_write(const PagedKv& kv, const float* k, const float* v, int64_t start, int64_t T, Isa isa, ThreadPool& pool) {
  const Kern& K = kernels_for(isa);
  const int64_t hd = kv.headDim, kvd = kv.nKvHeads * hd, B = kv.blockSize;
  // item i: token i / 2, keys (even) or values (odd)
  auto fn = [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; i++) {
      const int64_t t = i >> 1, pos = start + t, r = pos % B;
      const int isV = static_cast<int>(i & 1);
      const float* src = (isV ? v : k) + t * kvd;
      uint8_t* reg = region(kv, kv.table[pos / B], isV);
      for (int64_t h = 0; h < kv.nKvHeads; h++) {
        const int64_t el = (h * B + r) * hd;
        const float* x = src + h * hd;
        switch (kv.type) {
          case KvType::F32: std::memcpy(reinterpret_cast<float*>(reg) + el, x, hd * sizeof(float)); break;
          case KvType::F16: K.store_f16(reinterpret_cast<uint16_t*>(reg) + el, x, hd); break;
          case KvType::Q8:
            K.quant_q8(reinterpret_cast<int8_t*>(reg) + el, reinterpret_cast<uint16_t*>(reg + kv.scaleOffset) + el / kv.group,
                       x, hd, kv.group);
            break;
        }
      }
    }
  };
  const int64_t n = 2 * T, nt = pool.threads();
  if (nt == 1 || T * kvd < 65536) fn(0, n, 0);
  else pool.parallel_for(n, std::max<int64_t>(1, n / (nt * 4)), fn);
}

void paged_attention(const PagedKv& kv, const PagedAttnArgs& a, Isa isa, ThreadPool& pool, KvScratch& scratch) {
  Plan P{};
  P.kv = &kv;
  P.a = &a;
  P.K = &kernels_for(isa);
  const int lanes = P.K->lanes;
  P.g = a.nHeads / kv.nKvHeads;
  P.rowsPerKv = a.T * P.g;
  P.hd = kv.headDim;
  P.hdp = round_up(P.hd, lanes);
  // The wide tile pays off once it fills a vector of rows; below that, one row at a time.
  if (lanes > 1 && P.K->wide[0] && P.rowsPerKv >= lanes) P.rv = P.rowsPerKv >= 2 * lanes ? 2 : 1;
  P.R = P.rv ? lanes * P.rv : std::min<int64_t>(P.rowsPerKv, 16);
  const int nt = pool.threads();
  const int64_t S = a.past + a.T, chunks = (S + kChunk - 1) / kChunk;
  // Wide items take up to kMaxRows rows (several tiles per packed chunk: each item re-reads the head's whole
  // K / V, from L3 once it outgrows L2), but no fewer than ~4 items per thread.
  P.itemRows = P.R;
  if (P.rv) {
    while (P.itemRows * 2 <= kMaxRows && kv.nKvHeads * ((P.rowsPerKv + 2 * P.itemRows - 1) / (2 * P.itemRows)) >= 4 * nt)
      P.itemRows *= 2;
  }
  P.nitems = (P.rowsPerKv + P.itemRows - 1) / P.itemRows;
  const int64_t base = kv.nKvHeads * P.nitems;
  // Few items per thread (decode with few kv heads): split the keys too, each split at least 4 chunks.
  P.nsplit = 1;
  if (nt > 1 && base < 4 * nt) P.nsplit = std::max<int64_t>(1, std::min((4 * nt + base - 1) / base, chunks / 4));
  P.keysPerSplit = (chunks + P.nsplit - 1) / P.nsplit * kChunk;
  P.nsplit = (S + P.keysPerSplit - 1) / P.keysPerSplit;

  const int64_t per = thread_floats(P.hdp);
  if (static_cast<int>(scratch.thread.size()) < nt) scratch.thread.resize(nt);
  if (static_cast<int>(scratch.lines.size()) < nt) scratch.lines.resize(nt);
  std::vector<float*> bufs(nt);
  for (int i = 0; i < nt; i++) {
    bufs[i] = aligned(scratch.thread[i], per);
    if (static_cast<int64_t>(scratch.lines[i].size()) < max_lines(P.hd)) scratch.lines[i].resize(max_lines(P.hd));
  }
  if (P.nsplit > 1) P.partial = aligned(scratch.partial, base * P.nsplit * P.itemRows * (P.hd + 2));

  // Item i: heaviest first (the last rows see the most keys), then kv head, then split.
  const int64_t items = base * P.nsplit;
  auto fn = [&](int64_t b, int64_t e, int tid) {
    for (int64_t i = b; i < e; i++) {
      const int64_t it = P.nitems - 1 - i / (kv.nKvHeads * P.nsplit), rest = i % (kv.nKvHeads * P.nsplit);
      run_item(P, rest / P.nsplit, it, rest % P.nsplit, bufs[tid], scratch.lines[tid].data());
    }
  };
  // Tiny calls (short decode) are not worth waking the pool.
  const bool serial = nt == 1 || a.nHeads * a.T * S * P.hd < 65536;
  if (serial) fn(0, items, 0);
  else pool.parallel_for(items, 1, fn);
  if (P.nsplit > 1) {
    for (int64_t kvh = 0; kvh < kv.nKvHeads; kvh++)
      for (int64_t it = 0; it < P.nitems; it++) merge(P, kvh, it);
  }
}

}  // namespace xv
