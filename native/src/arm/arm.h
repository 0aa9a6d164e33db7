// arm64 kernels (NEON, dotprod, i8mm). Compiled on every target; on a non-arm64 build every file here is empty
// except the declarations, so nothing calls them there.
//
// Levels (Isa::Neon < NeonDot < NeonI8mm), chosen at run time from what the CPU reports (detect.cc):
//  - Neon: base Advanced SIMD, which every arm64 CPU has. f32 FMAs for the float formats; int8 products via
//    smull + sadalp for the integer (GGUF block) paths.
//  - NeonDot: the same, with sdot (4 int8 products summed into an int32 lane) — Cortex-A76 / Neoverse-N1 / Apple M1
//    and later.
//  - NeonI8mm: smmla (a 2×8 by 8×2 int8 block product) for two weight rows × two tokens — Neoverse-V1/N2,
//    Graviton 3/4, Apple M2 and later; legacy blocks and K-quants. Decode (T = 1) keeps sdot: smmla's second
//    token would be padding.
//  - FEAT_FHM (FMLAL / FMLAL2), where the CPU has it, at NeonDot and NeonI8mm (never at the forced base Neon):
//    f16 weights × activations rounded to f16 once per call, f32 accumulation (matmul_fhm.cc). Not a level of its
//    own: has_fhm() says whether the CPU reports it (Neoverse-V1 / N2, Apple M1 do; Neoverse-N1 does not).
// Files that use dotprod / i8mm instructions say so with a target pragma at their top (the only code built for
// that feature), so a base-NEON CPU never runs them: dispatch picks them only when the CPU has the feature.
//
// Integer paths quantize activations exactly as the scalar kernels do (blocks.h: int8 per 32 columns, d = amax /
// 127, round half to even; K-quants per 256), so every level computes the same integer dot products as the
// scalar reference and only the f32 summation order differs.
#pragma once
#include <cstdint>
#include <vector>

#include "../blocks.h"
#include "../kernels.h"
#include "../kv_wide.h"

