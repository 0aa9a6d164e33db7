// q4_group / q8_group with f32 activations on AVX2: the kernels for weights marked activations "f32" (GPTQ / AWQ
// checkpoints, whose reference is f32 math on the dequantized weights; addon.cc). Groups and columns must be whole
// 32-column units (group_f32_avx2_supports); other shapes keep matmul_avx2.cc's generic tiles.
//
// Decode and short prompts (T < 10), row streams for up to 3 tokens at a time:
// - q4_group: the nibbles are used unsigned (u = stored nibble xor 8 = q + 8), so bytes zero-extend straight from
//   memory into int32 lanes and split with one and / one shift. Σ q·x = Σ u·x − 8·Σ x, the second term one scalar
//   per group (the group sums of x are computed once per call). x is de-interleaved once per call and token into
//   the nibbles' order (per 16 columns: even, then odd), so the weights are never shuffled: per 32 weights two
//   widening loads, two xors, two ands, two shifts, four conversions and four FMAs.
// - q8_group: int8 → f32 per 8, FMA with x.
// - The scale is applied once per group (partial sums in vectors, then acc += scale · partial).
// Prefill (T ≥ 10), a packed GEMM: 16 rows × 256 columns are dequantized (value · scale) into a k-major f32 panel
// (16 KiB, stays in L1), then a 6-token × 16-row register tile (12 accumulators) runs over it with broadcast x:
// 12 FMAs per 2 panel loads and 6 broadcasts, the FMA-bound shape of an f32 GEMM. Partial sums per 256 columns
// go to y and are added up there. Every product is an f32 product of the same dequantized weight and x as the
// TS reference; only the summation order differs (test/native/group-f32.test.ts: ≤ 1e-5 normalized).
#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels.h"
#include "pool.h"

#if XV_X86
#include <immintrin.h>

#include "hsum_avx.h"

#define TAVX2 __attribute__((target("avx2,fma,f16c")))
#define INL inline __attribute__((always_inline))

namespace xv {
namespace {

constexpr int64_t NR = 16;   // rows per packed panel: two ymm of 8
constexpr int64_t MR = 6;    // tokens per register tile
constexpr int64_t KC = 256;  // columns per packed panel: 16 × 256 f32 = 16 KiB


// ---------------------------------------------------------------- decode

// x (cols) → xd in the nibbles' order: per 16 columns (8 bytes of a row) [0, 2, … 14 | 1, 3, … 15], so the 8 bytes
// zero-extended into int32 lanes give the even columns as their low nibbles and the odd ones as their high nibbles.
void deinterleave(const float* x, int64_t cols, float* xd) {
  for (int64_t c = 0; c < cols; c += 16) {
    for (int j = 0; j < 8; j++) {
      xd[c + j] = x[c + 2 * j];
      xd[c + 8 + j] = x[c + 2 * j + 1];
    }
  }
}

// Up to 3 tokens share each decoded unit. acc[t] holds Σ_g scale_g · Σ_{k∈g} u·x; corr[t] Σ_g scale_g · Σ_{k∈g} x.
template <int NT>
TAVX2 void q4_rows(const WView& w, const float* xd, const float* xsum, int64_t cols, float* y, int64_t ldy,
                   int64_t r0, int64_t r1) {
  const int64_t ng = cols / w.group, upg = w.group / 32;
  const __m256i m4 = _mm256_set1_epi32(0x0f), flip = _mm256_set1_epi32(0x88);
  for (int64_t r = r0; r < r1; r++) {
    const uint8_t* row = static_cast<const uint8_t*>(w.data) + r * cols / 2;
    const float* sc = w.scales + r * ng;
    __m256 acc[NT];
    float corr[NT];
    for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps(), corr[t] = 0.f;
    for (int64_t g = 0; g < ng; g++) {
      __m256 pa[NT], pb[NT];
      for (int t = 0; t < NT; t++) pa[t] = _mm256_setzero_ps(), pb[t] = _mm256_setzero_ps();
      for (int64_t u = g * upg; u < (g + 1) * upg; u++) {
        // 8 bytes at a time zero-extended straight from memory into int32 lanes (no byte shuffles): the low
        // nibble (xor 8: unsigned) is an even column, the high one the odd column after it
        const __m256i b0 = _mm256_xor_si256(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(row + 16 * u))), flip);
        const __m256i b1 = _mm256_xor_si256(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(row + 16 * u + 8))), flip);
        const __m256 w0 = _mm256_cvtepi32_ps(_mm256_and_si256(b0, m4));
        const __m256 w1 = _mm256_cvtepi32_ps(_mm256_srli_epi32(b0, 4));
        const __m256 w2 = _mm256_cvtepi32_ps(_mm256_and_si256(b1, m4));
        const __m256 w3 = _mm256_cvtepi32_ps(_mm256_srli_epi32(b1, 4));
        for (int t = 0; t < NT; t++) {
          const float* xu = xd + t * cols + 32 * u;
          pa[t] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(xu), pa[t]);
          pb[t] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(xu + 8), pb[t]);
          pa[t] = _mm256_fmadd_ps(w2, _mm256_loadu_ps(xu + 16), pa[t]);
          pb[t] = _mm256_fmadd_ps(w3, _mm256_loadu_ps(xu + 24), pb[t]);
        }
      }
      const __m256 s = _mm256_set1_ps(sc[g]);
      for (int t = 0; t < NT; t++) {
        acc[t] = _mm256_fmadd_ps(_mm256_add_ps(pa[t], pb[t]), s, acc[t]);
        corr[t] += sc[g] * xsum[t * ng + g];
      }
    }
    for (int t = 0; t < NT; t++) y[t * ldy + r] = hsum256(acc[t]) - 8.f * corr[t];
  }
}

