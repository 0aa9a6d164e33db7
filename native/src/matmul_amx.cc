// Prefill matmul on AMX-INT8 (Intel Sapphire Rapids and later) for every weight format whose values are small
// integers with one scale (and optionally one min) per group of 16 or 32 columns: ours (q4_row, q8_row, and
// q4_group / q8_group with groups of a multiple of 32 — the Q4_0 repack, GPTQ, AWQ), and the GGUF blocks q4_0,
// q4_1, q5_0, q5_1, q8_0, q4_k, q5_k (groups of 32) and q6_k (16).
//
// Why: prefill is compute-bound, and one tdpbssd multiplies a 16 × 32 int8 tile by a 32 × 16 one (8,192 MACs)
// in about the time AVX-512 VNNI needs for 128 vpdpbusd.
//
// Shape of the computation, per 16 weight rows (a "block") and per 16 tokens (a "tile"):
//   y[t, r0 + n] = Σ_g ( s[n, g] · dx[t, g] · C_g[n, t]  +  m[n, g] · sx[t, g] )
// where C_g = Σ_{k ∈ g} q_w[n, k] · q_x[t, k] is an exact int32 tile product, s / m the weight group's scale and
// min (w = q_w · s + m), dx the activation scale of the 32 columns around the group and sx = dx · Σ_{k ∈ g} q_x.
// - Weights: each thread unpacks its 16 rows once per call into int8 [16, cols] (natural column order) plus
//   s / m [16, groups] (format-specific unpackers below), then walks every token tile over them, so unpacking
//   (and reading the weights from memory) is paid once per call, not once per tile.
// - Activations: quantized exactly as the VNNI kernels do (int8 per 32 columns, d = amax / 127, x · (127 / amax)
//   rounded to nearest even), written straight into AMX's B-tile layout: per tile and group, GS / 4 rows of
//   16 tokens × 4 consecutive columns.
// - C_g[n][t] lands in memory (tiles have no path to vector registers) and is scaled into 16 f32 accumulators,
//   one zmm per weight row, 16 tokens wide; y is written through a 16 × 16 transpose once per (block, tile).
// Measured on a Sapphire-Rapids-class Xeon: the tile work and the vector scaling (16 × load, cvt, mul, fma per
// group) take about the same time and barely overlap however deep the pipeline, so this runs ~2× the VNNI
// kernels, not the 8× the TMUL peak suggests.
#include "kernels.h"

#if XV_X86 && defined(__linux__)
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "blocks.h"
#include "kquants.h"

#define TAMX __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,f16c,amx-tile,amx-int8")))

namespace xv {

namespace {

// Linux keeps AMX tile data disabled until a process asks (arch_prctl ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA).
constexpr long kArchReqXcompPerm = 0x1023;
constexpr long kXfeatureXtiledata = 18;

bool cpuid_amx_int8() {
  unsigned a, b, c, d;
  __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(7), "c"(0));
  const bool tile = (d >> 24) & 1, int8 = (d >> 25) & 1;
  if (!tile || !int8) return false;
  __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(1), "c"(0));
  if (!((c >> 27) & 1)) return false;  // OSXSAVE
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return ((lo >> 17) & 3) == 3;  // XTILECFG and XTILEDATA enabled in XCR0
}

struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// Tiles: 0, 1 = C (16 × 16 int32) of even / odd groups; 2 / 4 = their A (16 weight rows × GS bytes); 3 / 5 =
// their B (GS / 4 rows × 64 bytes). Separate A / B tiles per parity let group g + 1's loads start while group g's
// product runs.
TAMX void load_config(int gs) {
  TileConfig c;
  c.rows[0] = c.rows[1] = 16, c.colsb[0] = c.colsb[1] = 64;
  c.rows[2] = c.rows[4] = 16, c.colsb[2] = c.colsb[4] = static_cast<uint16_t>(gs);
  c.rows[3] = c.rows[5] = static_cast<uint8_t>(gs / 4), c.colsb[3] = c.colsb[5] = 64;
  _tile_loadconfig(&c);
}

// --- unpackers: 16 rows [r0, r0 + 16) → q int8 [16, cols], s / m f32 [16, cols / GS] ---

