// Request parsing and validation for /v1/chat/completions and /v1/completions.
#include "server/api.h"

#include <fmt/format.h>
#include <httplib.h>

#include <cmath>
#include <limits>

namespace origami::server {

using nlohmann::json;

nlohmann::json ErrorBody(int status, const std::string& message, const std::string& param,
                         const std::string& code, const std::string& type) {
  std::string t = type;
  if (t.empty()) {
    if (status == 401)
      t = "authentication_error";
    else if (status == 404)
      t = "not_found_error";
    else if (status == 429 || status == 503)
      t = "server_error";
    else if (status >= 500)
      t = "server_error";
    else
      t = "invalid_request_error";
  }
  json e = {{"message", message}, {"type", t}, {"param", nullptr}, {"code", nullptr}};
  if (!param.empty()) e["param"] = param;
  if (!code.empty()) e["code"] = code;
  return json{{"error", e}};
}

nlohmann::json ApiError::Body() const { return ErrorBody(status, what(), param, code, type); }

void SetRetryAfter(httplib::Response& res, int seconds) {
  res.set_header("Retry-After", std::to_string(std::max(1, seconds)));
}

namespace {

[[noreturn]] void Bad(const std::string& param, const std::string& msg,
                      const std::string& code = "invalid_value") {
  throw ApiError(400, msg, param, code);
}

// A present, non-null field.
const json* Field(const json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

double Number(const json& body, const char* name, double lo, double hi, double def) {
  const json* f = Field(body, name);
  if (!f) return def;
  if (!f->is_number()) Bad(name, fmt::format("'{}' must be a number", name), "invalid_type");
  const double v = f->get<double>();
  if (!std::isfinite(v) || v < lo || v > hi)
    Bad(name, fmt::format("'{}' must be between {} and {}, got {}", name, lo, hi, v));
  return v;
}

std::optional<int64_t> Integer(const json& body, const char* name, int64_t lo, int64_t hi) {
  const json* f = Field(body, name);
  if (!f) return std::nullopt;
  int64_t v;
  if (f->is_number_integer()) {
    v = f->is_number_unsigned() &&
                f->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
            ? std::numeric_limits<int64_t>::max()
            : f->get<int64_t>();
  } else if (f->is_number_float() && std::floor(f->get<double>()) == f->get<double>() &&
             std::abs(f->get<double>()) < 9e15) {
    v = static_cast<int64_t>(f->get<double>());
  } else {
    Bad(name, fmt::format("'{}' must be an integer", name), "invalid_type");
  }
  if (v < lo || v > hi)
    Bad(name, fmt::format("'{}' must be between {} and {}, got {}", name, lo, hi, v));
  return v;
}

bool Bool(const json& body, const char* name, bool def) {
  const json* f = Field(body, name);
  if (!f) return def;
  if (!f->is_boolean()) Bad(name, fmt::format("'{}' must be a boolean", name), "invalid_type");
  return f->get<bool>();
}

// Chat content: a string, or an array of {"type":"text","text":...} parts (joined).
std::string ContentText(const json& c, const std::string& param) {
  if (c.is_string()) return c.get<std::string>();
  if (!c.is_array())
    Bad(param, "'content' must be a string or an array of content parts", "invalid_type");
  std::string out;
  for (const auto& part : c) {
    if (!part.is_object() || !part.contains("type") || !part["type"].is_string())
      Bad(param, "each content part must be an object with a 'type'", "invalid_type");
    const std::string type = part["type"].get<std::string>();
    if (type == "text" || type == "input_text") {
      if (!part.contains("text") || !part["text"].is_string())
        Bad(param, "a text content part needs a 'text' string");
      out += part["text"].get<std::string>();
    } else {
      Bad(param, fmt::format("content parts of type '{}' are not supported by this model", type),
          "unsupported_value");
    }
  }
  return out;
}

nlohmann::ordered_json ParseMessages(const json& body) {
  const json* m = Field(body, "messages");
  if (!m) Bad("messages", "'messages' is required", "missing_required_parameter");
  if (!m->is_array()) Bad("messages", "'messages' must be an array", "invalid_type");
  if (m->empty()) Bad("messages", "'messages' must contain at least one message");
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (size_t i = 0; i < m->size(); ++i) {
    const json& msg = (*m)[i];
    const std::string p = fmt::format("messages[{}]", i);
    if (!msg.is_object()) Bad(p, fmt::format("'{}' must be an object", p), "invalid_type");
    if (!msg.contains("role") || !msg["role"].is_string())
      Bad(p + ".role", fmt::format("'{}.role' is required", p));
    const std::string role = msg["role"].get<std::string>();
    if (role != "system" && role != "user" && role != "assistant" && role != "tool" &&
        role != "developer" && role != "function")
      Bad(p + ".role", fmt::format("'{}' is not a valid role", role));
    nlohmann::ordered_json o = {{"role", role == "developer" ? "system" : role}};
    const bool has_calls = msg.contains("tool_calls") && !msg["tool_calls"].is_null();
    if (!msg.contains("content") || msg["content"].is_null()) {
      if (role != "assistant" || !has_calls)
        Bad(p + ".content", fmt::format("'{}.content' is required", p));
      o["content"] = "";
    } else {
      o["content"] = ContentText(msg["content"], p + ".content");
    }
    if (has_calls) {
      if (!msg["tool_calls"].is_array())
        Bad(p + ".tool_calls", "'tool_calls' must be an array", "invalid_type");
      nlohmann::ordered_json calls = nlohmann::ordered_json::array();
      for (const auto& c : msg["tool_calls"]) {
        nlohmann::ordered_json call = c;
        // Templates expect arguments as an object; OpenAI sends a JSON string.
        if (c.is_object() && c.contains("function") && c["function"].is_object() &&
            c["function"].contains("arguments") && c["function"]["arguments"].is_string()) {
          auto parsed = nlohmann::ordered_json::parse(c["function"]["arguments"].get<std::string>(),
                                                      nullptr, false);
          if (!parsed.is_discarded()) call["function"]["arguments"] = parsed;
        }
        calls.push_back(call);
      }
      o["tool_calls"] = calls;
    }
    for (const char* k : {"name", "tool_call_id"})
      if (msg.contains(k) && msg[k].is_string()) o[k] = msg[k];
    out.push_back(std::move(o));
  }
  return out;
}

void ParsePrompt(const json& body, ApiRequest& r) {
  const json* p = Field(body, "prompt");
  if (!p) Bad("prompt", "'prompt' is required", "missing_required_parameter");
  auto ids = [&](const json& a) {
    std::vector<int32_t> v;
    for (const auto& t : a) {
      if (!t.is_number_integer() || t.get<int64_t>() < 0 ||
          t.get<int64_t>() > std::numeric_limits<int32_t>::max())
        Bad("prompt", "token ids in 'prompt' must be non-negative integers", "invalid_type");
      v.push_back(static_cast<int32_t>(t.get<int64_t>()));
    }
    if (v.empty()) Bad("prompt", "a token-id prompt must not be empty");
    return v;
  };
  if (p->is_string()) {
    r.prompts.push_back(p->get<std::string>());
  } else if (p->is_array()) {
    if (p->empty()) Bad("prompt", "'prompt' must not be an empty array");
    if ((*p)[0].is_number()) {
      r.prompt_ids.push_back(ids(*p));
    } else {
      for (const auto& e : *p) {
        if (e.is_string())
          r.prompts.push_back(e.get<std::string>());
        else if (e.is_array())
          r.prompt_ids.push_back(ids(e));
        else
          Bad("prompt", "'prompt' must be a string, an array of strings or an array of token ids",
              "invalid_type");
      }
      if (!r.prompts.empty() && !r.prompt_ids.empty())
        Bad("prompt", "'prompt' mixes strings and token arrays");
    }
  } else {
    Bad("prompt", "'prompt' must be a string, an array of strings or an array of token ids",
        "invalid_type");
  }
  if (r.prompts.size() + r.prompt_ids.size() > 16) Bad("prompt", "at most 16 prompts per request");
}

}  // namespace

ApiRequest ParseRequest(const std::string& body, Endpoint endpoint, int max_n) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded())
    throw ApiError(400, "the request body is not valid JSON", "", "invalid_json");
  if (!j.is_object())
    throw ApiError(400, "the request body must be a JSON object", "", "invalid_type");
  ApiRequest r;
  r.endpoint = endpoint;
  if (const json* m = Field(j, "model")) {
    if (!m->is_string()) Bad("model", "'model' must be a string", "invalid_type");
    r.model = m->get<std::string>();
  }
  if (endpoint == Endpoint::kChat)
    r.messages = ParseMessages(j);
  else
    ParsePrompt(j, r);

