// Translation of Anthropic Messages requests into Chat Completions requests, and of the answers
// back. Only validation and field mapping live here; generation is the chat path's.
#include "server/anthropic_api.h"

#include <fmt/format.h>

namespace origami::server {

using nlohmann::json;
using ojson = nlohmann::ordered_json;

json AnthropicErrorBody(int status, const std::string& message) {
  const char* type = "api_error";
  if (status == 400 || status == 422)
    type = "invalid_request_error";
  else if (status == 401)
    type = "authentication_error";
  else if (status == 403)
    type = "permission_error";
  else if (status == 404)
    type = "not_found_error";
  else if (status == 413)
    type = "request_too_large";
  else if (status == 429)
    type = "rate_limit_error";
  else if (status == 503 || status == 529)
    type = "overloaded_error";
  return {{"type", "error"}, {"error", {{"type", type}, {"message", message}}}};
}

namespace {

[[noreturn]] void Bad(const std::string& param, const std::string& msg) {
  throw ApiError(400, fmt::format("{}: {}", param, msg), param);
}

// Claude Code puts "x-anthropic-billing-header: ...cch=<nonce>" first in its system prompt; the
// nonce changes every request and would defeat the prefix cache, so the line is dropped.
std::string DropBillingHeader(const std::string& text) {
  std::string out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    const size_t end = nl == std::string::npos ? text.size() : nl + 1;
    std::string_view line(text.data() + pos, end - pos);
    if (!line.starts_with("x-anthropic-billing-header:")) out.append(line);
    pos = end;
  }
  return out;
}

// Text of a string or an array of text blocks (system, tool_result content).
std::string TextOf(const json& c, const std::string& param) {
  if (c.is_string()) return c.get<std::string>();
  if (!c.is_array()) Bad(param, "must be a string or an array of text blocks");
  std::string out;
  for (size_t i = 0; i < c.size(); ++i) {
    const json& b = c[i];
    const std::string p = fmt::format("{}[{}]", param, i);
    if (!b.is_object() || !b.contains("type") || !b["type"].is_string())
      Bad(p, "each block must be an object with a string 'type'");
    const std::string t = b["type"].get<std::string>();
    if (t == "image" || t == "document")
      Bad(p, fmt::format("'{}' blocks are not supported: this model has no vision", t));
    if (t != "text") Bad(p, fmt::format("block type '{}' is not allowed here", t));
    if (!b.contains("text") || !b["text"].is_string()) Bad(p + ".text", "must be a string");
    if (!out.empty()) out += "\n";
    out += b["text"].get<std::string>();
  }
  return out;
}

// Appends the chat messages one Anthropic message becomes (tool_result blocks become "tool"
// messages). known_ids: tool_use ids seen so far in the history.
void TranslateMessage(const json& m, size_t i, ojson& out, std::vector<std::string>& known_ids,
                      bool keep_billing) {
  const std::string p = fmt::format("messages[{}]", i);
  if (!m.is_object()) Bad(p, "must be an object");
  if (!m.contains("role") || !m["role"].is_string()) Bad(p + ".role", "is required (a string)");
  const std::string role = m["role"].get<std::string>();
  if (role != "user" && role != "assistant" && role != "system")
    Bad(p + ".role", fmt::format("'{}' is not one of user, assistant, system", role));
  if (!m.contains("content")) Bad(p + ".content", "is required");
  const json& c = m["content"];
  if (role == "system") {
    std::string t = TextOf(c, p + ".content");
    out.push_back({{"role", "system"}, {"content", keep_billing ? t : DropBillingHeader(t)}});
    return;
  }
  if (c.is_string()) {
    out.push_back({{"role", role}, {"content", c.get<std::string>()}});
    return;
  }
  if (!c.is_array()) Bad(p + ".content", "must be a string or an array of content blocks");
  std::string text, thinking;
  ojson calls = ojson::array();
  for (size_t k = 0; k < c.size(); ++k) {
    const json& b = c[k];
    const std::string bp = fmt::format("{}.content[{}]", p, k);
    if (!b.is_object() || !b.contains("type") || !b["type"].is_string())
      Bad(bp, "each block must be an object with a string 'type'");
    const std::string t = b["type"].get<std::string>();
    if (t == "text") {
      if (!b.contains("text") || !b["text"].is_string()) Bad(bp + ".text", "must be a string");
      text += b["text"].get<std::string>();
    } else if (t == "image" || t == "document") {
      Bad(bp, fmt::format("'{}' blocks are not supported: this model has no vision", t));
    } else if (t == "thinking" || t == "redacted_thinking") {
      if (role != "assistant") Bad(bp, "thinking blocks belong to assistant messages");
      if (t == "thinking" && b.contains("thinking") && b["thinking"].is_string())
        thinking += b["thinking"].get<std::string>();
    } else if (t == "tool_use") {
      if (role != "assistant") Bad(bp, "tool_use blocks belong to assistant messages");
      if (!b.contains("id") || !b["id"].is_string() || b["id"].get<std::string>().empty())
        Bad(bp + ".id", "is required (a non-empty string)");
      if (!b.contains("name") || !b["name"].is_string()) Bad(bp + ".name", "is required");
      const json input = b.contains("input") ? b["input"] : json::object();
      if (!input.is_object()) Bad(bp + ".input", "must be an object");
      known_ids.push_back(b["id"].get<std::string>());
      calls.push_back({{"id", b["id"]},
                       {"type", "function"},
                       {"function", {{"name", b["name"]}, {"arguments", ojson::parse(input.dump())}}}});
    } else if (t == "tool_result") {
      if (role != "user") Bad(bp, "tool_result blocks belong to user messages");
      if (!b.contains("tool_use_id") || !b["tool_use_id"].is_string())
        Bad(bp + ".tool_use_id", "is required (a string)");
      const std::string id = b["tool_use_id"].get<std::string>();
      if (std::find(known_ids.begin(), known_ids.end(), id) == known_ids.end())
        Bad(bp + ".tool_use_id", fmt::format("no tool_use block with id '{}' precedes it", id));
      std::string res = b.contains("content") && !b["content"].is_null()
                            ? TextOf(b["content"], bp + ".content")
                            : std::string();
      if (b.contains("is_error") && !b["is_error"].is_null()) {
        if (!b["is_error"].is_boolean()) Bad(bp + ".is_error", "must be a boolean");
        if (b["is_error"].get<bool>()) res = "Error: " + res;
      }
      if (!text.empty()) {
        out.push_back({{"role", "user"}, {"content", text}});
        text.clear();
      }
      out.push_back({{"role", "tool"}, {"tool_call_id", id}, {"content", res}});
    } else {
      Bad(bp + ".type", fmt::format("unknown content block type '{}'", t));
    }
  }
  if (role == "assistant") {
    ojson a = {{"role", "assistant"}, {"content", text}};
    if (!calls.empty()) a["tool_calls"] = calls;
    if (!thinking.empty()) a["reasoning_content"] = thinking;
    out.push_back(std::move(a));
  } else if (!text.empty() || c.empty()) {
    out.push_back({{"role", "user"}, {"content", text}});
  }
}

void CopyNumber(const json& j, ojson& o, const char* name, double lo, double hi) {
  if (!j.contains(name) || j[name].is_null()) return;
  if (!j[name].is_number()) Bad(name, "must be a number");
  const double v = j[name].get<double>();
  if (!(v >= lo && v <= hi)) Bad(name, fmt::format("must be between {} and {}", lo, hi));
  o[name] = j[name];
}

}  // namespace

