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

}  // namespace

// ---- float weights: products summed in double, rounded once ------------------------------------

void VecDotF32(int64_t n, float* out, const void* w, const void* a) {
  const auto* x = As<float>(w);
  const auto* y = As<float>(a);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(x[i]) * y[i];
  *out = static_cast<float>(s);
}

void VecDotF16(int64_t n, float* out, const void* w, const void* a) {
  const auto* x = As<uint16_t>(w);
  const auto* y = As<float>(a);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(Fp16ToFp32(x[i])) * y[i];
  *out = static_cast<float>(s);
}

void VecDotBF16(int64_t n, float* out, const void* w, const void* a) {
  const auto* x = As<uint16_t>(w);
  const auto* y = As<float>(a);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(Bf16ToFp32(x[i])) * y[i];
  *out = static_cast<float>(s);
}

// ---- 32-element blocks against Q8_0 / Q8_1 -----------------------------------------------------

void VecDotQ4_0(int64_t n, float* out, const void* w, const void* a) {
  const auto* x = As<BlockQ4_0>(w);
  const auto* y = As<BlockQ8_0>(a);
  float acc = 0;
  for (int64_t b = 0; b < n / kQK4_0; ++b) {
    int32_t isum = 0;
    for (int j = 0; j < 16; ++j) {
      isum += ((x[b].qs[j] & 0x0f) - 8) * y[b].qs[j];
      isum += ((x[b].qs[j] >> 4) - 8) * y[b].qs[j + 16];
    }
    acc += Fp16ToFp32(x[b].d) * Fp16ToFp32(y[b].d) * static_cast<float>(isum);
  }
  *out = acc;
}

void VecDotQ5_0(int64_t n, float* out, const void* w, const void* a) {
  const auto* x = As<BlockQ5_0>(w);
  const auto* y = As<BlockQ8_0>(a);
  float acc = 0;
  for (int64_t b = 0; b < n / kQK5_0; ++b) {
    uint32_t qh;
    std::memcpy(&qh, x[b].qh, 4);
    int32_t isum = 0;
    for (int j = 0; j < 16; ++j) {
      const int q0 = (x[b].qs[j] & 0x0f) | (((qh >> j) & 1) << 4);
      const int q1 = (x[b].qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
      isum += (q0 - 16) * y[b].qs[j] + (q1 - 16) * y[b].qs[j + 16];
    }
    acc += Fp16ToFp32(x[b].d) * Fp16ToFp32(y[b].d) * static_cast<float>(isum);
  }
  *out = acc;
}

void VecDotQ8_0(int64_t n, float* out, const void* w, const void* a) {
  const auto* x = As<BlockQ8_0>(w);
  const auto* y = As<BlockQ8_0>(a);
  float acc = 0;
  for (int64_t b = 0; b < n / kQK8_0; ++b) {
    int32_t isum = 0;
    for (int j = 0; j < 32; ++j) isum += x[b].qs[j] * y[b].qs[j];
    acc += Fp16ToFp32(x[b].d) * Fp16ToFp32(y[b].d) * static_cast<float>(isum);
  }
  *out = acc;
}

// x = q * d + m, so dot = d * dy * sum(q * qy) + m * (dy * sum(qy)) = ... + m * s.
void VecDotQ4_1(int64_t n, float* out, const void* w, const void* a) {
  const auto* x = As<BlockQ4_1>(w);
  const auto* y = As<BlockQ8_1>(a);
  float acc = 0;
  for (int64_t b = 0; b < n / kQK4_1; ++b) {
    int32_t isum = 0;
    for (int j = 0; j < 16; ++j)
      isum += (x[b].qs[j] & 0x0f) * y[b].qs[j] + (x[b].qs[j] >> 4) * y[b].qs[j + 16];
    acc += Fp16ToFp32(x[b].d) * Fp16ToFp32(y[b].d) * static_cast<float>(isum) +
           Fp16ToFp32(x[b].m) * Fp16ToFp32(y[b].s);
  }
  *out = acc;
}

void VecDotQ5_1(int64_t n, float* out, const void* w, const void* a) {
  const auto* x = As<BlockQ5_1>(w);
  const auto* y = As<BlockQ8_1>(a);
  float acc = 0;
  for (int64_t b = 0; b < n / kQK5_1; ++b) {
    uint32_t qh;
    std::memcpy(&qh, x[b].qh, 4);
    int32_t isum = 0;
    for (int j = 0; j < 16; ++j) {
      const int q0 = (x[b].qs[j] & 0x0f) | (((qh >> j) & 1) << 4);
      const int q1 = (x[b].qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
      isum += q0 * y[b].qs[j] + q1 * y[b].qs[j + 16];
    }
    acc += Fp16ToFp32(x[b].d) * Fp16ToFp32(y[b].d) * static_cast<float>(isum) +
           Fp16ToFp32(x[b].m) * Fp16ToFp32(y[b].s);
  }
  *out = acc;
}

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
  const auto* x = As<BlockQ2_K>(w);
  const auto* y = As<BlockQ8_K>(a);
  float acc = 0;
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    int32_t isum = 0, msum = 0;
    for (int e = 0; e < kQK_K; ++e) {  // element e = 128 h + 32 j + l: bits 2j of qs[32 h + l]
      const int h = e / 128, j = (e % 128) / 32, l = e % 32;
      const int q = (x[b].qs[32 * h + l] >> (2 * j)) & 3;
      isum += (x[b].scales[e / 16] & 0x0f) * q * y[b].qs[e];
    }
    for (int s = 0; s < 16; ++s) msum += (x[b].scales[s] >> 4) * y[b].bsums[s];
    acc += y[b].d * Fp16ToFp32(x[b].d) * static_cast<float>(isum) -
           y[b].d * Fp16ToFp32(x[b].dmin) * static_cast<float>(msum);
  }
  *out = acc;
}

