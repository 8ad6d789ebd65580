// The memory plan and the budget: arithmetic over the spec, mirroring what Decoder::Reserve,
// KvPool, the CPU backend's attention, Session and Engine allocate.
#include "runtime/memory_plan.h"

#include <fmt/format.h>

#include <algorithm>

#include "backend/backend.h"
#include "model/decoder.h"
#include "model/model.h"
#include "util/error.h"

namespace origami {

namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kGiB = uint64_t{1} << 30;

// Code, libstdc++, the thread pool's stacks, allocator slack: peak RSS of `origami run` on the
// tiny synthetic llama (2 threads) measured 11.4 MiB; rounded up.
constexpr uint64_t kFixedOverhead = 12 * kMiB;
// The tokenizer's tables per vocabulary entry (the token string, its score, two hash-map slots).
constexpr uint64_t kTokenizerBytesPerToken = 96;
// What one HTTP worker thread keeps resident: touched stack and its connection buffers.
constexpr uint64_t kHttpThreadBytes = 64 * 1024;
// One request's fixed share: the parsed request, its messages and the response being built.
constexpr uint64_t kRequestFixedBytes = 256 * 1024;
// The Responses store bounds the JSON text it keeps; parsed (nlohmann::json nodes, map entries,
// string headers) it takes more: about twice the text, rough.
constexpr uint64_t kStoreBytesPerTextByte = 2;
// Query rows per attention tile in the CPU backend (CpuBackend::kTileRows, private there).
constexpr int64_t kAttentionTileRows = 32;

}  // namespace

uint64_t DefaultResponseStoreBytes(uint64_t budget) {
  return std::min<uint64_t>(256 * kMiB, budget / 16);
}

WeightBytes PlanWeightBytes(const Model& model, const Backend& backend, bool repack) {
  WeightBytes w;
  for (const auto& t : model.file().tensors()) w.resident += t.n_bytes;
  w.resident += model.AdapterBytes();  // LoRA adapters, held as F32
  if (repack) w.repacked = model.PlanWeights(backend).bytes;
  return w;
}

MemoryPlan PlanMemory(const DecoderSpec& spec, const WeightBytes& weights,
                      const MemoryRequest& req) {
  MemoryPlan p;
  p.request = req;
  p.weights = weights.resident;
  p.weights_repacked = weights.repacked;
  const bool serve = req.mode == MemoryRequest::Mode::kServe;
  const int64_t kv_tokens = std::max(1, req.kv_tokens);
  const int64_t seq =
      serve && req.max_seq_len > 0 ? std::min<int64_t>(req.max_seq_len, kv_tokens) : kv_tokens;

  // KV: the pool is whole blocks of KvPool::kDefaultBlockSize positions.
  const int64_t bs = KvPool::kDefaultBlockSize;
  p.kv_bytes_per_token = KvBytesPerToken(spec, req.kv_types);
  p.kv = p.kv_bytes_per_token * static_cast<uint64_t>((kv_tokens + bs - 1) / bs * bs);

  // Workspaces: Decoder::Reserve's [n, width] float buffers for the largest step, where a run's
  // prompt is cut into chunks of kMaxBatch and serve steps take max_batch_tokens.
  int64_t q_dim = 0, kv_dim = 0, ff = 0, n_expert = 0, n_used = 0, mla = 0;
  for (const auto& l : spec.layers) {
    q_dim = std::max<int64_t>(q_dim, int64_t{l.n_head} * l.head_dim);
    kv_dim = std::max<int64_t>(kv_dim, int64_t{l.n_head_kv} * l.head_dim);
    ff = std::max<int64_t>({ff, l.n_ff, l.n_ff_shexp});
    // MLA's compressed query, latent + rope key, normalized latent and per-head expansion.
    if (l.mla())
      mla = std::max<int64_t>(mla, l.q_lora_rank + 2 * l.kv_lora_rank + l.rope_dim +
                                       int64_t{l.n_head} * (l.head_dim - l.rope_dim + l.v_dim()));
    n_expert = std::max<int64_t>(n_expert, l.n_expert);
    n_used = std::max<int64_t>(n_used, l.n_expert_used);
  }
  const int64_t e = spec.n_embd;
  const int64_t n =
      std::min<int64_t>(std::clamp(req.max_batch_tokens, 1, Decoder::kMaxBatch), kv_tokens);
  uint64_t floats = n * (2 * e + std::max(e, q_dim) + 2 * q_dim + 2 * kv_dim + 2 * ff);
  floats += n * e;  // the backend's normalized rows for the output head
  floats += n * mla;
  if (spec.HasSharedExperts()) floats += n * e;  // the shared experts' output
  if (n_expert > 0)
    floats += n * n_expert + n * n_used * (2 * e + 2 * ff);  // router and expert rows
  // Attention keeps one tile's scores per thread (kTileRows query rows x the span read) and the
  // span's K/V row pointers.
  const int64_t threads = std::max(1, req.threads);
  floats += threads * kAttentionTileRows * seq;
  p.workspace = floats * 4 + threads * 2 * seq * sizeof(void*);
  p.workspace += n * std::max(e, ff) * 2;  // activations converted for the quantized dot kernels

  // Logits: run keeps one row; the Engine one per batch token plus a scratch row. Samplers keep
  // a candidate (id, logit) per vocabulary entry and a count per entry.
  const uint64_t vocab = static_cast<uint64_t>(spec.n_vocab);
  const uint64_t sampler = vocab * 12;
  if (serve) {
    p.logits = (static_cast<uint64_t>(n) + 1) * vocab * 4;
    // Per running sequence: its sampler, token list, block table and decoded text; then the HTTP
    // workers. Rough by design: a few MiB against gigabytes of weights and KV.
    const uint64_t per_seq = sampler + static_cast<uint64_t>(seq) * 16 + kRequestFixedBytes;
    // A waiting request holds its prompt, its sampler and its HTTP job, but no KV.
    const uint64_t per_waiting = static_cast<uint64_t>(seq) * 4 + kRequestFixedBytes;
    p.requests = per_seq * static_cast<uint64_t>(std::max(1, req.n_parallel)) +
                 per_waiting * static_cast<uint64_t>(std::max(0, req.max_queue)) +
                 kHttpThreadBytes * static_cast<uint64_t>(std::max(0, req.http_threads)) +
                 kStoreBytesPerTextByte * req.responses_bytes;
  } else {
    p.logits = vocab * 4 + sampler;
    p.requests = 0;
  }
  p.overhead = kFixedOverhead + vocab * kTokenizerBytesPerToken;
  if (req.draft && req.draft->spec) {
    // The drafter runs one sequence of the target's context beside it (DraftModelDrafter); the
    // process and its fixed overhead are shared, its tokenizer is not.
    MemoryRequest d;
    d.kv_tokens = req.mode == MemoryRequest::Mode::kServe ? static_cast<int>(seq) : req.kv_tokens;
    d.kv_types = req.draft->kv_types;
    d.threads = req.draft->threads;
    d.max_batch_tokens = req.max_batch_tokens;
    const MemoryPlan dp = PlanMemory(*req.draft->spec, WeightBytes{req.draft->weights, 0}, d);
    p.draft = dp.Total() - kFixedOverhead;
  }
  return p;
}

