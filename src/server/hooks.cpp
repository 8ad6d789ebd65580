// DefaultHooks: grammar constraints and tool-call parsing for the HTTP layer.
#include "server/hooks.h"

#include <memory>
#include <mutex>

#include "chat/tool_calls.h"
#include "sampling/grammar.h"
#include "sampling/json_schema.h"

namespace origami::server {

namespace {

using nlohmann::json;
using nlohmann::ordered_json;

// A grammar as an engine TokenConstraint (runs on the engine thread, one per sequence).
class GrammarConstraint : public TokenConstraint {
 public:
  GrammarConstraint(std::shared_ptr<const Grammar> g, std::shared_ptr<const GrammarVocab> vocab)
      : vocab_(std::move(vocab)), state_(std::move(g)) {}
  void Mask(std::span<float> logits) override { ApplyGrammarMask(*vocab_, state_, logits); }
  void Accept(int32_t token) override { origami::Accept(state_, *vocab_, token); }
  // Complete and nothing longer possible: stop without waiting for the model's end token.
  bool Done() const override { return state_.IsComplete() && !state_.CanContinue(); }

 private:
  std::shared_ptr<const GrammarVocab> vocab_;
  GrammarState state_;
};

ordered_json Ordered(const json& j) { return ordered_json::parse(j.dump()); }

}  // namespace

RequestHooks DefaultHooks(const Tokenizer& tok, std::string_view chat_template) {
  RequestHooks h;
  const ToolCallFormat format = DetectToolCallFormat(chat_template);
  // A forced call may start with a think block only where the template knows them (Qwen3).
  const bool template_thinks = chat_template.find("<think>") != std::string_view::npos;
  // The vocabulary trie is built on first use (one TokenToPiece per token) and shared.
  auto vocab = std::make_shared<std::shared_ptr<const GrammarVocab>>();
  auto once = std::make_shared<std::once_flag>();
  const Tokenizer* tp = &tok;
  h.make_constraint = [format, template_thinks, vocab, once, tp](
                          const json& body, const Tokenizer&) -> std::unique_ptr<TokenConstraint> {
    std::shared_ptr<const Grammar> g;
    auto rf = body.find("response_format");
    if (rf != body.end() && !rf->is_null()) g = ResponseFormatGrammar(Ordered(*rf));
    auto tools = body.find("tools");
    auto choice = body.find("tool_choice");
    if (!g && tools != body.end() && tools->is_array() && choice != body.end()) {
      const bool parallel = body.value("parallel_tool_calls", false);
      // chat_template_kwargs.enable_thinking false: the template closed the think block itself
      // (Qwen3), so a second one is not allowed before the call.
      bool think = template_thinks;
      auto kw = body.find("chat_template_kwargs");
      if (kw != body.end() && kw->is_object()) {
        auto et = kw->find("enable_thinking");
        if (et != kw->end() && et->is_boolean() && !et->get<bool>()) think = false;
      }
      if (choice->is_string() && choice->get<std::string>() == "required") {
        g = ToolCallGrammar(format, Ordered(*tools), {}, parallel, think);
      } else if (choice->is_object()) {
        g = ToolCallGrammar(format, Ordered(*tools),
                            (*choice)["function"]["name"].get<std::string>(), parallel, think);
      }
    }
    if (!g) return nullptr;
    std::call_once(*once, [&] { *vocab = std::make_shared<GrammarVocab>(*tp); });
    return std::make_unique<GrammarConstraint>(g, *vocab);
  };
  // A template with no tool syntax gets forced calls in Hermes syntax (ToolCallGrammar), the
  // generic <tool_call>{"name", "arguments"}</tool_call> JSON form; the parser reads that syntax
  // back so the call never reaches content with its markers.
  const ToolCallFormat parse_format =
      format == ToolCallFormat::kNone ? ToolCallFormat::kHermes : format;
  h.make_tool_parser = [parse_format](const ToolParseOptions& opt) {
    return std::make_unique<ToolDeltaBuilder>(parse_format, opt);
  };
  return h;
}

}  // namespace origami::server
