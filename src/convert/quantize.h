// Model quantization: rewrites a GGUF with its weight matrices in another type, or in one of the
// mixes people know from llama.cpp (Q4_K_M: Q4_K with Q6_K where it matters most).
#pragma once

#include <functional>
#include <string>

#include "util/thread_pool.h"

namespace origami {

struct QuantizeOptions {
  std::string input;
  std::string output;
  std::string type;  // F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K..Q6_K, Q4_K_M, Q5_K_M, Q4_K_S, Q5_K_S, Q3_K_M
};

struct TensorReport {
  std::string name;
  std::string from, to;
  double rel_rmse = 0;  // rms(dequant(quant(x)) - x) / rms(x); 0 when copied
  size_t index = 0, count = 0;
};

// Quantizes, calling `progress` after each tensor. Throws origami::Error on bad input.
void QuantizeModel(const QuantizeOptions& opt, ThreadPool& pool, const std::function<void(const TensorReport&)>& progress);

// The type a tensor gets under a quantization scheme (exposed for tests).
// n_layer is used by the mixes' "more bits for the first, last and every third layer" rule.
std::string TensorTargetType(const std::string& scheme, const std::string& name, int64_t ne0, int n_dims,
                             int layer, int n_layer, bool has_output);

}  // namespace origami
