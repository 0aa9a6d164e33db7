// One attention row (query token t, head h) over the KV cache: scores, softmax in f32, weighted sum of V.
// The AVX-512 version scores 4 keys at once (4 independent FMA chains instead of one long one per key), takes
// exp 16 lanes at a time, and for headDim ≤ 128 keeps the output row in registers while it sums over V.
#include <cmath>

#include "kernels.h"
#include "vexp.h"
#if XV_X86
#include <immintrin.h>
#endif

#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))
#define TAVX2 __attribute__((target("avx2,fma")))

namespace xv {
namespace {

// --- portable and AVX2: one key at a time ---

float dot_scalar(const float* a, const float* b, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}
void axpy_scalar(float* y, float a, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

#if XV_X86
TAVX2 float dot_256(const float* a, const float* b, int64_t n) {
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  float r = _mm_cvtss_f32(s);
  for (; i < n; i++) r += a[i] * b[i];
  return r;
}
TAVX2 void axpy_256(float* y, float a, const float* x, int64_t n) {
  const __m256 av = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; i++) y[i] += a * x[i];
}

#endif

void row_generic(const AttnArgs& a, int64_t t, int64_t h, const KvView& kv, float* scores, bool avx2) {
#if XV_X86
  auto dot = avx2 ? dot_256 : dot_scalar;
  auto axpy = avx2 ? axpy_256 : axpy_scalar;
#else
  (void)avx2;
  auto dot = dot_scalar;
  auto axpy = axpy_scalar;
#endif
  const int64_t hd = a.headDim, kvStride = kv.stride;
  const int64_t last = a.past + t;  // causal: keys 0 … last
  const float* q = a.q + (t * a.nHeads + h) * hd;
  float* out = a.out + (t * a.nHeads + h) * hd;
  float mx = -INFINITY;
  for (int64_t s = 0; s <= last; s++) {
    if (a.keyMask && a.keyMask[s] == 0) {
      scores[s] = -INFINITY;
      continue;
    }
    const float d = dot(q, kv.k + s * kvStride, hd) * a.scale;
    scores[s] = d;
    if (d > mx) mx = d;
  }
  for (int64_t i = 0; i < hd; i++) out[i] = 0;
  if (mx == -INFINITY) return;  // every key masked (a pad query): zeros, as the reference does
  double sum = 0;
  for (int64_t s = 0; s <= last; s++) {
    const float e = scores[s] == -INFINITY ? 0.f : std::exp(scores[s] - mx);
    scores[s] = e;
    sum += e;
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t s = 0; s <= last; s++) {
    const float wgt = scores[s] * inv;
    if (wgt != 0.f) axpy(out, wgt, kv.v + s * kvStride, hd);
  }
}

// --- AVX-512 ---
#if XV_X86

T512 inline __mmask16 tail_mask(int64_t n) {
  return n >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << n) - 1);
}

// out[0 … hd) = Σ_s p[s] · V[s]; NCH = ceil(hd / 16) ≤ 8 output vectors stay in registers.
template <int NCH>
T512 void pv_regs(float* out, const float* p, const float* v, int64_t kvStride, int64_t n, int64_t hd) {
  __m512 o[NCH];  // every loop over c is unrolled, or GCC keeps o[] on the stack
#pragma GCC unroll 8
  for (int c = 0; c < NCH; c++) o[c] = _mm512_setzero_ps();
  const __mmask16 lastm = tail_mask(hd - 16 * (NCH - 1));
  for (int64_t s = 0; s < n; s++) {
    if (p[s] == 0.f) continue;
    const __m512 w = _mm512_set1_ps(p[s]);
    const float* vs = v + s * kvStride;
#pragma GCC unroll 8
    for (int c = 0; c < NCH - 1; c++) o[c] = _mm512_fmadd_ps(w, _mm512_loadu_ps(vs + 16 * c), o[c]);
    o[NCH - 1] = _mm512_fmadd_ps(w, _mm512_maskz_loadu_ps(lastm, vs + 16 * (NCH - 1)), o[NCH - 1]);
  }
#pragma GCC unroll 8
  for (int c = 0; c < NCH - 1; c++) _mm512_storeu_ps(out + 16 * c, o[c]);
  _mm512_mask_storeu_ps(out + 16 * (NCH - 1), lastm, o[NCH - 1]);
}

