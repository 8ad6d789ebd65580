// Speculative-decoding flags and the objects they build.
#include "cli/speculation.h"

#include <cstdio>

#include "backend/registry.h"
#include "cli/environment.h"
#include "util/error.h"

namespace origami::cli {

SpecParams SpecFlags::Resolve() const {
  SpecParams p = params;
  p.type = ParseSpecType(type);
  if (!model_draft.empty() && p.type == SpecType::kNone) p.type = SpecType::kDraft;
  if (p.type == SpecType::kDraft && model_draft.empty())
    Fail("--spec-type draft needs a draft model (-md/--model-draft FILE)");
  if (p.type != SpecType::kDraft && !model_draft.empty())
    Fail("-md/--model-draft is only used with --spec-type draft, not {}", type);
  if (threads_draft < 0) Fail("-td/--threads-draft must be >= 1, got {}", threads_draft);
  ResolveSpecParams(p);
  return p;
}

void AddSpecOptions(CLI::App& sub, SpecFlags& f) {
  // -md, -td, -ctkd and -ctvd reach CLI11 as their long forms (see LlamaSpellings in main.cpp).
  sub.add_option("--spec-type", f.type, "speculative decoding: none, ngram (prompt lookup), draft (-md) or mtp")
      ->capture_default_str();
  sub.add_option("--model-draft", f.model_draft, "draft model (.gguf) with the target's vocabulary (-md)");
  sub.add_option("--threads-draft", f.threads_draft, "threads of the draft model (-td; default: -t)");
  sub.add_option("--cache-type-k-draft", f.kv_draft.k, "draft model's KV type of K (-ctkd)")->capture_default_str();
  sub.add_option("--cache-type-v-draft", f.kv_draft.v, "draft model's KV type of V (-ctvd)")->capture_default_str();
  sub.add_option("--spec-draft-n-max", f.params.n_max, "most tokens drafted per step (default 16 ngram, 8 draft)");
  sub.add_option("--spec-draft-n-min", f.params.n_min, "fewer drafted tokens than this are not verified")
      ->capture_default_str();
  sub.add_option("--spec-draft-p-min", f.params.p_min, "draft model: stop drafting below this top probability")
      ->capture_default_str();
  sub.add_option("--spec-ngram-n", f.params.ngram_n, "ngram: longest n-gram to look up (then n-1 .. 1)")
      ->capture_default_str();
}

namespace {

KvTypes DraftKvTypes(const SpecFlags& flags) {
  return {ParseKvType(flags.kv_draft.k, "-ctkd/--cache-type-k-draft"),
          ParseKvType(flags.kv_draft.v, "-ctvd/--cache-type-v-draft")};
}

int DraftThreads(const SpecFlags& flags, int threads) { return flags.threads_draft > 0 ? flags.threads_draft : threads; }

}  // namespace

std::unique_ptr<Model> OpenDraftModel(const SpecFlags& flags, const SpecParams& params, const Model& target) {
  if (params.type != SpecType::kDraft) return nullptr;
  auto draft = Model::Open(flags.model_draft);
  CheckSameVocabulary(target, *draft);
  CheckKvTypes(draft->spec(), DraftKvTypes(flags), /*draft=*/true);
  return draft;
}

std::optional<DraftRequest> DraftForPlan(const SpecFlags& flags, const Model* draft, const Backend& backend,
                                         int threads) {
  if (!draft) return std::nullopt;
  DraftRequest d;
  d.spec = &draft->spec();
  d.weights = PlanWeightBytes(*draft, backend, Env().repack).resident;
  d.kv_types = DraftKvTypes(flags);
  d.threads = DraftThreads(flags, threads);
  return d;
}

std::unique_ptr<Speculation> MakeSpeculation(const SpecFlags& flags, const SpecParams& params, const Model& target,
                                             Session& session, int threads, const SamplerParams& sampling,
                                             std::unique_ptr<Model> draft_model) {
  if (params.type == SpecType::kNone) return nullptr;
  auto s = std::make_unique<Speculation>();
  s->params = params;
  if (params.type == SpecType::kNgram) {
    s->drafter = std::make_unique<NgramDrafter>(params.ngram_n);
  } else {
    s->draft_model = draft_model ? std::move(draft_model) : OpenDraftModel(flags, params, target);
    s->draft_pool = std::make_unique<ThreadPool>(DraftThreads(flags, threads));
    s->draft_backend = OpenBackend("cpu", *s->draft_pool);
    PrepareWeights(*s->draft_model, *s->draft_backend);
    s->drafter = std::make_unique<DraftModelDrafter>(*s->draft_model, *s->draft_backend, session.n_ctx(),
                                                     DraftKvTypes(flags), sampling, params.p_min);
  }
  s->decoder = std::make_unique<SpeculativeDecoder>(session, s->drafter.get(), params);
  return s;
}

}  // namespace origami::cli
