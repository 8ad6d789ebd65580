// The standard request hooks: response_format and forced tool calls become a grammar constraint
// on sampling (sampling/grammar.h, json_schema.h); generated text is parsed for tool calls in the
// chat template's syntax (chat/tool_calls.h).
#pragma once

#include <string_view>

#include "server/server.h"

namespace origami::server {

RequestHooks DefaultHooks(const Tokenizer& tok, std::string_view chat_template);

}  // namespace origami::server
