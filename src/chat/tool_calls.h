// Tool calls in model output: which syntax a chat template uses, parsing finished or streamed
// output into content / reasoning / tool_calls, and the grammar that forces a well-formed call when
// tool_choice requires one.
//
// The parser works on decoded text with special tokens kept (Decode(ids, skip_special=false) or a
// StreamDecoder with skip_special=false): the markers of Llama 3 (<|python_tag|>), Mistral
// ([TOOL_CALLS]) and gpt-oss harmony (<|channel|>, <|message|>, <|call|>) are control tokens.
// End-of-turn tokens (<|eot_id|>, <|im_end|>, <|end|>, <|return|>, ...) that reach the parser are
// dropped.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "sampling/grammar.h"

namespace origami {

enum class ToolCallFormat {
  kNone,        // no tool syntax known: everything is content (reasoning tags still split)
  kLlama3,      // {"name": ..., "parameters": {...}}, optionally after <|python_tag|>
  kHermes,      // <tool_call>{"name": ..., "arguments": {...}}</tool_call> (Hermes, Qwen 2.5/3)
  kMistral,     // [TOOL_CALLS][{"name": ..., "arguments": {...}, "id": ...}] (Nemo, v3 tekken)
  kMistralV11,  // [TOOL_CALLS]name[ARGS]{...} (Mistral Small 3.2, Devstral, Magistral)
  kHarmony,  // gpt-oss: <|channel|>commentary to=functions.NAME <|constrain|>json<|message|>{...}
};

// From the chat template's source text. A template with no recognised tool syntax gives kHermes
// when it renders tools at all (the most common convention), else kNone.
ToolCallFormat DetectToolCallFormat(std::string_view template_source);
const char* ToolCallFormatName(ToolCallFormat f);

struct ToolCall {
  std::string id;  // "call_" + 9 alphanumerics unless the model gave one
  std::string name;
  std::string arguments;  // JSON text as the model wrote it
};

struct ParsedMessage {
  std::string content;
  std::string reasoning_content;
  std::vector<ToolCall> tool_calls;
};

// One streaming step. A tool call's first delta carries its index, id and name; later deltas of
// the same index carry pieces of arguments (OpenAI's chunk shape).
struct ToolCallDelta {
  size_t index = 0;
  std::string id, name, arguments;
};

struct MessageDelta {
  std::string content;
  std::string reasoning_content;
  std::vector<ToolCallDelta> tool_calls;
  bool empty() const { return content.empty() && reasoning_content.empty() && tool_calls.empty(); }
};

struct ToolParseOptions {
  bool parse_tool_calls = true;      // false (no tools, tool_choice none): calls stay content
  bool starts_in_reasoning = false;  // the prompt ended inside <think> (DeepSeek-R1 style)
  uint64_t id_seed = 0;              // ids are a function of this seed and the call index
  bool cut = false;                  // ParseToolCalls only: the text was cut by max_tokens
  size_t max_calls = 0;              // ToolDeltaBuilder: calls past this many are dropped (0: all)
};

// Incremental parser. Push() returns only text that can no longer turn out to be part of a
// marker; Finish() flushes the rest (an unterminated call is still reported as a call when its
// name is known).
class ToolCallParser {
 public:
  explicit ToolCallParser(ToolCallFormat format, ToolParseOptions opt = {});
  ~ToolCallParser();
  ToolCallParser(ToolCallParser&&) noexcept;
  ToolCallParser& operator=(ToolCallParser&&) noexcept;

  MessageDelta Push(std::string_view text);
  // cut: generation stopped at max_tokens. A call whose name is known is reported with the
  // arguments written so far (never completed by us); a call cut before its name, or a marker cut
  // halfway, is dropped rather than returned as content.
  MessageDelta Finish(bool cut = false);
  const ParsedMessage& message() const;  // everything so far

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Parses finished output (the same code path as streaming).
ParsedMessage ParseToolCalls(ToolCallFormat format, std::string_view text,
                             const ToolParseOptions& opt = {});

// Grammar for tool_choice "required" (forced_name empty: any of the tools) or a named function:
// one call (or, with parallel, one or more) in the format's exact syntax, arguments matching each
// tool's "parameters" schema. `tools` is the OpenAI array [{"type":"function","function":{...}}].
// Throws origami::Error (naming tools[i] / the schema keyword) for bad tools or schemas, or when
// forced_name is not among the tools. allow_think (Hermes syntax only) lets a <think>...</think>
// block come first, as Qwen3 writes when thinking is on; without it the call starts at once.
std::shared_ptr<const Grammar> ToolCallGrammar(ToolCallFormat format,
                                               const nlohmann::ordered_json& tools,
                                               std::string_view forced_name = {},
                                               bool parallel = false, bool allow_think = true);
std::shared_ptr<const Grammar> ToolCallGrammar(ToolCallFormat format, const nlohmann::json& tools,
                                               std::string_view forced_name = {},
                                               bool parallel = false, bool allow_think = true);

}  // namespace origami
