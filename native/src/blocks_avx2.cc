// Legacy block kernels (q4_0, q4_1, q5_0, q5_1, q8_0) on AVX2, and the vector activation quantizer. Two blocks
// per 256-bit register, block k in 128-bit lane k: a block's low nibbles (values 0-15) and high nibbles (16-31)
// then line up with the activations' order (LegacyAct::q) without a lane shuffle. vpmaddubsw (unsigned weight ×
// signed activation, pairs summed to int16) of the low and the high half, added (≤ 2 · 2 · 31 · 127, no
// saturation), then vpmaddwd by ones gives dword lanes of 8 values of one block. The unsigned shift (q4_0: 8,
// q5_0: 16) and q4_1 / q5_1's min are the block's second term m · d_x · Σ q (LegacyAct::sd), in f32. q8_0 keeps
// its signed weights and moves their signs onto x (|w| ≤ 128 unsigned × sign(x, w): ≤ 2 · 128 · 127 per pair;
// its halves are widened separately); sign(x, w) is (x xor m) − m with m = (w < 0) per pair, two plain ALU ops
// in place of vpsignb (+4 % on Zen 3, where vpsignb shares its two pipes with vpmaddubsw / vpmaddwd). That plan
// (tile()) runs decode and T < 4; from 4 tokens whole groups of 8 rows run with rows as lanes (rows_il: per-thread
// transposed copies of 8 rows, one scale step per 8 rows' blocks instead of one per 2 blocks of one row).
#include "blocks.h"
#if XV_X86
#include <immintrin.h>

#include "hsum_avx.h"
#include "transpose_avx2.h"

#include <cstring>
#include <vector>

#define TAVX2 __attribute__((target("avx2,fma,f16c")))

namespace xv {

// Same f32 operations as the scalar quantizer (amax / 127, x · (127 / amax), round to nearest even), so the
// bytes are identical.
TAVX2 void legacy_quantize_avx2(const float* x, int64_t cols, const LegacyAct& a) {
  const int64_t nb = cols / 32, nbp = (nb + 15) / 16 * 16;
  const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  for (int64_t b = 0; b < nbp; b++) {
    int8_t* lo = a.q + legacy_q_index(b, 0);
    int8_t* hi = a.q + legacy_q_index(b, 16);
    if (b >= nb) {
      std::memset(lo, 0, 16);
      std::memset(hi, 0, 16);
      a.d[b] = a.sd[b] = 0.f;
      _mm_storeu_ps(a.dl + 4 * b, _mm_setzero_ps());
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
    const float d = amax / 127.f, id = amax >= 1e-30f ? 127.f / amax : 0.f;  // (below: 127 / amax could overflow)
    const __m256 idv = _mm256_set1_ps(id);
    __m256i qi[4];
    for (int i = 0; i < 4; i++) qi[i] = _mm256_cvtps_epi32(_mm256_mul_ps(v[i], idv));  // MXCSR: nearest even
    __m256i s8 = _mm256_add_epi32(_mm256_add_epi32(qi[0], qi[1]), _mm256_add_epi32(qi[2], qi[3]));
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s8), _mm256_extracti128_si256(s8, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
    const int32_t s = _mm_cvtsi128_si32(s4);
    // int32 → int8: packs keep values (|q| ≤ 127); the packs interleave 128-bit halves, undone by the permute.
    const __m256i p01 = _mm256_packs_epi32(qi[0], qi[1]), p23 = _mm256_packs_epi32(qi[2], qi[3]);
    const __m256i p = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p01, p23), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(lo), _mm256_castsi256_si128(p));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(hi), _mm256_extracti128_si256(p, 1));
    _mm_storeu_ps(a.dl + 4 * b, _mm_set1_ps(d));
    a.d[b] = d;
    a.sd[b] = d * static_cast<float>(s);
  }
}

namespace {

#define INL inline __attribute__((always_inline))

// Per type: block bytes B, where qs starts (o), where qh starts (h, q5 only), whether m (at byte 2) is a min,
// and otherwise the unsigned shift S (q8_0: none, its weights stay signed).
template <Fmt F>
struct Lay;
template <> struct Lay<Fmt::Q4_0> { static constexpr int B = 18, o = 2, h = 0, S = 8; static constexpr bool five = false, min = false; };
template <> struct Lay<Fmt::Q4_1> { static constexpr int B = 20, o = 4, h = 0, S = 0; static constexpr bool five = false, min = true; };
template <> struct Lay<Fmt::Q5_0> { static constexpr int B = 22, o = 6, h = 2, S = 16; static constexpr bool five = true, min = false; };
template <> struct Lay<Fmt::Q5_1> { static constexpr int B = 24, o = 8, h = 4, S = 0; static constexpr bool five = true, min = true; };
template <> struct Lay<Fmt::Q8_0> { static constexpr int B = 34, o = 2, h = 0, S = 0; static constexpr bool five = false, min = false; };

INL uint32_t le32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
INL uint32_t le16(const uint8_t* p) { return static_cast<uint32_t>(p[0] | (p[1] << 8)); }

TAVX2 INL __m256i load2(const uint8_t* a, const uint8_t* b) {
  return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a))),
                                 _mm_loadu_si128(reinterpret_cast<const __m128i*>(b)), 1);
}

// The fifth bits of two q5 blocks' values as 0x10 bytes, in unpack2's order: lo = values 0-15 of block 0 (lane 0)
// and block 1 (lane 1), hi = values 16-31. m holds qh of block 0 (low dword) and block 1; both lanes see all of it
// (one broadcast), each byte picks its qh byte and tests one bit. (A broadcast per register, each built from a
// 16-bit merge of the two qh words, cost q5_0 decode ~8 % more.)
TAVX2 INL void fifth_bits2(uint64_t m, __m256i& lo, __m256i& hi) {
  const __m256i v = _mm256_set1_epi64x(static_cast<long long>(m));
  const __m256i bit = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ULL)), x10 = _mm256_set1_epi8(0x10);
  const __m256i plo = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5);
  const __m256i phi = _mm256_setr_epi8(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 6, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7);
  const __m256i bl = _mm256_and_si256(_mm256_shuffle_epi8(v, plo), bit), bh = _mm256_and_si256(_mm256_shuffle_epi8(v, phi), bit);
  lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_cmpeq_epi8(bl, bit), x10));
  hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_cmpeq_epi8(bh, bit), x10));
}

