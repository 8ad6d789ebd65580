// Ollama API translation: /api/chat and /api/generate bodies onto OpenAI bodies, model names,
// keep_alive, the Go-template subset, answers back into Ollama's message shape, model card pieces.
#include "server/ollama_api.h"

#include <gtest/gtest.h>

#include "server/ollama_model.h"
#include "server/tool_deltas.h"

namespace origami::server {
namespace {

using nlohmann::json;

OllamaContext Ctx() {
  OllamaContext c;
  c.alias = "tiny";
  c.template_tools = true;
  return c;
}

json Body(const OllamaTranslation& t) { return json::parse(t.body); }

int StatusOf(const std::string& body, bool chat = true) {
  try {
    if (chat)
      TranslateOllamaChat(body, Ctx());
    else
      TranslateOllamaGenerate(body, Ctx());
  } catch (const ApiError& e) {
    return e.status;
  }
  return 200;
}

std::string MessageOf(const std::string& body, bool chat = true) {
  try {
    if (chat)
      TranslateOllamaChat(body, Ctx());
    else
      TranslateOllamaGenerate(body, Ctx());
  } catch (const ApiError& e) {
    return e.what();
  }
  return "";
}

TEST(OllamaApi, ChatMapsMessagesOptionsFormatThink) {
  OllamaTranslation t = TranslateOllamaChat(R"({"model":"tiny:latest","messages":[
      {"role":"system","content":"be brief"},{"role":"user","content":"hi","images":[]},
      {"role":"assistant","content":"","thinking":"hm","tool_calls":[{"function":{"name":"f","arguments":{"a":1}}}]},
      {"role":"tool","content":"42","tool_name":"f"}],
    "options":{"temperature":0,"top_k":5,"top_p":0.5,"min_p":0.1,"seed":7,"num_predict":12,"num_ctx":4096,
      "stop":["END"],"repeat_penalty":1.1,"repeat_last_n":32,"presence_penalty":0.5,"frequency_penalty":3,
      "mirostat":2,"unknown_thing":"x"},
    "format":{"type":"object","properties":{"a":{"type":"integer"}}},"think":false,"stream":false,
    "tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]})",
                                            Ctx());
  EXPECT_EQ(t.action, OllamaAction::kGenerate);
  EXPECT_EQ(t.model, "tiny:latest");
  EXPECT_FALSE(t.stream);
  EXPECT_FALSE(t.split_thinking);
  EXPECT_EQ(t.endpoint, Endpoint::kChat);
  json b = Body(t);
  EXPECT_EQ(b["messages"].size(), 4u);
  EXPECT_EQ(b["messages"][2]["reasoning_content"], "hm");
  EXPECT_EQ(b["messages"][2]["tool_calls"][0]["function"]["arguments"]["a"], 1);
  EXPECT_EQ(b["messages"][2]["tool_calls"][0]["type"], "function");
  EXPECT_EQ(b["messages"][3]["name"], "f");
  EXPECT_EQ(b["temperature"], 0.0);
  EXPECT_EQ(b["top_k"], 5);
  EXPECT_EQ(b["seed"], 7);
  EXPECT_EQ(b["max_tokens"], 12);
  EXPECT_EQ(b["stop"][0], "END");
  EXPECT_EQ(b["repeat_last_n"], 32);
  EXPECT_EQ(b["frequency_penalty"], 2.0);  // clamped into the sampler's range
  EXPECT_FALSE(b.contains("mirostat"));
  EXPECT_EQ(b["response_format"]["type"], "json_schema");
  EXPECT_EQ(b["response_format"]["json_schema"]["schema"]["properties"]["a"]["type"], "integer");
  EXPECT_EQ(b["chat_template_kwargs"]["enable_thinking"], false);
  EXPECT_EQ(b["tools"][0]["function"]["name"], "f");
}

TEST(OllamaApi, DefaultsStreamAndOllamaSampling) {
  OllamaTranslation t =
      TranslateOllamaChat(R"({"model":"TINY","messages":[{"role":"user","content":"x"}],
        "format":"json","options":{"num_predict":-1,"seed":-1}})",
                          Ctx());
  EXPECT_TRUE(t.stream);
  json b = Body(t);
  EXPECT_EQ(b["temperature"], 0.8);
  EXPECT_EQ(b["top_k"], 40);
  EXPECT_FALSE(b.contains("max_tokens"));
  EXPECT_FALSE(b.contains("seed"));
  EXPECT_EQ(b["response_format"]["type"], "json_object");
  OllamaContext thinks = Ctx();
  thinks.template_thinks = true;
  EXPECT_TRUE(
      TranslateOllamaChat(R"({"model":"tiny","messages":[{"role":"user","content":"x"}]})", thinks)
          .split_thinking);
  json high = Body(TranslateOllamaChat(
      R"({"model":"tiny","think":"high","messages":[{"role":"user","content":"x"}]})", thinks));
  EXPECT_EQ(high["chat_template_kwargs"]["reasoning_effort"], "high");
}

