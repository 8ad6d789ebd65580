// Scalar reference dot products: see vec_dot_ref.h for the arithmetic every fast kernel mirrors.
#include "kernels/cpu/ref/vec_dot_ref.h"

#include <cmath>
#include <cstring>

#include "tensor/blocks.h"
#include "tensor/dtype_ref.h"
#include "util/fp16.h"

namespace origami::cpu::ref {

namespace {

template <typename B>
const B* As(const void* p) {
  return static_cast<const B*>(p);
}

bool AllFinite(const float* x, int n) {
  for (int j = 0; j < n; ++j)
    if (!std::isfinite(x[j])) return false;
  return true;
}

constexpr uint16_t kFp16NaN = 0x7e00;

// Float weights of storage type T (`to_float` widens one) against float activations: products
// summed in double, rounded once.
template <typename T, typename ToFloat>
void DotFloat(int64_t n, float* out, const void* w, const void* a, ToFloat to_float) {
  const auto* x = As<T>(w);
  const auto* y = As<float>(a);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(to_float(x[i])) * y[i];
  *out = static_cast<float>(s);
}

// The loop every quantized kernel shares: weight block b (X) against activation block b (Y), the
// block's float term from `term`, added to one float accumulator in block order.
template <typename X, typename Y, int kQK, typename Term>
void SumBlocks(int64_t n, float* out, const void* w, const void* a, Term term) {
  const auto* x = As<X>(w);
  const auto* y = As<Y>(a);
  float acc = 0;
  for (int64_t b = 0; b < n / kQK; ++b) acc += term(x[b], y[b]);
  *out = acc;
}

// Quant j (0..31) of a 4- or 5-bit block as the integer the dot product uses: Q4_0 / Q5_0 minus
// their offset (8, 16); Q4_1 / Q5_1 without it (their min enters through the activation sum).
// Element j < 16 is the low nibble of qs[j], element j + 16 the high one; the Q5 types take bit j
// of qh as bit 4.
int Nibble(const uint8_t* qs, int j) { return j < 16 ? (qs[j] & 0x0f) : (qs[j - 16] >> 4); }
int FifthBit(const uint8_t* qh4, int j) {
  uint32_t qh;
  std::memcpy(&qh, qh4, 4);
  return static_cast<int>((qh >> j) & 1) << 4;
}
int Quant(const BlockQ4_0& x, int j) { return Nibble(x.qs, j) - 8; }
int Quant(const BlockQ5_0& x, int j) { return (Nibble(x.qs, j) | FifthBit(x.qh, j)) - 16; }
int Quant(const BlockQ4_1& x, int j) { return Nibble(x.qs, j); }
int Quant(const BlockQ5_1& x, int j) { return Nibble(x.qs, j) | FifthBit(x.qh, j); }

// sum(q * qy) over a 32-element block, exact in int32; elements j and j + 16 share a byte.
template <typename X, typename Y>
int32_t IntDot32(const X& x, const Y& y) {
  int32_t isum = 0;
  for (int j = 0; j < 16; ++j) isum += Quant(x, j) * y.qs[j] + Quant(x, j + 16) * y.qs[j + 16];
  return isum;
}
int32_t IntDot32(const BlockQ8_0& x, const BlockQ8_0& y) {
  int32_t isum = 0;
  for (int j = 0; j < 32; ++j) isum += x.qs[j] * y.qs[j];
  return isum;
}

// x = q * d against Q8_0: each block adds d * dy * isum.
template <typename X>
void DotQ8_0Blocks(int64_t n, float* out, const void* w, const void* a) {
  SumBlocks<X, BlockQ8_0, kQK8_0>(n, out, w, a, [](const X& x, const BlockQ8_0& y) {
    return Fp16ToFp32(x.d) * Fp16ToFp32(y.d) * static_cast<float>(IntDot32(x, y));
  });
}

// x = q * d + m against Q8_1, so dot = d * dy * sum(q * qy) + m * (dy * sum(qy)) = ... + m * s.
template <typename X>
void DotQ8_1Blocks(int64_t n, float* out, const void* w, const void* a) {
  SumBlocks<X, BlockQ8_1, kQK8_1>(n, out, w, a, [](const X& x, const BlockQ8_1& y) {
    return Fp16ToFp32(x.d) * Fp16ToFp32(y.d) * static_cast<float>(IntDot32(x, y)) +
           Fp16ToFp32(x.m) * Fp16ToFp32(y.s);
  });
}

// Quant e (0..255) of a Q4_K / Q5_K block: e = 64 c + l is the low nibble of qs[32 c + l], e + 32
// the high one; Q5_K's fifth bit is bit (e / 32) of qh[l].
int QuantK4(const uint8_t* qs, int e) {
  const int c = e / 64, l = e % 32;
  return (e % 64) < 32 ? (qs[32 * c + l] & 0x0f) : (qs[32 * c + l] >> 4);
}
int QuantK(const BlockQ4_K& x, int e) { return QuantK4(x.qs, e); }
int QuantK(const BlockQ5_K& x, int e) { return QuantK4(x.qs, e) | (((x.qh[e % 32] >> (e / 32)) & 1) << 4); }

// Q4_K and Q5_K: 8 sub-blocks of 32 with 6-bit scales and mins.
template <typename X>
void DotK4Blocks(int64_t n, float* out, const void* w, const void* a) {
  SumBlocks<X, BlockQ8_K, kQK_K>(n, out, w, a, [](const X& x, const BlockQ8_K& y) {
    uint8_t sc[8], m[8];
    UnpackScalesK4(x.scales, sc, m);
    int32_t isum = 0, msum = 0;
    for (int e = 0; e < kQK_K; ++e) isum += sc[e / 32] * QuantK(x, e) * y.qs[e];
    for (int s = 0; s < 8; ++s) msum += m[s] * (y.bsums[2 * s] + y.bsums[2 * s + 1]);
    return y.d * Fp16ToFp32(x.d) * static_cast<float>(isum) - y.d * Fp16ToFp32(x.dmin) * static_cast<float>(msum);
  });
}

// Activations: block by block with `quant`, except that a block holding NaN or Inf is zeroed and
// handed to `poison`, which gives it a NaN scale.
template <typename B, int kQK, typename QuantFn, typename PoisonFn>
void QuantizeAct(const float* x, void* dst, int64_t n, QuantFn quant, PoisonFn poison) {
  auto* b = static_cast<B*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i) {
    if (AllFinite(x + i * kQK, kQK)) {
      quant(x + i * kQK, &b[i], kQK);
    } else {
      std::memset(&b[i], 0, sizeof(B));
      poison(b[i]);
    }
  }
}

}  // namespace

