// The int8-activation q8_row / q4_row / q4_group kernels at the arm64 level 'dot' (intq.inc has the code).
#include "../kernels.h"
#if XV_ARM
#include <arm_neon.h>

#include <cstring>

#include "arm.h"
// Only the code below (after the headers) is built for dotprod: by the -march of its binding.gyp
// target, or, compiled without that flag, by this pragma.
#if !defined(__ARM_FEATURE_DOTPROD)
#define XV_TARGET_PRAGMA 1
#else
#define XV_TARGET_PRAGMA 0
#endif
#if XV_TARGET_PRAGMA && defined(__clang__)
#pragma clang attribute push(__attribute__((target("dotprod"))), apply_to = function)
#elif XV_TARGET_PRAGMA
#pragma GCC target("arch=armv8.2-a+dotprod")
#endif
#define XV_LEVEL 1
#define XV_INTQ_ENTRY intq_rows_dot
#include "intq.inc"
#if XV_TARGET_PRAGMA && defined(__clang__)
#pragma clang attribute pop
#endif
#endif
