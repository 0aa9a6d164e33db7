// GGUF Q4_0 blocks → our q4_group (group 32) layout, at load. Q4_0 is exactly q4_group with one f16 scale per 32
// columns (w = (q − 8) · d), but its nibble order differs: a block's byte j holds column j (low nibble) and j + 16
// (high), unsigned with offset 8; ours holds columns 2k and 2k + 1 in byte k, two's complement. (q − 8) as a
// two's-complement nibble is q ^ 8. The TS reference is q4_0ToGroupWeight (src/gguf/weights.ts).
#include <cstdint>

#include "convert.h"
#include "kernels.h"

namespace xv {

// Rows [r0, r1) of a [rows, cols] Q4_0 tensor (cols % 32 == 0).
void repack_q4_0_rows(const uint8_t* src, int64_t cols, uint8_t* dst, float* scales, int64_t r0, int64_t r1) {
  const int64_t nb = cols / 32;
  for (int64_t r = r0; r < r1; r++) {
    for (int64_t b = 0; b < nb; b++) {
      const uint8_t* blk = src + (r * nb + b) * 18;
      scales[r * nb + b] = f16_to_f32(static_cast<uint16_t>(blk[0] | (blk[1] << 8)));
      const uint8_t* qs = blk + 2;
      uint8_t* o = dst + (r * nb + b) * 16;
      for (int k = 0; k < 8; k++) {
        const uint8_t a = qs[2 * k], c = qs[2 * k + 1];
        o[k] = static_cast<uint8_t>(((a & 15) ^ 8) | (((c & 15) ^ 8) << 4));    // columns 2k, 2k + 1
        o[8 + k] = static_cast<uint8_t>(((a >> 4) ^ 8) | (((c >> 4) ^ 8) << 4));  // columns 16 + 2k, 16 + 2k + 1
      }
    }
  }
}

}  // namespace xv
