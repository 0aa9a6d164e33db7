// Scalar weight decoding, shared by the scalar kernels and the vector kernels' odd tails.
#pragma once
#include <cstdint>
#include <cstring>

#include "kernels.h"

namespace xv {

static inline float bf16_to_f32(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

static inline float f16_to_f32(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ff, u;
  if (e == 0) {
    if (m == 0) {
      u = sign;
    } else {  // subnormal half: renormalize
      e = 127 - 15 + 1;
      while (!(m & 0x400)) {
        m <<= 1;
        e--;
      }
      u = sign | (e << 23) | ((m & 0x3ff) << 13);
    }
  } else if (e == 31) {
    u = sign | 0x7f800000u | (m << 13);
  } else {
    u = sign | ((e + 127 - 15) << 23) | (m << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Sign-extends a 4-bit two's-complement nibble.
static inline int nib(int b) { return ((b & 0xf) ^ 8) - 8; }

// Weight element W[r, c] as f32 (int formats include their scale).
static inline float weight_at(const WView& w, int64_t r, int64_t c) {
  const int64_t i = r * w.cols + c;
  switch (w.fmt) {
    case Fmt::F32: return static_cast<const float*>(w.data)[i];
    case Fmt::BF16: return bf16_to_f32(static_cast<const uint16_t*>(w.data)[i]);
    case Fmt::F16: return f16_to_f32(static_cast<const uint16_t*>(w.data)[i]);
    case Fmt::Q8: return static_cast<const int8_t*>(w.data)[i] * w.scales[r];
    case Fmt::Q4:
    case Fmt::Q4G: {
      const uint8_t b = static_cast<const uint8_t*>(w.data)[i >> 1];
      const int q = (i & 1) ? nib(b >> 4) : nib(b);
      if (w.fmt == Fmt::Q4) return q * w.scales[r];
      return q * w.scales[i / w.group];
    }
    default: break;  // block formats never come here (blocks.h)
  }
  return 0.f;
}

}  // namespace xv