// ---- float weights: products summed in double, rounded once ------------------------------------

void VecDotF32(int64_t n, float* out, const void* w, const void* a) {
  DotFloat<float>(n, out, w, a, [](float v) { return v; });
}

void VecDotF16(int64_t n, float* out, const void* w, const void* a) {
  DotFloat<uint16_t>(n, out, w, a, [](uint16_t h) { return Fp16ToFp32(h); });
}

void VecDotBF16(int64_t n, float* out, const void* w, const void* a) {
  DotFloat<uint16_t>(n, out, w, a, [](uint16_t h) { return Bf16ToFp32(h); });
}

// ---- 32-element blocks against Q8_0 / Q8_1 -----------------------------------------------------

void VecDotQ4_0(int64_t n, float* out, const void* w, const void* a) { DotQ8_0Blocks<BlockQ4_0>(n, out, w, a); }
void VecDotQ5_0(int64_t n, float* out, const void* w, const void* a) { DotQ8_0Blocks<BlockQ5_0>(n, out, w, a); }
void VecDotQ8_0(int64_t n, float* out, const void* w, const void* a) { DotQ8_0Blocks<BlockQ8_0>(n, out, w, a); }
void VecDotQ4_1(int64_t n, float* out, const void* w, const void* a) { DotQ8_1Blocks<BlockQ4_1>(n, out, w, a); }
void VecDotQ5_1(int64_t n, float* out, const void* w, const void* a) { DotQ8_1Blocks<BlockQ5_1>(n, out, w, a); }

// ---- K-quants against Q8_K ---------------------------------------------------------------------
// Each super-block gives an integer sum of scale * q * qy over its sub-blocks (isum) and, for the
// types with mins, an integer sum of min * bsum (msum); the block adds dy * (d * isum - dmin * msum).

