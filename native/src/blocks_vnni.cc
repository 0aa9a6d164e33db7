// Legacy block kernels (q4_0, q4_1, q5_0, q5_1, q8_0) on AVX-512 VNNI, four 32-value blocks per step.
//
// A block's qs byte j holds value j in its low nibble and value 16 + j in its high one, so with block k of a
// step in 128-bit lane k, one AND gives values 0-15 of all four blocks and a shift + AND values 16-31, already in
// the activations' order (LegacyAct::q): no lane shuffle. Building that register from the 18-24-byte blocks is
// one word permute of a load at block 0's qs (blocks 0-2 lie in it) merged into a load whose lane 3 is block 3's
// qs. The weights stay unsigned (nibble, 5-bit value, or int8 ^ 0x80 = w + 128) for vpdpbusd; the shift (8, 16,
// 128) and q4_1 / q5_1's min are the block's second term, m · d_x · Σ q (LegacyAct::sd), added in f32 per 16
// blocks.
//
// Scales: per 16 blocks, one masked word permute per step gathers the f16 d (and m) of its four blocks into one
// register, then a single vcvtph2ps gives 16 f32 scales; a step's dword lanes take theirs with one vpermps.
#include "blocks.h"
#if XV_X86
#include <immintrin.h>

#include <cstring>

#define TVNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c,bmi2")))
#define INL inline __attribute__((always_inline))

