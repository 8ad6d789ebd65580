// MXFP4 (OCP Microscaling v1.0, as ggml stores it): blocks of 32 FP4 E2M1 values sharing one E8M0
// scale. Reference dequantization and quantization for the dtype table.
#include <cmath>
#include <cstdint>
#include <cstring>

#include "tensor/blocks.h"

namespace origami::ref {

namespace {
// E2M1 values doubled (ggml's kvalues_mxfp4), paired with a halved scale 2^(e - 128): the product
// equals e2m1 * 2^(e - 127) exactly. Index bit 3 is the sign.
constexpr int8_t kE2M1x2[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

// 2^(e - 128) for an E8M0 byte; exact in float (e = 0, 1 give subnormals).
inline float HalfScale(uint8_t e) { return std::ldexp(1.0f, static_cast<int>(e) - 128); }
}  // namespace

void DequantMxfp4(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const BlockMxfp4*>(src);
  for (int64_t i = 0; i < n / kQKMxfp4; ++i) {
    const float d = HalfScale(b[i].e);
    for (int j = 0; j < 16; ++j) {
      dst[i * 32 + j] = kE2M1x2[b[i].qs[j] & 0x0F] * d;
      dst[i * 32 + j + 16] = kE2M1x2[b[i].qs[j] >> 4] * d;
    }
  }
}

void QuantMxfp4(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockMxfp4*>(dst);
  for (int64_t i = 0; i < n / kQKMxfp4; ++i) {
    const float* x = src + i * 32;
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    // The shared exponent puts the largest magnitude in [4, 8) before the 6.0 clamp of E2M1:
    // e = floor(log2(amax)) - 2 + 127, as ggml's reference chooses it.
    int e = 0;
    if (amax > 0 && std::isfinite(amax)) e = static_cast<int>(std::floor(std::log2(amax))) - 2 + 127;
    e = e < 0 ? 0 : e > 254 ? 254 : e;
    b[i].e = static_cast<uint8_t>(e);
    const float d = HalfScale(b[i].e);
    uint8_t q[32];
    for (int j = 0; j < 32; ++j) {
      int best = 0;
      float best_err = INFINITY;
      for (int k = 0; k < 16; ++k) {  // nearest representable value, first wins on ties
        const float err = std::fabs(x[j] - kE2M1x2[k] * d);
        if (err < best_err) best_err = err, best = k;
      }
      q[j] = static_cast<uint8_t>(best);
    }
    for (int j = 0; j < 16; ++j) b[i].qs[j] = static_cast<uint8_t>(q[j] | (q[j + 16] << 4));
  }
}

}  // namespace origami::ref
