// Prefill matmul for q4_group weights with group 32 (Q4_0 GGUF) on AMX-INT8 (Intel Sapphire Rapids and later).
//
// Why: prefill is compute-bound, and one tdpbssd multiplies a 16 × 32 int8 tile by a 32 × 16 one (8,192 MACs) in
// about the time AVX-512 VNNI needs for 128 vpdpbusd. The activations are quantized exactly as the VNNI path
// does (int8 per 32 columns, d = amax / 127, round to nearest even), and each group's int32 dot product is exact,
// so the result differs from the VNNI kernel only in the order of the f32 sums.
//
// Operands (C[16 × 16] += A[16 × 32] · B[32 × 16] per group):
// - A = 16 weight rows × one group of 32 columns, row-major int8. Each thread unpacks its 16 rows once per call
//   (nibbles → sign-extended bytes, natural column order) into a [16, cols] scratch, then walks every token tile
//   over it, so the unpacking is paid once per weight, not once per token tile.
// - B = the activations of 16 tokens for one group, in AMX's "VNNI" layout: row kk holds, for each token t, the
//   4 bytes x[t, 32g + 4kk … 4kk + 3]; quantize_amx writes them there directly (8 rows × 64 bytes per group).
// - C[n][t] (int32, weight row n × token t) is scaled per group by sw[n, g] · dx[t, g] into 16 f32 accumulators
//   (one zmm per weight row, 16 tokens wide), and transposed into y (T, rows) once per tile.
#include "kernels.h"

#if XV_X86 && defined(__linux__)
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <vector>

#define TAMX __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,amx-tile,amx-int8")))

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

// Tiles: 0, 1 = C (16 × 16 int32) of even / odd groups, 2 / 4 = their A (16 weight rows × 32 bytes), 3 / 5 = their
// B (8 × 64 bytes). Separate A / B tiles per parity let group g + 1's loads start while group g's product runs.
TAMX void load_config() {
  TileConfig c;
  c.rows[0] = c.rows[1] = 16, c.colsb[0] = c.colsb[1] = 64;
  c.rows[2] = c.rows[4] = 16, c.colsb[2] = c.colsb[4] = 32;
  c.rows[3] = c.rows[5] = 8, c.colsb[3] = c.colsb[5] = 64;
  _tile_loadconfig(&c);
}

// 16 weight rows [r0, r0 + 16) → int8 [16, cols], natural column order: byte j of a packed row holds columns 2j
// (low nibble) and 2j + 1 (high), two's complement; (v ^ 8) − 8 sign-extends a nibble.
TAMX void unpack_rows(const WView& w, int64_t r0, int8_t* out) {
  const int64_t half = w.cols / 2;
  const __m512i m4 = _mm512_set1_epi8(0x0f), eight = _mm512_set1_epi8(8);
  // unpacklo/hi interleave within 128-bit lanes; this permutation puts the 4 lanes' halves back in order
  const __m512i lo_idx = _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11), hi_idx = _mm512_setr_epi64(4, 5, 12, 13, 6, 7, 14, 15);
  for (int n = 0; n < 16; n++) {
    const uint8_t* src = static_cast<const uint8_t*>(w.data) + (r0 + n) * half;
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
  }
}

// One 16-row weight block × one 16-token tile: y[t, r0 + n] for t < tt.
TAMX void tile_block(const WView& w, const int8_t* wq, const AmxX& ax, int64_t tile, float* y, int64_t ldy, int64_t r0,
                     int64_t tt) {
  const int64_t G = w.cols / 32;
  const int8_t* xq = ax.q + tile * G * 512;
  const float* dx = ax.d + tile * G * 16;
  const float* sw = w.scales + r0 * G;  // sw[n * G + g]
  alignas(64) int32_t cbuf[3][256];
  __m512 acc[16];
  for (int n = 0; n < 16; n++) acc[n] = _mm512_setzero_ps();
  // Group g's product runs in C tile (g & 1) from A / B tiles of the same parity and is stored to cbuf[g % 3];
  // tile ids must be immediates, hence the branches. Measured on a Sapphire-Rapids-class Xeon: the tile work and
  // the vector scaling (16 × load, cvt, mul, fma per group) take about the same time and do not overlap much
  // however deep the pipeline, so this kernel runs ~2× the VNNI one, not the 8× the TMUL peak would suggest.
#define XV_AMX_ISSUE(g)                        \
  do {                                         \
    if (((g) & 1) == 0) {                      \
      _tile_loadd(2, wq + 32 * (g), w.cols);   \
      _tile_loadd(3, xq + 512 * (g), 64);      \
      _tile_zero(0);                           \
      _tile_dpbssd(0, 2, 3);                   \
    } else {                                   \
      _tile_loadd(4, wq + 32 * (g), w.cols);   \
      _tile_loadd(5, xq + 512 * (g), 64);      \
      _tile_zero(1);                           \
      _tile_dpbssd(1, 4, 5);                   \
    }                                          \
  } while (0)
#define XV_AMX_STORE(g)                                      \
  do {                                                       \
    if (((g) & 1) == 0) _tile_stored(0, cbuf[(g) % 3], 64);  \
    else _tile_stored(1, cbuf[(g) % 3], 64);                 \
  } while (0)
  // Pipeline: while group g's counts are scaled, group g + 1's are being stored and group g + 2's multiplied.
  XV_AMX_ISSUE(0);
  if (G > 1) XV_AMX_ISSUE(1);
  XV_AMX_STORE(0);
  for (int64_t g = 0; g < G; g++) {
    if (g + 1 < G) XV_AMX_STORE(g + 1);
    if (g + 2 < G) XV_AMX_ISSUE(g + 2);
    const __m512 d = _mm512_load_ps(dx + 16 * g);
    const int32_t* c = cbuf[g % 3];
#pragma GCC unroll 16
    for (int n = 0; n < 16; n++) {
      const __m512 s = _mm512_mul_ps(d, _mm512_set1_ps(sw[n * G + g]));
      acc[n] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(c + 16 * n)), s, acc[n]);
    }
  }
