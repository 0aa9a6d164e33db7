// Matmul parity: every weight format at a level against the scalar reference kernels. Float formats (f32, bf16,
// f16, q8_row, q4_row, q4_group, q8_group) compare with matmul_rows_scalar / the scalar q8_group kernel; the GGUF
// block formats with the scalar block kernels on the same quantized activations (matmul_blocks at Isa::Scalar).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "../src/convert.h"
#include "parity.h"

namespace xv {
namespace {

const char* fmt_name(Fmt f) {
  static const char* names[] = {"f32",  "bf16", "f16",  "q8_row", "q4_row", "q4_group", "q4_0", "q4_1", "q5_0",
                                "q5_1", "q8_0", "q2_k", "q3_k", "q4_k",   "q5_k",   "q6_k",     "q8_group"};
  return names[static_cast<int>(f)];
}

// A random weight [rows, cols] in format f (group: q4_group / q8_group), owning its bytes.
struct Weight {
  WView w{};
  std::vector<uint8_t> data;
  std::vector<float> scales;
};

Weight make_weight(Fmt f, int64_t rows, int64_t cols, int64_t group, Rng& rng) {
  Weight W;
  W.w = WView{f, rows, cols, nullptr, nullptr, group};
  const int64_t n = rows * cols;
  if (is_block_fmt(f)) {
    const BlockType bt = block_type(f);
    const int64_t nblk = rows * (cols / bt.values);
    W.data.resize(static_cast<size_t>(nblk * bt.bytes));
    for (uint8_t& b : W.data) b = static_cast<uint8_t>(rng.next());
    // f16 fields (d, and dmin / m) set to sane magnitudes; everything else stays random bits
    std::vector<int> at;
    switch (f) {
      case Fmt::Q4_1: case Fmt::Q5_1: at = {0, 2}; break;
      case Fmt::Q2_K: at = {80, 82}; break;
      case Fmt::Q3_K: at = {108}; break;
      case Fmt::Q4_K: case Fmt::Q5_K: at = {0, 2}; break;
      case Fmt::Q6_K: at = {208}; break;
      default: at = {0}; break;
    }
    for (int64_t b = 0; b < nblk; b++)
      for (int off : at) {
        const uint16_t h = rng.f16(-9, -5);
        std::memcpy(&W.data[static_cast<size_t>(b * bt.bytes + off)], &h, 2);
      }
  } else if (f == Fmt::F32) {
    W.data.resize(static_cast<size_t>(4 * n));
    float* p = reinterpret_cast<float*>(W.data.data());
    for (int64_t i = 0; i < n; i++) p[i] = rng.uniform(-1, 1);
  } else if (f == Fmt::BF16 || f == Fmt::F16) {
    W.data.resize(static_cast<size_t>(2 * n));
    uint16_t* p = reinterpret_cast<uint16_t*>(W.data.data());
    for (int64_t i = 0; i < n; i++) {
      if (f == Fmt::F16) {
        p[i] = rng.f16(-6, 1);
      } else {
        const float v = rng.uniform(-1, 1);
        uint32_t u;
        std::memcpy(&u, &v, 4);
        p[i] = static_cast<uint16_t>(u >> 16);
      }
    }
  } else {
    const bool four = f == Fmt::Q4 || f == Fmt::Q4G;
    W.data.resize(static_cast<size_t>(four ? n / 2 : n));
    for (uint8_t& b : W.data) b = static_cast<uint8_t>(rng.next());
    const int64_t ns = (f == Fmt::Q4 || f == Fmt::Q8) ? rows : n / group;
    W.scales.resize(static_cast<size_t>(ns));
    for (float& s : W.scales) s = rng.uniform(0.001f, 0.02f);
    W.w.scales = W.scales.data();
  }
  W.w.data = W.data.data();
  return W;
}

// y = x · Wᵀ with the reference kernels.
void reference(const WView& w, const float* x, float* y, int64_t T, ThreadPool& pool, std::vector<char>& scratch) {
  if (is_block_fmt(w.fmt)) {
    matmul_blocks(w, x, y, T, BlockIsa{}, pool, scratch);
  } else if (w.fmt == Fmt::Q8G) {
    q8g_kernel(Isa::Scalar, w.group)(w, x, w.cols, y, w.rows, T, 0, w.rows);
  } else {
    matmul_rows_scalar(w, x, w.cols, y, w.rows, T, 0, w.rows);
  }
}

// The level's matmul, dispatched as addon.cc does. Returns false when the level has no kernel for w.
bool at_level(const Level& lv, const WView& w, const float* x, float* y, int64_t T, ThreadPool& pool,
              std::vector<char>& scratch) {
  if (lv.isa >= Isa::Neon) return arm::matmul(w, x, y, T, lv.isa, pool, scratch);
  if (is_block_fmt(w.fmt)) return matmul_blocks(w, x, y, T, BlockIsa{lv.isa, lv.vnni}, pool, scratch);
  if (w.fmt == Fmt::Q8G) {
    q8g_kernel(lv.isa, w.group)(w, x, w.cols, y, w.rows, T, 0, w.rows);
    return true;
  }
  if (lv.isa == Isa::Avx512 && avx512_supports(w)) {
    matmul_rows_avx512(w, x, w.cols, y, w.rows, T, 0, w.rows);
    return true;
  }
  if (lv.isa >= Isa::Avx2 && avx2_supports(w)) {
    matmul_rows_avx2(w, x, w.cols, y, w.rows, T, 0, w.rows);
    return true;
  }
  return false;
}

// x as the int8-activation kernels see it (arm::intq_supports at neon_dotprod / neon_i8mm; x86's VNNI / AVX2 int4
// path): per 32 columns (a partial last block over its own columns) d = amax / 127, q = x · (127 / amax) rounded
// half to even, both in f32; q · d back in f32. The scalar reference on this x is the same-rounding reference.
void quantize_scalar(const float* x, int64_t cols, int8_t* q, float* d) {
  for (int64_t b = 0; b * 32 < cols; b++) {
    const int64_t n = std::min<int64_t>(32, cols - 32 * b);
    float amax = 0.f;
    for (int64_t i = 0; i < n; i++) amax = std::max(amax, std::fabs(x[32 * b + i]));
    const float id = amax >= 1e-30f ? 127.f / amax : 0.f;
    d[b] = amax / 127.f;
    for (int64_t i = 0; i < n; i++) q[32 * b + i] = static_cast<int8_t>(std::nearbyint(x[32 * b + i] * id));
  }
}

std::vector<float> qdq(const std::vector<float>& x, int64_t T, int64_t cols) {
  std::vector<float> out(x.size());
  std::vector<int8_t> q(static_cast<size_t>(cols));
  std::vector<float> d(static_cast<size_t>((cols + 31) / 32));
  for (int64_t t = 0; t < T; t++) {
    quantize_scalar(x.data() + t * cols, cols, q.data(), d.data());
    for (int64_t c = 0; c < cols; c++) out[static_cast<size_t>(t * cols + c)] = q[static_cast<size_t>(c)] * d[static_cast<size_t>(c / 32)];
  }
  return out;
}

// Whether the level runs w on int8 activations (then the reference runs on qdq(x)).
bool int_acts(const Level& lv, const WView& w) { return lv.isa >= Isa::NeonDot && !is_block_fmt(w.fmt) && arm::intq_supports(w); }

// f32 → f16 bits, round to nearest even (written out here, independent of the kernels' fcvtn).
uint16_t to_f16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000);
  u &= 0x7fffffffu;
  if (u >= 0x7f800000u) return sign | 0x7c00 | (u > 0x7f800000u ? 0x200 : 0);
  if (u >= 0x477ff000u) return sign | 0x7c00;  // ≥ 65520: rounds to infinity
  if (u < 0x38800000u) return sign | static_cast<uint16_t>(std::nearbyint(std::fabs(f) * 16777216.f));  // < 2^-14: units of 2^-24
  return sign | static_cast<uint16_t>((u + 0xfffu + ((u >> 13) & 1) - (112u << 23)) >> 13);
}

