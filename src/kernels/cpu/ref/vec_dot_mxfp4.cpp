// Scalar MXFP4 x F32 dot product: the oracle for any fast MXFP4 kernel. Each block's 32 E2M1
// values (doubled integers) are summed against the activations in float, then scaled once by the
// block's 2^(e - 128); that scaling is exact, so this equals dequantize-then-dot up to the order
// of the float sums.
#include "kernels/cpu/ref/vec_dot_mxfp4.h"

#include <cmath>

#include "tensor/blocks.h"

namespace origami::cpu::ref {

void VecDotMxfp4(int64_t n, float* out, const void* w, const void* a) {
  static constexpr int8_t kE2M1x2[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
  const auto* b = static_cast<const BlockMxfp4*>(w);
  const auto* x = static_cast<const float*>(a);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQKMxfp4; ++i) {
    float s = 0.0f;
    for (int j = 0; j < 16; ++j)
      s += kE2M1x2[b[i].qs[j] & 0x0F] * x[i * 32 + j] + kE2M1x2[b[i].qs[j] >> 4] * x[i * 32 + j + 16];
    sum += s * std::ldexp(1.0f, static_cast<int>(b[i].e) - 128);
  }
  *out = sum;
}

}  // namespace origami::cpu::ref
