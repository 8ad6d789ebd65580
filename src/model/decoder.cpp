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
  int64_t q_dim = 0, kv_dim = 0, v_dim = 0, att_dim = 0, ff = 0;
  int64_t mq = 0, qa = 0, kva = 0, lat = 0, kvb = 0, mo = 0;
  for (const auto& l : spec_.layers) {
    q_dim = std::max<int64_t>(q_dim, static_cast<int64_t>(l.n_head) * l.head_dim);
    kv_dim = std::max<int64_t>(kv_dim, static_cast<int64_t>(l.n_head_kv) * l.head_dim);
    v_dim = std::max<int64_t>(v_dim, static_cast<int64_t>(l.n_head_kv) * l.v_dim());
    att_dim = std::max<int64_t>(att_dim, static_cast<int64_t>(l.n_head) * l.v_dim());
    ff = std::max<int64_t>({ff, l.n_ff, l.n_ff_shexp});
    // An encoder's fused Q/K/V product lands in gate_ before the FFN uses it (model/encoder.cpp).
    if (l.wqkv.data) ff = std::max<int64_t>(ff, l.wqkv.rows);
    if (l.mla()) {
      mq = std::max<int64_t>(mq, static_cast<int64_t>(l.n_head) * (l.mla_nope + l.rope_dim));
      qa = std::max<int64_t>(qa, l.q_lora_rank);
      kva = std::max<int64_t>(kva, l.kv_lora_rank + l.rope_dim);
      lat = std::max<int64_t>(lat, l.kv_lora_rank);
      if (!l.mla_latent_cache)
        kvb = std::max<int64_t>(kvb, static_cast<int64_t>(l.n_head) * (l.mla_nope + l.mla_v));
      mo = std::max<int64_t>(mo, static_cast<int64_t>(l.n_head) * l.mla_v);
    }
  }
  const size_t e = spec_.n_embd;
  x_ = backend_.Allocate(n * e);
  xn_ = backend_.Allocate(n * e);
  tmp_ = backend_.Allocate(n * std::max<size_t>(e, q_dim));
  q_ = backend_.Allocate(n * q_dim);
  k_ = backend_.Allocate(n * kv_dim);
  v_ = backend_.Allocate(n * v_dim);
  att_ = backend_.Allocate(n * att_dim);
  gate_ = backend_.Allocate(n * ff);
  up_ = backend_.Allocate(n * ff);
  if (kva > 0) {
    mq_ = backend_.Allocate(n * mq);
    qa_ = backend_.Allocate(n * std::max<int64_t>(qa, 1));
    kva_ = backend_.Allocate(n * kva);
    lat_ = backend_.Allocate(n * lat);
    kvb_ = backend_.Allocate(n * std::max<int64_t>(kvb, 1));
    mo_ = backend_.Allocate(n * mo);
  }
  if (spec_.HasSharedExperts()) shared_ = backend_.Allocate(n * e);
  capacity_ = n;
}

