// Chat answers while tools are active: generated text (control tokens kept) goes through the
// incremental tool-call parser and comes out as OpenAI chunk deltas; the same deltas gathered make
// the non-streamed message, so a streamed and a non-streamed answer cannot disagree.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "chat/tool_calls.h"

namespace origami::server {

class ToolDeltaBuilder {
 public:
  ToolDeltaBuilder(ToolCallFormat format, ToolParseOptions opt);

  // The deltas for the next piece of text, each one `delta` object of a chunk:
  //   {"reasoning_content": s}                               (text inside <think>, analysis, ...)
  //   {"content": s}                                         (never holds a marker)
  //   {"tool_calls": [{"index", "id", "type": "function", "function": {"name", "arguments": ""}}]}
  //   {"tool_calls": [{"index", "function": {"arguments": s}}]}
  // A call's first delta names it; its arguments follow in pieces that concatenate to the JSON
  // text the model wrote. Text that may still turn out to be a marker is held back.
  std::vector<nlohmann::json> Push(std::string_view text);
  // The rest, at the end of generation. cut: it ended at max_tokens, so a call cut before its
  // name and a half-written marker are dropped instead of becoming content.
  std::vector<nlohmann::json> Finish(bool cut = false);

  bool has_tool_calls() const { return !calls_.empty(); }
  // Everything so far as a chat message: role, content (null when empty beside calls),
  // reasoning_content when there was any, tool_calls when there were any.
  nlohmann::json Message() const;

 private:
  std::vector<nlohmann::json> Convert(const MessageDelta& d, bool final);
  std::string TakeContent(std::string_view s, bool final);

  ToolCallParser parser_;
  size_t max_calls_ = 0;                            // 0: every call is kept
  std::string content_, reasoning_;                 // sent so far
  std::string held_ws_;                             // trailing whitespace of content, not yet sent
  bool content_started_ = false;                    // leading whitespace is dropped
  nlohmann::json calls_ = nlohmann::json::array();  // OpenAI tool_calls, arguments so far
};

}  // namespace origami::server
