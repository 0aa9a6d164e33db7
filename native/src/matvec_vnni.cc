// Matmul for int4 weights (q4_row, q4_group) with AVX-512 VNNI, llama.cpp-style: x is quantized to int8 in
// blocks of 32 (one f32 scale each), then vpdpbusd multiplies 64 weight nibbles by 64 activation bytes per
// instruction, instead of widening every nibble to f32.
//
// vpdpbusd wants unsigned × signed bytes, and both our operands are signed, so the weights are shifted to
// unsigned (nibble ^ 8 = w + 8) and the shift is taken back per lane with a precomputed 8 · Σ xq. That keeps
// the weights zero-copy (no repacking at load).
//
// Lanes: a 64-byte chunk c holds columns 128c … 128c+127; its low nibbles are the even columns, the high
// nibbles the odd ones, so x is stored as [64 even | 64 odd] per chunk and dpbusd lane L covers columns
// 8L … 8L+7. A lane never straddles a 32-block, so one scale per lane suffices.
#include "kernels.h"
#if XV_X86
#include <immintrin.h>

#include <cmath>

#include "kernels.h"

#define TVNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))
// The q8 tiles also need vpermt2b (AVX-512 VBMI) to split a weight chunk into even / odd columns.
#define TVBMI __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx512vbmi")))
#define INL inline __attribute__((always_inline))

namespace xv {

static int64_t round_up(int64_t a, int64_t b) { return (a + b - 1) / b * b; }

int64_t quantx_bytes(int64_t cols) {
  const int64_t padded = round_up(cols < 1 ? 1 : cols, 128);
  const int64_t g32 = round_up(cols < 1 ? 1 : cols, 512);  // the group-32 layout (quantize_x_g32)
  const int64_t a = padded + padded / 2 + padded / 2, b = g32 + g32 / 8 + g32 / 8;
  return (a > b ? a : b) + 3 * 64;  // q, dx (padded/8 floats), xs (padded/8 int32), alignment
}

static void* align64(void* p) {
  return reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(p) + 63) & ~uintptr_t(63));
}

// One full 128-column chunk, 16 lanes at a time; the same arithmetic as the scalar tail below (x · (127 / amax)
// in f32, round to nearest even), so results do not depend on where a chunk falls.
TVNNI static void quantize_chunk_512(const float* x, int8_t* q, float* dx, int32_t* xs) {
  const __m512 absmask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  // even / odd columns of a 32-block held in two 16-lane registers
  const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i io = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  for (int b = 0; b < 4; b++) {
    const __m512 v0 = _mm512_loadu_ps(x + 32 * b), v1 = _mm512_loadu_ps(x + 32 * b + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_and_ps(v0, absmask), _mm512_and_ps(v1, absmask)));
    const float d = amax / 127.f, id = amax >= 1e-30f ? 127.f / amax : 0.f;  // (below: 127 / amax could overflow)
    const __m512 idv = _mm512_set1_ps(id);
    const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, idv));
    const __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, idv));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 16 * b), _mm512_cvtepi32_epi8(_mm512_permutex2var_epi32(q0, ie, q1)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 64 + 16 * b), _mm512_cvtepi32_epi8(_mm512_permutex2var_epi32(q0, io, q1)));
    for (int l = 0; l < 4; l++) dx[4 * b + l] = d;
    xs[4 * b + 0] = 8 * _mm512_mask_reduce_add_epi32(0x00ff, q0);
    xs[4 * b + 1] = 8 * _mm512_mask_reduce_add_epi32(0xff00, q0);
    xs[4 * b + 2] = 8 * _mm512_mask_reduce_add_epi32(0x00ff, q1);
    xs[4 * b + 3] = 8 * _mm512_mask_reduce_add_epi32(0xff00, q1);
  }
}

