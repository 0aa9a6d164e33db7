// N-API binding. Every call is synchronous and checks its arguments (types, lengths, shapes) before any kernel
// touches memory, so a wrong call throws a JS error instead of corrupting memory. State (thread pool, scratch,
// selected ISA) lives in per-environment instance data: each worker_thread that loads the addon gets its own.
#include <napi.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "arm/arm.h"
#include "blocks.h"
#include "kernels.h"
#include "pool.h"
#include "mmap.h"

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace xv {

CpuCaps detect_cpu() {
  CpuCaps c;
#if XV_X86 && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  c.avx2_fma_f16c = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  c.avx512 = c.avx2_fma_f16c && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  c.avx512_vnni = c.avx512 && __builtin_cpu_supports("avx512vnni");
  c.avx512_vbmi = c.avx512 && __builtin_cpu_supports("avx512vbmi");
#endif
  c.amx = c.avx512_vnni && amx_available();
  arm::detect(c);  // arm64 only (src/arm/detect.cc)
  return c;
}

namespace {

struct Instance {
  CpuCaps caps = detect_cpu();
  Isa isa = Isa::Scalar;
  bool vnni = false;
  bool amx = false;                           // AMX-INT8 prefill (matmul_amx.cc)
  ThreadPool pool{1};
  std::vector<char> qscratch;                 // quantized activations for the VNNI path
  std::vector<QuantX> qx;                     // one per token, pointing into qscratch
  KvScratch kv;                               // paged attention scratch
  std::vector<uint8_t*> segs;                 // the KV segments a call touches (others null)
  std::vector<int64_t> segLen;                // their byte lengths (−1: not looked up yet)
  std::vector<float> zpx, zpsum;              // group_zp.cc: x gathered by perm (T, cols); Σx per group

  Instance() {
    isa = caps.avx512 ? Isa::Avx512 : caps.avx2_fma_f16c ? Isa::Avx2 : Isa::Scalar;
    if (caps.neon) isa = caps.neon_i8mm ? Isa::NeonI8mm : caps.neon_dot ? Isa::NeonDot : Isa::Neon;
    vnni = caps.avx512_vnni;
    amx = caps.amx;
  }
};

Instance& inst(const Napi::Env& env) { return *env.GetInstanceData<Instance>(); }

[[noreturn]] void bad(const Napi::Env& env, const std::string& msg) { throw Napi::TypeError::New(env, msg); }

template <class A>
A arr(const Napi::CallbackInfo& info, size_t i, napi_typedarray_type type, size_t minLen, const char* name) {
  const Napi::Value v = info[i];
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type)
    bad(info.Env(), std::string(name) + ": wrong typed array type");
  A a = v.As<A>();
  if (a.ElementLength() < minLen)
    bad(info.Env(), std::string(name) + ": length " + std::to_string(a.ElementLength()) + " < required " +
                        std::to_string(minLen));
  return a;
}

int64_t num(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t lo = 0) {
  if (!info[i].IsNumber()) bad(info.Env(), std::string(name) + ": not a number");
  const double d = info[i].As<Napi::Number>().DoubleValue();
  if (!(d >= static_cast<double>(lo)) || d != static_cast<double>(static_cast<int64_t>(d)) || d > 9e15)
    bad(info.Env(), std::string(name) + ": must be an integer ≥ " + std::to_string(lo));
  return static_cast<int64_t>(d);
}

const char* isa_name(const Instance& s) {
  if (s.isa == Isa::Avx512) return s.amx ? "avx512_amx" : s.vnni ? "avx512_vnni" : "avx512";
  if (s.isa == Isa::NeonI8mm) return "neon_i8mm";
  if (s.isa == Isa::NeonDot) return "neon_dotprod";
  if (s.isa == Isa::Neon) return "neon";
  return s.isa == Isa::Avx2 ? "avx2" : "scalar";
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  Instance& s = inst(info.Env());
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("isa", isa_name(s));
  o.Set("threads", s.pool.threads());
  o.Set("hardwareThreads", static_cast<double>(std::thread::hardware_concurrency()));
  Napi::Array supported = Napi::Array::New(info.Env());
  uint32_t n = 0;
  supported.Set(n++, "scalar");
  if (s.caps.avx2_fma_f16c) supported.Set(n++, "avx2");
  if (s.caps.avx512) supported.Set(n++, "avx512");
  if (s.caps.avx512_vnni) supported.Set(n++, "avx512_vnni");
  if (s.caps.amx) supported.Set(n++, "avx512_amx");
  if (s.caps.neon) supported.Set(n++, "neon");
  if (s.caps.neon_dot) supported.Set(n++, "neon_dotprod");
  if (s.caps.neon_i8mm) supported.Set(n++, "neon_i8mm");
  o.Set("supported", supported);
  // Block formats (codes 6 … 15) with a native kernel at the current ISA; the others run on the TS twin.
  Napi::Array blocks = Napi::Array::New(info.Env());
  uint32_t nb = 0;
  for (int f = 6; f <= 15; f++)
    if (blocks_native(static_cast<Fmt>(f), BlockIsa{s.isa, s.vnni})) blocks.Set(nb++, f);
  o.Set("blockFormats", blocks);
  return o;
}

// setIsa(name): for tests and benchmarks, run a lower ISA than the CPU offers. Returns the ISA now in use.
Napi::Value SetIsa(const Napi::CallbackInfo& info) {
  Instance& s = inst(info.Env());
  const std::string want = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  s.amx = false;
  if (want == "scalar") {
    s.isa = Isa::Scalar, s.vnni = false;
  } else if (want == "avx2" && s.caps.avx2_fma_f16c) {
    s.isa = Isa::Avx2, s.vnni = false;
  } else if (want == "avx512" && s.caps.avx512) {
    s.isa = Isa::Avx512, s.vnni = false;
  } else if (want == "avx512_vnni" && s.caps.avx512_vnni) {
    s.isa = Isa::Avx512, s.vnni = true;
  } else if (want == "avx512_amx" && s.caps.amx) {
    s.isa = Isa::Avx512, s.vnni = true, s.amx = true;
  } else if (want == "neon" && s.caps.neon) {
    s.isa = Isa::Neon, s.vnni = false;
  } else if (want == "neon_dotprod" && s.caps.neon_dot) {
    s.isa = Isa::NeonDot, s.vnni = false;
  } else if (want == "neon_i8mm" && s.caps.neon_i8mm) {
    s.isa = Isa::NeonI8mm, s.vnni = false;
  } else {
    bad(info.Env(), "setIsa: '" + want + "' is not supported on this CPU");
  }
  return Napi::String::New(info.Env(), isa_name(s));
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  Instance& s = inst(info.Env());
  s.pool.resize(static_cast<int>(std::min<int64_t>(num(info, 0, "threads", 1), 256)));
  return Napi::Number::New(info.Env(), s.pool.threads());
}

// GPTQ / AWQ extras of q4_group / q8_group (group_zp.cc), matmul arguments 9 (mins | null) and 10 (perm | null).
// begin() checks them and, for a desc_act weight, gathers x into the weight's stored column order; the destructor
// adds the zero-point term Σ_g min[r, g] · Σ_{k ∈ g} x[t, k] after whichever kernel wrote y, on every return path.
struct GroupZp {
  Instance& s;
  const WView& w;
  float* y = nullptr;
  int64_t T = 0;
  const float* mins = nullptr;
  const float* x = nullptr;

  void begin(const Napi::CallbackInfo& info, const float*& xin, float* yout, int64_t tokens) {
    const bool hasMins = info.Length() > 9 && !info[9].IsNull() && !info[9].IsUndefined();
    const bool hasPerm = info.Length() > 10 && !info[10].IsNull() && !info[10].IsUndefined();
    if (!hasMins && !hasPerm) return;
    if (w.fmt != Fmt::Q4G && w.fmt != Fmt::Q8G) bad(info.Env(), "matmul: mins / perm need a q4_group or q8_group weight");
    const int64_t cols = w.cols;
    if (hasPerm) {
      const int32_t* perm = arr<Napi::Int32Array>(info, 10, napi_int32_array, cols, "perm").Data();
      for (int64_t j = 0; j < cols; j++)
        if (perm[j] < 0 || perm[j] >= cols) bad(info.Env(), "perm: entry " + std::to_string(j) + " is outside 0 … cols − 1");
      s.zpx.resize(static_cast<size_t>(tokens * cols));
      gather_cols(xin, tokens, cols, perm, s.zpx.data());
      xin = s.zpx.data();
    }
    if (hasMins) mins = arr<Napi::Float32Array>(info, 9, napi_float32_array, w.rows * cols / w.group, "mins").Data();
    x = xin, y = yout, T = tokens;
  }
  ~GroupZp() {
    if (!mins || T == 0) return;
    const int64_t ng = w.cols / w.group;
    s.zpsum.resize(static_cast<size_t>(T * ng));
    group_sums(x, T, w.cols, w.group, s.zpsum.data());
    const float* xs = s.zpsum.data();
    s.pool.parallel_for(w.rows, std::max<int64_t>(16, w.rows / (s.pool.threads() * 4)),
                        [&](int64_t b, int64_t e, int) { add_group_mins(mins, ng, xs, y, w.rows, T, b, e); });
  }
};

// AMX prefill (matmul_amx.cc) when the ISA allows it, T ≥ 16 (below that a padded 16-token tile loses to VNNI)
// and the kernel takes this weight. Returns whether it ran.
bool run_amx(Instance& s, const WView& w, const float* x, float* y, int64_t T) {
  if (!s.amx || T < 16) return false;
  const int gs = amx_group(w);
  if (!gs) return false;
  const size_t need = static_cast<size_t>(amx_x_bytes(w.cols, T));
  if (s.qscratch.size() < need) s.qscratch.resize(need);
  const AmxX ax = quantize_amx(x, w.cols, T, gs, s.qscratch.data(), 0, 0);  // the layout; the tokens below
  s.pool.parallel_for((T + 15) / 16 * 16, 16,
                      [&](int64_t b, int64_t e, int) { quantize_amx(x, w.cols, T, gs, s.qscratch.data(), b, e); });
  const int64_t blocks = w.rows / 16;
  s.pool.parallel_for(blocks, std::max<int64_t>(1, blocks / (s.pool.threads() * 8)),
                      [&](int64_t b, int64_t e, int) { matmul_amx_blocks(w, ax, y, w.rows, T, b, e); });
  return true;
}

// matmul(y, x, format, data, scales | null, rows, cols, group, T, mins? | null, perm? | null, exact? = false)
// exact (argument 11, Weight.activations "f32"): keep x in f32 on every ISA, skipping the int8-activation and AMX
// kernels (GPTQ / AWQ checkpoints: their reference is f32 math on the dequantized weights).
void Matmul(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  Instance& s = inst(env);
  const int64_t fmt = num(info, 2, "format"), rows = num(info, 5, "rows"), cols = num(info, 6, "cols"),
                group = num(info, 7, "group"), T = num(info, 8, "T");
  if (fmt > 16) bad(env, "matmul: unknown format code");
  WView w{static_cast<Fmt>(fmt), rows, cols, nullptr, nullptr, group};
  if (is_block_fmt(w.fmt)) {  // GGUF blocks as stored: rows × (cols / values) blocks of `bytes` each
    const BlockType bt = block_type(w.fmt);
    if (cols % bt.values) bad(env, "matmul: block format needs cols (" + std::to_string(cols) + ") to be a multiple of " + std::to_string(bt.values));
    w.data = arr<Napi::Uint8Array>(info, 3, napi_uint8_array, static_cast<size_t>(rows * (cols / bt.values) * bt.bytes), "data").Data();
    float* y = arr<Napi::Float32Array>(info, 0, napi_float32_array, T * rows, "y").Data();
    const float* x = arr<Napi::Float32Array>(info, 1, napi_float32_array, T * cols, "x").Data();
    if (T == 0 || rows == 0) return;
    if (cols == 0) return std::fill(y, y + T * rows, 0.f);
    if (s.isa >= Isa::Neon && arm::matmul(w, x, y, T, s.isa, s.pool, s.qscratch)) return;  // arm64 (src/arm/)
    if (run_amx(s, w, x, y, T)) return;
    if (!matmul_blocks(w, x, y, T, BlockIsa{s.isa, s.vnni}, s.pool, s.qscratch))
      bad(env, "matmul: format code " + std::to_string(fmt) + " has no native kernel here (see info().blockFormats)");
    return;
  }
  const size_t n = static_cast<size_t>(rows * cols);
  switch (w.fmt) {
    case Fmt::F32: w.data = arr<Napi::Float32Array>(info, 3, napi_float32_array, n, "data").Data(); break;
    case Fmt::BF16:
    case Fmt::F16: w.data = arr<Napi::Uint16Array>(info, 3, napi_uint16_array, n, "data").Data(); break;
    case Fmt::Q8:
    case Fmt::Q8G: w.data = arr<Napi::Int8Array>(info, 3, napi_int8_array, n, "data").Data(); break;
    case Fmt::Q4:
    case Fmt::Q4G:
      if (cols % 2) bad(env, "matmul: int4 weights need an even number of columns");
      w.data = arr<Napi::Uint8Array>(info, 3, napi_uint8_array, n / 2, "data").Data();
      break;
    default: break;  // block formats returned above
  }
  if (w.fmt == Fmt::Q8 || w.fmt == Fmt::Q4) {
    w.scales = arr<Napi::Float32Array>(info, 4, napi_float32_array, rows, "scales").Data();
  } else if (w.fmt == Fmt::Q4G || w.fmt == Fmt::Q8G) {
    if (group < 2 || cols % group) bad(env, "matmul: groupSize must divide cols");
    w.scales = arr<Napi::Float32Array>(info, 4, napi_float32_array, n / group, "scales").Data();
  }
  float* y = arr<Napi::Float32Array>(info, 0, napi_float32_array, T * rows, "y").Data();
  const float* x = arr<Napi::Float32Array>(info, 1, napi_float32_array, T * cols, "x").Data();
  GroupZp zp{s, w};
  zp.begin(info, x, y, T);
  const bool exact = info.Length() > 11 && info[11].IsBoolean() && info[11].As<Napi::Boolean>().Value();
  if (T == 0 || rows == 0) return;
  if (cols == 0) {
    std::fill(y, y + T * rows, 0.f);
    return;
  }

  const int nt = s.pool.threads();
  // Small products are not worth waking the pool (a wake-up costs a few microseconds).
  const bool serial = rows * cols * T < 65536;
  int64_t chunk = rows / (nt * 8);
  chunk = std::max<int64_t>(4, chunk & ~int64_t(3));
  if (serial) chunk = rows;
  if (s.isa >= Isa::Neon && arm::matmul(w, x, y, T, s.isa, s.pool, s.qscratch, exact)) return;  // arm64 (src/arm/)
  if (!exact && run_amx(s, w, x, y, T)) return;  // any int4 / int8 format, T ≥ 16, on AMX
  // `--quantize 4` / `--quantize 8` prompts and `--quantize 8` decode on AVX2 without VNNI: the GGUF q4_0 / q8_0
  // kernels over Q8_0-style activations (blocks_avx2.cc), not the packed f32 GEMM / exact row kernel below. One core,
  // 4096², T = 128: int4 group 32 83 → 156 GOP/s (full-size prefill 99 → 172 tok/s), int8 per row 82 → 130 GOP/s;
  // int8 decode 12 → 21 GB/s.
  if (!exact && s.isa == Isa::Avx2) {
    const BlockIsa bisa{s.isa, false};
    if (T == 1 && int4_dec_avx2_supports(w))  // int4 decode: 1.2-1.8× matmul_q4_avx2_rows (blocks_avx2.cc)
      return matmul_legacy_acts(w, x, y, T, bisa, s.pool, s.qscratch, int4_dec_avx2, legacy_quantize_even_odd);
    if (w.fmt == Fmt::Q4G && w.group == 32 && T >= kIlMinT)
      return matmul_legacy_acts(w, x, y, T, bisa, s.pool, s.qscratch, q4g32_rows_avx2);
    if (w.fmt == Fmt::Q8 && cols % 32 == 0 && (T >= kIlMinT || T == 1))  // 2-3 tokens: exact
      return matmul_legacy_acts(w, x, y, T, bisa, s.pool, s.qscratch, q8row_rows_avx2);
  }
  // f32-activation q4_group / q8_group (GPTQ / AWQ; q8_group is f32 on every non-AMX path anyway) on any AVX2+
  // x86: streams for decode (q8_group 4.3× group_zp.cc's kernel), a packed GEMM for prefill.
  // And on AVX2 without VNNI every int format's prompt (T ≥ kGroupF32GemmMinT) takes the packed f32 GEMM: 1.5× the
  // int8 kernel there at T = 128 (4096² int4, one thread: 83 vs 56 GOP/s), and exact.
  {
    const WView g = as_group(w);
    if (group_f32_avx2_supports(g) && (s.isa == Isa::Avx2 || s.isa == Isa::Avx512) &&
        (exact || g.fmt == Fmt::Q8G || (s.isa == Isa::Avx2 && T >= kGroupF32GemmMinT)))
      return group_f32_avx2(g, x, y, T, s.pool);
  }
  if (w.fmt == Fmt::Q8G) {  // 8-bit GPTQ (group_zp.cc): f32 accumulation, zero points added by zp
    const Q8gKernel q8g = q8g_kernel(s.isa, group);
    s.pool.parallel_for(rows, chunk, [&](int64_t b, int64_t e, int) { q8g(w, x, cols, y, rows, T, b, e); });
    return;
  }

  // int4 on VNNI or AVX2: integer dot products over int8-quantized activations (AVX-512 without VNNI keeps
  // the exact f32 path: widening in 512-bit registers is fast enough there).
  // int8 prefill (T > 1) on VNNI + VBMI the same way; int8 decode stays exact (memory-bound, VNNI gains nothing).
  const bool q8_vnni = !exact && s.vnni && s.caps.avx512_vbmi && w.fmt == Fmt::Q8 && T > 1;
  const bool q4_vnni = q8_vnni || (!exact && s.vnni && vnni_supports(w));
  const bool q4_avx2 = !exact && !q4_vnni && s.isa == Isa::Avx2 && vnni_supports(w);
  // q4_group with group 32 (Q4_0 GGUF), prefill: whole-group integer sums (matmul_vnni_g32_rows).
  const bool g32 = q4_vnni && !q8_vnni && T > 1 && vnni_g32_supports(w);
  if (q4_vnni || q4_avx2) {
    // Quantize every token's activations once, then all threads share them.
    const int64_t per = (quantx_bytes(cols) + 63) / 64 * 64;
    const size_t need = static_cast<size_t>(per * T);
    if (s.qscratch.size() < need) s.qscratch.resize(need);
    if (static_cast<int64_t>(s.qx.size()) < T) s.qx.resize(T);
    char* qs = s.qscratch.data();
    auto quant = [&](int64_t b, int64_t e, int) {
      for (int64_t t = b; t < e; t++)
        s.qx[t] = g32 ? quantize_x_g32(x + t * cols, cols, qs + t * per) : quantize_x(x + t * cols, cols, qs + t * per, q4_vnni);
    };
    if (T * cols < 65536) quant(0, T, 0);
    else s.pool.parallel_for(T, std::max<int64_t>(1, T / (nt * 4)), quant);
    const QuantX* qx = s.qx.data();
    auto rows_fn = q8_vnni ? matmul_vnni_q8_rows : g32 ? matmul_vnni_g32_rows : q4_vnni ? matmul_vnni_rows : matmul_q4_avx2_rows;
    s.pool.parallel_for(rows, chunk, [&](int64_t b, int64_t e, int) { rows_fn(w, qx, y, rows, T, b, e); });
    return;
  }
  auto kernel = matmul_rows_scalar;
  if (s.isa == Isa::Avx512 && avx512_supports(w)) kernel = matmul_rows_avx512;
  else if (s.isa >= Isa::Avx2 && avx2_supports(w)) kernel = matmul_rows_avx2;
  s.pool.parallel_for(rows, chunk, [&](int64_t b, int64_t e, int) { kernel(w, x, cols, y, rows, T, b, e); });
}

// rmsnorm(y, x, weight, T, dim, eps)
void Rmsnorm(const Napi::CallbackInfo& info) {
  const int64_t T = num(info, 3, "T"), dim = num(info, 4, "dim");
  float* y = arr<Napi::Float32Array>(info, 0, napi_float32_array, T * dim, "y").Data();
  const float* x = arr<Napi::Float32Array>(info, 1, napi_float32_array, T * dim, "x").Data();
  const float* w = arr<Napi::Float32Array>(info, 2, napi_float32_array, dim, "weight").Data();
  if (!info[5].IsNumber()) bad(info.Env(), "eps: not a number");
  const float eps = info[5].As<Napi::Number>().FloatValue();
  if (inst(info.Env()).isa >= Isa::Neon) return arm::rmsnorm(y, x, w, T, dim, eps);
  rmsnorm(y, x, w, T, dim, eps);
}

// rope(x, T, nHeads, headDim, cos, sin)
void Rope(const Napi::CallbackInfo& info) {
  const int64_t T = num(info, 1, "T"), nh = num(info, 2, "nHeads"), hd = num(info, 3, "headDim");
  if (hd % 2) bad(info.Env(), "rope: headDim must be even");
  float* x = arr<Napi::Float32Array>(info, 0, napi_float32_array, T * nh * hd, "x").Data();
  const float* c = arr<Napi::Float32Array>(info, 4, napi_float32_array, T * hd / 2, "cos").Data();
  const float* sn = arr<Napi::Float32Array>(info, 5, napi_float32_array, T * hd / 2, "sin").Data();
  if (inst(info.Env()).isa >= Isa::Neon) return arm::rope(x, T, nh, hd, c, sn);
  rope(x, T, nh, hd, c, sn);
}

// The paged KV arguments kvWrite and kvAttention share, info[0 … 11]: (buffers, table, type, nKvHeads, headDim,
// blockSize, group, regionBytes, scaleOffset, blockBytes, blocksPerSegment, layer); see PagedKv. Checks that the
// layout is self-consistent (a region holds its values, the layer's regions fit in a block); the blocks are
// checked by bind_blocks once the caller knows which ones it touches.
PagedKv paged_layout(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  PagedKv kv{};
  const int64_t type = num(info, 2, "type");
  if (type > 2) bad(env, "kv: unknown KV type code " + std::to_string(type));
  kv.type = static_cast<KvType>(type);
  kv.nKvHeads = num(info, 3, "nKvHeads", 1);
  kv.headDim = num(info, 4, "headDim", 1);
  kv.blockSize = num(info, 5, "blockSize", 1);
  kv.group = num(info, 6, "group");
  kv.regionBytes = num(info, 7, "regionBytes", 1);
  kv.scaleOffset = num(info, 8, "scaleOffset");
  kv.blockBytes = num(info, 9, "blockBytes", 1);
  kv.blocksPerSegment = num(info, 10, "blocksPerSegment", 1);
  kv.layer = num(info, 11, "layer");
  // Bounds that keep every product below 2^53 (and the per-thread scratch small).
  if (kv.nKvHeads > 4096 || kv.headDim > 1024 || kv.blockSize > 4096)
    bad(env, "kv: nKvHeads ≤ 4096, headDim ≤ 1024, blockSize ≤ 4096");
  if (kv.blocksPerSegment > (int64_t(1) << 31)) bad(env, "kv: blocksPerSegment too large");
  const int64_t n = kv.nKvHeads * kv.blockSize * kv.headDim;  // values per region
  int64_t need = 0;
  switch (kv.type) {
    case KvType::F32: need = 4 * n; break;
    case KvType::F16: need = 2 * n; break;
    case KvType::Q8:
      if (kv.group < 1 || kv.headDim % kv.group) bad(env, "kv: q8_0 group must divide headDim");
      if (kv.scaleOffset < n || kv.scaleOffset % 2) bad(env, "kv: q8_0 scaleOffset must be even and ≥ the int8 values");
      need = kv.scaleOffset + 2 * (n / kv.group);
      break;
  }
  if (kv.regionBytes < need) bad(env, "kv: regionBytes " + std::to_string(kv.regionBytes) + " < " + std::to_string(need) + " needed");
  // Aligned element access: regions and blocks start at multiples of 4 bytes (segments are 8-aligned).
  if (kv.regionBytes % 4 || kv.blockBytes % 4) bad(env, "kv: regionBytes and blockBytes must be multiples of 4");
  if (kv.layer > (1 << 20) || 2 * kv.layer + 2 > kv.blockBytes / kv.regionBytes)
    bad(env, "kv: layer " + std::to_string(kv.layer) + " does not fit in a block of " + std::to_string(kv.blockBytes) + " bytes");
  return kv;
}

// Checks table[blo … bhi) (block ids) against the segments in info[0] and points kv at them: every id must name
// a whole block inside an ArrayBuffer. Only the segments these blocks live in are looked up (one N-API call
// each), so a call costs O(blocks) whatever the pool's size.
void bind_blocks(const Napi::CallbackInfo& info, Instance& s, PagedKv& kv, int64_t blo, int64_t bhi) {
  const Napi::Env env = info.Env();
  if (!info[0].IsArray()) bad(env, "kv: buffers must be an array of ArrayBuffers");
  const Napi::Array bufs = info[0].As<Napi::Array>();
  const int64_t nseg = bufs.Length();
  kv.table = arr<Napi::Int32Array>(info, 1, napi_int32_array, static_cast<size_t>(bhi), "table").Data();
  s.segs.assign(static_cast<size_t>(nseg), nullptr);
  s.segLen.assign(static_cast<size_t>(nseg), -1);
  for (int64_t j = blo; j < bhi; j++) {
    const int64_t b = kv.table[j];
    const int64_t seg = b / kv.blocksPerSegment;
    if (b < 0 || seg >= nseg) bad(env, "kv: table[" + std::to_string(j) + "] = " + std::to_string(b) + " is not a block of the " + std::to_string(nseg) + " segments");
    if (s.segLen[seg] < 0) {
      const Napi::Value v = bufs.Get(static_cast<uint32_t>(seg));
      if (!v.IsArrayBuffer()) bad(env, "kv: buffers[" + std::to_string(seg) + "] is not an ArrayBuffer");
      Napi::ArrayBuffer ab = v.As<Napi::ArrayBuffer>();
      s.segs[seg] = static_cast<uint8_t*>(ab.Data());
      s.segLen[seg] = static_cast<int64_t>(ab.ByteLength());
      if (reinterpret_cast<uintptr_t>(s.segs[seg]) % 4) bad(env, "kv: segment memory is not 4-byte aligned");
    }
    if (b % kv.blocksPerSegment >= s.segLen[seg] / kv.blockBytes)
      bad(env, "kv: block " + std::to_string(b) + " lies outside segment " + std::to_string(seg) + " (" + std::to_string(s.segLen[seg]) + " bytes)");
  }
  kv.segs = s.segs.data();
}

// kvWrite(buffers, table, type, nKvHeads, headDim, blockSize, group, regionBytes, scaleOffset, blockBytes,
//         blocksPerSegment, layer, k, v, start, T)
void KvWrite(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  Instance& s = inst(env);
  PagedKv kv = paged_layout(info);
  const int64_t start = num(info, 14, "start"), T = num(info, 15, "T");
  if (start + T > (int64_t(1) << 31) - 1) bad(env, "kvWrite: positions must stay below 2^31");
  const size_t n = static_cast<size_t>(T * kv.nKvHeads * kv.headDim);
  const float* k = arr<Napi::Float32Array>(info, 12, napi_float32_array, n, "k").Data();
  const float* v = arr<Napi::Float32Array>(info, 13, napi_float32_array, n, "v").Data();
  if (T == 0) return;
  bind_blocks(info, s, kv, start / kv.blockSize, (start + T + kv.blockSize - 1) / kv.blockSize);
  kv_write(kv, k, v, start, T, s.isa, s.pool);
}

// kvAttention(buffers, table, type, nKvHeads, headDim, blockSize, group, regionBytes, scaleOffset, blockBytes,
//             blocksPerSegment, layer, out, q, T, past, nHeads, scale)
void KvAttention(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  Instance& s = inst(env);
  PagedKv kv = paged_layout(info);
  PagedAttnArgs a{};
  a.T = num(info, 14, "T");
  a.past = num(info, 15, "past");
  a.nHeads = num(info, 16, "nHeads", 1);
  if (!info[17].IsNumber()) bad(env, "scale: not a number");
  a.scale = info[17].As<Napi::Number>().FloatValue();
  if (a.nHeads % kv.nKvHeads || a.nHeads > 65536)
    bad(env, "kvAttention: nHeads must be a multiple of nKvHeads (and ≤ 65536)");
  if (a.past + a.T > (int64_t(1) << 31) - 1) bad(env, "kvAttention: positions must stay below 2^31");
  const size_t qn = static_cast<size_t>(a.T * a.nHeads * kv.headDim);
  a.out = arr<Napi::Float32Array>(info, 12, napi_float32_array, qn, "out").Data();
  a.q = arr<Napi::Float32Array>(info, 13, napi_float32_array, qn, "q").Data();
  if (a.T == 0) return;
  bind_blocks(info, s, kv, 0, (a.past + a.T + kv.blockSize - 1) / kv.blockSize);
  paged_attention(kv, a, s.isa, s.pool, s.kv);
}

// siluMul(gate, up, n)
void SiluMul(const Napi::CallbackInfo& info) {
  Instance& s = inst(info.Env());
  const int64_t n = num(info, 2, "n");
  float* g = arr<Napi::Float32Array>(info, 0, napi_float32_array, n, "gate").Data();
  const float* u = arr<Napi::Float32Array>(info, 1, napi_float32_array, n, "up").Data();
  const int64_t chunk = n < 65536 ? n : 16384;  // exp dominates; split only prefill-sized inputs
  const Isa isa = s.isa;
  s.pool.parallel_for(n, chunk, [&](int64_t b, int64_t e, int) {
    if (isa >= Isa::Neon) arm::silu_mul(g, u, b, e);
    else silu_mul(g, u, b, e, isa);
  });
}

// addInPlace(y, x, n)
void AddInPlace(const Napi::CallbackInfo& info) {
  const int64_t n = num(info, 2, "n");
  float* y = arr<Napi::Float32Array>(info, 0, napi_float32_array, n, "y").Data();
  const float* x = arr<Napi::Float32Array>(info, 1, napi_float32_array, n, "x").Data();
  if (inst(info.Env()).isa >= Isa::Neon) return arm::add_in_place(y, x, n);
  add_in_place(y, x, n);
}

// adviseHugePages(buffer): asks Linux to back the 2 MiB-aligned part of a large ArrayBuffer (a KV segment) with
// transparent huge pages, so filling it faults once per 2 MiB instead of once per 4 KiB (where THP is "madvise").
// Returns whether the kernel accepted; elsewhere, or for small buffers, does nothing and returns false.
Napi::Value AdviseHugePages(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  if (!info[0].IsArrayBuffer()) bad(env, "adviseHugePages: expected an ArrayBuffer");
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  Napi::ArrayBuffer b = info[0].As<Napi::ArrayBuffer>();
  const uintptr_t huge = uintptr_t{1} << 21;
  const uintptr_t p = reinterpret_cast<uintptr_t>(b.Data()), end = p + b.ByteLength();
  const uintptr_t a = (p + huge - 1) & ~(huge - 1), z = end & ~(huge - 1);
  if (z <= a) return Napi::Boolean::New(env, false);
  return Napi::Boolean::New(env, madvise(reinterpret_cast<void*>(a), z - a, MADV_HUGEPAGE) == 0);
#else
  return Napi::Boolean::New(env, false);
#endif
}

// repackQ4_0(src: Uint8Array, rows, cols, data: Uint8Array, scales: Float32Array): GGUF Q4_0 blocks → q4_group(32)
// (repack.cc), rows split over the pool: the load-time conversion that lets Q4_0 run on the int4 kernels.
void RepackQ4_0(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  Instance& s = inst(env);
  const int64_t rows = num(info, 1, "rows"), cols = num(info, 2, "cols");
  if (cols % 32) bad(env, "repackQ4_0: cols must be a multiple of 32");
  const uint8_t* src = arr<Napi::Uint8Array>(info, 0, napi_uint8_array, static_cast<size_t>(rows * (cols / 32) * 18), "src").Data();
  uint8_t* data = arr<Napi::Uint8Array>(info, 3, napi_uint8_array, static_cast<size_t>(rows * cols / 2), "data").Data();
  float* scales = arr<Napi::Float32Array>(info, 4, napi_float32_array, static_cast<size_t>(rows * cols / 32), "scales").Data();
  s.pool.parallel_for(rows, std::max<int64_t>(16, rows / (s.pool.threads() * 4)),
                      [&](int64_t b, int64_t e, int) { repack_q4_0_rows(src, cols, data, scales, b, e); });
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData<Instance>(new Instance());
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  exports.Set("setIsa", Napi::Function::New(env, SetIsa, "setIsa"));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads, "setThreads"));
  exports.Set("matmul", Napi::Function::New(env, Matmul, "matmul"));
  exports.Set("repackQ4_0", Napi::Function::New(env, RepackQ4_0, "repackQ4_0"));
  exports.Set("rmsnorm", Napi::Function::New(env, Rmsnorm, "rmsnorm"));
  exports.Set("rope", Napi::Function::New(env, Rope, "rope"));
  exports.Set("kvWrite", Napi::Function::New(env, KvWrite, "kvWrite"));
  exports.Set("adviseHugePages", Napi::Function::New(env, AdviseHugePages, "adviseHugePages"));
  exports.Set("kvAttention", Napi::Function::New(env, KvAttention, "kvAttention"));
  exports.Set("siluMul", Napi::Function::New(env, SiluMul, "siluMul"));
  exports.Set("addInPlace", Napi::Function::New(env, AddInPlace, "addInPlace"));
  exports.Set("mapFile", Napi::Function::New(env, MapFile, "mapFile"));
  exports.Set("populate", Napi::Function::New(env, Populate, "populate"));
  exports.Set("release", Napi::Function::New(env, Release, "release"));
  return exports;
}

}  // namespace
}  // namespace xv

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return xv::Init(env, exports); }

NODE_API_MODULE(xverse_native, InitModule)
