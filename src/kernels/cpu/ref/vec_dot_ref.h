// Scalar reference dot products (the oracle for every fast kernel) and the activation converters
// the scalar table uses. Quantized types: integer dot product per block with int32 accumulation,
// then one float multiply by the block scales, summed over blocks in order: the arithmetic a SIMD
// kernel does, so fast kernels are compared tightly. Float types accumulate in double.
#pragma once

#include <cstdint>

namespace origami::cpu::ref {

// Weight type x activation type. n is the element count, a multiple of the weight block size.
void VecDotF32(int64_t n, float* out, const void* w, const void* a);   // F32 x F32
void VecDotF16(int64_t n, float* out, const void* w, const void* a);   // F16 x F32
void VecDotBF16(int64_t n, float* out, const void* w, const void* a);  // BF16 x F32
void VecDotQ4_0(int64_t n, float* out, const void* w, const void* a);  // Q4_0 x Q8_0
void VecDotQ5_0(int64_t n, float* out, const void* w, const void* a);  // Q5_0 x Q8_0
void VecDotQ8_0(int64_t n, float* out, const void* w, const void* a);  // Q8_0 x Q8_0
void VecDotQ4_1(int64_t n, float* out, const void* w, const void* a);  // Q4_1 x Q8_1
void VecDotQ5_1(int64_t n, float* out, const void* w, const void* a);  // Q5_1 x Q8_1
void VecDotQ2_K(int64_t n, float* out, const void* w, const void* a);  // Q2_K x Q8_K
void VecDotQ3_K(int64_t n, float* out, const void* w, const void* a);  // Q3_K x Q8_K
void VecDotQ4_K(int64_t n, float* out, const void* w, const void* a);  // Q4_K x Q8_K
void VecDotQ5_K(int64_t n, float* out, const void* w, const void* a);  // Q5_K x Q8_K
void VecDotQ6_K(int64_t n, float* out, const void* w, const void* a);  // Q6_K x Q8_K

// Activation converters: tensor/dtype_ref's quantizers, plus one rule for non-finite input: a
// block holding NaN or Inf gets a NaN scale, so every dot product with it is NaN (the reference
// quantizers would silently drop a NaN). Fast quantizers must give the same bytes.
void QuantizeActF32(const float* x, void* dst, int64_t n);
void QuantizeActQ8_0(const float* x, void* dst, int64_t n);
void QuantizeActQ8_1(const float* x, void* dst, int64_t n);
void QuantizeActQ8_K(const float* x, void* dst, int64_t n);

// Unpacks the 6-bit scales and mins of a Q4_K/Q5_K block: sc[8], m[8].
void UnpackScalesK4(const uint8_t* scales12, uint8_t* sc, uint8_t* m);
// Unpacks the 16 signed 6-bit scales of a Q3_K block (already minus 32).
void UnpackScalesQ3K(const uint8_t* scales12, int8_t* sc);

}  // namespace origami::cpu::ref
