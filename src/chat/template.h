// ChatTemplate: a model's Jinja chat template, parsed once and rendered per request in a sandbox
// (no I/O; step, depth and output-size limits) with output byte-identical to @huggingface/jinja,
// the implementation transformers.js and the HF hub use. A broken template is an origami::Error.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace origami {

namespace jinja {
struct Node;
}

struct RenderLimits {
  uint64_t max_steps = 10'000'000;        // evaluated nodes, loop iterations, produced items
  int max_depth = 256;                    // nested macro / caller() calls
  size_t max_output_bytes = 16u << 20;    // any single string the template builds, the output included
};

class ChatTemplate {
 public:
  // Parses the template source; throws origami::Error with the offset on a syntax error.
  static ChatTemplate Parse(std::string_view src);

  // Renders with `context` as the template's variables (object keys in their order). now_unix pins
  // the instant strftime_now() formats (as UTC); by default it is the current local time.
  std::string Render(const nlohmann::ordered_json& context, const RenderLimits& limits = {},
                     std::optional<int64_t> now_unix = std::nullopt) const;

  ChatTemplate(ChatTemplate&&) noexcept;
  ChatTemplate& operator=(ChatTemplate&&) noexcept;
  ~ChatTemplate();

 private:
  ChatTemplate();
  std::vector<std::unique_ptr<jinja::Node>> program_;
};

// Renders `template_src` for a conversation with the variables HF's apply_chat_template passes:
// messages, tools (only when non-null), add_generation_prompt, bos_token, eos_token, then every
// key of extra_context (an object, or null), e.g. enable_thinking or reasoning_effort.
std::string ApplyChatTemplate(std::string_view template_src, const nlohmann::ordered_json& messages,
                              const nlohmann::ordered_json& tools, bool add_generation_prompt,
                              std::string_view bos_token, std::string_view eos_token,
                              const nlohmann::ordered_json& extra_context = nullptr,
                              const RenderLimits& limits = {});

}  // namespace origami
