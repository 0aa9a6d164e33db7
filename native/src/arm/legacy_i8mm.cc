// Legacy GGUF block kernels at the arm64 level 'i8mm' (legacy.inc has the code).
#include "../kernels.h"
#if XV_ARM
#include <arm_neon.h>

#include <cstring>

#include "../convert.h"
#include "arm.h"
#define XV_ARM_TARGET 2
#include "target_begin.inc"
#define XV_LEVEL 2
#define XV_LEGACY_ENTRY legacy_rows_i8mm
#include "legacy.inc"
#include "target_end.inc"
#endif
