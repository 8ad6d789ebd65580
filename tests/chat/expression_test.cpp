// Unit tests of the expression language: small templates whose expected output (or failure) was
// produced by @huggingface/jinja (tests/data/chat/expressions.json, from render.mjs), plus the
// sandbox limits against hostile templates and the ApplyChatTemplate convenience.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "chat/template.h"
#include "util/error.h"

namespace origami {
int FuzzChatTemplate(const uint8_t* data, size_t size);

namespace {

using ojson = nlohmann::ordered_json;

std::string Render(const std::string& src, const ojson& ctx = ojson::object(), const RenderLimits& limits = {}) {
  return ChatTemplate::Parse(src).Render(ctx, limits);
}

// The error message of rendering src, or "" when it renders.
std::string RenderError(const std::string& src, const RenderLimits& limits = {}) {
  try {
    Render(src, ojson::object(), limits);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ChatTemplateExpressions, MatchReference) {
  std::ifstream f(std::string(ORIGAMI_TEST_DATA_DIR) + "/chat/expressions.json");
  ASSERT_TRUE(f) << "missing tests/data/chat/expressions.json";
  std::stringstream ss;
  ss << f.rdbuf();
  ojson data = ojson::parse(ss.str());
  const int64_t now = data["fixed_now_unix"].get<int64_t>();
  for (const auto& c : data["cases"]) {
    const std::string src = c["template"].get<std::string>();
    std::string got, err;
    try {
      got = ChatTemplate::Parse(src).Render(data["context"], {}, now);
    } catch (const Error& e) {
      err = e.what();
    }
    if (c.contains("ok")) {
      EXPECT_EQ(err, "") << src;
      EXPECT_EQ(got, c["ok"].get<std::string>()) << src;
    } else {
      EXPECT_NE(err, "") << src << " should fail like the reference: " << c["error"];
    }
  }
}

TEST(ChatTemplateExpressions, NumbersPrintLikeJavaScript) {
  EXPECT_EQ(Render("{{ 3.0 }} {{ 0.5 }} {{ 123456789012 }} {{ 2 ** 70 }}", {}), "3.0 0.5 123456789012 1.1805916207174113e+21");
  // JSON numbers become integers when integral, as JSON.parse + Number.isInteger make them.
  EXPECT_EQ(Render("{{ x }} {{ y }} {{ z|tojson }} {{ w }} {{ w * 1.0 }}", {{"x", 1.0}, {"y", 1e-7}, {"z", 2.50}, {"w", 1e21}}),
            "1 1e-7 2.5 1e+21 1e+21");
}

TEST(ChatTemplateExpressions, ContextKeyOrderFollowsJavaScriptObjects) {
  // Integer-like keys come first in ascending order, as Object.entries lists them.
  ojson ctx = ojson::parse(R"({"d": {"b": 1, "10": 2, "a": 3, "2": 4}})");
  EXPECT_EQ(Render("{{ d|tojson }}", ctx), R"({"2": 4, "10": 2, "b": 1, "a": 3})");
}

TEST(ChatTemplateExpressions, GlobalsCannotBeRedefinedByTheContext) {
  EXPECT_THROW(Render("x", {{"range", 1}}), Error);
}

TEST(ChatTemplateLimits, InfiniteMacroRecursionHitsTheDepthLimit) {
  std::string err = RenderError("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}");
  EXPECT_NE(err.find("depth limit"), std::string::npos) << err;
  err = RenderError("{% macro f() %}{% call f() %}x{% endcall %}{% endmacro %}{{ f() }}");
  EXPECT_NE(err.find("depth limit"), std::string::npos) << err;
}

TEST(ChatTemplateLimits, HugeLoopsHitTheStepLimit) {
  std::string err = RenderError("{% for i in range(1000000000) %}x{% endfor %}");
  EXPECT_NE(err.find("step limit"), std::string::npos) << err;
  RenderLimits small;
  small.max_steps = 1'000'000;
  err = RenderError("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", small);
  EXPECT_NE(err.find("step limit"), std::string::npos) << err;
  small.max_steps = 1000;
  err = RenderError("{% for i in range(600) %}{{ i }}{% endfor %}", small);
  EXPECT_NE(err.find("step limit"), std::string::npos) << err;
}

TEST(ChatTemplateLimits, GiantOutputsHitTheSizeLimit) {
  std::string err = RenderError(
      "{% set ns = namespace(s='xxxxxxxx') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}");
  EXPECT_NE(err.find("output size limit"), std::string::npos) << err;
  err = RenderError("{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s.replace('a', ns.s) %}{% endfor %}");
  EXPECT_NE(err.find("output size limit"), std::string::npos) << err;
  // Doubling a list: memory would explode long before the loop ends.
  err = RenderError(
      "{% set ns = namespace(l=[1]) %}{% for i in range(64) %}{% set ns.l = ns.l + ns.l %}{% endfor %}");
  EXPECT_NE(err.find("output size limit"), std::string::npos) << err;
  RenderLimits small;
  small.max_output_bytes = 1000;
  err = RenderError("{% for i in range(2000) %}x{% endfor %}", small);
  EXPECT_NE(err.find("output size limit"), std::string::npos) << err;
}

TEST(ChatTemplateLimits, DeepNestingIsASyntaxErrorNotACrash) {
  std::string deep = "{{ " + std::string(100000, '(') + "1" + std::string(100000, ')') + " }}";
  EXPECT_THROW(ChatTemplate::Parse(deep), Error);
  std::string ifs;
  for (int i = 0; i < 5000; ++i) ifs += "{% if true %}";
  EXPECT_THROW(ChatTemplate::Parse(ifs), Error);
  // Deep expressions inside deep recursion stop at the depth limit, not at a stack overflow.
  std::string nested = std::string(40, '(') + "f(n + 1)" + std::string(40, ')');
  std::string err = RenderError("{% macro f(n) %}{{ " + nested + " }}{% endmacro %}{{ f(0) }}");
  EXPECT_NE(err.find("depth limit"), std::string::npos) << err;
}

TEST(ChatTemplateLimits, BrokenTemplatesAreErrors) {
  for (const char* src : {"{{", "{% if %}", "{% endif %}", "{{ 'abc }}", "{# never closed", "{{ a[ }}",
                          "{% for x in %}{% endfor %}", "{% macro %}", "{{ a | }}", "{% set %}", "{{ \"\\q\" }}"}) {
    EXPECT_THROW(ChatTemplate::Parse(src).Render(ojson::object()), Error) << src;
  }
  EXPECT_NE(RenderError("{% break %}"), "");
}

TEST(ChatTemplateApply, BuildsTheStandardContext) {
  ojson messages = ojson::parse(R"([{"role": "user", "content": "Hi"}])");
  std::string out = ApplyChatTemplate(
      "{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}"
      "{% if tools is defined %}T{{ tools|length }}{% endif %}{% if add_generation_prompt %}<assistant>{% endif %}"
      "{{ eos_token }}{{ flavor }}",
      messages, nullptr, true, "<s>", "</s>", {{"flavor", "!"}});
  EXPECT_EQ(out, "<s><user>Hi<assistant></s>!");
  ojson tools = ojson::parse(R"([{"type": "function", "function": {"name": "f"}}])");
  out = ApplyChatTemplate("{% if tools is defined %}T{{ tools|length }}{% endif %}", messages, tools, false, "", "");
  EXPECT_EQ(out, "T1");
}

TEST(ChatTemplateFuzz, SmokeInputsDoNotCrash) {
  const char* inputs[] = {"", "{", "{{", "{%", "{#", "}}", "{{ x }}", "{% for x in y %}{{ x }}{% endfor %}",
                          "{{ -", "{{ 'a", "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "\xff\xfe{{ \x80 }}"};
  for (const char* in : inputs) {
    EXPECT_EQ(FuzzChatTemplate(reinterpret_cast<const uint8_t*>(in), std::strlen(in)), 0);
  }
}

}  // namespace
}  // namespace origami
