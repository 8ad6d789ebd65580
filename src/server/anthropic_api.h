// The Anthropic Messages wire format: a /v1/messages body is translated into the equivalent
// Chat Completions body (so templates, tool grammars and parsers are shared), and finished
// choices are written back as Anthropic message objects and errors.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "server/api.h"

namespace origami::server {

// Anthropic's {"type":"error","error":{"type":...,"message":...}} for an HTTP status.
nlohmann::json AnthropicErrorBody(int status, const std::string& message);

struct AnthropicTranslation {
  std::string chat_body;  // an OpenAI chat completions body
  bool stream = false;
};

// Validates an Anthropic Messages body and translates it. Throws ApiError(400) naming the field.
// count_only: /v1/messages/count_tokens, where max_tokens is not required.
AnthropicTranslation TranslateAnthropicRequest(const std::string& body, bool count_only,
                                               bool keep_billing_header);

// An OpenAI assistant message (from the tool-call builder or plain text) as Anthropic content
// blocks: thinking, text, tool_use (arguments parsed back into an object).
nlohmann::json AnthropicContent(const nlohmann::json& openai_message);

// stop_reason from OpenAI's finish_reason and whether a stop sequence matched.
const char* AnthropicStopReason(const std::string& finish_reason);

}  // namespace origami::server
