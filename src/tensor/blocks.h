// Byte-exact ggml block layouts. Each struct is the on-disk (and in-memory) block of one type.
// Field comments give the meaning; the reference dequantization in dtype_ref.cpp is the oracle.
#pragma once

#include <cstdint>

#include "tensor/dtype.h"

namespace origami {

inline constexpr int kQK4_0 = 32, kQK4_1 = 32, kQK5_0 = 32, kQK5_1 = 32, kQK8_0 = 32, kQK8_1 = 32;
inline constexpr int kQKMxfp4 = 32;
inline constexpr int kQKNvfp4 = 64;
inline constexpr int kKScaleSize = 12;

struct BlockQ4_0 {    // x = (q - 8) * d
  uint16_t d;         // fp16 scale
  uint8_t qs[16];     // element j in the low nibble of byte j, element j+16 in the high nibble
};
struct BlockQ4_1 {    // x = q * d + m
  uint16_t d, m;      // fp16 scale and minimum
  uint8_t qs[16];
};
struct BlockQ5_0 {    // x = (q - 16) * d, q = nibble | (bit from qh) << 4
  uint16_t d;
  uint8_t qh[4];      // bit j: 5th bit of element j (j < 32)
  uint8_t qs[16];
};
struct BlockQ5_1 {    // x = q * d + m
  uint16_t d, m;
  uint8_t qh[4];
  uint8_t qs[16];
};
struct BlockQ8_0 {    // x = q * d
  uint16_t d;
  int8_t qs[32];
};
struct BlockQ8_1 {    // x = q * d; s = d * sum(q), used by the Q4_1/Q5_1 dot products
  uint16_t d, s;
  int8_t qs[32];
};
struct BlockQ2_K {    // 16 sub-blocks of 16: x = d * (scale & 15) * q - dmin * (scale >> 4)
  uint8_t scales[16];
  uint8_t qs[64];     // 2-bit quants
  uint16_t d, dmin;
};
struct BlockQ3_K {    // 16 sub-blocks of 16, 6-bit signed scales: x = d * (sc - 32) * (q - 4 * !hbit)
  uint8_t hmask[32];
  uint8_t qs[64];
  uint8_t scales[12];
  uint16_t d;
};
struct BlockQ4_K {    // 8 sub-blocks of 32, 6-bit scales and mins: x = d * sc * q - dmin * m
  uint16_t d, dmin;
  uint8_t scales[kKScaleSize];
  uint8_t qs[128];
};
struct BlockQ5_K {
  uint16_t d, dmin;
  uint8_t scales[kKScaleSize];
  uint8_t qh[32];
  uint8_t qs[128];
};
struct BlockQ6_K {    // 16 sub-blocks of 16, int8 scales: x = d * sc * (q - 32)
  uint8_t ql[128];
  uint8_t qh[64];
  int8_t scales[16];
  uint16_t d;
};
struct BlockQ8_K {    // activations for the K-quant dot products
  float d;
  int8_t qs[256];
  int16_t bsums[16];  // sums of groups of 16 quants
};
struct BlockMxfp4 {   // x = kE2M1[q] * 2^(e - 127) / 2  (E8M0 shared exponent)
  uint8_t e;
  uint8_t qs[16];     // element j low nibble of byte j, element j+16 high nibble
};
struct BlockNvfp4 {   // x = kE2M1[q] * ue4m3(d[s]) for the 16-element sub-block s (see tensor/nvfp4.h)
  uint8_t d[4];       // one UE4M3 scale per sub-block of 16
  uint8_t qs[32];     // sub-block s: bytes 8s..8s+7, element j low nibble, element j+8 high nibble
};

static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ8_1) == 36);
static_assert(sizeof(BlockQ2_K) == 84);
static_assert(sizeof(BlockQ3_K) == 110);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210);
static_assert(sizeof(BlockQ8_K) == 292);
static_assert(sizeof(BlockMxfp4) == 17);
static_assert(sizeof(BlockNvfp4) == 36);

}  // namespace origami
