// Reference quantization of the K-quants (Q2_K..Q6_K): a per-sub-block least-squares scale search,
// then the sub-block scales quantized against the super-block scale. Used by `origami quantize`.
#pragma once

#include <cstdint>

namespace origami::ref {

// n is the number of elements and must be a multiple of 256. Finite input gives finite blocks as
// long as the super-block scales fit in fp16 (|x| up to about 1e6 for every type).
void QuantQ2_K(const float* src, void* dst, int64_t n);
void QuantQ3_K(const float* src, void* dst, int64_t n);
void QuantQ4_K(const float* src, void* dst, int64_t n);
void QuantQ5_K(const float* src, void* dst, int64_t n);
void QuantQ6_K(const float* src, void* dst, int64_t n);

}  // namespace origami::ref
