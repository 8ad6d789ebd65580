// aarch64 NEON + dot-product kernels: Q4_0 and Q8_0 against Q8_0 with sdot (vdotq_s32).
// Intrinsics and plain loops only (no inline functions from shared headers, see x86_kernels.h).
#include <arm_neon.h>

#include <cstring>

#include "kernels/cpu/arm/arm_kernels.h"
#include "tensor/blocks.h"

namespace origami::cpu::arm {

namespace {

inline float H2F(uint16_t h) {
  __fp16 f;
  std::memcpy(&f, &h, 2);
  return static_cast<float>(f);
}

// (q - 8) * qy summed into 4 int32 lanes for one Q4_0 block.
inline int32x4_t DotQ4(const BlockQ4_0& x, const BlockQ8_0& y) {
  const uint8x16_t raw = vld1q_u8(x.qs);
  const int8x16_t lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(raw, vdupq_n_u8(0x0f))), vdupq_n_s8(8));
  const int8x16_t hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(raw, 4)), vdupq_n_s8(8));
  return vdotq_s32(vdotq_s32(vdupq_n_s32(0), lo, vld1q_s8(y.qs)), hi, vld1q_s8(y.qs + 16));
}

inline int32x4_t DotQ8(const BlockQ8_0& x, const BlockQ8_0& y) {
  return vdotq_s32(vdotq_s32(vdupq_n_s32(0), vld1q_s8(x.qs), vld1q_s8(y.qs)), vld1q_s8(x.qs + 16),
                   vld1q_s8(y.qs + 16));
}

}  // namespace

void VecDotQ4_0Neon(int64_t n, float* out, const void* w, const void* a) {
  const auto* x = static_cast<const BlockQ4_0*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(a);
  float32x4_t acc0 = vdupq_n_f32(0), acc1 = vdupq_n_f32(0);
  const int64_t nb = n / kQK4_0;
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    acc0 = vmlaq_n_f32(acc0, vcvtq_f32_s32(DotQ4(x[b], y[b])), H2F(x[b].d) * H2F(y[b].d));
    acc1 = vmlaq_n_f32(acc1, vcvtq_f32_s32(DotQ4(x[b + 1], y[b + 1])), H2F(x[b + 1].d) * H2F(y[b + 1].d));
  }
  if (b < nb) acc0 = vmlaq_n_f32(acc0, vcvtq_f32_s32(DotQ4(x[b], y[b])), H2F(x[b].d) * H2F(y[b].d));
  *out = vaddvq_f32(vaddq_f32(acc0, acc1));
}

void VecDotQ8_0Neon(int64_t n, float* out, const void* w, const void* a) {
  const auto* x = static_cast<const BlockQ8_0*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(a);
  float32x4_t acc0 = vdupq_n_f32(0), acc1 = vdupq_n_f32(0);
  const int64_t nb = n / kQK8_0;
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    acc0 = vmlaq_n_f32(acc0, vcvtq_f32_s32(DotQ8(x[b], y[b])), H2F(x[b].d) * H2F(y[b].d));
    acc1 = vmlaq_n_f32(acc1, vcvtq_f32_s32(DotQ8(x[b + 1], y[b + 1])), H2F(x[b + 1].d) * H2F(y[b + 1].d));
  }
  if (b < nb) acc0 = vmlaq_n_f32(acc0, vcvtq_f32_s32(DotQ8(x[b], y[b])), H2F(x[b].d) * H2F(y[b].d));
  *out = vaddvq_f32(vaddq_f32(acc0, acc1));
}

// Two rows per pass share the activation loads.
void VecDotRowsQ4_0Neon(int64_t n, float* out, const void* w, size_t stride, int64_t rows, const void* a) {
  const char* base = static_cast<const char*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(a);
  const int64_t nb = n / kQK4_0;
  int64_t r = 0;
  for (; r + 2 <= rows; r += 2) {
    const auto* x0 = reinterpret_cast<const BlockQ4_0*>(base + r * stride);
    const auto* x1 = reinterpret_cast<const BlockQ4_0*>(base + (r + 1) * stride);
    float32x4_t acc0 = vdupq_n_f32(0), acc1 = vdupq_n_f32(0);
    for (int64_t b = 0; b < nb; ++b) {
      const float dy = H2F(y[b].d);
      acc0 = vmlaq_n_f32(acc0, vcvtq_f32_s32(DotQ4(x0[b], y[b])), H2F(x0[b].d) * dy);
      acc1 = vmlaq_n_f32(acc1, vcvtq_f32_s32(DotQ4(x1[b], y[b])), H2F(x1[b].d) * dy);
    }
    out[r] = vaddvq_f32(acc0);
    out[r + 1] = vaddvq_f32(acc1);
  }
  for (; r < rows; ++r) VecDotQ4_0Neon(n, out + r, base + r * stride, a);
}

void VecDotRowsQ8_0Neon(int64_t n, float* out, const void* w, size_t stride, int64_t rows, const void* a) {
  const char* base = static_cast<const char*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(a);
  const int64_t nb = n / kQK8_0;
  int64_t r = 0;
  for (; r + 2 <= rows; r += 2) {
    const auto* x0 = reinterpret_cast<const BlockQ8_0*>(base + r * stride);
    const auto* x1 = reinterpret_cast<const BlockQ8_0*>(base + (r + 1) * stride);
    float32x4_t acc0 = vdupq_n_f32(0), acc1 = vdupq_n_f32(0);
    for (int64_t b = 0; b < nb; ++b) {
      const float dy = H2F(y[b].d);
      acc0 = vmlaq_n_f32(acc0, vcvtq_f32_s32(DotQ8(x0[b], y[b])), H2F(x0[b].d) * dy);
      acc1 = vmlaq_n_f32(acc1, vcvtq_f32_s32(DotQ8(x1[b], y[b])), H2F(x1[b].d) * dy);
    }
    out[r] = vaddvq_f32(acc0);
    out[r + 1] = vaddvq_f32(acc1);
  }
  for (; r < rows; ++r) VecDotQ8_0Neon(n, out + r, base + r * stride, a);
}

}  // namespace origami::cpu::arm
