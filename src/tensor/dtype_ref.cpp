// Reference dequantization and quantization, scalar and exact, following ggml's block layouts.
#include "tensor/dtype_ref.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "tensor/blocks.h"
#include "util/error.h"
#include "util/fp16.h"

namespace origami::ref {

namespace {
template <typename Block>
const Block* Blocks(const void* p) {
  return static_cast<const Block*>(p);
}
}  // namespace

// ---- float types -------------------------------------------------------------------------------

void DequantF32(const void* src, float* dst, int64_t n) {
  std::memcpy(dst, src, static_cast<size_t>(n) * 4);
}
void DequantF16(const void* src, float* dst, int64_t n) {
  const auto* h = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = Fp16ToFp32(h[i]);
}
void DequantBF16(const void* src, float* dst, int64_t n) {
  const auto* h = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = Bf16ToFp32(h[i]);
}
void QuantF32(const float* src, void* dst, int64_t n) {
  std::memcpy(dst, src, static_cast<size_t>(n) * 4);
}
void QuantF16(const float* src, void* dst, int64_t n) {
  auto* h = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) h[i] = Fp32ToFp16(src[i]);
}
void QuantBF16(const float* src, void* dst, int64_t n) {
  auto* h = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) h[i] = Fp32ToBf16(src[i]);
}

// ---- 32-element block types --------------------------------------------------------------------

void DequantQ4_0(const void* src, float* dst, int64_t n) {
  const auto* b = Blocks<BlockQ4_0>(src);
  for (int64_t i = 0; i < n / kQK4_0; ++i, dst += kQK4_0) {
    const float d = Fp16ToFp32(b[i].d);
    for (int j = 0; j < 16; ++j) {
      dst[j] = static_cast<float>((b[i].qs[j] & 0x0f) - 8) * d;
      dst[j + 16] = static_cast<float>((b[i].qs[j] >> 4) - 8) * d;
    }
  }
}

void DequantQ8_0(const void* src, float* dst, int64_t n) {
  const auto* b = Blocks<BlockQ8_0>(src);
  for (int64_t i = 0; i < n / kQK8_0; ++i, dst += kQK8_0) {
    const float d = Fp16ToFp32(b[i].d);
    for (int j = 0; j < 32; ++j) dst[j] = static_cast<float>(b[i].qs[j]) * d;
  }
}

void DequantQ8_1(const void* src, float* dst, int64_t n) {
  const auto* b = Blocks<BlockQ8_1>(src);
  for (int64_t i = 0; i < n / kQK8_1; ++i, dst += kQK8_1) {
    const float d = Fp16ToFp32(b[i].d);
    for (int j = 0; j < 32; ++j) dst[j] = static_cast<float>(b[i].qs[j]) * d;
  }
}

void DequantQ8_K(const void* src, float* dst, int64_t n) {
  const auto* b = Blocks<BlockQ8_K>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i, dst += kQK_K)
    for (int j = 0; j < kQK_K; ++j) dst[j] = static_cast<float>(b[i].qs[j]) * b[i].d;
}

// Q8_0: d = max|x| / 127, q = round(x / d). Matches ggml's quantize_row_q8_0_ref.
void QuantQ8_0(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ8_0*>(dst);
  for (int64_t i = 0; i < n / kQK8_0; ++i, src += kQK8_0) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(src[j]));
    const float d = amax / 127.0f;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    b[i].d = Fp32ToFp16(d);
    for (int j = 0; j < 32; ++j) b[i].qs[j] = static_cast<int8_t>(std::lround(src[j] * id));
  }
}

void QuantQ8_1(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ8_1*>(dst);
  for (int64_t i = 0; i < n / kQK8_1; ++i, src += kQK8_1) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(src[j]));
    const float d = amax / 127.0f;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    int sum = 0;
    for (int j = 0; j < 32; ++j) {
      b[i].qs[j] = static_cast<int8_t>(std::lround(src[j] * id));
      sum += b[i].qs[j];
    }
    b[i].d = Fp32ToFp16(d);
    b[i].s = Fp32ToFp16(static_cast<float>(sum) * d);
  }
}

// Q8_K: d = max|x| / 127 with the sign of the extreme value kept, as ggml's quantize_row_q8_K_ref.
void QuantQ8_K(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ8_K*>(dst);
  for (int64_t i = 0; i < n / kQK_K; ++i, src += kQK_K) {
    float amax = 0, max = 0;
    for (int j = 0; j < kQK_K; ++j) {
      if (std::fabs(src[j]) > amax) {
        amax = std::fabs(src[j]);
        max = src[j];
      }
    }
    if (amax == 0) {
      std::memset(&b[i], 0, sizeof(BlockQ8_K));
      continue;
    }
    const float iscale = -127.0f / max;
    for (int j = 0; j < kQK_K; ++j) {
      const int v = static_cast<int>(std::nearbyint(iscale * src[j]));
      b[i].qs[j] = static_cast<int8_t>(std::min(127, v));
    }
    for (int g = 0; g < kQK_K / 16; ++g) {
      int s = 0;
      for (int j = 0; j < 16; ++j) s += b[i].qs[g * 16 + j];
      b[i].bsums[g] = static_cast<int16_t>(s);
    }
    b[i].d = 1.0f / iscale;
  }
}

// Q4_0: the value of largest magnitude maps to -8; d = max / -8, q = clamp(round(x/d) + 8).
void QuantQ4_0(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ4_0*>(dst);
  for (int64_t i = 0; i < n / kQK4_0; ++i, src += kQK4_0) {
    float amax = 0, max = 0;
    for (int j = 0; j < 32; ++j) {
      if (std::fabs(src[j]) > amax) {
        amax = std::fabs(src[j]);
        max = src[j];
      }
    }
    const float d = max / -8.0f;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    b[i].d = Fp32ToFp16(d);
    for (int j = 0; j < 16; ++j) {
      const int q0 = std::min(15, static_cast<int>(src[j] * id + 8.5f));
      const int q1 = std::min(15, static_cast<int>(src[j + 16] * id + 8.5f));
      b[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

// ---- not yet written: filled in with their numpy tests -----------------------------------------

#define ORIGAMI_TODO_DEQUANT(T) \
  void Dequant##T(const void*, float*, int64_t) { FailKind(ErrorKind::kUnsupported, "dequantize " #T " not implemented"); }
#define ORIGAMI_TODO_QUANT(T) \
  void Quant##T(const float*, void*, int64_t) { FailKind(ErrorKind::kUnsupported, "quantize " #T " not implemented"); }
ORIGAMI_TODO_DEQUANT(Q4_1)
ORIGAMI_TODO_DEQUANT(Q5_0)
ORIGAMI_TODO_DEQUANT(Q5_1)
ORIGAMI_TODO_DEQUANT(Q2_K)
ORIGAMI_TODO_DEQUANT(Q3_K)
ORIGAMI_TODO_DEQUANT(Q4_K)
ORIGAMI_TODO_DEQUANT(Q5_K)
ORIGAMI_TODO_DEQUANT(Q6_K)
ORIGAMI_TODO_QUANT(Q4_1)
ORIGAMI_TODO_QUANT(Q5_0)
ORIGAMI_TODO_QUANT(Q5_1)

}  // namespace origami::ref
