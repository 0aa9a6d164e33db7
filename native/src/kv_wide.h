// The wide attention tile's state (kv.cc's prefill kernel), shared by kv.cc's x86 tiles and src/arm/kv_neon.cc.
#pragma once
#include <cstdint>

namespace xv {

// A wide tile's state, rows in lanes (R = lanes · RV).
struct Wide {
  const float* QT;     // (hd, R): scale · q, transposed; rows past the tile's end are zero
  float* OT;           // (hdp, R): unnormalized output, transposed
  float* ST;           // (kChunk, R): scores, then probabilities
  float* m;            // (R) running max (−inf before the row's first key)
  float* l;            // (R) running sum
  float* corr;         // (R) this chunk's rescale factor exp(m_old − m_new)
  const int32_t* lim;  // (R) the last key position each row sees (causal)
  int64_t hd, hdp;
  // Cache lines of the next chunk to request while this one is computed, one per score-loop step: spread out
  // like this they overlap with the FMAs (a burst of a few hundred only queues up behind the fill buffers).
  const uint8_t* const* pf;
  int64_t npf;
};

}  // namespace xv