AnthropicTranslation TranslateAnthropicRequest(const std::string& body, bool count_only,
                                               bool keep_billing) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded()) throw ApiError(400, "the request body is not valid JSON");
  if (!j.is_object()) throw ApiError(400, "the request body must be a JSON object");
  ojson o = ojson::object();
  AnthropicTranslation t;
  if (j.contains("model")) {
    if (!j["model"].is_string()) Bad("model", "must be a string");
  } else {
    Bad("model", "is required");
  }
  // The served model answers whatever name an agent asks for (Claude Code sends claude-*).
  if (!count_only) {
    if (!j.contains("max_tokens")) Bad("max_tokens", "is required");
    const json& mt = j["max_tokens"];
    if (!mt.is_number_integer() || mt.get<int64_t>() < 1 || mt.get<int64_t>() > (1 << 30))
      Bad("max_tokens", "must be an integer between 1 and 2^30");
    o["max_tokens"] = mt;
  }
  ojson msgs = ojson::array();
  if (j.contains("system") && !j["system"].is_null()) {
    std::string s = TextOf(j["system"], "system");
    if (!keep_billing) s = DropBillingHeader(s);
    msgs.push_back({{"role", "system"}, {"content", s}});
  }
  if (!j.contains("messages") || !j["messages"].is_array()) Bad("messages", "is required (an array)");
  if (j["messages"].empty()) Bad("messages", "must hold at least one message");
  if (j["messages"].size() > 100000) Bad("messages", "too many messages");
  std::vector<std::string> ids;
  for (size_t i = 0; i < j["messages"].size(); ++i)
    TranslateMessage(j["messages"][i], i, msgs, ids, keep_billing);
  o["messages"] = msgs;
  CopyNumber(j, o, "temperature", 0, 1);
  CopyNumber(j, o, "top_p", 0, 1);
  if (j.contains("top_k") && !j["top_k"].is_null()) {
    if (!j["top_k"].is_number_integer() || j["top_k"].get<int64_t>() < 0 ||
        j["top_k"].get<int64_t>() > (1 << 20))
      Bad("top_k", "must be a non-negative integer");
    o["top_k"] = j["top_k"];
  }
  if (j.contains("stop_sequences") && !j["stop_sequences"].is_null()) {
    const json& ss = j["stop_sequences"];
    if (!ss.is_array() || ss.size() > 4) Bad("stop_sequences", "must be an array of at most 4 strings");
    for (const auto& s : ss)
      if (!s.is_string() || s.get<std::string>().empty())
        Bad("stop_sequences", "must hold non-empty strings");
    if (!ss.empty()) o["stop"] = ojson::parse(ss.dump());
  }
  if (j.contains("metadata") && !j["metadata"].is_null() && !j["metadata"].is_object())
    Bad("metadata", "must be an object");
  if (j.contains("stream") && !j["stream"].is_null()) {
    if (!j["stream"].is_boolean()) Bad("stream", "must be a boolean");
    t.stream = j["stream"].get<bool>();
  }
  bool have_tools = false;
  if (j.contains("tools") && !j["tools"].is_null()) {
    if (!j["tools"].is_array()) Bad("tools", "must be an array");
    ojson tools = ojson::array();
    for (size_t i = 0; i < j["tools"].size(); ++i) {
      const json& tl = j["tools"][i];
      const std::string p = fmt::format("tools[{}]", i);
      if (!tl.is_object() || !tl.contains("name") || !tl["name"].is_string() ||
          tl["name"].get<std::string>().empty())
        Bad(p + ".name", "is required (a non-empty string)");
      // Server tools (web_search_...) have a type and no schema: not ours to run, skipped.
      if (tl.contains("type") && tl["type"].is_string() && tl["type"] != "custom") continue;
      if (!tl.contains("input_schema") || !tl["input_schema"].is_object())
        Bad(p + ".input_schema", "is required (an object)");
      ojson f = {{"name", tl["name"]}, {"parameters", ojson::parse(tl["input_schema"].dump())}};
      if (tl.contains("description") && tl["description"].is_string())
        f["description"] = tl["description"];
      tools.push_back({{"type", "function"}, {"function", f}});
    }
    if (!tools.empty()) {
      o["tools"] = tools;
      have_tools = true;
    }
  }
  if (j.contains("tool_choice") && !j["tool_choice"].is_null()) {
    const json& tc = j["tool_choice"];
    if (!tc.is_object() || !tc.contains("type") || !tc["type"].is_string())
      Bad("tool_choice", "must be an object with a 'type'");
    const std::string ty = tc["type"].get<std::string>();
    if (ty == "auto") {
      o["tool_choice"] = "auto";
    } else if (ty == "none") {
      o["tool_choice"] = "none";
    } else if (ty == "any" || ty == "tool") {
      if (!have_tools) Bad("tool_choice", fmt::format("'{}' requires tools", ty));
      if (ty == "any") {
        o["tool_choice"] = "required";
      } else {
        if (!tc.contains("name") || !tc["name"].is_string()) Bad("tool_choice.name", "is required");
        o["tool_choice"] = {{"type", "function"}, {"function", {{"name", tc["name"]}}}};
      }
    } else {
      Bad("tool_choice.type", fmt::format("'{}' is not one of auto, any, tool, none", ty));
    }
    if (tc.contains("disable_parallel_tool_use") && !tc["disable_parallel_tool_use"].is_null()) {
      if (!tc["disable_parallel_tool_use"].is_boolean())
        Bad("tool_choice.disable_parallel_tool_use", "must be a boolean");
      if (have_tools) o["parallel_tool_calls"] = !tc["disable_parallel_tool_use"].get<bool>();
    }
  }
  if (j.contains("thinking") && !j["thinking"].is_null()) {
    const json& th = j["thinking"];
    if (!th.is_object() || !th.contains("type") || !th["type"].is_string())
      Bad("thinking", "must be an object with a 'type'");
    const std::string ty = th["type"].get<std::string>();
    if (ty != "enabled" && ty != "disabled" && ty != "adaptive")
      Bad("thinking.type", "must be enabled, disabled or adaptive");
    if (th.contains("budget_tokens") && !th["budget_tokens"].is_null() &&
        (!th["budget_tokens"].is_number_integer() || th["budget_tokens"].get<int64_t>() < 0))
      Bad("thinking.budget_tokens", "must be a non-negative integer");
    o["chat_template_kwargs"] = {{"enable_thinking", ty != "disabled"}};
  }
  if (count_only) o["max_tokens"] = 1;
  t.chat_body = o.dump();
  return t;
}