void Decoder::MlaAttention(const LayerSpec& l, int il, Tensor xn, const PagedBatch& batch, Tensor out) {
  Backend& be = backend_;
  const int64_t n = xn.rows, r = l.kv_lora_rank, rope = l.rope_dim, nope = l.mla_nope, hv = l.mla_v;
  const int h = l.n_head;
  const float eps = spec_.norm_eps;
  const Tensor mq{mq_->data(), n, h * (nope + rope)}, qa{qa_->data(), n, l.q_lora_rank};
  const Tensor kva{kva_->data(), n, r + rope}, lat{lat_->data(), n, r};
  // The query heads [q_nope | q_rope] (through the compressed query, or straight from x) and the
  // normalized latent with the rope key, from x.
  const MatMulOp first[2] = {l.q_lora_rank > 0 ? MatMulOp{&l.wq_a, xn, qa} : MatMulOp{&l.wq, xn, mq},
                             MatMulOp{&l.wkv_a, xn, kva}};
  be.MatMul(first);
  if (l.q_lora_rank > 0) {
    be.RmsNorm(qa, l.q_a_norm.data(), l.q_lora_rank, eps, qa);
    const MatMulOp second{&l.wq_b, qa, mq};
    be.MatMul({&second, 1});
  }
  be.CopyColumns({0, 0, 0, 0, r, 1}, kva, lat);
  be.RmsNorm(lat, l.kv_a_norm.data(), r, eps, lat);

  AttentionOp attn;
  attn.n_head = h, attn.n_head_kv = l.n_head_kv, attn.head_dim = l.head_dim, attn.head_dim_v = l.v_dim();
  attn.scale = l.attn_scale;
  const Tensor o{att_->data(), n, static_cast<int64_t>(h) * l.v_dim()};  // the heads' attention outputs
  const Tensor mo{mo_->data(), n, h * hv};                              // the value heads, for wo
  const RopeTable table = spec_.ropes[l.rope_index].Table();
  if (l.mla_latent_cache) {
    // What MLA caches: one row [c | k_pe] per token, c also the value. Each query head becomes
    // [W_UK_h^T q_nope_h | q_rope_h] (q_nope . k_nope_j = (W_UK_h^T q_nope) . c_j), and each
    // head's output over the latents is expanded by W_UV_h.
    const int64_t hd = r + rope;
    const Tensor q{q_->data(), n, h * hd}, k{k_->data(), n, hd};
    if (l.wkv_b.data)
      be.HeadMatMul({&l.wkv_b, h, nope + hv, 0, nope, /*transposed=*/true, 0, nope + rope, 0, hd}, mq, q);
    else  // the split form stores W_UK_h^T itself
      be.HeadMatMul({&l.wk_b, h, r, 0, r, /*transposed=*/false, 0, nope + rope, 0, hd}, mq, q);
    be.CopyColumns({nope, nope + rope, r, hd, rope, h}, mq, q);
    be.CopyColumns({0, 0, 0, 0, r, 1}, lat, k);
    be.CopyColumns({r, 0, r, 0, rope, 1}, kva, k);
    be.RopeAndStore({table, h, 1, static_cast<int>(hd), static_cast<int>(r)}, il, q, k, lat, batch);
    be.Attention(attn, il, q, batch, o);
    if (l.wkv_b.data)
      be.HeadMatMul({&l.wkv_b, h, nope + hv, nope, hv, /*transposed=*/false, 0, r, 0, hv}, o, mo);
    else
      be.HeadMatMul({&l.wv_b, h, hv, 0, hv, /*transposed=*/false, 0, r, 0, hv}, o, mo);
  } else {
    // Expanded: keys [k_nope_h | k_pe] (k_pe repeated in every head; rope rotates it there),
    // values v_h, from [k_nope_h | v_h] = (W_UKV c)_h.
    const int64_t hd = nope + rope;
    const Tensor k{k_->data(), n, h * hd}, v{v_->data(), n, h * hv};
    const Tensor kvb{kvb_->data(), n, h * (nope + hv)};
    const MatMulOp expand{&l.wkv_b, lat, kvb};
    be.MatMul({&expand, 1});
    be.CopyColumns({0, nope + hv, 0, hd, nope, h}, kvb, k);
    be.CopyColumns({r, 0, nope, hd, rope, h}, kva, k);
    be.CopyColumns({nope, nope + hv, 0, hv, hv, h}, kvb, v);
    be.RopeAndStore({table, h, h, static_cast<int>(hd), static_cast<int>(nope)}, il, mq, k, v, batch);
    be.Attention(attn, il, mq, batch, mo);
  }
  const MatMulOp wo{&l.wo, mo, out};
  be.MatMul({&wo, 1});
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
  if (spec_.encoder)
    FailKind(ErrorKind::kUnsupported, "'{}' is an encoder (embeddings and reranking only); it does not generate",
             spec_.arch);
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
  const PagedBatch batch = RunLayers(batch_tokens, n, first_layer, last_layer, hidden_in);
  const Tensor x{x_->data(), n, spec_.n_embd};
  // Not the last layer, or a last stage asked for the final hidden states (logits null): another
  // process applies the output head.
  if (last_layer < spec_.n_layer() || !logits) {
    if (hidden_out) backend_.Download(x, hidden_out);
    return;
  }
  backend_.Logits(x, batch.logits, spec_.output_norm.data(), spec_.norm_eps, spec_.output, logits);
}

