// Kernel entry points shared by the ISA variants. Everything here works on raw pointers; the binding (addon.cc)
// has already checked every length, so kernels never bounds-check.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

// The vector kernels are x86 only; elsewhere (e.g. arm64) the addon still builds, with the scalar kernels.
// -DXV_NO_X86 builds that variant on x86 too, so it can be tested.
#if (defined(__x86_64__) || defined(__i386__) || defined(_M_X64)) && !defined(XV_NO_X86)
#define XV_X86 1
#else
#define XV_X86 0
#endif
// The NEON kernels (src/arm/) are arm64 only; -DXV_NO_ARM builds the scalar-only variant there.
#if (defined(__aarch64__) || defined(_M_ARM64)) && !defined(XV_NO_ARM)
#define XV_ARM 1
#else
#define XV_ARM 0
#endif

namespace xv {

// 6 … 15: GGUF block formats stored as in the file (blocks.h), the codes of FORMAT_CODE in src/backend/native.
enum class Fmt : int {
  F32 = 0, BF16 = 1, F16 = 2, Q8 = 3, Q4 = 4, Q4G = 5,
  Q4_0 = 6, Q4_1 = 7, Q5_0 = 8, Q5_1 = 9, Q8_0 = 10, Q2_K = 11, Q3_K = 12, Q4_K = 13, Q5_K = 14, Q6_K = 15,
  Q8G = 16  // int8 per group (8-bit GPTQ), group_zp.cc
};
// Neon* (arm64 only, src/arm/arm.h): base Advanced SIMD, + ARMv8.2 dotprod (sdot), + i8mm (smmla). They come after
// the x86 values, which only x86 builds ever select, so the x86 `isa >= Isa::Avx2` tests never see them.
enum class Isa : int { Scalar = 0, Avx2 = 1, Avx512 = 2, Neon = 3, NeonDot = 4, NeonI8mm = 5 };

// A weight [rows, cols] in one of the Backend formats (src/backend/backend.ts). `data` points at the first row.
// q4: byte j of a row holds column 2j in the low nibble and 2j+1 in the high nibble, two's complement.
struct WView {
  Fmt fmt;
  int64_t rows, cols;
  const void* data;
  const float* scales;  // q8/q4: one per row; q4g: rows * cols / group
  int64_t group;        // q4g only
};

// How far ahead (bytes) the AVX2 block / int4 decode kernels prefetch the weight row they stream. Zen 3 VM, 2
// threads, interleaved A/B, every call from DRAM: 2048 → 4096 gives q4_0 / q8_0 +1-4 %, q4_k / q6_k +2-8 % on
// 24576×4096 matrices, 0-2 % on 16 rotating 5504×2048 ones; 8192 no better than 4096; none at all −20 %. (The f16 row
// kernel, matmul_avx2.cc, has none: a line 4 KB ahead per 32 weights made it 5-7 % slower at 5504×2048.)
constexpr int64_t kAvx2Prefetch = 4096;

// `bytes` of buf, grown as needed, from a 64-byte boundary: the per-thread transposed scratches of the "rows as
// lanes" kernels (blocks_avx2.cc, kquants_lanes_avx2.cc).
inline uint8_t* scratch64(std::vector<uint8_t>& buf, int64_t bytes) {
  if (buf.size() < static_cast<size_t>(bytes + 64)) buf.resize(bytes + 64);
  return reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(buf.data()) + 63) & ~uintptr_t(63));
}

// What the CPU can run, detected once (cpu.cc).
struct CpuCaps {
  bool avx2_fma_f16c = false;
  bool avx512 = false;       // f, bw, vl, dq
  bool avx512_vnni = false;
  bool avx512_vbmi = false;  // vpermt2b, for the int8 VNNI prefill
  bool amx = false;          // AMX-INT8 with VNNI, and Linux granted tile data (matmul_amx.cc)
  bool neon = false;         // arm64 Advanced SIMD (always there on arm64)
  bool neon_dot = false;     // ARMv8.2 dotprod: sdot / udot
  bool neon_i8mm = false;    // ARMv8.6 i8mm: smmla
  bool neon_fp16 = false;    // FP16 arithmetic (reported only; the kernels keep f32 accumulation)
};
CpuCaps detect_cpu();

// y[t * ldy + r] = x[t * ldx, :] · W[r, :] for rows [r0, r1) and all T tokens, in f32 (weights are converted on
// the fly, int weights exactly: q * scale).
void matmul_rows_scalar(const WView& w, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t T, int64_t r0,
                        int64_t r1);
void matmul_rows_avx2(const WView& w, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t T, int64_t r0,
                      int64_t r1);