// x as the FHM f16 path sees it (arm::round_f16_acts): per token scaled by 2^-k so that max|x| is in [2^14, 2^15)
// (|k| ≤ 120), rounded to f16, scaled back — exact but for the f16 rounding.
std::vector<float> f16_round(const std::vector<float>& x, int64_t T, int64_t cols) {
  std::vector<float> out(x.size());
  for (int64_t t = 0; t < T; t++) {
    const float* v = x.data() + t * cols;
    float amax = 0.f;
    for (int64_t c = 0; c < cols; c++) amax = std::fmax(amax, std::fabs(v[c]));
    int e = 0, k = 0;
    if (amax > 0.f && std::isfinite(amax)) std::frexp(amax, &e), k = std::min(120, std::max(-120, e - 15));
    for (int64_t c = 0; c < cols; c++)
      out[static_cast<size_t>(t * cols + c)] = std::ldexp(f16_to_f32(to_f16(std::ldexp(v[c], -k))), k);
  }
  return out;
}

// Whether the level runs f16 weights on f16 activations (FEAT_FHM; then the reference runs on f16_round(x)).
bool f16_acts(const Level& lv, const WView& w) { return lv.isa >= Isa::NeonDot && w.fmt == Fmt::F16 && arm::has_fhm(); }

// f16 × f16-rounded x against the plain f32 reference: the rounding of x costs ~2^-12 relative per product; on
// these inputs the normalized error stays below ~5e-4.
constexpr double kF16ActBound = 2e-3;