namespace xv {
namespace {

// Per type: block bytes B, where qs starts (o), where qh starts (h, q5 only), whether m (at byte 2) is a min,
// and otherwise the unsigned shift S the weights carry (the second term is −S · d · d_x · Σ q).
template <Fmt F>
struct Lay;
template <> struct Lay<Fmt::Q4_0> { static constexpr int B = 18, o = 2, h = 0, S = 8; static constexpr bool five = false, min = false; };
template <> struct Lay<Fmt::Q4_1> { static constexpr int B = 20, o = 4, h = 0, S = 0; static constexpr bool five = false, min = true; };
template <> struct Lay<Fmt::Q5_0> { static constexpr int B = 22, o = 6, h = 2, S = 16; static constexpr bool five = true, min = false; };
template <> struct Lay<Fmt::Q5_1> { static constexpr int B = 24, o = 8, h = 4, S = 0; static constexpr bool five = true, min = true; };
template <> struct Lay<Fmt::Q8_0> { static constexpr int B = 34, o = 2, h = 0, S = 128; static constexpr bool five = false, min = false; };

INL uint64_t le32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Where unpack4's first load starts in a step: q4_0 / q4_1 reuse the load at the step's start that gathers the
// scales (blocks 0-2's qs lie in its 64 bytes); q5's third block reaches past it.
template <Fmt F>
constexpr int qs_at() {
  return Lay<F>::five ? Lay<F>::o : 0;
}

// Permute indices, built once per call. Word w < 16 of the scale register is the d of block w of a 16-block
// group (step w / 4, block w % 4 of the step); word 16 + w its m (min types).
struct Idx {
  __m512i qs;      // words of lane k < 3 ← block k's qs in a load at block 0's qs
  __m512i dA, dB;  // d (and m) words ← a load at the step's start (dA) and, where block 3 (q5) or blocks 2-3
                   // (q8_0) lie past its 64 bytes, a second load (dB)
  __mmask32 mA, mB;  // which words of step 0 come from dA / dB (step j: shifted by 4j)
  __m512i lane[4];   // step j: dword lane 4k + i ← scale 4j + k
  __m512i q8lo, q8hi;  // q8_0: qwords of [b0 | b1], [b2 | b3] → values 0-15 / 16-31 of b0 … b3 in lane order
};

template <Fmt F>
TVNNI Idx make_idx() {
  using L = Lay<F>;
  Idx x;
  alignas(64) int16_t qs[32] = {}, dA[32] = {}, dB[32] = {};
  x.mA = x.mB = 0;
  for (int k = 0; k < 3; k++)
    for (int i = 0; i < 8; i++) qs[8 * k + i] = static_cast<int16_t>((k * L::B + L::o - qs_at<F>()) / 2 + i);
  for (int w = 0; w < 16; w++) {
    const int k = w % 4;
    int a = -1, b = -1;  // word of block k's d in load A (at the step) / load B
    if (F == Fmt::Q8_0) {
      if (k < 2) a = k * L::B / 2;
      else b = (k * L::B - 64) / 2;
    } else if (L::five && k == 3) {
      b = (48 - L::o) / 2;  // load B is the one at block 3's qs less 48 bytes
    } else {
      a = k * L::B / 2;
    }
    if (a >= 0) dA[w] = static_cast<int16_t>(a), dA[w + 16] = static_cast<int16_t>(a + 1);
    if (b >= 0) dB[w] = static_cast<int16_t>(b), dB[w + 16] = static_cast<int16_t>(b + 1);
    if (w < 4) {
      const __mmask32 bit = (1u << w) | (L::min ? 1u << (16 + w) : 0u);
      if (a >= 0) x.mA |= bit;
      else x.mB |= bit;
    }
  }
  x.qs = _mm512_load_si512(qs);
  x.dA = _mm512_load_si512(dA);
  x.dB = _mm512_load_si512(dB);
  for (int j = 0; j < 4; j++) {
    alignas(64) int32_t l[16];
    for (int i = 0; i < 16; i++) l[i] = 4 * j + i / 4;
    x.lane[j] = _mm512_load_si512(l);
  }
  x.q8lo = _mm512_setr_epi64(0, 1, 4, 5, 8, 9, 12, 13);
  x.q8hi = _mm512_setr_epi64(2, 3, 6, 7, 10, 11, 14, 15);
  return x;
}

INL const __m512i* ld(const void* p) { return static_cast<const __m512i*>(p); }

// The f16 d of 16 blocks (four steps of four at st[0 … 3]; the tail: n steps) as f32, and m (min types; else d again: the
// second term −S · d · sd is summed as d · sd and scaled by −S once, exactly, S being a power of two).
template <Fmt F, bool TAIL>
TVNNI INL void scales16(const uint8_t* const* st, int n, const Idx& ix, __m512& d, __m512& m) {
  using L = Lay<F>;
  __m512i x = _mm512_setzero_si512();
#pragma GCC unroll 4
  for (int j = 0; j < 4; j++) {
    if (TAIL && j >= n) break;  // the missing blocks' words stay 0: d = m = 0
    const uint8_t* p = st[j];
    const __mmask32 a = ix.mA << (4 * j), b = ix.mB << (4 * j);
    x = _mm512_mask_permutexvar_epi16(x, a, ix.dA, _mm512_loadu_si512(ld(p)));
    if constexpr (F == Fmt::Q8_0) x = _mm512_mask_permutexvar_epi16(x, b, ix.dB, _mm512_loadu_si512(ld(p + 64)));
    else if constexpr (L::five) x = _mm512_mask_permutexvar_epi16(x, b, ix.dB, _mm512_loadu_si512(ld(p + L::o + 3 * L::B - 48)));
  }
  d = _mm512_cvtph_ps(_mm512_castsi512_si256(x));
  if constexpr (L::min) m = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(x, 1));
  else m = d;
}

// Step at p (four blocks): the unsigned weight values 0-15 (lo) and 16-31 (hi) of each block in lane order.
template <Fmt F>
TVNNI INL void unpack4(const uint8_t* p, const Idx& ix, __m512i& lo, __m512i& hi) {
  using L = Lay<F>;
  if constexpr (F == Fmt::Q8_0) {
    const __m512i z01 = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2))),
                                           _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2 + L::B)), 1);
    const __m512i z23 = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2 + 2 * L::B))),
                                           _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2 + 3 * L::B)), 1);
    const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
    lo = _mm512_xor_si512(_mm512_permutex2var_epi64(z01, ix.q8lo, z23), flip);
    hi = _mm512_xor_si512(_mm512_permutex2var_epi64(z01, ix.q8hi, z23), flip);
  } else {
    // lane 3 of the second load is block 3's qs; words of lanes 0-2 come from the first
    const __m512i a = _mm512_loadu_si512(ld(p + qs_at<F>())), b = _mm512_loadu_si512(ld(p + L::o + 3 * L::B - 48));
    const __m512i qs = _mm512_mask_permutexvar_epi16(b, 0x00ffffff, ix.qs, a);
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    lo = _mm512_and_si512(qs, m4);
    hi = _mm512_and_si512(_mm512_srli_epi16(qs, 4), m4);
    if constexpr (L::five) {  // bit i of block k's qh is value i's fifth bit: byte 16k + i of lo (i < 16) or hi
      const uint64_t a01 = le32(p + L::h) | le32(p + L::B + L::h) << 32;
      const uint64_t a23 = le32(p + 2 * L::B + L::h) | le32(p + 3 * L::B + L::h) << 32;
      constexpr uint64_t kLo = 0x0000ffff0000ffffULL, kHi = ~kLo;
      const __mmask64 mlo = _pext_u64(a01, kLo) | _pext_u64(a23, kLo) << 32;
      const __mmask64 mhi = _pext_u64(a01, kHi) | _pext_u64(a23, kHi) << 32;
      const __m512i b4 = _mm512_set1_epi8(0x10);
      lo = _mm512_mask_add_epi8(lo, mlo, lo, b4);  // bit 4 is clear: + 16 sets it
      hi = _mm512_mask_add_epi8(hi, mhi, hi, b4);
    }
  }
}

