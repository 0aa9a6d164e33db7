// Legacy block kernels on AVX-512 VNNI (placeholder until the vector kernels land: the scalar ones run).
#include "blocks.h"
#if XV_X86
namespace xv {
BlockRowsFn legacy_rows_vnni(Fmt) { return nullptr; }
}  // namespace xv
#endif