TEST(OllamaApi, CapabilitiesTheTemplateLacks) {
  EXPECT_EQ(
      MessageOf(R"({"model":"tiny","think":true,"messages":[{"role":"user","content":"x"}]})"),
      "\"tiny\" does not support thinking");
  EXPECT_EQ(
      StatusOf(R"({"model":"tiny","think":false,"messages":[{"role":"user","content":"x"}]})"),
      200);
  EXPECT_EQ(MessageOf(R"({"model":"tiny","prompt":"x","raw":true,"think":true})", false),
            "\"tiny\" does not support thinking");
  OllamaContext plain = Ctx();
  plain.template_tools = false;
  try {
    TranslateOllamaChat(R"({"model":"tiny","messages":[{"role":"user","content":"x"}],
      "tools":[{"type":"function","function":{"name":"f"}}]})",
                        plain);
    ADD_FAILURE() << "tools on a template without tool syntax should fail";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 400);
    EXPECT_STREQ(e.what(), "\"tiny\" does not support tools");
  }
}

// The handler splits thinking with this builder configuration when tools are off: reasoning in
// think tags goes to "thinking" however the tags are split across tokens.
TEST(OllamaApi, ThinkingSplitWithoutTools) {
  for (size_t cut = 1; cut < 20; ++cut) {
    ToolParseOptions po;
    po.parse_tool_calls = false;
    ToolDeltaBuilder b(ToolCallFormat::kNone, po);
    const std::string text = "<think>plan it</think>The answer";
    b.Push(text.substr(0, cut));
    b.Push(text.substr(cut));
    b.Finish();
    json m = OllamaMessage(b.Message());
    EXPECT_EQ(m["thinking"], "plan it") << cut;
    EXPECT_EQ(m["content"], "The answer") << cut;
  }
  ToolParseOptions open;
  open.parse_tool_calls = false;
  open.starts_in_reasoning = true;  // the prompt ended in <think>
  ToolDeltaBuilder b(ToolCallFormat::kNone, open);
  b.Push("hmm</think>ok");
  b.Finish();
  EXPECT_EQ(OllamaMessage(b.Message())["thinking"], "hmm");
}

TEST(OllamaApi, MoreThanFourStopsGoToTheHandler) {
  OllamaTranslation t =
      TranslateOllamaChat(R"({"model":"tiny","messages":[{"role":"user","content":"x"}],
    "options":{"stop":["a","b","c","d","e",""]}})",
                          Ctx());
  EXPECT_FALSE(Body(t).contains("stop"));
  EXPECT_EQ(t.many_stops, (std::vector<std::string>{"a", "b", "c", "d", "e"}));
  OllamaTranslation few = TranslateOllamaChat(
      R"({"model":"tiny","messages":[{"role":"user","content":"x"}],"options":{"stop":"a"}})",
      Ctx());
  EXPECT_EQ(Body(few)["stop"][0], "a");
  EXPECT_TRUE(few.many_stops.empty());
}