// Software prefetch distance along a row (bytes): the hardware prefetcher alone left the L3-resident q4_0 decode
// at 24-27 GB/s; 2 KB ahead it streams at the L3 bandwidth (29.5 GB/s on one core).
constexpr int64_t kPrefetch = 2048;

// R rows × TT tokens over one group of 16 blocks (the tail: n steps of 4). st[i][j]: row i's step j; ga: the
// group's index. T = 1 folds d_x into the 16 gathered scales once per group; more tokens scale each step's lanes
// by d_w (shared) and d_x (per token, LegacyAct::dl).
template <Fmt F, int R, int TT, bool TAIL>
TVNNI INL void group16(const uint8_t* const (*st)[4], int n, int64_t ga, const Idx& ix, const LegacyAct* a,
                       __m512 (*acc)[TT], __m512* acc2, __m512 (*mc)[TT]) {
  using L = Lay<F>;
  __m512 d[R], m[R];
#pragma GCC unroll 4
  for (int i = 0; i < R; i++) {
#pragma GCC unroll 16
    for (int l = 0; l < (16 * L::B + 63) / 64; l++)
      _mm_prefetch(reinterpret_cast<const char*>(st[i][0] + kPrefetch + 64 * l), _MM_HINT_T0);
    scales16<F, TAIL>(st[i], n, ix, d[i], m[i]);
#pragma GCC unroll 8
    for (int t = 0; t < TT; t++) mc[i][t] = _mm512_fmadd_ps(m[i], _mm512_load_ps(a[t].sd + 16 * ga), mc[i][t]);
  }
  __m512 s[TT == 1 ? R : 1];
  if constexpr (TT == 1)
#pragma GCC unroll 4
    for (int i = 0; i < R; i++) s[i] = _mm512_mul_ps(d[i], _mm512_load_ps(a[0].d + 16 * ga));
#pragma GCC unroll 4
  for (int j = 0; j < 4; j++) {
    if (TAIL && j >= n) break;
    __m512i lo[R], hi[R];
    __m512 dw[R];
#pragma GCC unroll 4
    for (int i = 0; i < R; i++) {
      unpack4<F>(st[i][j], ix, lo[i], hi[i]);
      if constexpr (TT > 1) dw[i] = _mm512_permutexvar_ps(ix.lane[j], d[i]);
    }
    const int64_t q = (4 * ga + j) * 128;
#pragma GCC unroll 8
    for (int t = 0; t < TT; t++) {
      const __m512i xl = _mm512_load_si512(ld(a[t].q + q)), xh = _mm512_load_si512(ld(a[t].q + q + 64));
#pragma GCC unroll 4
      for (int i = 0; i < R; i++) {
        const __m512i is = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), lo[i], xl), hi[i], xh);
        if constexpr (TT == 1) {
          __m512& c = j & 1 ? acc2[i] : acc[i][t];
          c = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is), _mm512_permutexvar_ps(ix.lane[j], s[i]), c);
        } else {
          const __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(is), _mm512_load_ps(a[t].dl + (4 * ga + j) * 16));
          acc[i][t] = _mm512_fmadd_ps(f, dw[i], acc[i][t]);
        }
      }
    }
  }
}

