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
  // Every routed expert's rows gathered into one buffer, so their products run as two groups
  // (gate and up of all experts, then all downs) instead of three thread-pool rounds per expert.
  // A single token needs no gathering: each of its experts reads xn itself, and gate and up of
  // every expert share one conversion of it.
  used_.clear();
  first_row_.clear();
  int64_t rows = 0;
  for (int x = 0; x < ne; ++x) {
    if (by_expert_[x].empty()) continue;
    used_.push_back(x);
    first_row_.push_back(static_cast<int>(rows));
    rows += static_cast<int64_t>(by_expert_[x].size());
  }
  const int n_used = static_cast<int>(used_.size());
  if (n > 1) xg_.resize(rows * e);
  gate_.resize(rows * ff);
  up_.resize(rows * ff);
  y_.resize(rows * e);
  views_.resize(static_cast<size_t>(n_used) * 3);
  for (int u = 0; u < n_used; ++u) {
    const int x = used_[u];
    views_[3 * u] = l.gate_exps.Expert(x);
    views_[3 * u + 1] = l.up_exps.Expert(x);
    views_[3 * u + 2] = l.down_exps.Expert(x);
    if (n > 1)
      for (size_t i = 0; i < by_expert_[x].size(); ++i)
        std::copy_n(xn + by_expert_[x][i].first * e, e, &xg_[(first_row_[u] + i) * e]);
  }
  auto run_group = [&] {  // in groups of at most 64 products (MatMulGroup's limit)
    for (size_t i = 0; i < jobs_.size(); i += 64)
      cpu::MatMulGroup(kernels, std::span<const cpu::MatMulJob>(jobs_).subspan(i, std::min<size_t>(64, jobs_.size() - i)),
                       pool, ws);
  };
  jobs_.clear();
  for (int u = 0; u < n_used; ++u) {
    const int64_t r0 = first_row_[u], m = static_cast<int64_t>(by_expert_[used_[u]].size());
    const float* xin = n > 1 ? &xg_[r0 * e] : xn;
    jobs_.push_back({&views_[3 * u], xin, m, &gate_[r0 * ff]});
    jobs_.push_back({&views_[3 * u + 1], xin, m, &up_[r0 * ff]});
  }
  run_group();
  for (int u = 0; u < n_used; ++u) {
    const int x = used_[u];
    const int64_t r0 = first_row_[u], m = static_cast<int64_t>(by_expert_[x].size());
    for (int64_t i = r0; i < r0 + m && !l.gate_exps_b.empty(); ++i)
      for (int64_t j = 0; j < ff; ++j) gate_[i * ff + j] += l.gate_exps_b[x * ff + j];
    for (int64_t i = r0; i < r0 + m && !l.up_exps_b.empty(); ++i)
      for (int64_t j = 0; j < ff; ++j) up_[i * ff + j] += l.up_exps_b[x * ff + j];
  }
  GatedActivation(spec, gate_.data(), up_.data(), gate_.data(), rows * ff);
  jobs_.clear();
  for (int u = 0; u < n_used; ++u) {
    const int64_t r0 = first_row_[u], m = static_cast<int64_t>(by_expert_[used_[u]].size());
    jobs_.push_back({&views_[3 * u + 2], &gate_[r0 * ff], m, &y_[r0 * e]});
  }
  run_group();

  // The weighted sum, expert by expert in id order (the order of the sums is fixed by the routing).
  std::fill_n(out, n * e, 0.0f);
  for (int u = 0; u < n_used; ++u) {
    const int x = used_[u];
    const auto& toks = by_expert_[x];
    const int m = static_cast<int>(toks.size());
    for (int i = 0; i < m; ++i) {
      float* o = out + toks[i].first * e;
      const float w = toks[i].second;
      const float* y = &y_[(first_row_[u] + i) * e];
      for (int64_t j = 0; j < e; ++j) o[j] += w * (y[j] + (l.down_exps_b.empty() ? 0.0f : l.down_exps_b[x * e + j]));
    }
    stats.expert_matmuls += 3;
    stats.expert_bytes += l.gate_exps.stride + l.up_exps.stride + l.down_exps.stride;
    stats.routed_tokens += m;
  }
}

}  // namespace origami
