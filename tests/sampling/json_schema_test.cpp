// JSON Schema grammars: known strings accepted / rejected, bad schemas rejected with the keyword
// named, and random walks over the Llama 3 vocabulary under the mask that must end in JSON which
// parses and validates (a small validator for the supported subset lives here).
#include "sampling/json_schema.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace origami {
namespace {

using json = nlohmann::json;

bool Matches(const std::shared_ptr<const Grammar>& g, std::string_view s) {
  GrammarState st(g);
  return st.AcceptBytes(s) && st.IsComplete();
}

size_t CodePoints(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// Validates `v` against the subset of JSON Schema the compiler supports.
bool Valid(const json& v, const json& s, const json& root, std::string& why);

bool ValidType(const json& v, const std::string& t) {
  if (t == "object") return v.is_object();
  if (t == "array") return v.is_array();
  if (t == "string") return v.is_string();
  if (t == "integer") return v.is_number_integer() || v.is_number_unsigned();
  if (t == "number") return v.is_number();
  if (t == "boolean") return v.is_boolean();
  if (t == "null") return v.is_null();
  return false;
}

bool Valid(const json& v, const json& s, const json& root, std::string& why) {
  auto fail = [&](const std::string& w) {
    why = w + " for " + v.dump() + " against " + s.dump();
    return false;
  };
  if (s.is_boolean()) return s.get<bool>() || fail("false schema");
  if (s.contains("$ref")) {
    const std::string ref = s["$ref"];
    const json& target = ref == "#" ? root : root.at(json::json_pointer(ref.substr(1)));
    return Valid(v, target, root, why);
  }
  if (s.value("nullable", false) && v.is_null()) return true;
  if (s.contains("allOf"))
    for (const auto& sub : s["allOf"])
      if (!Valid(v, sub, root, why)) return false;
  if (s.contains("anyOf")) {
    bool any = false;
    for (const auto& sub : s["anyOf"]) any = any || Valid(v, sub, root, why);
    if (!any) return fail("anyOf");
  }
  if (s.contains("oneOf")) {
    int n = 0;
    for (const auto& sub : s["oneOf"]) n += Valid(v, sub, root, why);
    if (n != 1) return fail("oneOf");
  }
  if (s.contains("const") && v != s["const"]) return fail("const");
  if (s.contains("enum")) {
    bool hit = false;
    for (const auto& e : s["enum"]) hit = hit || e == v;
    if (!hit) return fail("enum");
  }
  if (s.contains("type")) {
    bool ok = false;
    if (s["type"].is_array()) {
      for (const auto& t : s["type"]) ok = ok || ValidType(v, t);
    } else {
      ok = ValidType(v, s["type"]);
    }
    if (!ok) return fail("type");
  }
  if (v.is_number() && s.contains("minimum") && s["minimum"].get<double>() >= 0 &&
      v.get<double>() < 0)
    return fail("minimum");
  if (v.is_string()) {
    const std::string str = v.get<std::string>();
    if (s.contains("minLength") && CodePoints(str) < s["minLength"].get<size_t>())
      return fail("minLength");
    if (s.contains("maxLength") && CodePoints(str) > s["maxLength"].get<size_t>())
      return fail("maxLength");
    const std::string fmt = s.value("format", "");
    auto digits_at = [&](std::initializer_list<size_t> at) {
      for (size_t i : at)
        if (i >= str.size() || !isdigit(static_cast<unsigned char>(str[i]))) return false;
      return true;
    };
    if ((fmt == "date" || fmt == "date-time") &&
        !(str.size() >= 10 && digits_at({0, 1, 2, 3, 5, 6, 8, 9}) && str[4] == '-' &&
          str[7] == '-'))
      return fail("format date");
    if (fmt == "date-time" && (str.size() < 20 || str[10] != 'T')) return fail("format date-time");
    if (fmt == "uuid" && (str.size() != 36 || str[8] != '-' || str[13] != '-')) return fail("uuid");
  }
  if (v.is_array()) {
    if (s.contains("minItems") && v.size() < s["minItems"].get<size_t>()) return fail("minItems");
    if (s.contains("maxItems") && v.size() > s["maxItems"].get<size_t>()) return fail("maxItems");
    size_t n_prefix = 0;
    if (s.contains("prefixItems")) {
      n_prefix = s["prefixItems"].size();
      for (size_t i = 0; i < std::min(n_prefix, v.size()); ++i)
        if (!Valid(v[i], s["prefixItems"][i], root, why)) return false;
    }
    if (s.contains("items"))
      for (size_t i = n_prefix; i < v.size(); ++i)
        if (!Valid(v[i], s["items"], root, why)) return false;
  }
  if (v.is_object()) {
    const json props = s.value("properties", json::object());
    for (const auto& r : s.value("required", json::array()))
      if (!v.contains(r.get<std::string>())) return fail("required " + r.get<std::string>());
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (props.contains(it.key())) {
        if (!Valid(it.value(), props[it.key()], root, why)) return false;
      } else if (s.contains("additionalProperties")) {
        if (!Valid(it.value(), s["additionalProperties"], root, why)) return false;
      }
    }
  }
  return true;
}

const std::vector<std::string>& Schemas() {
  static const std::vector<std::string> k = {
      R"({"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}},"required":["name","age"],"additionalProperties":false})",
      R"({"type":"array","items":{"type":"integer"},"minItems":2,"maxItems":4})",
      R"({"enum":["red","green",3,null,true]})",
      R"({"const":{"a":[1,2]}})",
      R"({"type":["string","null"],"maxLength":8})",
      R"({"type":"string","minLength":2,"maxLength":5})",
      R"({"type":"number"})",
      R"({"type":"boolean"})",
      R"({"anyOf":[{"type":"integer"},{"type":"array","items":{"type":"boolean"},"maxItems":3}]})",
      R"({"oneOf":[{"type":"object","properties":{"kind":{"const":"a"},"x":{"type":"integer"}},"required":["kind","x"],"additionalProperties":false},{"type":"object","properties":{"kind":{"const":"b"}},"required":["kind"],"additionalProperties":false}]})",
      R"({"$defs":{"pt":{"type":"object","properties":{"x":{"type":"number"},"y":{"type":"number"}},"required":["x","y"],"additionalProperties":false}},"type":"array","items":{"$ref":"#/$defs/pt"},"maxItems":3})",
      R"({"$defs":{"node":{"type":"object","properties":{"v":{"type":"integer"},"kids":{"type":"array","items":{"$ref":"#/$defs/node"},"maxItems":2}},"required":["v"],"additionalProperties":false}},"$ref":"#/$defs/node"})",
      R"({"definitions":{"s":{"type":"string","maxLength":3}},"properties":{"a":{"$ref":"#/definitions/s"}},"required":["a"],"additionalProperties":false})",
      R"({"type":"object","additionalProperties":{"type":"integer"},"maxProperties_is_not_here":1})",
      R"({"type":"object"})",
      R"({"type":"string","format":"date"})",
      R"({"type":"string","format":"date-time"})",
      R"({"type":"string","format":"uuid"})",
      R"({"type":"integer","minimum":0})",
      R"({"type":"object","properties":{"opt1":{"type":"string","maxLength":6},"opt2":{"type":"integer"},"req":{"type":"boolean"}},"required":["req"]})",
      R"({"allOf":[{"type":"object","properties":{"a":{"type":"integer"}},"required":["a"]},{"properties":{"b":{"type":"string","maxLength":4}},"required":["b"]}]})",
      R"({"type":"array","prefixItems":[{"type":"string","maxLength":3},{"type":"integer"}],"items":false,"minItems":2})",
      R"({"type":"object","properties":{"tags":{"type":"array","items":{"type":"string","maxLength":4},"minItems":1,"maxItems":3},"nested":{"type":"object","properties":{"deep":{"type":"null"}},"required":["deep"],"additionalProperties":false}},"required":["tags","nested"],"additionalProperties":false})",
      R"({"type":"string","nullable":true,"maxLength":3})",
      R"({"title":"t","description":"annotations are ignored","type":"object","properties":{"q":{"type":"number","minimum":0,"maximum":10}},"required":["q"],"additionalProperties":false})",
  };
  return k;
}

