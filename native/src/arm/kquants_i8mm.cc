// K-quant kernels at the arm64 level 'i8mm' (kquants.inc has the code).
#include "../kernels.h"
#if XV_ARM
#include <arm_neon.h>

#include <algorithm>
#include <cstring>

#include "../convert.h"
#include "../kquants.h"
#include "arm.h"
// Only the code below (after the headers) is built for dotprod + i8mm: by the -march of its binding.gyp
// target, or, compiled without that flag, by this pragma.
#if !defined(__ARM_FEATURE_DOTPROD) || !defined(__ARM_FEATURE_MATMUL_INT8)
#define XV_TARGET_PRAGMA 1
#else
#define XV_TARGET_PRAGMA 0
#endif
#if XV_TARGET_PRAGMA && defined(__clang__)
#pragma clang attribute push(__attribute__((target("dotprod,i8mm"))), apply_to = function)
#elif XV_TARGET_PRAGMA
#pragma GCC target("arch=armv8.2-a+dotprod+i8mm")
#endif
#define XV_LEVEL 2
#define XV_KQUANT_ENTRY kquant_rows_i8mm
#include "kquants.inc"
#if XV_TARGET_PRAGMA && defined(__clang__)
#pragma clang attribute pop
#endif
#endif