namespace xv {

class ThreadPool;

namespace arm {

// The CPU's arm64 features (getauxval on Linux, sysctl on macOS); all false elsewhere.
void detect(CpuCaps& c);
// FEAT_FHM (Linux HWCAP_ASIMDFHM, macOS hw.optional.arm.FEAT_FHM), read once; false off arm64.
bool has_fhm();

// The addon's matmul for an arm64 level: float formats (f32, f16, bf16, q8_row, q4_row, q4_group, q8_group, exact
// f32 accumulation) and the GGUF block formats (integer dot products at the level's best instruction). y (T,
// rows) = x (T, cols) · Wᵀ. The caller has checked the shapes (addon.cc), gathered x for a desc_act weight and
// adds the zero-point term afterwards. Returns false (touching nothing) for a format it does not run.
bool matmul(const WView& w, const float* x, float* y, int64_t T, Isa isa, ThreadPool& pool, std::vector<char>& scratch,
            bool exact = false);

// --- the pieces, for matmul and the parity test (native/test/parity.cc) ---

// Float formats, rows [r0, r1), all T tokens (matmul_f.cc).
void matmul_rows_f(const WView& w, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t T, int64_t r0,
                   int64_t r1);

// --- f16 weights on f16 activations with FEAT_FHM (matmul_fhm.cc), levels NeonDot / NeonI8mm when has_fhm() ---
// One token x (cols) as f16 bits h, scaled by a power of two so that max|x| lands in [2^14, 2^15) (no overflow,
// no subnormals but the tiny values), rounded to nearest even (fcvtn); *scale = the inverse power of two, so x ≈
// f16(h) · *scale exactly up to the f16 rounding (quant.cc).
void round_f16_acts(const float* x, int64_t cols, uint16_t* h, float* scale);
// Rows [r0, r1), all T tokens: y[t · ldy + r] = xs[t] · Σ W[r, c] · xh[t · ldx + c], products exact, f32 sums.
void matmul_rows_f16_fhm(const WView& w, const uint16_t* xh, int64_t ldx, const float* xs, float* y, int64_t ldy,
                         int64_t T, int64_t r0, int64_t r1);
// The whole call: round every token into scratch, then rows over the pool (dispatch.cc).
void f16_fhm_matmul(const WView& w, const float* x, float* y, int64_t T, ThreadPool& pool, std::vector<char>& scratch);

// Activation quantizers for the block kernels (quant.cc): the scalar quantizers' bytes (blocks.h's LegacyAct for
// the legacy types, kquants.h's Q8K blocks for the K-quants), vectorized.
void quantize_legacy(const float* x, int64_t cols, void* qact);
void quantize_q8k(const float* x, int64_t cols, void* qact);

// --- int8-activation paths for our own integer formats (intq.inc), levels NeonDot and NeonI8mm ---
// q8_row, q4_row and q4_group (group 32, 64 or a multiple of 128) take int8 activations there, quantized as the x86
// VNNI / AVX2 kernels do (per 32 columns, d = amax / 127, round half to even; a partial last block over its own
// columns), with exact int32 sdot / smmla sums per 32-column block and one f32 FMA per block. Other groups (and
// q8_group, which x86 also keeps in f32) stay on matmul_rows_f.
bool intq_supports(const WView& w);
// The quantized activations: per token, nc 128-column chunks of int8 (zero padded past cols) followed by nc · 4
// f32 block scales d. q4 blocks are stored [16 even | 16 odd columns] (the low / high nibbles of 16 weight bytes),
// q8 blocks in column order. For smmla prefill, pairs of tokens also in `pairs`: per pair and block 64 bytes,
// vector j = [token 0's bytes 8j … 8j+7 | token 1's], then per block f32 {d0, d1, d0, d1}.
struct IntAct {
  int64_t nc = 0;                  // 128-column chunks per row
  int64_t ld = 0;                  // bytes per token: nc · 128 int8, then nc · 4 floats
  const char* base = nullptr;      // token t at base + t · ld
  int64_t ldp = 0;                 // bytes per token pair: nc · 4 · 64 int8, then nc · 4 float4
  const char* pairs = nullptr;     // pair p at pairs + p · ldp (the last one padded with a zero token); or nullptr
  const int8_t* q(int64_t t) const { return reinterpret_cast<const int8_t*>(base + t * ld); }
  const float* d(int64_t t) const { return reinterpret_cast<const float*>(base + t * ld + nc * 128); }
  const int8_t* pq(int64_t p) const { return reinterpret_cast<const int8_t*>(pairs + p * ldp); }
  const float* pd(int64_t p) const { return reinterpret_cast<const float*>(pairs + p * ldp + nc * 256); }
};
using IntRowsFn = void (*)(const WView& w, const IntAct& a, float* y, int64_t ldy, int64_t T, int64_t r0, int64_t r1);
IntRowsFn intq_rows_dot();   // sdot, any T
IntRowsFn intq_rows_i8mm();  // smmla for T > 1 (needs a.pairs), sdot for T = 1
// One token into the IntAct layout (quant.cc; `deint`: the q4 order). The same int8 values and scales as the
// scalar rule, whatever the order.
void quantize_intq(const float* x, int64_t cols, int64_t nc, bool deint, int8_t* q, float* d);
// Tokens t0, t1 (already quantized) into pair layout; t1 = nullptr pads with a zero token.
void quantize_intq_pair(const int8_t* q0, const float* d0, const int8_t* q1, const float* d1, int64_t nc, int8_t* pq,
                        float* pd);
// The whole call: quantize (and pair) every token of x into scratch, then rows over the pool. True when it ran.
bool intq_matmul(const WView& w, const float* x, float* y, int64_t T, Isa isa, ThreadPool& pool,
                 std::vector<char>& scratch);

// Legacy GGUF blocks (q4_0 … q8_0) on the LegacyAct activations of blocks.h (legacy_quantize with the scalar
// quantizer gives them). One row-range kernel per level; nullptr for a format the level does not run.
BlockRowsFn legacy_rows_neon(Fmt f);
BlockRowsFn legacy_rows_dot(Fmt f);
BlockRowsFn legacy_rows_i8mm(Fmt f);
// K-quants (q2_k … q6_k) on the Q8K activations of kquants.h.
BlockRowsFn kquant_rows_neon(Fmt f);
BlockRowsFn kquant_rows_dot(Fmt f);
BlockRowsFn kquant_rows_i8mm(Fmt f);
// The best kernel for a level (falls back to lower levels), or nullptr.
BlockRowsFn block_rows(Fmt f, Isa isa);

// Small ops (ops.cc): the same contracts as kernels.h's.
void rmsnorm(float* y, const float* x, const float* w, int64_t T, int64_t dim, float eps);
void rope(float* x, int64_t T, int64_t nHeads, int64_t headDim, const float* cos, const float* sin);
void silu_mul(float* gate, const float* up, int64_t begin, int64_t end);
void add_in_place(float* y, const float* x, int64_t n);

// Paged-attention pieces for kv.cc's kernel table (kv_neon.cc); contracts as kv.cc's scalar ones.
void kv_store_f16(uint16_t* d, const float* s, int64_t n);
void kv_quant_q8(int8_t* d, uint16_t* sc, const float* s, int64_t n, int64_t group);
void kv_cvt_f16(float* d, const uint16_t* s, int64_t n);
void kv_cvt_q8(float* d, const int8_t* s, const uint16_t* sc, int64_t n, int64_t group);
void kv_narrow(const float* q, const float* Kp, const float* Vp, int64_t hdp, int64_t n, float* sc, float* m,
               float* l, float* o);
// The wide (prefill) tile of 4 · RV query rows in lanes, RV = 1, 2.
void kv_wide1(const Wide& w, const float* Kp, const float* Vp, int64_t n, int64_t c0, bool mask);
void kv_wide2(const Wide& w, const float* Kp, const float* Vp, int64_t n, int64_t c0, bool mask);

}  // namespace arm
}  // namespace xv
