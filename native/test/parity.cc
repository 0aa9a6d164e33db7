// Native-kernel parity test (C++, no Node): every kernel at every vector level this CPU offers against the
// scalar reference kernels, on random inputs and odd shapes, T = 1 and T > 1. Prints one RESULT line per kernel ×
// level and a table, and exits 1 if any check fails.
//
//   parity [--levels a,b,…]   levels: neon, neon_dotprod, neon_i8mm (arm64); avx2, avx512, avx512_vnni (x86).
//                             Default: every level the CPU reports.
//   parity --run FORMAT ROWS COLS T LEVEL   one matmul, no comparison (scripts/test-arm64.sh counts its
//                             instructions under qemu)
//
// Bounds, as the x86 parity tests (test/native/*.test.ts), normalized max|Δ| / max|ref|: 1e-5 everywhere. The
// integer (GGUF block) paths compare with the scalar kernels on the same quantized activations, so only the f32
// summation order differs; kvWrite must store the scalar kernel's bytes exactly.
// Built by scripts/test-arm64.sh (cross, run under qemu-aarch64 once per CPU model) or natively:
//   g++ -std=c++17 -O2 -pthread -Inative/src native/test/parity.cc native/test/cases.cc <kernel sources>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "parity.h"

using namespace xv;

namespace {

struct LevelName {
  Isa isa;
  bool vnni;
  const char* name;
};

std::vector<LevelName> available() {
  std::vector<LevelName> v;
  CpuCaps c;
#if XV_X86 && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  c.avx2_fma_f16c = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  c.avx512 = c.avx2_fma_f16c && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  c.avx512_vnni = c.avx512 && __builtin_cpu_supports("avx512vnni");
#endif
  arm::detect(c);
  if (c.avx2_fma_f16c) v.push_back({Isa::Avx2, false, "avx2"});
  if (c.avx512) v.push_back({Isa::Avx512, false, "avx512"});
  if (c.avx512_vnni) v.push_back({Isa::Avx512, true, "avx512_vnni"});
  if (c.neon) v.push_back({Isa::Neon, false, "neon"});
  if (c.neon_dot) v.push_back({Isa::NeonDot, false, "neon_dotprod"});
  if (c.neon_i8mm) v.push_back({Isa::NeonI8mm, false, "neon_i8mm"});
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<LevelName> levels = available();
  if (argc == 7 && std::strcmp(argv[1], "--run") == 0) {  // --run FORMAT ROWS COLS T LEVEL
    for (const LevelName& l : levels)
      if (std::strcmp(l.name, argv[6]) == 0)
        return run_once(Level{l.isa, l.vnni, l.name}, argv[2], std::atoll(argv[3]), std::atoll(argv[4]), std::atoll(argv[5]));
    std::fprintf(stderr, "parity: level '%s' is not supported on this CPU\n", argv[6]);
    return 2;
  }
  for (int i = 1; i < argc; i++) {
    if (std::strcmp(argv[i], "--levels") == 0 && i + 1 < argc) {
      const std::string want = std::string(",") + argv[++i] + ",";
      std::vector<LevelName> keep;
      for (const LevelName& l : levels)
        if (want.find(std::string(",") + l.name + ",") != std::string::npos) keep.push_back(l);
      for (size_t p = 1; p < want.size();) {  // every asked-for level must exist on this CPU
        const size_t q = want.find(',', p);
        const std::string n = want.substr(p, q - p);
        bool found = false;
        for (const LevelName& l : keep) found = found || n == l.name;
        if (!n.empty() && !found) {
          std::fprintf(stderr, "parity: level '%s' is not supported on this CPU\n", n.c_str());
          return 2;
        }
        p = q + 1;
      }
      levels = keep;
    } else {
      std::fprintf(stderr, "usage: parity [--levels a,b,...]\n");
      return 2;
    }
  }
  std::printf("levels:");
  for (const LevelName& l : levels) std::printf(" %s", l.name);
  std::printf("\n");
  if (levels.empty()) {
    std::printf("parity: no vector level on this CPU; nothing to compare\n");
    return 0;
  }
  Report rep;
  for (const LevelName& l : levels) run_all(Level{l.isa, l.vnni, l.name}, rep);
  return rep.finish() ? 0 : 1;
}