template <int NT>
TAVX2 void q8_rows(const WView& w, const float* x, int64_t cols, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  const int64_t ng = cols / w.group, upg = w.group / 32;
  for (int64_t r = r0; r < r1; r++) {
    const int8_t* row = static_cast<const int8_t*>(w.data) + r * cols;
    const float* sc = w.scales + r * ng;
    __m256 acc[NT];
    for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
    for (int64_t g = 0; g < ng; g++) {
      __m256 pa[NT], pb[NT];
      for (int t = 0; t < NT; t++) pa[t] = _mm256_setzero_ps(), pb[t] = _mm256_setzero_ps();
      for (int64_t u = g * upg; u < (g + 1) * upg; u++) {
        __m256 wv[4];
        for (int i = 0; i < 4; i++)
          wv[i] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(row + 32 * u + 8 * i))));
        for (int t = 0; t < NT; t++) {
          const float* xu = x + t * cols + 32 * u;
          pa[t] = _mm256_fmadd_ps(wv[0], _mm256_loadu_ps(xu), pa[t]);
          pb[t] = _mm256_fmadd_ps(wv[1], _mm256_loadu_ps(xu + 8), pb[t]);
          pa[t] = _mm256_fmadd_ps(wv[2], _mm256_loadu_ps(xu + 16), pa[t]);
          pb[t] = _mm256_fmadd_ps(wv[3], _mm256_loadu_ps(xu + 24), pb[t]);
        }
      }
      const __m256 s = _mm256_set1_ps(sc[g]);
      for (int t = 0; t < NT; t++) acc[t] = _mm256_fmadd_ps(_mm256_add_ps(pa[t], pb[t]), s, acc[t]);
    }
    for (int t = 0; t < NT; t++) y[t * ldy + r] = hsum256(acc[t]);
  }
}

// ---------------------------------------------------------------- prefill

// 32 dequantized values (value · scale, natural column order) of row r, unit u.
TAVX2 INL void unit_values(const WView& w, int64_t r, int64_t u, float* out) {
  const float s = w.scales[r * (w.cols / w.group) + (32 * u) / w.group];
  const __m256 sv = _mm256_set1_ps(s);
  __m128i q[4];  // 4 × 8 int8 values in the low halves
  if (w.fmt == Fmt::Q4G) {
    const uint8_t* p = static_cast<const uint8_t*>(w.data) + r * w.cols / 2 + 16 * u;
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)), m4 = _mm_set1_epi8(0x0f), eight = _mm_set1_epi8(8);
    const __m128i lo = _mm_and_si128(b, m4), hi = _mm_and_si128(_mm_srli_epi16(b, 4), m4);
    // columns 0–15 and 16–31 as two's-complement nibbles widened to int8
    const __m128i v0 = _mm_sub_epi8(_mm_xor_si128(_mm_unpacklo_epi8(lo, hi), eight), eight);
    const __m128i v1 = _mm_sub_epi8(_mm_xor_si128(_mm_unpackhi_epi8(lo, hi), eight), eight);
    q[0] = v0, q[1] = _mm_srli_si128(v0, 8), q[2] = v1, q[3] = _mm_srli_si128(v1, 8);
  } else {
    const int8_t* p = static_cast<const int8_t*>(w.data) + r * w.cols + 32 * u;
    for (int i = 0; i < 4; i++) q[i] = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + 8 * i));
  }
  for (int i = 0; i < 4; i++) _mm256_storeu_ps(out + 8 * i, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q[i])), sv));
}

