// arm64 matmul dispatch: which kernel runs a weight at a level, and the threading around it (the same plan as
// addon.cc / blocks.cc use on x86: activations quantized once per call and shared, rows split over the pool in
// chunks of a multiple of 4, small products on the calling thread).
#include <algorithm>

#include "../pool.h"
#include "arm.h"

namespace xv {
namespace arm {

// The formats and groups the int8-activation kernels take (intq.inc): x86's vnni_supports set, less the groups
// below one 32-column block (8, 16), which keep the exact f32 path here.
bool intq_supports(const WView& w) {
  if (w.fmt == Fmt::Q8 || w.fmt == Fmt::Q4) return true;
  return w.fmt == Fmt::Q4G && (w.group == 32 || w.group == 64 || (w.group > 0 && w.group % 128 == 0));
}

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

// exact: f32 activations (GPTQ / AWQ weights, addon.cc), so the int8-activation kernels are skipped.
bool matmul(const WView& w, const float* x, float* y, int64_t T, Isa isa, ThreadPool& pool, std::vector<char>& scratch,
            bool exact) {
  if (isa < Isa::Neon) return false;
  const int64_t rows = w.rows, cols = w.cols;
  const int nt = pool.threads();
  int64_t chunk = std::max<int64_t>(4, (rows / (nt * 8)) & ~int64_t(3));
  if (rows * cols * T < 65536) chunk = rows;  // waking the pool costs microseconds
  if (!is_block_fmt(w.fmt)) {
    if (isa >= Isa::NeonDot && w.fmt == Fmt::F16 && has_fhm()) {  // FMLAL on f16-rounded x (matmul_fhm.cc)
      f16_fhm_matmul(w, x, y, T, pool, scratch);
      return true;
    }
    if (!exact && isa >= Isa::NeonDot && intq_supports(w)) return intq_matmul(w, x, y, T, isa, pool, scratch);
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
bool intq_matmul(const WView& w, const float* x, float* y, int64_t T, Isa isa, ThreadPool& pool,
                 std::vector<char>& scratch) {
  const IntRowsFn fn = isa >= Isa::NeonI8mm ? intq_rows_i8mm() : intq_rows_dot();
  const int64_t rows = w.rows, cols = w.cols, nc = (cols + 127) / 128;
  const bool deint = w.fmt != Fmt::Q8, pairs = isa >= Isa::NeonI8mm && T > 1;
  IntAct a;
  a.nc = nc, a.ld = nc * 128 + nc * 16, a.ldp = nc * 256 + nc * 64;
  const int64_t np = pairs ? (T + 1) / 2 : 0;
  const size_t need = static_cast<size_t>(a.ld * T + a.ldp * np + 64);
  if (scratch.size() < need) scratch.resize(need);
  char* base = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(scratch.data()) + 63) & ~uintptr_t(63));
  a.base = base;
  a.pairs = pairs ? base + a.ld * T : nullptr;
  const int nt = pool.threads();
  auto quant = [&](int64_t b, int64_t e, int) {
    for (int64_t t = b; t < e; t++) {
      char* p = base + t * a.ld;
      quantize_intq(x + t * cols, cols, nc, deint, reinterpret_cast<int8_t*>(p), reinterpret_cast<float*>(p + nc * 128));
    }
  };
  auto pair = [&](int64_t b, int64_t e, int) {
    for (int64_t p = b; p < e; p++) {
      char* o = base + a.ld * T + p * a.ldp;
      const bool two = 2 * p + 1 < T;
      quantize_intq_pair(a.q(2 * p), a.d(2 * p), two ? a.q(2 * p + 1) : nullptr, two ? a.d(2 * p + 1) : nullptr, nc,
                         reinterpret_cast<int8_t*>(o), reinterpret_cast<float*>(o + nc * 256));
    }
  };
  if (T * cols < 65536) {
    quant(0, T, 0);
    if (pairs) pair(0, np, 0);
  } else {
    pool.parallel_for(T, std::max<int64_t>(1, T / (nt * 4)), quant);
    if (pairs) pool.parallel_for(np, std::max<int64_t>(1, np / (nt * 4)), pair);
  }
  int64_t chunk = std::max<int64_t>(4, (rows / (nt * 8)) & ~int64_t(3));  // a multiple of 4: smmla's row pairs
  if (rows * cols * T < 65536) chunk = rows;
  pool.parallel_for(rows, chunk, [&](int64_t b, int64_t e, int) { fn(w, a, y, rows, T, b, e); });
  return true;
}
void f16_fhm_matmul(const WView& w, const float* x, float* y, int64_t T, ThreadPool& pool, std::vector<char>& scratch) {
  const int64_t rows = w.rows, cols = w.cols;
  // Per token cols f16 values, then (4-byte aligned) the T scales; 64 for aligning the start.
  const size_t need = static_cast<size_t>(2 * cols * T + 4 + 4 * T + 64);
  if (scratch.size() < need) scratch.resize(need);
  char* base = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(scratch.data()) + 63) & ~uintptr_t(63));
  uint16_t* xh = reinterpret_cast<uint16_t*>(base);
  float* xs = reinterpret_cast<float*>(base + ((2 * cols * T + 3) & ~int64_t(3)));
  const int nt = pool.threads();
  auto round = [&](int64_t b, int64_t e, int) {
    for (int64_t t = b; t < e; t++) round_f16_acts(x + t * cols, cols, xh + t * cols, xs + t);
  };
  if (T * cols < 65536) round(0, T, 0);
  else pool.parallel_for(T, std::max<int64_t>(1, T / (nt * 4)), round);
  int64_t chunk = std::max<int64_t>(4, (rows / (nt * 8)) & ~int64_t(3));
  if (rows * cols * T < 65536) chunk = rows;
  pool.parallel_for(rows, chunk, [&](int64_t b, int64_t e, int) { matmul_rows_f16_fhm(w, xh, cols, xs, y, rows, T, b, e); });
}
#else
void f16_fhm_matmul(const WView&, const float*, float*, int64_t, ThreadPool&, std::vector<char>&) {}
bool intq_matmul(const WView&, const float*, float*, int64_t, Isa, ThreadPool&, std::vector<char>&) { return false; }
BlockRowsFn block_rows(Fmt, Isa) { return nullptr; }
bool matmul(const WView&, const float*, float*, int64_t, Isa, ThreadPool&, std::vector<char>&, bool) { return false; }
#endif

}  // namespace arm
}  // namespace xv
