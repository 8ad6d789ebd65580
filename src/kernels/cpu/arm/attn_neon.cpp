// NEON forms of attention's per-head loops (KernelTable::attn, per KV type) for the Grace CPU: the
// scores (scale * q . k_j) and the weighted sum of value rows, over paged rows in their stored
// type. As in x86/ops_avx2.cpp each type is a loader (here of 4 floats at element i of a row) and
// the loops are written once: four score rows share one reduction, the weighted sum keeps 32 output
// floats in registers per pass. Head sizes off the 4-float grid use the portable forms.
#include <arm_neon.h>

#include <cstring>

#include "kernels/cpu/arm/arm_kernels.h"

namespace origami::cpu {
// The portable forms (ops.h); declared here so this file stays free of ops.h's includes.
void AttnScores(const float* q, const void* const* k, int64_t n, int64_t hd, float scale, float* s);
void AttnValues(const float* p, const void* const* v, int64_t n, int64_t hd, float* out);
void AttnScoresF16(const float* q, const void* const* k, int64_t n, int64_t hd, float scale,
                   float* s);
void AttnValuesF16(const float* p, const void* const* v, int64_t n, int64_t hd, float* out);
void AttnScoresBF16(const float* q, const void* const* k, int64_t n, int64_t hd, float scale,
                    float* s);
void AttnValuesBF16(const float* p, const void* const* v, int64_t n, int64_t hd, float* out);
}  // namespace origami::cpu

namespace origami::cpu::arm {
namespace {

float HalfToFloat(const uint8_t* p) {
  __fp16 h;
  std::memcpy(&h, p, 2);
  return static_cast<float>(h);
}

struct LoadF32 {
  static float32x4_t Load(const void* row, int64_t i) {
    return vld1q_f32(static_cast<const float*>(row) + i);
  }
};
struct LoadF16 {
  static float32x4_t Load(const void* row, int64_t i) {
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(static_cast<const uint16_t*>(row) + i)));
  }
};
struct LoadBF16 {
  static float32x4_t Load(const void* row, int64_t i) {
    return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(static_cast<const uint16_t*>(row) + i), 16));
  }
};
// Q8_0 blocks: an F16 scale and 32 int8 values (34 bytes); 4 values never straddle a block.
struct LoadQ8_0 {
  static float32x4_t Load(const void* row, int64_t i) {
    const auto* b = static_cast<const uint8_t*>(row) + (i / 32) * 34;
    int32_t raw;
    std::memcpy(&raw, b + 2 + i % 32, 4);
    const int16x4_t w = vget_low_s16(vmovl_s8(vreinterpret_s8_s32(vdup_n_s32(raw))));
    return vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(w)), HalfToFloat(b));
  }
};
// Q4_0 blocks: an F16 scale and 16 bytes; element e < 16 is byte e's low nibble, e >= 16 byte
// e - 16's high nibble, minus 8.
struct LoadQ4_0 {
  static float32x4_t Load(const void* row, int64_t i) {
    const auto* b = static_cast<const uint8_t*>(row) + (i / 32) * 18;
    const int e = static_cast<int>(i % 32);
    int32_t raw;
    std::memcpy(&raw, b + 2 + (e & 15), 4);
    uint8x8_t q = vreinterpret_u8_s32(vdup_n_s32(raw));
    q = e >= 16 ? vshr_n_u8(q, 4) : vand_u8(q, vdup_n_u8(0x0f));
    const int16x4_t w = vsub_s16(vget_low_s16(vreinterpretq_s16_u16(vmovl_u8(q))), vdup_n_s16(8));
    return vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(w)), HalfToFloat(b));
  }
};