QuantX quantize_x(const float* x, int64_t cols, void* scratch, bool avx512) {
  QuantX qx;
  qx.cols = cols;
  qx.padded = round_up(cols < 1 ? 1 : cols, 128);
  qx.q = static_cast<int8_t*>(align64(scratch));
  qx.dx = static_cast<float*>(align64(qx.q + qx.padded));
  qx.xs = static_cast<int32_t*>(align64(qx.dx + qx.padded / 8));
  constexpr int lane = 8, offset = 8;  // columns per dpbusd lane; the unsigned shift of the weights
  int64_t c0 = 0;
  if (avx512)
    for (; c0 + 128 <= cols; c0 += 128) quantize_chunk_512(x + c0, qx.q + c0, qx.dx + c0 / lane, qx.xs + c0 / lane);
  for (; c0 < qx.padded; c0 += 128) {  // the last, partial chunk: zero padding
    int8_t nat[128];
    for (int64_t b = 0; b < 128; b += 32) {
      float amax = 0;
      for (int64_t i = 0; i < 32; i++) {
        const int64_t c = c0 + b + i;
        if (c < cols) amax = std::fmax(amax, std::fabs(x[c]));
      }
      const float d = amax / 127.f, id = amax >= 1e-30f ? 127.f / amax : 0.f;  // (below: 127 / amax could overflow)
      for (int64_t i = 0; i < 32; i++) {
        const int64_t c = c0 + b + i;
        nat[b + i] = c < cols ? static_cast<int8_t>(std::nearbyint(x[c] * id)) : 0;
      }
      for (int64_t l = (c0 + b) / lane; l < (c0 + b + 32) / lane; l++) qx.dx[l] = d;
    }
    for (int64_t l = c0 / lane; l < (c0 + 128) / lane; l++) {
      int s = 0;
      for (int i = 0; i < lane; i++) s += nat[l * lane + i - c0];
      qx.xs[l] = offset * s;
    }
    for (int j = 0; j < 64; j++) {
      qx.q[c0 + j] = nat[2 * j];
      qx.q[c0 + 64 + j] = nat[2 * j + 1];
    }
  }
  return qx;
}

// The group-32 layout (matmul_vnni_g32_rows): per 512-column super-chunk, 4 × [64 "lo" bytes | 64 "hi" bytes],
// one pair per piece p (8 columns of a group). Byte 4j + b of piece p's lo half is column 8p + 2b of group g(j),
// its hi half column 8p + 2b + 1, with lane j = 4l + k holding group g = 4k + l of the super-chunk: the order the
// kernel's 4 × 4 dword transpose of 4 weight chunks produces. dx / xs: one per lane (group), xs = −8 · Σ q.
bool vnni_g32_supports(const WView& w) { return w.fmt == Fmt::Q4G && w.group == 32 && w.cols % 128 == 0; }

TVNNI QuantX quantize_x_g32(const float* x, int64_t cols, void* scratch) {
  QuantX qx;
  qx.cols = cols;
  qx.padded = round_up(cols < 1 ? 1 : cols, 512);
  qx.q = static_cast<int8_t*>(align64(scratch));
  qx.dx = static_cast<float*>(align64(qx.q + qx.padded));
  qx.xs = static_cast<int32_t*>(align64(qx.dx + qx.padded / 32));
  const __m512 absmask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  for (int64_t s0 = 0; s0 < qx.padded; s0 += 512) {
    alignas(64) int8_t nat[512];
    int8_t* q = qx.q + s0;
    float* dx = qx.dx + s0 / 32;
    int32_t* xs = qx.xs + s0 / 32;
    for (int g = 0; g < 16; g++) {
      const int lane = 4 * (g % 4) + g / 4;
      if (s0 + 32 * g >= cols) {  // cols % 128 == 0: whole groups past the end are zero
        for (int i = 0; i < 32; i++) nat[32 * g + i] = 0;
        dx[lane] = 0.f;
        xs[lane] = 0;
        continue;
      }
      const __m512 v0 = _mm512_loadu_ps(x + s0 + 32 * g), v1 = _mm512_loadu_ps(x + s0 + 32 * g + 16);
      const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_and_ps(v0, absmask), _mm512_and_ps(v1, absmask)));
      const float d = amax / 127.f, id = amax >= 1e-30f ? 127.f / amax : 0.f;  // (below: 127 / amax could overflow)
      const __m512 idv = _mm512_set1_ps(id);
      const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, idv));
      const __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, idv));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(nat + 32 * g), _mm512_cvtepi32_epi8(q0));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(nat + 32 * g + 16), _mm512_cvtepi32_epi8(q1));
      dx[lane] = d;
      xs[lane] = -8 * _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
    }
    for (int g = 0; g < 16; g++) {
      const int j = 4 * (g % 4) + g / 4;
      for (int p = 0; p < 4; p++)
        for (int b = 0; b < 4; b++) {
          q[128 * p + 4 * j + b] = nat[32 * g + 8 * p + 2 * b];
          q[128 * p + 64 + 4 * j + b] = nat[32 * g + 8 * p + 2 * b + 1];
        }
    }
  }
  return qx;
}

