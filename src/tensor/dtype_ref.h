// Reference (scalar) conversions of each dtype, the oracle every fast kernel is tested against.
// n is the number of elements and must be a multiple of the type's block size.
#pragma once

#include <cstdint>

namespace origami::ref {

void DequantF32(const void* src, float* dst, int64_t n);
void DequantF16(const void* src, float* dst, int64_t n);
void DequantBF16(const void* src, float* dst, int64_t n);
void DequantQ4_0(const void* src, float* dst, int64_t n);
void DequantQ4_1(const void* src, float* dst, int64_t n);
void DequantQ5_0(const void* src, float* dst, int64_t n);
void DequantQ5_1(const void* src, float* dst, int64_t n);
void DequantQ8_0(const void* src, float* dst, int64_t n);
void DequantQ8_1(const void* src, float* dst, int64_t n);
void DequantQ2_K(const void* src, float* dst, int64_t n);
void DequantQ3_K(const void* src, float* dst, int64_t n);
void DequantQ4_K(const void* src, float* dst, int64_t n);
void DequantQ5_K(const void* src, float* dst, int64_t n);
void DequantQ6_K(const void* src, float* dst, int64_t n);
void DequantQ8_K(const void* src, float* dst, int64_t n);

void QuantF32(const float* src, void* dst, int64_t n);
void QuantF16(const float* src, void* dst, int64_t n);
void QuantBF16(const float* src, void* dst, int64_t n);
void QuantQ4_0(const float* src, void* dst, int64_t n);
void QuantQ4_1(const float* src, void* dst, int64_t n);
void QuantQ5_0(const float* src, void* dst, int64_t n);
void QuantQ5_1(const float* src, void* dst, int64_t n);
void QuantQ8_0(const float* src, void* dst, int64_t n);
void QuantQ8_1(const float* src, void* dst, int64_t n);
void QuantQ8_K(const float* src, void* dst, int64_t n);

// The packed sub-block scales of the K-quants, shared by the dequantizers, the quantizers and the
// kernels. Q3KScale: the signed scale (-32..31) of sub-block s (0..15) from a Q3_K scales[12].
// Q4KScaleMin: the 6-bit scale and min of sub-block s (0..7) from a Q4_K/Q5_K scales[12].
int Q3KScale(const uint8_t scales[12], int s);
void Q4KScaleMin(const uint8_t scales[12], int s, int* sc, int* m);

}  // namespace origami::ref