TAMX inline float h2f(const uint8_t* p) { return _cvtsh_ss(static_cast<unsigned short>(p[0] | (p[1] << 8))); }

// Row n's pointer to its first block / byte.
inline const uint8_t* row_bytes(const WView& w, int64_t r, int64_t row_bytes_) {
  return static_cast<const uint8_t*>(w.data) + r * row_bytes_;
}

// The scale of 32-column group g of row r for our row / group formats (w.group is a multiple of 32 for groups).
inline float our_scale(const WView& w, int64_t r, int64_t g) {
  if (w.fmt == Fmt::Q4 || w.fmt == Fmt::Q8) return w.scales[r];
  return w.scales[r * (w.cols / w.group) + g * 32 / w.group];
}

// q4_row / q4_group (ours): byte j holds columns 2j (low nibble) and 2j + 1 (high), two's complement; (v ^ 8) − 8
// sign-extends a nibble. No mins here: GPTQ / AWQ zero points are added after the kernel (addon.cc GroupZp).
TAMX void unpack_q4(const WView& w, int64_t r0, int8_t* out, float* s, float*) {
  const int64_t half = w.cols / 2, G = w.cols / 32;
  const __m512i m4 = _mm512_set1_epi8(0x0f), eight = _mm512_set1_epi8(8);
  // unpacklo/hi interleave within 128-bit lanes; this permutation puts the 4 lanes' halves back in order
  const __m512i lo_idx = _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11), hi_idx = _mm512_setr_epi64(4, 5, 12, 13, 6, 7, 14, 15);
  for (int n = 0; n < 16; n++) {
    const uint8_t* src = row_bytes(w, r0 + n, half);
    int8_t* dst = out + n * w.cols;
    int64_t j = 0;
    for (; j + 64 <= half; j += 64) {
      const __m512i v = _mm512_loadu_si512(src + j);
      const __m512i lo = _mm512_sub_epi8(_mm512_xor_si512(_mm512_and_si512(v, m4), eight), eight);
      const __m512i hi = _mm512_sub_epi8(_mm512_xor_si512(_mm512_and_si512(_mm512_srli_epi16(v, 4), m4), eight), eight);
      const __m512i a = _mm512_unpacklo_epi8(lo, hi), b = _mm512_unpackhi_epi8(lo, hi);
      _mm512_storeu_si512(dst + 2 * j, _mm512_permutex2var_epi64(a, lo_idx, b));
      _mm512_storeu_si512(dst + 2 * j + 64, _mm512_permutex2var_epi64(a, hi_idx, b));
    }
    for (; j < half; j++) {
      const uint8_t v = src[j];
      dst[2 * j] = static_cast<int8_t>(((v & 15) ^ 8) - 8);
      dst[2 * j + 1] = static_cast<int8_t>(((v >> 4) ^ 8) - 8);
    }
    for (int64_t g = 0; g < G; g++) s[n * G + g] = our_scale(w, r0 + n, g);
  }
}

// q8_row / q8_group (ours): int8 values as they are.
TAMX void unpack_q8(const WView& w, int64_t r0, int8_t* out, float* s, float*) {
  const int64_t G = w.cols / 32;
  std::memcpy(out, static_cast<const int8_t*>(w.data) + r0 * w.cols, 16 * w.cols);
  for (int n = 0; n < 16; n++)
    for (int64_t g = 0; g < G; g++) s[n * G + g] = our_scale(w, r0 + n, g);
}

// The 16 nibble pairs of a legacy block's qs: values 0 … 15 are the low nibbles, 16 … 31 the high ones.
TAMX inline __m256i nibbles32(const uint8_t* qs) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)), m4 = _mm_set1_epi8(0x0f);
  return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), m4), _mm_and_si128(v, m4));
}

