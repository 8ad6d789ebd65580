// `origami run`: generate text from a prompt, streaming it to stdout, timings to stderr.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <utility>

#include "cli/cluster_flags.h"
#include "cli/commands.h"
#include "cli/environment.h"
#include "cli/lora_flags.h"
#include "cli/memory_flags.h"
#include "cli/speculation.h"
#include "model/model.h"
#include "mpi/cluster.h"
#include "runtime/engine.h"
#include "runtime/session.h"
#include "sampling/sampler.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/timer.h"

namespace origami::cli {

namespace {

struct RunOptions {
  std::string device = "cpu";  // --device
  std::string model;
  std::string prompt;
  std::string prompt_file;
  std::string prompt_ids;
  int n_predict = -1;
  int ctx_size = 0;
  int threads = 1;
  bool no_bos = false;
  bool ignore_eos = false;
  bool json = false;
  bool no_display_prompt = false;
  std::string logits_out;
  std::vector<std::string> loras;  // --lora FILE[:SCALE]
  KvTypeFlags kv;
  MemoryFlags mem;
  SamplerParams sampling;
  SpecFlags spec;
  ClusterFlags cluster;  // under mpirun: how the layers are split, how hidden states travel
};

std::vector<int32_t> ParseIds(const std::string& s) {
  std::vector<int32_t> ids;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    size_t used = 0;
    long v = 0;
    try {
      v = std::stol(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || v < 0 || v > INT32_MAX)
      Fail("--prompt-ids: '{}' is not a token id", item);
    ids.push_back(static_cast<int32_t>(v));
  }
  return ids;
}

// The prompt as text (for echoing) and as token ids, with the tokenizer when one is needed.
struct Prompt {
  std::string text;
  std::vector<int32_t> ids;
  std::unique_ptr<Tokenizer> tok;
};

Prompt PreparePrompt(const RunOptions& o, const Model& model, int n_ctx) {
  Prompt p;
  if (o.prompt_ids.empty() || !o.json) p.tok = Tokenizer::FromGguf(model.file());
  p.text = o.prompt;
  if (!o.prompt_file.empty()) {
    std::ifstream in(o.prompt_file, std::ios::binary);
    if (!in) FailKind(ErrorKind::kIo, "cannot read prompt file '{}'", o.prompt_file);
    p.text.assign(std::istreambuf_iterator<char>(in), {});
  }
  if (!o.prompt_ids.empty()) {
    p.ids = ParseIds(o.prompt_ids);
  } else {
    EncodeOptions eo;
    eo.add_special = !o.no_bos;
    eo.parse_special = true;  // the user's own prompt may spell control tokens, as in llama.cpp
    p.ids = p.tok->Encode(p.text, eo);
    if (p.ids.empty() && p.tok->bos_id() >= 0) p.ids.push_back(p.tok->bos_id());
  }
  if (p.ids.empty()) Fail("the prompt is empty and the vocabulary has no BOS token to start from");
  if (static_cast<int64_t>(p.ids.size()) >= n_ctx)
    Fail("the prompt has {} tokens, which does not fit the context size {} (raise -c/--ctx-size)",
         p.ids.size(), n_ctx);
  return p;
}

// What a generation shows as it goes (the prompt, then each token's text) and its closing report;
// the same for one process and for rank 0 of a pipeline.
class Output {
 public:
  Output(const RunOptions& o, const Prompt& p) : o_(o), p_(p) {
    if (p.tok) {
      stream_ = std::make_unique<StreamDecoder>(*p.tok);
      for (int32_t id : p.ids) stream_->Push(id);  // prime the decoder's state (leading-space rule)
    }
    if (!o.json && !o.no_display_prompt) {
      std::fputs(p.text.c_str(), stdout);
      std::fflush(stdout);
    }
  }