void UnpackScalesK4(const uint8_t* q, uint8_t* sc, uint8_t* m) {
  for (int j = 0; j < 4; ++j) {
    sc[j] = q[j] & 63;
    m[j] = q[j + 4] & 63;
  }
  for (int j = 4; j < 8; ++j) {
    sc[j] = static_cast<uint8_t>((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4));
    m[j] = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

void UnpackScalesQ3K(const uint8_t* q, int8_t* sc) {
  for (int i = 0; i < 16; ++i) {
    const int lo = i < 8 ? (q[i] & 0x0f) : (q[i - 8] >> 4);
    const int hi = (q[8 + i % 4] >> (2 * (i / 4))) & 3;
    sc[i] = static_cast<int8_t>((lo | (hi << 4)) - 32);
  }
}

void VecDotQ2_K(int64_t n, float* out, const void* w, const void* a) {
  SumBlocks<BlockQ2_K, BlockQ8_K, kQK_K>(n, out, w, a, [](const BlockQ2_K& x, const BlockQ8_K& y) {
    int32_t isum = 0, msum = 0;
    for (int e = 0; e < kQK_K; ++e) {  // element e = 128 h + 32 j + l: bits 2j of qs[32 h + l]
      const int h = e / 128, j = (e % 128) / 32, l = e % 32;
      const int q = (x.qs[32 * h + l] >> (2 * j)) & 3;
      isum += (x.scales[e / 16] & 0x0f) * q * y.qs[e];
    }
    for (int s = 0; s < 16; ++s) msum += (x.scales[s] >> 4) * y.bsums[s];
    return y.d * Fp16ToFp32(x.d) * static_cast<float>(isum) - y.d * Fp16ToFp32(x.dmin) * static_cast<float>(msum);
  });
}

void VecDotQ3_K(int64_t n, float* out, const void* w, const void* a) {
  SumBlocks<BlockQ3_K, BlockQ8_K, kQK_K>(n, out, w, a, [](const BlockQ3_K& x, const BlockQ8_K& y) {
    int8_t sc[16];
    UnpackScalesQ3K(x.scales, sc);
    int32_t isum = 0;
    for (int e = 0; e < kQK_K; ++e) {  // as Q2_K; the high bit of e is bit (4 h + j) of hmask[l]
      const int h = e / 128, j = (e % 128) / 32, l = e % 32;
      const int q = (x.qs[32 * h + l] >> (2 * j)) & 3;
      const int hbit = (x.hmask[l] >> (4 * h + j)) & 1;
      isum += sc[e / 16] * (q - (hbit ? 0 : 4)) * y.qs[e];
    }
    return y.d * Fp16ToFp32(x.d) * static_cast<float>(isum);
  });
}

void VecDotQ4_K(int64_t n, float* out, const void* w, const void* a) { DotK4Blocks<BlockQ4_K>(n, out, w, a); }
void VecDotQ5_K(int64_t n, float* out, const void* w, const void* a) { DotK4Blocks<BlockQ5_K>(n, out, w, a); }

void VecDotQ6_K(int64_t n, float* out, const void* w, const void* a) {
  SumBlocks<BlockQ6_K, BlockQ8_K, kQK_K>(n, out, w, a, [](const BlockQ6_K& x, const BlockQ8_K& y) {
    int32_t isum = 0;
    for (int e = 0; e < kQK_K; ++e) {
      // e = 128 h + 32 k + l: low 4 bits from ql[64 h + 32 (k & 1) + l] (high nibble when k >= 2),
      // top 2 bits are bits 2k of qh[32 h + l].
      const int h = e / 128, k = (e % 128) / 32, l = e % 32;
      const uint8_t ql = x.ql[64 * h + 32 * (k & 1) + l];
      const int lo = k < 2 ? (ql & 0x0f) : (ql >> 4);
      const int q = lo | (((x.qh[32 * h + l] >> (2 * k)) & 3) << 4);
      isum += x.scales[e / 16] * (q - 32) * y.qs[e];
    }
    return y.d * Fp16ToFp32(x.d) * static_cast<float>(isum);
  });
}

// ---- activation converters ---------------------------------------------------------------------

void QuantizeActF32(const float* x, void* dst, int64_t n) { std::memcpy(dst, x, static_cast<size_t>(n) * 4); }

void QuantizeActQ8_0(const float* x, void* dst, int64_t n) {
  QuantizeAct<BlockQ8_0, kQK8_0>(x, dst, n, origami::ref::QuantQ8_0, [](BlockQ8_0& b) { b.d = kFp16NaN; });
}

void QuantizeActQ8_1(const float* x, void* dst, int64_t n) {
  QuantizeAct<BlockQ8_1, kQK8_1>(x, dst, n, origami::ref::QuantQ8_1, [](BlockQ8_1& b) { b.d = b.s = kFp16NaN; });
}

void QuantizeActQ8_K(const float* x, void* dst, int64_t n) {
  QuantizeAct<BlockQ8_K, kQK_K>(x, dst, n, origami::ref::QuantQ8_K, [](BlockQ8_K& b) { b.d = std::nanf(""); });
}

}  // namespace origami::cpu::ref