TEST(OllamaApi, LoadAndUnloadCalls) {
  EXPECT_EQ(TranslateOllamaChat(R"({"model":"tiny","messages":[],"keep_alive":0})", Ctx()).action,
            OllamaAction::kUnload);
  EXPECT_EQ(TranslateOllamaChat(R"({"model":"tiny"})", Ctx()).action, OllamaAction::kLoad);
  EXPECT_EQ(TranslateOllamaGenerate(R"({"model":"tiny","keep_alive":"0s"})", Ctx()).action,
            OllamaAction::kUnload);
  EXPECT_EQ(TranslateOllamaGenerate(R"({"model":"tiny","keep_alive":"5m"})", Ctx()).action,
            OllamaAction::kLoad);
}

TEST(OllamaApi, GenerateChatRawTemplateAndFim) {
  json chat =
      Body(TranslateOllamaGenerate(R"({"model":"tiny","prompt":"Once","system":"S"})", Ctx()));
  EXPECT_EQ(chat["messages"][0]["role"], "system");
  EXPECT_EQ(chat["messages"][1]["content"], "Once");
  OllamaTranslation raw =
      TranslateOllamaGenerate(R"({"model":"tiny","prompt":"Once","raw":true})", Ctx());
  EXPECT_EQ(raw.endpoint, Endpoint::kCompletions);
  EXPECT_EQ(Body(raw)["prompt"], "Once");
  json tm = Body(TranslateOllamaGenerate(
      R"({"model":"tiny","prompt":"P","system":"S","template":"{{ if .System }}<s>{{ .System }}</s>{{ end }}U: {{ .Prompt }}\nA: {{ .Response }}<end>"})",
      Ctx()));
  EXPECT_EQ(tm["prompt"], "<s>S</s>U: P\nA: ");
  EXPECT_EQ(StatusOf(R"({"model":"tiny","prompt":"a","suffix":"b"})", false), 400);
  EXPECT_EQ(MessageOf(R"({"model":"tiny","prompt":"a","suffix":"b"})", false),
            "\"tiny\" does not support insert");
  OllamaContext fim = Ctx();
  fim.fim_prefix = "<PRE>";
  fim.fim_suffix = "<SUF>";
  fim.fim_middle = "<MID>";
  json f = Body(TranslateOllamaGenerate(R"({"model":"tiny","prompt":"a","suffix":"b"})", fim));
  EXPECT_EQ(f["prompt"], "<PRE>a<SUF>b<MID>");
}

TEST(OllamaApi, TemplateSubset) {
  EXPECT_EQ(RenderOllamaTemplate("{{- .System -}}\n\n{{ .Prompt }}", "S", "P"), "SP");
  EXPECT_EQ(RenderOllamaTemplate("{{ if .System }}X{{ end }}{{ .Prompt }}", "", "P"), "P");
  EXPECT_THROW(RenderOllamaTemplate("{{ range .Messages }}{{ end }}", "", "P"), ApiError);
  EXPECT_THROW(RenderOllamaTemplate("{{ if .System }}", "", "P"), ApiError);
  EXPECT_THROW(RenderOllamaTemplate("{{ .Prompt", "", "P"), ApiError);
}

TEST(OllamaApi, ModelNamesAndErrors) {
  EXPECT_TRUE(OllamaNameMatches("tiny", "tiny"));
  EXPECT_TRUE(OllamaNameMatches("tiny:latest", "tiny"));
  EXPECT_TRUE(OllamaNameMatches("Tiny:Latest", "tiny"));
  EXPECT_FALSE(OllamaNameMatches("tiny:7b", "tiny"));
  EXPECT_TRUE(OllamaNameMatches("qwen3:0.6b", "qwen3:0.6b"));
  EXPECT_FALSE(OllamaNameMatches("qwen3", "qwen3:0.6b"));
  EXPECT_EQ(OllamaName("tiny"), "tiny:latest");
  EXPECT_EQ(StatusOf(R"({"model":"other","messages":[{"role":"user","content":"x"}]})"), 404);
  EXPECT_EQ(MessageOf(R"({"model":"other","messages":[]})"),
            "model \"other\" not found, try pulling it first");
  EXPECT_EQ(MessageOf(R"({"messages":[]})"), "model is required");
  EXPECT_EQ(OllamaErrorBody("x").dump(), R"({"error":"x"})");
}