std::string MemoryPlan::Dominant() const {
  std::pair<uint64_t, const char*> parts[] = {{weights, "weights"},        {kv, "KV cache"},
                                              {workspace, "workspaces"},   {logits, "logits"},
                                              {requests, "request state"}, {overhead, "overhead"},
                                              {draft, "draft model"}};
  return std::max_element(std::begin(parts), std::end(parts),
                          [](auto& a, auto& b) { return a.first < b.first; })
      ->second;
}

std::string MemoryPlan::Summary() const {
  // GiB as the example reads; MiB for small models, where 0.05 GiB would say nothing.
  const bool gib = Total() >= kGiB;
  const double unit = gib ? kGiB : kMiB;
  auto v = [&](uint64_t b) {
    return gib ? fmt::format("{:.2f}", b / unit) : fmt::format("{:.1f}", b / unit);
  };
  return fmt::format(
      "{} {} needed (weights {}, KV {} at {} x {}{}, {}other {})", v(Total()), gib ? "GiB" : "MiB",
      v(weights), v(kv), request.kv_tokens, KvTypeName(request.kv_types.k),
      request.kv_types.k == request.kv_types.v ? "" : "/" + KvTypeName(request.kv_types.v),
      draft ? "draft model " + v(draft) + ", " : std::string(), v(Other()));
}

