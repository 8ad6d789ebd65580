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

// The reciprocal every quantizer scales by: 1 / d, or 0 for a block of zeros (d = 0).
float Reciprocal(float d) { return d != 0 ? 1.0f / d : 0.0f; }

// max |x| over a block (a NaN is passed over: std::max keeps its first argument).
float AbsMax(const float* x, int n) {
  float amax = 0;
  for (int j = 0; j < n; ++j) amax = std::max(amax, std::fabs(x[j]));
  return amax;
}

// ggml's `max`: the first element of largest magnitude, with its sign; 0 when all are zero.
float SignedAbsMax(const float* x, int n) {
  float amax = 0, max = 0;
  for (int j = 0; j < n; ++j) {
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  return max;
}

// The block's minimum and maximum, from element 0 on as ggml's Q4_1 / Q5_1 quantizers.
void MinMax(const float* x, int n, float* min, float* max) {
  *min = x[0];
  *max = x[0];
  for (int j = 1; j < n; ++j) {
    *min = std::min(*min, x[j]);
    *max = std::max(*max, x[j]);
  }
}

// Q8_0 and Q8_1 dequantize alike (Q8_1's s is only for the dot products): x = q * d.
template <typename Block>
void DequantQ8(const void* src, float* dst, int64_t n) {
  const auto* b = Blocks<Block>(src);
  for (int64_t i = 0; i < n / 32; ++i, dst += 32) {
    const float d = Fp16ToFp32(b[i].d);
    for (int j = 0; j < 32; ++j) dst[j] = static_cast<float>(b[i].qs[j]) * d;
  }
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

void DequantQ8_0(const void* src, float* dst, int64_t n) { DequantQ8<BlockQ8_0>(src, dst, n); }
void DequantQ8_1(const void* src, float* dst, int64_t n) { DequantQ8<BlockQ8_1>(src, dst, n); }

void DequantQ8_K(const void* src, float* dst, int64_t n) {
  const auto* b = Blocks<BlockQ8_K>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i, dst += kQK_K)
    for (int j = 0; j < kQK_K; ++j) dst[j] = static_cast<float>(b[i].qs[j]) * b[i].d;
}

// Q8_0: d = max|x| / 127, q = round(x / d). Matches ggml's quantize_row_q8_0_ref.
void QuantQ8_0(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ8_0*>(dst);
  for (int64_t i = 0; i < n / kQK8_0; ++i, src += kQK8_0) {
    const float d = AbsMax(src, 32) / 127.0f;
    const float id = Reciprocal(d);
    b[i].d = Fp32ToFp16(d);
    for (int j = 0; j < 32; ++j) b[i].qs[j] = static_cast<int8_t>(std::lround(src[j] * id));
  }
}

void QuantQ8_1(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ8_1*>(dst);
  for (int64_t i = 0; i < n / kQK8_1; ++i, src += kQK8_1) {
    const float d = AbsMax(src, 32) / 127.0f;
    const float id = Reciprocal(d);
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
    const float max = SignedAbsMax(src, kQK_K);
    if (max == 0) {  // every element 0 (or NaN)
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

namespace {
// The 32 fifth bits of a Q5 block, little-endian: bit j belongs to element j.
uint32_t LoadQh(const uint8_t qh[4]) {
  return static_cast<uint32_t>(qh[0]) | static_cast<uint32_t>(qh[1]) << 8 |
         static_cast<uint32_t>(qh[2]) << 16 | static_cast<uint32_t>(qh[3]) << 24;
}
void StoreQh(uint32_t v, uint8_t qh[4]) {
  for (int k = 0; k < 4; ++k) qh[k] = static_cast<uint8_t>(v >> (8 * k));
}
// Packs 32 five-bit quants: low nibbles as in Q4 (j and j+16 share byte j), fifth bits into qh.
void PackQ5(const int q[32], uint8_t qs[16], uint8_t qh[4]) {
  uint32_t h = 0;
  for (int j = 0; j < 16; ++j) {
    qs[j] = static_cast<uint8_t>((q[j] & 0x0f) | ((q[j + 16] & 0x0f) << 4));
    h |= static_cast<uint32_t>((q[j] >> 4) & 1) << j;
    h |= static_cast<uint32_t>((q[j + 16] >> 4) & 1) << (j + 16);
  }
  StoreQh(h, qh);
}
// The 5-bit quant of element j (0..31) of a Q5 block.
int UnpackQ5(const uint8_t qs[16], uint32_t qh, int j) {
  const int lo = j < 16 ? (qs[j] & 0x0f) : (qs[j - 16] >> 4);
  return lo | static_cast<int>((qh >> j) & 1) << 4;
}
// Packs 32 four-bit quants: elements j and j + 16 share byte j (low, high nibble).
void PackQ4(const int q[32], uint8_t qs[16]) {
  for (int j = 0; j < 16; ++j) qs[j] = static_cast<uint8_t>(q[j] | (q[j + 16] << 4));
}
template <typename Block>
void PackQuants(const int q[32], Block& b) {
  if constexpr (requires { b.qh; })
    PackQ5(q, b.qs, b.qh);
  else
    PackQ4(q, b.qs);
}

// Q4_0 / Q5_0 with kHalf = 8 / 16: the value of largest magnitude maps to -kHalf, d = max / -kHalf,
// q = min(2 kHalf - 1, trunc(x / d + kHalf + 0.5)). Q5_0 matches ggml's quantize_row_q5_0_ref.
template <typename Block, int kHalf>
void QuantSymmetric(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<Block*>(dst);
  for (int64_t i = 0; i < n / 32; ++i, src += 32) {
    const float d = SignedAbsMax(src, 32) / -static_cast<float>(kHalf);
    const float id = Reciprocal(d);
    b[i].d = Fp32ToFp16(d);
    int q[32];
    for (int j = 0; j < 32; ++j) q[j] = std::min(2 * kHalf - 1, static_cast<int>(src[j] * id + (kHalf + 0.5f)));
    PackQuants(q, b[i]);
  }
}

// Q4_1 / Q5_1 with kTop = 15 / 31: an asymmetric grid from the block minimum: d = (max - min) / kTop,
// m = min, q = min(kTop, trunc((x - min) / d + 0.5)). Matches ggml's quantize_row_q4_1_ref; for Q5_1
// ggml does not clamp, but (x - min) / d <= 31 up to rounding, so the clamp never changes a result
// for finite input and only guards the bit packing.
template <typename Block, int kTop>
void QuantFromMin(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<Block*>(dst);
  for (int64_t i = 0; i < n / 32; ++i, src += 32) {
    float min, max;
    MinMax(src, 32, &min, &max);
    const float d = (max - min) / static_cast<float>(kTop);
    const float id = Reciprocal(d);
    b[i].d = Fp32ToFp16(d);
    b[i].m = Fp32ToFp16(min);
    int q[32];
    for (int j = 0; j < 32; ++j) q[j] = std::min(kTop, static_cast<int>((src[j] - min) * id + 0.5f));
    PackQuants(q, b[i]);
  }
}
}  // namespace

void QuantQ4_0(const float* src, void* dst, int64_t n) { QuantSymmetric<BlockQ4_0, 8>(src, dst, n); }
void QuantQ5_0(const float* src, void* dst, int64_t n) { QuantSymmetric<BlockQ5_0, 16>(src, dst, n); }
void QuantQ4_1(const float* src, void* dst, int64_t n) { QuantFromMin<BlockQ4_1, 15>(src, dst, n); }
void QuantQ5_1(const float* src, void* dst, int64_t n) { QuantFromMin<BlockQ5_1, 31>(src, dst, n); }

void DequantQ4_1(const void* src, float* dst, int64_t n) {
  const auto* b = Blocks<BlockQ4_1>(src);
  for (int64_t i = 0; i < n / kQK4_1; ++i, dst += kQK4_1) {
    const float d = Fp16ToFp32(b[i].d);
    const float m = Fp16ToFp32(b[i].m);
    for (int j = 0; j < 16; ++j) {
      dst[j] = static_cast<float>(b[i].qs[j] & 0x0f) * d + m;
      dst[j + 16] = static_cast<float>(b[i].qs[j] >> 4) * d + m;
    }
  }
}

void DequantQ5_0(const void* src, float* dst, int64_t n) {
  const auto* b = Blocks<BlockQ5_0>(src);
  for (int64_t i = 0; i < n / kQK5_0; ++i, dst += kQK5_0) {
    const float d = Fp16ToFp32(b[i].d);
    const uint32_t qh = LoadQh(b[i].qh);
    for (int j = 0; j < 32; ++j) dst[j] = static_cast<float>(UnpackQ5(b[i].qs, qh, j) - 16) * d;
  }
}

void DequantQ5_1(const void* src, float* dst, int64_t n) {
  const auto* b = Blocks<BlockQ5_1>(src);
  for (int64_t i = 0; i < n / kQK5_1; ++i, dst += kQK5_1) {
    const float d = Fp16ToFp32(b[i].d);
    const float m = Fp16ToFp32(b[i].m);
    const uint32_t qh = LoadQh(b[i].qh);
    for (int j = 0; j < 32; ++j) dst[j] = static_cast<float>(UnpackQ5(b[i].qs, qh, j)) * d + m;
  }
}

// ---- K-quants: super-blocks of 256 -------------------------------------------------------------
//
// The formulas below keep ggml's order (the sub-block factor first, dl = d * sc, then
// dl * q - ml), though for these formats the order cannot change a bit: d has an 11-bit fp16
// significand and sc, m and q are integers of at most 8, 6 and 6 bits, so every product is exact
// in float32 and each output is the exact value rounded once (by the subtraction, or not at all).
// The same holds with FMA contraction, so fast kernels can match these results bit for bit.

// Q2_K: 16 sub-blocks of 16. scales[s] holds the 4-bit scale (low nibble) and 4-bit min (high
// nibble) of sub-block s. The 2-bit quants are packed as two halves of 128 elements: byte l of a
// half's 32 bytes holds, at bit 2k, the quant of element 32k + l of that half.
void DequantQ2_K(const void* src, float* dst, int64_t n) {
  const auto* b = Blocks<BlockQ2_K>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = Fp16ToFp32(b[i].d);
    const float dmin = Fp16ToFp32(b[i].dmin);
    for (int e = 0; e < kQK_K; ++e) {
      const int half = e / 128, k = (e % 128) / 32, l = e % 32;
      const uint8_t sc = b[i].scales[e / 16];
      const float dl = d * static_cast<float>(sc & 0x0f);
      const float ml = dmin * static_cast<float>(sc >> 4);
      const int q = (b[i].qs[half * 32 + l] >> (2 * k)) & 3;
      *dst++ = dl * static_cast<float>(q) - ml;
    }
  }
}

// Q3_K's sixteen 6-bit scales, stored with a bias of 32 in 12 bytes: the low 4 bits of scale s
// are the low nibble of byte s (s < 8) or the high nibble of byte s - 8 (s >= 8); the high 2 bits
// are bits 2*(s/4)..2*(s/4)+1 of byte 8 + s%4.
int Q3KScale(const uint8_t scales[12], int s) {
  const int lo = s < 8 ? (scales[s] & 0x0f) : (scales[s - 8] >> 4);
  const int hi = (scales[8 + s % 4] >> (2 * (s / 4))) & 3;
  return (lo | hi << 4) - 32;
}

// Q3_K: 16 sub-blocks of 16, x = d * scale * q with q in [-4, 3]: the 2 low bits are packed as in
// Q2_K, and the third bit of element e = 128 h + 32 k + l is bit 4h + k of hmask[l]; a clear
// bit subtracts 4.
void DequantQ3_K(const void* src, float* dst, int64_t n) {
  const auto* b = Blocks<BlockQ3_K>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = Fp16ToFp32(b[i].d);
    for (int e = 0; e < kQK_K; ++e) {
      const int half = e / 128, k = (e % 128) / 32, l = e % 32;
      const float dl = d * static_cast<float>(Q3KScale(b[i].scales, e / 16));
      const int lo = (b[i].qs[half * 32 + l] >> (2 * k)) & 3;
      const bool hbit = (b[i].hmask[l] >> (4 * half + k)) & 1;
      *dst++ = dl * static_cast<float>(lo - (hbit ? 0 : 4));
    }
  }
}

// The 6-bit scale and min of sub-block s (0..7) of a Q4_K/Q5_K block. Bytes 0..3 hold scales
// 0..3 and bytes 4..7 mins 0..3 in their low 6 bits; scales and mins 4..7 have their low 4 bits
// in the nibbles of bytes 8..11 (scale low, min high) and their top 2 bits in the spare top 2
// bits of bytes 0..3 (scales) and 4..7 (mins).
void Q4KScaleMin(const uint8_t scales[12], int s, int* sc, int* m) {
  if (s < 4) {
    *sc = scales[s] & 63;
    *m = scales[s + 4] & 63;
  } else {
    *sc = (scales[s + 4] & 0x0f) | ((scales[s - 4] >> 6) << 4);
    *m = (scales[s + 4] >> 4) | ((scales[s] >> 6) << 4);
  }
}

namespace {
// Q4_K: 8 sub-blocks of 32, x = d * sc * q - dmin * m, q in [0, 15]. Each 32-byte group g of qs
// holds sub-block 2g in its low nibbles and sub-block 2g + 1 in its high nibbles.
int QuantK(const BlockQ4_K& b, int s, int l) {
  const uint8_t q = b.qs[32 * (s / 2) + l];
  return (s % 2 == 0) ? (q & 0x0f) : (q >> 4);
}
// Q5_K: Q4_K plus a fifth bit: element l of sub-block s takes bit s of qh[l] as its bit 4.
int QuantK(const BlockQ5_K& b, int s, int l) {
  const uint8_t q = b.qs[32 * (s / 2) + l];
  const int lo = (s % 2 == 0) ? (q & 0x0f) : (q >> 4);
  return lo | ((b.qh[l] >> s) & 1) << 4;
}

// The Q4_K / Q5_K dequantizer: the two differ only in QuantK.
template <typename Block>
void DequantK4(const void* src, float* dst, int64_t n) {
  const auto* b = Blocks<Block>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = Fp16ToFp32(b[i].d);
    const float dmin = Fp16ToFp32(b[i].dmin);
    for (int s = 0; s < 8; ++s) {
      int sc, m;
      Q4KScaleMin(b[i].scales, s, &sc, &m);
      const float dl = d * static_cast<float>(sc);
      const float ml = dmin * static_cast<float>(m);
      for (int l = 0; l < 32; ++l) *dst++ = dl * static_cast<float>(QuantK(b[i], s, l)) - ml;
    }
  }
}
}  // namespace

void DequantQ4_K(const void* src, float* dst, int64_t n) { DequantK4<BlockQ4_K>(src, dst, n); }
void DequantQ5_K(const void* src, float* dst, int64_t n) { DequantK4<BlockQ5_K>(src, dst, n); }

// Q6_K: 16 sub-blocks of 16 with int8 scales, x = d * sc * (q - 32), q in [0, 63]. Each half h
// of 128 elements uses ql[64h..64h+63] and qh[32h..32h+31]: element 128h + 32k + l (l < 32) has
// its low 4 bits in the low (k < 2) or high (k >= 2) nibble of ql[64h + 32(k%2) + l], and its
// top 2 bits at bit 2k of qh[32h + l]. ggml multiplies (d * sc) * q, in that order.
void DequantQ6_K(const void* src, float* dst, int64_t n) {
  const auto* b = Blocks<BlockQ6_K>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = Fp16ToFp32(b[i].d);
    for (int e = 0; e < kQK_K; ++e) {
      const int half = e / 128, k = (e % 128) / 32, l = e % 32;
      const uint8_t ql = b[i].ql[64 * half + 32 * (k % 2) + l];
      const int lo = k < 2 ? (ql & 0x0f) : (ql >> 4);
      const int hi = (b[i].qh[32 * half + l] >> (2 * k)) & 3;
      const float dl = d * static_cast<float>(b[i].scales[e / 16]);
      *dst++ = dl * static_cast<float>((lo | hi << 4) - 32);
    }
  }
}

}  // namespace origami::ref
