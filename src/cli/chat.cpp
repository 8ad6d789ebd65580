// `origami chat`: an interactive conversation using the model's own chat template
// (tokenizer.chat_template, or ChatML when the model has none). The KV cache is reused across
// turns: only the new part of the rendered conversation is evaluated.
#include <cstdio>
#include <iostream>
#include <memory>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "chat/default_template.h"
#include "chat/template.h"
#include "cli/commands.h"
#include "cli/lora_flags.h"
#include "cli/memory_flags.h"
#include "cli/speculation.h"
#include "model/model.h"
#include "runtime/session.h"
#include "sampling/sampler.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/timer.h"

namespace origami::cli {

namespace {

struct ChatOptions {
  std::string device = "cpu";  // --device
  std::string model;
  std::string system;
  std::string chat_template;
  int ctx_size = 0;
  int threads = 1;
  int n_predict = -1;
  KvTypeFlags kv;
  MemoryFlags mem;
  SamplerParams sampling;
  SpecFlags spec;
  std::vector<std::string> loras;  // --lora FILE[:SCALE]
};

int Chat(const ChatOptions& o) {
  const SpecParams spec_params = o.spec.Resolve();
  const MemoryFlags mem = WithBudgetAtStart(o.mem);  // before the model's pages are charged to us
  auto model = Model::Open(o.model);
  LoadAdapters(*model, o.loras);
  auto tok = Tokenizer::FromGguf(model->file());
  std::string tmpl = o.chat_template;
  if (tmpl.empty()) tmpl = std::string(model->file().GetString("tokenizer.chat_template").value_or(kDefaultChatTemplate));
  ChatTemplate::Parse(tmpl);  // a broken template is reported before the first turn
  const std::string bos = tok->bos_id() >= 0 ? tok->TokenText(tok->bos_id()) : "";
  const std::string eos = tok->eos_id() >= 0 ? tok->TokenText(tok->eos_id()) : "";
  ThreadPool pool(o.threads);
  const auto backend = OpenBackend(o.device, pool);
  auto draft = OpenDraftModel(o.spec, spec_params, *model);  // counted by the plan
  const int n_ctx = FitRun(*model, *backend, mem, ResolveContextSize(model->spec(), o.ctx_size),
                           o.kv.Resolve(), o.threads,
                           DraftForPlan(o.spec, draft.get(), *backend, o.threads));
  PrepareWeights(*model, *backend);
  Session session(*model, *backend, n_ctx, o.kv.Resolve());
  Sampler sampler(o.sampling);
  const auto spec = MakeSpeculation(o.spec, spec_params, *model, session, o.threads, o.sampling, std::move(draft));

  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  if (!o.system.empty()) messages.push_back({{"role", "system"}, {"content", o.system}});
  const bool interactive = isatty(fileno(stdin));
  for (;;) {
    if (interactive) std::fputs("\n> ", stdout), std::fflush(stdout);
    std::string line;
    if (!std::getline(std::cin, line)) break;
    if (line.empty()) continue;
    messages.push_back({{"role", "user"}, {"content", line}});
    const std::string prompt = ApplyChatTemplate(tmpl, messages, nullptr, true, bos, eos);
    std::vector<int32_t> ids = tok->Encode(prompt, {.add_special = false, .parse_special = true});
    if (tok->add_bos() && tok->bos_id() >= 0 && (ids.empty() || ids.front() != tok->bos_id()))
      ids.insert(ids.begin(), tok->bos_id());
    if (static_cast<int64_t>(ids.size()) >= n_ctx) Fail("the conversation no longer fits the context ({} tokens)", n_ctx);
    // Reuse the cached prefix the new rendering shares with what was evaluated before.
    size_t common = 0;
    const auto& past = session.tokens();
    while (common < past.size() && common < ids.size() && past[common] == ids[common]) ++common;
    if (common == ids.size()) --common;  // re-evaluate at least one token to get logits
    session.Truncate(static_cast<int64_t>(common));
    std::span<float> logits = session.Eval(std::span<const int32_t>(ids).subspan(common));

    StreamDecoder stream(*tok);
    std::string reply;
    const double t0 = NowSeconds();
    int n_gen = 0;
    const int64_t limit = o.n_predict < 0 ? n_ctx : o.n_predict;
    std::vector<int32_t> ready;  // tokens a speculative step produced, not yet shown
    size_t next_ready = 0;
    for (; n_gen < limit && (next_ready < ready.size() || session.n_past() < n_ctx); ++n_gen) {
      const int32_t id = next_ready < ready.size() ? ready[next_ready++] : sampler.Sample(logits, session.tokens());
      if (tok->IsEog(id)) break;
      const std::string piece = stream.Push(id);
      reply += piece;
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
      if (next_ready < ready.size()) continue;  // already evaluated by the target
      if (spec) {
        if (session.n_past() >= n_ctx) break;
        ready.clear();
        next_ready = 0;
        spec->decoder->Step(id, sampler, ready);
        continue;
      }
      const int32_t one[1] = {id};
      logits = session.Eval(one);
    }
    const std::string rest = stream.Flush();
    reply += rest;
    std::fwrite(rest.data(), 1, rest.size(), stdout);
    std::fputc('\n', stdout);
    std::fprintf(stderr, "[%d tokens, %.1f tokens/s]\n", n_gen, n_gen / std::max(NowSeconds() - t0, 1e-9));
    messages.push_back({{"role", "assistant"}, {"content", reply}});
  }
  return 0;
}

}  // namespace

void AddChatCommand(CLI::App& app, Action& action) {
  auto o = std::make_shared<ChatOptions>();
  o->sampling.seed = 0xFFFFFFFFu;
  CLI::App* sub = app.add_subcommand("chat", "talk with a model (one message per line on stdin)");
  sub->add_option("-m,--model", o->model, "model file (.gguf)")->required();
  sub->add_option("--system", o->system, "system prompt");
  sub->add_option("--chat-template", o->chat_template, "Jinja chat template to use instead of the model's");
  sub->add_option("-c,--ctx-size", o->ctx_size, "context size (0 = min(4096, model's))")->capture_default_str();
  sub->add_option("-n,--n-predict", o->n_predict, "maximum tokens per answer (-1 = until end of turn)");
  AddThreadsOption(*sub, o->threads);
  AddDeviceOption(*sub, o->device);
  AddKvTypeOptions(*sub, o->kv);
  AddMemoryOptions(*sub, o->mem, /*serve=*/false);
  AddSamplingOptions(sub, o->sampling);
  AddSpecOptions(*sub, o->spec);
  AddLoraOption(*sub, o->loras);
  sub->callback([o, &action] { action = [o] { return Chat(*o); }; });
}

}  // namespace origami::cli
