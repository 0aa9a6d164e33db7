// Block-format dispatch (matmul_blocks), the legacy family's activation quantizer and its scalar kernels.
// The scalar kernels are the plain statement of what the vector ones compute: per block an exact integer dot of
// the weight's integer values with the int8 activations, scaled once by d_w · d_x (plus m · d_x · Σ q for the
// types with a min).
#include "blocks.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "convert.h"
#include "pool.h"

namespace xv {

BlockType block_type(Fmt f) {
  switch (f) {
    case Fmt::Q4_0: return {32, 18};
    case Fmt::Q4_1: return {32, 20};
    case Fmt::Q5_0: return {32, 22};
    case Fmt::Q5_1: return {32, 24};
    case Fmt::Q8_0: return {32, 34};
    case Fmt::Q2_K: return {256, 84};
    case Fmt::Q3_K: return {256, 110};
    case Fmt::Q4_K: return {256, 144};
    case Fmt::Q5_K: return {256, 176};
    case Fmt::Q6_K: return {256, 210};
    default: return {0, 0};
  }
}

namespace {

// One family's three entry points, so the dispatch below is the same for all of them.
struct Family {
  int64_t (*act_bytes)(int64_t cols);
  void (*quantize)(const float* x, int64_t cols, void* qact, BlockIsa isa);
  BlockRowsFn rows;
};

bool family_for(Fmt f, BlockIsa isa, Family& fam) {
  if (legacy_supports(f)) {
    fam = {legacy_act_bytes, legacy_quantize, legacy_rows(f, isa)};
  } else if (kquant_supports(f)) {
    fam = {kquant_act_bytes, kquant_quantize, kquant_rows(f, isa)};
  } else {
    return false;
  }
  return fam.rows != nullptr;
}

int64_t round64(int64_t n) { return (n + 63) / 64 * 64; }

}  // namespace

bool blocks_native(Fmt f, BlockIsa isa) {
  Family fam;
  return family_for(f, isa, fam);
}

namespace {

// A family's matmul: every token quantized once (all threads share the result), then fam.rows over chunks of rows.
void run_family(const Family& fam, const WView& w, const float* x, float* y, int64_t T, BlockIsa isa, ThreadPool& pool,
                std::vector<char>& scratch) {
  if (T == 0 || w.rows == 0) return;
  const int64_t cols = w.cols, rows = w.rows;
  // Quantize every token once; all threads share the result.
  const int64_t per = fam.act_bytes(cols);
  const size_t need = static_cast<size_t>(per * T + 64);
  if (scratch.size() < need) scratch.resize(need);
  char* base = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(scratch.data()) + 63) & ~uintptr_t(63));
  const int nt = pool.threads();
  auto quant = [&](int64_t b, int64_t e, int) {
    for (int64_t t = b; t < e; t++) fam.quantize(x + t * cols, cols, base + t * per, isa);
  };
  if (T * cols < 65536) quant(0, T, 0);
  else pool.parallel_for(T, std::max<int64_t>(1, T / (nt * 4)), quant);
  // Rows in chunks of a multiple of 4 (8 per thread, so a descheduled thread delays little); small products run
  // on the calling thread (waking the pool costs microseconds).
  int64_t chunk = std::max<int64_t>(4, (rows / (nt * 8)) & ~int64_t(3));
  // From 4 tokens the AVX2 legacy kernels (and q4g32 / q8row) take whole groups of 8 rows as lanes (q8_0 / q8row's
  // int16 kernel: 32, 16, 8) and
  // leave the rest of a chunk to a slower plan: chunks of a multiple of 32 rows, or many threads (rows / (threads · 8)
  // under 8) would never reach them
  if (T >= kIlMinT) chunk = std::max<int64_t>(32, chunk & ~int64_t(31));
  if (rows * cols * T < 65536) chunk = rows;
  const BlockRowsFn rows_fn = fam.rows;
  pool.parallel_for(rows, chunk, [&](int64_t b, int64_t e, int) { rows_fn(w, base, y, rows, T, b, e); });
}

}  // namespace

