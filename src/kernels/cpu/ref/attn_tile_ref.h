// Scalar twins of the flash (online-softmax) attention kernels: the block converters per KV type
// and the float tile kernels (kernels.h, AttnKernels::keys / rows and AttnTileKernels).
#pragma once

#include <cstdint>

#include "kernels/cpu/kernels.h"

namespace origami::cpu::ref {

// The converters of one KV type (F32, F16, BF16, Q8_0, Q4_0): the dtype table's to_float per row.
AttnConvertFn AttnKeysRef(DType type);
AttnConvertFn AttnRowsRef(DType type);
// The same by name (the SIMD forms fall back to them for shapes off their grid).
#define ORIGAMI_ATTN_REF(Name)                                                                   \
  void AttnKeys##Name(const void* const* rows, int64_t n, int64_t hd, float* dst, int64_t ld); \
  void AttnRows##Name(const void* const* rows, int64_t n, int64_t hd, float* dst, int64_t ld);
ORIGAMI_ATTN_REF(F32)
ORIGAMI_ATTN_REF(F16)
ORIGAMI_ATTN_REF(BF16)
ORIGAMI_ATTN_REF(Q8_0)
ORIGAMI_ATTN_REF(Q4_0)
#undef ORIGAMI_ATTN_REF
void AttnTileScores(const float* q, int rows, const float* kt, int64_t ld, int64_t m, int64_t hd,
                    float scale, float* s, int64_t ld_s);
float AttnExpStep(float* s, int64_t n, float* m);
void AttnRowValues(const float* p, const float* v, int64_t n, int64_t hd, float* out);

}  // namespace origami::cpu::ref