void VecDotQ3_K(int64_t n, float* out, const void* w, const void* a) {
  const auto* x = As<BlockQ3_K>(w);
  const auto* y = As<BlockQ8_K>(a);
  float acc = 0;
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    int8_t sc[16];
    UnpackScalesQ3K(x[b].scales, sc);
    int32_t isum = 0;
    for (int e = 0; e < kQK_K; ++e) {  // as Q2_K; the high bit of e is bit (4 h + j) of hmask[l]
      const int h = e / 128, j = (e % 128) / 32, l = e % 32;
      const int q = (x[b].qs[32 * h + l] >> (2 * j)) & 3;
      const int hbit = (x[b].hmask[l] >> (4 * h + j)) & 1;
      isum += sc[e / 16] * (q - (hbit ? 0 : 4)) * y[b].qs[e];
    }
    acc += y[b].d * Fp16ToFp32(x[b].d) * static_cast<float>(isum);
  }
  *out = acc;
}

void VecDotQ4_K(int64_t n, float* out, const void* w, const void* a) {
  const auto* x = As<BlockQ4_K>(w);
  const auto* y = As<BlockQ8_K>(a);
  float acc = 0;
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    uint8_t sc[8], m[8];
    UnpackScalesK4(x[b].scales, sc, m);
    int32_t isum = 0, msum = 0;
    for (int e = 0; e < kQK_K; ++e) {  // e = 64 c + l: low nibble of qs[32 c + l]; +32: high nibble
      const int c = e / 64, l = e % 32;
      const int q = (e % 64) < 32 ? (x[b].qs[32 * c + l] & 0x0f) : (x[b].qs[32 * c + l] >> 4);
      isum += sc[e / 32] * q * y[b].qs[e];
    }
    for (int s = 0; s < 8; ++s) msum += m[s] * (y[b].bsums[2 * s] + y[b].bsums[2 * s + 1]);
    acc += y[b].d * Fp16ToFp32(x[b].d) * static_cast<float>(isum) -
           y[b].d * Fp16ToFp32(x[b].dmin) * static_cast<float>(msum);
  }
  *out = acc;
}