TEST(OllamaApi, BadRequestsAre400) {
  const char* bad[] = {
      "{",
      "[]",
      R"({"model":5})",
      R"({"model":"tiny","messages":{}})",
      R"({"model":"tiny","messages":[5]})",
      R"({"model":"tiny","messages":[{"content":"x"}]})",
      R"({"model":"tiny","messages":[{"role":"robot","content":"x"}]})",
      R"({"model":"tiny","messages":[{"role":"user","content":5}]})",
      R"({"model":"tiny","messages":[{"role":"user","content":"x","images":["AAAA"]}]})",
      R"({"model":"tiny","messages":[{"role":"user","content":"x","images":"AAAA"}]})",
      R"({"model":"tiny","messages":[{"role":"user","content":"x","tool_calls":[{"function":{"name":"f"}}]}]})",
      R"({"model":"tiny","messages":[{"role":"assistant","content":"","tool_calls":[{"function":{"name":"f","arguments":5}}]}]})",
      R"({"model":"tiny","messages":[{"role":"user","content":"x"}],"stream":"yes"})",
      R"({"model":"tiny","messages":[{"role":"user","content":"x"}],"options":[]})",
      R"({"model":"tiny","messages":[{"role":"user","content":"x"}],"options":{"temperature":"hot"}})",
      R"({"model":"tiny","messages":[{"role":"user","content":"x"}],"options":{"num_predict":"5"}})",
      R"({"model":"tiny","messages":[{"role":"user","content":"x"}],"options":{"num_predict":-3}})",
      R"({"model":"tiny","messages":[{"role":"user","content":"x"}],"options":{"num_predict":1.5}})",
      R"({"model":"tiny","messages":[{"role":"user","content":"x"}],"options":{"num_ctx":0}})",
      R"({"model":"tiny","messages":[{"role":"user","content":"x"}],"options":{"stop":[1]}})",
      R"({"model":"tiny","messages":[{"role":"user","content":"x"}],"format":"xml"})",
      R"({"model":"tiny","messages":[{"role":"user","content":"x"}],"format":5})",
      R"({"model":"tiny","messages":[{"role":"user","content":"x"}],"think":"very"})",
      R"({"model":"tiny","messages":[{"role":"user","content":"x"}],"keep_alive":"soon"})",
      R"({"model":"tiny","messages":[{"role":"user","content":"x"}],"keep_alive":true})",
      R"({"model":"tiny","messages":[{"role":"user","content":"x"}],"tools":{}})",
      R"({"model":"tiny","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function"}]})",
  };
  for (const char* b : bad) EXPECT_EQ(StatusOf(b), 400) << b;
  json many = json::parse(R"({"model":"tiny","messages":[{"role":"user","content":"x"}]})");
  many["options"]["stop"] = std::vector<std::string>(65, "s");
  EXPECT_EQ(StatusOf(many.dump()), 400);
  EXPECT_EQ(StatusOf(R"({"model":"tiny","prompt":5})", false), 400);
  EXPECT_EQ(StatusOf(R"({"model":"tiny","prompt":"x","images":["AAAA"]})", false), 400);
  EXPECT_EQ(StatusOf(R"({"model":"tiny","prompt":"x","context":[1,2]})", false), 400);
  EXPECT_EQ(StatusOf(R"({"model":"tiny","prompt":"x","raw":"yes"})", false), 400);
  EXPECT_EQ(StatusOf(R"({"model":"tiny","prompt":"x","template":"{{ .Foo }}"})", false), 400);
  EXPECT_NE(
      MessageOf(R"({"model":"tiny","messages":[{"role":"user","content":"x","images":["A"]}]})")
          .find("messages[0].images"),
      std::string::npos);
}

