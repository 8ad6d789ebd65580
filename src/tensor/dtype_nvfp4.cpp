// NVFP4 (ggml type 40): reference dequantization and quantization for the dtype table. Layout and
// scale decoding in tensor/nvfp4.h; the quantizer follows ggml's reference (per sub-block of 16:
// scale = amax / 6 rounded to UE4M3, then each element to the nearest E2M1 value).
#include <cmath>
#include <cstdint>
#include <cstring>

#include "tensor/blocks.h"
#include "tensor/nvfp4.h"

namespace origami {

uint8_t Fp32ToUe4m3(float x) {
  if (!(x > 0)) return 0;  // zero, negatives and NaN
  if (x > 448.0f) x = 448.0f;
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  int e = static_cast<int>((bits >> 23) & 0xFF) - 127 + 7;
  if (e <= 0) {  // UE4M3 subnormal: m * 2^-9
    int m = static_cast<int>(x * 512.0f + 0.5f);
    if (m > 7) m = 7;
    return m < 1 ? 0 : static_cast<uint8_t>(m);
  }
  if (e >= 15) return 0x7E;
  int m = static_cast<int>((bits >> 20) & 7);
  if ((bits >> 19) & 1) {  // round to nearest on the first dropped bit; a carry bumps the exponent
    if (++m == 8) {
      m = 0;
      if (++e >= 15) return 0x7E;
    }
  }
  return static_cast<uint8_t>((e << 3) | m);
}

namespace ref {

void DequantNvfp4(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const BlockNvfp4*>(src);
  for (int64_t i = 0; i < n / kQKNvfp4; ++i) {
    for (int s = 0; s < 4; ++s) {
      const float d = Ue4m3Half(b[i].d[s]);
      float* y = dst + i * 64 + s * 16;
      for (int j = 0; j < 8; ++j) {
        y[j] = kNvfp4Values[b[i].qs[s * 8 + j] & 0x0F] * d;
        y[j + 8] = kNvfp4Values[b[i].qs[s * 8 + j] >> 4] * d;
      }
    }
  }
}

void QuantNvfp4(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockNvfp4*>(dst);
  for (int64_t i = 0; i < n / kQKNvfp4; ++i) {
    for (int s = 0; s < 4; ++s) {
      const float* x = src + i * 64 + s * 16;
      float amax = 0.0f;
      for (int j = 0; j < 16; ++j) amax = std::fmax(amax, std::fabs(x[j]));
      // The largest magnitude maps near 6 (E2M1's largest value); the halved scale d pairs with
      // the doubled table, so x / d is compared against the doubled values directly.
      b[i].d[s] = Fp32ToUe4m3(amax / 6.0f);
      const float d = Ue4m3Half(b[i].d[s]);
      uint8_t q[16];
      for (int j = 0; j < 16; ++j) {
        int best = 0;
        if (d != 0.0f) {
          const float v = x[j] / d;
          float best_err = INFINITY;
          for (int k = 0; k < 16; ++k) {  // nearest value, first wins on ties (NaN keeps index 0)
            const float err = std::fabs(v - kNvfp4Values[k]);
            if (err < best_err) best_err = err, best = k;
          }
        }
        q[j] = static_cast<uint8_t>(best);
      }
      for (int j = 0; j < 8; ++j) b[i].qs[s * 8 + j] = static_cast<uint8_t>(q[j] | (q[j + 8] << 4));
    }
  }
}

}  // namespace ref
}  // namespace origami
