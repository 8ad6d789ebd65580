// Ollama's native wire format: /api/chat and /api/generate bodies are validated and rewritten into
// Chat Completions (or Completions) bodies, so templates, grammars and tool parsing are the chat
// path's; and the pieces of the NDJSON objects Ollama clients read back.
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/api.h"

namespace origami::server {

// Ollama's error object: {"error": "message"}.
nlohmann::json OllamaErrorBody(const std::string& message);

// What translation needs to know of the served model.
struct OllamaContext {
  std::string alias;             // the served model id (Ollama names: alias, alias:latest)
  bool template_thinks = false;  // the chat template has a thinking switch or think tags
  bool template_tools = false;   // the chat template renders tools
  std::string fim_prefix, fim_suffix, fim_middle;  // empty: no fill-in-the-middle tokens
};

// A request with nothing to generate is Ollama's load call, or with keep_alive 0 its unload call.
enum class OllamaAction { kGenerate, kLoad, kUnload };

struct OllamaTranslation {
  OllamaAction action = OllamaAction::kGenerate;
  std::string model;  // as the client named it; echoed in every answer
  Endpoint endpoint = Endpoint::kChat;
  std::string body;             // the OpenAI body to run
  bool stream = true;           // Ollama streams unless told "stream": false
  bool split_thinking = false;  // reasoning goes to "thinking" rather than the text
  // More stop strings than the OpenAI body takes (4): applied by the handler to the text, and
  // then none are in the body.
  std::vector<std::string> many_stops;
};

// Validate and translate. Throw ApiError: 400 naming the field, 404 for an unknown model.
OllamaTranslation TranslateOllamaChat(const std::string& body, const OllamaContext& ctx);
OllamaTranslation TranslateOllamaGenerate(const std::string& body, const OllamaContext& ctx);

// The model named by a body of /api/show, /api/embed...: "model" (or the older "name").
// Throws ApiError 400 when missing or not a string, 404 when it is not the served model.
std::string OllamaModelOf(const nlohmann::json& body, const std::string& alias);

// keep_alive as Ollama reads it: a number of seconds or a Go duration string ("5m", "1h30m",
// "-1"); negative means forever. Throws ApiError(400) for anything else.
double ParseKeepAlive(const nlohmann::json& v);

// Ollama's message from an OpenAI assistant message: content, thinking (from reasoning_content)
// and tool_calls with arguments as objects.
nlohmann::json OllamaMessage(const nlohmann::json& openai_message);

// The final line's statistics; durations in nanoseconds as Ollama sends them.
struct OllamaStats {
  std::string done_reason = "stop";  // stop | length
  int64_t total_ns = 0, load_ns = 0, prompt_eval_ns = 0, eval_ns = 0;
  int prompt_eval_count = 0, eval_count = 0;
};
void AddOllamaStats(nlohmann::json& line, const OllamaStats& s);

// RFC 3339 in UTC with nanoseconds, as Go writes time.Time ("2025-01-02T03:04:05.123456789Z").
std::string Rfc3339Nano(std::chrono::system_clock::time_point t);

// The part of Go's text/template that simple Ollama TEMPLATEs use: {{ .System }}, {{ .Prompt }},
// {{ if .System }}...{{ end }} (and .Prompt), trim markers; rendering stops at {{ .Response }},
// where generation continues. Anything else throws ApiError(400) naming "template".
std::string RenderOllamaTemplate(std::string_view tmpl, const std::string& system,
                                 const std::string& prompt);

}  // namespace origami::server