T512 void pv_any(float* out, const float* p, const float* v, int64_t kvStride, int64_t n, int64_t hd) {
  switch ((hd + 15) / 16) {
    case 1: return pv_regs<1>(out, p, v, kvStride, n, hd);
    case 2: return pv_regs<2>(out, p, v, kvStride, n, hd);
    case 3: return pv_regs<3>(out, p, v, kvStride, n, hd);
    case 4: return pv_regs<4>(out, p, v, kvStride, n, hd);
    case 5: return pv_regs<5>(out, p, v, kvStride, n, hd);
    case 6: return pv_regs<6>(out, p, v, kvStride, n, hd);
    case 7: return pv_regs<7>(out, p, v, kvStride, n, hd);
    case 8: return pv_regs<8>(out, p, v, kvStride, n, hd);
  }
  // Wider heads: accumulate in memory, 16 lanes at a time.
  for (int64_t i = 0; i < hd; i++) out[i] = 0;
  for (int64_t s = 0; s < n; s++) {
    if (p[s] == 0.f) continue;
    const __m512 w = _mm512_set1_ps(p[s]);
    const float* vs = v + s * kvStride;
    for (int64_t i = 0; i < hd; i += 16) {
      const __mmask16 m = tail_mask(hd - i);
      _mm512_mask_storeu_ps(out + i, m, _mm512_fmadd_ps(w, _mm512_maskz_loadu_ps(m, vs + i), _mm512_maskz_loadu_ps(m, out + i)));
    }
  }
}

// Sixteen horizontal sums at once, arranged so that with
// in[kHsumPos[j]] = acc[j], lane j holds Σ acc[j]. Four levels of shuffle + add (30 ops) instead of sixteen
// separate reductions (~130 ops): with headDim 128 the reductions cost as much as the dot products.
constexpr int kHsumPos[16] = {0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15};