void matmul_rows_avx512(const WView& w, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t T, int64_t r0,
                        int64_t r1);
// Whether the avx2 / avx512 float kernels handle this weight (else the caller uses scalar): q4g needs a group
// size that is a multiple of the vector width.
bool avx2_supports(const WView& w);
bool avx512_supports(const WView& w);

// Int8 activations for the VNNI int4 path: x quantized in blocks of 32 (one f32 scale per block, like
// llama.cpp's Q8_0), laid out so a dpbusd lane lines up with the weight nibbles it multiplies.
struct QuantX {
  int64_t cols = 0, padded = 0;
  int8_t* q = nullptr;     // per 128-col chunk: its 64 even columns, then its 64 odd columns
  float* dx = nullptr;     // per dpbusd lane (8 columns): the scale of the block the lane belongs to
  int32_t* xs = nullptr;   // per lane: 8 · Σ q over the lane, removed from the unsigned-weight product
};
// Bytes of scratch quantize_x needs for `cols`.
int64_t quantx_bytes(int64_t cols);
// `avx512`: use the AVX-512 code for full chunks (same results as the scalar code, which runs otherwise).
QuantX quantize_x(const float* x, int64_t cols, void* scratch, bool avx512);
// Whether matmul_vnni_rows / matmul_q4_avx2_rows handle this weight (q4, q4g with a group size that is a
// multiple of 8 and divides 128 or is a multiple of 128).
bool vnni_supports(const WView& w);
// y[t * ldy + r] for rows [r0, r1) and T tokens, token t quantized in qx[t].
void matmul_vnni_rows(const WView& w, const QuantX* qx, float* y, int64_t ldy, int64_t T, int64_t r0, int64_t r1);
// int8 rows (q8_row) for T > 1 on the same quantized x (needs AVX-512 VNNI + VBMI); decode keeps the exact f32
// path.
void matmul_vnni_q8_rows(const WView& w, const QuantX* qx, float* y, int64_t ldy, int64_t T, int64_t r0, int64_t r1);
// q4_group with group 32 and cols % 128 == 0 on VNNI, T > 1: activations in the group-32 layout of
// quantize_x_g32 (same int8 values as quantize_x, other order), whole-group integer sums per lane.
bool vnni_g32_supports(const WView& w);
QuantX quantize_x_g32(const float* x, int64_t cols, void* scratch);
void matmul_vnni_g32_rows(const WView& w, const QuantX* qx, float* y, int64_t ldy, int64_t T, int64_t r0,
                          int64_t r1);
// AMX-INT8 prefill (matmul_amx.cc) for q4_group g32 and the GGUF blocks q4_0, q4_1, q5_0, q5_1, q8_0, q4_k, q5_k,
// q6_k: activations quantized as the VNNI kernels do (int8 per 32 columns), in AMX's B-tile layout per 16-token
// tile; weight rows unpacked 16 at a time.
struct AmxX {
  int8_t* q = nullptr;  // [tiles][groups][gs / 4 rows][16 tokens × 4 bytes]
  float* d = nullptr;   // [tiles][groups][16 tokens]: the scale of the 32 columns around the group
  float* s = nullptr;   // [tiles][groups][16 tokens]: d · Σ q over the group (for formats with a min)
  int64_t tiles = 0;
};
// Whether the CPU and OS allow AMX-INT8 (asks Linux for tile-data permission once).
bool amx_available();
// The weight group size (16 or 32) the AMX kernel would use for w, or 0 when it does not take w (format, or
// rows not a multiple of 16).
int amx_group(const WView& w);
int64_t amx_x_bytes(int64_t cols, int64_t T);
// Quantizes tokens [t0, t1) of x (T, cols) into scratch (amx_x_bytes) for group size gs; t0 == t1 only returns
// the layout. Callers split [0, 16 · tiles) over threads.
AmxX quantize_amx(const float* x, int64_t cols, int64_t T, int gs, void* scratch, int64_t t0, int64_t t1);
// y[t * ldy + r] for weight rows [16 b0, 16 b1) and all T tokens.
void matmul_amx_blocks(const WView& w, const AmxX& ax, float* y, int64_t ldy, int64_t T, int64_t b0, int64_t b1);
// The same on AVX2 (vpmaddubsw + vpmaddwd), for CPUs without AVX-512 VNNI (matmul_q4_avx2.cc).
void matmul_q4_avx2_rows(const WView& w, const QuantX* qx, float* y, int64_t ldy, int64_t T, int64_t r0,
                         int64_t r1);