// Blocks at p and p + B: values 0-15 (lo) and 16-31 (hi) of each, block k in lane k; unsigned codes (q8_0:
// the signed int8 values).
template <Fmt F>
TAVX2 INL void unpack2(const uint8_t* p, __m256i& lo, __m256i& hi) {
  using L = Lay<F>;
  if constexpr (F == Fmt::Q8_0) {
    lo = load2(p + 2, p + L::B + 2);
    hi = load2(p + 18, p + L::B + 18);
  } else {
    // the two blocks' 16 code bytes as lanes 0 / 1: two 32-byte loads, one blended (the second starts 16 bytes
    // before block k + 1's codes; both stay inside the pair). vinserti128 from memory, as load2 does, runs only on
    // Zen 3's FP1 pipe, which the q4_0 decode loop saturates (vpermps, FMAs and shifts go there too); vpblendd runs
    // on any of the four.
    const __m256i v = _mm256_blend_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + L::o)),
                                         _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + L::B + L::o - 16)), 0xf0);
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    lo = _mm256_and_si256(v, m4);
    hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
    if constexpr (L::five) {  // bit i of qh is value i's fifth bit
      fifth_bits2(le32(p + L::h) | static_cast<uint64_t>(le32(p + L::B + L::h)) << 32, lo, hi);
    }
  }
}

// The f16 at p + k · B for k = 0 … 7 as 8 floats (scalar loads and shifts: the integer ALUs are idle here).
template <int B>
TAVX2 INL __m256 f16x8(const uint8_t* p) {
  const uint64_t a = le16(p) | le16(p + B) << 16 | static_cast<uint64_t>(le16(p + 2 * B)) << 32 |
                     static_cast<uint64_t>(le16(p + 3 * B)) << 48;
  const uint64_t b = le16(p + 4 * B) | le16(p + 5 * B) << 16 | static_cast<uint64_t>(le16(p + 6 * B)) << 32 |
                     static_cast<uint64_t>(le16(p + 7 * B)) << 48;
  return _mm256_cvtph_ps(_mm_insert_epi64(_mm_cvtsi64_si128(static_cast<long long>(a)), static_cast<long long>(b), 1));
}

// One pair of blocks unpacked for its integer dots: lo / hi as unpack2 gives them; for q8_0 also |lo|, |hi| and the
// sign masks, which move the weights' signs onto x (|w| ≤ 128 unsigned × sign(x, w), see the header).
struct PairW {
  __m256i lo, hi, alo, ahi, mlo, mhi;
};
// q8_0's |lo|, |hi| and sign masks from its lo / hi.
TAVX2 INL void q8_signs(PairW& p) {
  p.alo = _mm256_sign_epi8(p.lo, p.lo), p.ahi = _mm256_sign_epi8(p.hi, p.hi);
  p.mlo = _mm256_cmpgt_epi8(_mm256_setzero_si256(), p.lo), p.mhi = _mm256_cmpgt_epi8(_mm256_setzero_si256(), p.hi);
}
template <Fmt F>
TAVX2 INL PairW load_pair(const uint8_t* pk) {
  PairW p;
  unpack2<F>(pk, p.lo, p.hi);
  if constexpr (F == Fmt::Q8_0) q8_signs(p);
  return p;
}
// The pair's integer sums with one token's activations xl / xh (the two blocks): dword lanes of 8 values each.
template <Fmt F>
TAVX2 INL __m256i pair_dot(const PairW& p, __m256i xl, __m256i xh) {
  const __m256i ones = _mm256_set1_epi16(1);
  if constexpr (F == Fmt::Q8_0) {
    const __m256i sl = _mm256_sub_epi8(_mm256_xor_si256(xl, p.mlo), p.mlo), sh = _mm256_sub_epi8(_mm256_xor_si256(xh, p.mhi), p.mhi);
    return _mm256_add_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(p.alo, sl), ones), _mm256_madd_epi16(_mm256_maddubs_epi16(p.ahi, sh), ones));
  } else {
    return _mm256_madd_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(p.lo, xl), _mm256_maddubs_epi16(p.hi, xh)), ones);
  }
}

// Blocks b … b + 7 at p (4 pairs (b, b + 1)) × TT tokens into acc. The 8 weight scales convert at once, and the
// second term (shift or min) of all 8 blocks is one f32 fma per token with the 8 activation sums sd (dword lane
// order does not matter: the lanes are summed at the end), instead of one per pair.
template <Fmt F, int TT, bool PF = true>
TAVX2 INL void group8(const uint8_t* p, int64_t b, const LegacyAct* a, __m256* acc) {
  using L = Lay<F>;
  const __m256 dw8 = f16x8<L::B>(p);
  if constexpr (L::min || L::S != 0) {
    const __m256 mw8 = L::min ? f16x8<L::B>(p + 2) : _mm256_mul_ps(dw8, _mm256_set1_ps(-static_cast<float>(L::S)));
    for (int t = 0; t < TT; t++) acc[t] = _mm256_fmadd_ps(mw8, _mm256_load_ps(a[t].sd + b), acc[t]);
  }
#pragma GCC unroll 4
  for (int k = 0; k < 4; k++) {
    const uint8_t* pk = p + 2 * k * L::B;
    // kAvx2Prefetch ahead (1 KB: one core streamed q8_0 at ~16.5 GB/s from DRAM at T = 1, 2 KB ~17.8; Zen 3)
    if constexpr (PF) _mm_prefetch(reinterpret_cast<const char*>(pk + kAvx2Prefetch), _MM_HINT_T0);
    const PairW pw = load_pair<F>(pk);
    const __m256 dw = _mm256_permutevar8x32_ps(dw8, _mm256_setr_epi32(2 * k, 2 * k, 2 * k, 2 * k, 2 * k + 1, 2 * k + 1, 2 * k + 1, 2 * k + 1));
    const int64_t q = legacy_q_index(b + 2 * k, 0);
#pragma GCC unroll 4
    for (int t = 0; t < TT; t++) {
      const __m256i xl = _mm256_load_si256(reinterpret_cast<const __m256i*>(a[t].q + q));
      const __m256i xh = _mm256_load_si256(reinterpret_cast<const __m256i*>(a[t].q + q + 64));
      const __m256i is = pair_dot<F>(pw, xl, xh);
      // dx · dw off the integer chain (maddubs → madd → cvt → fma): 3 cycles less latency per pair and token,
      // +3-8 % on Zen 3, whose FP scheduler otherwise fills with ops waiting on that chain
      const __m256 s = _mm256_mul_ps(_mm256_load_ps(a[t].dl + 4 * (b + 2 * k)), dw);
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is), s, acc[t]);
    }
  }
}

// Row r × TT tokens from t0, 8 blocks per step; a last partial group runs from a zero-padded copy (zero scales;
// the activations are zero padded to 16 blocks).
template <Fmt F, int TT>
TAVX2 void tile(const WView& w, const char* qact, int64_t per, float* y, int64_t ldy, int64_t r, int64_t t0) {
  using L = Lay<F>;
  const int64_t nb = w.cols / 32, rb = nb * L::B;
  const uint8_t* row = static_cast<const uint8_t*>(w.data) + r * rb;
  LegacyAct a[TT];
  for (int t = 0; t < TT; t++) a[t] = legacy_act(const_cast<char*>(qact) + (t0 + t) * per, w.cols);
  __m256 acc[TT];
  for (int t = 0; t < TT; t++) acc[t] = _mm256_setzero_ps();
  int64_t b = 0;
  for (; b + 8 <= nb; b += 8) group8<F, TT>(row + b * L::B, b, a, acc);
  if (b < nb) {
    alignas(32) uint8_t last[8 * L::B] = {};
    std::memcpy(last, row + b * L::B, (nb - b) * L::B);
    group8<F, TT, false>(last, b, a, acc);
  }
  for (int t = 0; t < TT; t++) y[(t0 + t) * ldy + r] = hsum256(acc[t]);
}

