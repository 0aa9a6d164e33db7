// K-quant kernels at the arm64 level 'dot' (kquants.inc has the code).
#include "../kernels.h"
#if XV_ARM
#include <arm_neon.h>

#include <algorithm>
#include <cstring>

#include "../convert.h"
#include "../kquants.h"
#include "arm.h"
#define XV_ARM_TARGET 1
#include "target_begin.inc"
#define XV_LEVEL 1
#define XV_KQUANT_ENTRY kquant_rows_dot
#include "kquants.inc"
#include "target_end.inc"
#endif
