// The speculative-decoding flags shared by `run` and `bench` (llama.cpp's spellings), and what they
// build: the drafter (with its draft model, thread pool and backend) and the speculative decoder.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "runtime/memory_plan.h"
#include "runtime/speculative.h"

namespace origami::cli {

struct SpecFlags {
  std::string type = "none";
  std::string model_draft;  // -md: implies --spec-type draft
  int threads_draft = 0;    // -td; 0: as many as -t
  KvTypeFlags kv_draft;     // -ctkd / -ctvd
  SpecParams params;
  // The parsed type and checked numbers; throws origami::Error naming the flag at fault.
  SpecParams Resolve() const;
};
void AddSpecOptions(CLI::App& sub, SpecFlags& flags);

// Speculation over one target session. Owns the draft model and its compute when there is one.
struct Speculation {
  SpecParams params;
  std::unique_ptr<Model> draft_model;
  std::unique_ptr<ThreadPool> draft_pool;
  std::unique_ptr<Backend> draft_backend;
  std::unique_ptr<Drafter> drafter;
  std::unique_ptr<SpeculativeDecoder> decoder;
};
// The draft model of --spec-type draft, opened (mapped, nothing read yet) and checked against the
// target (same vocabulary, valid -ctkd/-ctvd); null for other types. run and chat open it before the
// memory plan, which counts it (DraftForPlan).
std::unique_ptr<Model> OpenDraftModel(const SpecFlags& flags, const SpecParams& params, const Model& target);
// What the memory plan needs of that draft model; nullopt without one.
std::optional<DraftRequest> DraftForPlan(const SpecFlags& flags, const Model* draft, const Backend& backend,
                                         int threads);
// Null for --spec-type none. Takes the draft model OpenDraftModel returned, or opens it itself.
std::unique_ptr<Speculation> MakeSpeculation(const SpecFlags& flags, const SpecParams& params, const Model& target,
                                             Session& session, int threads, const SamplerParams& sampling,
                                             std::unique_ptr<Model> draft_model = nullptr);

}  // namespace origami::cli