  // Sampling, with OpenAI's defaults (temperature 1, top_p 1, no truncation) unless extended.
  SamplerParams& s = r.sampling;
  s.temperature = static_cast<float>(Number(j, "temperature", 0, 2, 1.0));
  s.top_p = static_cast<float>(Number(j, "top_p", 0, 1, 1.0));
  s.top_k = static_cast<int>(Integer(j, "top_k", 0, 1 << 20).value_or(0));
  s.min_p = static_cast<float>(Number(j, "min_p", 0, 1, 0.0));
  s.repeat_penalty = static_cast<float>(Number(j, "repeat_penalty", 0.01, 10, 1.0));
  s.repeat_last_n = static_cast<int>(Integer(j, "repeat_last_n", -1, 1 << 20).value_or(64));
  s.presence_penalty = static_cast<float>(Number(j, "presence_penalty", -2, 2, 0.0));
  s.frequency_penalty = static_cast<float>(Number(j, "frequency_penalty", -2, 2, 0.0));
  if (auto seed = Integer(j, "seed", std::numeric_limits<int64_t>::min(),
                          std::numeric_limits<int64_t>::max())) {
    s.seed = static_cast<uint64_t>(*seed);
    r.seed_given = true;
  }

  auto mt = Integer(j, "max_completion_tokens", 1, 1 << 30);
  if (!mt) mt = Integer(j, "max_tokens", 1, 1 << 30);
  if (mt) r.max_tokens = static_cast<int>(*mt);
  r.n = static_cast<int>(Integer(j, "n", 1, max_n).value_or(1));

