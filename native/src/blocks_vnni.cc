// Legacy block kernels (q4_0, q4_1, q5_0, q5_1, q8_0) on AVX-512 VNNI: two 32-value blocks per 512-bit
// register. The weights are made unsigned (nibble, 5-bit value, or int8 ^ 0x80 = w + 128) so one vpdpbusd
// multiplies them by the signed int8 activations; the shift is taken back by starting each dword lane's sum at
// −shift · (Σ of the lane's 4 activations), precomputed by the quantizer (LegacyAct::ls). One convert + FMA per
// two blocks then applies d_w · d_x per lane. q4_1 / q5_1 keep the nibble unsigned and add m · d_x · Σ q.
#include "blocks.h"
#if XV_X86
#include <immintrin.h>

#include <cstring>

#define TVNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")))
#define INL inline __attribute__((always_inline))

namespace xv {
namespace {

// Per type: block bytes, where qs starts, log2 of the unsigned shift (0: none, the type has a min instead).
template <Fmt F>
struct Lay;
template <> struct Lay<Fmt::Q4_0> { static constexpr int B = 18, qs = 2, shift = 3; static constexpr bool five = false, min = false; };
template <> struct Lay<Fmt::Q4_1> { static constexpr int B = 20, qs = 4, shift = 0; static constexpr bool five = false, min = true; };
template <> struct Lay<Fmt::Q5_0> { static constexpr int B = 22, qs = 6, shift = 4; static constexpr bool five = true, min = false; };
template <> struct Lay<Fmt::Q5_1> { static constexpr int B = 24, qs = 8, shift = 0; static constexpr bool five = true, min = true; };
template <> struct Lay<Fmt::Q8_0> { static constexpr int B = 34, qs = 2, shift = 7; static constexpr bool five = false, min = false; };

INL uint32_t le32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
INL uint32_t le16(const uint8_t* p) { return static_cast<uint32_t>(p[0] | (p[1] << 8)); }

// Blocks at p and p + B as 64 unsigned bytes in column order [block 0: 0 … 31 | block 1: 0 … 31]; without a
// second block (odd block count) its half is zero (its activations are zero too).
template <Fmt F>
TVNNI INL __m512i unpack2(const uint8_t* p, bool two) {
  using L = Lay<F>;
  if constexpr (F == Fmt::Q8_0) {
    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2));
    const __m256i b = two ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + L::B + 2)) : _mm256_setzero_si256();
    return _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1), _mm512_set1_epi8(static_cast<char>(0x80)));
  }
  const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + L::qs));
  const __m128i b = two ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + L::B + L::qs)) : _mm_setzero_si128();
  const __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(a), b, 1);
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  const __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
  // [lo0 lo1 hi0 hi1] in 128-bit lanes → [lo0 hi0 lo1 hi1]: each block's columns 0-15 then 16-31
  __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
  z = _mm512_shuffle_i64x2(z, z, _MM_SHUFFLE(3, 1, 2, 0));
  if constexpr (L::five) {  // bit j of qh is column j's fifth bit: one mask bit per byte of z
    const uint64_t qh = le32(p + L::qs - 4) | (two ? static_cast<uint64_t>(le32(p + L::B + L::qs - 4)) << 32 : 0);
    z = _mm512_or_si512(z, _mm512_maskz_mov_epi8(qh, _mm512_set1_epi8(0x10)));
  }
  return z;
}

// f16 fields at p + o and p + B + o as [f0 × 8 | f1 × 8] (and the pair as the low half of an __m128).
template <Fmt F>
TVNNI INL __m128 halves2(const uint8_t* p, int o, bool two) {
  const uint32_t h = le16(p + o) | (two ? le16(p + Lay<F>::B + o) << 16 : 0);
  return _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(h)));
}

