// --mem-budget, --mem-reserve and --fit, and the check run, chat and serve make before loading.
#include "cli/memory_flags.h"

#include <algorithm>
#include <cstdio>

#include "cli/environment.h"
#include "model/model.h"
#include "util/error.h"
#include "util/sysmem.h"

namespace origami::cli {

namespace {

constexpr int kBlock = KvPool::kDefaultBlockSize;

void PrintLine(const MemoryPlan& plan, const MemoryBudget& budget, const std::string& extra = "") {
  std::fprintf(stderr, "memory:     %s of %s budget (%s)%s\n", plan.Summary().c_str(),
               FormatBytes(budget.bytes).c_str(), budget.source.c_str(), extra.c_str());
}

}  // namespace

void AddMemoryOptions(CLI::App& sub, MemoryFlags& flags, bool serve) {
  sub.add_option(
      "--mem-budget", flags.budget,
      "memory this process may use (8G, 512M, 1.5GiB, bytes); default: min(MemAvailable - "
      "reserve, memory cgroup limit - usage)");
  sub.add_option("--mem-reserve", flags.reserve,
                 "memory left to the rest of the machine (default: max(1 GiB, 5% of RAM))");
  sub.add_flag("--fit", flags.fit,
               serve ? "shrink the per-sequence context, then --parallel, to fit the memory budget"
                     : "shrink the context to fit the memory budget instead of refusing");
}

MemoryFlags WithBudgetAtStart(const MemoryFlags& flags) {
  MemoryFlags f = flags;
  f.at_start = ResolveBudget(flags);
  return f;
}

MemoryBudget ResolveBudget(const MemoryFlags& flags) {
  if (flags.at_start) return *flags.at_start;
  if (!flags.budget.empty()) return ExplicitBudget(ParseByteSize(flags.budget, "--mem-budget"));
  std::optional<uint64_t> reserve;
  if (!flags.reserve.empty()) reserve = ParseByteSize(flags.reserve, "--mem-reserve");
  return ComputeBudget(ReadMachineMemory(), reserve);
}

int FitRun(const Model& model, const Backend& backend, const MemoryFlags& flags, int n_ctx,
           KvTypes kv_types, int threads, std::optional<DraftRequest> draft) {
  const MemoryBudget budget = ResolveBudget(flags);
  const WeightBytes weights = PlanWeightBytes(model, backend, Env().repack);
  MemoryRequest req;
  req.kv_tokens = n_ctx;
  req.kv_types = kv_types;
  req.threads = threads;
  req.draft = draft;
  const DecoderSpec& spec = model.spec();
  MemoryPlan plan = PlanMemory(spec, weights, req);
  if (plan.Total() <= budget.bytes) {
    PrintLine(plan, budget);
    return n_ctx;
  }
  if (!flags.fit) Fail("{}", RefusalMessage(spec, weights, plan, budget));
  const int64_t blocks =
      LargestFitting(1, std::max(1, n_ctx / kBlock), budget.bytes, [&](int64_t b) {
        MemoryRequest r = req;
        r.kv_tokens = static_cast<int>(b * kBlock);
        return PlanMemory(spec, weights, r).Total();
      });
  if (blocks < 1)
    Fail("{} (--fit: not even {} positions fit)", RefusalMessage(spec, weights, plan, budget),
         kBlock);
  req.kv_tokens = static_cast<int>(blocks * kBlock);
  plan = PlanMemory(spec, weights, req);
  PrintLine(plan, budget, fmt::format("; --fit: context {} instead of {}", req.kv_tokens, n_ctx));
  return req.kv_tokens;
}

ServeMemory FitServe(const Model& model, const Backend& backend, const MemoryFlags& flags,
                     EngineOptions& eo, bool ctx_given, int threads, int http_threads,
                     uint64_t responses_bytes) {
  const MemoryBudget budget = ResolveBudget(flags);
  const WeightBytes weights = PlanWeightBytes(model, backend, Env().repack);
  const DecoderSpec& spec = model.spec();
  auto request = [&](int kv_tokens, int seq, int parallel) {
    MemoryRequest r;
    r.mode = MemoryRequest::Mode::kServe;
    r.kv_tokens = kv_tokens;
    r.max_seq_len = std::min(seq, kv_tokens);
    r.n_parallel = parallel;
    r.http_threads = http_threads;
    r.max_queue = eo.max_queue;
    r.responses_bytes = responses_bytes;
    r.threads = threads;
    r.max_batch_tokens = eo.max_batch_tokens;
    r.kv_types = eo.kv_types;
    return r;
  };
  MemoryPlan plan = PlanMemory(spec, weights, request(eo.kv_tokens, eo.max_seq_len, eo.n_parallel));
  if (plan.Total() <= budget.bytes) {
    PrintLine(plan, budget);
    return {plan, budget};
  }
  if (!flags.fit) Fail("{}", RefusalMessage(spec, weights, plan, budget));
  const int old_pool = eo.kv_tokens, old_seq = eo.max_seq_len, old_parallel = eo.n_parallel;
  auto largest_pool = [&](int parallel) {
    return LargestFitting(1, std::max(1, eo.kv_tokens / kBlock), budget.bytes,
                          [&](int64_t b) {
                            const int t = static_cast<int>(b * kBlock);
                            return PlanMemory(spec, weights,
                                              request(t, std::min(eo.max_seq_len, t), parallel))
                                .Total();
                          }) *
           kBlock;
  };
  int64_t pool = largest_pool(eo.n_parallel);
  if (pool < kBlock)
    Fail("{} (--fit: not even {} positions fit)", RefusalMessage(spec, weights, plan, budget),
         kBlock);
  if (ctx_given) {
    // -c named the pool: shrink it; each sequence keeps its limit up to the pool's size.
    eo.kv_tokens = static_cast<int>(pool);
    eo.max_seq_len = std::min(eo.max_seq_len, eo.kv_tokens);
  } else {
    // The pool is parallel x per-sequence context: shorten the context down to a floor of 1024
    // (or the model's own, if smaller), then run fewer sequences at once.
    const int floor = std::min(old_seq, 1024);
    int64_t seq = pool / eo.n_parallel / kBlock * kBlock;
    if (seq < floor) {
      eo.n_parallel = static_cast<int>(std::max<int64_t>(1, pool / floor));
      pool = largest_pool(eo.n_parallel);
      seq = std::min<int64_t>(old_seq, pool / eo.n_parallel / kBlock * kBlock);
    }
    if (seq < kBlock)
      Fail("{} (--fit: no context of {} positions fits)",
           RefusalMessage(spec, weights, plan, budget), kBlock);
    eo.max_seq_len = static_cast<int>(std::min<int64_t>(seq, old_seq));
    eo.kv_tokens = eo.max_seq_len * eo.n_parallel;
  }
  plan = PlanMemory(spec, weights, request(eo.kv_tokens, eo.max_seq_len, eo.n_parallel));
  PrintLine(
      plan, budget,
      fmt::format("; --fit: KV pool {} (was {}), {} per sequence (was {}), {} parallel (was {})",
                  eo.kv_tokens, old_pool, eo.max_seq_len, old_seq, eo.n_parallel, old_parallel));
  return {plan, budget};
}

}  // namespace origami::cli
