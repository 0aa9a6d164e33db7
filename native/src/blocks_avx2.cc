// Legacy block kernels (q4_0, q4_1, q5_0, q5_1, q8_0) on AVX2, and the vector activation quantizer. One block
// per 256-bit register: vpmaddubsw (unsigned weight × signed activation, pairs summed to int16 — at most
// 2 · 31 · 127, no saturation) then vpmaddwd by ones gives dword lanes of 4 columns; the unsigned shift is taken
// back with the quantizer's per-lane sums (LegacyAct::ls). q8_0 keeps its signed weights and moves their signs
// onto x (|w| ≤ 128 unsigned × sign(x, w): ≤ 2 · 128 · 127 per pair, still no saturation).
#include "blocks.h"
#if XV_X86
#include <immintrin.h>

#include <cstring>

#define TAVX2 __attribute__((target("avx2,fma,f16c")))

namespace xv {

// Same f32 operations as the scalar quantizer (amax / 127, x · (127 / amax), round to nearest even), so the
// bytes are identical.
TAVX2 void legacy_quantize_avx2(const float* x, int64_t cols, const LegacyAct& a) {
  const int64_t nb = cols / 32, nbp = (nb + 1) / 2 * 2;
  const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  for (int64_t b = 0; b < nbp; b++) {
    int8_t* q = a.q + 32 * b;
    if (b >= nb) {
      std::memset(q, 0, 32);
      a.d[b] = a.sd[b] = 0.f;
      a.s[b] = 0;
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(a.ls + 8 * b), _mm256_setzero_si256());
      _mm256_storeu_ps(a.dl + 8 * b, _mm256_setzero_ps());
      continue;
    }
    const float* xb = x + 32 * b;
    __m256 v[4];
    __m256 m = _mm256_setzero_ps();
    for (int i = 0; i < 4; i++) {
      v[i] = _mm256_loadu_ps(xb + 8 * i);
      m = _mm256_max_ps(m, _mm256_and_ps(v[i], absmask));
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float amax = _mm_cvtss_f32(m4);
    const float d = amax / 127.f, id = amax > 0 ? 127.f / amax : 0.f;
    const __m256 idv = _mm256_set1_ps(id);
    __m256i qi[4];
    for (int i = 0; i < 4; i++) qi[i] = _mm256_cvtps_epi32(_mm256_mul_ps(v[i], idv));  // MXCSR: nearest even
    // Lane sums of 4 consecutive values: horizontal adds of pairs, twice, then restore lane order.
    const __m256i h01 = _mm256_hadd_epi32(qi[0], qi[1]), h23 = _mm256_hadd_epi32(qi[2], qi[3]);
    const __m256i h = _mm256_hadd_epi32(h01, h23);  // [l0 l2 l4 l6 | l1 l3 l5 l7] in 128-bit halves
    const __m256i ls = _mm256_permutevar8x32_epi32(h, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(a.ls + 8 * b), ls);
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(ls), _mm256_extracti128_si256(ls, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
    const int32_t s = _mm_cvtsi128_si32(s4);
    // int32 → int8: packs keep values (|q| ≤ 127); the packs interleave 128-bit halves, undone by the permute.
    const __m256i p01 = _mm256_packs_epi32(qi[0], qi[1]), p23 = _mm256_packs_epi32(qi[2], qi[3]);
    const __m256i p = _mm256_packs_epi16(p01, p23);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q), _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
    _mm256_storeu_ps(a.dl + 8 * b, _mm256_set1_ps(d));
    a.d[b] = d;
    a.s[b] = s;
    a.sd[b] = d * static_cast<float>(s);
  }
}

namespace {

#define INL inline __attribute__((always_inline))

template <Fmt F>
struct Lay;
template <> struct Lay<Fmt::Q4_0> { static constexpr int B = 18, qs = 2, shift = 3; static constexpr bool five = false, min = false; };
template <> struct Lay<Fmt::Q4_1> { static constexpr int B = 20, qs = 4, shift = 0; static constexpr bool five = false, min = true; };
template <> struct Lay<Fmt::Q5_0> { static constexpr int B = 22, qs = 6, shift = 4; static constexpr bool five = true, min = false; };
template <> struct Lay<Fmt::Q5_1> { static constexpr int B = 24, qs = 8, shift = 0; static constexpr bool five = true, min = true; };
template <> struct Lay<Fmt::Q8_0> { static constexpr int B = 34, qs = 2, shift = 0; static constexpr bool five = false, min = false; };

INL uint32_t le32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// One block's 32 weights in column order: unsigned codes (q8_0: the signed int8 values).
template <Fmt F>
TAVX2 INL __m256i unpack(const uint8_t* p) {
  using L = Lay<F>;
  if constexpr (F == Fmt::Q8_0) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2));
  } else {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + L::qs));
    const __m128i m4 = _mm_set1_epi8(0x0f);
    __m256i z = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_and_si128(v, m4)), _mm_and_si128(_mm_srli_epi16(v, 4), m4), 1);
    if constexpr (L::five) {  // bit j of qh → 0x10 in byte j: spread qh's bytes 8 ways, test one bit each
      const __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(le32(p + L::qs - 4))),
                                                _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
      const __m256i bit = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ULL));
      const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit), bit);
      z = _mm256_or_si256(z, _mm256_and_si256(set, _mm256_set1_epi8(0x10)));
    }
    return z;
  }
}

