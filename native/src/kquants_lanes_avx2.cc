// K-quant prefill on AVX2 with rows as lanes: q4_k / q5_k first, then q2_k / q3_k / q6_k (thresholds in kquants.h;
// kquants_avx2.cc's row plan runs below them and the last rows % 8). q4_k / q5_k: the row plan spends vpmaddubsw +
// vpmaddwd + vpaddd per 32 products and token; here 8
// rows' super-blocks are unpacked once into per-thread scratch so that one register holds 4 codes of each of the 8
// rows, one token's 4 activations are a dword broadcast, and vpmaddubsw + vpaddw (int16 sums) cover 32 products:
//   sub-block s, chunk j (values 4j … 4j+3): p16 += maddubs(codes[s][j], bcast(x.qs[32s + 4j]))   (8 chunks)
//   ai += madd(p16, sc[s])                      int16 pair sums × the rows' 6-bit scale → int32 per row
//   per super-block: acc += cvt(ai) · d · dx − cvt(Σ_s madd(m[s], bcast(x.bsums[2s]))) · dmin · dx
// p16 stays in range: 8 chunks · 2 · 15 · 127 = 30480 (q5_k's 5-bit codes: two sums of 4 chunks, 31496 each).
// These are the row plan's own integers (the Q8K activations, the same sums per super-block), so the results
// differ from it only in the order of the f32 additions.
// Scratch per super-block of 8 rows (kLaneBlock bytes): d f32[8], dmin f32[8], sc[8 sub-blocks] and m[8] as int16
// pairs (v, v) per row lane, then codes[8 sub-blocks][8 chunks] of [8 rows][4] bytes.
//
// q6_k the same way, with its 6-bit codes u (0 … 63, value = u − 32) and 16 signed scales per 16 values: a pair of
// chunks fills p16 (2 · 2 · 63 · 127 = 32004), so p16 meets its sub-block's scale every 2 chunks; the − 32 moves out
// as the row plan does it, − 32 · Σ_s sc_s · bsum_s in the integers (bsums are per 16 values: one per sub-block).
// q3_k (3-bit codes, value = u − 4, signed scales) and q2_k (2-bit codes, unsigned scales, − dmin · m per 16 values
// as a float term) share that plan (kS16Block below).
#include "kquants.h"
#if XV_X86
#include <immintrin.h>

#include <cstring>
#include <vector>

#include "transpose_avx2.h"

#define TAVX2 __attribute__((target("avx2,fma,f16c")))
#define INL inline __attribute__((always_inline))