// --- GPTQ / AWQ extras (group_zp.cc): desc_act column order, zero points, q8_group ---
// out (T, cols)[t, j] = x[t, perm[j]]: x in a desc_act weight's stored column order.
void gather_cols(const float* x, int64_t T, int64_t cols, const int32_t* perm, float* out);
// out (T, cols / group) = Σ of each group of x's columns.
void group_sums(const float* x, int64_t T, int64_t cols, int64_t group, float* out);
// y[t * ldy + r] += Σ_g mins[r · ng + g] · xsums[t · ng + g] for rows [r0, r1): the zero-point term.
void add_group_mins(const float* mins, int64_t ng, const float* xsums, float* y, int64_t ldy, int64_t T, int64_t r0,
                    int64_t r1);
// q8_group rows [r0, r1) for T tokens (w = q · scale[group], f32 accumulation); the kernel for an ISA and group.
using Q8gKernel = void (*)(const WView& w, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t T, int64_t r0,
                           int64_t r1);
Q8gKernel q8g_kernel(Isa isa, int64_t group);
// q4_group / q8_group with f32 activations on AVX2 (group_f32_avx2.cc), for weights marked activations "f32"
// (GPTQ / AWQ): decode streams, prefill a packed f32 GEMM; groups of whole 32-column units only.
class ThreadPool;
// q8_row / q4_row pass as q8_group / q4_group with group = cols (their one scale per row is one per group).
// From kGroupF32GemmMinT tokens the packed GEMM runs (below: streams).
constexpr int64_t kGroupF32GemmMinT = 10;
WView as_group(const WView& w);
bool group_f32_avx2_supports(const WView& w);
void group_f32_avx2(const WView& w, const float* x, float* y, int64_t T, ThreadPool& pool);

// GGUF Q4_0 → q4_group(32) for rows [r0, r1) (repack.cc): data (rows · cols / 2 bytes) and scales (rows · cols / 32).
void repack_q4_0_rows(const uint8_t* src, int64_t cols, uint8_t* dst, float* scales, int64_t r0, int64_t r1);

// Small ops (ops.cc).
void rmsnorm(float* y, const float* x, const float* w, int64_t T, int64_t dim, float eps);
void rope(float* x, int64_t T, int64_t nHeads, int64_t headDim, const float* cos, const float* sin);
void silu_mul(float* gate, const float* up, int64_t begin, int64_t end, Isa isa);
void add_in_place(float* y, const float* x, int64_t n);

// --- Paged KV cache (kv.cc); the layout is src/kv/layout.ts ---

// Storage type codes, as KV_TYPE_CODE in src/kv/layout.ts.
enum class KvType : int { F32 = 0, F16 = 1, Q8 = 2 };

// One layer of one sequence's KV cache, in place. Token s lives in block table[s / blockSize], row
// s % blockSize; block b is at segs[b / blocksPerSegment] + (b % blocksPerSegment) · blockBytes; inside it, layer
// l's K region starts at (2l) · regionBytes and its V region at (2l + 1) · regionBytes. A region is head-major
// (nKvHeads, blockSize, headDim): f32 values, f16 bits, or q8_0 int8 values followed at scaleOffset by f16
// scales (nKvHeads, blockSize, headDim / group). The binding has checked that every block the call touches
// lies inside its segment.
struct PagedKv {
  KvType type;
  int64_t nKvHeads, headDim, blockSize, group, regionBytes, scaleOffset, blockBytes, blocksPerSegment, layer;
  uint8_t* const* segs;
  const int32_t* table;
};

// q (T, nHeads, headDim) → out (T, nHeads, headDim); query t sees keys 0 … past + t.
struct PagedAttnArgs {
  float* out;
  const float* q;
  int64_t T, past, nHeads;
  float scale;
};

// Per-thread scratch of paged_attention, kept between calls (O(chunk · headDim) floats each) and the split-key
// partial results.
struct KvScratch {
  std::vector<std::vector<float>> thread;
  std::vector<std::vector<const uint8_t*>> lines;  // per thread: the next chunk's cache lines
  std::vector<float> partial;
};

class ThreadPool;
// Stores T tokens' keys and values k, v (T, nKvHeads · headDim) at positions start … start + T − 1: f32 as is,
// f16 rounded to nearest even, q8_0 with d = amax / 127 and q = round-half-away(x / d) per group.
void kv_write(const PagedKv& kv, const float* k, const float* v, int64_t start, int64_t T, Isa isa, ThreadPool& pool);
// Causal GQA attention over the paged cache (online softmax over key chunks, blocks read in place).
void paged_attention(const PagedKv& kv, const PagedAttnArgs& a, Isa isa, ThreadPool& pool, KvScratch& scratch);

}  // namespace xv