// Decode (T = 1): one row against the one token, blocks b … b + 7 (4 pairs), the pairs' products alternating
// between two accumulators: with one, every pair's FMA waited on the previous one (4 cycles each), which held
// q4_0 to ~14.6 GB/s and q8_0 to ~17.3 GB/s per Zen 3 core; with two, ~15.5 and ~19.3. The scales dw · dx of the 8
// blocks are one multiply, a pair's lanes one permute of it (q4_0 ~16.1 GB/s). (Two rows at once, sharing the
// token's loads, measured slower: ~12 GB/s for q8_0, two streams a row apart.)
// The decode step of blocks b … b + 7 given their scales dw8 (q4_1 / q5_1: mins mw8) and load(k), which returns pair
// k (blocks b + 2k, b + 2k + 1) as load_pair gives it: the GGUF blocks below, and `--quantize 4`'s int4 rows
// (int4_group8_dec).
template <Fmt F, class LoadPair>
TAVX2 INL void dec8(__m256 dw8, __m256 mw8, int64_t b, const LegacyAct& a, __m256* acc, const LoadPair& load) {
  using L = Lay<F>;
  if constexpr (L::min || L::S != 0) {
    if constexpr (!L::min) mw8 = _mm256_mul_ps(dw8, _mm256_set1_ps(-static_cast<float>(L::S)));
    acc[0] = _mm256_fmadd_ps(mw8, _mm256_load_ps(a.sd + b), acc[0]);
  }
  const __m256 s8 = _mm256_mul_ps(dw8, _mm256_load_ps(a.d + b));  // dw · dx of the 8 blocks
#pragma GCC unroll 4
  for (int k = 0; k < 4; k++) {
    const PairW pw = load(k);
    const int64_t q = legacy_q_index(b + 2 * k, 0);
    const __m256i xl = _mm256_load_si256(reinterpret_cast<const __m256i*>(a.q + q));
    const __m256i xh = _mm256_load_si256(reinterpret_cast<const __m256i*>(a.q + q + 64));
    const __m256i is = pair_dot<F>(pw, xl, xh);
    const __m256 s = _mm256_permutevar8x32_ps(s8, _mm256_setr_epi32(2 * k, 2 * k, 2 * k, 2 * k, 2 * k + 1, 2 * k + 1, 2 * k + 1, 2 * k + 1));
    acc[k & 1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is), s, acc[k & 1]);
  }
}

template <Fmt F, bool PF = true>
TAVX2 INL void group8_dec(const uint8_t* p, int64_t b, const LegacyAct& a, __m256* acc) {
  using L = Lay<F>;
  const __m256 dw8 = f16x8<L::B>(p), mw8 = L::min ? f16x8<L::B>(p + 2) : _mm256_setzero_ps();
  dec8<F>(dw8, mw8, b, a, acc, [&](int k) TAVX2 {
    const uint8_t* pk = p + 2 * k * L::B;
    if constexpr (PF) _mm_prefetch(reinterpret_cast<const char*>(pk + kAvx2Prefetch), _MM_HINT_T0);
    return load_pair<F>(pk);
  });
}

// Row r for the one token (decode); a last partial group of blocks as in tile().
template <Fmt F>
TAVX2 void tile_dec(const WView& w, const char* qact, float* y, int64_t r) {
  using L = Lay<F>;
  const int64_t nb = w.cols / 32, rb = nb * L::B;
  const uint8_t* row = static_cast<const uint8_t*>(w.data) + r * rb;
  const LegacyAct a = legacy_act(const_cast<char*>(qact), w.cols);
  __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
  int64_t b = 0;
  for (; b + 8 <= nb; b += 8) group8_dec<F>(row + b * L::B, b, a, acc);
  if (b < nb) {
    alignas(32) uint8_t last[8 * L::B] = {};
    std::memcpy(last, row + b * L::B, (nb - b) * L::B);
    group8_dec<F, false>(last, b, a, acc);
  }
  y[r] = hsum256(_mm256_add_ps(acc[0], acc[1]));
}

// q8_0 prefill with rows as lanes: 8 rows' blocks are transposed (once per 8 rows, into per-thread scratch) so that
// a register holds the same values of one block from each of the 8 rows, and one token's activations, broadcast,
// multiply all 8 rows at once; a block's steps stay in int32, and the scale step is one cvt + fma per 8 rows'
// blocks and token (dw of the 8 rows × the token's dx). Two kernels, exact integer sums in both:
// - int8 (below kIl16MinT tokens): a register holds 4 values of each row; vpsignb moves the weights' signs onto x
//   (q8_0's weights are signed), vpmaddubsw multiplies |w| by it, vpmaddwd by ones widens. Scratch per block: dw
//   f32[8], then per 4-value chunk j: w int8[8 rows][4] and |w|; 544 bytes.
// - int16 (from kIl16MinT tokens): a register holds a pair of values of each row, widened; vpmaddwd multiplies it
//   by the token's pair (int16, broadcast) and sums the pair into the row's lane. Per 32 products and token that is
//   2 vpmaddwd + 2 vpaddd + ¼ broadcast (4 groups of 8 rows share one), against int8's vpsignb + vpmaddubsw +
//   vpmaddwd + vpaddd + a broadcast, whose first three share the same two vector-multiply pipes (Zen 3 / Skylake).
//   Its transpose costs ~twice int8's, which only many tokens repay (Zen 3, one core, 4096²: int16 / int8 = 0.73
//   at T = 4, 0.94 at 16, 1.02 at 24, 1.16 at 128 and 512). Scratch per block: dw f32[8], then per value pair p
//   (values 2p, 2p + 1): int16 [8 rows][2]; the same 544 bytes.
constexpr int64_t kIlBlock = 544;
constexpr int64_t kIl16MinT = 24;

// Block b of rows p, p + rb, … (8 rows): its 8 scales to o as f32, and c[j] = values 4j … 4j+3 of rows 0 … 7 (dword i
// = row i's 4 int8).
TAVX2 INL void q8_chunks8(const uint8_t* p, int64_t rb, uint8_t* o, __m256i* c) {
  __m256i R[8];
  uint64_t lo = 0, hi = 0;
  for (int i = 0; i < 8; i++) {
    R[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i * rb + 2));
    (i < 4 ? lo : hi) |= static_cast<uint64_t>(le16(p + i * rb)) << (16 * (i & 3));
  }
  _mm256_store_ps(reinterpret_cast<float*>(o), _mm256_cvtph_ps(_mm_insert_epi64(_mm_cvtsi64_si128(static_cast<long long>(lo)), static_cast<long long>(hi), 1)));
  transpose8_epi32(R, c);
}