// int8 weights are not taken here: on Zen 4 the exact f32 path (widen, FMA) measured as fast as VNNI for them,
// both in decode (memory-bound) and in prefill, so only int4, whose unpacking is what costs, uses VNNI.
bool vnni_supports(const WView& w) {
  if (w.fmt == Fmt::Q4) return true;
  if (w.fmt != Fmt::Q4G) return false;
  return w.group % 8 == 0 && (128 % w.group == 0 || w.group % 128 == 0);
}

namespace {

// Software prefetch distance (bytes) along each weight row: rows of int weights are short (2-4 KB), too short for
// the hardware prefetcher to ramp up on the 4 interleaved streams of a tile.
constexpr int64_t kPrefetch = 2048;

// A register tile of R weight rows × TT tokens: each weight chunk is loaded and unpacked once for TT tokens,
// each activation chunk once for R rows. T = 1 (decode) runs R = 1: one linear stream through the weights.
// Per-lane group scales, walked chunk by chunk along a row with no division in the loop (an integer divide
// per chunk made q4_group half as fast as q4_row). Lane i of a chunk covers columns 8i … 8i+7 of it.
struct GroupWalk {
  int64_t ng = 0;        // groups per row
  int64_t gpc = 0;       // groups per 128-column chunk when group < 128, else 0
  int64_t cpg = 0;       // chunks per group when group ≥ 128
  __m512i idx;           // lane → group within the chunk (group < 128)
  TVNNI void init(int64_t G, int64_t cols) {
    ng = cols / G;
    gpc = G < 128 ? 128 / G : 0;
    cpg = G >= 128 ? G / 128 : 0;
    alignas(64) int32_t lanes[16];
    for (int i = 0; i < 16; i++) lanes[i] = G < 128 ? static_cast<int32_t>(8 * i / G) : 0;
    idx = _mm512_load_si512(lanes);
  }
  // Scales of chunk c of the row whose scales start at s; gi is the group index of chunk c when group ≥ 128.
  TVNNI INL __m512 at(const float* s, int64_t c, int64_t gi) const {
    if (gpc == 0) return _mm512_set1_ps(s[gi]);
    const int64_t first = c * gpc, cnt = ng - first < gpc ? ng - first : gpc;
    return _mm512_permutexvar_ps(idx, _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << cnt) - 1), s + first));
  }
};

template <int R, int TT, bool GROUP>
TVNNI void tile_q4(const WView& w, const GroupWalk& gw, const QuantX* qx, float* y, int64_t ldy, int64_t r) {
  const int64_t rb = w.cols / 2;  // bytes per row
  const uint8_t* base = static_cast<const uint8_t*>(w.data) + r * rb;
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x88)), m4 = _mm512_set1_epi8(0x0f);
  const float* srow[R];
  if (GROUP)
    for (int i = 0; i < R; i++) srow[i] = w.scales + (r + i) * gw.ng;
  int64_t gi = 0, gleft = gw.cpg;  // group ≥ 128: the chunk's group, and chunks left in it
  __m512 acc[R][TT];
#pragma GCC unroll 4
  for (int i = 0; i < R; i++)
#pragma GCC unroll 4
    for (int t = 0; t < TT; t++) acc[i][t] = _mm512_setzero_ps();
  for (int64_t c = 0; c * 64 < rb; c++) {
    const int64_t left = rb - c * 64;
    const __mmask64 m = left >= 64 ? ~__mmask64(0) : ((__mmask64(1) << left) - 1);
    __m512i lo[R], hi[R];
    __m512 sw[R];
#pragma GCC unroll 4
    for (int i = 0; i < R; i++) {
      _mm_prefetch(reinterpret_cast<const char*>(base + i * rb + c * 64 + kPrefetch), _MM_HINT_T0);
      const __m512i b = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, base + i * rb + c * 64), flip);
      lo[i] = _mm512_and_si512(b, m4);
      hi[i] = _mm512_and_si512(_mm512_srli_epi16(b, 4), m4);
      if (GROUP) sw[i] = gw.at(srow[i], c, gi);
    }
