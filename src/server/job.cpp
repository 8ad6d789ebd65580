// ServerState and what the JSON and SSE writers share: usage, finish_reason, logprob layouts.
#include "server/job.h"

#include <fmt/format.h>

#include <random>

#include "gguf/gguf.h"

namespace origami::server {

using nlohmann::json;

ServerState::ServerState(Engine& e, const Tokenizer& t, const ServerOptions& o,
                         ResponseStore& store)
    : engine(e), tok(t), opt(o), responses(store) {
  chat_template = opt.chat_template.empty() ? kDefaultChatTemplate : opt.chat_template;
  for (const char* marker : {"<think>", "[THINK]", "<|channel|>"})
    if (chat_template.find(marker) != std::string::npos) template_reasons = true;
  if (tok.bos_id() >= 0) bos_text = tok.Decode({tok.bos_id()}, false);
  if (tok.eos_id() >= 0) eos_text = tok.Decode({tok.eos_id()}, false);
  id_salt = std::random_device{}();
  if (opt.model_file)
    if (auto t = opt.model_file->GetString("tokenizer.chat_template.rerank")) rerank_template = *t;
  if (opt.model_file)
    if (auto arch = opt.model_file->GetString("general.architecture"))
      embedding_only = opt.model_file->Has(std::string(*arch) + ".pooling_type") || e.encoder();
}

std::string ServerState::NewId(const char* prefix) {
  return fmt::format("{}{:08x}{:08x}", prefix, id_salt & 0xffffffffu, next_id.fetch_add(1) + 1);
}

void ServerState::CheckModel(const std::string& model) const {
  if (!model.empty() && model != opt.model_id)
    throw ApiError(
        404,
        fmt::format("The model '{}' does not exist; this server serves '{}'", model, opt.model_id),
        "model", "model_not_found");
}

std::vector<int32_t> ServerState::Tokenize(const std::string& text) const {
  EncodeOptions eo;
  eo.add_special = true;
  eo.parse_special = true;
  std::vector<int32_t> ids = tok.Encode(text, eo);
  // A template that spells the BOS token itself plus add_bos would give two.
  if (ids.size() >= 2 && tok.bos_id() >= 0 && ids[0] == tok.bos_id() && ids[1] == tok.bos_id())
    ids.erase(ids.begin());
  if (ids.empty() && tok.bos_id() >= 0) ids.push_back(tok.bos_id());
  return ids;
}

json Usage(const Job& job) {
  int prompt = 0, completion = 0, cached = 0;
  const int n = job.req.n;
  for (size_t i = 0; i < job.choices.size(); ++i) {
    const Choice& c = *job.choices[i];
    if (i % n == 0) {  // the prompt counts once per prompt, as OpenAI does for n > 1
      prompt += c.n_prompt;
      cached += c.n_cached;
    }
    completion += c.n_generated;
  }
  return {{"prompt_tokens", prompt},
          {"completion_tokens", completion},
          {"total_tokens", prompt + completion},
          {"prompt_tokens_details", {{"cached_tokens", cached}}}};
}

std::string FinishReasonOf(const Choice& c) {
  if (c.tools && c.tools->has_tool_calls() && c.finish != FinishReason::kLength)
    return "tool_calls";
  return OpenAiFinishReason(c.finish);
}

json CompletionLogprobs(const json& entries, size_t offset0) {
  json lp = {{"tokens", json::array()},
             {"token_logprobs", json::array()},
             {"top_logprobs", json::array()},
             {"text_offset", json::array()}};
  size_t off = offset0;
  for (const auto& e : entries) {
    lp["tokens"].push_back(e["token"]);
    lp["token_logprobs"].push_back(e["logprob"]);
    lp["top_logprobs"].push_back(e["top"]);
    lp["text_offset"].push_back(off);
    off += e["token"].get<std::string>().size();
  }
  return lp;
}

LogprobShape ShapeOf(const Job& job) {
  if (!job.req.logprobs) return LogprobShape::kNone;
  return job.req.endpoint == Endpoint::kChat ? LogprobShape::kChat : LogprobShape::kCompletions;
}

std::string DumpJson(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace origami::server