TAVX2 void q8_transpose8_i8(const uint8_t* w0, int64_t rb, int64_t nb, uint8_t* s) {
  for (int64_t b = 0; b < nb; b++) {
    uint8_t* o = s + b * kIlBlock;
    __m256i c[8];
    q8_chunks8(w0 + b * 34, rb, o, c);
    for (int j = 0; j < 8; j++) {
      _mm256_store_si256(reinterpret_cast<__m256i*>(o + 32 + 64 * j), c[j]);
      _mm256_store_si256(reinterpret_cast<__m256i*>(o + 64 + 64 * j), _mm256_sign_epi8(c[j], c[j]));
    }
  }
}

// Chunks c (values 4j … 4j+3 of 8 rows, int8) as int16 pairs at o + 32 + 32p: rows 0-3 / 4-7 widened (qword i =
// row i's 4 values), their dwords sorted into pairs (4j, 4j+1) then (4j+2, 4j+3).
TAVX2 INL void store_pairs_i16(const __m256i* c, uint8_t* o) {
  const __m256i pairs = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
  for (int j = 0; j < 8; j++) {
    const __m256i e0 = _mm256_permutevar8x32_epi32(_mm256_cvtepi8_epi16(_mm256_castsi256_si128(c[j])), pairs);
    const __m256i e1 = _mm256_permutevar8x32_epi32(_mm256_cvtepi8_epi16(_mm256_extracti128_si256(c[j], 1)), pairs);
    _mm256_store_si256(reinterpret_cast<__m256i*>(o + 32 + 64 * j), _mm256_permute2x128_si256(e0, e1, 0x20));
    _mm256_store_si256(reinterpret_cast<__m256i*>(o + 64 + 64 * j), _mm256_permute2x128_si256(e0, e1, 0x31));
  }
}

TAVX2 void q8_transpose8_i16(const uint8_t* w0, int64_t rb, int64_t nb, uint8_t* s) {
  for (int64_t b = 0; b < nb; b++) {
    uint8_t* o = s + b * kIlBlock;
    __m256i c[8];
    q8_chunks8(w0 + b * 34, rb, o, c);
    store_pairs_i16(c, o);
  }
}

// The same scratch from `--quantize 8`'s int8 rows (Fmt::Q8: cols int8 per row, one f32 scale per row, which is
// every block's dw): rows r … r + n − 1, zeros past n.
TAVX2 void q8row_transpose8_i16(const WView& w, int64_t r, int64_t n, uint8_t* s) {
  const int64_t nb = w.cols / 32;
  const int8_t* base = static_cast<const int8_t*>(w.data);
  alignas(32) float dw[8];
  for (int i = 0; i < 8; i++) dw[i] = i < n ? w.scales[r + i] : 0.f;
  const __m256 d = _mm256_load_ps(dw);
  for (int64_t b = 0; b < nb; b++) {
    uint8_t* o = s + b * kIlBlock;
    __m256i R[8], c[8];
    for (int i = 0; i < 8; i++)
      R[i] = i < n ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(base + (r + i) * w.cols + 32 * b)) : _mm256_setzero_si256();
    _mm256_store_ps(reinterpret_cast<float*>(o), d);
    transpose8_epi32(R, c);
    store_pairs_i16(c, o);
  }
}

// The tokens' activations as int16 in value order (x16[t · cols + i]), the pairs q8_rows8_i16 broadcasts.
TAVX2 void q8_widen(const char* qa, int64_t per, int64_t cols, int64_t T, int16_t* x16) {
  for (int64_t t = 0; t < T; t++) {
    const int8_t* q = legacy_act(const_cast<char*>(qa) + t * per, cols).q;
    int16_t* o = x16 + t * cols;
    for (int64_t b = 0; b < cols / 32; b++) {
      const __m128i l = _mm_load_si128(reinterpret_cast<const __m128i*>(q + legacy_q_index(b, 0)));
      const __m128i h = _mm_load_si128(reinterpret_cast<const __m128i*>(q + legacy_q_index(b, 16)));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + 32 * b), _mm256_cvtepi8_epi16(l));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + 32 * b + 16), _mm256_cvtepi8_epi16(h));
    }
  }
}

// int8: rows r … r + 7 × TT tokens from t0, from the transposed scratch s.
template <int TT>
TAVX2 void q8_rows8_i8(const uint8_t* s, int64_t nb, const char* qa, int64_t per, int64_t cols, float* y, int64_t ldy,
                    int64_t r, int64_t t0) {
  LegacyAct a[TT];
  for (int t = 0; t < TT; t++) a[t] = legacy_act(const_cast<char*>(qa) + (t0 + t) * per, cols);
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[TT];
  for (int t = 0; t < TT; t++) acc[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; b++) {
    const uint8_t* sb = s + b * kIlBlock;
    __m256i ai[TT];
    for (int t = 0; t < TT; t++) ai[t] = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++) {
      const __m256i wq = _mm256_load_si256(reinterpret_cast<const __m256i*>(sb + 32 + 64 * j));
      const __m256i aw = _mm256_load_si256(reinterpret_cast<const __m256i*>(sb + 64 + 64 * j));
      const int64_t qi = legacy_q_index(b, 4 * j);
      for (int t = 0; t < TT; t++) {
        const __m256i xb = _mm256_set1_epi32(static_cast<int>(le32(reinterpret_cast<const uint8_t*>(a[t].q + qi))));
        ai[t] = _mm256_add_epi32(ai[t], _mm256_madd_epi16(_mm256_maddubs_epi16(aw, _mm256_sign_epi8(xb, wq)), ones));
        __asm__("" : "+x"(ai[t]));  // a running sum (GCC would otherwise build a tree and spill the products)
      }
    }
    const __m256 dw = _mm256_load_ps(reinterpret_cast<const float*>(sb));
    for (int t = 0; t < TT; t++)
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ai[t]), _mm256_mul_ps(dw, _mm256_set1_ps(a[t].d[b])), acc[t]);
  }
  for (int t = 0; t < TT; t++) _mm256_storeu_ps(y + (t0 + t) * ldy + r, acc[t]);
}

