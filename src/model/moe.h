// The mixture-of-experts FFN block: router, top-k selection, and the selected experts' gated FFNs,
// grouped per expert over a batch so each expert's rows are read once per batch (and only the
// routed experts' rows are read at all). Also the gated activations shared with the dense FFN.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "model/spec.h"
#include "util/thread_pool.h"

namespace origami {

// out = act(gate) * up per spec.ffn (SwiGLU, GeGLU or gpt-oss's clamped SwiGLU); out may alias gate.
void GatedActivation(const DecoderSpec& spec, const float* gate, const float* up, float* out, int64_t n);

// Counts of the expert work done, for tests and benchmarks: a decoded token of a model with k
// experts per token adds 3 * k matmuls per MoE layer and 3 * k experts' bytes.
struct MoeStats {
  uint64_t expert_matmuls = 0;  // expert matrix products run (each over all tokens routed to it)
  uint64_t expert_bytes = 0;    // weight bytes of the expert matrices those products read
  uint64_t routed_tokens = 0;   // (token, expert) pairs
};

// Router weights of one token: the k selected experts (ids[0..k), weights[0..k)).
// Exposed for the routing unit test.
void Route(const LayerSpec& l, const float* logits, int* ids, float* weights);

class MoeFfn {
 public:
  // xn: [n, n_embd] normalized input; out: [n, n_embd] (overwritten) = sum_k w_k * expert_k(x).
  void Forward(const DecoderSpec& spec, const LayerSpec& l, const float* xn, int n, float* out,
               const cpu::KernelTable& kernels, ThreadPool& pool, cpu::Workspace& ws);

  MoeStats stats;

 private:
  std::vector<float> logits_, weights_;  // [n, n_expert], [n, k]
  std::vector<int> ids_;                 // [n, k]
  // Rows gathered per expert, every routed expert's one after the other ([n * k, ...]).
  std::vector<float> xg_, gate_, up_, y_;
  std::vector<std::vector<std::pair<int, float>>> by_expert_;  // expert -> (token, weight)
  std::vector<int> used_, first_row_;      // experts with tokens, and each one's first row
  std::vector<cpu::MatrixView> views_;     // [gate, up, down] per used expert
  std::vector<cpu::MatMulJob> jobs_;
};

}  // namespace origami
