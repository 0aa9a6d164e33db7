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

#include "kernels.h"
#include "pool.h"

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
  return c;
}

namespace {

struct Instance {
  CpuCaps caps = detect_cpu();
  Isa isa = Isa::Scalar;
  bool vnni = false;
  ThreadPool pool{1};
  std::vector<char> qscratch;                 // quantized activations for the VNNI path
  std::vector<QuantX> qx;                     // one per token, pointing into qscratch
  std::vector<std::vector<float>> attn;       // per-thread attention scores

  Instance() {
    isa = caps.avx512 ? Isa::Avx512 : caps.avx2_fma_f16c ? Isa::Avx2 : Isa::Scalar;
    vnni = caps.avx512_vnni;
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
  if (s.isa == Isa::Avx512) return s.vnni ? "avx512_vnni" : "avx512";
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
  o.Set("supported", supported);
  return o;
}

// setIsa(name): for tests and benchmarks, run a lower ISA than the CPU offers. Returns the ISA now in use.
Napi::Value SetIsa(const Napi::CallbackInfo& info) {
  Instance& s = inst(info.Env());
  const std::string want = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  if (want == "scalar") {
    s.isa = Isa::Scalar, s.vnni = false;
  } else if (want == "avx2" && s.caps.avx2_fma_f16c) {
    s.isa = Isa::Avx2, s.vnni = false;
  } else if (want == "avx512" && s.caps.avx512) {
    s.isa = Isa::Avx512, s.vnni = false;
  } else if (want == "avx512_vnni" && s.caps.avx512_vnni) {
    s.isa = Isa::Avx512, s.vnni = true;
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

// matmul(y, x, format, data, scales | null, rows, cols, group, T)
void Matmul(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  Instance& s = inst(env);
  const int64_t fmt = num(info, 2, "format"), rows = num(info, 5, "rows"), cols = num(info, 6, "cols"),
                group = num(info, 7, "group"), T = num(info, 8, "T");
  if (fmt > 5) bad(env, "matmul: unknown format code");
  WView w{static_cast<Fmt>(fmt), rows, cols, nullptr, nullptr, group};
  const size_t n = static_cast<size_t>(rows * cols);
  switch (w.fmt) {
    case Fmt::F32: w.data = arr<Napi::Float32Array>(info, 3, napi_float32_array, n, "data").Data(); break;
    case Fmt::BF16:
    case Fmt::F16: w.data = arr<Napi::Uint16Array>(info, 3, napi_uint16_array, n, "data").Data(); break;
    case Fmt::Q8: w.data = arr<Napi::Int8Array>(info, 3, napi_int8_array, n, "data").Data(); break;
    case Fmt::Q4:
    case Fmt::Q4G:
      if (cols % 2) bad(env, "matmul: int4 weights need an even number of columns");
      w.data = arr<Napi::Uint8Array>(info, 3, napi_uint8_array, n / 2, "data").Data();
      break;
  }
  if (w.fmt == Fmt::Q8 || w.fmt == Fmt::Q4) {
    w.scales = arr<Napi::Float32Array>(info, 4, napi_float32_array, rows, "scales").Data();
  } else if (w.fmt == Fmt::Q4G) {
    if (group < 2 || cols % group) bad(env, "matmul: groupSize must divide cols");
    w.scales = arr<Napi::Float32Array>(info, 4, napi_float32_array, n / group, "scales").Data();
  }
  float* y = arr<Napi::Float32Array>(info, 0, napi_float32_array, T * rows, "y").Data();
  const float* x = arr<Napi::Float32Array>(info, 1, napi_float32_array, T * cols, "x").Data();
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

  // int4 on VNNI or AVX2: integer dot products over int8-quantized activations (AVX-512 without VNNI keeps
  // the exact f32 path: widening in 512-bit registers is fast enough there).
  // int8 prefill (T > 1) on VNNI + VBMI the same way; int8 decode stays exact (memory-bound, VNNI gains nothing).
  const bool q8_vnni = s.vnni && s.caps.avx512_vbmi && w.fmt == Fmt::Q8 && T > 1;
  const bool q4_vnni = q8_vnni || (s.vnni && vnni_supports(w));
  const bool q4_avx2 = !q4_vnni && s.isa == Isa::Avx2 && vnni_supports(w);
  if (q4_vnni || q4_avx2) {
    // Quantize every token's activations once, then all threads share them.
    const int64_t per = (quantx_bytes(cols) + 63) / 64 * 64;
    const size_t need = static_cast<size_t>(per * T);
    if (s.qscratch.size() < need) s.qscratch.resize(need);
    if (static_cast<int64_t>(s.qx.size()) < T) s.qx.resize(T);
    char* qs = s.qscratch.data();
    auto quant = [&](int64_t b, int64_t e, int) {
      for (int64_t t = b; t < e; t++) s.qx[t] = quantize_x(x + t * cols, cols, qs + t * per, q4_vnni);
    };
    if (T * cols < 65536) quant(0, T, 0);
    else s.pool.parallel_for(T, std::max<int64_t>(1, T / (nt * 4)), quant);
    const QuantX* qx = s.qx.data();
    auto rows_fn = q8_vnni ? matmul_vnni_q8_rows : q4_vnni ? matmul_vnni_rows : matmul_q4_avx2_rows;
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
  rmsnorm(y, x, w, T, dim, info[5].As<Napi::Number>().FloatValue());
}

// rope(x, T, nHeads, headDim, cos, sin)
void Rope(const Napi::CallbackInfo& info) {
  const int64_t T = num(info, 1, "T"), nh = num(info, 2, "nHeads"), hd = num(info, 3, "headDim");
  if (hd % 2) bad(info.Env(), "rope: headDim must be even");
  float* x = arr<Napi::Float32Array>(info, 0, napi_float32_array, T * nh * hd, "x").Data();
  const float* c = arr<Napi::Float32Array>(info, 4, napi_float32_array, T * hd / 2, "cos").Data();
  const float* sn = arr<Napi::Float32Array>(info, 5, napi_float32_array, T * hd / 2, "sin").Data();
  rope(x, T, nh, hd, c, sn);
}

// attention(out, q, k, v, keyMask | null, T, past, nHeads, nKvHeads, headDim, scale)
void Attention(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  Instance& s = inst(env);
  AttnArgs a{};
  a.T = num(info, 5, "T");
  a.past = num(info, 6, "past");
  a.nHeads = num(info, 7, "nHeads", 1);
  a.nKvHeads = num(info, 8, "nKvHeads", 1);
  a.headDim = num(info, 9, "headDim", 1);
  if (!info[10].IsNumber()) bad(env, "scale: not a number");
  a.scale = info[10].As<Napi::Number>().FloatValue();
  if (a.nHeads % a.nKvHeads) bad(env, "attention: nHeads must be a multiple of nKvHeads");
  const int64_t S = a.past + a.T, qn = a.T * a.nHeads * a.headDim, kvn = S * a.nKvHeads * a.headDim;
  a.out = arr<Napi::Float32Array>(info, 0, napi_float32_array, qn, "out").Data();
  a.q = arr<Napi::Float32Array>(info, 1, napi_float32_array, qn, "q").Data();
  a.k = arr<Napi::Float32Array>(info, 2, napi_float32_array, kvn, "k").Data();
  a.v = arr<Napi::Float32Array>(info, 3, napi_float32_array, kvn, "v").Data();
  if (!info[4].IsNull() && !info[4].IsUndefined())
    a.keyMask = arr<Napi::Uint8Array>(info, 4, napi_uint8_array, S, "keyMask").Data();
  const int nt = s.pool.threads();
  // Prefill: each thread copies the head it works on out of the interleaved cache into a contiguous buffer
  // first. In the cache consecutive keys of one head sit nKvHeads·headDim floats apart (8 KB for 16 × 128),
  // all in the same L1 sets, so every query re-read them from L2; the copy is read T times from L1/L2.
  const bool pack = a.T >= 4 && a.nKvHeads > 1;
  if (static_cast<int>(s.attn.size()) < nt) s.attn.resize(nt);
  for (auto& v : s.attn) {
    const size_t need = static_cast<size_t>(S + (pack ? 2 * S * a.headDim : 0));
    if (v.size() < need) v.resize(need);
  }
  const int64_t rows = a.T * a.nHeads;
  const bool serial = rows * S * a.headDim < 32768;
  const int64_t chunk = serial ? rows : std::max<int64_t>(1, rows / (nt * 4));
  const Isa isa = s.isa;
  const int64_t group = a.nHeads / a.nKvHeads, hd = a.headDim, stride = a.nKvHeads * hd;
  s.pool.parallel_for(rows, chunk, [&](int64_t b, int64_t e, int tid) {
    float* sc = s.attn[tid].data();
    float* kbuf = sc + S;
    float* vbuf = kbuf + S * hd;
    int64_t packed_kvh = -1, packed_n = 0;
    // Head-major order: consecutive rows share one head's K and V, which then stay in cache.
    for (int64_t i = b; i < e; i++) {
      const int64_t t = i % a.T, h = i / a.T;
      if (!pack) {
        attention_row(a, t, h, kv_in_cache(a, h), sc, isa);
        continue;
      }
      const int64_t kvh = h / group;
      // keys this chunk needs for this head: up to the last token of the head's run inside [b, e)
      const int64_t run_end = std::min(e, (h + 1) * a.T);
      const int64_t n = a.past + ((run_end - 1) % a.T) + 1;
      if (kvh != packed_kvh || n > packed_n) {
        for (int64_t j = 0; j < n; j++) {
          std::memcpy(kbuf + j * hd, a.k + j * stride + kvh * hd, hd * sizeof(float));
          std::memcpy(vbuf + j * hd, a.v + j * stride + kvh * hd, hd * sizeof(float));
        }
        packed_kvh = kvh;
        packed_n = n;
      }
      attention_row(a, t, h, KvView{kbuf, vbuf, hd}, sc, isa);
    }
  });
}

// siluMul(gate, up, n)
void SiluMul(const Napi::CallbackInfo& info) {
  Instance& s = inst(info.Env());
  const int64_t n = num(info, 2, "n");
  float* g = arr<Napi::Float32Array>(info, 0, napi_float32_array, n, "gate").Data();
  const float* u = arr<Napi::Float32Array>(info, 1, napi_float32_array, n, "up").Data();
  const int64_t chunk = n < 65536 ? n : 16384;  // exp dominates; split only prefill-sized inputs
  const Isa isa = s.isa;
  s.pool.parallel_for(n, chunk, [&](int64_t b, int64_t e, int) { silu_mul(g, u, b, e, isa); });
}

// addInPlace(y, x, n)
void AddInPlace(const Napi::CallbackInfo& info) {
  const int64_t n = num(info, 2, "n");
  float* y = arr<Napi::Float32Array>(info, 0, napi_float32_array, n, "y").Data();
  const float* x = arr<Napi::Float32Array>(info, 1, napi_float32_array, n, "x").Data();
  add_in_place(y, x, n);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData<Instance>(new Instance());
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  exports.Set("setIsa", Napi::Function::New(env, SetIsa, "setIsa"));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads, "setThreads"));
  exports.Set("matmul", Napi::Function::New(env, Matmul, "matmul"));
  exports.Set("rmsnorm", Napi::Function::New(env, Rmsnorm, "rmsnorm"));
  exports.Set("rope", Napi::Function::New(env, Rope, "rope"));
  exports.Set("attention", Napi::Function::New(env, Attention, "attention"));
  exports.Set("siluMul", Napi::Function::New(env, SiluMul, "siluMul"));
  exports.Set("addInPlace", Napi::Function::New(env, AddInPlace, "addInPlace"));
  return exports;
}

}  // namespace
}  // namespace xv

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return xv::Init(env, exports); }

NODE_API_MODULE(xverse_native, InitModule)
