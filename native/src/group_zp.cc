// GPTQ / AWQ extras for group-quantized weights (src/backend/backend.ts: Weight.mins, Weight.perm, q8_group).
//
// The int4 kernels stay as they are: a desc_act weight's stored columns are a permutation of the input columns, so
// the binding gathers x into stored order once per call (T × cols floats), runs the q4_group kernels on that, and
// then adds the zero-point term: w = q·scale + min, so y[t, r] += Σ_g min[r, g] · Σ_{k ∈ g} x[t, k], with the
// per-group sums of x computed once per token (T × cols / group floats). That term costs 1/group of the matmul.
//
// q8_group (8-bit GPTQ) has its own small f32 kernel: int8 → f32, times the group's scale, fused multiply-add
// with x; AVX-512 and AVX2 variants (per-function target attributes, like matmul_avx512.cc) and a scalar one.
#include <algorithm>

#include "kernels.h"
#if XV_X86
#include <immintrin.h>

#include "hsum_avx.h"
#endif

namespace xv {

void gather_cols(const float* x, int64_t T, int64_t cols, const int32_t* perm, float* out) {
  for (int64_t t = 0; t < T; t++) {
    const float* xt = x + t * cols;
    float* ot = out + t * cols;
    for (int64_t j = 0; j < cols; j++) ot[j] = xt[perm[j]];
  }
}

void group_sums(const float* x, int64_t T, int64_t cols, int64_t group, float* out) {
  const int64_t ng = cols / group;
  for (int64_t t = 0; t < T; t++) {
    for (int64_t g = 0; g < ng; g++) {
      const float* p = x + t * cols + g * group;
      float s = 0.f;
      for (int64_t k = 0; k < group; k++) s += p[k];
      out[t * ng + g] = s;
    }
  }
}

void add_group_mins(const float* mins, int64_t ng, const float* xsums, float* y, int64_t ldy, int64_t T, int64_t r0,
                    int64_t r1) {
  for (int64_t r = r0; r < r1; r++) {
    const float* m = mins + r * ng;
    for (int64_t t = 0; t < T; t++) {
      const float* xs = xsums + t * ng;
      float s = 0.f;
      for (int64_t g = 0; g < ng; g++) s += m[g] * xs[g];
      y[t * ldy + r] += s;
    }
  }
}

// Scalar q8_group: four partial sums per (row, token), the order the TS reference's dot() uses.
void matmul_q8g_rows_scalar(const WView& w, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t T,
                            int64_t r0, int64_t r1) {
  const int8_t* q = static_cast<const int8_t*>(w.data);
  const int64_t cols = w.cols, g = w.group, ng = cols / g;
  for (int64_t r = r0; r < r1; r++) {
    const int8_t* qr = q + r * cols;
    const float* sr = w.scales + r * ng;
    for (int64_t t = 0; t < T; t++) {
      const float* xt = x + t * ldx;
      float s[4] = {0.f, 0.f, 0.f, 0.f};
      for (int64_t k = 0; k < cols; k++) s[k & 3] += static_cast<float>(qr[k]) * sr[k / g] * xt[k];
      y[t * ldy + r] = (s[0] + s[1]) + (s[2] + s[3]);
    }
  }
}

#if XV_X86
#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))
#define T256 __attribute__((target("avx2,fma")))

namespace {
constexpr int64_t TT = 4;  // tokens per register tile: each decoded weight slice serves up to 4 tokens

T512 inline float hsum512(__m512 v) { return _mm512_reduce_add_ps(v); }

}  // namespace

// group % 16 == 0: each 16-wide slice lies in one group, so one broadcast scale per slice.
T512 void matmul_q8g_rows_avx512(const WView& w, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t T,
                                 int64_t r0, int64_t r1) {
  const int8_t* q = static_cast<const int8_t*>(w.data);
  const int64_t cols = w.cols, g = w.group, ng = cols / g;
  for (int64_t r = r0; r < r1; r++) {
    const int8_t* qr = q + r * cols;
    const float* sr = w.scales + r * ng;
    for (int64_t t0 = 0; t0 < T; t0 += TT) {
      const int64_t nt = std::min(TT, T - t0);
      __m512 acc[TT] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
      for (int64_t k = 0; k < cols; k += 16) {
        const __m512 wq = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qr + k))));
        const __m512 wf = _mm512_mul_ps(wq, _mm512_set1_ps(sr[k / g]));
        for (int64_t j = 0; j < nt; j++) acc[j] = _mm512_fmadd_ps(wf, _mm512_loadu_ps(x + (t0 + j) * ldx + k), acc[j]);
      }
      for (int64_t j = 0; j < nt; j++) y[(t0 + j) * ldy + r] = hsum512(acc[j]);
    }
  }
}

// group % 8 == 0.
T256 void matmul_q8g_rows_avx2(const WView& w, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t T,
                               int64_t r0, int64_t r1) {
  const int8_t* q = static_cast<const int8_t*>(w.data);
  const int64_t cols = w.cols, g = w.group, ng = cols / g;
  for (int64_t r = r0; r < r1; r++) {
    const int8_t* qr = q + r * cols;
    const float* sr = w.scales + r * ng;
    for (int64_t t0 = 0; t0 < T; t0 += TT) {
      const int64_t nt = std::min(TT, T - t0);
      __m256 acc[TT] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
      for (int64_t k = 0; k < cols; k += 8) {
        const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(qr + k));
        const __m256 wf = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b)), _mm256_set1_ps(sr[k / g]));
        for (int64_t j = 0; j < nt; j++) acc[j] = _mm256_fmadd_ps(wf, _mm256_loadu_ps(x + (t0 + j) * ldx + k), acc[j]);
      }
      for (int64_t j = 0; j < nt; j++) y[(t0 + j) * ldy + r] = hsum256(acc[j]);
    }
  }
}
#else
void matmul_q8g_rows_avx512(const WView& w, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t T,
                            int64_t r0, int64_t r1) {
  matmul_q8g_rows_scalar(w, x, ldx, y, ldy, T, r0, r1);
}
void matmul_q8g_rows_avx2(const WView& w, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t T,
                          int64_t r0, int64_t r1) {
  matmul_q8g_rows_scalar(w, x, ldx, y, ldy, T, r0, r1);
}
#endif

Q8gKernel q8g_kernel(Isa isa, int64_t group) {
  if (XV_X86 && isa == Isa::Avx512 && group % 16 == 0) return matmul_q8g_rows_avx512;
  if (XV_X86 && isa >= Isa::Avx2 && group % 8 == 0) return matmul_q8g_rows_avx2;
  return matmul_q8g_rows_scalar;
}

}  // namespace xv