TEST(JsonSchema, KnownStrings) {
  auto g = JsonSchemaGrammar(json::parse(Schemas()[0]));
  EXPECT_TRUE(Matches(g, R"({"age": 3, "name": "Al"})"));
  EXPECT_TRUE(Matches(g, "{\n  \"age\": -12,\n  \"name\": \"\\u00e9\\n\"\n}"));
  EXPECT_FALSE(Matches(g, R"({"name": "Al"})"));                    // required
  EXPECT_FALSE(Matches(g, R"({"age": 3, "name": "Al", "x": 1})"));  // additional
  EXPECT_FALSE(Matches(g, R"({"age": 3.5, "name": "Al"})"));        // integer
  EXPECT_FALSE(Matches(g, R"({"age": 03, "name": "Al"})"));         // leading zero
  EXPECT_FALSE(Matches(g, R"({"age": 3, "name": "\ud800"})"));      // lone surrogate
  EXPECT_FALSE(Matches(g, "{\"age\": 3, \"name\": \"a\x01\"}"));    // control char
  auto arr = JsonSchemaGrammar(json::parse(Schemas()[1]));
  EXPECT_TRUE(Matches(arr, "[1, 2]"));
  EXPECT_TRUE(Matches(arr, "[1,2,3,4]"));
  EXPECT_FALSE(Matches(arr, "[1]"));
  EXPECT_FALSE(Matches(arr, "[1,2,3,4,5]"));
  auto len = JsonSchemaGrammar(json::parse(Schemas()[5]));
  EXPECT_TRUE(Matches(len, "\"h\xC3\xA9\""));  // two code points
  EXPECT_FALSE(Matches(len, "\"h\""));
  EXPECT_FALSE(Matches(len, "\"hello!\""));
  auto num = JsonSchemaGrammar(json::parse(Schemas()[6]));
  for (const char* ok : {"0", "-1.5", "1e10", "2.25E-3"}) EXPECT_TRUE(Matches(num, ok)) << ok;
  for (const char* bad : {"01", "1.", ".5", "+1", "1e", "NaN"})
    EXPECT_FALSE(Matches(num, bad)) << bad;
  auto obj = JsonObjectGrammar();
  EXPECT_TRUE(Matches(obj, R"({"a": [1, {"b": null}], "c": "d"})"));
  EXPECT_FALSE(Matches(obj, "[]"));
  EXPECT_FALSE(Matches(obj, std::string("{") + std::string(kJsonMaxWs + 1, ' ') + "}"));
  auto date = JsonSchemaGrammar(json::parse(Schemas()[16]));
  EXPECT_TRUE(Matches(date, "\"2024-02-29T13:05:00.123Z\""));
  EXPECT_FALSE(Matches(date, "\"2024-13-01T00:00:00Z\""));
}