void Decoder::ForwardHidden(const BatchToken* batch_tokens, int n, float* hidden) {
  const PagedBatch batch = RunLayers(batch_tokens, n, 0, spec_.n_layer(), nullptr);
  const Tensor x{x_->data(), n, spec_.n_embd};
  backend_.NormedRows(x, batch.logits, spec_.output_norm.data(), spec_.norm_eps, hidden);
}

PagedBatch Decoder::RunLayers(const BatchToken* batch_tokens, int n, int first_layer, int last_layer,
                              const float* hidden_in) {
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
    // Attention block: norm, Q/K/V, rope, cache, attention, output projection, residual. MLA
    // (DeepSeek) makes its queries, keys and values through the compressed latent.
    be.RmsNorm(x, l.attn_norm.data(), e, spec_.norm_eps, xn);
    if (l.mla()) {
      MlaAttention(l, il, xn, batch, tmp);
    } else {
      const int64_t q_dim = static_cast<int64_t>(l.n_head) * l.head_dim;
      const int64_t kv_dim = static_cast<int64_t>(l.n_head_kv) * l.head_dim;
      const Tensor q{q_->data(), n, q_dim}, k{k_->data(), n, kv_dim}, v{v_->data(), n, kv_dim};
      const Tensor att{att_->data(), n, q_dim};
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
    }
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
      moe.select_bias = l.expert_select_bias.empty() ? nullptr : l.expert_select_bias.data();
      moe.n_group = l.n_expert_group, moe.n_group_used = l.n_expert_group_used;
      moe.weights_scale = l.expert_weights_scale;
      be.Moe(moe, xn, tmp);
      if (l.n_ff_shexp > 0) {
        // The shared experts: a dense gated FFN of every token, added to the routed experts' sum.
        const Tensor gate{gate_->data(), n, l.n_ff_shexp}, up{up_->data(), n, l.n_ff_shexp};
        const Tensor shared{shared_->data(), n, e};
        const MatMulOp gate_up[2] = {{&l.gate_shexp, xn, gate}, {&l.up_shexp, xn, up}};
        be.MatMul(gate_up);
        be.Activation(act, gate, up);
        const MatMulOp down{&l.down_shexp, gate, shared};
        be.MatMul({&down, 1});
        be.Add(tmp, shared);
      }
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
  return batch;
}

void Decoder::Head(const float* hidden, int rows, float* logits) {
  if (rows <= 0 || rows > kMaxBatch) Fail("output head over {} rows (1 to {} allowed)", rows, kMaxBatch);
  Reserve(rows);
  const Tensor x{x_->data(), rows, spec_.n_embd};
  backend_.Upload(hidden, x);
  backend_.Logits(x, nullptr, spec_.output_norm.data(), spec_.norm_eps, spec_.output, logits);
}

void Decoder::RankScores(const float* hidden, int rows, float* scores) {
  if (spec_.pooling != Pooling::kRank || spec_.encoder || !spec_.cls_out.data ||
      spec_.cls_out.rows != 2)
    Fail("'{}' has no yes/no rank head", spec_.arch);
  if (rows <= 0 || rows > kMaxBatch)
    Fail("rank head over {} rows (1 to {} allowed)", rows, kMaxBatch);
  Reserve(rows);
  const Tensor x{x_->data(), rows, spec_.n_embd}, logits{tmp_->data(), rows, 2};
  backend_.Upload(hidden, x);
  const MatMulOp c[] = {{&spec_.cls_out, x, logits}};
  backend_.MatMul(c);
  std::vector<float> yn(static_cast<size_t>(rows) * 2);
  backend_.Download(logits, yn.data());
  // softmax([yes, no])[0] = 1 / (1 + exp(no - yes)), in double so a large gap saturates cleanly.
  for (int r = 0; r < rows; ++r)
    scores[r] =
        static_cast<float>(1.0 / (1.0 + std::exp(static_cast<double>(yn[2 * r + 1]) - yn[2 * r])));
}

}  // namespace origami