TEST(OllamaApi, KeepAliveDurations) {
  EXPECT_EQ(ParseKeepAlive(json(0)), 0);
  EXPECT_EQ(ParseKeepAlive(json("5m")), 300);
  EXPECT_EQ(ParseKeepAlive(json("1h30m")), 5400);
  EXPECT_EQ(ParseKeepAlive(json("-1")), -1);
  EXPECT_EQ(ParseKeepAlive(json("300")), 300);
  EXPECT_DOUBLE_EQ(ParseKeepAlive(json("1.5s")), 1.5);
  EXPECT_THROW(ParseKeepAlive(json("5 minutes")), ApiError);
  EXPECT_THROW(ParseKeepAlive(json("")), ApiError);
}

TEST(OllamaApi, AnswersInOllamaShape) {
  json m = OllamaMessage(
      {{"role", "assistant"},
       {"content", nullptr},
       {"reasoning_content", "r"},
       {"tool_calls", json::array({{{"id", "c1"},
                                    {"type", "function"},
                                    {"function", {{"name", "f"}, {"arguments", "{\"x\":2}"}}}}})}});
  EXPECT_EQ(m["content"], "");
  EXPECT_EQ(m["thinking"], "r");
  EXPECT_EQ(m["tool_calls"][0]["function"]["name"], "f");
  EXPECT_EQ(m["tool_calls"][0]["function"]["arguments"]["x"], 2);  // an object, not a string
  json line = {{"model", "tiny"}};
  OllamaStats st;
  st.done_reason = "length";
  st.total_ns = 100;
  st.eval_count = 3;
  AddOllamaStats(line, st);
  EXPECT_EQ(line["done"], true);
  EXPECT_EQ(line["done_reason"], "length");
  EXPECT_EQ(line["total_duration"], 100);
  EXPECT_EQ(line["eval_count"], 3);
  EXPECT_TRUE(line.contains("prompt_eval_duration"));
  const std::string t = Rfc3339Nano(
      std::chrono::system_clock::time_point(std::chrono::nanoseconds(1700000000123456789LL)));
  EXPECT_EQ(t, "2023-11-14T22:13:20.123456789Z");
}

TEST(OllamaModel, CardPieces) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex(std::string(1000, 'a')),
            "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3");
  EXPECT_EQ(HumanParameterCount(1230000000), "1.2B");
  EXPECT_EQ(HumanParameterCount(7000000000), "7B");
  EXPECT_EQ(HumanParameterCount(260000), "260K");
  EXPECT_EQ(HumanParameterCount(135500000), "135.50M");
  EXPECT_EQ(FileTypeName(2), "Q4_0");
  EXPECT_EQ(FileTypeName(15), "Q4_K_M");
  EXPECT_EQ(FileTypeName(999), "");
  OllamaModelCard c;
  c.name = "tiny:latest";
  c.architecture = "qwen3";
  c.parameter_size = "1M";
  c.quantization_level = "F32";
  json tag = OllamaTagEntry(c);
  EXPECT_EQ(tag["details"]["format"], "gguf");
  EXPECT_EQ(tag["details"]["families"][0], "qwen3");
  EXPECT_EQ(tag["model"], "tiny:latest");
  const auto caps =
      OllamaCapabilities(c, "{% if tools %}<tool_call>{% endif %}{% if enable_thinking %}");
  EXPECT_EQ(caps, (std::vector<std::string>{"completion", "tools", "thinking"}));
  c.embedding = true;
  EXPECT_EQ(OllamaCapabilities(c, ""), (std::vector<std::string>{"embedding"}));
}

}  // namespace
}  // namespace origami::server
