// Fuzz body for the chat-template parser and interpreter (wired into a libFuzzer target by
// tests/fuzz): any input must either render or throw origami::Error, within small limits.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "chat/template.h"
#include "util/error.h"

namespace origami {

int FuzzChatTemplate(const uint8_t* data, size_t size) {
  std::string_view src(reinterpret_cast<const char*>(data), size);
  static const nlohmann::ordered_json kContext = nlohmann::ordered_json::parse(R"({
    "messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"},
                 {"role": "assistant", "content": null, "tool_calls": [{"type": "function",
                  "function": {"name": "f", "arguments": {"a": 1}}}]},
                 {"role": "tool", "content": "r"}],
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
    "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>"})");
  RenderLimits limits;
  limits.max_steps = 200000;
  limits.max_depth = 64;
  limits.max_output_bytes = 1 << 20;
  try {
    ChatTemplate t = ChatTemplate::Parse(src);
    t.Render(kContext, limits, 0);
  } catch (const Error&) {
    // Rejecting a template is the expected outcome for most inputs.
  }
  return 0;
}

}  // namespace origami
