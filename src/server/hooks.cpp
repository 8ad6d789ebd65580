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
  // The vocabulary trie is built on first use (one TokenToPiece per token) and shared.
  auto vocab = std::make_shared<std::shared_ptr<const GrammarVocab>>();
  auto once = std::make_shared<std::once_flag>();
  const Tokenizer* tp = &tok;
  h.make_constraint = [format, vocab, once, tp](
                          const json& body, const Tokenizer&) -> std::unique_ptr<TokenConstraint> {
    std::shared_ptr<const Grammar> g;
    auto rf = body.find("response_format");
    if (rf != body.end() && !rf->is_null()) g = ResponseFormatGrammar(Ordered(*rf));
    auto tools = body.find("tools");
    auto choice = body.find("tool_choice");
    if (!g && tools != body.end() && tools->is_array() && choice != body.end()) {
      const bool parallel = body.value("parallel_tool_calls", false);
      if (choice->is_string() && choice->get<std::string>() == "required") {
        g = ToolCallGrammar(format, Ordered(*tools), {}, parallel);
      } else if (choice->is_object()) {
        g = ToolCallGrammar(format, Ordered(*tools),
                            (*choice)["function"]["name"].get<std::string>(), parallel);
      }
    }
    if (!g) return nullptr;
    std::call_once(*once, [&] { *vocab = std::make_shared<GrammarVocab>(*tp); });
    return std::make_unique<GrammarConstraint>(g, *vocab);
  };
  h.parse_tool_calls = [format](const std::string& text, const json&, std::string& content,
                                json& tool_calls) {
    ParsedMessage m = ParseToolCalls(format, text);
    if (m.tool_calls.empty()) return false;
    content = m.content;
    tool_calls = json::array();
    for (const auto& c : m.tool_calls)
      tool_calls.push_back({{"id", c.id},
                            {"type", "function"},
                            {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
    return true;
  };
  return h;
}

}  // namespace origami::server
