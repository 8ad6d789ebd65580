// Declarations of the aarch64 NEON (+dotprod) kernels in *_neon.cpp; dispatch.cpp registers them
// only when getauxval reports the dot-product extension.
#pragma once

#include <cstddef>
#include <cstdint>

namespace origami::cpu::arm {

void VecDotQ4_0Neon(int64_t n, float* out, const void* w, const void* a);
void VecDotQ8_0Neon(int64_t n, float* out, const void* w, const void* a);
void VecDotRowsQ4_0Neon(int64_t n, float* out, const void* w, size_t stride, int64_t rows, const void* a);
void VecDotRowsQ8_0Neon(int64_t n, float* out, const void* w, size_t stride, int64_t rows, const void* a);
// MXFP4 x Q8_0 (mxfp4_neon.cpp).
void VecDotMxfp4Neon(int64_t n, float* out, const void* w, const void* a);
void VecDotRowsMxfp4Neon(int64_t n, float* out, const void* w, size_t stride, int64_t rows, const void* a);
// Attention over one head per KV type (attn_neon.cpp; KernelTable::attn).
void AttnScoresF32Neon(const float* q, const void* const* k, int64_t n, int64_t hd, float scale, float* s);
void AttnValuesF32Neon(const float* p, const void* const* v, int64_t n, int64_t hd, float* out);
void AttnScoresF16Neon(const float* q, const void* const* k, int64_t n, int64_t hd, float scale, float* s);
void AttnValuesF16Neon(const float* p, const void* const* v, int64_t n, int64_t hd, float* out);
void AttnScoresBF16Neon(const float* q, const void* const* k, int64_t n, int64_t hd, float scale, float* s);
void AttnValuesBF16Neon(const float* p, const void* const* v, int64_t n, int64_t hd, float* out);
void AttnScoresQ8_0Neon(const float* q, const void* const* k, int64_t n, int64_t hd, float scale, float* s);
void AttnValuesQ8_0Neon(const float* p, const void* const* v, int64_t n, int64_t hd, float* out);
void AttnScoresQ4_0Neon(const float* q, const void* const* k, int64_t n, int64_t hd, float scale, float* s);
void AttnValuesQ4_0Neon(const float* p, const void* const* v, int64_t n, int64_t hd, float* out);

}  // namespace origami::cpu::arm