// int16: rows r … r + 8G − 1 × TT tokens from t0, from G transposed scratches (s + g · nb · kIlBlock); token t's int16
// activations at x16 + (t − x0) · cols.
template <int TT, int G>
TAVX2 void q8_rows8_i16(const uint8_t* s, int64_t nb, const int16_t* x16, int64_t x0, const char* qa, int64_t per,
                    int64_t cols, float* y, int64_t ldy, int64_t r, int64_t t0) {
  LegacyAct a[TT];
  const int16_t* xt[TT];
  for (int t = 0; t < TT; t++) a[t] = legacy_act(const_cast<char*>(qa) + (t0 + t) * per, cols), xt[t] = x16 + (t0 + t - x0) * cols;
  __m256 acc[TT][G];
  for (int t = 0; t < TT; t++)
    for (int g = 0; g < G; g++) acc[t][g] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; b++) {
    const uint8_t* sb = s + b * kIlBlock;
    __m256i ai[TT][G];
    for (int t = 0; t < TT; t++)
      for (int g = 0; g < G; g++) ai[t][g] = _mm256_setzero_si256();
#pragma GCC unroll 16
    for (int j = 0; j < 16; j++) {
      __m256i w[G];
      for (int g = 0; g < G; g++) w[g] = _mm256_load_si256(reinterpret_cast<const __m256i*>(sb + g * nb * kIlBlock + 32 + 32 * j));
      for (int t = 0; t < TT; t++) {
        int32_t xp;
        std::memcpy(&xp, xt[t] + 32 * b + 2 * j, 4);
        const __m256i xb = _mm256_set1_epi32(xp);
        for (int g = 0; g < G; g++) {
          ai[t][g] = _mm256_add_epi32(ai[t][g], _mm256_madd_epi16(w[g], xb));
          __asm__("" : "+x"(ai[t][g]));  // a running sum (GCC would otherwise build a tree and spill the products)
        }
      }
    }
    for (int g = 0; g < G; g++) {
      const __m256 dw = _mm256_load_ps(reinterpret_cast<const float*>(sb + g * nb * kIlBlock));
      for (int t = 0; t < TT; t++)
        acc[t][g] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ai[t][g]), _mm256_mul_ps(dw, _mm256_set1_ps(a[t].d[b])), acc[t][g]);
    }
  }
  for (int t = 0; t < TT; t++)
    for (int g = 0; g < G; g++) _mm256_storeu_ps(y + (t0 + t) * ldy + r + 8 * g, acc[t][g]);
}

// Rows r … r + 8G − 1 transposed by src(first row, scratch), then tokens [t0, t1) TT at a time (the int32 sums of G
// groups × TT tokens, the G weight registers and the broadcast fill the 16 ymm registers; the f32 sums, touched once
// per block, may spill).
template <int G, int TT, class Src>
TAVX2 void q8_group_run(const Src& src, int64_t cols, uint8_t* s, const int16_t* x16, const char* qa, int64_t per,
                        float* y, int64_t ldy, int64_t t0, int64_t t1, int64_t r) {
  const int64_t nb = cols / 32;
  for (int g = 0; g < G; g++) src(r + 8 * g, s + g * nb * kIlBlock);
  int64_t t = t0;
  for (; t + TT <= t1; t += TT) q8_rows8_i16<TT, G>(s, nb, x16, t0, qa, per, cols, y, ldy, r, t);
  for (; t < t1; t++) q8_rows8_i16<1, G>(s, nb, x16, t0, qa, per, cols, y, ldy, r, t);
}

// The int16 kernel over rows [r0, r1) in groups of 32, 16, then 8 rows (returns where the rest starts), over chunks of
// kIlTokens tokens: a chunk's int16 activations (≤ 128 · cols · 2 bytes) stay in L2 / L3 while every group reads
// them. Zen 3, one core, 4096² q8_0: 111 → 131 GOP/s at T = 512 (2 × 8 rows × 3 tokens: 128; 8 × 4: 110).
constexpr int64_t kIlTokens = 128;
// One per thread for every source (4 transposed groups and a chunk's int16 activations: ~1.8 MB at 5504 columns).
struct I16Scratch {
  std::vector<uint8_t> w;
  std::vector<int16_t> x16;
};
inline I16Scratch& i16_scratch() {
  thread_local I16Scratch s;
  return s;
}
template <class Src>
TAVX2 int64_t q8_i16_rows(const Src& src, int64_t cols, const char* qa, int64_t per, float* y, int64_t ldy, int64_t T,
                          int64_t r0, int64_t r1) {
  const int64_t nb = cols / 32;
  uint8_t* s = scratch64(i16_scratch().w, 4 * nb * kIlBlock);
  std::vector<int16_t>& x16 = i16_scratch().x16;
  const int64_t chunk = T < kIlTokens ? T : kIlTokens;
  if (x16.size() < static_cast<size_t>(chunk * cols)) x16.resize(chunk * cols);
  int64_t r = r0;
  for (int64_t t0 = 0; t0 < T; t0 += chunk) {
    const int64_t t1 = t0 + chunk < T ? t0 + chunk : T;
    q8_widen(qa + t0 * per, per, cols, t1 - t0, x16.data());
    r = r0;
    for (; r + 32 <= r1; r += 32) q8_group_run<4, 2>(src, cols, s, x16.data(), qa, per, y, ldy, t0, t1, r);
    if (r + 16 <= r1) q8_group_run<2, 3>(src, cols, s, x16.data(), qa, per, y, ldy, t0, t1, r), r += 16;
    if (r + 8 <= r1) q8_group_run<1, 3>(src, cols, s, x16.data(), qa, per, y, ldy, t0, t1, r), r += 8;
  }
  return r;
}

// q8_0's rows [r0, r1) with rows as lanes (returns where the rest, for tile(), starts): int8 below kIl16MinT tokens,
// int16 from there.
TAVX2 int64_t q8_rows_il(const WView& w, const char* qa, int64_t per, float* y, int64_t ldy, int64_t T, int64_t r0,
                         int64_t r1) {
  const int64_t nb = w.cols / 32, rb = nb * Lay<Fmt::Q8_0>::B;
  const uint8_t* w0 = static_cast<const uint8_t*>(w.data);
  if (T >= kIl16MinT) {
    const auto src = [&](int64_t r, uint8_t* o) { q8_transpose8_i16(w0 + r * rb, rb, nb, o); };
    return q8_i16_rows(src, w.cols, qa, per, y, ldy, T, r0, r1);
  }
  thread_local std::vector<uint8_t> buf;
  uint8_t* s = scratch64(buf, nb * kIlBlock);
  int64_t r = r0;
  for (; r + 8 <= r1; r += 8) {
    q8_transpose8_i8(w0 + r * rb, rb, nb, s);
    int64_t t = 0;
    for (; t + 4 <= T; t += 4) q8_rows8_i8<4>(s, nb, qa, per, w.cols, y, ldy, r, t);
    for (; t < T; t++) q8_rows8_i8<1>(s, nb, qa, per, w.cols, y, ldy, r, t);
  }
  return r;
}

// The same plan for q4_0 … q5_1: 8 rows' 16 code bytes transposed per dword, their nibbles split into the unsigned
// codes of values 4j … 4j+3 (low) and 16+4j … (high) (q5: plus the fifth bits), so chunk j of all 8 rows is one
// register. The chunks' vpmaddubsw sums stay in int16 (4-bit: 8 chunks ≤ 8 · 2 · 15 · 127 = 30480; 5-bit: two sums of
// 4); the shift (−S · dw) or min is one fma per 8 rows' blocks and token with the token's sd (~1.6-2x on Zen 3).
// Scratch per block: dw f32[8], m f32[8], codes [8 chunks][8 rows][4].
constexpr int64_t kIl4Block = 320;

