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

}  // namespace origami::cpu::arm
