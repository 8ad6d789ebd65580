// The CPU backend's routed experts: router, top-k selection, and the selected experts' gated
// FFNs, grouped per expert over a batch so each expert's rows are read once per batch (and only the
// routed experts' rows are read at all). Route, shared by every backend, is here too.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "backend/cpu/cpu_backend.h"
#include "kernels/cpu/ops.h"

namespace origami {

namespace {

// DeepSeek-style routing (sigmoid scores, a selection bias, expert groups): scores p from the
// logits (softmax over all experts, or a sigmoid each), selection scores p + bias, the best
// n_group_used groups by the sum of their two best selection scores (ties: lower group), the top
// k selection scores among those groups' experts (ties: lower id); the weights are the unbiased
// p of the chosen experts, renormalized when norm_topk, times weights_scale.
void RouteScored(const MoeOp& op, const float* logits, int* ids, float* weights) {
  const int ne = op.n_expert, k = op.n_expert_used;
  float p[4096], sel[4096];
  if (op.router_kind == RouterKind::kSigmoid) {
    for (int e = 0; e < ne; ++e) p[e] = 1.0f / (1.0f + std::exp(-logits[e]));
  } else {
    const float mx = *std::max_element(logits, logits + ne);
    float sum = 0.0f;
    for (int e = 0; e < ne; ++e) sum += (p[e] = std::exp(logits[e] - mx));
    for (int e = 0; e < ne; ++e) p[e] /= sum;
  }
  for (int e = 0; e < ne; ++e) sel[e] = p[e] + (op.select_bias ? op.select_bias[e] : 0.0f);
  if (op.n_group > 1 && op.n_group_used < op.n_group) {
    const int per = ne / op.n_group;
    float group_score[256];
    int groups[256];
    for (int g = 0; g < op.n_group; ++g) {
      float a = -INFINITY, b = -INFINITY;  // the best two of the group
      for (int e = g * per; e < (g + 1) * per; ++e) {
        if (sel[e] > a) b = a, a = sel[e];
        else if (sel[e] > b) b = sel[e];
      }
      group_score[g] = per > 1 ? a + b : a;
      groups[g] = g;
    }
    std::partial_sort(groups, groups + op.n_group_used, groups + op.n_group, [&](int a, int b) {
      return group_score[a] > group_score[b] || (group_score[a] == group_score[b] && a < b);
    });
    for (int j = op.n_group_used; j < op.n_group; ++j)
      std::fill_n(sel + groups[j] * per, per, -INFINITY);
  }
  int order[4096];
  std::iota(order, order + ne, 0);
  std::partial_sort(order, order + k, order + ne,
                    [&](int a, int b) { return sel[a] > sel[b] || (sel[a] == sel[b] && a < b); });
  float sum = 0.0f;
  for (int j = 0; j < k; ++j) sum += (weights[j] = p[ids[j] = order[j]]);
  for (int j = 0; j < k; ++j) weights[j] = (op.norm_topk ? weights[j] / sum : weights[j]) * op.weights_scale;
}

}  // namespace

void Route(const MoeOp& op, const float* logits, int* ids, float* weights) {
  if (op.router_kind == RouterKind::kSigmoid || op.select_bias || op.n_group > 1) {
    RouteScored(op, logits, ids, weights);
    return;
  }
  const int ne = op.n_expert, k = op.n_expert_used;
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
  if (op.router_kind == RouterKind::kSoftmaxTopK && !op.norm_topk) {
    denom = 0.0f;  // the softmax over all experts, not renormalized over the kept ones
    for (int e = 0; e < ne; ++e) denom += std::exp(logits[e] - mx);
  }
  for (int j = 0; j < k; ++j) weights[j] /= denom;
  if (op.weights_scale != 1.0f)
    for (int j = 0; j < k; ++j) weights[j] *= op.weights_scale;
}

void CpuBackend::Moe(const MoeOp& op, Tensor xn_t, Tensor out_t) {
  const int n = static_cast<int>(xn_t.rows);
  const float* xn = xn_t.data;
  float* out = out_t.data;
  const int64_t e = op.n_embd, ff = op.n_ff;
  const int ne = op.n_expert, k = op.n_expert_used;
  MoeScratch& m = moe_;
  m.logits.resize(static_cast<size_t>(n) * ne);
  m.ids.resize(static_cast<size_t>(n) * k);
  m.weights.resize(static_cast<size_t>(n) * k);
  cpu::MatMul(kernels_, *op.router, xn, n, m.logits.data(), pool_, ws_);
  m.by_expert.resize(ne);
  for (auto& v : m.by_expert) v.clear();
  for (int t = 0; t < n; ++t) {
    float* lg = &m.logits[static_cast<size_t>(t) * ne];
    if (op.router_bias)
      for (int x = 0; x < ne; ++x) lg[x] += op.router_bias[x];
    Route(op, lg, &m.ids[static_cast<size_t>(t) * k], &m.weights[static_cast<size_t>(t) * k]);
    for (int j = 0; j < k; ++j) m.by_expert[m.ids[t * k + j]].push_back({t, m.weights[t * k + j]});
  }
  // Every routed expert's rows gathered into one buffer, so their products run as two groups
  // (gate and up of all experts, then all downs) instead of three thread-pool rounds per expert.
  // A single token needs no gathering: each of its experts reads xn itself, and gate and up of
  // every expert share one conversion of it.
  m.used.clear();
  m.first_row.clear();
  int64_t rows = 0;
  for (int x = 0; x < ne; ++x) {
    if (m.by_expert[x].empty()) continue;
    m.used.push_back(x);
    m.first_row.push_back(static_cast<int>(rows));
    rows += static_cast<int64_t>(m.by_expert[x].size());
  }
  const int n_used = static_cast<int>(m.used.size());
  if (n > 1) m.xg.resize(rows * e);
  m.gate.resize(rows * ff);
  m.up.resize(rows * ff);
  m.y.resize(rows * e);
  m.views.resize(static_cast<size_t>(n_used) * 3);
  for (int u = 0; u < n_used; ++u) {
    const int x = m.used[u];
    m.views[3 * u] = op.gate.Expert(x);
    m.views[3 * u + 1] = op.up.Expert(x);
    m.views[3 * u + 2] = op.down.Expert(x);
    if (n > 1)
      for (size_t i = 0; i < m.by_expert[x].size(); ++i)
        std::copy_n(xn + m.by_expert[x][i].first * e, e, &m.xg[(m.first_row[u] + i) * e]);
  }
  auto run_group = [&] {  // in groups of at most 64 products (MatMulGroup's limit)
    for (size_t i = 0; i < m.jobs.size(); i += 64)
      cpu::MatMulGroup(kernels_,
                       std::span<const cpu::MatMulJob>(m.jobs).subspan(i, std::min<size_t>(64, m.jobs.size() - i)),
                       pool_, ws_);
  };
  m.jobs.clear();
  for (int u = 0; u < n_used; ++u) {
    const int64_t r0 = m.first_row[u], mr = static_cast<int64_t>(m.by_expert[m.used[u]].size());
    const float* xin = n > 1 ? &m.xg[r0 * e] : xn;
    m.jobs.push_back({&m.views[3 * u], xin, mr, &m.gate[r0 * ff]});
    m.jobs.push_back({&m.views[3 * u + 1], xin, mr, &m.up[r0 * ff]});
  }
  run_group();
  for (int u = 0; u < n_used; ++u) {
    const int x = m.used[u];
    const int64_t r0 = m.first_row[u], mr = static_cast<int64_t>(m.by_expert[x].size());
    for (int64_t i = r0; i < r0 + mr && op.gate_b; ++i)
      for (int64_t j = 0; j < ff; ++j) m.gate[i * ff + j] += op.gate_b[x * ff + j];
    for (int64_t i = r0; i < r0 + mr && op.up_b; ++i)
      for (int64_t j = 0; j < ff; ++j) m.up[i * ff + j] += op.up_b[x * ff + j];
  }
  CpuGatedActivation(op.act, m.gate.data(), m.up.data(), m.gate.data(), rows * ff);
  m.jobs.clear();
  for (int u = 0; u < n_used; ++u) {
    const int64_t r0 = m.first_row[u], mr = static_cast<int64_t>(m.by_expert[m.used[u]].size());
    m.jobs.push_back({&m.views[3 * u + 2], &m.gate[r0 * ff], mr, &m.y[r0 * e]});
  }
  run_group();

  // The weighted sum, expert by expert in id order (the order of the sums is fixed by the routing).
  std::fill_n(out, n * e, 0.0f);
  for (int u = 0; u < n_used; ++u) {
    const int x = m.used[u];
    const auto& toks = m.by_expert[x];
    const int mt = static_cast<int>(toks.size());
    for (int i = 0; i < mt; ++i) {
      float* o = out + toks[i].first * e;
      const float w = toks[i].second;
      const float* y = &m.y[(m.first_row[u] + i) * e];
      for (int64_t j = 0; j < e; ++j) o[j] += w * (y[j] + (op.down_b ? op.down_b[x * e + j] : 0.0f));
    }
    moe_stats_.expert_matmuls += 3;
    moe_stats_.expert_bytes += op.gate.stride + op.up.stride + op.down.stride;
    moe_stats_.routed_tokens += mt;
  }
}

}  // namespace origami
