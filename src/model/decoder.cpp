// The generic decoder's forward pass, op by op through the backend.
#include "model/decoder.h"

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <utility>

#include "backend/registry.h"
#include "util/error.h"

namespace origami {

namespace {

// A product of a layer that a LoRA term may add to: which matrix, its input and its output.
struct LoraProduct {
  LoraTarget target;
  Tensor x, y;
};

// The layer's LoRA terms on `products`, all in one backend call (none: no call at all, so a model
// without adapters computes exactly as before).
void AddLora(Backend& be, const LayerSpec& l, std::initializer_list<LoraProduct> products,
             std::vector<LoraOp>& ops) {
  if (l.lora.empty()) return;
  ops.clear();
  for (const LoraTerm& t : l.lora)
    for (const LoraProduct& p : products)
      if (p.target == t.target) ops.push_back({&t.a, &t.b, t.scale, p.x, p.y});
  if (!ops.empty()) be.LoraAdd(ops);
}

}  // namespace

Decoder::Decoder(const DecoderSpec& spec, Backend& backend) : spec_(spec), backend_(backend) {}

Decoder::Decoder(const DecoderSpec& spec, ThreadPool& pool)
    : spec_(spec), owned_(MakeCpuBackend(pool)), backend_(*owned_) {}

Decoder::Decoder(const DecoderSpec& spec, std::unique_ptr<Backend> backend)
    : spec_(spec), owned_(std::move(backend)), backend_(*owned_) {}

Decoder::~Decoder() = default;

void Decoder::Reserve(int n) {
  if (n <= capacity_) return;
  int64_t q_dim = 0, kv_dim = 0, ff = 0;
  for (const auto& l : spec_.layers) {
    q_dim = std::max<int64_t>(q_dim, static_cast<int64_t>(l.n_head) * l.head_dim);
    kv_dim = std::max<int64_t>(kv_dim, static_cast<int64_t>(l.n_head_kv) * l.head_dim);
    ff = std::max<int64_t>(ff, l.n_ff);
  }
  const size_t e = spec_.n_embd;
  x_ = backend_.Allocate(n * e);
  xn_ = backend_.Allocate(n * e);
  tmp_ = backend_.Allocate(n * std::max<size_t>(e, q_dim));
  q_ = backend_.Allocate(n * q_dim);
  k_ = backend_.Allocate(n * kv_dim);
  v_ = backend_.Allocate(n * kv_dim);
  att_ = backend_.Allocate(n * q_dim);
  gate_ = backend_.Allocate(n * ff);
  up_ = backend_.Allocate(n * ff);
  capacity_ = n;
}

void Decoder::Forward(const int32_t* tokens, int n, int64_t pos0, KvCache& cache, float* logits, bool all_logits) {
  if (n <= 0) Fail("nothing to decode: empty token batch");
  std::vector<BatchToken> batch;
  for (int done = 0; done < n;) {
    const int chunk = std::min(kMaxBatch, n - done);
    batch.resize(chunk);
    for (int i = 0; i < chunk; ++i)
      batch[i] = {tokens[done + i], pos0 + done + i, &cache, all_logits || done + i == n - 1};
    float* out = all_logits ? logits + static_cast<int64_t>(done) * spec_.n_vocab : logits;
    ForwardBatch(batch.data(), chunk, out);
    done += chunk;
  }
}

void Decoder::ForwardBatch(const BatchToken* batch, int n, float* logits) {
  ForwardStage(batch, n, 0, spec_.n_layer(), nullptr, nullptr, logits);
}

PagedBatch Decoder::Flatten(const BatchToken* batch, int n) {
  if (n <= 0 || n > kMaxBatch) Fail("batch of {} tokens (1 to {} allowed)", n, kMaxBatch);
  tables_.Clear();
  caches_.clear();
  for (int i = 0; i < n; ++i) {
    const BatchToken& b = batch[i];
    if (b.token < 0 || b.token >= spec_.n_vocab)
      Fail("token id {} is out of range (vocabulary has {} tokens)", b.token, spec_.n_vocab);
    if (!b.cache || b.pos < 0 || b.pos >= b.cache->n_ctx())
      Fail("context is full: position {} exceeds the context size {}", b.pos, b.cache ? b.cache->n_ctx() : 0);
    if (b.pos >= b.cache->capacity())
      FailKind(ErrorKind::kInternal, "position {} is past the {} positions of its block table", b.pos,
               b.cache->capacity());
    // A batch holds few sequences: a linear search finds a token's sequence.
    auto it = std::find(caches_.begin(), caches_.end(), b.cache);
    if (it == caches_.end()) {
      const KvCache& c = *b.cache;
      caches_.push_back(&c);
      tables_.kv.push_back(&c.pool().layout());
      for (int blk : c.blocks()) {
        tables_.block.push_back(blk);
        tables_.window.push_back(c.pool().window() > 0 ? c.pool().WindowPart(blk) : -1);
      }
      tables_.table_begin.push_back(static_cast<int32_t>(tables_.block.size()));
      it = caches_.end() - 1;
    }
    tables_.token.push_back(b.token);
    tables_.pos.push_back(b.pos);
    tables_.seq.push_back(static_cast<int32_t>(it - caches_.begin()));
    tables_.logits.push_back(b.logits ? 1 : 0);
  }
  return tables_.View();
}

void Decoder::ForwardStage(const BatchToken* batch_tokens, int n, int first_layer, int last_layer,
                           const float* hidden_in, float* hidden_out, float* logits) {
  if (first_layer < 0 || last_layer > spec_.n_layer() || first_layer >= last_layer)
    Fail("bad layer range [{}, {}) for a model of {} layers", first_layer, last_layer, spec_.n_layer());
  const PagedBatch batch = Flatten(batch_tokens, n);
  Reserve(n);
  Backend& be = backend_;
  const int64_t e = spec_.n_embd;
  const Tensor x{x_->data(), n, e}, xn{xn_->data(), n, e}, tmp{tmp_->data(), n, e};

  // Token embeddings (or the previous stage's hidden states).
  if (hidden_in)
    be.Upload(hidden_in, x);
  else
    be.Embed(spec_.tok_embd, {batch.token, static_cast<size_t>(n)}, spec_.embd_scale, x);

  for (int il = first_layer; il < last_layer; ++il) {
    const LayerSpec& l = spec_.layers[il];
    const int64_t q_dim = static_cast<int64_t>(l.n_head) * l.head_dim;
    const int64_t kv_dim = static_cast<int64_t>(l.n_head_kv) * l.head_dim;
    const Tensor q{q_->data(), n, q_dim}, k{k_->data(), n, kv_dim}, v{v_->data(), n, kv_dim};
    const Tensor att{att_->data(), n, q_dim};

    // Attention block: norm, Q/K/V, rope, cache, attention, output projection, residual.
    be.RmsNorm(x, l.attn_norm.data(), e, spec_.norm_eps, xn);
    const MatMulOp qkv[3] = {{&l.wq, xn, q}, {&l.wk, xn, k}, {&l.wv, xn, v}};
    be.MatMul(qkv);
    AddLora(be, l, {{LoraTarget::kQ, xn, q}, {LoraTarget::kK, xn, k}, {LoraTarget::kV, xn, v}}, lora_ops_);
    if (!l.bq.empty()) be.AddBias(q, l.bq.data());
    if (!l.bk.empty()) be.AddBias(k, l.bk.data());
    if (!l.bv.empty()) be.AddBias(v, l.bv.data());
    // Per-head RMSNorm of Q and K before rope (Qwen3, Gemma 3).
    if (!l.q_norm.empty()) be.RmsNorm(q, l.q_norm.data(), l.head_dim, spec_.norm_eps, q);
    if (!l.k_norm.empty()) be.RmsNorm(k, l.k_norm.data(), l.head_dim, spec_.norm_eps, k);
    const RopeOp rope{spec_.ropes[l.rope_index].Table(), l.n_head, l.n_head_kv, l.head_dim};
    be.RopeAndStore(rope, il, q, k, v, batch);
    AttentionOp attn;
    attn.n_head = l.n_head, attn.n_head_kv = l.n_head_kv, attn.head_dim = l.head_dim;
    attn.scale = l.attn_scale > 0 ? l.attn_scale : 1.0f / std::sqrt(static_cast<float>(l.head_dim));
    attn.window = l.sliding_window;
    attn.sinks = l.attn_sinks.empty() ? nullptr : l.attn_sinks.data();
    be.Attention(attn, il, q, batch, att);
    const MatMulOp wo{&l.wo, att, tmp};
    be.MatMul({&wo, 1});
    AddLora(be, l, {{LoraTarget::kO, att, tmp}}, lora_ops_);
    if (!l.bo.empty()) be.AddBias(tmp, l.bo.data());
    // Gemma's extra norm of a block's output before it joins the residual stream.
    if (!l.post_attn_norm.empty()) be.RmsNorm(tmp, l.post_attn_norm.data(), e, spec_.norm_eps, tmp);
    be.Add(x, tmp);

    // Feed-forward block: norm, gate/up, gated activation, down projection (or the routed
    // experts), residual.
    be.RmsNorm(x, l.ffn_norm.data(), e, spec_.norm_eps, xn);
    const ActivationOp act{spec_.ffn, spec_.swiglu_alpha, spec_.swiglu_limit};
    if (l.n_expert > 0) {
      MoeOp moe;
      moe.n_expert = l.n_expert, moe.n_expert_used = l.n_expert_used;
      moe.n_embd = e, moe.n_ff = l.n_ff;
      moe.router_kind = l.router_kind, moe.norm_topk = l.norm_topk, moe.act = act;
      moe.router = &l.router;
      moe.router_bias = l.router_bias.empty() ? nullptr : l.router_bias.data();
      moe.gate = l.gate_exps, moe.up = l.up_exps, moe.down = l.down_exps;
      moe.gate_b = l.gate_exps_b.empty() ? nullptr : l.gate_exps_b.data();
      moe.up_b = l.up_exps_b.empty() ? nullptr : l.up_exps_b.data();
      moe.down_b = l.down_exps_b.empty() ? nullptr : l.down_exps_b.data();
      be.Moe(moe, xn, tmp);
    } else {
      const Tensor gate{gate_->data(), n, l.n_ff}, up{up_->data(), n, l.n_ff};
      const MatMulOp gate_up[2] = {{&l.w_gate, xn, gate}, {&l.w_up, xn, up}};
      be.MatMul(gate_up);
      AddLora(be, l, {{LoraTarget::kGate, xn, gate}, {LoraTarget::kUp, xn, up}}, lora_ops_);
      be.Activation(act, gate, up);
      const MatMulOp down{&l.w_down, gate, tmp};
      be.MatMul({&down, 1});
      AddLora(be, l, {{LoraTarget::kDown, gate, tmp}}, lora_ops_);
    }
    if (!l.post_ffn_norm.empty()) be.RmsNorm(tmp, l.post_ffn_norm.data(), e, spec_.norm_eps, tmp);
    be.Add(x, tmp);
  }

  // Not the last layer, or a last stage asked for the final hidden states (logits null): another
  // process applies the output head.
  if (last_layer < spec_.n_layer() || !logits) {
    if (hidden_out) be.Download(x, hidden_out);
    return;
  }
  be.Logits(x, batch.logits, spec_.output_norm.data(), spec_.norm_eps, spec_.output, logits);
}

void Decoder::Head(const float* hidden, int rows, float* logits) {
  if (rows <= 0 || rows > kMaxBatch) Fail("output head over {} rows (1 to {} allowed)", rows, kMaxBatch);
  Reserve(rows);
  const Tensor x{x_->data(), rows, spec_.n_embd};
  backend_.Upload(hidden, x);
  backend_.Logits(x, nullptr, spec_.output_norm.data(), spec_.norm_eps, spec_.output, logits);
}

}  // namespace origami
