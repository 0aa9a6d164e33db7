// The small kernels: RMSNorm, RoPE, SiLU·mul, add, and one attention row. They are O(T · dim) (attention
// O(T · past · headDim)), so only the attention dot products get hand-written vector code; the rest is written so
// the compiler vectorizes it, and keeps the reference's accumulation order where that sets the error.
#include <immintrin.h>

#include <cmath>

#include "kernels.h"

#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))
#define TAVX2 __attribute__((target("avx2,fma")))

namespace xv {

void rmsnorm(float* y, const float* x, const float* w, int64_t T, int64_t dim, float eps) {
  for (int64_t t = 0; t < T; t++) {
    const float* xr = x + t * dim;
    float* yr = y + t * dim;
    double ss = 0;  // double, like the TS reference: the sum of squares of a 5k vector loses bits in f32
    for (int64_t i = 0; i < dim; i++) ss += static_cast<double>(xr[i]) * xr[i];
    const float inv = static_cast<float>(1.0 / std::sqrt(ss / dim + eps));
    for (int64_t i = 0; i < dim; i++) yr[i] = xr[i] * inv * w[i];
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
      for (int64_t i = 0; i < half; i++) {
        const float ai = a[i], bi = b[i];
        a[i] = ai * c[i] - bi * s[i];
        b[i] = bi * c[i] + ai * s[i];
      }
    }
  }
}

void silu_mul(float* gate, const float* up, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; i++) {
    const float g = gate[i];
    gate[i] = g / (1.f + std::exp(-g)) * up[i];
  }
}

void add_in_place(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] += x[i];
}

// --- attention ---

static float dot_scalar(const float* a, const float* b, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}
static void axpy_scalar(float* y, float a, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

T512 static float dot_512(const float* a, const float* b, int64_t n) {
  __m512 acc = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc);
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), acc);
  }
  return _mm512_reduce_add_ps(acc);
}
T512 static void axpy_512(float* y, float a, const float* x, int64_t n) {
  const __m512 av = _mm512_set1_ps(a);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(y + i, _mm512_fmadd_ps(av, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i)));
  }
}

TAVX2 static float dot_256(const float* a, const float* b, int64_t n) {
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
TAVX2 static void axpy_256(float* y, float a, const float* x, int64_t n) {
  const __m256 av = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; i++) y[i] += a * x[i];
}

void attention_row(const AttnArgs& a, int64_t t, int64_t h, float* scores, Isa isa) {
  float (*dot)(const float*, const float*, int64_t) =
      isa == Isa::Avx512 ? dot_512 : isa == Isa::Avx2 ? dot_256 : dot_scalar;
  void (*axpy)(float*, float, const float*, int64_t) =
      isa == Isa::Avx512 ? axpy_512 : isa == Isa::Avx2 ? axpy_256 : axpy_scalar;
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

}  // namespace xv
