// Shared pieces of the parity test binary (parity.cc): the level under test, the result table, random inputs.
#pragma once
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "../src/arm/arm.h"
#include "../src/blocks.h"
#include "../src/kernels.h"
#include "../src/pool.h"

namespace xv {

constexpr double kBound = 1e-5;  // normalized max|Δ| / max|ref|, as test/native/*.test.ts

struct Level {
  Isa isa;
  bool vnni;
  const char* name;
};

// Worst error per (kernel, level); a check fails when its error exceeds the bound (or is NaN).
class Report {
 public:
  void add(const std::string& kernel, const Level& lv, double err, const std::string& what, double bound = kBound);
  // Exact comparison (bytes): err 0 or 1.
  void add_exact(const std::string& kernel, const Level& lv, bool same, const std::string& what);
  // Prints the table and the summary; true when everything passed.
  bool finish() const;

 private:
  struct Cell {
    double worst = 0, bound = kBound;
    int checks = 0, failed = 0;
  };
  std::map<std::string, std::map<std::string, Cell>> cells_;
  std::vector<std::string> kernels_, levels_;
};

// xorshift64*: reproducible inputs, whatever the platform's <random>.
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  uint32_t next() {
    s ^= s >> 12, s ^= s << 25, s ^= s >> 27;
    return static_cast<uint32_t>((s * 0x2545F4914F6CDD1Dull) >> 32);
  }
  float uniform(float lo, float hi) { return lo + (hi - lo) * (next() >> 8) * (1.f / 16777216.f); }
  // A finite f16 of magnitude in [2^lo, 2^hi), random sign.
  uint16_t f16(int lo, int hi) {
    const uint32_t e = static_cast<uint32_t>(lo + 15 + static_cast<int>(next() % static_cast<uint32_t>(hi - lo)));
    return static_cast<uint16_t>(((next() & 1) << 15) | (e << 10) | (next() & 0x3ff));
  }
};

double norm_err(const float* got, const float* ref, size_t n);

// The kernel groups (cases_matmul.cc, cases_ops.cc).
void run_matmul(const Level& lv, Report& rep);
void run_ops(const Level& lv, Report& rep);
void run_kv(const Level& lv, Report& rep);
// One matmul (format by name, group 32 where grouped) at a level, nothing compared: for instruction counting.
int run_once(const Level& lv, const char* fmt, int64_t rows, int64_t cols, int64_t T);
inline void run_all(const Level& lv, Report& rep) {
  run_matmul(lv, rep);
  run_ops(lv, rep);
  run_kv(lv, rep);
}

}  // namespace xv
