// The OpenAI wire format: parsing and validating request bodies (field names, types and ranges
// as OpenAI documents them, unknown fields ignored) and OpenAI-shaped error objects.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "sampling/sampler.h"

namespace httplib {
struct Response;
}

namespace origami::server {

// An error the client sees: HTTP status plus OpenAI's {"error":{message,type,param,code}}.
struct ApiError : std::runtime_error {
  ApiError(int status, std::string message, std::string param = {}, std::string code = {},
           std::string type = {})
      : std::runtime_error(message),
        status(status),
        param(std::move(param)),
        code(std::move(code)),
        type(std::move(type)) {}
  int status;
  std::string param, code, type;
  int retry_after_s = 1;  // 503: the Retry-After header's seconds (the engine's estimate)
  nlohmann::json Body() const;
};
// The Retry-After header of a 503 (every API answers an overloaded server the same way).
void SetRetryAfter(httplib::Response& res, int seconds);
// The error object for a status (type chosen from the status when not given).
nlohmann::json ErrorBody(int status, const std::string& message, const std::string& param = {},
                         const std::string& code = {}, const std::string& type = {});

enum class Endpoint { kChat, kCompletions };

// What both endpoints share once validated.
struct ApiRequest {
  Endpoint endpoint = Endpoint::kChat;
  std::string model;
  SamplerParams sampling;
  bool seed_given = false;
  std::optional<int> max_tokens;  // absent: until end of text or the sequence limit
  int n = 1;
  std::vector<std::string> stop;
  std::vector<std::pair<int32_t, float>> logit_bias;
  bool logprobs = false;
  int top_logprobs = 0;
  bool stream = false;
  bool include_usage = false;
  bool echo = false;        // completions only
  bool ignore_eos = false;  // extension (llama.cpp): generate past end-of-text tokens
  // chat: the messages (content flattened to text), tools and extras for the template
  nlohmann::ordered_json messages, tools;
  std::string tool_choice = "auto";  // auto | none | required | function
  bool parallel_tool_calls = true;   // false: at most one call per answer
  nlohmann::ordered_json template_kwargs;
  // completions: one entry per prompt, text or token ids
  std::vector<std::string> prompts;
  std::vector<std::vector<int32_t>> prompt_ids;
  nlohmann::json raw;  // the whole body, for hooks (response_format, tools, ...)
};

// Parses and validates a body. Throws ApiError(400) naming the field.
ApiRequest ParseRequest(const std::string& body, Endpoint endpoint, int max_n);

}  // namespace origami::server