#pragma GCC unroll 4
    for (int t = 0; t < TT; t++) {
      const __m512i xlo = _mm512_load_si512(qx[t].q + c * 128);
      const __m512i xhi = _mm512_load_si512(qx[t].q + c * 128 + 64);
      const __m512 dx = _mm512_load_ps(qx[t].dx + c * 16);
      // −xs as the accumulator's start: the +8 shift is taken back once per token for all R rows
      const __m512i nxs = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_load_si512(qx[t].xs + c * 16));
#pragma GCC unroll 4
      for (int i = 0; i < R; i++) {
        const __m512i is = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(nxs, lo[i], xlo), hi[i], xhi);
        const __m512 sc = GROUP ? _mm512_mul_ps(dx, sw[i]) : dx;
        acc[i][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is), sc, acc[i][t]);
      }
    }
    if (GROUP && gw.cpg && --gleft == 0) {
      gi++;
      gleft = gw.cpg;
    }
  }
#pragma GCC unroll 4
  for (int i = 0; i < R; i++) {
    const float s = GROUP ? 1.f : w.scales[r + i];
#pragma GCC unroll 4
    for (int t = 0; t < TT; t++) y[t * ldy + r + i] = _mm512_reduce_add_ps(acc[i][t]) * s;
  }
}

template <int R, int TT>
TVNNI void tile_any(const WView& w, const GroupWalk& gw, const QuantX* qx, float* y, int64_t ldy, int64_t r) {
  if (w.fmt == Fmt::Q4) return tile_q4<R, TT, false>(w, gw, qx, y, ldy, r);
  return tile_q4<R, TT, true>(w, gw, qx, y, ldy, r);
}

template <int R>
TVNNI void tile_t(const WView& w, const GroupWalk& gw, const QuantX* qx, float* y, int64_t ldy, int64_t r, int tt) {
  switch (tt) {
    case 4: return tile_any<R, 4>(w, gw, qx, y, ldy, r);
    case 3: return tile_any<R, 3>(w, gw, qx, y, ldy, r);
    case 2: return tile_any<R, 2>(w, gw, qx, y, ldy, r);
    default: return tile_any<R, 1>(w, gw, qx, y, ldy, r);
  }
}

