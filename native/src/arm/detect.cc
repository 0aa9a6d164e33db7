// arm64 feature detection. Linux: the kernel's hardware capability bits (getauxval), which also hold under
// qemu-user, whose -cpu model sets them. macOS: the hw.optional.arm.FEAT_* sysctls. Advanced SIMD itself is
// mandatory on arm64, so `neon` is simply true there.
#include "arm.h"

#if XV_ARM && defined(__linux__)
#include <sys/auxv.h>
#endif
#if XV_ARM && defined(__APPLE__)
#include <sys/sysctl.h>
#endif

namespace xv {
namespace arm {

#if XV_ARM && defined(__APPLE__)
static bool sysctl_flag(const char* name) {
  int v = 0;
  size_t n = sizeof v;
  return sysctlbyname(name, &v, &n, nullptr, 0) == 0 && v != 0;
}
#endif

void detect(CpuCaps& c) {
#if XV_ARM
  c.neon = true;
#if defined(__linux__)
  // Bit numbers from the Linux arm64 ABI (asm/hwcap.h), spelled out so old headers still build.
  const unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);
  c.neon_fp16 = (hw & (1ul << 10)) != 0;  // HWCAP_ASIMDHP
  c.neon_dot = (hw & (1ul << 20)) != 0;   // HWCAP_ASIMDDP
  c.neon_i8mm = (hw2 & (1ul << 13)) != 0; // HWCAP2_I8MM
#elif defined(__APPLE__)
  c.neon_fp16 = sysctl_flag("hw.optional.arm.FEAT_FP16");
  c.neon_dot = sysctl_flag("hw.optional.arm.FEAT_DotProd");
  c.neon_i8mm = sysctl_flag("hw.optional.arm.FEAT_I8MM");
#endif
  // The i8mm kernels fall back to the dotprod ones for decode: only offer i8mm together with dotprod.
  c.neon_i8mm = c.neon_i8mm && c.neon_dot;
#else
  (void)c;
#endif
}

bool has_fhm() {
#if XV_ARM && defined(__linux__)
  static const bool v = (getauxval(AT_HWCAP) & (1ul << 23)) != 0;  // HWCAP_ASIMDFHM
  return v;
#elif XV_ARM && defined(__APPLE__)
  static const bool v = sysctl_flag("hw.optional.arm.FEAT_FHM");
  return v;
#else
  return false;
#endif
}

}  // namespace arm
}  // namespace xv