// Legacy GGUF blocks of 32: q4_0 (d; value − 8), q4_1 (d, m; unsigned), q5_0 (d, qh; 5-bit − 16), q5_1
// (d, m, qh; unsigned 5-bit), q8_0 (d; int8).
template <Fmt F>
TAMX void unpack_legacy(const WView& w, int64_t r0, int8_t* out, float* s, float* m) {
  const int64_t bytes = block_type(F).bytes, G = w.cols / 32;
  for (int n = 0; n < 16; n++) {
    const uint8_t* b = row_bytes(w, r0 + n, G * bytes);
    int8_t* dst = out + n * w.cols;
    for (int64_t g = 0; g < G; g++, b += bytes, dst += 32) {
      s[n * G + g] = h2f(b);
      __m256i v;
      if constexpr (F == Fmt::Q8_0) {
        v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 2));
      } else if constexpr (F == Fmt::Q4_0) {
        v = _mm256_sub_epi8(nibbles32(b + 2), _mm256_set1_epi8(8));
      } else if constexpr (F == Fmt::Q4_1) {
        m[n * G + g] = h2f(b + 2);
        v = nibbles32(b + 4);
      } else {
        const int off = F == Fmt::Q5_0 ? 2 : 4;
        uint32_t qh;
        std::memcpy(&qh, b + off, 4);
        // bit j of qh is the fifth bit of value j: a byte mask straight from the bits
        v = _mm256_or_si256(nibbles32(b + off + 4), _mm256_maskz_mov_epi8(qh, _mm256_set1_epi8(16)));
        if constexpr (F == Fmt::Q5_0) v = _mm256_sub_epi8(v, _mm256_set1_epi8(16));
        else m[n * G + g] = h2f(b + 2);
      }
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), v);
    }
  }
}

// q4_k (256 values, 144 bytes: d, dmin, scales[12], qs[128]) and q5_k (176: d, dmin, scales[12], qh[32],
// qs[128]): 8 groups of 32, w = (d · sc) · q − (dmin · mn); qs[32i …] holds group 2i in its low nibbles and 2i + 1
// in its high ones; q5_k's fifth bits are bits 2i / 2i + 1 of qh[l].
template <Fmt F>
TAMX void unpack_k45(const WView& w, int64_t r0, int8_t* out, float* s, float* m) {
  const int64_t bytes = block_type(F).bytes, nb = w.cols / 256, G = w.cols / 32;
  const __m256i m4 = _mm256_set1_epi8(0x0f), one = _mm256_set1_epi8(1);
  for (int n = 0; n < 16; n++) {
    const uint8_t* b = row_bytes(w, r0 + n, nb * bytes);
    int8_t* dst = out + n * w.cols;
    float* sn = s + n * G;
    float* mn_ = m + n * G;
    for (int64_t i = 0; i < nb; i++, b += bytes, dst += 256) {
      const float d = h2f(b), dmin = h2f(b + 2);
      uint64_t scw, mnw;  // byte j: the 6-bit scale / min of group j
      kq::unpack_scale_min_k4(b + 4, &scw, &mnw);
      for (int j = 0; j < 8; j++) {
        // the same f32 products as the reference dequantizer (d · sc, dmin · mn)
        sn[8 * i + j] = d * static_cast<float>((scw >> (8 * j)) & 0xff);
        mn_[8 * i + j] = -(dmin * static_cast<float>((mnw >> (8 * j)) & 0xff));
      }
      const uint8_t* qs = b + (F == Fmt::Q4_K ? 16 : 48);
      __m256i qh = _mm256_setzero_si256();
      if constexpr (F == Fmt::Q5_K) qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 16));
      for (int p = 0; p < 4; p++) {
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * p));
        __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
        if constexpr (F == Fmt::Q5_K) {
          lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * p), one), 4));
          hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * p + 1), one), 4));
        }
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 64 * p), lo);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 64 * p + 32), hi);
      }
    }
  }
}

