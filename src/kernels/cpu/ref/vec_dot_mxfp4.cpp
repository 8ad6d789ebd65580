// Scalar MXFP4 dot products. MXFP4 x F32: each block's 32 E2M1 values (doubled integers) are summed
// against the activations in float, then scaled once by the block's 2^(e - 128); that scaling is
// exact, so this equals dequantize-then-dot up to the order of the float sums.
// MXFP4 x Q8_0: the doubled E2M1 values are integers in [-12, 12], so each block is an exact int32
// dot product with the int8 activations, scaled by (d_act * 2^(e - 128)) in that association: the
// fast kernels form the same product, so overflow to Inf happens alike in both.
#include "kernels/cpu/ref/vec_dot_mxfp4.h"

#include <cmath>
#include <cstring>

#include "tensor/blocks.h"
#include "util/fp16.h"

namespace origami::cpu::ref {

namespace {
constexpr int8_t kE2M1x2[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
}  // namespace

float E8M0Half(uint8_t e) {
  // e >= 2: a normal float with biased exponent e - 1; e = 1, 0: the subnormals 2^-127, 2^-128.
  const uint32_t bits = e >= 2 ? static_cast<uint32_t>(e - 1) << 23 : (0x00200000u << e);
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

void VecDotMxfp4(int64_t n, float* out, const void* w, const void* a) {
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

void VecDotMxfp4Q8_0(int64_t n, float* out, const void* w, const void* a) {
  const auto* x = static_cast<const BlockMxfp4*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(a);
  float acc = 0.0f;
  for (int64_t b = 0; b < n / kQKMxfp4; ++b) {
    int32_t isum = 0;
    for (int j = 0; j < 16; ++j) {
      isum += kE2M1x2[x[b].qs[j] & 0x0F] * y[b].qs[j];
      isum += kE2M1x2[x[b].qs[j] >> 4] * y[b].qs[j + 16];
    }
    acc += (Fp16ToFp32(y[b].d) * E8M0Half(x[b].e)) * static_cast<float>(isum);
  }
  *out = acc;
}

}  // namespace origami::cpu::ref
