// The scalar MXFP4 dot product (MXFP4 weights x float32 activations).
#pragma once
#include <cstdint>
namespace origami::cpu::ref {
void VecDotMxfp4(int64_t n, float* out, const void* w, const void* a);
}  // namespace origami::cpu::ref
