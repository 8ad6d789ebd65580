// One generation request inside the server: the server state its handlers read (ServerState), the
// Job that request building fills (job_builder.cpp) and that the non-streamed JSON writer
// (json_response.cpp) or the SSE writer (sse_stream.cpp) drains, and what both writers share.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "server/api.h"
#include "server/generation.h"
#include "server/server.h"

namespace httplib {
struct Response;
}

namespace origami::server {

// What the request handlers need of the server; it outlives every request (the HTTP server is
// stopped before it goes).
struct OllamaService;

struct ServerState {
  ServerState(Engine& e, const Tokenizer& t, const ServerOptions& o, ResponseStore& store);

  Engine& engine;
  const Tokenizer& tok;
  const ServerOptions& opt;
  std::string chat_template;
  // A decoder reranker's prompt for one (query, document) pair: the GGUF's
  // tokenizer.chat_template.rerank when it has one, else Qwen3-Reranker's format (rerank.cpp).
  std::string rerank_template;
  std::string bos_text, eos_text;
  std::atomic<uint64_t> next_id{0};
  uint64_t id_salt = 0;
  std::atomic<int64_t> streams_open{0};
  ResponseStore& responses;  // /v1/responses kept for previous_response_id (the server's, shared)
  // What the /api/* handlers know of this model (its card, capabilities); made with the state.
  std::shared_ptr<OllamaService> ollama;
  // The GGUF names a pooling type (<arch>.pooling_type): an embedding model, which answers the
  // embedding endpoints only (as Ollama and vLLM's embed task do), never chat or completions.
  bool embedding_only = false;
  // The chat template writes reasoning (<think>, [THINK], harmony channels): with
  // --reasoning-format auto, chat answers go through the parser that takes it apart.
  bool template_reasons = false;

  std::string NewId(const char* prefix);
  // 404 unless `model` is empty or the served model's id.
  void CheckModel(const std::string& model) const;
  std::vector<int32_t> Tokenize(const std::string& text) const;
};

// State shared by a request's handler and its content provider.
struct Job {
  ApiRequest req;
  std::string id;
  int64_t created = 0;
  std::vector<std::unique_ptr<Choice>> choices;
  std::vector<std::string> echo;  // completions with echo: the prompt text per prompt
  bool tools_active = false;      // chat with tools: choices carry a ToolDeltaBuilder
  bool prompt_in_think = false;   // chat: the template left a <think> block open
  void CancelAll() {
    for (auto& c : choices)
      if (c->stream && !c->done) c->stream->Cancel();
  }
};

// Validates the body, applies the chat template, tokenizes and submits one engine request per
// choice. Throws ApiError (or origami::Error, a 400) with nothing left running.
// always_parse: chat answers go through the tool-call parser even without tools, so reasoning
// (<think>, harmony analysis) comes apart from the answer (the Responses API wants it as items).
std::shared_ptr<Job> StartJob(ServerState& s, const std::string& body, Endpoint ep,
                              bool always_parse = false);

// Writes the answer as one JSON body once generation ends (json_response.cpp).
void SendJsonResponse(ServerState& s, std::shared_ptr<Job> job, httplib::Response& res);
// Streams the answer as server-sent events (sse_stream.cpp).
void SendEventStream(ServerState& s, std::shared_ptr<Job> job, httplib::Response& res);

// ---- shared by both writers (job.cpp) ----
nlohmann::json Usage(const Job& job);
// OpenAI's finish_reason for a finished choice: "tool_calls" when it made calls and was not cut
// off by the length limit.
std::string FinishReasonOf(const Choice& c);
// Completions logprobs in OpenAI's column layout, text offsets from offset0.
nlohmann::json CompletionLogprobs(const nlohmann::json& entries, size_t offset0);
LogprobShape ShapeOf(const Job& job);
std::string DumpJson(const nlohmann::json& j);

}  // namespace origami::server
