// Element-wise and attention ops on the CPU. These are cheap next to the matmuls (they touch
// activations, not weights), so they are written once, portably, and left to the compiler.
#pragma once

#include <cstdint>

#include "kernels/cpu/kernels.h"
#include "tensor/view.h"
#include "util/thread_pool.h"

namespace origami::cpu {

// y = x / sqrt(mean(x^2) + eps) * w   (w may be null: no gain). x and y may alias.
void RmsNorm(const float* x, const float* w, float* y, int64_t n, float eps);
// Standard LayerNorm with optional gain and bias.
void LayerNorm(const float* x, const float* w, const float* b, float* y, int64_t n, float eps);

using origami::RopeLayout;
using origami::RopeTable;

// Rotates n_heads vectors of head_dim floats (stride head_dim) in place for one position.
void Rope(float* x, int n_heads, int head_dim, int64_t pos, const RopeTable& rope);

// In-place softmax over n values (max-subtracted; a row of -inf gives NaN like the reference).
void Softmax(float* x, int64_t n);

float Dot(const float* a, const float* b, int64_t n);
// y += a * x
void Axpy(float a, const float* x, float* y, int64_t n);
// Attention over one head, portable forms of KernelTable::attn[kF32]:
// s[j] = Dot(q, k[j], hd) * scale; Axpy(p[j], v[j], out, hd) for each j in order (out accumulates).
// k[j] and v[j] point to hd floats.
void AttnScores(const float* q, const void* const* k, int64_t n, int64_t hd, float scale, float* s);
void AttnValues(const float* p, const void* const* v, int64_t n, int64_t hd, float* out);
// The scalar twins for rows stored in any KV type (F16, BF16, Q8_0, Q4_0): each row is converted
// by the dtype table's reference to_float, 256 elements at a time, then Dot / Axpy as above.
AttnKernels AttnRef(DType type);
// The F16 and BF16 twins by name (the AVX2 forms fall back to them for head sizes off the grid).
void AttnScoresF16(const float* q, const void* const* k, int64_t n, int64_t hd, float scale, float* s);
void AttnValuesF16(const float* p, const void* const* v, int64_t n, int64_t hd, float* out);
void AttnScoresBF16(const float* q, const void* const* k, int64_t n, int64_t hd, float scale, float* s);
void AttnValuesBF16(const float* p, const void* const* v, int64_t n, int64_t hd, float* out);

// out = silu(gate) * up, element-wise; out may alias gate.
void SwiGlu(const float* gate, const float* up, float* out, int64_t n);
// out = gelu_tanh(gate) * up
void GeGlu(const float* gate, const float* up, float* out, int64_t n);


}  // namespace origami::cpu
