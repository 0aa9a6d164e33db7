// K-quant kernels at the arm64 level 'i8mm' (kquants.inc has the code).
#include "../kernels.h"
#if XV_ARM
#include <arm_neon.h>

#include <algorithm>
#include <cstring>

#include "../convert.h"
#include "../kquants.h"
#include "arm.h"
#define XV_ARM_TARGET 2
#include "target_begin.inc"
#define XV_LEVEL 2
#define XV_KQUANT_ENTRY kquant_rows_i8mm
#include "kquants.inc"
#include "target_end.inc"
#endif