// q6_k (256 values, 210 bytes: ql[128], qh[64], scales[16] int8, d): 16 groups of 16, w = (d · sc) · (q − 32).
// Per half h (128 values): value l + 32k (k = 0 … 3) takes nibble k >> 1 of ql[64h + l + 32 (k & 1)] and bits
// 2k … 2k + 1 of qh[32h + l].
TAMX void unpack_q6k(const WView& w, int64_t r0, int8_t* out, float* s, float*) {
  const int64_t bytes = block_type(Fmt::Q6_K).bytes;
  const int64_t nb = w.cols / 256, G = w.cols / 16;
  const __m256i m4 = _mm256_set1_epi8(0x0f), m2 = _mm256_set1_epi8(3), c32 = _mm256_set1_epi8(32);
  for (int n = 0; n < 16; n++) {
    const uint8_t* b = row_bytes(w, r0 + n, nb * bytes);
    int8_t* dst = out + n * w.cols;
    float* sn = s + n * G;
    for (int64_t i = 0; i < nb; i++, b += bytes, dst += 256) {
      const float d = h2f(b + 208);
      for (int j = 0; j < 16; j++) sn[16 * i + j] = d * static_cast<float>(static_cast<int8_t>(b[192 + j]));
      for (int h = 0; h < 2; h++) {
        const __m256i qa = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 64 * h));
        const __m256i qb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 64 * h + 32));
        const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 128 + 32 * h));
        const __m256i hb[4] = {
            _mm256_slli_epi16(_mm256_and_si256(qh, m2), 4),
            _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m2), 4),
            _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m2), 4),
            _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m2), 4),
        };
        const __m256i lo[4] = {_mm256_and_si256(qa, m4), _mm256_and_si256(qb, m4),
                               _mm256_and_si256(_mm256_srli_epi16(qa, 4), m4),
                               _mm256_and_si256(_mm256_srli_epi16(qb, 4), m4)};
        for (int k = 0; k < 4; k++)
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 128 * h + 32 * k),
                              _mm256_sub_epi8(_mm256_or_si256(lo[k], hb[k]), c32));
      }
    }
  }
}

using UnpackFn = void (*)(const WView& w, int64_t r0, int8_t* q, float* s, float* m);

struct AmxFormat {
  int gs = 0;          // columns per weight group (16 or 32)
  bool mins = false;   // whether the format has a per-group min
  int64_t unit = 0;    // cols must be a multiple of this (a block, or 128 for q4_group)
  UnpackFn unpack = nullptr;
};

AmxFormat amx_format(const WView& w) {
  switch (w.fmt) {
    case Fmt::Q4: return {32, false, 32, unpack_q4};
    case Fmt::Q8: return {32, false, 32, unpack_q8};
    case Fmt::Q4G: return w.group % 32 == 0 ? AmxFormat{32, false, 32, unpack_q4} : AmxFormat{};
    case Fmt::Q8G: return w.group % 32 == 0 ? AmxFormat{32, false, 32, unpack_q8} : AmxFormat{};
    case Fmt::Q4_0: return {32, false, 32, unpack_legacy<Fmt::Q4_0>};
    case Fmt::Q4_1: return {32, true, 32, unpack_legacy<Fmt::Q4_1>};
    case Fmt::Q5_0: return {32, false, 32, unpack_legacy<Fmt::Q5_0>};
    case Fmt::Q5_1: return {32, true, 32, unpack_legacy<Fmt::Q5_1>};
    case Fmt::Q8_0: return {32, false, 32, unpack_legacy<Fmt::Q8_0>};
    case Fmt::Q4_K: return {32, true, 256, unpack_k45<Fmt::Q4_K>};
    case Fmt::Q5_K: return {32, true, 256, unpack_k45<Fmt::Q5_K>};
    case Fmt::Q6_K: return {16, false, 256, unpack_q6k};
    default: return {};
  }
}

