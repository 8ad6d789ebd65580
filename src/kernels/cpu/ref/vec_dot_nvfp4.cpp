// Scalar NVFP4 x Q8_0. One NVFP4 block (64 elements) spans two Q8_0 blocks: sub-block s (16
// elements) reads activation block 2 * ib + s / 2 from element (s % 2) * 16. The doubled E2M1
// values are integers in [-12, 12], so each sub-block is an exact int32 dot product with the int8
// activations, scaled by (ue4m3(d[s]) / 2 * d_act) in that association: the fast kernels form the
// same product, so overflow to Inf (impossible here: both factors are bounded) and rounding agree.
#include "kernels/cpu/ref/vec_dot_nvfp4.h"

#include "tensor/blocks.h"
#include "tensor/nvfp4.h"
#include "util/fp16.h"

namespace origami::cpu::ref {

void VecDotNvfp4Q8_0(int64_t n, float* out, const void* w, const void* a) {
  const auto* x = static_cast<const BlockNvfp4*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(a);
  float acc = 0.0f;
  for (int64_t ib = 0; ib < n / kQKNvfp4; ++ib) {
    for (int s = 0; s < 4; ++s) {
      const BlockQ8_0& ya = y[2 * ib + s / 2];
      const int8_t* q = ya.qs + (s % 2) * 16;
      int32_t isum = 0;
      for (int j = 0; j < 8; ++j) {
        isum += kNvfp4Values[x[ib].qs[s * 8 + j] & 0x0F] * q[j];
        isum += kNvfp4Values[x[ib].qs[s * 8 + j] >> 4] * q[j + 8];
      }
      acc += (Ue4m3Half(x[ib].d[s]) * Fp16ToFp32(ya.d)) * static_cast<float>(isum);
    }
  }
  *out = acc;
}

}  // namespace origami::cpu::ref