  // The logits after the prompt, written to --logits-out when it is given.
  void PromptLogits(std::span<const float> logits) const {
    if (o_.logits_out.empty()) return;
    std::ofstream out(o_.logits_out, std::ios::binary);
    out.write(reinterpret_cast<const char*>(logits.data()),
              static_cast<std::streamsize>(logits.size() * sizeof(float)));
    if (!out) FailKind(ErrorKind::kIo, "cannot write '{}'", o_.logits_out);
  }

  void Token(int32_t id) {
    generated_.push_back(id);
    if (!stream_) return;
    const std::string piece = stream_->Push(id);
    text_ += piece;
    if (!o_.json) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
    }
  }
  size_t n_generated() const { return generated_.size(); }

  // The rest of the text, the --json object (with `extra` merged in) and the timing lines. t0:
  // start, t1: prompt evaluated, t2: generation over.
  void Finish(double t0, double t1, double t2, const std::string& stop_reason,
              const nlohmann::json& extra) {
    if (stream_) {
      const std::string rest = stream_->Flush();
      text_ += rest;
      if (!o_.json) std::fwrite(rest.data(), 1, rest.size(), stdout);
    }
    const std::vector<int32_t>& ids = p_.ids;
    const double pp_tps = ids.size() / std::max(t1 - t0, 1e-9);
    const double tg_tps = generated_.size() / std::max(t2 - t1, 1e-9);
    if (o_.json) {
      nlohmann::json j = {{"prompt_ids", ids},
                          {"generated_ids", generated_},
                          {"text", text_},
                          {"n_prompt", ids.size()},
                          {"n_generated", generated_.size()},
                          {"stop_reason", stop_reason},
                          {"prompt_tokens_per_second", pp_tps},
                          {"generation_tokens_per_second", tg_tps}};
      if (extra.is_object()) j.update(extra);
      std::puts(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    } else {
      std::fputc('\n', stdout);
    }
    std::fflush(stdout);
    std::fprintf(stderr, "\nprompt:     %6zu tokens in %8.3f s, %10.2f tokens/s\n", ids.size(),
                 t1 - t0, pp_tps);
    std::fprintf(stderr, "generation: %6zu tokens in %8.3f s, %10.2f tokens/s (%s)\n",
                 generated_.size(), t2 - t1, tg_tps, stop_reason.c_str());
  }

 private:
  const RunOptions& o_;
  const Prompt& p_;
  std::unique_ptr<StreamDecoder> stream_;
  std::vector<int32_t> generated_;
  std::string text_;
};

// Tokens to generate at most: -n, or up to the context.
int64_t GenerationLimit(const RunOptions& o, const Prompt& p, int n_ctx) {
  return o.n_predict < 0 ? n_ctx - static_cast<int64_t>(p.ids.size()) : o.n_predict;
}

// One process: prompt evaluation, sampling and output over a Session. With `spec`, tokens after
// the first come from speculative steps (drafted, verified in one target step each); the output
// is the same at temperature 0 and has the same distribution otherwise.
int Generate(const RunOptions& o, const Prompt& p, int n_ctx, Session& session,
             Speculation* spec) {
  Output out(o, p);
  Sampler sampler(o.sampling);
  const double t0 = NowSeconds();
  std::span<float> logits = session.Eval(p.ids);
  const double t1 = NowSeconds();
  out.PromptLogits(logits);

  std::string stop_reason = "length";
  const int64_t limit = GenerationLimit(o, p, n_ctx);
  std::vector<int32_t> ready;  // tokens a speculative step produced, not yet emitted
  size_t next_ready = 0;
  for (int64_t i = 0; i < limit; ++i) {
    const int32_t id = next_ready < ready.size() ? ready[next_ready++] : sampler.Sample(logits, session.tokens());
    if (p.tok && !o.ignore_eos && p.tok->IsEog(id)) {
      stop_reason = "eos";
      break;
    }
    out.Token(id);
    if (i + 1 == limit) break;
    if (next_ready < ready.size()) continue;  // already evaluated by the target
    if (session.n_past() >= n_ctx) {
      stop_reason = "context";
      break;
    }
    if (spec) {
      ready.clear();
      next_ready = 0;
      spec->decoder->Step(id, sampler, ready);
      continue;
    }
    const int32_t next[1] = {id};
    logits = session.Eval(next);
  }
  const double t2 = NowSeconds();

  nlohmann::json extra;
  if (spec) {
    const SpecStats& st = spec->decoder->stats();
    extra["speculative"] = {{"type", SpecTypeName(spec->params.type)}, {"drafted", st.drafted},
                            {"accepted", st.accepted},           {"acceptance_rate", st.acceptance()},
                            {"target_steps", st.target_steps},   {"tokens_per_step", st.tokens_per_step()}};
  }
  out.Finish(t0, t1, t2, stop_reason, extra);
  if (spec) {
    const SpecStats& st = spec->decoder->stats();
    std::fprintf(stderr,
                 "speculative: %s, %lld drafted, %lld accepted (%.1f%%), %.2f tokens per target step (%lld steps)\n",
                 SpecTypeName(spec->params.type).c_str(), static_cast<long long>(st.drafted),
                 static_cast<long long>(st.accepted), 100 * st.acceptance(), st.tokens_per_step(),
                 static_cast<long long>(st.target_steps));
  }
  return 0;
}

// Under mpirun: one sequence through an Engine whose steps run on the pipeline of ranks, as
// `serve` runs many. The engine chunks the prompt as Session does (kMaxBatch tokens) and samples
// from the same history with the same sampler, so tokens and logits equal one process's (with the
// f32 wire). `finish` (the pipeline's closing statistics) runs once the engine has stopped.
int GenerateOnEngine(const RunOptions& o, const Prompt& p, int n_ctx, Engine& engine,
                     const std::function<nlohmann::json()>& finish) {
  Output out(o, p);
  const int64_t limit = GenerationLimit(o, p, n_ctx);
  GenerationRequest req;
  req.prompt = p.ids;
  req.sampling = o.sampling;
  // -n 0 still evaluates the prompt (--logits-out): one token is generated and not shown.
  req.max_tokens = static_cast<int>(std::clamp<int64_t>(limit, 1, INT32_MAX));
  req.ignore_eos = o.ignore_eos;
  // The prompt is over when its logits arrive on the engine thread (not when this thread next
  // wakes); both are read here only after the stream's first event.
  double t1 = 0;
  std::vector<float> prompt_logits;
  req.on_prompt_logits = [&](std::span<const float> row) {
    t1 = NowSeconds();
    if (!o.logits_out.empty()) prompt_logits.assign(row.begin(), row.end());
  };

  const double t0 = NowSeconds();
  const auto stream = engine.Submit(std::move(req));
  std::string stop_reason;
  bool first = true;
  for (StreamEvent ev; stop_reason.empty();) {
    if (!stream->Next(ev, std::chrono::milliseconds(100))) continue;
    if (ev.finish == FinishReason::kError || ev.finish == FinishReason::kCancelled)
      Fail("{}", ev.error.empty() ? std::string(FinishReasonName(ev.finish)) : ev.error);
    if (std::exchange(first, false)) out.PromptLogits(prompt_logits);
    for (const GeneratedToken& g : ev.tokens)
      if (static_cast<int64_t>(out.n_generated()) < limit) out.Token(g.token);
    if (ev.finish == FinishReason::kStop) stop_reason = "eos";
    // The engine's sequence limit is the context plus the token sampled last (RunDistributed).
    if (ev.finish == FinishReason::kLength)
      stop_reason = static_cast<int64_t>(out.n_generated()) < limit ? "context" : "length";
  }
  const double t2 = NowSeconds();
  engine.Shutdown();
  out.Finish(t0, t1, t2, stop_reason, finish());
  return 0;
}

// The pipeline's figures for --json: each rank's plan, bytes sent and resident memory.
nlohmann::json DistJson(const mpi::PipelineStats& s, const std::vector<mpi::Stage>& plan) {
  nlohmann::json ranks = nlohmann::json::array();
  uint64_t bytes = 0;
  for (size_t r = 0; r < s.rss.size(); ++r) {
    bytes += s.stage_bytes[r] + s.result_bytes[r];
    ranks.push_back({{"first_layer", plan[r].first_layer},
                     {"last_layer", plan[r].last_layer},
                     {"weight_bytes", plan[r].weight_bytes},
                     {"kv_bytes", plan[r].kv_bytes},
                     {"stage_bytes_sent", s.stage_bytes[r]},
                     {"result_bytes_sent", s.result_bytes[r]},
                     {"rss", s.rss[r]},
                     {"rss_file", s.rss_file[r]}});
  }
  const double per_token = s.tokens ? static_cast<double>(bytes) / s.tokens : 0;
  return {{"dist", {{"ranks", ranks}, {"tokens", s.tokens}, {"bytes_per_token", per_token}}}};
}

// Under mpirun: every rank opens the model (mapping is free; only touched pages become resident),
// all agree on the plan, rank 0 runs `run` on the pipeline and the others serve their stages.
int RunDistributed(const RunOptions& o) {
  const mpi::PipelineOptions po = o.cluster.Resolve();  // bad flags fail before MPI starts
  auto model = Model::Open(o.model);
  const int n_ctx = ResolveContextSize(model->spec(), o.ctx_size);
  EngineOptions eo;
  eo.n_parallel = 1;
  eo.max_queue = 1;
  // One position more than the context: a single process samples the token after the last
  // position it evaluates, and the engine counts that token in the sequence.
  eo.kv_tokens = eo.max_seq_len = n_ctx + 1;
  eo.max_batch_tokens = eo.prefill_chunk = Decoder::kMaxBatch;  // Session's chunks
  eo.prefix_cache = false;
  eo.kv_types = o.kv.Resolve();
  ThreadPool pool(o.threads);
  const auto cluster = mpi::Cluster::Join(*model, pool, eo, po);
  if (!cluster) return 0;  // a worker rank: its stages ran until rank 0 shut the pipeline down
  try {
    const Prompt p = PreparePrompt(o, *model, n_ctx);
    if (const Tokenizer* tok = p.tok.get()) eo.is_eog = [tok](int32_t id) { return tok->IsEog(id); };
    eo.on_fatal = nullptr;  // the request's stream carries the error; it is reported below
    const auto backend = OpenBackend(o.device, pool);
    Engine engine(*model, *backend, eo);
    cluster->Start(engine);
    return GenerateOnEngine(o, p, n_ctx, engine,
                            [&] { return DistJson(cluster->Finish(), cluster->plan()); });
  } catch (const Error& e) {
    // The workers wait for our messages: end the whole job.
    cluster->Abort(e.what());
  }
}

int Run(const RunOptions& o) {
  // mpirun sets the launcher's environment; a plain run never calls into MPI.
  const SpecParams spec_params = o.spec.Resolve();  // bad flags fail before anything loads
  if (Env().mpi_ranks > 1) {
    if (spec_params.type != SpecType::kNone) Fail("--spec-type is not supported under mpirun yet");
    if (!o.loras.empty()) Fail("--lora is not supported under mpirun yet");
    return RunDistributed(o);
  }
  const double t_open = NowSeconds();
  const MemoryFlags mem = WithBudgetAtStart(o.mem);  // before the model's pages are charged to us
  auto model = Model::Open(o.model);
  LoadAdapters(*model, o.loras);
  ThreadPool pool(o.threads);
  const auto backend = OpenBackend(o.device, pool);
  if (!o.cluster.split.empty())
    Fail("--split only applies under mpirun (e.g. mpirun -np 2 origami run ...)");
  // The memory plan comes before any weight page is touched or the KV cache is mapped.
  auto draft = OpenDraftModel(o.spec, spec_params, *model);  // counted by the plan
  const int n_ctx = FitRun(*model, *backend, mem, ResolveContextSize(model->spec(), o.ctx_size),
                           o.kv.Resolve(), o.threads,
                           DraftForPlan(o.spec, draft.get(), *backend, o.threads));
  const Model::Prepared& prep = PrepareWeights(*model, *backend);
  const Prompt p = PreparePrompt(o, *model, n_ctx);
  Session session(*model, *backend, n_ctx, o.kv.Resolve());
  const auto spec = MakeSpeculation(o.spec, spec_params, *model, session, o.threads, o.sampling, std::move(draft));
  if (prep.tensors > 0)
    std::fprintf(stderr, "load:       %.3f s (%s, %.1f MiB, in %.3f s)\n", NowSeconds() - t_open, prep.Summary().c_str(),
                 static_cast<double>(prep.bytes) / (1 << 20), prep.seconds);
  else
    std::fprintf(stderr, "load:       %.3f s (%s)\n", NowSeconds() - t_open, prep.Summary().c_str());
  return Generate(o, p, n_ctx, session, spec.get());
}

}  // namespace

void AddSamplingOptions(CLI::App* sub, SamplerParams& s) {
  sub->add_option("--temp", s.temperature, "temperature (0 = greedy)")->capture_default_str();
  sub->add_option("--top-k", s.top_k, "top-k sampling (0 = off)")->capture_default_str();
  sub->add_option("--top-p", s.top_p, "top-p sampling (1 = off)")->capture_default_str();
  sub->add_option("--min-p", s.min_p, "min-p sampling (0 = off)")->capture_default_str();
  sub->add_option("--repeat-penalty", s.repeat_penalty, "penalize repeated tokens (1 = off)")
      ->capture_default_str();
  sub->add_option("--repeat-last-n", s.repeat_last_n, "tokens the penalties look back (-1 = all)")
      ->capture_default_str();
  sub->add_option("--presence-penalty", s.presence_penalty, "presence penalty (0 = off)")
      ->capture_default_str();
  sub->add_option("--frequency-penalty", s.frequency_penalty, "frequency penalty (0 = off)")
      ->capture_default_str();
  sub->add_option("-s,--seed", s.seed, "random seed (4294967295 = random)")->capture_default_str();
}

void AddRunCommand(CLI::App& app, Action& action) {
  auto o = std::make_shared<RunOptions>();
  CLI::App* sub = app.add_subcommand("run", "generate text from a prompt");
  sub->add_option("-m,--model", o->model, "model file (.gguf)")->required();
  sub->add_option("-p,--prompt", o->prompt, "prompt text");
  sub->add_option("-f,--file", o->prompt_file, "read the prompt from a file");
  sub->add_option("--prompt-ids", o->prompt_ids,
                  "prompt as comma-separated token ids (no tokenizer involved)");
  sub->add_option("-n,--n-predict", o->n_predict,
                  "tokens to generate (-1 = until end of text or context)")
      ->capture_default_str();
  sub->add_option("-c,--ctx-size", o->ctx_size, "context size in tokens (0 = min(4096, model's))")
      ->capture_default_str();
  AddThreadsOption(*sub, o->threads);
  AddDeviceOption(*sub, o->device);
  AddSamplingOptions(sub, o->sampling);
  sub->add_flag("--no-bos", o->no_bos, "do not add the BOS token");
  sub->add_flag("--ignore-eos", o->ignore_eos, "keep generating past end-of-text tokens");
  sub->add_flag("--no-display-prompt", o->no_display_prompt, "do not echo the prompt");
  sub->add_flag("--json", o->json,
                "print one JSON object (ids, text, speeds) instead of streaming text");
  AddKvTypeOptions(*sub, o->kv);
  AddMemoryOptions(*sub, o->mem, /*serve=*/false);
  AddSpecOptions(*sub, o->spec);
  AddLoraOption(*sub, o->loras);
  sub->add_option("--logits-out", o->logits_out,
                  "write the logits after the prompt (float32) to this file");
  AddClusterOptions(*sub, o->cluster);
  sub->callback([o, &action] { action = [o] { return Run(*o); }; });
}

}  // namespace origami::cli
