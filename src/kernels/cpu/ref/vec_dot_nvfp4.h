// The scalar NVFP4 x Q8_0 dot product: the activation type the kernel table pairs NVFP4 with (as
// ggml does), and the twin of the fast kernels.
#pragma once
#include <cstdint>
namespace origami::cpu::ref {
void VecDotNvfp4Q8_0(int64_t n, float* out, const void* w, const void* a);
}  // namespace origami::cpu::ref