template <Fmt F>
TAVX2 void q4_transpose8(const uint8_t* w0, int64_t rb, int64_t nb, uint8_t* s) {
  using L = Lay<F>;
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  for (int64_t b = 0; b < nb; b++) {
    const uint8_t* p = w0 + b * L::B;
    uint64_t d[2] = {0, 0}, m[2] = {0, 0};
    for (int i = 0; i < 8; i++) {
      d[i >> 2] |= static_cast<uint64_t>(le16(p + i * rb)) << (16 * (i & 3));
      if constexpr (L::min) m[i >> 2] |= static_cast<uint64_t>(le16(p + i * rb + 2)) << (16 * (i & 3));
    }
    uint8_t* o = s + b * kIl4Block;
    const __m256 dw = _mm256_cvtph_ps(_mm_insert_epi64(_mm_cvtsi64_si128(static_cast<long long>(d[0])), static_cast<long long>(d[1]), 1));
    const __m256 mw = L::min ? _mm256_cvtph_ps(_mm_insert_epi64(_mm_cvtsi64_si128(static_cast<long long>(m[0])), static_cast<long long>(m[1]), 1))
                             : _mm256_mul_ps(dw, _mm256_set1_ps(-static_cast<float>(L::S)));
    _mm256_store_ps(reinterpret_cast<float*>(o), dw);
    _mm256_store_ps(reinterpret_cast<float*>(o + 32), mw);
    // X_i = [row i | row i + 4]; a 4×4 dword transpose per 128-bit lane gives c_k = dword k of rows 0 … 7
    __m256i X[4];
    for (int i = 0; i < 4; i++) X[i] = load2(p + i * rb + L::o, p + (i + 4) * rb + L::o);
    const __m256i t0 = _mm256_unpacklo_epi32(X[0], X[1]), t1 = _mm256_unpackhi_epi32(X[0], X[1]);
    const __m256i t2 = _mm256_unpacklo_epi32(X[2], X[3]), t3 = _mm256_unpackhi_epi32(X[2], X[3]);
    const __m256i c[4] = {_mm256_unpacklo_epi64(t0, t2), _mm256_unpackhi_epi64(t0, t2), _mm256_unpacklo_epi64(t1, t3),
                          _mm256_unpackhi_epi64(t1, t3)};
    __m256i cj[8];
    for (int k = 0; k < 4; k++) cj[k] = _mm256_and_si256(c[k], m4), cj[k + 4] = _mm256_and_si256(_mm256_srli_epi16(c[k], 4), m4);
    if constexpr (L::five) {
      // chunk j holds values 4j … 4j+3 in both halves, so its fifth bits are bits 4j … 4j+3 of each row's qh:
      // spread the row's 4 bits over its 4 bytes and test one each
      // (one setr, not an insert per row: an insert's lane must be an immediate, which a loop gives only once unrolled)
      const auto qh_of = [&](int i) { return static_cast<int>(le32(p + i * rb + L::h)); };
      const __m256i qh = _mm256_setr_epi32(qh_of(0), qh_of(1), qh_of(2), qh_of(3), qh_of(4), qh_of(5), qh_of(6), qh_of(7));
      const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 4, 4, 4, 4, 8, 8, 8, 8, 12, 12, 12, 12, 0, 0, 0, 0, 4, 4, 4, 4, 8, 8, 8, 8, 12, 12, 12, 12);
      const __m256i bit = _mm256_set1_epi32(0x08040201), x10 = _mm256_set1_epi8(0x10);
      for (int j = 0; j < 8; j++) {
        const __m256i v = _mm256_shuffle_epi8(_mm256_srli_epi32(qh, 4 * j), spread);
        cj[j] = _mm256_or_si256(cj[j], _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit), x10));
      }
    }
    for (int j = 0; j < 8; j++) _mm256_store_si256(reinterpret_cast<__m256i*>(o + 64 + 32 * j), cj[j]);
  }
}

template <int TT, bool FIVE>
TAVX2 void q4_rows8(const uint8_t* s, int64_t nb, const char* qa, int64_t per, int64_t cols, float* y, int64_t ldy,
                    int64_t r, int64_t t0) {
  LegacyAct a[TT];
  for (int t = 0; t < TT; t++) a[t] = legacy_act(const_cast<char*>(qa) + (t0 + t) * per, cols);
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[TT];
  for (int t = 0; t < TT; t++) acc[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; b++) {
    const uint8_t* sb = s + b * kIl4Block;
    // int16 sums over 8 chunks (4-bit codes) or two of 4 (5-bit: ≤ 4 · 2 · 31 · 127 = 31496 each)
    __m256i p16[TT], q16[TT];
    for (int t = 0; t < TT; t++) p16[t] = q16[t] = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++) {
      const __m256i u = _mm256_load_si256(reinterpret_cast<const __m256i*>(sb + 64 + 32 * j));
      const int64_t qi = legacy_q_index(b, 4 * j);
      for (int t = 0; t < TT; t++) {
        const __m256i xb = _mm256_set1_epi32(static_cast<int>(le32(reinterpret_cast<const uint8_t*>(a[t].q + qi))));
        __m256i& ps = FIVE && j >= 4 ? q16[t] : p16[t];
        ps = _mm256_add_epi16(ps, _mm256_maddubs_epi16(u, xb));
        __asm__("" : "+x"(ps));
      }
    }
    const __m256 dw = _mm256_load_ps(reinterpret_cast<const float*>(sb));
    const __m256 mw = _mm256_load_ps(reinterpret_cast<const float*>(sb + 32));
    for (int t = 0; t < TT; t++) {
      __m256i is = _mm256_madd_epi16(p16[t], ones);
      if constexpr (FIVE) is = _mm256_add_epi32(is, _mm256_madd_epi16(q16[t], ones));
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is), _mm256_mul_ps(dw, _mm256_set1_ps(a[t].d[b])), acc[t]);
      acc[t] = _mm256_fmadd_ps(mw, _mm256_set1_ps(a[t].sd[b]), acc[t]);
    }
  }
  for (int t = 0; t < TT; t++) _mm256_storeu_ps(y + (t0 + t) * ldy + r, acc[t]);
}

// Rows [r0, r1) in groups of 8 (returns where the rest, for tile(), starts); every token per group.
template <Fmt F>
TAVX2 int64_t rows_il(const WView& w, const char* qa, int64_t per, float* y, int64_t ldy, int64_t T, int64_t r0,
                      int64_t r1) {
  if constexpr (F == Fmt::Q8_0) {
    return q8_rows_il(w, qa, per, y, ldy, T, r0, r1);
  } else {
    const int64_t nb = w.cols / 32, rb = nb * Lay<F>::B;
    thread_local std::vector<uint8_t> buf;
    uint8_t* s = scratch64(buf, nb * kIl4Block);
    int64_t r = r0;
    for (; r + 8 <= r1; r += 8) {
      q4_transpose8<F>(static_cast<const uint8_t*>(w.data) + r * rb, rb, nb, s);
      int64_t t = 0;
      for (; t + 4 <= T; t += 4) q4_rows8<4, Lay<F>::five>(s, nb, qa, per, w.cols, y, ldy, r, t);
      for (; t < T; t++) q4_rows8<1, Lay<F>::five>(s, nb, qa, per, w.cols, y, ldy, r, t);
    }
    return r;
  }
}

