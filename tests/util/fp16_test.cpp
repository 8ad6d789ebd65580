// fp16/bf16 conversions: exhaustive round trips and hardware-style rounding.
#include "util/fp16.h"

#include <gtest/gtest.h>

#include <cmath>

namespace origami {
namespace {

TEST(Fp16, EveryHalfRoundTripsThroughFloat) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = Fp16ToFp32(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(Fp16ToFp32(Fp32ToFp16(f))));
      continue;
    }
    ASSERT_EQ(Fp32ToFp16(f), h) << std::hex << h;
  }
}

TEST(Fp16, KnownValuesAndRounding) {
  EXPECT_EQ(Fp32ToFp16(1.0f), 0x3c00);
  EXPECT_EQ(Fp32ToFp16(-2.0f), 0xc000);
  EXPECT_EQ(Fp32ToFp16(65504.0f), 0x7bff);
  EXPECT_EQ(Fp32ToFp16(65520.0f), 0x7c00);  // rounds up to infinity
  EXPECT_EQ(Fp32ToFp16(5.960464477539063e-08f), 0x0001);  // smallest subnormal
  EXPECT_EQ(Fp32ToFp16(2.98e-08f), 0x0000);               // below half of it
  // 1 + 2^-11 is exactly halfway between 1 and the next half: ties to even (1.0).
  EXPECT_EQ(Fp32ToFp16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
  EXPECT_EQ(Fp32ToFp16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  EXPECT_FLOAT_EQ(Fp16ToFp32(0x3555), 0.333251953125f);
}

TEST(Bf16, RoundsToNearestEven) {
  EXPECT_EQ(Fp32ToBf16(1.0f), 0x3f80);
  EXPECT_EQ(Fp32ToBf16(BitsToFloat(0x3f808000)), 0x3f80);  // tie, even stays
  EXPECT_EQ(Fp32ToBf16(BitsToFloat(0x3f818000)), 0x3f82);  // tie, odd rounds up
  EXPECT_EQ(Fp32ToBf16(BitsToFloat(0x3f808001)), 0x3f81);
  EXPECT_TRUE(std::isnan(Bf16ToFp32(Fp32ToBf16(std::nanf("")))));
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = Bf16ToFp32(static_cast<uint16_t>(h));
    if (!std::isnan(f)) {
      ASSERT_EQ(Fp32ToBf16(f), h);
    }
  }
}

}  // namespace
}  // namespace origami
