// The memory flags of run, chat and serve (--mem-budget, --mem-reserve, --fit) and the check
// they run before loading: plan, compare with the budget, then print one line, shrink or refuse.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>

#include "runtime/engine.h"
#include "runtime/memory_plan.h"

namespace origami {
class Model;
class Backend;
}  // namespace origami

namespace origami::cli {

struct MemoryFlags {
  std::string budget;   // --mem-budget SIZE: overrides what the machine says
  std::string reserve;  // --mem-reserve SIZE: left to the rest of the machine
  bool fit = false;     // --fit: shrink the context (then --parallel) instead of refusing
  // The budget as read when the command started, before the model was opened. Reading the model
  // (its header, the tokenizer, the page cache's readahead) charges its file pages to our memory
  // cgroup, and the cgroup's usage would then count again what the plan counts as weights:
  // `serve` under a 151 MiB v1 limit saw 70 MiB of usage at the plan, all of it the model's pages.
  std::optional<MemoryBudget> at_start;
};
// Reads the budget now (see MemoryFlags::at_start): call first thing, before Model::Open.
MemoryFlags WithBudgetAtStart(const MemoryFlags& flags);
void AddMemoryOptions(CLI::App& sub, MemoryFlags& flags, bool serve);

// The budget from the flags, or from /proc and the memory cgroup.
MemoryBudget ResolveBudget(const MemoryFlags& flags);

// run and chat: plans one sequence of n_ctx positions before anything big is allocated. Prints
// "memory: ..." to stderr and returns the context to use (smaller under --fit); throws
// origami::Error with the numbers and the flags that would fit when the plan exceeds the budget.
// draft: a draft model (-md), planned with its own KV cache of the same context.
int FitRun(const Model& model, const Backend& backend, const MemoryFlags& flags, int n_ctx,
           KvTypes kv_types, int threads, std::optional<DraftRequest> draft = std::nullopt);

// serve: the same for the Engine's pool; under --fit shrinks eo.max_seq_len (the per-sequence
// context), then eo.n_parallel, and sets eo.kv_tokens to match. Returns the plan it settled on
// and the budget (the server's /metrics report both).
struct ServeMemory {
  MemoryPlan plan;
  MemoryBudget budget;
};
// responses_bytes: the Responses store's bound (request state the plan counts).
ServeMemory FitServe(const Model& model, const Backend& backend, const MemoryFlags& flags,
                     EngineOptions& eo, bool ctx_given, int threads, int http_threads,
                     uint64_t responses_bytes);

}  // namespace origami::cli
