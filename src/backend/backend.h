// The backend seam: the one interface the decoder computes through. A backend owns its memory
// (activations, workspaces), its threads or stream, and knows its weight layouts; the decoder
// describes each op (backend/ops.h) and a batch (backend/paged_batch.h) and never touches the
// numbers in between. Eager ops, coarse where backends differ (a group of products, attention over
// the paged cache, the routed experts), so the forward pass reads top to bottom in model/decoder.cpp
// and a device backend can record a step as a graph behind Logits, the one synchronisation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "backend/ops.h"
#include "backend/paged_batch.h"
#include "tensor/view.h"

namespace origami {

// Memory a backend owns (host memory on the CPU, device memory on a GPU).
class Buffer {
 public:
  virtual ~Buffer() = default;
  virtual float* data() = 0;
  virtual size_t size() const = 0;  // floats
};

// The bytes of a paged KV storage in a backend's memory (KvLayout points into them).
class KvMemory {
 public:
  virtual ~KvMemory() = default;
  virtual uint8_t* data() = 0;
  virtual size_t size() const = 0;
};
// Host memory for KV rows: an anonymous mapping, zero until written, whose pages become resident
// only as positions are written (a pool sized for a long context costs memory as it fills).
std::unique_ptr<KvMemory> HostKvMemory(size_t bytes);

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;
  // What this backend runs on within its kind: the CPU's ISA table ("avx2"), a GPU's name.
  virtual const char* variant() const = 0;
  // Threads (CPU) the backend splits work over; 1 for a device.
  virtual int threads() const = 0;

  // Weights. The layout this backend reads `w` fastest in (Layout::kRows: as in the file), and
  // the rewrite of rows of such a matrix into it; Model::PrepareWeights drives both at load.
  virtual Layout PreferredLayout(const MatrixView& w) const = 0;
  virtual void Repack(Layout to, const void* src, void* dst, int64_t rows, int64_t cols) const = 0;

  // Activations: `floats` of memory kept until the buffer is dropped.
  virtual std::unique_ptr<Buffer> Allocate(size_t floats) = 0;
  // The KV pool's storage: `bytes`, zeroed, in the memory this backend's attention reads.
  virtual std::unique_ptr<KvMemory> AllocateKv(size_t bytes) = 0;
  // Host <-> backend copies of activations (pipeline stages hand hidden states between processes).
  virtual void Upload(const float* host, Tensor x) = 0;
  virtual void Download(Tensor x, float* host) = 0;

  // x[t] = table[tokens[t]] * scale (one embedding row per token).
  virtual void Embed(const MatrixView& table, std::span<const int32_t> tokens, float scale, Tensor x) = 0;
  // y = RMSNorm(x) * w over each run of w_len values (w_len = x.cols, or the head size for a
  // per-head norm); y may alias x.
  virtual void RmsNorm(Tensor x, const float* w, int64_t w_len, float eps, Tensor y) = 0;
  // y = LayerNorm(x) * w + b over each row (mean and variance of the row; b may be null); y may
  // alias x. Encoders (bert).
  virtual void LayerNorm(Tensor x, const float* w, const float* b, float eps, Tensor y) = 0;
  // x = f(x), element-wise (encoders: GELU, tanh).
  virtual void Unary(UnaryKind kind, Tensor x) = 0;
  // y[t] += b (b has y.cols values).
  virtual void AddBias(Tensor y, const float* b) = 0;
  // x += y.
  virtual void Add(Tensor x, Tensor y) = 0;
  // Columns of src into dst as CopyOp describes (per-head splits and joins).
  virtual void CopyColumns(const CopyOp& op, Tensor src, Tensor dst) = 0;
  // Several products in one round (a layer's Q, K and V; gate and up): results equal separate
  // products bit for bit. At most 64.
  virtual void MatMul(std::span<const MatMulOp> ops) = 0;
  // Per-head products with row blocks of one matrix, as HeadMatMulOp describes.
  virtual void HeadMatMul(const HeadMatMulOp& op, Tensor x, Tensor y) = 0;
  // Low-rank terms added to products already computed (LoRA adapters): y += scale * B (A x) for
  // each op, in order; several ops may add to the same y. The decoder calls it only for matrices
  // that have an adapter, so a model without one never reaches it.
  virtual void LoraAdd(std::span<const LoraOp> ops) = 0;
  // gate = act(gate) * up, element-wise.
  virtual void Activation(const ActivationOp& op, Tensor gate, Tensor up) = 0;
  // Rotates q ([n, n_head * hd]) and k ([n, n_head_kv * hd]) at each token's position, then stores
  // k and v ([n, n_head_kv * hd_v]) as the token's row of layer il in the batch's KV storage, in
  // its KV types.
  virtual void RopeAndStore(const RopeOp& op, int il, Tensor q, Tensor k, Tensor v, const PagedBatch& batch) = 0;
  // out[t] = attention of q[t] over its sequence's rows [.., pos] of layer il (causal, windowed).
  virtual void Attention(const AttentionOp& op, int il, Tensor q, const PagedBatch& batch, Tensor out) = 0;
  // Rotates q ([n, n_head * hd]) and k ([n, n_head_kv * hd]) at the positions pos[t], without
  // storing anything (encoders with rotary positions: nomic-bert).
  virtual void Rope(const RopeOp& op, std::span<const int32_t> pos, Tensor q, Tensor k) = 0;
  // out[t] = attention of q[t] over k and v of every token of its own sequence (non-causal; the
  // batch holds whole sequences, see EncoderAttentionOp). q, k, v, out: [n, n_head * head_dim].
  virtual void EncoderAttention(const EncoderAttentionOp& op, Tensor q, Tensor k, Tensor v, Tensor out) = 0;
  // out = sum over each token's routed experts of weight * expert FFN(xn).
  virtual void Moe(const MoeOp& op, Tensor xn, Tensor out) = 0;
  // The output head for the rows of x that want logits (want[t] != 0; want null: every row):
  // RMSNorm(x[t]) * norm, then the classifier, one row of out.rows floats per such row, in order,
  // into host memory.
  virtual void Logits(Tensor x, const uint8_t* want, const float* norm, float eps, const MatrixView& out,
                      float* host_logits) = 0;
  // The output head without its classifier (embeddings): RMSNorm(x[t]) * norm for the rows that
  // want it (want null: every row), one row of x.cols floats each, in order, into host memory.
  virtual void NormedRows(Tensor x, const uint8_t* want, const float* norm, float eps, float* host_rows) = 0;

  // Expert work done so far (MoE models); tests reset it and count per decoded token.
  MoeStats& moe_stats() { return moe_stats_; }

 protected:
  MoeStats moe_stats_;
};

}  // namespace origami
