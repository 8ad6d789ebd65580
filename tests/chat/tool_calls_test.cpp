// Tool-call formats: detection from the real templates, parsing finished and byte-by-byte
// streamed output per family, and forced-call grammars that accept exactly the family's syntax.
#include "chat/tool_calls.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>
#include <sstream>

#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace origami {
namespace {

using json = nlohmann::json;

std::string ReadTemplate(const std::string& name) {
  std::ifstream f(std::string(ORIGAMI_SHARED_DIR) + "/templates/" + name, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string Trim(std::string s) {
  while (!s.empty() && isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

// Streams `text` one byte at a time and rebuilds the message from the deltas alone.
ParsedMessage Streamed(ToolCallFormat f, const std::string& text, ToolParseOptions opt = {}) {
  ToolCallParser p(f, opt);
  ParsedMessage m;
  auto apply = [&](const MessageDelta& d) {
    m.content += d.content;
    m.reasoning_content += d.reasoning_content;
    for (const auto& tc : d.tool_calls) {
      if (tc.index == m.tool_calls.size()) {
        EXPECT_FALSE(tc.name.empty()) << "first delta of a call names it";
        EXPECT_FALSE(tc.id.empty());
        m.tool_calls.push_back({tc.id, tc.name, ""});
      }
      ASSERT_LT(tc.index, m.tool_calls.size());
      m.tool_calls[tc.index].arguments += tc.arguments;
    }
  };
  for (char c : text) apply(p.Push(std::string_view(&c, 1)));
  apply(p.Finish());
  return m;
}

void ExpectSame(const ParsedMessage& a, const ParsedMessage& b) {
  EXPECT_EQ(Trim(a.content), Trim(b.content));
  EXPECT_EQ(a.reasoning_content, b.reasoning_content);
  ASSERT_EQ(a.tool_calls.size(), b.tool_calls.size());
  for (size_t i = 0; i < a.tool_calls.size(); ++i) {
    EXPECT_EQ(a.tool_calls[i].name, b.tool_calls[i].name);
    EXPECT_EQ(a.tool_calls[i].id, b.tool_calls[i].id);
    EXPECT_EQ(json::parse(a.tool_calls[i].arguments), json::parse(b.tool_calls[i].arguments));
  }
}

struct Case {
  std::string text;
  std::string content, reasoning;
  std::vector<std::pair<std::string, std::string>> calls;  // name, arguments JSON
};

void Check(ToolCallFormat f, const Case& c, ToolParseOptions opt = {}) {
  SCOPED_TRACE(c.text);
  const ParsedMessage m = ParseToolCalls(f, c.text, opt);
  EXPECT_EQ(m.content, c.content);
  EXPECT_EQ(m.reasoning_content, c.reasoning);
  ASSERT_EQ(m.tool_calls.size(), c.calls.size());
  for (size_t i = 0; i < c.calls.size(); ++i) {
    EXPECT_EQ(m.tool_calls[i].name, c.calls[i].first);
    EXPECT_EQ(json::parse(m.tool_calls[i].arguments), json::parse(c.calls[i].second));
    EXPECT_EQ(m.tool_calls[i].id.size(), 14u);
  }
  ExpectSame(m, Streamed(f, c.text, opt));
}

TEST(ToolCalls, DetectsFormatsFromRealTemplates) {
  EXPECT_EQ(DetectToolCallFormat(ReadTemplate("meta-llama-Llama-3.1-8B-Instruct.jinja")),
            ToolCallFormat::kLlama3);
  EXPECT_EQ(DetectToolCallFormat(ReadTemplate("meta-llama-Llama-3.2-3B-Instruct.jinja")),
            ToolCallFormat::kLlama3);
  EXPECT_EQ(DetectToolCallFormat(ReadTemplate("Qwen-Qwen3-0.6B.jinja")), ToolCallFormat::kHermes);
  EXPECT_EQ(DetectToolCallFormat(ReadTemplate("NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja")),
            ToolCallFormat::kHermes);
  EXPECT_EQ(DetectToolCallFormat(ReadTemplate("mistralai-Mistral-Nemo-Instruct-2407.jinja")),
            ToolCallFormat::kMistral);
  EXPECT_EQ(DetectToolCallFormat(ReadTemplate("Mistral-Small-3.2-24B-Instruct-2506.jinja")),
            ToolCallFormat::kMistralV11);
  EXPECT_EQ(DetectToolCallFormat(ReadTemplate("openai-gpt-oss-120b.jinja")),
            ToolCallFormat::kHarmony);
  EXPECT_EQ(DetectToolCallFormat(ReadTemplate("google-gemma-2-2b-it.jinja")),
            ToolCallFormat::kNone);
}

TEST(ToolCalls, Hermes) {
  const auto f = ToolCallFormat::kHermes;
  Check(f, {"Hello there!", "Hello there!", "", {}});
  Check(f, {"<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": "
            "\"Paris\"}}\n</tool_call>",
            "",
            "",
            {{"get_weather", R"({"city": "Paris"})"}}});
  // Qwen3: reasoning, then two calls; arguments before the name still work.
  Check(f,
        {"<think>\nLet me check.\n</think>\n\nSure.\n<tool_call>\n{\"name\": \"a\", \"arguments\": "
         "{\"x\": [1, {\"y\": \"}\"}]}}\n</tool_call>\n<tool_call>\n{\"arguments\": {}, \"name\": "
         "\"b\"}\n</tool_call>",
         "Sure.",
         "\nLet me check.\n",
         {{"a", R"({"x": [1, {"y": "}"}]})"}, {"b", "{}"}}});
  // A '<' that is not a marker stays content; end-of-turn tokens are dropped.
  Check(f, {"a < b <tool <|im_end|>", "a < b <tool ", "", {}});
  // Arguments as a JSON string.
  Check(f, {"<tool_call>{\"name\": \"s\", \"arguments\": \"{\\\"k\\\": 1}\"}</tool_call>",
            "",
            "",
            {{"s", R"({"k": 1})"}}});
  // tool_choice none: the call stays text.
  ToolParseOptions none;
  none.parse_tool_calls = false;
  const auto m = ParseToolCalls(f, "<tool_call>{\"name\": \"x\"}</tool_call>", none);
  EXPECT_TRUE(m.tool_calls.empty());
  EXPECT_EQ(m.content, "<tool_call>{\"name\": \"x\"}</tool_call>");
}

// Generation cut by max_tokens (issue 14): a named call keeps the arguments written so far, never
// completed; a call cut before its name and a half-written marker are dropped, not content. The
// same text ended by the model itself is its answer and stays content.
TEST(ToolCalls, CutCallsAreTruncatedNotContent) {
  const auto f = ToolCallFormat::kHermes;
  ToolParseOptions cut;
  cut.cut = true;
  auto named =
      ParseToolCalls(f, "<tool_call>\n{\"name\": \"get\", \"arguments\": {\"q\": \"ab", cut);
  ASSERT_EQ(named.tool_calls.size(), 1u);
  EXPECT_EQ(named.tool_calls[0].name, "get");
  EXPECT_EQ(named.tool_calls[0].arguments, "{\"q\": \"ab");
  EXPECT_EQ(named.content, "");
  for (const char* text :
       {"<tool_call>\n{\"na", "<tool_call>\n{\"name\": \"ge", "<tool_ca", "<tool_call>"}) {
    auto m = ParseToolCalls(f, text, cut);
    EXPECT_TRUE(m.tool_calls.empty()) << text;
    EXPECT_EQ(m.content, "") << text;
  }
  auto closed = ParseToolCalls(f, "<tool_call>\n{\"name\": \"g\", \"arguments\": {}}\n</tool", cut);
  ASSERT_EQ(closed.tool_calls.size(), 1u);
  EXPECT_EQ(closed.content, "");
  auto chosen = ParseToolCalls(f, "<tool_call>\n{\"na");
  EXPECT_TRUE(chosen.tool_calls.empty());
  EXPECT_NE(chosen.content.find("{\"na"), std::string::npos);
}

TEST(ToolCalls, ReasoningStartedInPrompt) {
  ToolParseOptions opt;
  opt.starts_in_reasoning = true;
  Check(ToolCallFormat::kHermes, {"thinking...</think>answer", "answer", "thinking...", {}}, opt);
}

TEST(ToolCalls, Llama3) {
  const auto f = ToolCallFormat::kLlama3;
  Check(f,
        {"{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\", \"n\": 3}}<|eot_id|>",
         "",
         "",
         {{"get_weather", R"({"city": "Paris", "n": 3})"}}});
  Check(f,
        {"<|python_tag|>{\"name\": \"f\", \"parameters\": {}}<|eom_id|>", "", "", {{"f", "{}"}}});
  Check(f, {"  { \"name\": \"f\", \"parameters\": {\"a\": \"b\"}}; {\"name\": \"g\", "
            "\"parameters\": {}}",
            "",
            "",
            {{"f", R"({"a": "b"})"}, {"g", "{}"}}});
  // JSON that is not a call is content, and so is plain text.
  Check(f, {"{\"answer\": 42}", "{\"answer\": 42}", "", {}});
  Check(f, {"The weather is {nice}.", "The weather is {nice}.", "", {}});
}

TEST(ToolCalls, Mistral) {
  const auto f = ToolCallFormat::kMistral;
  Check(f,
        {"[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}, \"id\": "
         "\"abcdefghi\"}, {\"name\": \"g\", \"arguments\": {\"n\": -1.5e3}}]</s>",
         "",
         "",
         {{"get_weather", R"({"city": "Paris"})"}, {"g", R"({"n": -1.5e3})"}}});
  Check(f, {"Plain answer.", "Plain answer.", "", {}});
  // v11 syntax (Mistral Small 3.2 / Devstral), parsed by either Mistral format.
  for (auto g : {ToolCallFormat::kMistral, ToolCallFormat::kMistralV11}) {
    Check(g, {"[TOOL_CALLS]get_weather[ARGS]{\"city\": "
              "\"Paris\"}[TOOL_CALLS]f[CALL_ID]123456789[ARGS]{}",
              "",
              "",
              {{"get_weather", R"({"city": "Paris"})"}, {"f", "{}"}}});
  }
  Check(ToolCallFormat::kMistralV11, {"[THINK]hmm[/THINK]ok", "ok", "hmm", {}});
}

TEST(ToolCalls, Harmony) {
  const auto f = ToolCallFormat::kHarmony;
  Check(
      f,
      {"<|channel|>analysis<|message|>Need weather.<|end|><|start|>assistant<|channel|>commentary "
       "to=functions.get_weather <|constrain|>json<|message|>{\"city\": \"Paris\"}<|call|>",
       "",
       "Need weather.",
       {{"get_weather", R"({"city": "Paris"})"}}});
  // Recipient before the channel, as the template renders past calls.
  Check(f, {"<|start|>assistant to=functions.f<|channel|>commentary json<|message|>{}<|call|>",
            "",
            "",
            {{"f", "{}"}}});
  Check(f,
        {"<|channel|>analysis<|message|>think<|end|><|start|>assistant<|channel|>final<|message|>"
         "The answer is 4.<|return|>",
         "The answer is 4.",
         "think",
         {}});
  Check(f, {"no header at all", "no header at all", "", {}});
}

TEST(ToolCalls, StreamingHoldsBackMarkers) {
  ToolCallParser p(ToolCallFormat::kHermes);
  EXPECT_EQ(p.Push("Hi <tool").content, "Hi ");
  auto d = p.Push("_call>{\"name\": \"f\", \"arguments\": {\"a\"");
  EXPECT_TRUE(d.content.empty());
  ASSERT_EQ(d.tool_calls.size(), 1u);
  EXPECT_EQ(d.tool_calls[0].name, "f");
  EXPECT_EQ(d.tool_calls[0].arguments, "{\"a\"");  // arguments stream as they come
  d = p.Push(": 1}}</tool_call>");
  ASSERT_EQ(d.tool_calls.size(), 1u);
  EXPECT_EQ(d.tool_calls[0].arguments, ": 1}");
  EXPECT_TRUE(d.tool_calls[0].name.empty());
  EXPECT_TRUE(p.Finish().empty());
  EXPECT_EQ(p.message().tool_calls[0].arguments, "{\"a\": 1}");
}

TEST(ToolCalls, IdsAreSeededAndDistinct) {
  ToolParseOptions a, b;
  a.id_seed = 1;
  b.id_seed = 2;
  const std::string text =
      "<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call><tool_call>{\"name\": "
      "\"f\", \"arguments\": {}}</tool_call>";
  auto ma = ParseToolCalls(ToolCallFormat::kHermes, text, a);
  auto mb = ParseToolCalls(ToolCallFormat::kHermes, text, b);
  ASSERT_EQ(ma.tool_calls.size(), 2u);
  EXPECT_NE(ma.tool_calls[0].id, ma.tool_calls[1].id);
  EXPECT_NE(ma.tool_calls[0].id, mb.tool_calls[0].id);
  EXPECT_EQ(ma.tool_calls[0].id, ParseToolCalls(ToolCallFormat::kHermes, text, a).tool_calls[0].id);
}

const json kTools = json::parse(R"([
  {"type": "function", "function": {"name": "get_weather", "description": "Weather now",
   "parameters": {"type": "object", "properties": {"city": {"type": "string"},
     "unit": {"enum": ["c", "f"]}}, "required": ["city"], "additionalProperties": false}}},
  {"type": "function", "function": {"name": "noop"}}])");

bool GrammarAccepts(const std::shared_ptr<const Grammar>& g, const std::string& s) {
  GrammarState st(g);
  return st.AcceptBytes(s) && st.IsComplete();
}

TEST(ToolCallGrammar, AcceptsEachFamilysSyntaxAndRoundTrips) {
  struct G {
    ToolCallFormat f;
    std::string good, bad;
  };
  const std::vector<G> cases = {
      {ToolCallFormat::kHermes,
       "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": "
       "\"c\"}}\n</tool_call>",
       "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"unit\": \"c\"}}\n</tool_call>"},
      {ToolCallFormat::kLlama3, "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Oslo\"}}",
       "{\"name\": \"get_time\", \"parameters\": {}}"},
      {ToolCallFormat::kMistral,
       "[TOOL_CALLS][{\"name\": \"noop\", \"arguments\": {\"any\": [1]}}]",
       "[TOOL_CALLS][{\"name\": \"noop\", \"arguments\": []}]"},
      {ToolCallFormat::kMistralV11, "[TOOL_CALLS]get_weather[ARGS]{\"city\": \"X\"}",
       "[TOOL_CALLS]get_weather[ARGS]{\"city\": 1}"},
      {ToolCallFormat::kHarmony,
       "<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{\"city\": "
       "\"X\"}",
       "<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{}"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(ToolCallFormatName(c.f));
    auto g = ToolCallGrammar(c.f, kTools);
    EXPECT_TRUE(GrammarAccepts(g, c.good));
    EXPECT_FALSE(GrammarAccepts(g, c.bad));
    EXPECT_FALSE(GrammarAccepts(g, "Sure, let me call it."));
    const auto m = ParseToolCalls(c.f, c.good);
    ASSERT_EQ(m.tool_calls.size(), 1u);
    EXPECT_TRUE(json::parse(m.tool_calls[0].arguments).is_object());
  }
}

TEST(ToolCallGrammar, NamedFunctionAndParallel) {
  auto g = ToolCallGrammar(ToolCallFormat::kHermes, kTools, "noop");
  EXPECT_TRUE(
      GrammarAccepts(g, "<tool_call>\n{\"name\": \"noop\", \"arguments\": {}}\n</tool_call>"));
  EXPECT_FALSE(GrammarAccepts(
      g,
      "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"a\"}}\n</tool_call>"));
  // Qwen3 may think before the call.
  EXPECT_TRUE(GrammarAccepts(g,
                             "<think>\nok\n</think>\n\n<tool_call>\n{\"name\": \"noop\", "
                             "\"arguments\": {}}\n</tool_call>"));
  // Thinking off (a template that closed the think block itself): the call comes at once.
  auto g_no_think = ToolCallGrammar(ToolCallFormat::kHermes, kTools, "noop", false, false);
  EXPECT_FALSE(GrammarAccepts(g_no_think,
                              "<think>\nok\n</think>\n\n<tool_call>\n{\"name\": \"noop\", "
                              "\"arguments\": {}}\n</tool_call>"));
  EXPECT_TRUE(GrammarAccepts(
      g_no_think, "<tool_call>\n{\"name\": \"noop\", \"arguments\": {}}\n</tool_call>"));
  const std::string one = "<tool_call>\n{\"name\": \"noop\", \"arguments\": {}}\n</tool_call>";
  EXPECT_FALSE(GrammarAccepts(g, one + "\n" + one));
  auto gp = ToolCallGrammar(ToolCallFormat::kHermes, kTools, "", true);
  EXPECT_TRUE(GrammarAccepts(gp, one + "\n" + one));
  EXPECT_THROW(ToolCallGrammar(ToolCallFormat::kHermes, kTools, "missing"), Error);
  EXPECT_THROW(ToolCallGrammar(ToolCallFormat::kHermes, json::array()), Error);
  EXPECT_THROW(ToolCallGrammar(ToolCallFormat::kHermes, json::parse(R"([{"type": "function",
      "function": {"name": "f", "parameters": {"type": "string", "pattern": "a+"}}}])")),
               Error);
}

TEST(ToolCallGrammar, SpecialTokensInGrammar) {
  auto g = ToolCallGrammar(ToolCallFormat::kHarmony, kTools, "noop");
  GrammarState st(g);
  EXPECT_TRUE(st.AcceptSpecial("<|channel|>"));
  EXPECT_TRUE(st.AcceptBytes("commentary to=functions.noop "));
  EXPECT_TRUE(st.AcceptSpecial("<|constrain|>"));
  EXPECT_TRUE(st.AcceptBytes("json"));
  EXPECT_TRUE(st.AcceptSpecial("<|message|>"));
  EXPECT_TRUE(st.AcceptBytes("{}"));
  EXPECT_TRUE(st.IsComplete());
}

// Sampling under a forced-call grammar with the Llama 3 vocabulary (markers spelled out by text
// tokens) always yields a call the parser reads back, with arguments that are a JSON object
// holding the required fields.
TEST(ToolCallGrammar, RandomWalksParseBack) {
  auto file =
      gguf::File::Open(std::string(ORIGAMI_SHARED_DIR) + "/tokenizer/ggml-vocab-llama-bpe.gguf");
  auto tok = Tokenizer::FromGguf(*file);
  GrammarVocab vocab(*tok);
  std::vector<float> logits(static_cast<size_t>(tok->n_vocab()));
  std::vector<int32_t> closers;
  for (int32_t id = 0; id < tok->n_vocab(); ++id)
    if (vocab.kind(id) == GrammarVocab::kText &&
        vocab.piece(id).find_first_of("\"]}") != std::string::npos)
      closers.push_back(id);
  std::mt19937 rng(7);
  for (auto f : {ToolCallFormat::kHermes, ToolCallFormat::kLlama3, ToolCallFormat::kMistral,
                 ToolCallFormat::kMistralV11, ToolCallFormat::kHarmony}) {
    SCOPED_TRACE(ToolCallFormatName(f));
    auto g = ToolCallGrammar(f, kTools);
    for (int rep = 0; rep < 2; ++rep) {
      GrammarState st(g);
      std::string text;
      bool done = false;
      for (int step = 0; step < 400 && !done; ++step) {
        if (st.IsComplete()) {
          done = true;
          break;
        }
        std::fill(logits.begin(), logits.end(), 0.0f);
        ApplyGrammarMask(vocab, st, logits);
        std::vector<int32_t> allowed, allowed_closers;
        for (int32_t id = 0; id < tok->n_vocab(); ++id)
          if (std::isfinite(logits[id])) allowed.push_back(id);
        ASSERT_FALSE(allowed.empty()) << text;
        for (int32_t id : closers)
          if (std::isfinite(logits[id])) allowed_closers.push_back(id);
        const int32_t pick = !allowed_closers.empty() && rng() % 2
                                 ? allowed_closers[rng() % allowed_closers.size()]
                                 : allowed[rng() % allowed.size()];
        ASSERT_TRUE(Accept(st, vocab, pick));
        text += vocab.piece(pick);
      }
      ASSERT_TRUE(done) << text;
      const ParsedMessage m = ParseToolCalls(f, text);
      ASSERT_EQ(m.tool_calls.size(), 1u) << text;
      json args;
      ASSERT_NO_THROW(args = json::parse(m.tool_calls[0].arguments)) << text;
      ASSERT_TRUE(args.is_object()) << text;
      if (m.tool_calls[0].name == "get_weather") {
        EXPECT_TRUE(args.contains("city") && args["city"].is_string()) << text;
      } else {
        EXPECT_EQ(m.tool_calls[0].name, "noop") << text;
      }
      EXPECT_TRUE(Trim(m.content).empty()) << text;
    }
  }
}

}  // namespace
}  // namespace origami
