// arm64 matmul dispatch: which kernel runs a weight at a level, and the threading around it (the same plan as
// addon.cc / blocks.cc use on x86: activations quantized once per call and shared, rows split over the pool in
// chunks of a multiple of 4, small products on the calling thread).
#include <algorithm>

#include "../pool.h"
#include "arm.h"

namespace xv {
namespace arm {

#if XV_ARM
BlockRowsFn block_rows(Fmt f, Isa isa) {
  BlockRowsFn fn = nullptr;
  if (legacy_supports(f)) {
    if (isa >= Isa::NeonI8mm) fn = legacy_rows_i8mm(f);
    if (!fn && isa >= Isa::NeonDot) fn = legacy_rows_dot(f);
    if (!fn && isa >= Isa::Neon) fn = legacy_rows_neon(f);
  } else if (kquant_supports(f)) {
    if (isa >= Isa::NeonI8mm) fn = kquant_rows_i8mm(f);
    if (!fn && isa >= Isa::NeonDot) fn = kquant_rows_dot(f);
    if (!fn && isa >= Isa::Neon) fn = kquant_rows_neon(f);
  }
  return fn;
}

bool matmul(const WView& w, const float* x, float* y, int64_t T, Isa isa, ThreadPool& pool, std::vector<char>& scratch) {
  if (isa < Isa::Neon) return false;
  const int64_t rows = w.rows, cols = w.cols;
  const int nt = pool.threads();
  int64_t chunk = std::max<int64_t>(4, (rows / (nt * 8)) & ~int64_t(3));
  if (rows * cols * T < 65536) chunk = rows;  // waking the pool costs microseconds
  if (!is_block_fmt(w.fmt)) {
    pool.parallel_for(rows, chunk, [&](int64_t b, int64_t e, int) { matmul_rows_f(w, x, cols, y, rows, T, b, e); });
    return true;
  }
  const BlockRowsFn fn = block_rows(w.fmt, isa);
  if (!fn) return false;
  // The scalar quantizers' bytes (quant.cc): what every level's kernels (and the scalar reference) consume.
  const bool legacy = legacy_supports(w.fmt);
  const int64_t per = legacy ? legacy_act_bytes(cols) : kquant_act_bytes(cols);
  const size_t need = static_cast<size_t>(per * T + 64);
  if (scratch.size() < need) scratch.resize(need);
  char* base = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(scratch.data()) + 63) & ~uintptr_t(63));
  auto quant = [&](int64_t b, int64_t e, int) {
    for (int64_t t = b; t < e; t++) {
      if (legacy) quantize_legacy(x + t * cols, cols, base + t * per);
      else quantize_q8k(x + t * cols, cols, base + t * per);
    }
  };
  if (T * cols < 65536) quant(0, T, 0);
  else pool.parallel_for(T, std::max<int64_t>(1, T / (nt * 4)), quant);
  pool.parallel_for(rows, chunk, [&](int64_t b, int64_t e, int) { fn(w, base, y, rows, T, b, e); });
  return true;
}
#else
BlockRowsFn block_rows(Fmt, Isa) { return nullptr; }
bool matmul(const WView&, const float*, float*, int64_t, Isa, ThreadPool&, std::vector<char>&) { return false; }
#endif

}  // namespace arm
}  // namespace xv
