// Request building: a validated body becomes prompts (chat template or completions prompts),
// checked against the model's limits, and one engine request per choice.
#include <fmt/format.h>

#include <ctime>
#include <functional>

#include "chat/template.h"
#include "runtime/engine.h"
#include "server/job.h"
#include "util/error.h"

namespace origami::server {

namespace {

// The prompt ends inside an open think block (templates that start the answer with "<think>"):
// the answer's first words are reasoning.
bool EndsInThink(const std::string& prompt) {
  size_t end = prompt.size();
  while (end > 0 && (prompt[end - 1] == '\n' || prompt[end - 1] == ' ')) --end;
  return std::string_view(prompt).substr(0, end).ends_with("<think>");
}

}  // namespace

std::shared_ptr<Job> StartJob(ServerState& s, const std::string& body, Endpoint ep,
                              bool always_parse) {
  auto job = std::make_shared<Job>();
  job->req = ParseRequest(body, ep, s.opt.max_n);
  ApiRequest& r = job->req;
  s.CheckModel(r.model);
  if (s.embedding_only)
    throw ApiError(
        400,
        fmt::format("The model '{}' is {}, not {}", s.opt.model_id,
                    s.engine.reranker() ? "a reranker: it answers /v1/rerank"
                                        : "an embedding model: it answers /v1/embeddings",
                    ep == Endpoint::kChat ? "chat" : "completions"),
        "model", "model_not_supported");
  std::vector<std::vector<int32_t>> prompts;
  bool prompt_in_think = false;
  bool tools_rendered = false;  // chat: tools are in the prompt, so calls are parsed
  if (ep == Endpoint::kChat) {
    tools_rendered = !r.tools.is_null() && r.tool_choice != "none";
    job->tools_active =
        (always_parse || tools_rendered) && static_cast<bool>(s.opt.hooks.make_tool_parser);
    std::string text;
    try {
      text = ApplyChatTemplate(s.chat_template, r.messages,
                               r.tool_choice == "none" ? nullptr : r.tools, true, s.bos_text,
                               s.eos_text, r.template_kwargs);
    } catch (const Error& e) {
      throw ApiError(400, fmt::format("the chat template rejected the messages: {}", e.what()),
                     "messages");
    }
    prompt_in_think = EndsInThink(text);
    job->prompt_in_think = prompt_in_think;
    prompts.push_back(s.Tokenize(text));
  } else {
    for (const auto& p : r.prompts) {
      prompts.push_back(s.Tokenize(p));
      job->echo.push_back(p);
    }
    for (const auto& p : r.prompt_ids) {
      for (int32_t t : p)
        if (t >= s.engine.n_vocab())
          throw ApiError(400,
                         fmt::format("token id {} is out of range (vocabulary has {} tokens)", t,
                                     s.engine.n_vocab()),
                         "prompt");
      prompts.push_back(p);
      job->echo.push_back(s.tok.Decode(p, true));
    }
  }
  const char* prompt_param = ep == Endpoint::kChat ? "messages" : "prompt";
  // A request that can never fit is refused here, before it queues. Its KV reach is
  // min(prompt + max_tokens, max_seq_len): max_tokens is capped at the sequence limit (the
  // answer then ends with "length", as llama-server and Ollama do; agents send max_tokens far
  // above small local contexts), and the engine keeps max_seq_len within the KV pool the memory
  // plan sized. So only a prompt that leaves no room for one generated token can never fit.
  for (const auto& p : prompts) {
    if (static_cast<int64_t>(p.size()) >= s.engine.max_seq_len())
      throw ApiError(
          400,
          fmt::format("This model's maximum context length is {} tokens; the prompt has {} tokens "
                      "(the server's limit per request, within a KV pool of {} positions; "
                      "shorten the prompt)",
                      s.engine.max_seq_len(), p.size(),
                      s.engine.kv_blocks() * s.engine.kv_block_size()),
          prompt_param, "context_length_exceeded");
    for (int32_t t : p)
      if (t < 0 || t >= s.engine.n_vocab())
        throw ApiError(400, fmt::format("token id {} is out of range", t), prompt_param);
  }
  for (const auto& [id, b] : r.logit_bias)
    if (id >= s.engine.n_vocab())
      throw ApiError(400, fmt::format("logit_bias: token id {} is out of range", id), "logit_bias");

  job->id = s.NewId(ep == Endpoint::kChat ? "chatcmpl-" : "cmpl-");
  job->created = static_cast<int64_t>(std::time(nullptr));
  for (size_t pi = 0; pi < prompts.size(); ++pi) {
    for (int j = 0; j < r.n; ++j) {
      const int room = s.engine.max_seq_len() - static_cast<int>(prompts[pi].size());
      auto c = std::make_unique<Choice>(s.tok, r.stop, static_cast<int>(job->choices.size()),
                                        static_cast<int>(prompts[pi].size()), job->tools_active);
      for (int32_t t : prompts[pi]) c->dec.Push(t);  // prime the detokenizer (leading-space rule)
      if (job->tools_active) {
        ToolParseOptions po;
        // Call ids differ between requests and choices (agents match results by id).
        po.id_seed = std::hash<std::string>{}(job->id) + static_cast<uint64_t>(c->index);
        po.starts_in_reasoning = prompt_in_think;
        po.parse_tool_calls = tools_rendered;
        // parallel_tool_calls false (Anthropic: disable_parallel_tool_use): the grammar holds a
        // forced answer to one call; an unforced one may write more, and only the first is kept.
        po.max_calls = r.parallel_tool_calls ? 0 : 1;
        c->tools = s.opt.hooks.make_tool_parser(po);
      }
      GenerationRequest g;
      g.prompt = prompts[pi];
      g.sampling = r.sampling;
      if (r.seed_given) g.sampling.seed = r.sampling.seed + static_cast<uint64_t>(j);
      const int cap = s.opt.n_predict > 0 ? std::min(room, s.opt.n_predict) : room;
      g.max_tokens = std::min(r.max_tokens.value_or(cap), cap);
      g.logit_bias = r.logit_bias;
      g.ignore_eos = r.ignore_eos;
      g.top_logprobs = r.logprobs ? r.top_logprobs : -1;
      if (s.opt.hooks.make_constraint) {
        try {
          g.constraint = s.opt.hooks.make_constraint(r.raw, s.tok);
        } catch (const Error& e) {
          job->CancelAll();
          // The constraint comes from response_format or from tools (a forced call).
          const std::string_view what = e.what();
          const char* param = what.starts_with("tool_choice") ? "tool_choice"
                              : what.starts_with("tools")     ? "tools"
                                                              : "response_format";
          throw ApiError(400, e.what(), param);
        }
      }
      try {
        c->stream = s.engine.Submit(std::move(g));
      } catch (const OverloadedError& e) {
        job->CancelAll();
        ApiError busy(503, e.what(), "", "overloaded", "server_error");
        busy.retry_after_s = e.retry_after_s;
        throw busy;
      } catch (const Error& e) {
        job->CancelAll();
        throw ApiError(400, e.what(), prompt_param);
      }
      job->choices.push_back(std::move(c));
    }
  }
  return job;
}

}  // namespace origami::server
