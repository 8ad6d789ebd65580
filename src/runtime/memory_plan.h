// The memory plan: what a model will hold resident (weights, KV cache, per-step workspaces,
// logits, per-request state, fixed overhead), computed from its spec and file before anything is
// allocated, and the budget it must fit (MemAvailable, the memory cgroup, a reserve).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/kv_cache.h"
#include "model/spec.h"
#include "util/sysmem.h"

namespace origami {

class Model;
class Backend;

// A draft model planned beside the target (speculative decoding): its own weights and its own KV
// cache of the target's context, in its own KV types (-ctkd/-ctvd).
struct DraftRequest {
  const DecoderSpec* spec = nullptr;
  uint64_t weights = 0;  // WeightBytes::resident of the draft's file
  KvTypes kv_types;
  int threads = 1;
};

// What is being planned for.
struct MemoryRequest {
  enum class Mode { kRun, kServe };  // kRun: one sequence (run, chat); kServe: the Engine's pool
  Mode mode = Mode::kRun;
  int kv_tokens = 4096;        // positions the KV cache holds (run: the context; serve: the pool)
  int max_seq_len = 0;         // serve: one sequence's limit (0: kv_tokens)
  int n_parallel = 1;          // serve: sequences decoded at once
  int http_threads = 0;        // serve: worker threads of the HTTP server
  int max_queue = 0;           // serve: requests that may wait for a slot (their prompts, state)
  uint64_t responses_bytes = 0;  // serve: the Responses API store's bound (JSON text, summed)
  int threads = 1;             // compute threads (attention scratch is per thread)
  int max_batch_tokens = 512;  // tokens per forward step (Decoder::kMaxBatch)
  KvTypes kv_types;
  std::optional<DraftRequest> draft;  // run, chat: -md
};

// The weights as they will sit in memory: mapped file pages of the tensors used; matrices the
// backend repacks move into anonymous memory and their file pages are dropped, so they replace
// rather than add to those pages (Model::PrepareWeights).
struct WeightBytes {
  uint64_t resident = 0;  // every tensor's bytes: file pages plus repacked copies, counted once
  uint64_t repacked = 0;  // of which anonymous (repacked) copies
};
// repack false: the weights stay in the file's layout (ORIGAMI_REPACK=0), nothing is copied.
WeightBytes PlanWeightBytes(const Model& model, const Backend& backend, bool repack);

struct MemoryPlan {
  MemoryRequest request;
  uint64_t weights = 0;
  uint64_t weights_repacked = 0;  // part of `weights`
  uint64_t kv = 0;                // the KV cache: kv_bytes_per_token x kv_tokens (in whole blocks)
  uint64_t kv_bytes_per_token = 0;
  uint64_t workspace = 0;  // decoder activations for max_batch_tokens, attention scores per thread
  uint64_t logits = 0;     // the logits buffer (serve: one row per batch token) and sampler state
  uint64_t requests = 0;   // serve: per-request state (token lists, sampler, HTTP), rough
  uint64_t overhead = 0;   // code, libraries, tokenizer, thread stacks, heap slack: fixed estimate
  uint64_t draft = 0;      // the draft model: weights, its KV of the same context, workspaces

  uint64_t Total() const { return weights + kv + workspace + logits + requests + overhead + draft; }
  // What is neither weights nor the KV cache (nor the draft model).
  uint64_t Other() const { return workspace + logits + requests + overhead; }
  // The largest part: "weights", "KV cache", ...
  std::string Dominant() const;
  // "1.3 GiB needed (weights 0.9, KV 0.4 at 8192 x f16, other 0.1)"
  std::string Summary() const;
  // A table, one part per line with its bytes and how it was counted.
  std::string Table() const;
};

// The Responses store's bound when --responses-max-bytes is not given: 256 MiB, or a sixteenth of
// the budget where that is less (a small container keeps its memory for KV).
uint64_t DefaultResponseStoreBytes(uint64_t budget);

// Pure arithmetic over the spec: every byte figure in the plan except the weights, which come in.
MemoryPlan PlanMemory(const DecoderSpec& spec, const WeightBytes& weights,
                      const MemoryRequest& req);

// The budget: min(MemAvailable - reserve, cgroup limit - cgroup usage), or an explicit size.
// The reserve keeps memory for the rest of the machine, so it comes off MemAvailable only: a
// cgroup's limit already is this process's own share (a 256 MiB container less a 1 GiB reserve
// would refuse everything).
struct MemoryBudget {
  uint64_t bytes = 0;
  std::string source;  // how it was reached: "MemAvailable 22.6 GiB - reserve 1.2 GiB"
  std::optional<uint64_t> cgroup_limit;  // set when the cgroup bound the budget (for messages)
};
// reserve: nullopt means max(1 GiB, 5% of MemTotal).
MemoryBudget ComputeBudget(const MachineMemory& machine, std::optional<uint64_t> reserve);
MemoryBudget ExplicitBudget(uint64_t bytes);

// The largest x in [lo, hi] with total_at(x) <= budget (total_at grows with x), or lo - 1 when
// even lo does not fit.
template <class F>
int64_t LargestFitting(int64_t lo, int64_t hi, uint64_t budget, F total_at) {
  if (total_at(lo) > budget) return lo - 1;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo + 1) / 2;
    if (total_at(mid) <= budget)
      lo = mid;
    else
      hi = mid - 1;
  }
  return lo;
}

// When `plan` exceeds `budget`: one line with the numbers, what dominates and flags that would fit
// (the largest -c, a smaller KV type). Empty when it fits.
std::string RefusalMessage(const DecoderSpec& spec, const WeightBytes& weights,
                           const MemoryPlan& plan, const MemoryBudget& budget,
                           const char* ctx_flag = "-c");

}  // namespace origami
