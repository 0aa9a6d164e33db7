// K-quants (q2_k, q3_k, q4_k, q5_k, q6_k): the activation quantizer, the portable kernels, and the entry points
// blocks.cc dispatches to. The block layouts are ggml's (ggml-common.h), read in place from the file's bytes;
// the scalar code below is the plainest statement of how each one decodes, and the AVX2 / AVX-512 files do the
// same arithmetic (see kquants.h for the integer identity all of them use).
#include <cmath>
#include <cstring>

#include "blocks.h"
#include "convert.h"
#include "kquants.h"

namespace xv {
namespace kq {

void quantize_scalar(const float* x, int64_t cols, Q8K* out) {
  for (int64_t b = 0; b < cols / QK; b++) {
    const float* v = x + b * QK;
    Q8K& o = out[b];
    float amax = 0;
    for (int i = 0; i < QK; i++) amax = std::fmax(amax, std::fabs(v[i]));
    const float id = amax >= 1e-30f ? 127.f / amax : 0.f;  // (below: 127 / amax could overflow)
    o.d = amax / 127.f;
    for (int g = 0; g < QK / 16; g++) {
      int s = 0;
      for (int i = 16 * g; i < 16 * g + 16; i++) {
        const int q = static_cast<int>(std::nearbyint(v[i] * id));
        o.qs[i] = static_cast<int8_t>(q);
        s += q;
      }
      o.bsums[g] = static_cast<int16_t>(s);
    }
  }
}

namespace {

inline float f16_at(const uint8_t* p) { return f16_to_f32(static_cast<uint16_t>(p[0] | (p[1] << 8))); }

// One super-block: Σ over its 256 columns of dequant(W) · dequant(x), in the integer form of kquants.h.
float dot_q2k(const uint8_t* q, const Q8K& x) {
  // scales[16] (low nibble scale, high nibble min, per 16), qs[64] (2 bits), f16 d, f16 dmin.
  // Column 128n + 32j + k (k < 32) is bits 2j … 2j+1 of qs[32n + k]; its scale / min is byte column / 16.
  int32_t isum = 0, msum = 0;
  for (int n = 0; n < 2; n++) {
    for (int j = 0; j < 4; j++) {
      for (int h = 0; h < 2; h++) {
        const int col = 128 * n + 32 * j + 16 * h;
        int s = 0;
        for (int k = 16 * h; k < 16 * h + 16; k++) s += ((q[16 + 32 * n + k] >> (2 * j)) & 3) * x.qs[col + k - 16 * h];
        const uint8_t sc = q[col / 16];
        isum += (sc & 15) * s;
        msum += (sc >> 4) * x.bsums[col / 16];
      }
    }
  }
  return x.d * (f16_at(q + 80) * static_cast<float>(isum) - f16_at(q + 82) * static_cast<float>(msum));
}

float dot_q3k(const uint8_t* q, const Q8K& x) {
  // hmask[32], qs[64] (low 2 bits), scales[12] (16 six-bit, biased 32), f16 d. Column 128n + 32j + k: low bits
  // 2j … 2j+1 of qs[32n + k], third bit = bit 4n + j of hmask[k]; value = (low | third << 2) − 4.
  int8_t sc[16];
  unpack_scales_q3k(q + 96, sc);
  int32_t isum = 0, off = 0;
  for (int n = 0; n < 2; n++) {
    for (int j = 0; j < 4; j++) {
      for (int h = 0; h < 2; h++) {
        const int col = 128 * n + 32 * j + 16 * h;
        int s = 0;
        for (int k = 16 * h; k < 16 * h + 16; k++) {
          const int u = ((q[32 + 32 * n + k] >> (2 * j)) & 3) | (((q[k] >> (4 * n + j)) & 1) << 2);
          s += u * x.qs[col + k - 16 * h];
        }
        isum += sc[col / 16] * s;
        off += sc[col / 16] * x.bsums[col / 16];
      }
    }
  }
  return x.d * f16_at(q + 108) * static_cast<float>(isum - 4 * off);
}

// q4_k / q5_k: f16 d, f16 dmin, 12-byte scales/mins (8 × 32 columns), [q5_k: qh[32]], qs[128]. Column 64g + k
// (k < 32) is the low nibble of qs[32g + k], column 64g + 32 + k its high nibble; q5_k adds bit 2g (resp. 2g+1)
// of qh[k] as the fifth bit.
template <bool Q5>
float dot_q45k(const uint8_t* q, const Q8K& x) {
  uint64_t scw, mnw;
  unpack_scale_min_k4(q + 4, &scw, &mnw);
  const uint8_t* qs = q + (Q5 ? 48 : 16);
  int32_t isum = 0, msum = 0;
  for (int j = 0; j < 8; j++) {
    const int g = j / 2, shift = 4 * (j % 2);
    int s = 0;
    for (int k = 0; k < 32; k++) {
      int u = (qs[32 * g + k] >> shift) & 15;
      if (Q5) u |= ((q[16 + k] >> j) & 1) << 4;
      s += u * x.qs[32 * j + k];
    }
    isum += static_cast<int>((scw >> (8 * j)) & 255) * s;
    msum += static_cast<int>((mnw >> (8 * j)) & 255) * (x.bsums[2 * j] + x.bsums[2 * j + 1]);
  }
  return x.d * (f16_at(q) * static_cast<float>(isum) - f16_at(q + 2) * static_cast<float>(msum));
}

float dot_q6k(const uint8_t* q, const Q8K& x) {
  // ql[128] (low 4 bits), qh[64] (high 2 bits), int8 scales[16], f16 d. In half n, column 128n + 32k + l
  // (k < 4, l < 32) takes nibble k / 2 of ql[64n + 32(k % 2) + l] and bits 2k … 2k+1 of qh[32n + l]; value − 32.
  const int8_t* sc = reinterpret_cast<const int8_t*>(q + 192);
  int32_t isum = 0, off = 0;
  for (int n = 0; n < 2; n++) {
    for (int k = 0; k < 4; k++) {
      for (int h = 0; h < 2; h++) {
        const int col = 128 * n + 32 * k + 16 * h;
        int s = 0;
        for (int l = 16 * h; l < 16 * h + 16; l++) {
          const int u = ((q[64 * n + 32 * (k % 2) + l] >> (4 * (k / 2))) & 15) | (((q[128 + 32 * n + l] >> (2 * k)) & 3) << 4);
          s += u * x.qs[128 * n + 32 * k + l];
        }
        isum += sc[col / 16] * s;
        off += sc[col / 16] * x.bsums[col / 16];
      }
    }
  }
  return x.d * f16_at(q + 208) * static_cast<float>(isum - 32 * off);
}

}  // namespace

void rows_scalar(KType kt, const uint8_t* w, int64_t cols, const Q8K* x, float* y, int64_t ldy, int64_t T,
                 int64_t r0, int64_t r1) {
  const int64_t nb = cols / QK, bb = BLOCK_BYTES[static_cast<int>(kt)];
  float (*dot)(const uint8_t*, const Q8K&) = kt == KType::Q2K   ? dot_q2k
                                             : kt == KType::Q3K ? dot_q3k
                                             : kt == KType::Q4K ? dot_q45k<false>
                                             : kt == KType::Q5K ? dot_q45k<true>
                                                                : dot_q6k;
  for (int64_t r = r0; r < r1; r++) {
    const uint8_t* row = w + r * nb * bb;
    for (int64_t t = 0; t < T; t++) {
      const Q8K* xt = x + t * nb;
      float s = 0;
      for (int64_t b = 0; b < nb; b++) s += dot(row + b * bb, xt[b]);
      y[t * ldy + r] = s;
    }
  }
}

}  // namespace kq

// --- the family's entry points (blocks.h) ---

bool kquant_supports(Fmt f) { return f >= Fmt::Q2_K && f <= Fmt::Q6_K; }

// Q8K blocks are 320 bytes, so every token's activations stay 64-byte aligned.
int64_t kquant_act_bytes(int64_t cols) { return (cols + kq::QK - 1) / kq::QK * static_cast<int64_t>(sizeof(kq::Q8K)); }

void kquant_quantize(const float* x, int64_t cols, void* qact, BlockIsa isa) {
  kq::Q8K* o = static_cast<kq::Q8K*>(qact);
#if XV_X86
  if (isa.isa == Isa::Avx512) return kq::quantize_avx512(x, cols, o);
  if (isa.isa == Isa::Avx2) return kq::quantize_avx2(x, cols, o);
#endif
  kq::quantize_scalar(x, cols, o);
}

namespace {

template <kq::KType K, kq::RowsFn F>
void rows_entry(const WView& w, const void* qact, float* y, int64_t ldy, int64_t T, int64_t r0, int64_t r1) {
  F(K, static_cast<const uint8_t*>(w.data), w.cols, static_cast<const kq::Q8K*>(qact), y, ldy, T, r0, r1);
}

template <kq::RowsFn F>
BlockRowsFn for_type(Fmt f) {
  switch (f) {
    case Fmt::Q2_K: return rows_entry<kq::KType::Q2K, F>;
    case Fmt::Q3_K: return rows_entry<kq::KType::Q3K, F>;
    case Fmt::Q4_K: return rows_entry<kq::KType::Q4K, F>;
    case Fmt::Q5_K: return rows_entry<kq::KType::Q5K, F>;
    case Fmt::Q6_K: return rows_entry<kq::KType::Q6K, F>;
    default: return nullptr;
  }
}

}  // namespace

BlockRowsFn kquant_rows(Fmt f, BlockIsa isa) {
#if XV_X86
  if (isa.isa == Isa::Avx512) return isa.vnni ? for_type<kq::rows_vnni>(f) : for_type<kq::rows_avx512>(f);
  if (isa.isa == Isa::Avx2) return for_type<kq::rows_avx2>(f);
#endif
  return for_type<kq::rows_scalar>(f);
}

}  // namespace xv
