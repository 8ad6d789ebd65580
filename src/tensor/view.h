// Views of weights as every backend sees them: a matrix (type, shape, byte layout), a stack of
// expert matrices, and the rope configuration. Plain data, no kernels: the model fills them from
// GGUF tensors, a backend reads (and may repack or upload) what they point to.
#pragma once

#include <cstdint>

#include "tensor/dtype.h"

namespace origami {

// How a matrix's bytes are ordered. kRows: as in the GGUF file. kQ4_0x8 / kQ8_0x8 / kQ4_Kx8 /
// kQ6_Kx8: Q4_0 / Q8_0 / Q4_K / Q6_K rows interleaved in groups of 8 for the CPU kernels, made once
// at load (kernels/cpu/repack.h); same bytes.
enum class Layout : uint8_t { kRows, kQ4_0x8, kQ8_0x8, kQ4_Kx8, kQ6_Kx8 };
const char* LayoutName(Layout layout);

// A weight matrix: rows x cols in `type`, row stride RowBytes(type, cols) (kRows: rows contiguous).
struct MatrixView {
  DType type = DType::kF32;
  int64_t rows = 0;
  int64_t cols = 0;
  const void* data = nullptr;
  Layout layout = Layout::kRows;
};

// A stack of n_expert matrices of the same shape, one after another in memory (a 3-D GGUF tensor
// with ne = [cols, rows, n_expert]). Expert(e) is a plain matrix view into it.
struct ExpertsView {
  DType type = DType::kF32;
  int64_t n_expert = 0, rows = 0, cols = 0;
  const void* data = nullptr;
  uint64_t stride = 0;  // bytes per expert

  MatrixView Expert(int64_t e) const {
    return {type, rows, cols, static_cast<const uint8_t*>(data) + e * stride};
  }
};

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

}  // namespace origami