// int4 group 32 (`--quantize 4`'s q4_group: byte k of a group holds its values 2k (low nibble) and 2k + 1 (high),
// signed) prefill through q4_rows8: 8 rows' groups are turned into the q4_0 plan's scratch (the f32 group scales as
// dw, exactly as stored; −8 · dw as the shift; the codes, xor 8 → unsigned, in value order, dword-transposed so chunk
// j = values 4j … 4j+3 of the 8 rows). Rows past r1 in a last partial group are zeros, their outputs dropped.
TAVX2 void q4g32_transpose8(const WView& w, int64_t r, int64_t n, uint8_t* s) {
  const int64_t nb = w.cols / 32, rb = w.cols / 2;
  const uint8_t* base = static_cast<const uint8_t*>(w.data);
  const __m128i m4 = _mm_set1_epi8(0x0f), flip = _mm_set1_epi8(static_cast<char>(0x88));
  for (int64_t b = 0; b < nb; b++) {
    uint8_t* o = s + b * kIl4Block;
    alignas(32) float dw[8];
    __m256i R[8];
    for (int i = 0; i < 8; i++) {
      if (i >= n) {
        dw[i] = 0.f, R[i] = _mm256_setzero_si256();
        continue;
      }
      dw[i] = w.scales[(r + i) * nb + b];
      const __m128i v = _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(base + (r + i) * rb + 16 * b)), flip);
      const __m128i lo = _mm_and_si128(v, m4), hi = _mm_and_si128(_mm_srli_epi16(v, 4), m4);
      R[i] = _mm256_set_m128i(_mm_unpackhi_epi8(lo, hi), _mm_unpacklo_epi8(lo, hi));  // codes of values 0 … 31
    }
    const __m256 d = _mm256_load_ps(dw);
    _mm256_store_ps(reinterpret_cast<float*>(o), d);
    _mm256_store_ps(reinterpret_cast<float*>(o + 32), _mm256_mul_ps(d, _mm256_set1_ps(-8.f)));
    __m256i c[8];
    transpose8_epi32(R, c);
    for (int j = 0; j < 8; j++) _mm256_store_si256(reinterpret_cast<__m256i*>(o + 64 + 32 * j), c[j]);
  }
}

// Rows in blocks of kRowBlock (their weights, ≤ 32 · 34 · cols / 32 bytes, stay in L2), and per block every
// 4-token group in turn over its rows: the group's activations (4 · legacy_act_bytes) stay in L1 while the
// rows stream from L2. (Rows outside, tokens inside read ~100 activation bytes per block pair and token from L2,
// which bounded the kernel.)
constexpr int64_t kRowBlock = 32;
constexpr int kTT = 4;

// Decode (T = 1): tile_dec. Small T: one row × up to 4 tokens per tile (4 accumulators, the unpacked pair, its scales
// and one token's x fit the 16 ymm registers; each pair is unpacked once per 4 tokens). From kIlMinT tokens
// (blocks.h) the rows-as-lanes path takes every whole group of 8 rows; tile() the rest.
template <Fmt F>
TAVX2 void rows_avx2(const WView& w, const void* qact, float* y, int64_t ldy, int64_t T, int64_t r0, int64_t r1) {
  const char* qa = static_cast<const char*>(qact);
  const int64_t per = legacy_act_bytes(w.cols);
  if (T == 1) {
    for (int64_t r = r0; r < r1; r++) tile_dec<F>(w, qa, y, r);
    return;
  }
  if (T >= kIlMinT) r0 = rows_il<F>(w, qa, per, y, ldy, T, r0, r1);
  for (int64_t rb = r0; rb < r1; rb += kRowBlock) {
    const int64_t re = rb + kRowBlock < r1 ? rb + kRowBlock : r1;
    for (int64_t t = 0; t < T; t += kTT) {
      const int64_t n = T - t < kTT ? T - t : kTT;
      for (int64_t r = rb; r < re; r++) {
        switch (n) {
          case 4: tile<F, 4>(w, qa, per, y, ldy, r, t); break;
          case 3: tile<F, 3>(w, qa, per, y, ldy, r, t); break;
          case 2: tile<F, 2>(w, qa, per, y, ldy, r, t); break;
          default: tile<F, 1>(w, qa, per, y, ldy, r, t); break;
        }
      }
    }
  }
}

// One step of q8row_dec: blocks b, b + 1 of an int8 row at p (64 bytes) × the token, into acc.
TAVX2 INL __m256 q8row_pair(const uint8_t* p, int64_t b, const LegacyAct& a, __m256 acc) {
  PairW pw;
  pw.lo = load2(p, p + 32), pw.hi = load2(p + 16, p + 48);
  q8_signs(pw);
  const int64_t q = legacy_q_index(b, 0);
  const __m256i xl = _mm256_load_si256(reinterpret_cast<const __m256i*>(a.q + q));
  const __m256i xh = _mm256_load_si256(reinterpret_cast<const __m256i*>(a.q + q + 64));
  return _mm256_fmadd_ps(_mm256_cvtepi32_ps(pair_dot<Fmt::Q8_0>(pw, xl, xh)), _mm256_load_ps(a.dl + 4 * b), acc);
}

// `--quantize 8`'s int8 rows in decode (T = 1) with Q8_0-style activations: group8_dec's q8_0 plan without the
// per-block weight scales (a pair of 32-value blocks per step, its halves in lanes as unpack2 gives them, the token's
// d per lane; the row's f32 scale once at the end). The exact f32 row kernel converts every weight to f32 and tops
// out near 12 GB/s per Zen 3 core; this streams like q8_0 (~20).
TAVX2 void q8row_dec(const WView& w, const void* qact, float* y, int64_t r0, int64_t r1) {
  const int64_t nb = w.cols / 32, np = nb / 2;
  const LegacyAct a = legacy_act(const_cast<void*>(qact), w.cols);
  for (int64_t r = r0; r < r1; r++) {
    const uint8_t* row = static_cast<const uint8_t*>(w.data) + r * w.cols;
    __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t i = 0; i < np; i++) {
      _mm_prefetch(reinterpret_cast<const char*>(row + 64 * i + kAvx2Prefetch), _MM_HINT_T0);
      acc[i & 1] = q8row_pair(row + 64 * i, 2 * i, a, acc[i & 1]);
    }
    if (nb & 1) {  // a last lone block against a zero block (the activations are zero padded)
      alignas(32) uint8_t last[64] = {};
      std::memcpy(last, row + 64 * np, 32);
      acc[0] = q8row_pair(last, 2 * np, a, acc[0]);
    }
    y[r] = hsum256(_mm256_add_ps(acc[0], acc[1])) * w.scales[r];
  }
}