// int8 rows (prefill only), on the same quantized x: a 128-column chunk is two 64-byte loads, split by vpermt2b
// into its even and odd columns so it lines up with x as the nibbles do; ^ 0x80 makes them unsigned (w + 128),
// and the shift is taken back with 16 · xs (xs holds 8 · Σ xq per lane). The integer sums are exact.
template <int R, int TT>
TVBMI void tile_q8(const WView& w, const QuantX* qx, float* y, int64_t ldy, int64_t r) {
  const int64_t rb = w.cols;  // bytes per row
  const int8_t* base = static_cast<const int8_t*>(w.data) + r * rb;
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  alignas(64) static const uint8_t kEven[64] = {
      0,  2,  4,  6,  8,  10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34, 36, 38, 40, 42,
      44, 46, 48, 50, 52, 54, 56, 58, 60, 62, 64, 66, 68, 70, 72, 74, 76, 78, 80, 82, 84, 86,
      88, 90, 92, 94, 96, 98, 100, 102, 104, 106, 108, 110, 112, 114, 116, 118, 120, 122, 124, 126};
  const __m512i ieven = _mm512_load_si512(kEven);
  const __m512i iodd = _mm512_add_epi8(ieven, _mm512_set1_epi8(1));
  __m512 acc[R][TT];
#pragma GCC unroll 4
  for (int i = 0; i < R; i++)
#pragma GCC unroll 8
    for (int t = 0; t < TT; t++) acc[i][t] = _mm512_setzero_ps();
  for (int64_t c = 0; c * 128 < rb; c++) {
    const int64_t left = rb - c * 128;
    // Masked-off bytes load as 0 and become 0x80 (w + 128 with w = 0); x is zero there, and so is xs.
    const __mmask64 m0 = left >= 64 ? ~__mmask64(0) : ((__mmask64(1) << left) - 1);
    const __mmask64 m1 = left >= 128 ? ~__mmask64(0) : left <= 64 ? 0 : ((__mmask64(1) << (left - 64)) - 1);
    __m512i lo[R], hi[R];
#pragma GCC unroll 4
    for (int i = 0; i < R; i++) {
      const int8_t* p = base + i * rb + c * 128;
      _mm_prefetch(reinterpret_cast<const char*>(p + kPrefetch), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(p + 64 + kPrefetch), _MM_HINT_T0);
      const __m512i a = _mm512_maskz_loadu_epi8(m0, p), b = _mm512_maskz_loadu_epi8(m1, p + 64);
      lo[i] = _mm512_xor_si512(_mm512_permutex2var_epi8(a, ieven, b), flip);
      hi[i] = _mm512_xor_si512(_mm512_permutex2var_epi8(a, iodd, b), flip);
    }
#pragma GCC unroll 8
    for (int t = 0; t < TT; t++) {
      const __m512i xlo = _mm512_load_si512(qx[t].q + c * 128);
      const __m512i xhi = _mm512_load_si512(qx[t].q + c * 128 + 64);
      const __m512 dx = _mm512_load_ps(qx[t].dx + c * 16);
      // −16 · xs, the accumulator's start: the shift is taken back for free, once per token for all R rows
      const __m512i nxs = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(_mm512_load_si512(qx[t].xs + c * 16), 4));
#pragma GCC unroll 4
      for (int i = 0; i < R; i++) {
        const __m512i is = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(nxs, lo[i], xlo), hi[i], xhi);
        acc[i][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is), dx, acc[i][t]);
      }
    }
  }
#pragma GCC unroll 4
  for (int i = 0; i < R; i++) {
    const float s = w.scales[r + i];
#pragma GCC unroll 8
    for (int t = 0; t < TT; t++) y[t * ldy + r + i] = _mm512_reduce_add_ps(acc[i][t]) * s;
  }
}

template <int R>
TVBMI void tile_q8_t(const WView& w, const QuantX* qx, float* y, int64_t ldy, int64_t r, int tt) {
  switch (tt) {
    case 5: return tile_q8<R, 5>(w, qx, y, ldy, r);
    case 4: return tile_q8<R, 4>(w, qx, y, ldy, r);
    case 3: return tile_q8<R, 3>(w, qx, y, ldy, r);
    case 2: return tile_q8<R, 2>(w, qx, y, ldy, r);
    default: return tile_q8<R, 1>(w, qx, y, ldy, r);
  }
}

// q4_group with group 32, T > 1. Four 64-byte weight chunks (512 columns, 16 groups) are transposed as 4 × 4
// dword blocks so that each dpbusd lane sees one group across the 4 resulting registers: the integer sum of a
// whole group is built by 8 chained dpbusd before a single convert / scale / FMA, instead of one of those per
// 8 columns. Group scales of x and w then are 16 contiguous floats (w's permuted to the transposed lane order).
template <int R, int TT>
TVNNI void tile_g32(const WView& w, const QuantX* qx, float* y, int64_t ldy, int64_t r) {
  const int64_t rb = w.cols / 2, ng = w.cols / 32;
  const uint8_t* base = static_cast<const uint8_t*>(w.data) + r * rb;
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x88)), m4 = _mm512_set1_epi8(0x0f);
  const __m512i tr = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);  // lane 4l+k ← 4k+l
  __m512 acc[R][TT];
#pragma GCC unroll 4
  for (int i = 0; i < R; i++)