void VecDotQ5_K(int64_t n, float* out, const void* w, const void* a) {
  const auto* x = As<BlockQ5_K>(w);
  const auto* y = As<BlockQ8_K>(a);
  float acc = 0;
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    uint8_t sc[8], m[8];
    UnpackScalesK4(x[b].scales, sc, m);
    int32_t isum = 0, msum = 0;
    for (int e = 0; e < kQK_K; ++e) {  // as Q4_K; the fifth bit is bit (e / 32) of qh[l]
      const int c = e / 64, l = e % 32;
      const int lo = (e % 64) < 32 ? (x[b].qs[32 * c + l] & 0x0f) : (x[b].qs[32 * c + l] >> 4);
      const int q = lo | (((x[b].qh[l] >> (e / 32)) & 1) << 4);
      isum += sc[e / 32] * q * y[b].qs[e];
    }
    for (int s = 0; s < 8; ++s) msum += m[s] * (y[b].bsums[2 * s] + y[b].bsums[2 * s + 1]);
    acc += y[b].d * Fp16ToFp32(x[b].d) * static_cast<float>(isum) -
           y[b].d * Fp16ToFp32(x[b].dmin) * static_cast<float>(msum);
  }
  *out = acc;
}

void VecDotQ6_K(int64_t n, float* out, const void* w, const void* a) {
  const auto* x = As<BlockQ6_K>(w);
  const auto* y = As<BlockQ8_K>(a);
  float acc = 0;
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    int32_t isum = 0;
    for (int e = 0; e < kQK_K; ++e) {
      // e = 128 h + 32 k + l: low 4 bits from ql[64 h + 32 (k & 1) + l] (high nibble when k >= 2),
      // top 2 bits are bits 2k of qh[32 h + l].
      const int h = e / 128, k = (e % 128) / 32, l = e % 32;
      const uint8_t ql = x[b].ql[64 * h + 32 * (k & 1) + l];
      const int lo = k < 2 ? (ql & 0x0f) : (ql >> 4);
      const int q = lo | (((x[b].qh[32 * h + l] >> (2 * k)) & 3) << 4);
      isum += x[b].scales[e / 16] * (q - 32) * y[b].qs[e];
    }
    acc += y[b].d * Fp16ToFp32(x[b].d) * static_cast<float>(isum);
  }
  *out = acc;
}

// ---- activation converters ---------------------------------------------------------------------

void QuantizeActF32(const float* x, void* dst, int64_t n) { std::memcpy(dst, x, static_cast<size_t>(n) * 4); }

void QuantizeActQ8_0(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ8_0*>(dst);
  for (int64_t i = 0; i < n / kQK8_0; ++i) {
    if (AllFinite(x + i * kQK8_0, kQK8_0)) {
      origami::ref::QuantQ8_0(x + i * kQK8_0, &b[i], kQK8_0);
    } else {
      std::memset(&b[i], 0, sizeof(BlockQ8_0));
      b[i].d = kFp16NaN;
    }
  }
}

void QuantizeActQ8_1(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ8_1*>(dst);
  for (int64_t i = 0; i < n / kQK8_1; ++i) {
    if (AllFinite(x + i * kQK8_1, kQK8_1)) {
      origami::ref::QuantQ8_1(x + i * kQK8_1, &b[i], kQK8_1);
    } else {
      std::memset(&b[i], 0, sizeof(BlockQ8_1));
      b[i].d = b[i].s = kFp16NaN;
    }
  }
}

void QuantizeActQ8_K(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ8_K*>(dst);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    if (AllFinite(x + i * kQK_K, kQK_K)) {
      origami::ref::QuantQ8_K(x + i * kQK_K, &b[i], kQK_K);
    } else {
      std::memset(&b[i], 0, sizeof(BlockQ8_K));
      b[i].d = std::nanf("");
    }
  }
}

}  // namespace origami::cpu::ref