json AnthropicContent(const json& msg) {
  json blocks = json::array();
  if (msg.contains("reasoning_content") && msg["reasoning_content"].is_string() &&
      !msg["reasoning_content"].get<std::string>().empty())
    blocks.push_back({{"type", "thinking"}, {"thinking", msg["reasoning_content"]}, {"signature", ""}});
  if (msg.contains("content") && msg["content"].is_string() &&
      !msg["content"].get<std::string>().empty())
    blocks.push_back({{"type", "text"}, {"text", msg["content"]}});
  if (msg.contains("tool_calls") && msg["tool_calls"].is_array()) {
    for (const auto& c : msg["tool_calls"]) {
      json input = json::object();
      const json& f = c.value("function", json::object());
      if (f.contains("arguments") && f["arguments"].is_string()) {
        json parsed = json::parse(f["arguments"].get<std::string>(), nullptr, false);
        if (parsed.is_object()) input = parsed;
      } else if (f.contains("arguments") && f["arguments"].is_object()) {
        input = f["arguments"];
      }
      blocks.push_back({{"type", "tool_use"},
                        {"id", c.value("id", std::string("toolu_0"))},
                        {"name", f.value("name", std::string())},
                        {"input", input}});
    }
  }
  if (blocks.empty()) blocks.push_back({{"type", "text"}, {"text", ""}});
  return blocks;
}

const char* AnthropicStopReason(const std::string& fr) {
  if (fr == "length") return "max_tokens";
  if (fr == "tool_calls") return "tool_use";
  return "end_turn";
}

}  // namespace origami::server