// run(yo, ld, ro) writes rows ro … ro + 7 of every token into yo (row stride ld): for a whole group of 8 rows
// (n = 8) that is y itself at row r; a last partial group (n < 8) writes a per-thread T × 8 buffer, whose first n
// lanes are kept.
template <class Run>
void into_rows(float* y, int64_t ldy, int64_t T, int64_t r, int64_t n, const Run& run) {
  if (n == 8) return run(y, ldy, r);
  thread_local std::vector<float> part;
  if (part.size() < static_cast<size_t>(8 * T)) part.resize(8 * T);
  run(part.data(), int64_t(8), int64_t(0));
  for (int64_t t = 0; t < T; t++) std::memcpy(y + t * ldy + r, part.data() + t * 8, n * sizeof(float));
}

}  // namespace

void q4g32_rows_avx2(const WView& w, const void* qact, float* y, int64_t ldy, int64_t T, int64_t r0, int64_t r1) {
  const char* qa = static_cast<const char*>(qact);
  const int64_t nb = w.cols / 32, per = legacy_act_bytes(w.cols);
  thread_local std::vector<uint8_t> buf;
  uint8_t* s = scratch64(buf, nb * kIl4Block);
  for (int64_t r = r0; r < r1; r += 8) {
    const int64_t n = r1 - r < 8 ? r1 - r : 8;
    q4g32_transpose8(w, r, n, s);
    into_rows(y, ldy, T, r, n, [&](float* yo, int64_t ld, int64_t ro) {
      int64_t t = 0;
      for (; t + 4 <= T; t += 4) q4_rows8<4, false>(s, nb, qa, per, w.cols, yo, ld, ro, t);
      for (; t < T; t++) q4_rows8<1, false>(s, nb, qa, per, w.cols, yo, ld, ro, t);
    });
  }
}

namespace {

// Blocks b … b + 7 (32 values each) of an int4 row (q4_group, q4_row): codes at p (16 bytes per block, as stored:
// byte j holds values 2j (low nibble) and 2j + 1), their 8 f32 scales dw8. Pair k (blocks 2k, 2k + 1) is one 32-byte
// load whose lanes are the two blocks; low nibbles meet LegacyAct::q's low halves (the even values,
// legacy_quantize_even_odd), high nibbles the odd ones. Signed codes xor 8 → unsigned, the −8 · dw · dx · Σ q shift
// through sd: q4_0's decode step (dec8) with this pair load.
template <bool PF = true>
TAVX2 INL void int4_group8_dec(const uint8_t* p, __m256 dw8, int64_t b, const LegacyAct& a, __m256* acc) {
  dec8<Fmt::Q4_0>(dw8, _mm256_setzero_ps(), b, a, acc, [&](int k) TAVX2 {
    if (PF && k % 2 == 0) _mm_prefetch(reinterpret_cast<const char*>(p + 32 * k + kAvx2Prefetch), _MM_HINT_T0);
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const __m256i v = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32 * k)), _mm256_set1_epi8(static_cast<char>(0x88)));
    PairW pw;
    pw.lo = _mm256_and_si256(v, m4), pw.hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
    return pw;
  });
}

// The scales of blocks b … b + 7 of a row (b a multiple of 8, b + 8 ≤ the row's blocks) when one scale covers m
// blocks: m = 1, 2, or a multiple of 4 (group 32, 64, k · 128; a row format's m is its block count), so 8 blocks span
// ≤ 2 scales from 4 on. For m ≥ 4 the caller walks (g, gend): block b's group and the block where it ends (a 64-bit
// divide per step cost ~10 % at q4_row).
struct Int4Scales {
  const float* sw;
  int64_t m, g = 0, gend;
  TAVX2 INL __m256 at(int64_t b) {
    if (m == 1) return _mm256_loadu_ps(sw + b);
    if (m == 2) return _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(sw + b / 2)), _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3));
    while (gend <= b) g++, gend += m;
    const int64_t split = gend - b;  // blocks from `split` on belong to group g + 1
    if (split >= 8) return _mm256_set1_ps(sw[g]);
    const __m256 second = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(static_cast<int>(split - 1))));
    return _mm256_blendv_ps(_mm256_set1_ps(sw[g]), _mm256_set1_ps(sw[g + 1]), second);
  }
};

}  // namespace

bool int4_dec_avx2_supports(const WView& w) {
  if (w.cols % 32 != 0) return false;
  if (w.fmt == Fmt::Q4) return true;
  return w.fmt == Fmt::Q4G && (w.group == 32 || w.group == 64 || (w.group > 0 && w.group % 128 == 0));
}

// One Zen 3 core, 1024×4096, through matmul_q4_avx2.cc's QuantX plan (per-lane dx and Σ loads, a scale permute and
// multiply per 64 weights) → here: group 32 15.2 → 27.3 GB/s, group 64 13.3 → 21.9, group 128 13.0 → 20.2, q4_row
// 17.8 → 20.6.
TAVX2 void int4_dec_avx2(const WView& w, const void* qact, float* y, int64_t, int64_t, int64_t r0, int64_t r1) {
  const int64_t nb = w.cols / 32, rb = w.cols / 2;
  const int64_t m = w.fmt == Fmt::Q4 ? nb : w.group / 32, ng = nb / m;
  const LegacyAct a = legacy_act(const_cast<void*>(qact), w.cols);
  for (int64_t r = r0; r < r1; r++) {
    const uint8_t* row = static_cast<const uint8_t*>(w.data) + r * rb;
    const float* sw = w.scales + r * ng;
    __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    Int4Scales sc{sw, m, 0, m};
    int64_t b = 0;
    for (; b + 8 <= nb; b += 8) int4_group8_dec(row + 16 * b, sc.at(b), b, a, acc);
    if (b < nb) {  // the last blocks against zero codes with zero scales (the activations are zero padded to 16 blocks)
      alignas(32) uint8_t last[128] = {};
      alignas(32) float lsw[8] = {};
      std::memcpy(last, row + 16 * b, 16 * (nb - b));
      for (int64_t j = 0; j < nb - b; j++) lsw[j] = sw[(b + j) / m];
      int4_group8_dec<false>(last, _mm256_load_ps(lsw), b, a, acc);
    }
    y[r] = hsum256(_mm256_add_ps(acc[0], acc[1]));
  }
}

void q8row_rows_avx2(const WView& w, const void* qact, float* y, int64_t ldy, int64_t T, int64_t r0, int64_t r1) {
  if (T == 1) return q8row_dec(w, qact, y, r0, r1);
  const char* qa = static_cast<const char*>(qact);
  const int64_t per = legacy_act_bytes(w.cols);
  const auto src = [&](int64_t r, uint8_t* o) { q8row_transpose8_i16(w, r, 8, o); };
  const int64_t r = q8_i16_rows(src, w.cols, qa, per, y, ldy, T, r0, r1);
  if (r == r1) return;
  // the last < 8 rows: one group padded with zero rows
  const auto pad = [&](int64_t, uint8_t* o) { q8row_transpose8_i16(w, r, r1 - r, o); };
  into_rows(y, ldy, T, r, r1 - r, [&](float* yo, int64_t ld, int64_t) { q8_i16_rows(pad, w.cols, qa, per, yo, ld, T, 0, 8); });
}

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