template <Fmt F, int R, int TT>
TVNNI void tile(const WView& w, const Idx& ix, const char* qact, int64_t per, float* y, int64_t ldy, int64_t r, int64_t t0) {
  using L = Lay<F>;
  const int64_t nb = w.cols / 32, rb = nb * L::B, full = nb / 16, rest = nb % 16;
  const uint8_t* base = static_cast<const uint8_t*>(w.data) + r * rb;
  LegacyAct a[TT];
  for (int t = 0; t < TT; t++) a[t] = legacy_act(const_cast<char*>(qact) + (t0 + t) * per, w.cols);
  // acc: the integer dots × d_w · d_x (decode: odd steps in acc2, halving the FMA chain); mc: m · sd
  __m512 acc[R][TT], acc2[R], mc[R][TT];
#pragma GCC unroll 4
  for (int i = 0; i < R; i++) {
    acc2[i] = _mm512_setzero_ps();
#pragma GCC unroll 8
    for (int t = 0; t < TT; t++) acc[i][t] = mc[i][t] = _mm512_setzero_ps();
  }
  const uint8_t* st[R][4];
  for (int64_t ga = 0; ga < full; ga++) {
#pragma GCC unroll 4
    for (int i = 0; i < R; i++)
#pragma GCC unroll 4
      for (int j = 0; j < 4; j++) st[i][j] = base + i * rb + (16 * ga + 4 * j) * L::B;
    group16<F, R, TT, false>(st, 4, ga, ix, a, acc, acc2, mc);
  }
  if (rest) {
    // Whole steps of the last blocks run in place; a last partial step (cols % 128 ≠ 0) from a zero-padded copy
    // (d = m = 0; its activations are zero too), so no load reaches past the row.
    alignas(64) uint8_t part[R][4 * L::B];
    const int n = static_cast<int>((rest + 3) / 4);
    for (int i = 0; i < R; i++) {
      for (int j = 0; j < n; j++) st[i][j] = base + i * rb + (16 * full + 4 * j) * L::B;
      if (rest % 4) {
        std::memcpy(part[i], st[i][n - 1], (rest % 4) * L::B);
        std::memset(part[i] + (rest % 4) * L::B, 0, (4 - rest % 4) * L::B);
        st[i][n - 1] = part[i];
      }
    }
    group16<F, R, TT, true>(st, n, full, ix, a, acc, acc2, mc);
  }
#pragma GCC unroll 4
  for (int i = 0; i < R; i++)
#pragma GCC unroll 8
    for (int t = 0; t < TT; t++) {
      const __m512 v = TT == 1 ? _mm512_add_ps(acc[i][t], acc2[i]) : acc[i][t];
      const float k = L::min ? 1.f : -static_cast<float>(L::S);
      y[(t0 + t) * ldy + r + i] = _mm512_reduce_add_ps(_mm512_fmadd_ps(mc[i][t], _mm512_set1_ps(k), v));
    }
}

template <Fmt F, int R>
TVNNI void tile_t(const WView& w, const Idx& ix, const char* qa, int64_t per, float* y, int64_t ldy, int64_t r, int64_t t,
                  int tt) {
  switch (tt) {
    case 4: return tile<F, R, 4>(w, ix, qa, per, y, ldy, r, t);
    case 3: return tile<F, R, 3>(w, ix, qa, per, y, ldy, r, t);
    case 2: return tile<F, R, 2>(w, ix, qa, per, y, ldy, r, t);
    default: return tile<F, R, 1>(w, ix, qa, per, y, ldy, r, t);
  }
}

// Token blocks of 32 keep their activations (~2.6 bytes per value) in L2 while a thread's rows pass; decode is
// one linear stream through the weights.
constexpr int64_t kTokenBlock = 32;
constexpr int kR = 2, kTT = 4;

template <Fmt F>
TVNNI void rows_vnni(const WView& w, const void* qact, float* y, int64_t ldy, int64_t T, int64_t r0, int64_t r1) {
  const char* qa = static_cast<const char*>(qact);
  const int64_t per = legacy_act_bytes(w.cols);
  const Idx ix = make_idx<F>();
  if (T == 1) {
    for (int64_t r = r0; r < r1; r++) tile<F, 1, 1>(w, ix, qa, per, y, ldy, r, 0);
    return;
  }
  for (int64_t tb = 0; tb < T; tb += kTokenBlock) {
    const int64_t te = tb + kTokenBlock < T ? tb + kTokenBlock : T;
    for (int64_t r = r0; r < r1; r += kR) {
      for (int64_t t = tb; t < te; t += kTT) {
        const int tt = static_cast<int>(te - t < kTT ? te - t : kTT);
        if (r1 - r >= 2) tile_t<F, 2>(w, ix, qa, per, y, ldy, r, t, tt);
        else tile_t<F, 1>(w, ix, qa, per, y, ldy, r, t, tt);
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