#undef XV_AMX_ISSUE
#undef XV_AMX_STORE
  // acc[n] lane t = y[t, r0 + n]: a 16 × 16 transpose through memory, once per tile
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

bool amx_g32_supports(const WView& w) {
  return w.fmt == Fmt::Q4G && w.group == 32 && w.cols % 128 == 0 && w.rows % 16 == 0;
}

int64_t amx_x_bytes(int64_t cols, int64_t T) {
  const int64_t tiles = (T + 15) / 16, G = cols / 32;
  return tiles * G * (512 + 64) + 64;
}

// Token t's int8 values (the same as quantize_x: d = amax / 127, x · (127 / amax) rounded to nearest even) go to
// the B layout: tile t / 16, group g, row kk, bytes 4 (t % 16) … +3 = columns 32g + 4kk … +3. Tokens past T
// (the last tile's padding) are zero, so they add nothing.
TAMX AmxX quantize_amx(const float* x, int64_t cols, int64_t T, void* scratch, int64_t t0, int64_t t1) {
  AmxX ax;
  const int64_t tiles = (T + 15) / 16, G = cols / 32;
  ax.q = reinterpret_cast<int8_t*>((reinterpret_cast<uintptr_t>(scratch) + 63) & ~uintptr_t(63));
  ax.d = reinterpret_cast<float*>(ax.q + tiles * G * 512);
  ax.tiles = tiles;
  const __m512 absmask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  for (int64_t t = t0; t < t1; t++) {
    const int64_t tile = t / 16, lane = t % 16;
    int8_t* qb = ax.q + tile * G * 512 + 4 * lane;
    float* db = ax.d + tile * G * 16 + lane;
    for (int64_t g = 0; g < G; g++) {
      alignas(64) int8_t q[32];
      float d = 0.f;
      if (t < T) {
        const float* xg = x + t * cols + 32 * g;
        const __m512 v0 = _mm512_loadu_ps(xg), v1 = _mm512_loadu_ps(xg + 16);
        const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_and_ps(v0, absmask), _mm512_and_ps(v1, absmask)));
        d = amax / 127.f;
        const __m512 id = _mm512_set1_ps(amax > 0 ? 127.f / amax : 0.f);
        _mm_store_si128(reinterpret_cast<__m128i*>(q), _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(v0, id))));
        _mm_store_si128(reinterpret_cast<__m128i*>(q + 16), _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(v1, id))));
      } else {
        std::memset(q, 0, 32);
      }
      int8_t* dst = qb + 512 * g;
      for (int kk = 0; kk < 8; kk++) std::memcpy(dst + 64 * kk, q + 4 * kk, 4);
      db[16 * g] = d;
    }
  }
  return ax;
}

// Weight rows [16 b0, 16 b1): unpack each 16-row block once, then every token tile.
TAMX void matmul_amx_g32_blocks(const WView& w, const AmxX& ax, float* y, int64_t ldy, int64_t T, int64_t b0,
                                int64_t b1) {
  thread_local std::vector<int8_t> wq;
  if (static_cast<int64_t>(wq.size()) < 16 * w.cols) wq.resize(16 * w.cols);
  load_config();
  for (int64_t b = b0; b < b1; b++) {
    unpack_rows(w, 16 * b, wq.data());
    for (int64_t tile = 0; tile < ax.tiles; tile++) {
      const int64_t tt = T - 16 * tile < 16 ? T - 16 * tile : 16;
      tile_block(w, wq.data(), ax, tile, y, ldy, 16 * b, tt);
    }
  }
  _tile_release();
}

}  // namespace xv

#else  // no AMX here: never selected
namespace xv {
bool amx_available() { return false; }
bool amx_g32_supports(const WView&) { return false; }
int64_t amx_x_bytes(int64_t, int64_t) { return 0; }
AmxX quantize_amx(const float*, int64_t, int64_t, void*, int64_t, int64_t) { return AmxX{}; }
void matmul_amx_g32_blocks(const WView&, const AmxX&, float*, int64_t, int64_t, int64_t, int64_t) {}
}  // namespace xv
#endif