void check(const Level& lv, Report& rep, Fmt f, int64_t rows, int64_t cols, int64_t group, int64_t T, Rng& rng,
           ThreadPool& pool) {
  const Weight W = make_weight(f, rows, cols, group, rng);
  std::vector<float> x(static_cast<size_t>(T * cols));
  for (int64_t t = 0; t < T; t++) {  // per token a different range, so blocks' scales differ
    const float amp = rng.uniform(0.05f, 4.f);
    for (int64_t c = 0; c < cols; c++) x[static_cast<size_t>(t * cols + c)] = rng.uniform(-amp, amp);
  }
  std::vector<float> ref(static_cast<size_t>(T * rows)), got(ref.size(), NAN);
  std::vector<char> s1, s2;
  const std::vector<float> xr = int_acts(lv, W.w) ? qdq(x, T, cols) : f16_acts(lv, W.w) ? f16_round(x, T, cols) : x;
  reference(W.w, xr.data(), ref.data(), T, pool, s1);
  if (!at_level(lv, W.w, x.data(), got.data(), T, pool, s2)) return;
  char what[96];
  std::snprintf(what, sizeof what, "[%lld, %lld] group %lld T=%lld", static_cast<long long>(rows),
                static_cast<long long>(cols), static_cast<long long>(group), static_cast<long long>(T));
  rep.add(std::string("matmul.") + fmt_name(f), lv, norm_err(got.data(), ref.data(), got.size()), what);
}

// The FHM f16 path (levels neon_dotprod / neon_i8mm on a CPU with FEAT_FHM): odd shapes (cols % 8 tails, rows %
// 4), T = 1, 3, 17, tokens of very different magnitudes (beyond f16's range, and tiny) — against the scalar f16
// kernel on f16_round(x) at 1e-5, and against the plain f32 reference at kF16ActBound.
void check_f16_fhm(const Level& lv, Report& rep, Rng& rng, ThreadPool& pool) {
  const int64_t shapes[][2] = {{1, 1}, {7, 37}, {5, 64}, {13, 130}, {33, 200}, {6, 1029}, {64, 512}};
  for (const auto& sh : shapes)
    for (int64_t T : {1, 3, 17}) {
      const int64_t rows = sh[0], cols = sh[1];
      const Weight W = make_weight(Fmt::F16, rows, cols, 0, rng);
      std::vector<float> x(static_cast<size_t>(T * cols));
      for (int64_t t = 0; t < T; t++) {
        const float amp = t == 1 ? 3e5f : t == 2 ? 1e-6f : rng.uniform(0.05f, 4.f);  // > 65504; f16 subnormal range
        for (int64_t c = 0; c < cols; c++) x[static_cast<size_t>(t * cols + c)] = rng.uniform(-amp, amp);
      }
      std::vector<float> ref(static_cast<size_t>(T * rows)), ref32(ref.size()), got(ref.size(), NAN);
      std::vector<char> s1, s2;
      matmul_rows_scalar(W.w, f16_round(x, T, cols).data(), cols, ref.data(), rows, T, 0, rows);
      matmul_rows_scalar(W.w, x.data(), cols, ref32.data(), rows, T, 0, rows);
      if (!at_level(lv, W.w, x.data(), got.data(), T, pool, s2)) continue;
      char what[96];
      std::snprintf(what, sizeof what, "[%lld, %lld] T=%lld", static_cast<long long>(rows), static_cast<long long>(cols),
                    static_cast<long long>(T));
      // per token (their magnitudes differ by 10^11): the worst normalized error over the tokens
      double err = 0, err32 = 0;
      for (int64_t t = 0; t < T; t++) {
        err = std::max(err, norm_err(got.data() + t * rows, ref.data() + t * rows, static_cast<size_t>(rows)));
        err32 = std::max(err32, norm_err(got.data() + t * rows, ref32.data() + t * rows, static_cast<size_t>(rows)));
      }
      rep.add("matmul.f16_fhm", lv, err, what);
      rep.add("matmul.f16_fhm~f32", lv, err32, what, kF16ActBound);
    }
}