#pragma GCC unroll 8
    for (int t = 0; t < TT; t++) acc[i][t] = _mm512_setzero_ps();
  for (int64_t s = 0; s * 256 < rb; s++) {
    const int64_t nk = (rb - s * 256) / 64;  // chunks in this super-chunk (cols % 128 == 0)
    __m512i lo[R][4], hi[R][4];
    __m512 sw[R];
#pragma GCC unroll 4
    for (int i = 0; i < R; i++) {
      const uint8_t* p = base + i * rb + s * 256;
      __m512i a[4];
      if (nk >= 4) {
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) {
          _mm_prefetch(reinterpret_cast<const char*>(p + 64 * c + kPrefetch), _MM_HINT_T0);
          a[c] = _mm512_xor_si512(_mm512_loadu_si512(p + 64 * c), flip);
        }
      } else {
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++)
          a[c] = _mm512_xor_si512(_mm512_maskz_loadu_epi8(c < nk ? ~__mmask64(0) : 0, p + 64 * c), flip);
      }
      const __m512i t0 = _mm512_unpacklo_epi32(a[0], a[1]), t1 = _mm512_unpackhi_epi32(a[0], a[1]);
      const __m512i t2 = _mm512_unpacklo_epi32(a[2], a[3]), t3 = _mm512_unpackhi_epi32(a[2], a[3]);
      const __m512i u[4] = {_mm512_unpacklo_epi64(t0, t2), _mm512_unpackhi_epi64(t0, t2),
                            _mm512_unpacklo_epi64(t1, t3), _mm512_unpackhi_epi64(t1, t3)};
#pragma GCC unroll 4
      for (int q = 0; q < 4; q++) {
        lo[i][q] = _mm512_and_si512(u[q], m4);
        hi[i][q] = _mm512_and_si512(_mm512_srli_epi16(u[q], 4), m4);
      }
      const float* srow = w.scales + (r + i) * ng + s * 16;
      const int64_t left = ng - s * 16;
      const __m512 sv = left >= 16 ? _mm512_loadu_ps(srow)
                                   : _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << left) - 1), srow);
      sw[i] = _mm512_permutexvar_ps(tr, sv);
    }
#pragma GCC unroll 8
    for (int t = 0; t < TT; t++) {
      const int8_t* xq = qx[t].q + s * 512;
      const __m512 dx = _mm512_load_ps(qx[t].dx + s * 16);
#pragma GCC unroll 4
      for (int i = 0; i < R; i++) {
        __m512i is = _mm512_load_si512(qx[t].xs + s * 16);  // −8 · Σ xq: takes back the +8 weight shift
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++) {
          is = _mm512_dpbusd_epi32(is, lo[i][q], _mm512_load_si512(xq + 128 * q));
          is = _mm512_dpbusd_epi32(is, hi[i][q], _mm512_load_si512(xq + 128 * q + 64));
        }
        acc[i][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is), _mm512_mul_ps(dx, sw[i]), acc[i][t]);
      }
    }
  }
#pragma GCC unroll 4
  for (int i = 0; i < R; i++)
#pragma GCC unroll 8
    for (int t = 0; t < TT; t++) y[t * ldy + r + i] = _mm512_reduce_add_ps(acc[i][t]);
}

// 2 rows × 6 tokens: 16 split weight registers + 12 accumulators. Measured on a Sapphire-Rapids-class Xeon (1
// thread, T = 121 / 512): ~295 GOP/s, vs ~255 for 3 × 4 and ~200 for the per-8-column tiles above.
constexpr int kRg = 2, kTTg = 6;

template <int R>
TVNNI void tile_g32_t(const WView& w, const QuantX* qx, float* y, int64_t ldy, int64_t r, int tt) {
  switch (tt) {
    case 6: return tile_g32<R, 6>(w, qx, y, ldy, r);
    case 5: return tile_g32<R, 5>(w, qx, y, ldy, r);
    case 4: return tile_g32<R, 4>(w, qx, y, ldy, r);
    case 3: return tile_g32<R, 3>(w, qx, y, ldy, r);
    case 2: return tile_g32<R, 2>(w, qx, y, ldy, r);
    default: return tile_g32<R, 1>(w, qx, y, ldy, r);
  }
}

// 4 rows × 5 tokens: 20 accumulators + 8 split weight registers + x (measured ~5% faster than 4 × 4).
constexpr int kTT8 = 5;