namespace xv {
namespace kq {
namespace {

constexpr int64_t kD = 0, kDmin = 32, kSc = 64, kMin = 320, kCodes = 576, kLaneBlock = 2624;

TAVX2 INL __m256i ld(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
TAVX2 INL void st(uint8_t* p, __m256i v) { _mm256_store_si256(reinterpret_cast<__m256i*>(p), v); }
TAVX2 INL int32_t le32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// int8 byte k (0 … 3) of every dword of c, sign-extended into both words (v, v); or bytes k, k + 1 as (v_k, v_k+1).
// (q4_k / q5_k's 6-bit scales and mins are below 128, so sign extension keeps them.)
TAVX2 INL __m256i dup_sbyte16(__m256i c, int k, bool pair) {
  const int k2 = pair ? k + 1 : k;
  const __m256i idx = _mm256_setr_epi8(-128, 0, -128, 0, -128, 4, -128, 4, -128, 8, -128, 8, -128, 12, -128, 12, -128, 0, -128, 0,
                                       -128, 4, -128, 4, -128, 8, -128, 8, -128, 12, -128, 12);
  const __m256i add = _mm256_setr_epi8(0, static_cast<char>(k), 0, static_cast<char>(k2), 0, static_cast<char>(k), 0, static_cast<char>(k2), 0,
                                       static_cast<char>(k), 0, static_cast<char>(k2), 0, static_cast<char>(k), 0, static_cast<char>(k2), 0,
                                       static_cast<char>(k), 0, static_cast<char>(k2), 0, static_cast<char>(k), 0, static_cast<char>(k2), 0,
                                       static_cast<char>(k), 0, static_cast<char>(k2), 0, static_cast<char>(k), 0, static_cast<char>(k2));
  return _mm256_srai_epi16(_mm256_shuffle_epi8(c, _mm256_add_epi8(idx, add)), 8);
}

// Rows w, w + rowBytes, … (8 rows) → the scratch s, every super-block.
template <bool Q5>
TAVX2 void transpose8(const uint8_t* w, int64_t rowBytes, int64_t nb, uint8_t* s) {
  constexpr int B = Q5 ? 176 : 144, QS = Q5 ? 48 : 16;
  const __m256i m4 = _mm256_set1_epi8(15);
  for (int64_t b = 0; b < nb; b++) {
    uint8_t* o = s + b * kLaneBlock;
    const uint8_t* p[8];
    alignas(32) float d[8], dm[8];
    __m256i R[8], c[8], h[8];
    for (int i = 0; i < 8; i++) {
      p[i] = w + i * rowBytes + b * B;
      d[i] = _cvtsh_ss(static_cast<unsigned short>(p[i][0] | (p[i][1] << 8)));
      dm[i] = _cvtsh_ss(static_cast<unsigned short>(p[i][2] | (p[i][3] << 8)));
      const __m128i sm = scale_min_k4_sse(p[i] + 4);  // bytes 0-7 scales, 8-15 mins
      R[i] = _mm256_set_m128i(sm, sm);
    }
    std::memcpy(o + kD, d, 32);
    std::memcpy(o + kDmin, dm, 32);
    transpose8_epi32(R, c);  // c[0] / c[1]: scales 0-3 / 4-7 of row i in dword i; c[2] / c[3] the mins
    for (int sb = 0; sb < 8; sb++) {
      st(o + kSc + 32 * sb, dup_sbyte16(c[sb >> 2], sb & 3, false));
      st(o + kMin + 32 * sb, dup_sbyte16(c[2 + (sb >> 2)], sb & 3, false));
    }
    if constexpr (Q5) {
      for (int i = 0; i < 8; i++) R[i] = ld(p[i] + 16);
      transpose8_epi32(R, h);
    }
    // 32 code bytes hold sub-blocks 2n (low nibbles) and 2n + 1 (high) of values 0 … 31
    for (int n = 0; n < 4; n++) {
      for (int i = 0; i < 8; i++) R[i] = ld(p[i] + QS + 32 * n);
      transpose8_epi32(R, c);  // c[j]: bytes 4j … 4j+3 of each row
      for (int j = 0; j < 8; j++) {
        __m256i lo = _mm256_and_si256(c[j], m4), hi = _mm256_and_si256(_mm256_srli_epi16(c[j], 4), m4);
        if constexpr (Q5) lo = _mm256_or_si256(lo, field_to(h[j], 2 * n, 4, 1)), hi = _mm256_or_si256(hi, field_to(h[j], 2 * n + 1, 4, 1));
        st(o + kCodes + 32 * (8 * (2 * n) + j), lo);
        st(o + kCodes + 32 * (8 * (2 * n + 1) + j), hi);
      }
    }
  }
}

// 8 rows (the scratch s) × TT tokens from t0 → y[(t0 + t) · ldy + r …].
template <bool Q5, int TT>
TAVX2 void rows8(const uint8_t* s, int64_t nb, const Q8K* x, float* y, int64_t ldy, int64_t r, int64_t t0) {
  const Q8K* xt[TT];
  __m256 acc[TT];
  for (int t = 0; t < TT; t++) xt[t] = x + (t0 + t) * nb, acc[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; b++) {
    const uint8_t* sb = s + b * kLaneBlock;
    __m256i ai[TT];
    for (int t = 0; t < TT; t++) ai[t] = _mm256_setzero_si256();
    for (int sub = 0; sub < 8; sub++) {
      const uint8_t* cs = sb + kCodes + 256 * sub;
      __m256i p16[TT];
      for (int t = 0; t < TT; t++) p16[t] = _mm256_setzero_si256();
#pragma GCC unroll 8
      for (int j = 0; j < 8; j++) {
        const __m256i u = _mm256_load_si256(reinterpret_cast<const __m256i*>(cs + 32 * j));
        for (int t = 0; t < TT; t++) {
          const __m256i xb = _mm256_set1_epi32(le32(xt[t][b].qs + 32 * sub + 4 * j));
          p16[t] = _mm256_add_epi16(p16[t], _mm256_maddubs_epi16(u, xb));
          __asm__("" : "+x"(p16[t]));  // a running sum (GCC would otherwise build a tree and spill the products)
        }
        if (Q5 && j == 3) {
          const __m256i sc = _mm256_load_si256(reinterpret_cast<const __m256i*>(sb + kSc + 32 * sub));
          for (int t = 0; t < TT; t++) ai[t] = _mm256_add_epi32(ai[t], _mm256_madd_epi16(p16[t], sc)), p16[t] = _mm256_setzero_si256();
        }
      }
      const __m256i sc = _mm256_load_si256(reinterpret_cast<const __m256i*>(sb + kSc + 32 * sub));
      for (int t = 0; t < TT; t++) ai[t] = _mm256_add_epi32(ai[t], _mm256_madd_epi16(p16[t], sc));
    }
    const __m256 d8 = _mm256_load_ps(reinterpret_cast<const float*>(sb + kD));
    const __m256 dm8 = _mm256_load_ps(reinterpret_cast<const float*>(sb + kDmin));
    for (int t = 0; t < TT; t++) {
      __m256i mi = _mm256_setzero_si256();
      for (int sub = 0; sub < 8; sub++)
        mi = _mm256_add_epi32(mi, _mm256_madd_epi16(_mm256_load_si256(reinterpret_cast<const __m256i*>(sb + kMin + 32 * sub)),
                                                    _mm256_set1_epi32(le32(xt[t][b].bsums + 2 * sub))));
      const __m256 dx = _mm256_set1_ps(xt[t][b].d);
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ai[t]), _mm256_mul_ps(d8, dx), acc[t]);
      acc[t] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(mi), _mm256_mul_ps(dm8, dx), acc[t]);
    }
  }
  for (int t = 0; t < TT; t++) _mm256_storeu_ps(y + (t0 + t) * ldy + r, acc[t]);
}

// The 16-value sub-block types (q2_k, q3_k, q6_k). Scratch per super-block (kS16Block): d f32[8], dmin f32[8]
// (q2_k), sc[16] as (v, v), the side pairs (v_2p, v_2p+1) [8] (q6_k / q3_k: the scales, for the code offset; q2_k:
// the mins), codes[8 chunks][8] of [8 rows][4] as for q4_k.
constexpr int64_t kS16Dmin = 32, kS16Sc = 64, kS16Side = 576, kS16Codes = 832, kS16Block = 2880;

// Per type: block bytes, where d (and dmin) sit, the 16 scale bytes and the 16 side bytes of a block, the code offset
// (side << shift comes off the integers) or, for q2_k, the mins' float term.
template <KType K>
struct S16;
template <>
struct S16<KType::Q6K> {
  static constexpr int kBytes = 210, kShift = 5;
  TAVX2 static INL float d(const uint8_t* p) { return _cvtsh_ss(static_cast<unsigned short>(p[208] | (p[209] << 8))); }
  TAVX2 static INL float dmin(const uint8_t*) { return 0.f; }
  TAVX2 static INL __m128i scales(const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 192)); }
  TAVX2 static INL __m128i side(const uint8_t* p) { return scales(p); }
};
template <>
struct S16<KType::Q3K> {
  static constexpr int kBytes = 110, kShift = 2;
  TAVX2 static INL float d(const uint8_t* p) { return _cvtsh_ss(static_cast<unsigned short>(p[108] | (p[109] << 8))); }
  TAVX2 static INL float dmin(const uint8_t*) { return 0.f; }
  TAVX2 static INL __m128i scales(const uint8_t* p) { return scales_q3k_sse(p + 96); }
  TAVX2 static INL __m128i side(const uint8_t* p) { return scales(p); }
};
template <>
struct S16<KType::Q2K> {
  static constexpr int kBytes = 84, kShift = -1;
  TAVX2 static INL float d(const uint8_t* p) { return _cvtsh_ss(static_cast<unsigned short>(p[80] | (p[81] << 8))); }
  TAVX2 static INL float dmin(const uint8_t* p) { return _cvtsh_ss(static_cast<unsigned short>(p[82] | (p[83] << 8))); }
  TAVX2 static INL __m128i scales(const uint8_t* p) {
    return _mm_and_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)), _mm_set1_epi8(15));
  }
  TAVX2 static INL __m128i side(const uint8_t* p) {
    return _mm_and_si128(_mm_srli_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)), 4), _mm_set1_epi8(15));
  }
};

