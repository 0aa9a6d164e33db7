// The parity test's result table (parity.h).
#include <algorithm>
#include <cstdio>

#include "parity.h"

namespace xv {

double norm_err(const float* got, const float* ref, size_t n) {
  double dmax = 0, rmax = 0;
  for (size_t i = 0; i < n; i++) {
    const double d = std::fabs(static_cast<double>(got[i]) - ref[i]);
    if (!(d == d)) return NAN;
    dmax = std::max(dmax, d);
    rmax = std::max(rmax, std::fabs(static_cast<double>(ref[i])));
  }
  return rmax > 0 ? dmax / rmax : dmax;
}

void Report::add(const std::string& kernel, const Level& lv, double err, const std::string& what, double bound) {
  if (std::find(kernels_.begin(), kernels_.end(), kernel) == kernels_.end()) kernels_.push_back(kernel);
  if (std::find(levels_.begin(), levels_.end(), lv.name) == levels_.end()) levels_.push_back(lv.name);
  Cell& c = cells_[kernel][lv.name];
  const bool ok = err == err && err <= bound;
  c.bound = bound;
  c.checks++;
  if (!ok) {
    c.failed++;
    std::printf("FAIL %s %s %s: error %.3g > %.0e\n", kernel.c_str(), lv.name, what.c_str(), err, bound);
  }
  c.worst = err == err ? std::max(c.worst, err) : INFINITY;
}

void Report::add_exact(const std::string& kernel, const Level& lv, bool same, const std::string& what) {
  add(kernel, lv, same ? 0.0 : 1.0, what + (same ? "" : " (bytes differ)"));
}

bool Report::finish() const {
  int checks = 0, failed = 0;
  std::printf("\n%-14s", "kernel");
  for (const std::string& l : levels_) std::printf(" %-22s", l.c_str());
  std::printf("\n");
  for (const std::string& k : kernels_) {
    std::printf("%-14s", k.c_str());
    for (const std::string& l : levels_) {
      const auto it = cells_.at(k).find(l);
      if (it == cells_.at(k).end()) {
        std::printf(" %-22s", "-");
        continue;
      }
      const Cell& c = it->second;
      char cell[64];
      std::snprintf(cell, sizeof cell, "%s %d/%d %.1e", c.failed ? "FAIL" : "pass", c.checks - c.failed, c.checks, c.worst);
      std::printf(" %-22s", cell);
      checks += c.checks, failed += c.failed;
    }
    std::printf("\n");
  }
  // One machine-readable line per cell, for test/native/arm64.test.ts.
  for (const std::string& k : kernels_)
    for (const auto& [l, c] : cells_.at(k))
      std::printf("RESULT %s %s %s %d %d %.3g\n", k.c_str(), l.c_str(), c.failed ? "fail" : "pass", c.checks, c.failed, c.worst);
  std::printf("parity: %d checks, %d failed\n", checks, failed);
  return failed == 0;
}

}  // namespace xv