// Whitespace between tokens is what a compact or an indenting serializer writes, nothing more: the
// issue 14 reproduction was a forced call whose JSON filled max_tokens with newlines.
TEST(JsonSchema, WhitespaceIsBoundedByShape) {
  auto obj = JsonObjectGrammar();
  for (const char* ok : {"{}", "{ }", R"({"a":1})", R"({"a": 1, "b": [1, 2]})",
                         "{\n  \"a\": {\n    \"b\": 1\n  }\n}", "{\n\t\"a\": 1\n}"})
    EXPECT_TRUE(Matches(obj, ok)) << ok;
  for (const char* bad :
       {"{\n\n}", "{  }", R"({"a":  1})", "{\"a\": 1\n\n}", "{ \n}", "{\"a\": [1,\n\n2]}"})
    EXPECT_FALSE(Matches(obj, bad)) << bad;
  const std::string indent(kJsonMaxIndent, ' ');
  EXPECT_TRUE(Matches(obj, "{\n" + indent + "\"a\": 1}"));
  EXPECT_FALSE(Matches(obj, "{\n" + indent + " \"a\": 1}"));
  // The same bound inside schema-compiled objects and arrays.
  auto g = JsonSchemaGrammar(nlohmann::ordered_json::parse(
      R"({"type":"object","properties":{"s":{"type":"string","maxLength":3},"n":{"type":"array","items":{"type":"integer"}}},"required":["s","n"],"additionalProperties":false})"));
  EXPECT_TRUE(Matches(g, "{\n  \"s\": \"abc\",\n  \"n\": [\n    1,\n    2\n  ]\n}"));
  EXPECT_FALSE(Matches(g, "{\"s\": \"abc\",\n\n\"n\": []}"));
  EXPECT_FALSE(Matches(g, "{\"s\": \"abcd\", \"n\": []}"));  // maxLength
  EXPECT_FALSE(Matches(g, "{\"s\": \"a\", \"n\": [1,\n\n 2]}"));
}

