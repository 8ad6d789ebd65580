// The OpenAI-compatible HTTP server: routes, auth, CORS, SSE streaming, metrics and the web page.
// It parses and validates, applies the chat template and tokenizes, then hands token requests to
// the Engine and turns the token streams back into text. It never touches the KV cache.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "runtime/engine.h"
#include "server/response_store.h"
#include "server/tool_deltas.h"
#include "tokenizer/tokenizer.h"

namespace origami::gguf {
class File;
}

namespace origami::server {

// Where the constrained-sampling and tool-call work plugs in (both optional).
struct RequestHooks {
  // Builds a per-request token constraint from the body (response_format, tools with
  // tool_choice required/function). Return null for none; throw origami::Error for a 400.
  std::function<std::unique_ptr<TokenConstraint>(const nlohmann::json& body, const Tokenizer& tok)>
      make_constraint;
  // Makes the parser that splits a chat answer into content and tool calls, in the chat
  // template's syntax, when a request has tools and tool_choice is not "none". Not set: tools
  // are rendered into the prompt but the answer stays text.
  std::function<std::unique_ptr<ToolDeltaBuilder>(const ToolParseOptions& opt)> make_tool_parser;
};

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string api_key;  // empty: no auth
  bool cors = false;
  std::string model_id;       // what /v1/models lists and requests may name
  std::string chat_template;  // empty: the documented ChatML default
  size_t max_body_bytes = 8u << 20;
  int max_n = 8;
  int n_predict = -1;  // -n: cap on each answer's generated tokens (-1: only the context)
  // --reasoning-format auto: a reasoning template's thinking (<think>, harmony analysis) comes
  // apart from the answer in every chat API; none: Chat Completions and Messages answers without
  // tools keep it in the text as the model wrote it.
  bool reasoning_auto = true;
  int http_threads = 0;  // 0: enough for parallel + queue
  // Anthropic Messages: keep Claude Code's per-request billing-header line in the system prompt
  // (dropped by default: its nonce defeats the prefix cache).
  bool keep_billing_header = false;
  // Responses API: what is kept for previous_response_id (count, bytes, time since last use).
  ResponseStoreLimits responses;
  // The memory plan `serve` started with, for /metrics (zeros where none was made: under mpirun
  // each rank plans its own share).
  struct MemoryFigures {
    uint64_t budget = 0;   // what this process may use (--mem-budget, or MemAvailable/cgroup)
    uint64_t planned = 0;  // the plan's total
    uint64_t weights = 0;  // resident weight bytes (mapped pages and repacked copies, once)
  } memory;
  // The served GGUF (outlives the server): Ollama's /api/tags and /api/show describe it.
  const gguf::File* model_file = nullptr;
  RequestHooks hooks;
};

// The template used when the model has none: ChatML.
extern const char* const kDefaultChatTemplate;
// The chat page served at "/".
extern const char* const kWebPage;

class ModelRegistry;

class Server {
 public:
  // Serves the registry's models (one for serve -m FILE); the registry outlives the server.
  Server(ModelRegistry& models, ServerOptions opt);
  ~Server();
  // Binds (port 0: any free port) and serves until Stop(). Throws origami::Error if it cannot bind.
  void Bind();
  int port() const { return port_; }
  void Serve();  // blocks
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

// Compares two secrets in time that depends only on their lengths' maximum.
bool ConstantTimeEquals(const std::string& a, const std::string& b);

}  // namespace origami::server