bool matmul_blocks(const WView& w, const float* x, float* y, int64_t T, BlockIsa isa, ThreadPool& pool,
                   std::vector<char>& scratch) {
  Family fam;
  if (!family_for(w.fmt, isa, fam)) return false;
  run_family(fam, w, x, y, T, isa, pool, scratch);
  return true;
}

void matmul_legacy_acts(const WView& w, const float* x, float* y, int64_t T, BlockIsa isa, ThreadPool& pool,
                        std::vector<char>& scratch, BlockRowsFn rows, ActQuantizeFn quantize) {
  run_family(Family{legacy_act_bytes, quantize, rows}, w, x, y, T, isa, pool, scratch);
}

// --- legacy family ---

bool legacy_supports(Fmt f) {
  return f == Fmt::Q4_0 || f == Fmt::Q4_1 || f == Fmt::Q5_0 || f == Fmt::Q5_1 || f == Fmt::Q8_0;
}

// Padded to 16 blocks: the VNNI kernel gathers the weight scales of 16 blocks at a time and reads the
// activations of all 16 (zeros past the end).
static int64_t legacy_nbp(int64_t cols) { return (cols / 32 + 15) / 16 * 16; }

int64_t legacy_act_bytes(int64_t cols) {
  const int64_t nbp = legacy_nbp(cols);
  return nbp * 32 + 2 * round64(4 * nbp) + nbp * 16;
}

LegacyAct legacy_act(void* base, int64_t cols) {
  const int64_t nbp = legacy_nbp(cols);
  char* p = static_cast<char*>(base);
  LegacyAct a;
  a.q = reinterpret_cast<int8_t*>(p);
  p += nbp * 32;
  a.d = reinterpret_cast<float*>(p);
  p += round64(4 * nbp);
  a.sd = reinterpret_cast<float*>(p);
  p += round64(4 * nbp);
  a.dl = reinterpret_cast<float*>(p);
  return a;
}

// Scalar quantizer; the vector one (legacy_quantize_avx2) gives the same bytes (same f32 operations).
static void quantize_scalar(const float* x, int64_t cols, const LegacyAct& a) {
  const int64_t nb = cols / 32, nbp = legacy_nbp(cols);
  for (int64_t b = 0; b < nbp; b++) {
    if (b >= nb) {  // padding block: contributes nothing
      for (int i = 0; i < 32; i++) a.q[legacy_q_index(b, i)] = 0;
      a.d[b] = a.sd[b] = 0.f;
      for (int l = 0; l < 4; l++) a.dl[4 * b + l] = 0.f;
      continue;
    }
    const float* xb = x + 32 * b;
    float amax = 0;
    for (int i = 0; i < 32; i++) amax = std::max(amax, std::fabs(xb[i]));
    const float d = amax / 127.f, id = amax >= 1e-30f ? 127.f / amax : 0.f;  // (below: 127 / amax could overflow)
    int32_t s = 0;
    for (int i = 0; i < 32; i++) {
      const int v = static_cast<int>(std::nearbyint(xb[i] * id));
      a.q[legacy_q_index(b, i)] = static_cast<int8_t>(v);
      s += v;
    }
    for (int l = 0; l < 4; l++) a.dl[4 * b + l] = d;
    a.d[b] = d;
    a.sd[b] = d * static_cast<float>(s);
  }
}

void legacy_quantize(const float* x, int64_t cols, void* qact, BlockIsa isa) {
  const LegacyAct a = legacy_act(qact, cols);
#if XV_X86
  if (isa.isa >= Isa::Avx2) return legacy_quantize_avx2(x, cols, a);
#endif
  quantize_scalar(x, cols, a);
}

