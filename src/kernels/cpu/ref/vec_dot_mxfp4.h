// The scalar MXFP4 dot products: MXFP4 weights x float32 activations (the exact oracle) and
// MXFP4 x Q8_0 (the activation type the kernel table pairs MXFP4 with, as ggml does; the twin of
// the fast kernels).
#pragma once
#include <cstdint>
namespace origami::cpu::ref {
void VecDotMxfp4(int64_t n, float* out, const void* w, const void* a);
void VecDotMxfp4Q8_0(int64_t n, float* out, const void* w, const void* a);
// 2^(e - 128) for an E8M0 byte, built from its bits (exact; e = 0, 1 give float subnormals).
float E8M0Half(uint8_t e);
}  // namespace origami::cpu::ref