TEST(JsonSchema, OrderedJsonKeepsPropertyOrder) {
  const char* schema = R"({"type":"object","properties":{"name":{"type":"string"},
      "age":{"type":"integer"}},"required":["name","age"],"additionalProperties":false})";
  auto ordered = JsonSchemaGrammar(nlohmann::ordered_json::parse(schema));
  EXPECT_TRUE(Matches(ordered, R"({"name": "a", "age": 1})"));
  EXPECT_FALSE(Matches(ordered, R"({"age": 1, "name": "a"})"));
  auto sorted = JsonSchemaGrammar(json::parse(schema));
  EXPECT_TRUE(Matches(sorted, R"({"age": 1, "name": "a"})"));
}

TEST(JsonSchema, BadSchemasNameTheProblem) {
  auto err = [](const char* schema) {
    try {
      JsonSchemaGrammar(json::parse(schema));
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(err(R"({"type":"string","pattern":"^a+$"})").find("'pattern'"), std::string::npos);
  EXPECT_NE(err(R"({"not":{"type":"null"}})").find("'not'"), std::string::npos);
  EXPECT_NE(err(R"({"type":"array","uniqueItems":true})").find("'uniqueItems'"), std::string::npos);
  EXPECT_NE(err(R"({"type":"strin"})").find("strin"), std::string::npos);
  EXPECT_NE(err(R"({"$ref":"#/$defs/missing"})").find("points nowhere"), std::string::npos);
  EXPECT_NE(err(R"({"$ref":"http://example.com/s.json"})").find("$ref"), std::string::npos);
  EXPECT_NE(err(R"({"type":"array","minItems":3,"maxItems":2})").find("minItems"),
            std::string::npos);
  EXPECT_NE(err(R"({"enum":[]})").find("enum"), std::string::npos);
  EXPECT_NE(err("false").find("false"), std::string::npos);
  EXPECT_NE(err("[1]").find("must be an object"), std::string::npos);
  EXPECT_NE(err(R"({"properties":[]})").find("properties"), std::string::npos);
  EXPECT_NE(err(R"({"type":"string","maxLength":100000})").find("maxLength"), std::string::npos);
  EXPECT_NE(err(R"({"type":"string","minLength":-1})").find("minLength"), std::string::npos);
  EXPECT_NE(err(R"({"properties":{"a":{"type":"object","properties":{"b":{"if":{}}}}}})")
                .find("#/properties/a/properties/b"),
            std::string::npos);
  // response_format wrapper.
  EXPECT_EQ(ResponseFormatGrammar(json::parse(R"({"type":"text"})")), nullptr);
  EXPECT_NE(ResponseFormatGrammar(json::parse(R"({"type":"json_object"})")), nullptr);
  EXPECT_NE(
      ResponseFormatGrammar(json::parse(
          R"({"type":"json_schema","json_schema":{"name":"x","schema":{"type":"integer"}}})")),
      nullptr);
  EXPECT_THROW(ResponseFormatGrammar(json::parse(R"({"type":"xml"})")), Error);
  try {
    ResponseFormatGrammar(json::parse(
        R"({"type":"json_schema","json_schema":{"name":"x","schema":{"type":"string","pattern":"a"}}})"));
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("response_format.json_schema.schema"), std::string::npos);
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
  }
}

// Random walks: sample allowed tokens under the mask (biased towards tokens that close
// structures, so walks end) until the grammar is complete, then parse and validate.
TEST(JsonSchema, RandomWalksParseAndValidate) {
  auto file =
      gguf::File::Open(std::string(ORIGAMI_SHARED_DIR) + "/tokenizer/ggml-vocab-llama-bpe.gguf");
  auto tok = Tokenizer::FromGguf(*file);
  GrammarVocab vocab(*tok);
  std::vector<float> logits(static_cast<size_t>(tok->n_vocab()));
  std::vector<int32_t> closers;  // tokens whose bytes hold a closing character
  for (int32_t id = 0; id < tok->n_vocab(); ++id) {
    if (vocab.kind(id) != GrammarVocab::kText) continue;
    const std::string& p = vocab.piece(id);
    if (p.find_first_of("\"]},") != std::string::npos ||
        (p.size() <= 2 && isdigit(static_cast<unsigned char>(p[0]))))
      closers.push_back(id);
  }
  std::mt19937 rng(1234);
  int walks = 0;
  for (size_t si = 0; si < Schemas().size(); ++si) {
    const json schema = json::parse(Schemas()[si]);
    auto g = JsonSchemaGrammar(schema);
    for (int rep = 0; rep < 2; ++rep) {
      SCOPED_TRACE(Schemas()[si]);
      GrammarState st(g);
      std::string text;
      bool done = false;
      for (int step = 0; step < 600 && !done; ++step) {
        std::fill(logits.begin(), logits.end(), 0.0f);
        ApplyGrammarMask(vocab, st, logits);
        std::vector<int32_t> allowed, allowed_closers;
        for (int32_t id = 0; id < tok->n_vocab(); ++id)
          if (std::isfinite(logits[id])) allowed.push_back(id);
        ASSERT_FALSE(allowed.empty()) << "dead end after " << text;
        for (int32_t id : closers)
          if (std::isfinite(logits[id])) allowed_closers.push_back(id);
        int32_t pick;
        if (st.IsComplete() && rng() % 4 != 0) {
          pick = tok->eos_id();
          for (int32_t id : allowed)
            if (tok->IsEog(id)) pick = id;
        } else if (!allowed_closers.empty() && rng() % 3 != 0) {
          pick = allowed_closers[rng() % allowed_closers.size()];
        } else {
          pick = allowed[rng() % allowed.size()];
        }
        if (tok->IsEog(pick)) {
          ASSERT_TRUE(st.IsComplete());
          done = true;
          break;
        }
        ASSERT_TRUE(Accept(st, vocab, pick))
            << "masked-in token " << pick << " refused after " << text;
        text += vocab.piece(pick);
        if (st.IsComplete() && !st.CanContinue()) done = true;
      }
      ASSERT_TRUE(done) << "walk did not finish: " << text;
      json v;
      ASSERT_NO_THROW(v = json::parse(text)) << text;
      std::string why;
      EXPECT_TRUE(Valid(v, schema, schema, why)) << text << ": " << why;
      ++walks;
    }
  }
  EXPECT_GE(walks, 40);
}

}  // namespace
}  // namespace origami