std::string MemoryPlan::Table() const {
  const bool serve = request.mode == MemoryRequest::Mode::kServe;
  std::string s;
  auto row = [&](const char* what, uint64_t bytes, const std::string& how) {
    s += fmt::format("  {:<14} {:>10}  {}\n", what, FormatBytes(bytes), how);
  };
  row("weights", weights,
      weights_repacked ? fmt::format("mapped tensors; {} of them repacked (replacing their pages)",
                                     FormatBytes(weights_repacked))
                       : std::string("mapped tensors, used as laid out in the file"));
  row("KV cache", kv,
      fmt::format("{} positions x {} B ({} K, {} V){}", request.kv_tokens, kv_bytes_per_token,
                  KvTypeName(request.kv_types.k), KvTypeName(request.kv_types.v),
                  serve ? fmt::format(", shared by {} sequences", request.n_parallel) : ""));
  row("workspaces", workspace,
      fmt::format("activations for {} tokens per step, attention scores for {} threads",
                  std::min(request.max_batch_tokens, request.kv_tokens), request.threads));
  row("logits", logits, serve ? "one row per batch token, sampler" : "one row, sampler");
  if (serve)
    row("requests", requests,
        fmt::format("{} sequences, {} waiting, {} HTTP threads, responses store {} (rough)",
                    request.n_parallel, request.max_queue, request.http_threads,
                    FormatBytes(request.responses_bytes)));
  row("overhead", overhead, "code, tokenizer, stacks, heap (fixed estimate)");
  if (request.draft)
    row("draft model", draft,
        fmt::format("its weights, KV ({} K, {} V) and workspaces for the same context",
                    KvTypeName(request.draft->kv_types.k), KvTypeName(request.draft->kv_types.v)));
  s += fmt::format("  {:<14} {:>10}\n", "total", FormatBytes(Total()));
  return s;
}

MemoryBudget ComputeBudget(const MachineMemory& m, std::optional<uint64_t> reserve) {
  const uint64_t res = reserve ? *reserve : std::max<uint64_t>(kGiB, m.meminfo.total / 20);
  MemoryBudget b;
  b.bytes = m.meminfo.available > res ? m.meminfo.available - res : 0;
  b.source = fmt::format("MemAvailable {} - reserve {}", FormatBytes(m.meminfo.available),
                         FormatBytes(res));
  if (const auto head = m.cgroup.Headroom(); head && *head < b.bytes) {
    b.bytes = *head;
    b.cgroup_limit = m.cgroup.limit;
    b.source = fmt::format("cgroup {} limit {} - usage {}", m.cgroup.v2 ? "v2" : "v1",
                           FormatBytes(*m.cgroup.limit), FormatBytes(m.cgroup.usage));
  }
  return b;
}

MemoryBudget ExplicitBudget(uint64_t bytes) { return {bytes, "--mem-budget", std::nullopt}; }

std::string RefusalMessage(const DecoderSpec& spec, const WeightBytes& weights,
                           const MemoryPlan& plan, const MemoryBudget& budget,
                           const char* ctx_flag) {
  if (plan.Total() <= budget.bytes) return "";
  const MemoryRequest& req = plan.request;
  std::string msg = fmt::format(
      "not enough memory: {} needed (weights {}, KV {} at {} x {}, {}other {}) but the budget is {} "
      "({}); "
      "largest part: {}",
      FormatBytes(plan.Total()), FormatBytes(plan.weights), FormatBytes(plan.kv), req.kv_tokens,
      KvTypeName(req.kv_types.k),
      plan.draft ? "draft model " + FormatBytes(plan.draft) + ", " : std::string(),
      FormatBytes(plan.Other()), FormatBytes(budget.bytes), budget.source, plan.Dominant());
  std::vector<std::string> fits;
  // The largest context at these KV types, in whole blocks.
  const int64_t bs = KvPool::kDefaultBlockSize;
  auto at = [&](int64_t tokens, KvTypes t) {
    MemoryRequest r = req;
    r.kv_tokens = static_cast<int>(tokens);
    r.kv_types = t;
    if (r.max_seq_len > 0) r.max_seq_len = std::min(r.max_seq_len, r.kv_tokens);
    return PlanMemory(spec, weights, r).Total();
  };
  const int64_t blocks = LargestFitting(1, std::max<int64_t>(1, req.kv_tokens / bs), budget.bytes,
                                        [&](int64_t b) { return at(b * bs, req.kv_types); });
  if (blocks >= 1) fits.push_back(fmt::format("{} {}", ctx_flag, blocks * bs));
  // A smaller KV type at the asked context.
  for (DType t : {DType::kQ8_0, DType::kQ4_0}) {
    const KvTypes kt{t, t};
    if (KvBytesPerToken(spec, kt) >= plan.kv_bytes_per_token) continue;
    try {
      CheckKvTypes(spec, kt);
    } catch (const Error&) {
      continue;
    }
    if (at(req.kv_tokens, kt) <= budget.bytes) {
      fits.push_back(fmt::format("-ctk {0} -ctv {0}", KvTypeName(t)));
      break;
    }
  }
  if (fits.empty()) {
    msg += fmt::format("; nothing fits: even a context of {} needs {}", bs,
                       FormatBytes(at(bs, req.kv_types)));
  } else {
    msg += "; would fit: ";
    for (size_t i = 0; i < fits.size(); ++i) msg += (i ? " or " : "") + fits[i];
    msg += " (or --fit to choose)";
  }
  return msg;
}

}  // namespace origami