// One 16-row weight block × one 16-token tile: y[t, r0 + n] for t < tt.
template <int GS, bool MINS>
TAMX void tile_block(const int8_t* wq, const float* ws, const float* wm, int64_t cols, const AmxX& ax, int64_t tile,
                     float* y, int64_t ldy, int64_t r0, int64_t tt) {
  const int64_t G = cols / GS;
  const int8_t* xq = ax.q + tile * cols * 16;  // G groups × (GS / 4 rows × 64 bytes) = 16 · cols bytes
  const float* dx = ax.d + tile * G * 16;
  const float* sx = ax.s + tile * G * 16;
  alignas(64) int32_t cbuf[3][256];
  __m512 acc[16];
  for (int n = 0; n < 16; n++) acc[n] = _mm512_setzero_ps();
  // Group g's product runs in C tile (g & 1) and is stored to cbuf[g % 3] one step before it is scaled. Tile
  // ids must be immediates, hence the branches.
#define XV_AMX_ISSUE(g)                            \
  do {                                             \
    if (((g) & 1) == 0) {                          \
      _tile_loadd(2, wq + GS * (g), cols);         \
      _tile_loadd(3, xq + 16 * GS * (g), 64);      \
      _tile_zero(0);                               \
      _tile_dpbssd(0, 2, 3);                       \
    } else {                                       \
      _tile_loadd(4, wq + GS * (g), cols);         \
      _tile_loadd(5, xq + 16 * GS * (g), 64);      \
      _tile_zero(1);                               \
      _tile_dpbssd(1, 4, 5);                       \
    }                                              \
  } while (0)
#define XV_AMX_STORE(g)                                     \
  do {                                                      \
    if (((g) & 1) == 0) _tile_stored(0, cbuf[(g) % 3], 64); \
    else _tile_stored(1, cbuf[(g) % 3], 64);                \
  } while (0)
  XV_AMX_ISSUE(0);
  if (G > 1) XV_AMX_ISSUE(1);
  XV_AMX_STORE(0);
  for (int64_t g = 0; g < G; g++) {
    if (g + 1 < G) XV_AMX_STORE(g + 1);
    if (g + 2 < G) XV_AMX_ISSUE(g + 2);
    const __m512 d = _mm512_load_ps(dx + 16 * g);
    const int32_t* c = cbuf[g % 3];
    if constexpr (MINS) {
      const __m512 sxv = _mm512_load_ps(sx + 16 * g);
#pragma GCC unroll 16
      for (int n = 0; n < 16; n++) {
        const __m512 s = _mm512_mul_ps(d, _mm512_set1_ps(ws[n * G + g]));
        acc[n] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(c + 16 * n)), s, acc[n]);
        acc[n] = _mm512_fmadd_ps(sxv, _mm512_set1_ps(wm[n * G + g]), acc[n]);
      }
    } else {
#pragma GCC unroll 16
      for (int n = 0; n < 16; n++) {
        const __m512 s = _mm512_mul_ps(d, _mm512_set1_ps(ws[n * G + g]));
        acc[n] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(c + 16 * n)), s, acc[n]);
      }
    }
  }
#undef XV_AMX_ISSUE
#undef XV_AMX_STORE
  // acc[n] lane t = y[t, r0 + n]: a 16 × 16 transpose through memory
  alignas(64) float out[16][16];
  for (int n = 0; n < 16; n++) _mm512_store_ps(out[n], acc[n]);
  for (int64_t t = 0; t < tt; t++) {
    float* yr = y + (tile * 16 + t) * ldy + r0;
    for (int n = 0; n < 16; n++) yr[n] = out[n][t];
  }
}

}  // namespace

bool amx_available() {
  static const bool ok = cpuid_amx_int8() && syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
  return ok;
}

int amx_group(const WView& w) {
  const AmxFormat f = amx_format(w);
  if (!f.unpack || w.rows % 16 || w.cols % f.unit || w.cols % 32) return 0;
  return f.gs;
}

int64_t amx_x_bytes(int64_t cols, int64_t T) {
  const int64_t tiles = (T + 15) / 16;
  // q: 16 · cols bytes per tile; d and s: 16 floats per group of 16 (the finer grouping)
  return tiles * (16 * cols + 2 * 4 * 16 * (cols / 16)) + 64;
}

