// GGUF block formats (Fmt codes 6 … 15) run as stored: a row of a weight [rows, cols] is cols / values ggml blocks,
// little-endian structs exactly as in the file (src/backend/ts/blocks.ts is the spec). Each kernel family owns
// its activation format: it quantizes x once per call (all tokens), then threads run its row-range kernel over
// disjoint row ranges. The dispatch (matmul_blocks, blocks.cc) knows nothing about a family's insides.
#pragma once
#include <cstdint>
#include <vector>

#include "kernels.h"

namespace xv {

class ThreadPool;

// Values and bytes per block (src/gguf/types.ts): 32 for the legacy types, 256 for the K-quants.
struct BlockType {
  int64_t values = 0, bytes = 0;
};
// {0, 0} for a format that is not a block format.
BlockType block_type(Fmt f);
inline bool is_block_fmt(Fmt f) { return static_cast<int>(f) >= 6 && static_cast<int>(f) <= 15; }

// Which instruction set a family may use (the caller has checked the CPU has it).
struct BlockIsa {
  Isa isa = Isa::Scalar;
  bool vnni = false;  // AVX-512 VNNI (only with isa == Avx512)
};

// A family's row-range kernel: y[t * ldy + r] = x_t · dequant(W[r, :]) for r in [r0, r1), t < T. Token t's
// quantized activations start at (const char*)qact + t * <family>_act_bytes(w.cols) (64-byte aligned).
// w.data is the first row's first block; rows are w.cols / values blocks each.
using BlockRowsFn = void (*)(const WView& w, const void* qact, float* y, int64_t ldy, int64_t T, int64_t r0,
                             int64_t r1);

// Whether some family runs this block format natively here (else the TS backend's twin must run it).
bool blocks_native(Fmt f, BlockIsa isa);
// y (T, rows) = x (T, cols) · dequant(W)ᵀ. The caller has checked data holds rows × row bytes and cols % values
// == 0. Returns false (touching nothing) when no family handles w.fmt. `scratch` grows to hold the activations.
bool matmul_blocks(const WView& w, const float* x, float* y, int64_t T, BlockIsa isa, ThreadPool& pool,
                   std::vector<char>& scratch);

// --- Legacy types q4_0, q4_1, q5_0, q5_1, q8_0 (blocks.cc, blocks_avx2.cc, blocks_vnni.cc) ---
// Activations Q8_0-style per block of 32: d = amax / 127, q = round-to-nearest-even(x · (127 / amax)) (both in
// f32; a block with amax < 1e-30, where 127 / amax could overflow, quantizes to zeros). Per token, 64-byte aligned arrays over nbp = (cols / 32 rounded up to 16) blocks, zero padded:
//   q  int8[nbp · 32]  per 4 blocks b0 … b3 (128 bytes): [b0 0-15 | b1 0-15 | b2 0-15 | b3 0-15] then the same
//                      for values 16-31 — the order of a block's low nibbles (values 0-15) and high nibbles
//                      (16-31), so 128-bit lane k of a register holds block k's qs unpacked with no lane shuffle
//   d  f32[nbp]        block scales
//   sd f32[nbp]        d · Σ q of the block: the weights' unsigned shift (q4_0: 8, q5_0: 16, q8_0: 128) or min
//                      (q4_1 / q5_1: m) times it is the block's second term, taken in f32
//   dl f32[nbp · 4]    d per dword lane of that order (block b's d at 4b … 4b+3)
struct LegacyAct {
  int8_t* q;
  float *d, *sd, *dl;
};
LegacyAct legacy_act(void* base, int64_t cols);
// Where value i (0 … 31) of block b sits in LegacyAct::q.
inline int64_t legacy_q_index(int64_t b, int i) { return (b >> 2) * 128 + (i >> 4) * 64 + (b & 3) * 16 + (i & 15); }
bool legacy_supports(Fmt f);
int64_t legacy_act_bytes(int64_t cols);
void legacy_quantize(const float* x, int64_t cols, void* qact, BlockIsa isa);
BlockRowsFn legacy_rows(Fmt f, BlockIsa isa);
// The ISA variants (x86 only; legacy_rows picks one).
BlockRowsFn legacy_rows_avx2(Fmt f);
BlockRowsFn legacy_rows_vnni(Fmt f);
void legacy_quantize_avx2(const float* x, int64_t cols, const LegacyAct& a);
// From kIlMinT tokens the AVX2 legacy kernels take whole groups of 8 rows with rows as lanes (blocks_avx2.cc), and so
// do our own int formats below (Zen 3, 512×4096: q8_0 +3 % at T = 4, +33 % at 12; q4_0 +14 %, +48 %; 4096², int8 rows
// vs the exact f32 kernel: 38 → 50 GOP/s at 4, 44 → 74 at 8); at 2-3 tokens the transpose costs more than it saves.
constexpr int64_t kIlMinT = 4;
// Our own int formats on the legacy kernels (`--quantize 4 / 8` on AVX2 without VNNI; addon.cc picks them), as
// BlockRowsFn over legacy activations:
// - q4g32_rows_avx2: int4 group-32 weights (Fmt::Q4G, group 32), prompts: the q4_0 rows-as-lanes kernel over a
//   per-thread transposed copy of 8 rows at a time;
// - q8row_rows_avx2: int8 row weights (Fmt::Q8): decode through q8_0's decode plan, prompts through its int16
//   rows-as-lanes kernel (each row's f32 scale as every block's dw).
// - int4_dec_avx2: int4 decode (T = 1; q4_row, q4_group of 32, 64 or k · 128 columns: int4_dec_avx2_supports):
//   q4_0's decode plan over activations from legacy_quantize_even_odd, so that 16 code bytes (32 values) load as
//   they are stored.
void q4g32_rows_avx2(const WView& w, const void* qact, float* y, int64_t ldy, int64_t T, int64_t r0, int64_t r1);
bool int4_dec_avx2_supports(const WView& w);
void int4_dec_avx2(const WView& w, const void* qact, float* y, int64_t ldy, int64_t T, int64_t r0, int64_t r1);
void q8row_rows_avx2(const WView& w, const void* qact, float* y, int64_t ldy, int64_t T, int64_t r0, int64_t r1);
// Legacy activations with each 32-value block's values taken in the order 0, 2, …, 30, 1, 3, …, 31: LegacyAct::q's
// low half of a block then holds the values q4g32's low nibbles meet (byte j: values 2j, 2j + 1), its high half the
// high nibbles'. d, sd and the rounding are those of legacy_quantize (a block's amax and Σ q do not depend on order).
void legacy_quantize_even_odd(const float* x, int64_t cols, void* qact, BlockIsa isa);
// y (T, rows) = x · Wᵀ by `rows` over every token's legacy activations (legacy_quantize, or `quantize`), quantized
// once, in chunks of rows as matmul_blocks runs a family.
using ActQuantizeFn = void (*)(const float* x, int64_t cols, void* qact, BlockIsa isa);
void matmul_legacy_acts(const WView& w, const float* x, float* y, int64_t T, BlockIsa isa, ThreadPool& pool,
                        std::vector<char>& scratch, BlockRowsFn rows, ActQuantizeFn quantize = legacy_quantize);

// --- K-quants (kquants.cc) ---
// q2_k … q6_k (kquants.cc; activations Q8_K-style per 256). Same contract as the legacy family: act_bytes per
// token (a multiple of 64), quantize one token.
bool kquant_supports(Fmt f);
int64_t kquant_act_bytes(int64_t cols);
void kquant_quantize(const float* x, int64_t cols, void* qact, BlockIsa isa);
BlockRowsFn kquant_rows(Fmt f, BlockIsa isa);
// --- end K-quants ---

}  // namespace xv