// 8 rows' codes of a super-block (p[i]: row i's block) into o, chunk c of values 32c … in column order.
// q6_k: chunk 4n + k = nibble k / 2 of ql[64n + 32 (k % 2) …] | bits 2k of qh[32n …] << 4.
TAVX2 INL void codes_q6(const uint8_t* const* p, uint8_t* o) {
  const __m256i m4 = _mm256_set1_epi8(15);
  __m256i R[8], c[8], h[8];
  for (int n = 0; n < 2; n++) {
    for (int i = 0; i < 8; i++) R[i] = ld(p[i] + 128 + 32 * n);
    transpose8_epi32(R, h);
    for (int kk = 0; kk < 2; kk++) {
      for (int i = 0; i < 8; i++) R[i] = ld(p[i] + 64 * n + 32 * kk);
      transpose8_epi32(R, c);  // c[j]: bytes 4j … 4j+3 of each row
      for (int j = 0; j < 8; j++) {
        for (int half = 0; half < 2; half++) {
          const int k = kk + 2 * half;  // low nibbles: chunk k = kk, high: kk + 2
          const __m256i lo = half ? _mm256_and_si256(_mm256_srli_epi16(c[j], 4), m4) : _mm256_and_si256(c[j], m4);
          st(o + 32 * (8 * (4 * n + k) + j), _mm256_or_si256(lo, field_to(h[j], 2 * k, 4, 3)));
        }
      }
    }
  }
}
// q3_k: chunk 4n + j = bits 2j of qs[32 + 32n …] | bit 4n + j of hmask[0 …] << 2; q2_k: bits 2j of qs[16 + 32n …].
template <KType K>
TAVX2 INL void codes_q23(const uint8_t* const* p, uint8_t* o) {
  constexpr int QS = K == KType::Q3K ? 32 : 16;
  __m256i R[8], c[8], h[8];
  if constexpr (K == KType::Q3K) {
    for (int i = 0; i < 8; i++) R[i] = ld(p[i]);
    transpose8_epi32(R, h);
  }
  for (int n = 0; n < 2; n++) {
    for (int i = 0; i < 8; i++) R[i] = ld(p[i] + QS + 32 * n);
    transpose8_epi32(R, c);
    for (int jj = 0; jj < 8; jj++) {
      for (int j = 0; j < 4; j++) {
        __m256i u = field_to(c[jj], 2 * j, 0, 3);
        if constexpr (K == KType::Q3K) u = _mm256_or_si256(u, field_to(h[jj], 4 * n + j, 2, 1));
        st(o + 32 * (8 * (4 * n + j) + jj), u);
      }
    }
  }
}