// Token t's int8 values go to the B layout of group size gs: tile t / 16, group g, row kk, bytes 4 (t % 16) …
// + 3 = columns gs · g + 4kk … + 3. d is the scale of the 32 columns around the group, s = d · Σ q over the group.
// Tokens past T (the last tile's padding) are zero, so they add nothing.
TAMX AmxX quantize_amx(const float* x, int64_t cols, int64_t T, int gs, void* scratch, int64_t t0, int64_t t1) {
  AmxX ax;
  const int64_t tiles = (T + 15) / 16, G = cols / gs;
  ax.q = reinterpret_cast<int8_t*>((reinterpret_cast<uintptr_t>(scratch) + 63) & ~uintptr_t(63));
  ax.d = reinterpret_cast<float*>(ax.q + tiles * 16 * cols);
  ax.s = ax.d + tiles * G * 16;
  ax.tiles = tiles;
  const __m512 absmask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  for (int64_t t = t0; t < t1; t++) {
    const int64_t tile = t / 16, lane = t % 16;
    int8_t* qb = ax.q + tile * 16 * cols + 4 * lane;
    float* db = ax.d + tile * G * 16 + lane;
    float* sb = ax.s + tile * G * 16 + lane;
    for (int64_t c0 = 0; c0 < cols; c0 += 32) {
      alignas(64) int8_t q[32];
      float d = 0.f;
      if (t < T) {
        const float* xg = x + t * cols + c0;
        const __m512 v0 = _mm512_loadu_ps(xg), v1 = _mm512_loadu_ps(xg + 16);
        const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_and_ps(v0, absmask), _mm512_and_ps(v1, absmask)));
        d = amax / 127.f;
        const __m512 id = _mm512_set1_ps(amax >= 1e-30f ? 127.f / amax : 0.f);  // (below: 127 / amax could overflow)
        _mm_store_si128(reinterpret_cast<__m128i*>(q), _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(v0, id))));
        _mm_store_si128(reinterpret_cast<__m128i*>(q + 16), _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(v1, id))));
      } else {
        std::memset(q, 0, 32);
      }
      for (int64_t g = c0 / gs; g < (c0 + 32) / gs; g++) {
        const int8_t* qg = q + (g * gs - c0);
        int8_t* dst = qb + 16 * gs * g;
        int sum = 0;
        for (int kk = 0; kk < gs / 4; kk++) std::memcpy(dst + 64 * kk, qg + 4 * kk, 4);
        for (int k = 0; k < gs; k++) sum += qg[k];
        db[16 * g] = d;
        sb[16 * g] = d * static_cast<float>(sum);
      }
    }
  }
  return ax;
}

// Weight rows [16 b0, 16 b1): unpack each 16-row block once, then every token tile.
TAMX void matmul_amx_blocks(const WView& w, const AmxX& ax, float* y, int64_t ldy, int64_t T, int64_t b0, int64_t b1) {
  const AmxFormat f = amx_format(w);
  const int64_t G = w.cols / f.gs;
  thread_local std::vector<int8_t> wq;
  thread_local std::vector<float> ws;
  if (static_cast<int64_t>(wq.size()) < 16 * w.cols) wq.resize(16 * w.cols);
  if (static_cast<int64_t>(ws.size()) < 2 * 16 * G) ws.resize(2 * 16 * G);
  float* s = ws.data();
  float* m = s + 16 * G;
  load_config(f.gs);
  for (int64_t b = b0; b < b1; b++) {
    f.unpack(w, 16 * b, wq.data(), s, m);
    for (int64_t tile = 0; tile < ax.tiles; tile++) {
      const int64_t tt = T - 16 * tile < 16 ? T - 16 * tile : 16;
      if (f.gs == 16) tile_block<16, false>(wq.data(), s, m, w.cols, ax, tile, y, ldy, 16 * b, tt);
      else if (f.mins) tile_block<32, true>(wq.data(), s, m, w.cols, ax, tile, y, ldy, 16 * b, tt);
      else tile_block<32, false>(wq.data(), s, m, w.cols, ax, tile, y, ldy, 16 * b, tt);
    }
  }
  _tile_release();
}

}  // namespace xv

#else  // no AMX here: never selected
namespace xv {
bool amx_available() { return false; }
int amx_group(const WView&) { return 0; }
int64_t amx_x_bytes(int64_t, int64_t) { return 0; }
AmxX quantize_amx(const float*, int64_t, int64_t, int, void*, int64_t, int64_t) { return AmxX{}; }
void matmul_amx_blocks(const WView&, const AmxX&, float*, int64_t, int64_t, int64_t, int64_t) {}
}  // namespace xv
#endif