template <class L>
void Scores(const float* q, const void* const* k, int64_t n, int64_t hd, float scale, float* s) {
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) {
    float32x4_t a0 = vdupq_n_f32(0), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t i = 0; i < hd; i += 4) {
      const float32x4_t qv = vld1q_f32(q + i);
      a0 = vfmaq_f32(a0, qv, L::Load(k[j], i));
      a1 = vfmaq_f32(a1, qv, L::Load(k[j + 1], i));
      a2 = vfmaq_f32(a2, qv, L::Load(k[j + 2], i));
      a3 = vfmaq_f32(a3, qv, L::Load(k[j + 3], i));
    }
    const float32x4_t sums = vpaddq_f32(vpaddq_f32(a0, a1), vpaddq_f32(a2, a3));
    vst1q_f32(s + j, vmulq_n_f32(sums, scale));
  }
  for (; j < n; ++j) {
    float32x4_t a = vdupq_n_f32(0);
    for (int64_t i = 0; i < hd; i += 4) a = vfmaq_f32(a, vld1q_f32(q + i), L::Load(k[j], i));
    s[j] = vaddvq_f32(a) * scale;
  }
}

template <class L>
void Values(const float* p, const void* const* v, int64_t n, int64_t hd, float* out) {
  for (int64_t c = 0; c < hd; c += 32) {
    const int w = hd - c >= 32 ? 8 : static_cast<int>((hd - c) / 4);
    float32x4_t acc[8];
    for (int i = 0; i < w; ++i) acc[i] = vld1q_f32(out + c + 4 * i);
    for (int64_t j = 0; j < n; ++j)
      for (int i = 0; i < w; ++i) acc[i] = vfmaq_n_f32(acc[i], L::Load(v[j], c + 4 * i), p[j]);
    for (int i = 0; i < w; ++i) vst1q_f32(out + c + 4 * i, acc[i]);
  }
}

}  // namespace

void AttnScoresF32Neon(const float* q, const void* const* k, int64_t n, int64_t hd, float scale,
                       float* s) {
  if (hd % 4 != 0) return AttnScores(q, k, n, hd, scale, s);
  Scores<LoadF32>(q, k, n, hd, scale, s);
}
void AttnValuesF32Neon(const float* p, const void* const* v, int64_t n, int64_t hd, float* out) {
  if (hd % 4 != 0) return AttnValues(p, v, n, hd, out);
  Values<LoadF32>(p, v, n, hd, out);
}
void AttnScoresF16Neon(const float* q, const void* const* k, int64_t n, int64_t hd, float scale,
                       float* s) {
  if (hd % 4 != 0) return AttnScoresF16(q, k, n, hd, scale, s);
  Scores<LoadF16>(q, k, n, hd, scale, s);
}
void AttnValuesF16Neon(const float* p, const void* const* v, int64_t n, int64_t hd, float* out) {
  if (hd % 4 != 0) return AttnValuesF16(p, v, n, hd, out);
  Values<LoadF16>(p, v, n, hd, out);
}
void AttnScoresBF16Neon(const float* q, const void* const* k, int64_t n, int64_t hd, float scale,
                        float* s) {
  if (hd % 4 != 0) return AttnScoresBF16(q, k, n, hd, scale, s);
  Scores<LoadBF16>(q, k, n, hd, scale, s);
}
void AttnValuesBF16Neon(const float* p, const void* const* v, int64_t n, int64_t hd, float* out) {
  if (hd % 4 != 0) return AttnValuesBF16(p, v, n, hd, out);
  Values<LoadBF16>(p, v, n, hd, out);
}
// Quantized rows: hd is a multiple of 32 (the KV pool refuses other head sizes for these types).
void AttnScoresQ8_0Neon(const float* q, const void* const* k, int64_t n, int64_t hd, float scale,
                        float* s) {
  Scores<LoadQ8_0>(q, k, n, hd, scale, s);
}
void AttnValuesQ8_0Neon(const float* p, const void* const* v, int64_t n, int64_t hd, float* out) {
  Values<LoadQ8_0>(p, v, n, hd, out);
}
void AttnScoresQ4_0Neon(const float* q, const void* const* k, int64_t n, int64_t hd, float scale,
                        float* s) {
  Scores<LoadQ4_0>(q, k, n, hd, scale, s);
}
void AttnValuesQ4_0Neon(const float* p, const void* const* v, int64_t n, int64_t hd, float* out) {
  Values<LoadQ4_0>(p, v, n, hd, out);
}

}  // namespace origami::cpu::arm
