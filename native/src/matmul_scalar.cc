// Portable matmul: decode one weight row into f32 once, then dot it with every token (same plan as the TS
// reference, so prefill still reads each weight row once).
#include <vector>

#include "convert.h"
#include "kernels.h"

namespace xv {

static float dot4(const float* a, const float* b, int64_t n) {
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t i = 0;
  for (; i + 3 < n; i += 4) {
    s0 += a[i] * b[i];
    s1 += a[i + 1] * b[i + 1];
    s2 += a[i + 2] * b[i + 2];
    s3 += a[i + 3] * b[i + 3];
  }
  for (; i < n; i++) s0 += a[i] * b[i];
  return (s0 + s1) + (s2 + s3);
}

void matmul_rows_scalar(const WView& w, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t T, int64_t r0,
                        int64_t r1) {
  const int64_t n = w.cols;
  thread_local std::vector<float> row;
  if (static_cast<int64_t>(row.size()) < n) row.resize(n);
  for (int64_t r = r0; r < r1; r++) {
    const float* wr;
    if (w.fmt == Fmt::F32) {
      wr = static_cast<const float*>(w.data) + r * n;
    } else {
      for (int64_t c = 0; c < n; c++) row[c] = weight_at(w, r, c);
      wr = row.data();
    }
    for (int64_t t = 0; t < T; t++) y[t * ldy + r] = dot4(x + t * ldx, wr, n);
  }
}

}  // namespace xv
