// The OpenAI Responses wire format: a /v1/responses body (with the conversation of its
// previous_response_id) is translated into the equivalent Chat Completions body, so templates,
// tool grammars and parsers are shared; the chat path's deltas are turned back into output items,
// streamed events and the response object.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "server/api.h"

namespace origami::server {

struct ResponsesTranslation {
  std::string chat_body;  // an OpenAI chat completions body
  bool stream = false;
  bool store = true;
  nlohmann::json items;  // the whole conversation as input items: history, then this input
  // The response object without id, timing, status, output and usage: what the request set
  // (instructions, tools, tool_choice, temperature, ...), echoed as OpenAI does.
  nlohmann::json echo;
};

// The stored conversation of a response id (its input items then its output), or nothing.
using ResponseHistory = std::function<std::optional<nlohmann::json>(const std::string& id)>;

// Validates a Responses body and translates it. Throws ApiError: 400 naming the field, 404
// previous_response_not_found.
ResponsesTranslation TranslateResponsesRequest(const std::string& body,
                                               const ResponseHistory& history);

// Builds the output items of one response from the chat path's deltas ({"content"},
// {"reasoning_content"}, {"tool_calls"}: see ToolDeltaBuilder) and the streamed events that tell
// them, each numbered. The non-streamed answer feeds the same builder and ignores the events, so
// both shapes agree.
class ResponseBuilder {
 public:
  // echo: ResponsesTranslation::echo; id: "resp_..."
  ResponseBuilder(nlohmann::json echo, std::string id, int64_t created_at, std::string model);

  // response.created and response.in_progress.
  std::vector<nlohmann::json> Start();
  std::vector<nlohmann::json> Push(const nlohmann::json& chat_delta);
  // Closes the open item and gives the terminal event: response.completed, or
  // response.incomplete when finish_reason is "length". usage: Responses usage object.
  std::vector<nlohmann::json> Finish(const std::string& finish_reason, const nlohmann::json& usage);
  // response.failed with the error (nothing is stored for a failed response).
  std::vector<nlohmann::json> Fail(const std::string& message);

  // The response object as it stands (status in_progress until Finish).
  const nlohmann::json& response() const { return response_; }
  // The reasoning text so far (for usage.output_tokens_details.reasoning_tokens).
  const std::string& reasoning_text() const { return reasoning_; }

 private:
  enum class Kind { kNone, kMessage, kReasoning, kFunctionCall };
  nlohmann::json Event(const char* type, nlohmann::json fields);
  void Open(Kind kind, std::vector<nlohmann::json>& out, const nlohmann::json& call = {});
  void Close(std::vector<nlohmann::json>& out, const char* status);
  std::string NextItemId(const char* prefix);

  nlohmann::json response_;
  std::string id_;
  int64_t seq_ = 0;
  int items_made_ = 0;
  Kind open_ = Kind::kNone;
  std::string text_;  // the open item's text or arguments
  std::string reasoning_;
};

// Responses usage from the chat counts.
nlohmann::json ResponsesUsage(int n_prompt, int n_cached, int n_generated, int n_reasoning);

}  // namespace origami::server
