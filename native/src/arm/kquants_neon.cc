// K-quant kernels at the arm64 level 'neon' (kquants.inc has the code).
#include "../kernels.h"
#if XV_ARM
#include <arm_neon.h>

#include <algorithm>
#include <cstring>

#include "../convert.h"
#include "../kquants.h"
#include "arm.h"
#define XV_LEVEL 0
#define XV_KQUANT_ENTRY kquant_rows_neon
#include "kquants.inc"
#endif