// Transposes 8 rows of 8 floats (r[i] = row i) into 8 columns (r[j] = column j), in place.
TAVX2 INL void transpose8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xee);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xee);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xee);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xee);
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20), r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20), r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31), r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31), r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

// Panel: rows p0 … p0 + 15 (zeros past r1), columns k0 … k0 + kc − 1, k-major: panel[k · 16 + i]. Per 32-column
// unit and half panel: 8 rows decoded (v), then 8 × 8 transposes store whole vectors.
TAVX2 void pack(const WView& w, int64_t p0, int64_t r1, int64_t k0, int64_t kc, float* panel) {
  alignas(32) float v[8][32];
  for (int64_t u = k0 / 32; u < (k0 + kc) / 32; u++) {
    float* dst = panel + (32 * u - k0) * NR;
    for (int64_t half = 0; half < 2; half++) {
      for (int64_t i = 0; i < 8; i++) {
        const int64_t r = p0 + 8 * half + i;
        if (r < r1) unit_values(w, r, u, v[i]);
        else std::memset(v[i], 0, sizeof v[i]);
      }
      for (int kb = 0; kb < 32; kb += 8) {
        __m256 c[8];
        for (int i = 0; i < 8; i++) c[i] = _mm256_load_ps(v[i] + kb);
        transpose8(c);
        for (int j = 0; j < 8; j++) _mm256_store_ps(dst + (kb + j) * NR + 8 * half, c[j]);
      }
    }
  }
}

// y[t0 + t, p0 … p0 + 15] (+)= Σ_k x[t0 + t, k0 + k] · panel[k]: NT tokens × 16 rows in 2·NT accumulators.
template <int NT>
TAVX2 void tile(const float* panel, int64_t kc, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t nrows, bool add) {
  // every t loop is unrolled: the accumulators must stay in registers (a loop the compiler keeps makes it mirror
  // them on the stack after every FMA)
  __m256 a[NT][2];
#pragma GCC unroll 6
  for (int t = 0; t < NT; t++) a[t][0] = _mm256_setzero_ps(), a[t][1] = _mm256_setzero_ps();
  for (int64_t k = 0; k < kc; k++) {
    const __m256 w0 = _mm256_load_ps(panel + k * NR), w1 = _mm256_load_ps(panel + k * NR + 8);
#pragma GCC unroll 6
    for (int t = 0; t < NT; t++) {
      const __m256 xb = _mm256_broadcast_ss(x + t * ldx + k);
      a[t][0] = _mm256_fmadd_ps(w0, xb, a[t][0]);
      a[t][1] = _mm256_fmadd_ps(w1, xb, a[t][1]);
    }
  }
#pragma GCC unroll 6
  for (int t = 0; t < NT; t++) {
    float* yt = y + t * ldy;
    if (nrows == NR) {
      if (add) a[t][0] = _mm256_add_ps(a[t][0], _mm256_loadu_ps(yt)), a[t][1] = _mm256_add_ps(a[t][1], _mm256_loadu_ps(yt + 8));
      _mm256_storeu_ps(yt, a[t][0]);
      _mm256_storeu_ps(yt + 8, a[t][1]);
    } else {
      alignas(32) float v[NR];
      _mm256_store_ps(v, a[t][0]);
      _mm256_store_ps(v + 8, a[t][1]);
      for (int64_t i = 0; i < nrows; i++) yt[i] = add ? yt[i] + v[i] : v[i];
    }
  }
}