// q2_k / q3_k / q6_k rows w, w + rowBytes, … (8 rows) → the scratch s.
template <KType K>
TAVX2 void transpose8_s16(const uint8_t* w, int64_t rowBytes, int64_t nb, uint8_t* s) {
  using T = S16<K>;
  for (int64_t b = 0; b < nb; b++) {
    uint8_t* o = s + b * kS16Block;
    const uint8_t* p[8];
    alignas(32) float d[8], dm[8];
    __m256i R[8], c[8];
    for (int i = 0; i < 8; i++) {
      p[i] = w + i * rowBytes + b * T::kBytes;
      d[i] = T::d(p[i]), dm[i] = T::dmin(p[i]);
      R[i] = _mm256_set_m128i(T::side(p[i]), T::scales(p[i]));
    }
    std::memcpy(o, d, 32);
    std::memcpy(o + kS16Dmin, dm, 32);
    // c[q] / c[4 + q]: scales / side values 4q … 4q+3 of row i in dword i
    transpose8_epi32(R, c);
    for (int sb = 0; sb < 16; sb++) st(o + kS16Sc + 32 * sb, dup_sbyte16(c[sb >> 2], sb & 3, false));
    for (int pr = 0; pr < 8; pr++) st(o + kS16Side + 32 * pr, dup_sbyte16(c[4 + (pr >> 1)], 2 * (pr & 1), true));
    if constexpr (K == KType::Q6K) codes_q6(p, o + kS16Codes);
    else codes_q23<K>(p, o + kS16Codes);
  }
}

