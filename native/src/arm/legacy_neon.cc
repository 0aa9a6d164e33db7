// Legacy GGUF block kernels at the arm64 level 'neon' (legacy.inc has the code).
#include "../kernels.h"
#if XV_ARM
#include <arm_neon.h>

#include <cstring>

#include "../convert.h"
#include "arm.h"
#define XV_LEVEL 0
#define XV_LEGACY_ENTRY legacy_rows_neon
#include "legacy.inc"
#endif
