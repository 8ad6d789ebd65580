// Element-wise and attention ops on the CPU. These are cheap next to the matmuls (they touch
// activations, not weights), so they are written once, portably, and left to the compiler.
#pragma once

#include <cstdint>

#include "util/thread_pool.h"

namespace origami::cpu {

// y = x / sqrt(mean(x^2) + eps) * w   (w may be null: no gain). x and y may alias.
void RmsNorm(const float* x, const float* w, float* y, int64_t n, float eps);
// Standard LayerNorm with optional gain and bias.
void LayerNorm(const float* x, const float* w, const float* b, float* y, int64_t n, float eps);

enum class RopeLayout {
  kAdjacent,  // pairs (2i, 2i+1): llama.cpp's "normal" rope, used by the llama architecture in GGUF
  kNeox,      // pairs (i, i + n_rot/2): GPT-NeoX style, used by Qwen, Gemma, gpt-oss
};

// Precomputed inverse frequencies of one rope configuration: inv_freq[i] for pair i < n_rot/2.
struct RopeTable {
  int n_rot = 0;
  RopeLayout layout = RopeLayout::kAdjacent;
  float attn_factor = 1.0f;  // multiplies cos/sin (YaRN magnitude correction); 1 otherwise
  const float* inv_freq = nullptr;
};

// Rotates n_heads vectors of head_dim floats (stride head_dim) in place for one position.
void Rope(float* x, int n_heads, int head_dim, int64_t pos, const RopeTable& rope);

// In-place softmax over n values (max-subtracted; a row of -inf gives NaN like the reference).
void Softmax(float* x, int64_t n);

float Dot(const float* a, const float* b, int64_t n);
// y += a * x
void Axpy(float a, const float* x, float* y, int64_t n);
// Attention over one head, portable forms of KernelTable::attn_scores / attn_values:
// s[j] = Dot(q, k[j], hd) * scale; out = 0, then Axpy(p[j], v[j], out, hd) for each j in order.
void AttnScores(const float* q, const float* const* k, int64_t n, int64_t hd, float scale, float* s);
void AttnValues(const float* p, const float* const* v, int64_t n, int64_t hd, float* out);

// out = silu(gate) * up, element-wise; out may alias gate.
void SwiGlu(const float* gate, const float* up, float* out, int64_t n);
// out = gelu_tanh(gate) * up
void GeGlu(const float* gate, const float* up, float* out, int64_t n);


}  // namespace origami::cpu