// Token blocks of 64 keep their quantized activations (≈ 64 × 1.8 × cols bytes) in L2 while the rows pass.
constexpr int64_t kTokenBlock = 64;
// 3 rows × 4 tokens (12 accumulators, 6 unpacked weight registers, 3 group scales) measured ~8-10% faster than
// 4 × 3 for q4_group on Zen 4.
constexpr int kR4 = 3;
constexpr int kTT = 4;

}  // namespace

TVNNI void matmul_vnni_rows(const WView& w, const QuantX* qx, float* y, int64_t ldy, int64_t T, int64_t r0,
                            int64_t r1) {
  GroupWalk gw;
  if (w.fmt == Fmt::Q4G) gw.init(w.group, w.cols);
  if (T == 1) {
    for (int64_t r = r0; r < r1; r++) tile_any<1, 1>(w, gw, qx, y, ldy, r);
    return;
  }
  for (int64_t tb = 0; tb < T; tb += kTokenBlock) {
    const int64_t te = tb + kTokenBlock < T ? tb + kTokenBlock : T;
    for (int64_t r = r0; r < r1; r += kR4) {
      const int64_t R = r1 - r < kR4 ? r1 - r : kR4;
      for (int64_t t = tb; t < te; t += kTT) {
        const int tt = static_cast<int>(te - t < kTT ? te - t : kTT);
        float* yt = y + t * ldy;
        switch (R) {
          case 4: tile_t<4>(w, gw, qx + t, yt, ldy, r, tt); break;
          case 3: tile_t<3>(w, gw, qx + t, yt, ldy, r, tt); break;
          case 2: tile_t<2>(w, gw, qx + t, yt, ldy, r, tt); break;
          default: tile_t<1>(w, gw, qx + t, yt, ldy, r, tt); break;
        }
      }
    }
  }
}

TVNNI void matmul_vnni_g32_rows(const WView& w, const QuantX* qx, float* y, int64_t ldy, int64_t T, int64_t r0,
                                int64_t r1) {
  for (int64_t tb = 0; tb < T; tb += kTokenBlock) {
    const int64_t te = tb + kTokenBlock < T ? tb + kTokenBlock : T;
    for (int64_t r = r0; r < r1; r += kRg) {
      const int64_t R = r1 - r < kRg ? r1 - r : kRg;
      for (int64_t t = tb; t < te; t += kTTg) {
        const int tt = static_cast<int>(te - t < kTTg ? te - t : kTTg);
        float* yt = y + t * ldy;
        switch (R) {
          case 2: tile_g32_t<2>(w, qx + t, yt, ldy, r, tt); break;
          default: tile_g32_t<1>(w, qx + t, yt, ldy, r, tt); break;
        }
      }
    }
  }
}

TVBMI void matmul_vnni_q8_rows(const WView& w, const QuantX* qx, float* y, int64_t ldy, int64_t T, int64_t r0,
                               int64_t r1) {
  for (int64_t tb = 0; tb < T; tb += kTokenBlock) {
    const int64_t te = tb + kTokenBlock < T ? tb + kTokenBlock : T;
    for (int64_t r = r0; r < r1; r += 4) {
      const int64_t R = r1 - r < 4 ? r1 - r : 4;
      for (int64_t t = tb; t < te; t += kTT8) {
        const int tt = static_cast<int>(te - t < kTT8 ? te - t : kTT8);
        float* yt = y + t * ldy;
        switch (R) {
          case 4: tile_q8_t<4>(w, qx + t, yt, ldy, r, tt); break;
          case 3: tile_q8_t<3>(w, qx + t, yt, ldy, r, tt); break;
          case 2: tile_q8_t<2>(w, qx + t, yt, ldy, r, tt); break;
          default: tile_q8_t<1>(w, qx + t, yt, ldy, r, tt); break;
        }
      }
    }
  }
}

}  // namespace xv

#else  // the group-32 path's entry points elsewhere (never selected: vnni_g32_supports is false)
namespace xv {
bool vnni_g32_supports(const WView&) { return false; }
QuantX quantize_x_g32(const float*, int64_t, void*) { return QuantX{}; }
void matmul_vnni_g32_rows(const WView&, const QuantX*, float*, int64_t, int64_t, int64_t, int64_t) {}
}  // namespace xv
#endif  // XV_X86