template <KType K, int TT>
TAVX2 void rows8_s16(const uint8_t* s, int64_t nb, const Q8K* x, float* y, int64_t ldy, int64_t r, int64_t t0) {
  const Q8K* xt[TT];
  __m256 acc[TT];
  for (int t = 0; t < TT; t++) xt[t] = x + (t0 + t) * nb, acc[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; b++) {
    const uint8_t* sb = s + b * kS16Block;
    __m256i ai[TT];
    for (int t = 0; t < TT; t++) ai[t] = _mm256_setzero_si256();
    for (int c = 0; c < 8; c++) {
      const uint8_t* cs = sb + kS16Codes + 256 * c;
#pragma GCC unroll 4
      for (int jp = 0; jp < 4; jp++) {  // chunks 2jp, 2jp + 1: values 8jp … 8jp+7 of sub-block 2c + jp / 2
        const __m256i u0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(cs + 64 * jp));
        const __m256i u1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(cs + 64 * jp + 32));
        const __m256i sc = _mm256_load_si256(reinterpret_cast<const __m256i*>(sb + kS16Sc + 32 * (2 * c + (jp >> 1))));
        for (int t = 0; t < TT; t++) {
          const int8_t* q = xt[t][b].qs + 32 * c + 8 * jp;
          const __m256i p16 = _mm256_add_epi16(_mm256_maddubs_epi16(u0, _mm256_set1_epi32(le32(q))),
                                               _mm256_maddubs_epi16(u1, _mm256_set1_epi32(le32(q + 4))));
          ai[t] = _mm256_add_epi32(ai[t], _mm256_madd_epi16(p16, sc));
          __asm__("" : "+x"(ai[t]));
        }
      }
    }
    const __m256 d8 = _mm256_load_ps(reinterpret_cast<const float*>(sb));
    for (int t = 0; t < TT; t++) {
      __m256i side = _mm256_setzero_si256();
      for (int pr = 0; pr < 8; pr++)
        side = _mm256_add_epi32(side, _mm256_madd_epi16(_mm256_load_si256(reinterpret_cast<const __m256i*>(sb + kS16Side + 32 * pr)),
                                                        _mm256_set1_epi32(le32(xt[t][b].bsums + 2 * pr))));
      const __m256 dx = _mm256_set1_ps(xt[t][b].d);
      if constexpr (S16<K>::kShift >= 0) {
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(ai[t], _mm256_slli_epi32(side, S16<K>::kShift))), _mm256_mul_ps(d8, dx), acc[t]);
      } else {
        const __m256 dm8 = _mm256_load_ps(reinterpret_cast<const float*>(sb + kS16Dmin));
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ai[t]), _mm256_mul_ps(d8, dx), acc[t]);
        acc[t] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(side), _mm256_mul_ps(dm8, dx), acc[t]);
      }
    }
  }
  for (int t = 0; t < TT; t++) _mm256_storeu_ps(y + (t0 + t) * ldy + r, acc[t]);
}

