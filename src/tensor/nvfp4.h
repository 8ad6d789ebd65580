// NVFP4 (as ggml stores it, type 40): blocks of 64 FP4 E2M1 values in four sub-blocks of 16, each
// sub-block with its own UE4M3 scale byte (unsigned FP8: 4 exponent bits, bias 7, 3 mantissa bits).
// As for MXFP4, ggml keeps the E2M1 values doubled (small integers, so dot products with int8
// activations are exact) and halves the scale: Ue4m3Half(b) = ue4m3(b) / 2.
#pragma once

#include <cstdint>

namespace origami {

// The doubled E2M1 values (ggml's kvalues_mxfp4); index bit 3 is the sign.
inline constexpr int8_t kNvfp4Values[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

// ue4m3(b) / 2 for a scale byte b, as ggml decodes it: 0x00 and 0x7F (the E4M3 NaN) give 0, bit 7
// is ignored otherwise (so 0xFF decodes as exponent 15, mantissa 7). The value is a small integer
// times a power of two, (8 + m) * 2^(e - 11) or m * 2^-10, so the float is exact.
constexpr float Ue4m3HalfSlow(uint8_t b) {
  if (b == 0 || b == 0x7F) return 0.0f;
  const int e = (b >> 3) & 0xF, m = b & 7;
  float v = static_cast<float>(e == 0 ? m : 8 + m);
  for (int k = e == 0 ? 1 : e; k < 11; ++k) v *= 0.5f;  // exact: powers of two, far from underflow
  for (int k = 11; k < e; ++k) v *= 2.0f;
  return v;
}

// All 256 bytes decoded once at compile time: kernels look scales up instead of rebuilding them.
struct Ue4m3HalfTable {
  float v[256];
  constexpr Ue4m3HalfTable() : v() {
    for (int b = 0; b < 256; ++b) v[b] = Ue4m3HalfSlow(static_cast<uint8_t>(b));
  }
};
inline constexpr Ue4m3HalfTable kUe4m3Half{};

inline float Ue4m3Half(uint8_t b) { return kUe4m3Half.v[b]; }

// The UE4M3 byte for a scale x >= 0 (not halved): nearest, ties away, saturating at 0x7E (448).
uint8_t Fp32ToUe4m3(float x);

}  // namespace origami
