// K-quants on AVX-512 (BW): one super-block = 4 chunks of 64 columns. Each chunk's weight codes are unpacked
// to one register of 64 unsigned bytes (0 … 63) in column order, so the Q8K activations are read as stored;
// vpmaddubsw (u8 × s8 → s16 pairs, at most 2 · 63 · 127: no saturation) then vpdpwssd (VNNI) or vpmaddwd +
// vpaddd multiply the pairs by their sub-block scale (one int16 per pair lane, picked by vpermw from the block's
// scale table) into int32 lanes. Once per block: the offset / min corrections from the 16-column sums, and one
// f32 fma with d · dx. Prefill runs up to 4 tokens per pass over a row, sharing the unpacked chunks.
//
// Unpacking: a 32-byte run of codes is broadcast to both 256-bit halves and each half shifted by its own count
// (vpsrlvw), because in every K layout the next 32 columns sit in the next bit-field of the same 32 bytes.
#include "kquants.h"
#if XV_X86
#include <immintrin.h>

#include "hsum_avx.h"

#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")))
#define TVNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma,f16c")))
#define INL inline __attribute__((always_inline))

namespace xv {
namespace kq {

namespace plain {
#define KQ_T T512
#define KQ_VNNI 0
#include "kquants_avx512.inc"
#undef KQ_T
#undef KQ_VNNI
}  // namespace plain

namespace vnni {
#define KQ_T TVNNI
#define KQ_VNNI 1
#include "kquants_avx512.inc"
#undef KQ_T
#undef KQ_VNNI
}  // namespace vnni

void rows_avx512(KType kt, const uint8_t* w, int64_t cols, const Q8K* x, float* y, int64_t ldy, int64_t T,
                 int64_t r0, int64_t r1) {
  plain::rows_any(kt, w, cols, x, y, ldy, T, r0, r1);
}
void rows_vnni(KType kt, const uint8_t* w, int64_t cols, const Q8K* x, float* y, int64_t ldy, int64_t T, int64_t r0,
               int64_t r1) {
  vnni::rows_any(kt, w, cols, x, y, ldy, T, r0, r1);
}

// Same arithmetic as quantize_scalar: x · (127 / amax) in f32, vcvtps2dq rounds half to even like nearbyint.
T512 void quantize_avx512(const float* x, int64_t cols, Q8K* out) {
  const __m512 absmask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  for (int64_t b = 0; b < cols / QK; b++) {
    const float* v = x + b * QK;
    __m512 mx = _mm512_setzero_ps();
    for (int i = 0; i < QK; i += 16) mx = _mm512_max_ps(mx, _mm512_and_ps(_mm512_loadu_ps(v + i), absmask));
    const float amax = _mm512_reduce_max_ps(mx);
    const __m512 id = _mm512_set1_ps(amax >= 1e-30f ? 127.f / amax : 0.f);
    Q8K& o = out[b];
    o.d = amax / 127.f;
    for (int g = 0; g < QK / 16; g++) {
      const __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(v + 16 * g), id));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(o.qs + 16 * g), _mm512_cvtepi32_epi8(q));
      o.bsums[g] = static_cast<int16_t>(_mm512_reduce_add_epi32(q));
    }
  }
}

}  // namespace kq
}  // namespace xv
#endif  // XV_X86
