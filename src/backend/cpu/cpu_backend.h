// The CPU backend: the dispatch table's kernels (kernels/cpu), one thread pool, and the scratch
// memory of attention and the routed experts. Activations are host memory.
#pragma once

#include <utility>
#include <vector>

#include "backend/backend.h"
#include "kernels/cpu/kernels.h"
#include "util/thread_pool.h"

namespace origami {

class CpuBackend final : public Backend {
 public:
  // Runs the kernels of `kernels` (one of the dispatch tables) on `pool`.
  CpuBackend(ThreadPool& pool, const cpu::KernelTable& kernels);

  const char* name() const override { return "cpu"; }
  const char* variant() const override { return cpu::IsaName(kernels_.isa); }
  int threads() const override { return pool_.size(); }
  Layout PreferredLayout(const MatrixView& w) const override;
  void Repack(Layout to, const void* src, void* dst, int64_t rows, int64_t cols) const override;

  std::unique_ptr<Buffer> Allocate(size_t floats) override;
  std::unique_ptr<KvMemory> AllocateKv(size_t bytes) override { return HostKvMemory(bytes); }
  void Upload(const float* host, Tensor x) override;
  void Download(Tensor x, float* host) override;

  void Embed(const MatrixView& table, std::span<const int32_t> tokens, float scale, Tensor x) override;
  void RmsNorm(Tensor x, const float* w, int64_t w_len, float eps, Tensor y) override;
  void LayerNorm(Tensor x, const float* w, const float* b, float eps, Tensor y) override;
  void Unary(UnaryKind kind, Tensor x) override;
  void AddBias(Tensor y, const float* b) override;
  void Add(Tensor x, Tensor y) override;
  void CopyColumns(const CopyOp& op, Tensor src, Tensor dst) override;
  void MatMul(std::span<const MatMulOp> ops) override;
  void HeadMatMul(const HeadMatMulOp& op, Tensor x, Tensor y) override;
  void LoraAdd(std::span<const LoraOp> ops) override;
  void Activation(const ActivationOp& op, Tensor gate, Tensor up) override;
  void RopeAndStore(const RopeOp& op, int il, Tensor q, Tensor k, Tensor v, const PagedBatch& batch) override;
  void Attention(const AttentionOp& op, int il, Tensor q, const PagedBatch& batch, Tensor out) override;
  void Rope(const RopeOp& op, std::span<const int32_t> pos, Tensor q, Tensor k) override;
  void EncoderAttention(const EncoderAttentionOp& op, Tensor q, Tensor k, Tensor v, Tensor out) override;
  void Moe(const MoeOp& op, Tensor xn, Tensor out) override;
  void Logits(Tensor x, const uint8_t* want, const float* norm, float eps, const MatrixView& out,
              float* host_logits) override;
  void NormedRows(Tensor x, const uint8_t* want, const float* norm, float eps, float* host_rows) override;

 private:
  ThreadPool& pool_;
  const cpu::KernelTable& kernels_;
  cpu::Workspace ws_;
  std::vector<float> head_in_;  // the output head's normalized rows
  std::vector<cpu::MatMulJob> jobs_;
  // LoRA scratch: every op's A x ([n, rank]) and B (A x) ([n, n_out]), one after the other.
  std::vector<float> lora_u_, lora_v_;

  // Attention tiles: t0, nt = consecutive batch tokens of one sequence (cpu_attention.cpp).
  struct Tile {
    int t0 = 0, nt = 0;
  };
  static constexpr int kTileRows = 32;   // query rows (tokens x heads of one GQA group) per tile
  static constexpr int kBlockRows = 64;  // cache rows per block (a multiple of 4, see kernels.h)
  std::vector<Tile> tiles_;
  std::vector<float> scores_;      // [threads, tile rows, span]: one tile's scores, then weights
  std::vector<const void*> rows_;  // [threads, 2 (K, V), span]: the cache rows one tile reads
  // The flash path's scratch: per thread the tile's queries, a float K and V block, the block's
  // scores and the rows' softmax states; partial_ holds the states of split contexts (decode).
  std::vector<float> flash_, partial_;
  void AttentionExact(const AttentionOp& op, int il, Tensor q, const PagedBatch& batch, Tensor out,
                      int tile_tokens, int split);
  void AttentionFlash(const AttentionOp& op, int il, Tensor q, const PagedBatch& batch, Tensor out,
                      int tile_tokens, int split);

  // Encoder attention's scores, one row of a sequence's length per thread (cpu_encoder_attention.cpp).
  std::vector<float> enc_scores_;

  // The routed experts' scratch (cpu_moe.cpp).
  struct MoeScratch {
    std::vector<float> logits, weights;  // [n, n_expert], [n, k]
    std::vector<int> ids;                // [n, k]
    // Rows gathered per expert, every routed expert's one after the other ([n * k, ...]).
    std::vector<float> xg, gate, up, y;
    std::vector<std::vector<std::pair<int, float>>> by_expert;  // expert -> (token, weight)
    std::vector<int> used, first_row;     // experts with tokens, and each one's first row
    std::vector<MatrixView> views;        // [gate, up, down] per used expert
    std::vector<cpu::MatMulJob> jobs;
  } moe_;
};

// gate = act(gate) * up over n values (SwiGLU, GeGLU or gpt-oss's clamped SwiGLU); out may alias gate.
void CpuGatedActivation(const ActivationOp& op, const float* gate, const float* up, float* out, int64_t n);

// The plain twin of CpuBackend::LoraAdd for one op, the oracle its test compares with: for each
// token, u = A x in float with a double accumulator, then y += scale * (B u) the same way.
void CpuLoraAddRef(const LoraOp& op);

}  // namespace origami