// The NEON activation quantizers must give the scalar quantizers' bytes (zero and tiny blocks, ties at .5).
void check_quantizers(const Level& lv, Report& rep, Rng& rng) {
  for (int64_t cols : {32, 96, 288, 544, 256, 768}) {
    std::vector<float> x(static_cast<size_t>(cols));
    for (float& v : x) v = rng.uniform(-3, 3);
    for (int i = 0; i < 32; i++) x[static_cast<size_t>(i)] = i == 0 ? 127.f : i - 15.5f;  // amax 127: x · id ties
    if (cols >= 96) std::fill(x.begin() + 32, x.begin() + 64, 0.f);                      // all-zero block
    if (cols >= 288) std::fill(x.begin() + 64, x.begin() + 96, 1e-38f);                  // 127 / amax overflows
    for (int k = 0; k < 2; k++) {
      const bool kq = k == 1;
      if (kq && cols % 256) continue;
      const int64_t bytes = kq ? kquant_act_bytes(cols) : legacy_act_bytes(cols);
      std::vector<char> a(static_cast<size_t>(bytes + 64), 1), b(a.size(), 2);
      char* pa = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(a.data()) + 63) & ~uintptr_t(63));
      char* pb = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(b.data()) + 63) & ~uintptr_t(63));
      std::memset(pa, 0, bytes), std::memset(pb, 0, bytes);  // Q8K's pad bytes are never written
      if (kq) kquant_quantize(x.data(), cols, pa, BlockIsa{}), arm::quantize_q8k(x.data(), cols, pb);
      else legacy_quantize(x.data(), cols, pa, BlockIsa{}), arm::quantize_legacy(x.data(), cols, pb);
      rep.add_exact(kq ? "quantize.q8_k" : "quantize.q8_0", lv, std::memcmp(pa, pb, bytes) == 0, "cols " + std::to_string(cols));
    }
  }
  // The int8-activation quantizer (q8_row / q4 paths): the scalar rule's int8 values and scales, in either order,
  // partial last blocks included.
  for (int64_t cols : {34, 96, 130, 288, 544}) {
    std::vector<float> x(static_cast<size_t>(cols));
    for (float& v : x) v = rng.uniform(-3, 3);
    for (int i = 0; i < 32; i++) x[static_cast<size_t>(i)] = i == 0 ? 127.f : i - 15.5f;
    if (cols >= 96) std::fill(x.begin() + 32, x.begin() + 64, 0.f);
    if (cols >= 288) std::fill(x.begin() + 64, x.begin() + 96, 1e-38f);
    const int64_t nc = (cols + 127) / 128, nb = (cols + 31) / 32;
    std::vector<int8_t> qs(static_cast<size_t>(nc * 128), 0), qa(qs.size(), 1);
    std::vector<float> ds(static_cast<size_t>(nc * 4), 0.f), da(ds.size(), 1.f);
    quantize_scalar(x.data(), cols, qs.data(), ds.data());
    for (int deint = 0; deint < 2; deint++) {
      arm::quantize_intq(x.data(), cols, nc, deint == 1, qa.data(), da.data());
      bool same = std::memcmp(ds.data(), da.data(), ds.size() * sizeof(float)) == 0;
      for (int64_t c = 0; c < nc * 128; c++) {  // stored position of column c (q4: per block, even then odd)
        const int64_t k = c % 32, at = deint ? c - k + (k % 2) * 16 + k / 2 : c;
        same = same && qa[static_cast<size_t>(at)] == (c < nb * 32 ? qs[static_cast<size_t>(c)] : 0);
      }
      rep.add_exact("quantize.intq", lv, same, "cols " + std::to_string(cols) + (deint ? " q4 order" : ""));
    }
  }
}

}  // namespace