T512 inline __m512 hsum16(const __m512* v) {
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

// Scores of keys [0, 16·⌊n/16⌋), 16 per pass, q held in NCH registers (headDim ≤ 128). Each key row is read
// whole before the next: the rows are kvStride apart (often a multiple of 4 KB), and touching 16 of them per
// 16-float slice would thrash one L1 set. Returns how many keys it scored.
template <int NCH>
T512 int64_t scores16(const float* q, const float* k, int64_t kvStride, int64_t hd, int64_t n, float scale,
                      float* scores) {
  __m512 qv[NCH];
  const __mmask16 lastm = tail_mask(hd - 16 * (NCH - 1));
#pragma GCC unroll 8
  for (int c = 0; c < NCH - 1; c++) qv[c] = _mm512_loadu_ps(q + 16 * c);
  qv[NCH - 1] = _mm512_maskz_loadu_ps(lastm, q + 16 * (NCH - 1));
  const __m512 sc = _mm512_set1_ps(scale);
  int64_t s = 0;
  for (; s + 16 <= n; s += 16) {
    __m512 in[16];
#pragma GCC unroll 16
    for (int j = 0; j < 16; j++) {
      const float* kj = k + (s + j) * kvStride;
      __m512 acc = _mm512_mul_ps(qv[0], NCH == 1 ? _mm512_maskz_loadu_ps(lastm, kj) : _mm512_loadu_ps(kj));
#pragma GCC unroll 8
      for (int c = 1; c < NCH - 1; c++) acc = _mm512_fmadd_ps(qv[c], _mm512_loadu_ps(kj + 16 * c), acc);
      if (NCH > 1) acc = _mm512_fmadd_ps(qv[NCH - 1], _mm512_maskz_loadu_ps(lastm, kj + 16 * (NCH - 1)), acc);
      in[kHsumPos[j]] = acc;
    }
    _mm512_storeu_ps(scores + s, _mm512_mul_ps(hsum16(in), sc));
  }
  return s;
}

T512 int64_t scores16_any(const float* q, const float* k, int64_t kvStride, int64_t hd, int64_t n, float scale,
                          float* scores) {
  switch ((hd + 15) / 16) {
    case 1: return scores16<1>(q, k, kvStride, hd, n, scale, scores);
    case 2: return scores16<2>(q, k, kvStride, hd, n, scale, scores);
    case 3: return scores16<3>(q, k, kvStride, hd, n, scale, scores);
    case 4: return scores16<4>(q, k, kvStride, hd, n, scale, scores);
    case 5: return scores16<5>(q, k, kvStride, hd, n, scale, scores);
    case 6: return scores16<6>(q, k, kvStride, hd, n, scale, scores);
    case 7: return scores16<7>(q, k, kvStride, hd, n, scale, scores);
    default: return scores16<8>(q, k, kvStride, hd, n, scale, scores);
  }
}

T512 void row_512(const AttnArgs& a, int64_t t, int64_t h, const KvView& kv, float* scores) {
  const int64_t hd = a.headDim, kvStride = kv.stride;
  const int64_t n = a.past + t + 1;  // causal: keys 0 … past + t
  const float* q = a.q + (t * a.nHeads + h) * hd;
  const float* k = kv.k;
  float* out = a.out + (t * a.nHeads + h) * hd;

  // Scores, 16 keys per pass, then 4, then 1. Masked keys are scored too and overwritten below (cheaper than
  // branching).
  int64_t s = 0;
  if (hd <= 128) s = scores16_any(q, k, kvStride, hd, n, a.scale, scores);
  for (; s + 4 <= n; s += 4) {
    __m512 c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0;
    const float* k0 = k + s * kvStride;
    for (int64_t i = 0; i < hd; i += 16) {
      const __mmask16 m = tail_mask(hd - i);
      const __m512 qv = _mm512_maskz_loadu_ps(m, q + i);
      c0 = _mm512_fmadd_ps(qv, _mm512_maskz_loadu_ps(m, k0 + i), c0);
      c1 = _mm512_fmadd_ps(qv, _mm512_maskz_loadu_ps(m, k0 + kvStride + i), c1);
      c2 = _mm512_fmadd_ps(qv, _mm512_maskz_loadu_ps(m, k0 + 2 * kvStride + i), c2);
      c3 = _mm512_fmadd_ps(qv, _mm512_maskz_loadu_ps(m, k0 + 3 * kvStride + i), c3);
    }
    scores[s] = _mm512_reduce_add_ps(c0) * a.scale;
    scores[s + 1] = _mm512_reduce_add_ps(c1) * a.scale;
    scores[s + 2] = _mm512_reduce_add_ps(c2) * a.scale;
    scores[s + 3] = _mm512_reduce_add_ps(c3) * a.scale;
  }
  for (; s < n; s++) {
    __m512 c0 = _mm512_setzero_ps();
    const float* ks = k + s * kvStride;
    for (int64_t i = 0; i < hd; i += 16) {
      const __mmask16 m = tail_mask(hd - i);
      c0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + i), _mm512_maskz_loadu_ps(m, ks + i), c0);
    }
    scores[s] = _mm512_reduce_add_ps(c0) * a.scale;
  }
  if (a.keyMask) {
    for (int64_t j = 0; j < n; j++)
      if (a.keyMask[j] == 0) scores[j] = -INFINITY;
  }

  // Softmax: max, exp (masked keys → exactly 0), sum.
  __m512 mxv = _mm512_set1_ps(-INFINITY);
  for (int64_t j = 0; j < n; j += 16) {
    const __mmask16 m = tail_mask(n - j);
    mxv = _mm512_mask_max_ps(mxv, m, mxv, _mm512_maskz_loadu_ps(m, scores + j));
  }
  const float mx = _mm512_reduce_max_ps(mxv);
  if (mx == -INFINITY) {  // every key masked (a pad query): zeros, as the reference does
    for (int64_t i = 0; i < hd; i++) out[i] = 0;
    return;
  }
  const __m512 mv = _mm512_set1_ps(mx), ninf = _mm512_set1_ps(-INFINITY);
  __m512 sum = _mm512_setzero_ps();
  for (int64_t j = 0; j < n; j += 16) {
    const __mmask16 m = tail_mask(n - j);
    const __m512 sc = _mm512_maskz_loadu_ps(m, scores + j);
    const __mmask16 live = _mm512_mask_cmp_ps_mask(m, sc, ninf, _CMP_NEQ_OQ);
    const __m512 e = _mm512_maskz_mov_ps(live, exp512(_mm512_sub_ps(sc, mv)));
    sum = _mm512_add_ps(sum, e);
    _mm512_mask_storeu_ps(scores + j, m, e);
  }
  const __m512 inv = _mm512_set1_ps(1.f / _mm512_reduce_add_ps(sum));
  for (int64_t j = 0; j < n; j += 16) {
    const __mmask16 m = tail_mask(n - j);
    _mm512_mask_storeu_ps(scores + j, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, scores + j), inv));
  }
  pv_any(out, scores, kv.v, kvStride, n, hd);
}

#endif  // XV_X86

}  // namespace

void attention_row(const AttnArgs& a, int64_t t, int64_t h, const KvView& kv, float* scores, Isa isa) {
#if XV_X86
  if (isa == Isa::Avx512) return row_512(a, t, h, kv, scores);
#endif
  row_generic(a, t, h, kv, scores, isa == Isa::Avx2);
}

}  // namespace xv
