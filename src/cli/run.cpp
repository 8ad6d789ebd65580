// `origami run`: generate text from a prompt, streaming it to stdout, timings to stderr.
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/commands.h"
#include "cli/environment.h"
#include "cli/lora_flags.h"
#include "cli/memory_flags.h"
#include "cli/speculation.h"
#include "mpi/pipeline.h"
#include "mpi/world.h"
#include "model/model.h"
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
  // Under mpirun: how the layers are split, how hidden states travel, how long to wait.
  std::string split;
  std::string wire = "f32";
  double dist_timeout = 300;
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

// Prompt evaluation, sampling and output; the same for one process (Session) and for rank 0 of a
// pipeline (mpi::PipelineSession). `finish` runs once generation is over (the pipeline's closing
// statistics); what it returns is merged into the --json object.
// With `spec`, tokens after the first come from speculative steps (drafted, verified in one target
// step each); the output is the same at temperature 0 and has the same distribution otherwise.
template <class SessionT>
int Generate(const RunOptions& o, const Prompt& p, int n_ctx, SessionT& session,
             const std::function<nlohmann::json()>& finish = {}, Speculation* spec = nullptr) {
  const Tokenizer* tok = p.tok.get();
  const std::vector<int32_t>& ids = p.ids;
  Sampler sampler(o.sampling);
  std::unique_ptr<StreamDecoder> stream;
  if (tok) stream = std::make_unique<StreamDecoder>(*tok);
  if (stream) {
    for (int32_t id : ids) stream->Push(id);  // prime the decoder's state (leading-space rule)
  }
  if (!o.json && !o.no_display_prompt) {
    std::fputs(p.text.c_str(), stdout);
    std::fflush(stdout);
  }

  const double t0 = NowSeconds();
  std::span<float> logits = session.Eval(ids);
  const double t1 = NowSeconds();
  if (!o.logits_out.empty()) {
    std::ofstream out(o.logits_out, std::ios::binary);
    out.write(reinterpret_cast<const char*>(logits.data()),
              static_cast<std::streamsize>(logits.size() * sizeof(float)));
    if (!out) FailKind(ErrorKind::kIo, "cannot write '{}'", o.logits_out);
  }

  std::vector<int32_t> generated;
  std::string text;
  std::string stop_reason = "length";
  const int64_t limit = o.n_predict < 0 ? n_ctx - static_cast<int64_t>(ids.size()) : o.n_predict;
  std::vector<int32_t> ready;  // tokens a speculative step produced, not yet emitted
  size_t next_ready = 0;
  for (int64_t i = 0; i < limit; ++i) {
    const int32_t id = next_ready < ready.size() ? ready[next_ready++] : sampler.Sample(logits, session.tokens());
    if (tok && !o.ignore_eos && tok->IsEog(id)) {
      stop_reason = "eos";
      break;
    }
    generated.push_back(id);
    if (stream) {
      const std::string piece = stream->Push(id);
      text += piece;
      if (!o.json) {
        std::fwrite(piece.data(), 1, piece.size(), stdout);
        std::fflush(stdout);
      }
    }
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
  if (stream) {
    const std::string rest = stream->Flush();
    text += rest;
    if (!o.json) std::fwrite(rest.data(), 1, rest.size(), stdout);
  }

  const double pp_tps = ids.size() / std::max(t1 - t0, 1e-9);
  const double tg_tps = generated.size() / std::max(t2 - t1, 1e-9);
  nlohmann::json extra = finish ? finish() : nlohmann::json{};
  if (spec) {
    const SpecStats& st = spec->decoder->stats();
    extra["speculative"] = {{"type", SpecTypeName(spec->params.type)}, {"drafted", st.drafted},
                            {"accepted", st.accepted},           {"acceptance_rate", st.acceptance()},
                            {"target_steps", st.target_steps},   {"tokens_per_step", st.tokens_per_step()}};
  }
  if (o.json) {
    nlohmann::json j = {{"prompt_ids", ids},
                        {"generated_ids", generated},
                        {"text", text},
                        {"n_prompt", ids.size()},
                        {"n_generated", generated.size()},
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
               generated.size(), t2 - t1, tg_tps, stop_reason.c_str());
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

// The stderr summary of a pipeline run: the plan's memory per rank and the bytes on the wire.
nlohmann::json ReportPipeline(const mpi::PipelineStats& s, const mpi::Pipeline& pipeline,
                              mpi::Wire wire) {
  const int n = static_cast<int>(s.stage_bytes.size());
  uint64_t stage = 0, result = 0;
  for (int r = 0; r < n; ++r) {
    stage += s.stage_bytes[r];
    result += s.result_bytes[r];
  }
  const double per_token = s.tokens ? static_cast<double>(stage + result) / s.tokens : 0;
  const size_t row = pipeline.spec().n_embd * (wire == mpi::Wire::kBf16 ? 2 : 4);
  std::fprintf(stderr,
               "dist:       %d ranks, hidden state %zu bytes (%s) per token per stage boundary\n",
               n, row, wire == mpi::Wire::kBf16 ? "bf16" : "f32");
  nlohmann::json ranks = nlohmann::json::array();
  for (int r = 0; r < n; ++r) {
    const mpi::Stage& st = pipeline.plan()[r];
    std::fprintf(stderr,
                 "dist:       rank %d: layers %d-%d, sent %llu B activations + %llu B logits, RSS "
                 "%.1f MiB (model "
                 "pages %.1f MiB)\n",
                 r, st.first_layer, st.last_layer - 1,
                 static_cast<unsigned long long>(s.stage_bytes[r]),
                 static_cast<unsigned long long>(s.result_bytes[r]), s.rss[r] / 1048576.0,
                 s.rss_file[r] / 1048576.0);
    ranks.push_back({{"first_layer", st.first_layer},
                     {"last_layer", st.last_layer},
                     {"weight_bytes", st.weight_bytes},
                     {"kv_bytes", st.kv_bytes},
                     {"stage_bytes_sent", s.stage_bytes[r]},
                     {"result_bytes_sent", s.result_bytes[r]},
                     {"rss", s.rss[r]},
                     {"rss_file", s.rss_file[r]}});
  }
  std::fprintf(
      stderr,
      "dist:       %llu tokens, %.1f bytes on the wire per token (%.1f activations, %.1f logits)\n",
      static_cast<unsigned long long>(s.tokens), per_token,
      s.tokens ? static_cast<double>(stage) / s.tokens : 0.0,
      s.tokens ? static_cast<double>(result) / s.tokens : 0.0);
  return {{"dist", {{"ranks", ranks}, {"tokens", s.tokens}, {"bytes_per_token", per_token}}}};
}

// Under mpirun: every rank opens the model (mapping is free; only touched pages become resident),
// all agree on the plan, rank 0 runs `run` on a pipeline and the others serve their stages.
int RunDistributed(const RunOptions& o) {
  auto world = mpi::World::Init();
  const int rank = world->rank();
  try {
    auto model = Model::Open(o.model);
    const int n_ctx = ResolveContextSize(model->spec(), o.ctx_size);
    mpi::PipelineOptions po;
    if (o.wire == "bf16")
      po.wire = mpi::Wire::kBf16;
    else if (o.wire != "f32")
      Fail("--wire must be f32 or bf16, got '{}'", o.wire);
    po.timeout_s = o.dist_timeout;
    po.kv_types = o.kv.Resolve();
    po.die_rank = Env().die_rank, po.die_step = Env().die_step, po.hang = Env().hang;
    po.isa = Env().isa;
    po.repack = Env().repack;
    std::vector<uint64_t> free_memory;
    const auto plan =
        mpi::PlanForWorld(*world, *model, mpi::ParseSplit(o.split), n_ctx, &free_memory, mpi::HeadAt::kLastRank,
                           po.kv_types);
    // Each rank lays out only its own layers (and the head where it runs) for the kernels.
    const mpi::Stage& own = plan[static_cast<size_t>(rank)];
    ThreadPool pool(o.threads);
    if (po.repack) model->PrepareWeights(*OpenBackend(o.device, pool), own.first_layer, own.last_layer, own.head);
    if (rank != 0) {
      mpi::RunWorker(*world, *model, pool, plan, n_ctx, po);
      return 0;
    }
    std::fprintf(stderr, "dist: %d ranks, pipeline plan (context %d):\n%s", world->size(), n_ctx,
                 mpi::FormatPlan(plan, free_memory).c_str());
    const Prompt p = PreparePrompt(o, *model, n_ctx);
    mpi::Pipeline pipeline(*world, *model, pool, plan, n_ctx, po);
    mpi::PipelineSession session(pipeline, n_ctx);
    return Generate(o, p, n_ctx, session,
                    [&] { return ReportPipeline(pipeline.Shutdown(), pipeline, po.wire); });
  } catch (const Error& e) {
    // Other ranks may be blocked in a collective or waiting for our messages: end the whole job.
    std::fprintf(stderr, "error: rank %d: %s\n", rank, e.what());
    world->Abort(1);
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
  if (!o.split.empty())
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
  return Generate(o, p, n_ctx, session, {}, spec.get());
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
  sub->add_option("--split", o->split,
                  "under mpirun: layers per rank (10,6) or fractions (0.6,0.4); default: by each "
                  "rank's free memory");
  sub->add_option("--wire", o->wire,
                  "under mpirun: hidden states as f32 (bit-identical) or bf16 (half the bytes)")
      ->capture_default_str();
  sub->add_option("--dist-timeout", o->dist_timeout,
                  "under mpirun: seconds to wait for a stage before giving up")
      ->capture_default_str();
  sub->callback([o, &action] { action = [o] { return Run(*o); }; });
}

}  // namespace origami::cli
