// One choice being generated for an HTTP request: the engine stream, the streaming detokenizer,
// the stop-string filter and the logprobs collected so far. The HTTP layer pumps it.
#pragma once

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "runtime/engine.h"
#include "server/stop_filter.h"
#include "server/tool_deltas.h"
#include "tokenizer/tokenizer.h"

namespace origami::server {

struct Choice {
  // keep_special: decode control tokens as text, so a tool-call parser sees markers such as
  // <|python_tag|>, [TOOL_CALLS] or harmony's channel tokens (they are control tokens).
  Choice(const Tokenizer& tok, std::vector<std::string> stops, int index, int n_prompt,
         bool keep_special = false)
      : dec(tok, !keep_special), stop(std::move(stops)), index(index), n_prompt(n_prompt) {}

  std::shared_ptr<RequestStream> stream;
  StreamDecoder dec;
  std::unique_ptr<ToolDeltaBuilder> tools;  // chat with tools active: splits calls from content
  StopFilter stop;
  int index = 0;
  int n_prompt = 0;
  int n_cached = 0;
  int n_generated = 0;
  std::string text;  // everything emitted so far
  bool done = false;
  FinishReason finish = FinishReason::kNone;
  std::string error;
};

// What one pump produced: new text, new logprob entries (chat or completions shape).
struct Delta {
  std::string text;
  nlohmann::json logprobs = nlohmann::json::array();
  bool finished = false;  // this pump saw the end
};

enum class LogprobShape { kNone, kChat, kCompletions };

// Waits up to `timeout` for tokens and turns them into text, one Delta per token (so a stream
// sends one event per token, as OpenAI does; a token that ends inside a UTF-8 character or a
// possible stop string gives an empty text). Stop strings cancel the engine request at once.
std::vector<Delta> Pump(Choice& c, const Tokenizer& tok, LogprobShape shape,
                        std::chrono::milliseconds timeout);

const char* OpenAiFinishReason(FinishReason r);

}  // namespace origami::server