void legacy_quantize_even_odd(const float* x, int64_t cols, void* qact, BlockIsa isa) {
  thread_local std::vector<float> perm;
  if (perm.size() < static_cast<size_t>(cols)) perm.resize(cols);
  for (int64_t b = 0; b + 32 <= cols; b += 32)
    for (int i = 0; i < 16; i++) perm[b + i] = x[b + 2 * i], perm[b + 16 + i] = x[b + 2 * i + 1];
  for (int64_t i = cols / 32 * 32; i < cols; i++) perm[i] = x[i];  // a partial block (none for group 32) as it is
  legacy_quantize(perm.data(), cols, qact, isa);
}

namespace {

static inline uint32_t le32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
static inline float h16(const uint8_t* p) { return f16_to_f32(static_cast<uint16_t>(p[0] | (p[1] << 8))); }

// One block's 32 integer weight values in column order (before d, and without the min), as int.
template <Fmt F>
inline void block_ints(const uint8_t* p, int* v) {
  if (F == Fmt::Q8_0) {
    for (int j = 0; j < 32; j++) v[j] = static_cast<int8_t>(p[2 + j]);
    return;
  }
  const int qs = F == Fmt::Q4_0 ? 2 : F == Fmt::Q4_1 ? 4 : F == Fmt::Q5_0 ? 6 : 8;
  const bool five = F == Fmt::Q5_0 || F == Fmt::Q5_1;
  const uint32_t qh = five ? le32(p + qs - 4) : 0;
  const int off = F == Fmt::Q4_0 ? 8 : F == Fmt::Q5_0 ? 16 : 0;  // q4_1 / q5_1: unsigned, the min is separate
  for (int j = 0; j < 16; j++) {
    const int lo = p[qs + j] & 15, hi = p[qs + j] >> 4;
    v[j] = (lo | (five ? static_cast<int>((qh >> j) & 1) << 4 : 0)) - off;
    v[j + 16] = (hi | (five ? static_cast<int>((qh >> (j + 16)) & 1) << 4 : 0)) - off;
  }
}

template <Fmt F>
void rows_scalar(const WView& w, const void* qact, float* y, int64_t ldy, int64_t T, int64_t r0, int64_t r1) {
  constexpr bool kMin = F == Fmt::Q4_1 || F == Fmt::Q5_1;
  const int64_t nb = w.cols / 32, bytes = block_type(F).bytes, per = legacy_act_bytes(w.cols);
  const uint8_t* base = static_cast<const uint8_t*>(w.data);
  for (int64_t r = r0; r < r1; r++) {
    const uint8_t* row = base + r * nb * bytes;
    for (int64_t t = 0; t < T; t++) {
      const LegacyAct a = legacy_act(const_cast<char*>(static_cast<const char*>(qact)) + t * per, w.cols);
      float acc = 0.f;
      for (int64_t b = 0; b < nb; b++) {
        const uint8_t* p = row + b * bytes;
        int v[32];
        block_ints<F>(p, v);
        int32_t is = 0;
        for (int j = 0; j < 32; j++) is += v[j] * a.q[legacy_q_index(b, j)];
        acc += static_cast<float>(is) * (h16(p) * a.d[b]);
        if (kMin) acc += h16(p + 2) * a.sd[b];
      }
      y[t * ldy + r] = acc;
    }
  }
}

}  // namespace

BlockRowsFn legacy_rows(Fmt f, BlockIsa isa) {
#if XV_X86
  BlockRowsFn fn = nullptr;
  if (isa.isa == Isa::Avx512 && isa.vnni) fn = legacy_rows_vnni(f);
  if (!fn && isa.isa >= Isa::Avx2) fn = legacy_rows_avx2(f);
  if (fn) return fn;
#endif
  switch (f) {
    case Fmt::Q4_0: return rows_scalar<Fmt::Q4_0>;
    case Fmt::Q4_1: return rows_scalar<Fmt::Q4_1>;
    case Fmt::Q5_0: return rows_scalar<Fmt::Q5_0>;
    case Fmt::Q5_1: return rows_scalar<Fmt::Q5_1>;
    case Fmt::Q8_0: return rows_scalar<Fmt::Q8_0>;
    default: return nullptr;
  }
}

}  // namespace xv
