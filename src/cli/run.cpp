// `origami run`: generate text from a prompt, streaming it to stdout, timings to stderr.
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "model/model.h"
#include "runtime/session.h"
#include "sampling/sampler.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/timer.h"

namespace origami::cli {

namespace {

struct RunOptions {
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
  SamplerParams sampling;
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
    if (used != item.size() || v < 0 || v > INT32_MAX) Fail("--prompt-ids: '{}' is not a token id", item);
    ids.push_back(static_cast<int32_t>(v));
  }
  return ids;
}

int Run(const RunOptions& o) {
  auto model = Model::Open(o.model);
  const DecoderSpec& spec = model->spec();
  std::unique_ptr<Tokenizer> tok;
  if (o.prompt_ids.empty() || !o.json) tok = Tokenizer::FromGguf(model->file());

  std::string prompt = o.prompt;
  if (!o.prompt_file.empty()) {
    std::ifstream in(o.prompt_file, std::ios::binary);
    if (!in) FailKind(ErrorKind::kIo, "cannot read prompt file '{}'", o.prompt_file);
    prompt.assign(std::istreambuf_iterator<char>(in), {});
  }
  std::vector<int32_t> ids;
  if (!o.prompt_ids.empty()) {
    ids = ParseIds(o.prompt_ids);
  } else {
    EncodeOptions eo;
    eo.add_special = !o.no_bos;
    eo.parse_special = true;  // the user's own prompt may spell control tokens, as in llama.cpp
    ids = tok->Encode(prompt, eo);
    if (ids.empty() && tok->bos_id() >= 0) ids.push_back(tok->bos_id());
  }
  if (ids.empty()) Fail("the prompt is empty and the vocabulary has no BOS token to start from");

  const int n_ctx = ResolveContextSize(spec, o.ctx_size);
  if (static_cast<int64_t>(ids.size()) >= n_ctx)
    Fail("the prompt has {} tokens, which does not fit the context size {} (raise -c/--ctx-size)", ids.size(), n_ctx);
  ThreadPool pool(o.threads);
  Session session(*model, pool, n_ctx);
  Sampler sampler(o.sampling);

  std::unique_ptr<StreamDecoder> stream;
  if (tok) stream = std::make_unique<StreamDecoder>(*tok);
  if (stream) {
    for (int32_t id : ids) stream->Push(id);  // prime the decoder's state (leading-space rule)
  }
  if (!o.json && !o.no_display_prompt) {
    std::fputs(prompt.c_str(), stdout);
    std::fflush(stdout);
  }

  const double t0 = NowSeconds();
  std::span<float> logits = session.Eval(ids);
  const double t1 = NowSeconds();
  if (!o.logits_out.empty()) {
    std::ofstream out(o.logits_out, std::ios::binary);
    out.write(reinterpret_cast<const char*>(logits.data()), static_cast<std::streamsize>(logits.size() * sizeof(float)));
    if (!out) FailKind(ErrorKind::kIo, "cannot write '{}'", o.logits_out);
  }

  std::vector<int32_t> generated;
  std::string text;
  std::string stop_reason = "length";
  const int64_t limit = o.n_predict < 0 ? n_ctx - static_cast<int64_t>(ids.size()) : o.n_predict;
  for (int64_t i = 0; i < limit; ++i) {
    const int32_t id = sampler.Sample(logits, session.tokens());
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
    if (session.n_past() >= n_ctx) {
      stop_reason = "context";
      break;
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
  if (o.json) {
    nlohmann::json j = {{"prompt_ids", ids},
                        {"generated_ids", generated},
                        {"text", text},
                        {"n_prompt", ids.size()},
                        {"n_generated", generated.size()},
                        {"stop_reason", stop_reason},
                        {"prompt_tokens_per_second", pp_tps},
                        {"generation_tokens_per_second", tg_tps}};
    std::puts(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    std::fputc('\n', stdout);
  }
  std::fflush(stdout);
  std::fprintf(stderr, "\nprompt:     %6zu tokens in %8.3f s, %10.2f tokens/s\n", ids.size(), t1 - t0, pp_tps);
  std::fprintf(stderr, "generation: %6zu tokens in %8.3f s, %10.2f tokens/s (%s)\n", generated.size(), t2 - t1, tg_tps,
               stop_reason.c_str());
  return 0;
}

}  // namespace

void AddSamplingOptions(CLI::App* sub, SamplerParams& s) {
  sub->add_option("--temp", s.temperature, "temperature (0 = greedy)")->capture_default_str();
  sub->add_option("--top-k", s.top_k, "top-k sampling (0 = off)")->capture_default_str();
  sub->add_option("--top-p", s.top_p, "top-p sampling (1 = off)")->capture_default_str();
  sub->add_option("--min-p", s.min_p, "min-p sampling (0 = off)")->capture_default_str();
  sub->add_option("--repeat-penalty", s.repeat_penalty, "penalize repeated tokens (1 = off)")->capture_default_str();
  sub->add_option("--repeat-last-n", s.repeat_last_n, "tokens the penalties look back (-1 = all)")->capture_default_str();
  sub->add_option("--presence-penalty", s.presence_penalty, "presence penalty (0 = off)")->capture_default_str();
  sub->add_option("--frequency-penalty", s.frequency_penalty, "frequency penalty (0 = off)")->capture_default_str();
  sub->add_option("-s,--seed", s.seed, "random seed (4294967295 = random)")->capture_default_str();
}

void AddRunCommand(CLI::App& app, Action& action) {
  auto o = std::make_shared<RunOptions>();
  CLI::App* sub = app.add_subcommand("run", "generate text from a prompt");
  sub->add_option("-m,--model", o->model, "model file (.gguf)")->required();
  sub->add_option("-p,--prompt", o->prompt, "prompt text");
  sub->add_option("-f,--file", o->prompt_file, "read the prompt from a file");
  sub->add_option("--prompt-ids", o->prompt_ids, "prompt as comma-separated token ids (no tokenizer involved)");
  sub->add_option("-n,--n-predict", o->n_predict, "tokens to generate (-1 = until end of text or context)")
      ->capture_default_str();
  sub->add_option("-c,--ctx-size", o->ctx_size, "context size in tokens (0 = min(4096, model's))")->capture_default_str();
  AddThreadsOption(*sub, o->threads);
  AddSamplingOptions(sub, o->sampling);
  sub->add_flag("--no-bos", o->no_bos, "do not add the BOS token");
  sub->add_flag("--ignore-eos", o->ignore_eos, "keep generating past end-of-text tokens");
  sub->add_flag("--no-display-prompt", o->no_display_prompt, "do not echo the prompt");
  sub->add_flag("--json", o->json, "print one JSON object (ids, text, speeds) instead of streaming text");
  sub->add_option("--logits-out", o->logits_out, "write the logits after the prompt (float32) to this file");
  sub->callback([o, &action] { action = [o] { return Run(*o); }; });
}

}  // namespace origami::cli
