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

void row_generic(const AttnArgs& a, int64_t t, int64_t h, float* scores, bool avx2) {
#if XV_X86
  auto dot = avx2 ? dot_256 : dot_scalar;
  auto axpy = avx2 ? axpy_256 : axpy_scalar;
#else
  (void)avx2;
  auto dot = dot_scalar;
  auto axpy = axpy_scalar;
#endif
  const int64_t hd = a.headDim, kvStride = a.nKvHeads * hd;
  const int64_t kvh = (h / (a.nHeads / a.nKvHeads)) * hd;
  const int64_t last = a.past + t;  // causal: keys 0 … last
  const float* q = a.q + (t * a.nHeads + h) * hd;
  float* out = a.out + (t * a.nHeads + h) * hd;
  float mx = -INFINITY;
  for (int64_t s = 0; s <= last; s++) {
    if (a.keyMask && a.keyMask[s] == 0) {
      scores[s] = -INFINITY;
      continue;
    }
    const float d = dot(q, a.k + s * kvStride + kvh, hd) * a.scale;
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
    if (wgt != 0.f) axpy(out, wgt, a.v + s * kvStride + kvh, hd);
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
  __m512 o[NCH];
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

T512 void row_512(const AttnArgs& a, int64_t t, int64_t h, float* scores) {
  const int64_t hd = a.headDim, kvStride = a.nKvHeads * hd;
  const int64_t kvh = (h / (a.nHeads / a.nKvHeads)) * hd;
  const int64_t n = a.past + t + 1;  // causal: keys 0 … past + t
  const float* q = a.q + (t * a.nHeads + h) * hd;
  const float* k = a.k + kvh;
  float* out = a.out + (t * a.nHeads + h) * hd;

  // Scores, 4 keys per pass. Masked keys are scored too and overwritten below (cheaper than branching).
  int64_t s = 0;
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
  pv_any(out, scores, a.v + kvh, kvStride, n, hd);
}

#endif  // XV_X86

}  // namespace

void attention_row(const AttnArgs& a, int64_t t, int64_t h, float* scores, Isa isa) {
#if XV_X86
  if (isa == Isa::Avx512) return row_512(a, t, h, scores);
#endif
  row_generic(a, t, h, scores, isa == Isa::Avx2);
}

}  // namespace xv
