// Non-x86 builds: the vector entry points exist but are never chosen (detect_cpu reports no AVX), so the
// addon links and runs with the scalar kernels.
#include "kernels.h"

#if !XV_X86
namespace xv {

bool avx2_supports(const WView&) { return false; }
bool avx512_supports(const WView&) { return false; }
bool vnni_supports(const WView&) { return false; }
void matmul_rows_avx2(const WView& w, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t T, int64_t r0,
                      int64_t r1) {
  matmul_rows_scalar(w, x, ldx, y, ldy, T, r0, r1);
}
void matmul_rows_avx512(const WView& w, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t T, int64_t r0,
                        int64_t r1) {
  matmul_rows_scalar(w, x, ldx, y, ldy, T, r0, r1);
}
int64_t quantx_bytes(int64_t) { return 0; }
QuantX quantize_x(const float*, int64_t, void*, bool) { return QuantX{}; }
void matmul_vnni_rows(const WView&, const QuantX*, float*, int64_t, int64_t, int64_t, int64_t) {}
void matmul_vnni_q8_rows(const WView&, const QuantX*, float*, int64_t, int64_t, int64_t, int64_t) {}
void matmul_q4_avx2_rows(const WView&, const QuantX*, float*, int64_t, int64_t, int64_t, int64_t) {}

}  // namespace xv
#endif
