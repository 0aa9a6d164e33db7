// The int8-activation q8_row / q4_row / q4_group kernels at the arm64 level 'i8mm' (intq.inc has the code).
#include "../kernels.h"
#if XV_ARM
#include <arm_neon.h>

#include <cstring>

#include "arm.h"
#define XV_ARM_TARGET 2
#include "target_begin.inc"
#define XV_LEVEL 2
#define XV_INTQ_ENTRY intq_rows_i8mm
#include "intq.inc"
#include "target_end.inc"
#endif