template <Fmt F, int R, int TT>
TVNNI void tile(const WView& w, const char* qact, int64_t per, float* y, int64_t ldy, int64_t r, int64_t t0) {
  using L = Lay<F>;
  const int64_t nb = w.cols / 32, rb = nb * L::B;
  const uint8_t* base = static_cast<const uint8_t*>(w.data) + r * rb;
  const __m512i pairIdx = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  LegacyAct a[TT];
  for (int t = 0; t < TT; t++) a[t] = legacy_act(const_cast<char*>(qact) + (t0 + t) * per, w.cols);
  __m512 acc[R][TT];
  __m128 macc[R][TT];
#pragma GCC unroll 4
  for (int i = 0; i < R; i++)
#pragma GCC unroll 4
    for (int t = 0; t < TT; t++) acc[i][t] = _mm512_setzero_ps(), macc[i][t] = _mm_setzero_ps();
  for (int64_t b = 0; b < nb; b += 2) {
    const bool two = b + 1 < nb;
    __m512i wu[R];
    __m512 sw[R];
    __m128 mw[R] = {};
#pragma GCC unroll 4
    for (int i = 0; i < R; i++) {
      const uint8_t* p = base + i * rb + b * L::B;
      _mm_prefetch(reinterpret_cast<const char*>(p + 1024), _MM_HINT_T0);
      wu[i] = unpack2<F>(p, two);
      sw[i] = _mm512_permutexvar_ps(pairIdx, _mm512_castps128_ps512(halves2<F>(p, 0, two)));
      if constexpr (L::min) mw[i] = halves2<F>(p, 2, two);
    }
#pragma GCC unroll 4
    for (int t = 0; t < TT; t++) {
      const __m512i xq = _mm512_load_si512(a[t].q + 32 * b);
      const __m512 dl = _mm512_load_ps(a[t].dl + 8 * b);
      const __m512i start = L::shift ? _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(_mm512_load_si512(a[t].ls + 8 * b), L::shift))
                                     : _mm512_setzero_si512();
      __m128 sd = _mm_setzero_ps();
      if constexpr (L::min) sd = _mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(a[t].sd + b)));
#pragma GCC unroll 4
      for (int i = 0; i < R; i++) {
        const __m512i is = _mm512_dpbusd_epi32(start, wu[i], xq);
        acc[i][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is), _mm512_mul_ps(sw[i], dl), acc[i][t]);
        if constexpr (L::min) macc[i][t] = _mm_fmadd_ps(mw[i], sd, macc[i][t]);
      }
    }
  }
#pragma GCC unroll 4
  for (int i = 0; i < R; i++)
#pragma GCC unroll 4
    for (int t = 0; t < TT; t++) {
      float v = _mm512_reduce_add_ps(acc[i][t]);
      if constexpr (L::min) v += _mm_cvtss_f32(macc[i][t]) + _mm_cvtss_f32(_mm_movehdup_ps(macc[i][t]));
      y[(t0 + t) * ldy + r + i] = v;
    }
}

template <Fmt F, int R>
TVNNI void tile_t(const WView& w, const char* qa, int64_t per, float* y, int64_t ldy, int64_t r, int64_t t, int tt) {
  switch (tt) {
    case 4: return tile<F, R, 4>(w, qa, per, y, ldy, r, t);
    case 3: return tile<F, R, 3>(w, qa, per, y, ldy, r, t);
    case 2: return tile<F, R, 2>(w, qa, per, y, ldy, r, t);
    default: return tile<F, R, 1>(w, qa, per, y, ldy, r, t);
  }
}

// Token blocks of 32 keep their activations (~3.3 bytes per value) in L2 while a thread's rows pass; decode is
// one linear stream per row.
constexpr int64_t kTokenBlock = 32;
constexpr int kR = 2, kTT = 4;

template <Fmt F>
TVNNI void rows_vnni(const WView& w, const void* qact, float* y, int64_t ldy, int64_t T, int64_t r0, int64_t r1) {
  const char* qa = static_cast<const char*>(qact);
  const int64_t per = legacy_act_bytes(w.cols);
  if (T == 1) {
    for (int64_t r = r0; r < r1; r++) tile<F, 1, 1>(w, qa, per, y, ldy, r, 0);
    return;
  }
  for (int64_t tb = 0; tb < T; tb += kTokenBlock) {
    const int64_t te = tb + kTokenBlock < T ? tb + kTokenBlock : T;
    for (int64_t r = r0; r < r1; r += kR) {
      for (int64_t t = tb; t < te; t += kTT) {
        const int tt = static_cast<int>(te - t < kTT ? te - t : kTT);
        if (r1 - r >= 2) tile_t<F, 2>(w, qa, per, y, ldy, r, t, tt);
        else tile_t<F, 1>(w, qa, per, y, ldy, r, t, tt);
      }
    }
  }
}

}  // namespace

BlockRowsFn legacy_rows_vnni(Fmt f) {
  switch (f) {
    case Fmt::Q4_0: return rows_vnni<Fmt::Q4_0>;
    case Fmt::Q4_1: return rows_vnni<Fmt::Q4_1>;
    case Fmt::Q5_0: return rows_vnni<Fmt::Q5_0>;
    case Fmt::Q5_1: return rows_vnni<Fmt::Q5_1>;
    case Fmt::Q8_0: return rows_vnni<Fmt::Q8_0>;
    default: return nullptr;
  }
}

}  // namespace xv
#endif
