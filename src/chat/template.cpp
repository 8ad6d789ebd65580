// ChatTemplate: parse once, render many times; converts the JSON context into template values the
// way @huggingface/jinja's convertToRuntimeValues does (JS object key order, integral numbers as
// integers).
#include "chat/template.h"

#include <algorithm>
#include <cmath>

#include "chat/jinja_ast.h"
#include "chat/jinja_interp.h"
#include "util/error.h"

namespace origami {
namespace {

using jinja::Kind;
using jinja::Value;

// A canonical array index ("0", "17"; no sign, no leading zero, below 2^32 - 1): JS lists such
// keys first, in numeric order, whatever their insertion order.
bool IsArrayIndex(const std::string& k) {
  if (k.empty() || k.size() > 10 || (k.size() > 1 && k[0] == '0')) return false;
  if (!std::all_of(k.begin(), k.end(), [](char c) { return c >= '0' && c <= '9'; })) return false;
  return std::stoull(k) < 4294967295ull;
}

std::vector<std::pair<std::string, const nlohmann::ordered_json*>> JsEntries(const nlohmann::ordered_json& j) {
  std::vector<std::pair<std::string, const nlohmann::ordered_json*>> idx, rest;
  for (auto it = j.begin(); it != j.end(); ++it) {
    (IsArrayIndex(it.key()) ? idx : rest).emplace_back(it.key(), &it.value());
  }
  std::stable_sort(idx.begin(), idx.end(),
                   [](const auto& a, const auto& b) { return std::stoull(a.first) < std::stoull(b.first); });
  idx.insert(idx.end(), rest.begin(), rest.end());
  return idx;
}

Value FromJson(const nlohmann::ordered_json& j, int depth) {
  if (depth > 512) Fail("chat template context nested too deeply");
  switch (j.type()) {
    case nlohmann::json::value_t::null: return Value::Null();
    case nlohmann::json::value_t::boolean: return Value::Bool(j.get<bool>());
    case nlohmann::json::value_t::number_integer: return Value::Int(static_cast<double>(j.get<int64_t>()));
    case nlohmann::json::value_t::number_unsigned: return Value::Int(static_cast<double>(j.get<uint64_t>()));
    case nlohmann::json::value_t::number_float: {
      double d = j.get<double>();
      return std::isfinite(d) && std::floor(d) == d ? Value::Int(d) : Value::Float(d);
    }
    case nlohmann::json::value_t::string: return Value::Str(j.get<std::string>());
    case nlohmann::json::value_t::array: {
      std::vector<Value> items;
      for (const auto& x : j) items.push_back(FromJson(x, depth + 1));
      return Value::Array(std::move(items));
    }
    case nlohmann::json::value_t::object: {
      jinja::ObjectMap m;
      for (const auto& [k, v] : JsEntries(j)) m.Set(k, FromJson(*v, depth + 1));
      return Value::Object(std::move(m));
    }
    default: Fail("unsupported JSON value in chat template context");
  }
}

}  // namespace

ChatTemplate::ChatTemplate() = default;
ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;
ChatTemplate::~ChatTemplate() = default;

ChatTemplate ChatTemplate::Parse(std::string_view src) {
  ChatTemplate t;
  t.program_ = jinja::Parse(jinja::Tokenize(src));
  return t;
}

std::string ChatTemplate::Render(const nlohmann::ordered_json& context, const RenderLimits& limits,
                                 std::optional<int64_t> now_unix) const {
  jinja::Limits l{limits.max_steps, limits.max_depth, limits.max_output_bytes};
  jinja::Interpreter interp(l, now_unix);
  jinja::EnvPtr env = interp.MakeGlobals();
  if (!context.is_null()) {
    if (!context.is_object()) Fail("chat template context must be a JSON object");
    for (const auto& [k, v] : JsEntries(context)) {
      if (env->HasOwn(k)) Fail("Variable already declared: {}", k);
      env->Set(k, FromJson(*v, 0));
    }
  }
  return interp.Run(program_, env);
}

std::string ApplyChatTemplate(std::string_view template_src, const nlohmann::ordered_json& messages,
                              const nlohmann::ordered_json& tools, bool add_generation_prompt,
                              std::string_view bos_token, std::string_view eos_token,
                              const nlohmann::ordered_json& extra_context, const RenderLimits& limits) {
  nlohmann::ordered_json ctx = nlohmann::ordered_json::object();
  ctx["messages"] = messages;
  if (!tools.is_null()) ctx["tools"] = tools;
  ctx["add_generation_prompt"] = add_generation_prompt;
  ctx["bos_token"] = std::string(bos_token);
  ctx["eos_token"] = std::string(eos_token);
  if (extra_context.is_object()) {
    for (auto it = extra_context.begin(); it != extra_context.end(); ++it) ctx[it.key()] = it.value();
  } else if (!extra_context.is_null()) {
    Fail("extra chat template context must be a JSON object");
  }
  return ChatTemplate::Parse(template_src).Render(ctx, limits);
}

}  // namespace origami
