// aarch64 NEON + dot-product MXFP4 x Q8_0 kernels. One table lookup (vqtbl1q_s8) turns 16 nibbles
// into the doubled E2M1 values {0, 1, 2, 3, 4, 6, 8, 12} x sign as int8; sdot then gives the exact
// block sum, scaled by d_act * 2^(e - 128) formed in that order (as ref::VecDotMxfp4Q8_0).
// Own helpers only (see x86_kernels.h).
#include <arm_neon.h>

#include <cstring>

#include "kernels/cpu/arm/arm_kernels.h"
#include "tensor/blocks.h"

namespace origami::cpu::arm {

namespace {

constexpr int8_t kE2M1x2[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

inline float H2F(uint16_t h) {
  __fp16 f;
  std::memcpy(&f, &h, 2);
  return static_cast<float>(f);
}

// 2^(e - 128) from the E8M0 byte's bits (exact; e = 0, 1 are float subnormals).
inline float E8M0Half(uint8_t e) {
  const uint32_t bits = e >= 2 ? static_cast<uint32_t>(e - 1) << 23 : (0x00200000u << e);
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// One block's integer dot product in 4 int32 lanes; element j is the low nibble of byte j, element
// j + 16 the high nibble.
inline int32x4_t DotBlock(const BlockMxfp4& x, const BlockQ8_0& y, int8x16_t lut) {
  const uint8x16_t raw = vld1q_u8(x.qs);
  const int8x16_t lo = vqtbl1q_s8(lut, vandq_u8(raw, vdupq_n_u8(0x0f)));
  const int8x16_t hi = vqtbl1q_s8(lut, vshrq_n_u8(raw, 4));
  return vdotq_s32(vdotq_s32(vdupq_n_s32(0), lo, vld1q_s8(y.qs)), hi, vld1q_s8(y.qs + 16));
}

}  // namespace

void VecDotMxfp4Neon(int64_t n, float* out, const void* w, const void* a) {
  const auto* x = static_cast<const BlockMxfp4*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(a);
  const int8x16_t lut = vld1q_s8(kE2M1x2);
  float32x4_t acc0 = vdupq_n_f32(0), acc1 = vdupq_n_f32(0);
  const int64_t nb = n / kQKMxfp4;
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    acc0 = vmlaq_n_f32(acc0, vcvtq_f32_s32(DotBlock(x[b], y[b], lut)), H2F(y[b].d) * E8M0Half(x[b].e));
    acc1 = vmlaq_n_f32(acc1, vcvtq_f32_s32(DotBlock(x[b + 1], y[b + 1], lut)),
                       H2F(y[b + 1].d) * E8M0Half(x[b + 1].e));
  }
  for (; b < nb; ++b)
    acc0 = vmlaq_n_f32(acc0, vcvtq_f32_s32(DotBlock(x[b], y[b], lut)), H2F(y[b].d) * E8M0Half(x[b].e));
  *out = vaddvq_f32(vaddq_f32(acc0, acc1));
}

// Four rows share each activation block's scale conversion.
void VecDotRowsMxfp4Neon(int64_t n, float* out, const void* w, size_t stride, int64_t rows, const void* a) {
  const auto* y = static_cast<const BlockQ8_0*>(a);
  const char* base = static_cast<const char*>(w);
  const int8x16_t lut = vld1q_s8(kE2M1x2);
  const int64_t nb = n / kQKMxfp4;
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    const BlockMxfp4* x[4];
    for (int k = 0; k < 4; ++k) x[k] = reinterpret_cast<const BlockMxfp4*>(base + (r + k) * stride);
    float32x4_t acc[4] = {vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0)};
    for (int64_t b = 0; b < nb; ++b) {
      const float dy = H2F(y[b].d);
      for (int k = 0; k < 4; ++k)
        acc[k] = vmlaq_n_f32(acc[k], vcvtq_f32_s32(DotBlock(x[k][b], y[b], lut)), dy * E8M0Half(x[k][b].e));
    }
    for (int k = 0; k < 4; ++k) out[r + k] = vaddvq_f32(acc[k]);
  }
  for (; r < rows; ++r) VecDotMxfp4Neon(n, out + r, base + r * stride, a);
}

}  // namespace origami::cpu::arm