// A type's plan: its block bytes, the scratch bytes per super-block of 8 rows, its transpose and its kernel.
template <bool Q5>
struct Q45Plan {
  static constexpr int64_t kBytes = Q5 ? 176 : 144, kScratch = kLaneBlock;
  TAVX2 static void transpose(const uint8_t* w, int64_t rowBytes, int64_t nb, uint8_t* s) { transpose8<Q5>(w, rowBytes, nb, s); }
  template <int TT>
  TAVX2 static void rows(const uint8_t* s, int64_t nb, const Q8K* x, float* y, int64_t ldy, int64_t r, int64_t t0) {
    rows8<Q5, TT>(s, nb, x, y, ldy, r, t0);
  }
};
template <KType K>
struct S16Plan {
  static constexpr int64_t kBytes = S16<K>::kBytes, kScratch = kS16Block;
  TAVX2 static void transpose(const uint8_t* w, int64_t rowBytes, int64_t nb, uint8_t* s) { transpose8_s16<K>(w, rowBytes, nb, s); }
  template <int TT>
  TAVX2 static void rows(const uint8_t* s, int64_t nb, const Q8K* x, float* y, int64_t ldy, int64_t r, int64_t t0) {
    rows8_s16<K, TT>(s, nb, x, y, ldy, r, t0);
  }
};

// Whole groups of 8 rows from r0: each transposed once into per-thread scratch, then every token, 4 at a time.
template <class P>
TAVX2 int64_t lanes(const uint8_t* w, int64_t cols, const Q8K* x, float* y, int64_t ldy, int64_t T, int64_t r0, int64_t r1) {
  const int64_t nb = cols / QK, rowBytes = nb * P::kBytes;
  thread_local std::vector<uint8_t> buf;
  uint8_t* s = scratch64(buf, nb * P::kScratch);
  int64_t r = r0;
  for (; r + 8 <= r1; r += 8) {
    P::transpose(w + r * rowBytes, rowBytes, nb, s);
    int64_t t = 0;
    for (; t + 4 <= T; t += 4) P::template rows<4>(s, nb, x, y, ldy, r, t);
    for (; t < T; t++) P::template rows<1>(s, nb, x, y, ldy, r, t);
  }
  return r;
}

}  // namespace

int64_t rows_lanes_avx2(KType kt, const uint8_t* w, int64_t cols, const Q8K* x, float* y, int64_t ldy, int64_t T,
                        int64_t r0, int64_t r1) {
  if (kt == KType::Q4K) return lanes<Q45Plan<false>>(w, cols, x, y, ldy, T, r0, r1);
  if (kt == KType::Q5K) return lanes<Q45Plan<true>>(w, cols, x, y, ldy, T, r0, r1);
  if (T < kLanesS16MinT) return r0;  // the 16-value sub-block types transpose more per row
  if (kt == KType::Q6K) return lanes<S16Plan<KType::Q6K>>(w, cols, x, y, ldy, T, r0, r1);
  if (kt == KType::Q3K) return lanes<S16Plan<KType::Q3K>>(w, cols, x, y, ldy, T, r0, r1);
  if (kt == KType::Q2K) return lanes<S16Plan<KType::Q2K>>(w, cols, x, y, ldy, T, r0, r1);
  return r0;
}

}  // namespace kq
}  // namespace xv
#endif  // XV_X86