int run_once(const Level& lv, const char* fmt, int64_t rows, int64_t cols, int64_t T) {
  int f = 0;
  while (f <= 16 && std::strcmp(fmt_name(static_cast<Fmt>(f)), fmt) != 0) f++;
  if (f > 16) return std::fprintf(stderr, "parity --run: unknown format '%s'\n", fmt), 2;
  Rng rng(7);
  ThreadPool pool(1);
  const Weight W = make_weight(static_cast<Fmt>(f), rows, cols, 32, rng);
  std::vector<float> x(static_cast<size_t>(T * cols)), y(static_cast<size_t>(T * rows));
  for (float& v : x) v = rng.uniform(-1, 1);
  std::vector<char> scratch;
  if (!at_level(lv, W.w, x.data(), y.data(), T, pool, scratch)) return std::fprintf(stderr, "no kernel\n"), 2;
  std::printf("ran %s [%lld, %lld] T=%lld at %s\n", fmt, static_cast<long long>(rows), static_cast<long long>(cols),
              static_cast<long long>(T), lv.name);
  return 0;
}

void run_matmul(const Level& lv, Report& rep) {
  Rng rng(1);
  if (lv.isa >= Isa::Neon) check_quantizers(lv, rep, rng);
  ThreadPool pool(2);  // the big shapes take the threaded path
  if (lv.isa >= Isa::NeonDot && arm::has_fhm()) check_f16_fhm(lv, rep, rng, pool);
  else if (lv.isa >= Isa::NeonDot) std::printf("skip matmul.f16_fhm at %s: the CPU has no FEAT_FHM\n", lv.name);
  struct Shape {
    int64_t rows, cols;
    std::vector<int64_t> groups;  // for q4_group / q8_group (must divide cols)
  };
  // q4_group's int8 paths at dotprod / i8mm: group 32 with a partial last 128-column chunk (160), 64, 128, 256
  const Shape fshapes[] = {{7, 34, {2, 17}},  {33, 130, {10, 26}}, {64, 512, {32, 128}},
                           {11, 160, {32}},   {9, 768, {64, 256}}};
  for (Fmt f : {Fmt::F32, Fmt::BF16, Fmt::F16, Fmt::Q8, Fmt::Q4, Fmt::Q4G, Fmt::Q8G})
    for (const Shape& s : fshapes) {
      const bool grouped = f == Fmt::Q4G || f == Fmt::Q8G;
      for (int64_t g : grouped ? s.groups : std::vector<int64_t>{0})
        for (int64_t T : {1, 5, 9}) {
          if (s.cols >= 512 && T == 9) continue;  // keep qemu time down
          check(lv, rep, f, s.rows, s.cols, g, T, rng, pool);
        }
    }
  // Legacy blocks: 1, 3 and 9 blocks per row (not a multiple of the 4-block activation layout), odd row counts
  // (the i8mm kernel takes rows in pairs) and T covering its 8- and 2-token tiles and a leftover token.
  for (Fmt f : {Fmt::Q4_0, Fmt::Q4_1, Fmt::Q5_0, Fmt::Q5_1, Fmt::Q8_0}) {
    for (int64_t rows : {1, 5, 18})
      for (int64_t cols : {32, 96, 288})
        for (int64_t T : {1, 2, 7, 11}) check(lv, rep, f, rows, cols, 0, T, rng, pool);
    check(lv, rep, f, 64, 512, 0, 4, rng, pool);
  }
  for (Fmt f : {Fmt::Q2_K, Fmt::Q3_K, Fmt::Q4_K, Fmt::Q5_K, Fmt::Q6_K}) {
    for (int64_t rows : {3, 6})
      for (int64_t cols : {256, 768})  // T = 7: two token pairs and an odd token in i8mm's 4-token passes
        for (int64_t T : {1, 2, 5, 7}) check(lv, rep, f, rows, cols, 0, T, rng, pool);
    check(lv, rep, f, 40, 512, 0, 4, rng, pool);
  }
}

}  // namespace xv