TAVX2 void gemm_rows(const WView& w, const float* x, int64_t T, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  alignas(64) static thread_local float panel[KC * NR];
  const int64_t cols = w.cols;
  for (int64_t p0 = r0; p0 < r1; p0 += NR) {
    const int64_t nrows = std::min<int64_t>(NR, r1 - p0);
    for (int64_t k0 = 0; k0 < cols; k0 += KC) {
      const int64_t kc = std::min<int64_t>(KC, cols - k0);
      pack(w, p0, r1, k0, kc, panel);
      int64_t t = 0;
      for (; t + MR <= T; t += MR) tile<MR>(panel, kc, x + t * cols + k0, cols, y + t * ldy + p0, ldy, nrows, k0 > 0);
      const float* xt = x + t * cols + k0;
      float* yt = y + t * ldy + p0;
      switch (T - t) {
        case 5: tile<5>(panel, kc, xt, cols, yt, ldy, nrows, k0 > 0); break;
        case 4: tile<4>(panel, kc, xt, cols, yt, ldy, nrows, k0 > 0); break;
        case 3: tile<3>(panel, kc, xt, cols, yt, ldy, nrows, k0 > 0); break;
        case 2: tile<2>(panel, kc, xt, cols, yt, ldy, nrows, k0 > 0); break;
        case 1: tile<1>(panel, kc, xt, cols, yt, ldy, nrows, k0 > 0); break;
        default: break;
      }
    }
  }
}

}  // namespace

bool group_f32_avx2_supports(const WView& w) {
  return (w.fmt == Fmt::Q4G || w.fmt == Fmt::Q8G) && w.group > 0 && w.group % 32 == 0 && w.cols % w.group == 0;
}

WView as_group(const WView& w) {
  WView g = w;
  if (w.fmt == Fmt::Q4 || w.fmt == Fmt::Q8) g.fmt = w.fmt == Fmt::Q4 ? Fmt::Q4G : Fmt::Q8G, g.group = w.cols;
  return g;
}

void group_f32_avx2(const WView& w, const float* x, float* y, int64_t T, ThreadPool& pool) {
  const int64_t rows = w.rows, cols = w.cols, nt = pool.threads();
  // kGroupF32GemmMinT (kernels.h): below it the streams (≤ 3 tokens per pass over the weights) beat packing; one
  // thread, 4096 × 4096 int4 g128: a pass of 3 streamed tokens ~2.3 ms, a GEMM token ~0.4 ms + ~3 ms of packing
  if (T >= kGroupF32GemmMinT) {  // packed GEMM, whole panels per chunk
    const int64_t panels = (rows + NR - 1) / NR;
    const int64_t chunk = std::max<int64_t>(1, panels / (nt * 4));
    pool.parallel_for(panels, chunk, [&](int64_t b, int64_t e, int) { gemm_rows(w, x, T, y, rows, b * NR, std::min(rows, e * NR)); });
    return;
  }
  int64_t chunk = std::max<int64_t>(4, rows / (nt * 8));
  if (rows * cols * T < 65536) chunk = rows;  // waking the pool costs microseconds
  // passes of up to 3 tokens over each thread's rows
  auto passes = [&](auto&& run) {
    pool.parallel_for(rows, chunk, [&](int64_t b, int64_t e, int) {
      for (int64_t t = 0; t < T; t += 3) run(t, std::min<int64_t>(3, T - t), b, e);
    });
  };
  if (w.fmt == Fmt::Q8G) {
    passes([&](int64_t t, int64_t n, int64_t b, int64_t e) {
      const float* xt = x + t * cols;
      float* yt = y + t * rows;
      if (n == 1) q8_rows<1>(w, xt, cols, yt, rows, b, e);
      else if (n == 2) q8_rows<2>(w, xt, cols, yt, rows, b, e);
      else q8_rows<3>(w, xt, cols, yt, rows, b, e);
    });
    return;
  }
  // q4_group: x de-interleaved into the nibbles' order and its group sums, once per call, shared by the threads
  const int64_t ng = cols / w.group;
  std::vector<float> xd(static_cast<size_t>(T * cols)), xs(static_cast<size_t>(T * ng));
  for (int64_t t = 0; t < T; t++) deinterleave(x + t * cols, cols, xd.data() + t * cols);
  group_sums(x, T, cols, w.group, xs.data());  // group_zp.cc's
  passes([&](int64_t t, int64_t n, int64_t b, int64_t e) {
    const float* xdt = xd.data() + t * cols;
    const float* xst = xs.data() + t * ng;
    float* yt = y + t * rows;
    if (n == 1) q4_rows<1>(w, xdt, xst, cols, yt, rows, b, e);
    else if (n == 2) q4_rows<2>(w, xdt, xst, cols, yt, rows, b, e);
    else q4_rows<3>(w, xdt, xst, cols, yt, rows, b, e);
  });
}

}  // namespace xv

#else  // not x86: never chosen (no AVX2)

namespace xv {
bool group_f32_avx2_supports(const WView&) { return false; }
WView as_group(const WView& w) { return w; }
void group_f32_avx2(const WView&, const float*, float*, int64_t, ThreadPool&) {}
}  // namespace xv

#endif