  if (const json* st = Field(j, "stop")) {
    if (st->is_string()) {
      r.stop.push_back(st->get<std::string>());
    } else if (st->is_array()) {
      if (st->size() > 4)
        Bad("stop", fmt::format("'stop' may hold at most 4 sequences, got {}", st->size()));
      for (const auto& e : *st) {
        if (!e.is_string())
          Bad("stop", "'stop' must be a string or an array of strings", "invalid_type");
        r.stop.push_back(e.get<std::string>());
      }
    } else {
      Bad("stop", "'stop' must be a string or an array of strings", "invalid_type");
    }
    for (const auto& x : r.stop)
      if (x.empty()) Bad("stop", "stop sequences must not be empty");
  }

  if (const json* lb = Field(j, "logit_bias")) {
    if (!lb->is_object())
      Bad("logit_bias", "'logit_bias' must be an object of token id to bias", "invalid_type");
    if (lb->size() > 1024) Bad("logit_bias", "'logit_bias' may hold at most 1024 entries");
    for (const auto& [k, v] : lb->items()) {
      size_t used = 0;
      long long id = -1;
      try {
        id = std::stoll(k, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != k.size() || k.empty() || id < 0 || id > std::numeric_limits<int32_t>::max())
        Bad("logit_bias", fmt::format("logit_bias key '{}' is not a token id", k));
      if (!v.is_number() || v.get<double>() < -100 || v.get<double>() > 100)
        Bad("logit_bias",
            fmt::format("logit_bias for token {} must be a number between -100 and 100", k));
      r.logit_bias.emplace_back(static_cast<int32_t>(id), v.get<float>());
    }
  }

  if (endpoint == Endpoint::kChat) {
    r.logprobs = Bool(j, "logprobs", false);
    if (auto tl = Integer(j, "top_logprobs", 0, 20)) {
      if (!r.logprobs) Bad("top_logprobs", "'top_logprobs' requires 'logprobs' to be true");
      r.top_logprobs = static_cast<int>(*tl);
    }
  } else {
    if (auto lp = Integer(j, "logprobs", 0, 5)) {
      r.logprobs = true;
      r.top_logprobs = static_cast<int>(*lp);
    }
    r.echo = Bool(j, "echo", false);
  }

  r.ignore_eos = Bool(j, "ignore_eos", false);
  r.stream = Bool(j, "stream", false);
  if (const json* so = Field(j, "stream_options")) {
    if (!so->is_object())
      Bad("stream_options", "'stream_options' must be an object", "invalid_type");
    if (!r.stream) Bad("stream_options", "'stream_options' is only allowed when 'stream' is true");
    r.include_usage = Bool(*so, "include_usage", false);
  }

  if (endpoint == Endpoint::kChat) {
    if (const json* t = Field(j, "tools")) {
      if (!t->is_array()) Bad("tools", "'tools' must be an array", "invalid_type");
      for (size_t i = 0; i < t->size(); ++i) {
        const json& tool = (*t)[i];
        if (!tool.is_object() || tool.value("type", "") != "function" ||
            !tool.contains("function") || !tool["function"].is_object() ||
            !tool["function"].contains("name") || !tool["function"]["name"].is_string())
          Bad(fmt::format("tools[{}]", i),
              "each tool must be {\"type\":\"function\",\"function\":{\"name\":...}}");
      }
      r.tools = nlohmann::ordered_json::parse(t->dump());
    }
    if (const json* tc = Field(j, "tool_choice")) {
      if (tc->is_string()) {
        r.tool_choice = tc->get<std::string>();
        if (r.tool_choice != "auto" && r.tool_choice != "none" && r.tool_choice != "required")
          Bad("tool_choice",
              "'tool_choice' must be 'auto', 'none', 'required' or a named function");
      } else if (tc->is_object() && tc->contains("function") && (*tc)["function"].is_object() &&
                 (*tc)["function"].contains("name") && (*tc)["function"]["name"].is_string()) {
        r.tool_choice = "function";
      } else {
        Bad("tool_choice", "'tool_choice' must be 'auto', 'none', 'required' or a named function",
            "invalid_type");
      }
      if (r.tool_choice != "none" && r.tool_choice != "auto" && r.tools.is_null())
        Bad("tool_choice", "'tool_choice' requires 'tools'");
    }
    if (const json* p = Field(j, "parallel_tool_calls")) {
      if (!p->is_boolean())
        Bad("parallel_tool_calls", "'parallel_tool_calls' must be a boolean", "invalid_type");
      r.parallel_tool_calls = p->get<bool>();
    }
    if (const json* rf = Field(j, "response_format")) {
      if (!rf->is_object() || !rf->contains("type") || !(*rf)["type"].is_string())
        Bad("response_format", "'response_format' must be an object with a 'type'", "invalid_type");
      const std::string t = (*rf)["type"].get<std::string>();
      if (t != "text" && t != "json_object" && t != "json_schema")
        Bad("response_format",
            fmt::format("response_format type '{}' is not one of text, json_object, json_schema",
                        t));
      if (t == "json_schema" && (!rf->contains("json_schema") || !(*rf)["json_schema"].is_object()))
        Bad("response_format", "response_format of type json_schema needs a 'json_schema' object");
    }
    if (const json* kw = Field(j, "chat_template_kwargs")) {
      if (!kw->is_object())
        Bad("chat_template_kwargs", "'chat_template_kwargs' must be an object", "invalid_type");
      r.template_kwargs = nlohmann::ordered_json::parse(kw->dump());
    }
  }
  r.raw = std::move(j);
  return r;
}

}  // namespace origami::server