template <Fmt F, int R, int TT>
TAVX2 void tile(const WView& w, const char* qact, int64_t per, float* y, int64_t ldy, int64_t r, int64_t t0) {
  using L = Lay<F>;
  const int64_t nb = w.cols / 32, rb = nb * L::B;
  const uint8_t* base = static_cast<const uint8_t*>(w.data) + r * rb;
  const __m256i ones = _mm256_set1_epi16(1);
  LegacyAct a[TT];
  for (int t = 0; t < TT; t++) a[t] = legacy_act(const_cast<char*>(qact) + (t0 + t) * per, w.cols);
  __m256 acc[R][TT];
  float macc[R][TT] = {};
  for (int i = 0; i < R; i++)
    for (int t = 0; t < TT; t++) acc[i][t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; b++) {
    __m256i wq[R], wabs[R];
    float dw[R], mw[R] = {};
#pragma GCC unroll 4
    for (int i = 0; i < R; i++) {
      const uint8_t* p = base + i * rb + b * L::B;
      _mm_prefetch(reinterpret_cast<const char*>(p + 1024), _MM_HINT_T0);
      wq[i] = unpack<F>(p);
      if constexpr (F == Fmt::Q8_0) wabs[i] = _mm256_sign_epi8(wq[i], wq[i]);
      uint16_t h;
      std::memcpy(&h, p, 2);
      dw[i] = _cvtsh_ss(h);
      if constexpr (L::min) {
        std::memcpy(&h, p + 2, 2);
        mw[i] = _cvtsh_ss(h);
      }
    }
#pragma GCC unroll 4
    for (int t = 0; t < TT; t++) {
      const __m256i xq = _mm256_load_si256(reinterpret_cast<const __m256i*>(a[t].q + 32 * b));
      const float dx = a[t].d[b];
      __m256i off = _mm256_setzero_si256();
      if constexpr (L::shift != 0) off = _mm256_slli_epi32(_mm256_load_si256(reinterpret_cast<const __m256i*>(a[t].ls + 8 * b)), L::shift);
#pragma GCC unroll 4
      for (int i = 0; i < R; i++) {
        __m256i p16;
        if constexpr (F == Fmt::Q8_0) p16 = _mm256_maddubs_epi16(wabs[i], _mm256_sign_epi8(xq, wq[i]));
        else p16 = _mm256_maddubs_epi16(wq[i], xq);
        __m256i is = _mm256_madd_epi16(p16, ones);
        if constexpr (L::shift != 0) is = _mm256_sub_epi32(is, off);
        acc[i][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is), _mm256_set1_ps(dw[i] * dx), acc[i][t]);
        if constexpr (L::min) macc[i][t] += mw[i] * a[t].sd[b];
      }
    }
  }
  for (int i = 0; i < R; i++)
    for (int t = 0; t < TT; t++) {
      const __m256 v = acc[i][t];
      __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
      s = _mm_add_ps(s, _mm_movehl_ps(s, s));
      s = _mm_add_ss(s, _mm_movehdup_ps(s));
      y[(t0 + t) * ldy + r + i] = _mm_cvtss_f32(s) + macc[i][t];
    }
}

template <Fmt F, int R>
TAVX2 void tile_t(const WView& w, const char* qa, int64_t per, float* y, int64_t ldy, int64_t r, int64_t t, int tt) {
  switch (tt) {
    case 4: return tile<F, R, 4>(w, qa, per, y, ldy, r, t);
    case 3: return tile<F, R, 3>(w, qa, per, y, ldy, r, t);
    case 2: return tile<F, R, 2>(w, qa, per, y, ldy, r, t);
    default: return tile<F, R, 1>(w, qa, per, y, ldy, r, t);
  }
}

constexpr int64_t kTokenBlock = 32;
constexpr int kTT = 4;

// 2 rows × 4 tokens: 8 accumulators + 2-4 weight registers + x fits the 16 ymm registers.
template <Fmt F>
TAVX2 void rows_avx2(const WView& w, const void* qact, float* y, int64_t ldy, int64_t T, int64_t r0, int64_t r1) {
  const char* qa = static_cast<const char*>(qact);
  const int64_t per = legacy_act_bytes(w.cols);
  if (T == 1) {
    for (int64_t r = r0; r < r1; r++) tile<F, 1, 1>(w, qa, per, y, ldy, r, 0);
    return;
  }
  for (int64_t tb = 0; tb < T; tb += kTokenBlock) {
    const int64_t te = tb + kTokenBlock < T ? tb + kTokenBlock : T;
    for (int64_t r = r0; r < r1; r += 2) {
      for (int64_t t = tb; t < te; t += kTT) {
        const int tt = static_cast<int>(te - t < kTT ? te - t : kTT);
        if (r1 - r >= 2) tile_t<F, 2>(w, qa, per, y, ldy, r, t, tt);
        else tile_t<F, 1>(w, qa, per, y, ldy, r, t, tt);
      }
    }
  }
}

}  // namespace

BlockRowsFn legacy_rows_avx2(Fmt f) {
  switch (f) {
    case Fmt::Q4_0: return rows_avx2<Fmt::Q4_0>;
    case Fmt::Q4_1: return rows_avx2<Fmt::Q4_1>;
    case Fmt::Q5_0: return rows_avx2<Fmt::Q5_0>;
    case Fmt::Q5_1: return rows_avx2<Fmt::Q5_1>;
    case Fmt::Q8_0: return rows_avx2<Fmt::Q8_0>;
    default: return nullptr;
  }
}

}  // namespace xv
#endif
