// The mixture-of-experts FFN block and the gated activations.
#include "model/moe.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "kernels/cpu/ops.h"

namespace origami {

void GatedActivation(const DecoderSpec& spec, const float* gate, const float* up, float* out, int64_t n) {
  switch (spec.ffn) {
    case FfnKind::kSwiGlu: cpu::SwiGlu(gate, up, out, n); return;
    case FfnKind::kGeGlu: cpu::GeGlu(gate, up, out, n); return;
    case FfnKind::kSwiGluClamped: {
      // gpt-oss: the gate is clamped from above only, the up projection on both sides, and the
      // up term carries a +1 (as in the published reference implementation).
      const float a = spec.swiglu_alpha, lim = spec.swiglu_limit;
      for (int64_t i = 0; i < n; ++i) {
        const float g = std::min(gate[i], lim);
        const float u = std::clamp(up[i], -lim, lim);
        out[i] = g / (1.0f + std::exp(-a * g)) * (u + 1.0f);
      }
      return;
    }
  }
}

void Route(const LayerSpec& l, const float* logits, int* ids, float* weights) {
  const int ne = l.n_expert, k = l.n_expert_used;
  // Top k by logit (softmax is monotonic, so both router kinds select the same experts); ties go
  // to the lower expert id.
  int order[4096];
  std::iota(order, order + ne, 0);
  std::partial_sort(order, order + k, order + ne, [&](int a, int b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  const float mx = logits[order[0]];
  float kept = 0.0f;
  for (int j = 0; j < k; ++j) {
    ids[j] = order[j];
    weights[j] = std::exp(logits[order[j]] - mx);
    kept += weights[j];
  }
  float denom = kept;
  if (l.router_kind == RouterKind::kSoftmaxTopK && !l.norm_topk) {
    denom = 0.0f;  // the softmax over all experts, not renormalized over the kept ones
    for (int e = 0; e < ne; ++e) denom += std::exp(logits[e] - mx);
  }
  for (int j = 0; j < k; ++j) weights[j] /= denom;
}

void MoeFfn::Forward(const DecoderSpec& spec, const LayerSpec& l, const float* xn, int n, float* out,
                     const cpu::KernelTable& kernels, ThreadPool& pool, cpu::Workspace& ws) {
  const int64_t e = spec.n_embd, ff = l.n_ff;
  const int ne = l.n_expert, k = l.n_expert_used;
  logits_.resize(static_cast<size_t>(n) * ne);
  ids_.resize(static_cast<size_t>(n) * k);
  weights_.resize(static_cast<size_t>(n) * k);
  cpu::MatMul(kernels, l.router, xn, n, logits_.data(), pool, ws);
  by_expert_.resize(ne);
  for (auto& v : by_expert_) v.clear();
  for (int t = 0; t < n; ++t) {
    float* lg = &logits_[static_cast<size_t>(t) * ne];
    if (!l.router_bias.empty())
      for (int x = 0; x < ne; ++x) lg[x] += l.router_bias[x];
    Route(l, lg, &ids_[static_cast<size_t>(t) * k], &weights_[static_cast<size_t>(t) * k]);
    for (int j = 0; j < k; ++j) by_expert_[ids_[t * k + j]].push_back({t, weights_[t * k + j]});
  }
  std::fill_n(out, n * e, 0.0f);
  // Grouped per expert: gather the tokens routed to it, run its three matrices once over them.
  for (int x = 0; x < ne; ++x) {
    const auto& toks = by_expert_[x];
    const int m = static_cast<int>(toks.size());
    if (m == 0) continue;
    xg_.resize(m * e);
    gate_.resize(m * ff);
    up_.resize(m * ff);
    y_.resize(m * e);
    for (int i = 0; i < m; ++i) std::copy_n(xn + toks[i].first * e, e, &xg_[i * e]);
    cpu::MatMul(kernels, l.gate_exps.Expert(x), xg_.data(), m, gate_.data(), pool, ws);
    cpu::MatMul(kernels, l.up_exps.Expert(x), xg_.data(), m, up_.data(), pool, ws);
    for (int i = 0; i < m && !l.gate_exps_b.empty(); ++i)
      for (int64_t j = 0; j < ff; ++j) gate_[i * ff + j] += l.gate_exps_b[x * ff + j];
    for (int i = 0; i < m && !l.up_exps_b.empty(); ++i)
      for (int64_t j = 0; j < ff; ++j) up_[i * ff + j] += l.up_exps_b[x * ff + j];
    GatedActivation(spec, gate_.data(), up_.data(), gate_.data(), m * ff);
    cpu::MatMul(kernels, l.down_exps.Expert(x), gate_.data(), m, y_.data(), pool, ws);
    for (int i = 0; i < m; ++i) {
      float* o = out + toks[i].first * e;
      const float w = toks[i].second;
      for (int64_t j = 0; j < e; ++j)
        o[j] += w * (y_[i * e + j] + (l.down_exps_b.empty() ? 0.0f : l.down_exps_b[x * e + j]));
    }
    stats.expert_matmuls += 3;
    stats.expert_bytes += l.gate_exps.stride + l.up_exps.stride + l.down_exps.stride;
    stats.routed_tokens += m;
  }
}

}  // namespace origami
