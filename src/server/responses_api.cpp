// Translation of OpenAI Responses requests into Chat Completions requests: input items become
// chat messages, tools and text.format become the chat path's tools and response_format. Only
// validation and field mapping live here; generation is the chat path's.
#include "server/responses_api.h"

#include <fmt/format.h>

#include <algorithm>

namespace origami::server {

using nlohmann::json;
using ojson = nlohmann::ordered_json;

namespace {

[[noreturn]] void Bad(const std::string& param, const std::string& msg,
                      const std::string& code = "invalid_value") {
  throw ApiError(400, fmt::format("{}: {}", param, msg), param, code);
}

const json* Field(const json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string RequiredString(const json& j, const char* name, const std::string& param) {
  const json* f = Field(j, name);
  if (!f || !f->is_string())
    Bad(param + "." + name, "is required (a string)", "missing_required_parameter");
  return f->get<std::string>();
}

// The text of a message's content: a string or an array of text parts.
std::string ContentText(const json& c, const std::string& param) {
  if (c.is_string()) return c.get<std::string>();
  if (!c.is_array()) Bad(param, "must be a string or an array of content parts", "invalid_type");
  std::string out;
  for (size_t i = 0; i < c.size(); ++i) {
    const json& p = c[i];
    const std::string pp = fmt::format("{}[{}]", param, i);
    if (!p.is_object() || !p.contains("type") || !p["type"].is_string())
      Bad(pp, "each part must be an object with a string 'type'", "invalid_type");
    const std::string t = p["type"].get<std::string>();
    if (t == "input_image" || t == "input_file" || t == "input_audio")
      Bad(pp, fmt::format("'{}' parts are not supported: this model reads text only", t),
          "unsupported_value");
    const char* key = t == "refusal" ? "refusal" : "text";
    if (t != "input_text" && t != "output_text" && t != "text" && t != "refusal" &&
        t != "summary_text" && t != "reasoning_text")
      Bad(pp + ".type", fmt::format("unknown content part type '{}'", t));
    if (!p.contains(key) || !p[key].is_string()) Bad(pp + "." + key, "must be a string");
    out += p[key].get<std::string>();
  }
  return out;
}

// Turns input items into chat messages. A function_call joins the assistant message just before
// it (text then calls, as a chat assistant turn holds them); reasoning items are carried into the
// next assistant message's reasoning_content. known_calls: call ids seen so far.
class ItemTranslator {
 public:
  explicit ItemTranslator(ojson& msgs) : msgs_(msgs) {}

  void Add(const json& item, const std::string& p) {
    if (!item.is_object()) Bad(p, "must be an object", "invalid_type");
    std::string type = "message";  // EasyInputMessage: {role, content} without a type
    if (const json* t = Field(item, "type")) {
      if (!t->is_string()) Bad(p + ".type", "must be a string", "invalid_type");
      type = t->get<std::string>();
    }
    if (type == "message")
      Message(item, p);
    else if (type == "function_call")
      FunctionCall(item, p);
    else if (type == "function_call_output")
      FunctionCallOutput(item, p);
    else if (type == "reasoning")
      Reasoning(item, p);
    else if (type == "custom_tool_call")
      CustomToolCall(item, p);
    else if (type == "custom_tool_call_output")
      FunctionCallOutput(item, p);
    else if (IsHostedToolItem(type))
      return;  // a hosted tool's call or result (web_search_call, ...): nothing here ran it
    else if (type == "item_reference")
      Bad(p, "item_reference is not supported; send the item itself or use previous_response_id",
          "unsupported_value");
    else
      Bad(p + ".type", fmt::format("unknown input item type '{}'", type));
  }

 private:
  void Message(const json& item, const std::string& p) {
    const std::string role = RequiredString(item, "role", p);
    if (role != "user" && role != "assistant" && role != "system" && role != "developer")
      Bad(p + ".role", fmt::format("'{}' is not one of user, assistant, system, developer", role));
    const json* c = Field(item, "content");
    if (!c) Bad(p + ".content", "is required", "missing_required_parameter");
    std::string text = ContentText(*c, p + ".content");
    if (role == "assistant") {
      ojson m = {{"role", "assistant"}, {"content", text}};
      TakeReasoning(m);
      msgs_.push_back(std::move(m));
      last_assistant_ = true;
      return;
    }
    last_assistant_ = false;
    const bool system = role == "system" || role == "developer";
    // instructions then developer items (as Codex sends them) make one system message: many
    // templates accept a system message only at the start, and only one.
    if (system && !msgs_.empty() && msgs_.back()["role"] == "system") {
      msgs_.back()["content"] = msgs_.back()["content"].get<std::string>() + "\n\n" + text;
      return;
    }
    msgs_.push_back({{"role", system ? "system" : role}, {"content", text}});
  }

  void FunctionCall(const json& item, const std::string& p) {
    const std::string call_id = RequiredString(item, "call_id", p);
    if (call_id.empty()) Bad(p + ".call_id", "must not be empty");
    const std::string name = RequiredString(item, "name", p);
    const std::string args = RequiredString(item, "arguments", p);
    // Templates expect arguments as an object; a string that is not JSON is passed as it is.
    ojson parsed = ojson::parse(args, nullptr, false);
    ojson call = {{"id", call_id},
                  {"type", "function"},
                  {"function",
                   {{"name", name}, {"arguments", parsed.is_discarded() ? ojson(args) : parsed}}}};
    if (!last_assistant_) {
      ojson m = {{"role", "assistant"}, {"content", ""}};
      TakeReasoning(m);
      msgs_.push_back(std::move(m));
      last_assistant_ = true;
    }
    ojson& m = msgs_.back();
    if (!m.contains("tool_calls")) m["tool_calls"] = ojson::array();
    m["tool_calls"].push_back(std::move(call));
    known_calls_.push_back(call_id);
  }

  // A freeform tool call (Codex's apply_patch) from a history made elsewhere: its input text
  // becomes the call's arguments.
  void CustomToolCall(const json& item, const std::string& p) {
    json f = {{"type", "function_call"},
              {"call_id", RequiredString(item, "call_id", p)},
              {"name", RequiredString(item, "name", p)},
              {"arguments", RequiredString(item, "input", p)}};
    FunctionCall(f, p);
  }

  static bool IsHostedToolItem(const std::string& type) {
    static const char* kHosted[] = {
        "web_search_call",       "file_search_call",        "image_generation_call",
        "code_interpreter_call", "computer_call",           "computer_call_output",
        "local_shell_call",      "local_shell_call_output", "mcp_list_tools",
        "mcp_approval_request",  "mcp_approval_response",   "mcp_call"};
    return std::any_of(std::begin(kHosted), std::end(kHosted),
                       [&](const char* k) { return type == k; });
  }

  void FunctionCallOutput(const json& item, const std::string& p) {
    const std::string call_id = RequiredString(item, "call_id", p);
    if (std::find(known_calls_.begin(), known_calls_.end(), call_id) == known_calls_.end())
      Bad(p + ".call_id", fmt::format("no function_call with call_id '{}' precedes it", call_id));
    const json* o = Field(item, "output");
    if (!o) Bad(p + ".output", "is required", "missing_required_parameter");
    msgs_.push_back(
        {{"role", "tool"}, {"tool_call_id", call_id}, {"content", ContentText(*o, p + ".output")}});
    last_assistant_ = false;
  }

  void Reasoning(const json& item, const std::string& p) {
    std::string text;
    // The full reasoning (content) when the client kept it, else its summary.
    if (const json* c = Field(item, "content"); c && c->is_array() && !c->empty())
      text = ContentText(*c, p + ".content");
    else if (const json* s = Field(item, "summary"))
      text = ContentText(*s, p + ".summary");
    pending_reasoning_ += text;
  }

  void TakeReasoning(ojson& m) {
    if (!pending_reasoning_.empty()) m["reasoning_content"] = pending_reasoning_;
    pending_reasoning_.clear();
  }

  ojson& msgs_;
  std::vector<std::string> known_calls_;
  std::string pending_reasoning_;
  bool last_assistant_ = false;
};

// Normalises `input` into items: a string is one user message.
json InputItems(const json& j) {
  const json* in = Field(j, "input");
  if (!in) Bad("input", "is required", "missing_required_parameter");
  if (in->is_string())
    return json::array({{{"type", "message"}, {"role", "user"}, {"content", *in}}});
  if (!in->is_array()) Bad("input", "must be a string or an array of items", "invalid_type");
  if (in->size() > 100000) Bad("input", "too many items");
  return *in;
}

void CopyNumber(const json& j, ojson& o, json& echo, const char* name, double lo, double hi) {
  const json* f = Field(j, name);
  if (!f) return;
  if (!f->is_number()) Bad(name, "must be a number", "invalid_type");
  const double v = f->get<double>();
  if (!(v >= lo && v <= hi)) Bad(name, fmt::format("must be between {} and {}", lo, hi));
  o[name] = *f;
  echo[name] = *f;
}

// Function tools become chat tools; hosted tools (web_search, file_search, ...) cannot run here
// and are skipped, so a client that offers them still gets its turn. Returns the function names.
std::vector<std::string> Tools(const json& j, ojson& o, json& echo) {
  std::vector<std::string> names;
  const json* ts = Field(j, "tools");
  if (!ts) return names;
  if (!ts->is_array()) Bad("tools", "must be an array", "invalid_type");
  ojson tools = ojson::array();
  json ignored = json::array();
  for (size_t i = 0; i < ts->size(); ++i) {
    const json& t = (*ts)[i];
    const std::string p = fmt::format("tools[{}]", i);
    if (!t.is_object()) Bad(p, "must be an object", "invalid_type");
    const std::string type = RequiredString(t, "type", p);
    if (type != "function") {
      ignored.push_back(type);
      continue;
    }
    const std::string name = RequiredString(t, "name", p);
    if (name.empty() || name.size() > 128) Bad(p + ".name", "must be 1 to 128 characters");
    ojson f = {{"name", name}};
    if (const json* d = Field(t, "description")) {
      if (!d->is_string()) Bad(p + ".description", "must be a string", "invalid_type");
      f["description"] = *d;
    }
    ojson params = {{"type", "object"}, {"properties", ojson::object()}};
    if (const json* ps = Field(t, "parameters")) {
      if (!ps->is_object()) Bad(p + ".parameters", "must be a JSON schema object", "invalid_type");
      params = ojson::parse(ps->dump());
    }
    f["parameters"] = params;
    if (const json* s = Field(t, "strict"); s && !s->is_boolean())
      Bad(p + ".strict", "must be a boolean", "invalid_type");
    tools.push_back({{"type", "function"}, {"function", f}});
    names.push_back(name);
  }
  echo["tools"] = *ts;
  if (!ignored.empty()) echo["ignored_tools"] = ignored;  // a note: these did not run
  if (!tools.empty()) o["tools"] = tools;
  return names;
}

void ToolChoice(const json& j, ojson& o, json& echo, const std::vector<std::string>& names,
                bool any_tools) {
  const json* tc = Field(j, "tool_choice");
  if (!tc) return;
  echo["tool_choice"] = *tc;
  if (tc->is_string()) {
    const std::string v = tc->get<std::string>();
    if (v != "auto" && v != "none" && v != "required")
      Bad("tool_choice", fmt::format("'{}' is not one of auto, none, required", v));
    if (v == "required" && !any_tools) Bad("tool_choice", "'required' needs tools");
    // Only hosted tools were offered: nothing here can be called, so the model answers in text.
    o["tool_choice"] = v == "required" && names.empty() ? "auto" : v;
    return;
  }
  if (!tc->is_object()) Bad("tool_choice", "must be a string or an object", "invalid_type");
  const std::string type = RequiredString(*tc, "type", "tool_choice");
  if (type == "function") {
    const std::string name = RequiredString(*tc, "name", "tool_choice");
    if (std::find(names.begin(), names.end(), name) == names.end())
      Bad("tool_choice.name", fmt::format("no function tool named '{}' is in tools", name));
    o["tool_choice"] = {{"type", "function"}, {"function", {{"name", name}}}};
  } else if (type == "allowed_tools") {
    const json* mode = Field(*tc, "mode");
    o["tool_choice"] =
        mode && mode->is_string() && *mode == "required" && !names.empty() ? "required" : "auto";
  } else {
    o["tool_choice"] = "auto";  // a hosted tool (web_search_preview, ...): not run here
  }
}

// text.format: text, json_object, or json_schema (the chat path's response_format grammar).
void TextFormat(const json& j, ojson& o, json& echo) {
  const json* t = Field(j, "text");
  if (!t) return;
  if (!t->is_object()) Bad("text", "must be an object", "invalid_type");
  echo["text"] = *t;
  const json* f = Field(*t, "format");
  if (!f) return;
  if (!f->is_object()) Bad("text.format", "must be an object", "invalid_type");
  const std::string type = RequiredString(*f, "type", "text.format");
  if (type == "text") return;
  if (type == "json_object") {
    o["response_format"] = {{"type", "json_object"}};
    return;
  }
  if (type != "json_schema")
    Bad("text.format.type", fmt::format("'{}' is not one of text, json_object, json_schema", type));
  const std::string name = RequiredString(*f, "name", "text.format");
  const json* s = Field(*f, "schema");
  if (!s || !s->is_object())
    Bad("text.format.schema", "is required (a JSON schema object)", "missing_required_parameter");
  ojson js = {{"name", name}, {"schema", ojson::parse(s->dump())}};
  if (const json* st = Field(*f, "strict")) {
    if (!st->is_boolean()) Bad("text.format.strict", "must be a boolean", "invalid_type");
    js["strict"] = *st;
  }
  o["response_format"] = {{"type", "json_schema"}, {"json_schema", js}};
}

// reasoning.effort reaches templates that can switch thinking (Qwen3's enable_thinking).
void Reasoning(const json& j, ojson& o, json& echo) {
  const json* r = Field(j, "reasoning");
  if (!r) return;
  if (!r->is_object()) Bad("reasoning", "must be an object", "invalid_type");
  json e = {{"effort", nullptr}, {"summary", nullptr}};
  if (const json* eff = Field(*r, "effort")) {
    static const char* kEfforts[] = {"none", "minimal", "low", "medium", "high", "xhigh"};
    if (!eff->is_string() || std::none_of(std::begin(kEfforts), std::end(kEfforts),
                                          [&](const char* k) { return *eff == k; }))
      Bad("reasoning.effort", "must be one of none, minimal, low, medium, high, xhigh");
    e["effort"] = *eff;
    o["chat_template_kwargs"] = {{"enable_thinking", *eff != "none" && *eff != "minimal"}};
  }
  if (const json* s = Field(*r, "summary")) {
    if (!s->is_string()) Bad("reasoning.summary", "must be a string", "invalid_type");
    e["summary"] = *s;
  }
  echo["reasoning"] = e;
}

void Metadata(const json& j, json& echo) {
  const json* m = Field(j, "metadata");
  if (!m) return;
  if (!m->is_object()) Bad("metadata", "must be an object of strings", "invalid_type");
  if (m->size() > 16) Bad("metadata", "may hold at most 16 keys");
  for (const auto& [k, v] : m->items()) {
    if (k.size() > 64) Bad("metadata", "keys may be at most 64 characters");
    if (!v.is_string() || v.get<std::string>().size() > 512)
      Bad("metadata", "values must be strings of at most 512 characters");
  }
  echo["metadata"] = *m;
}

bool Bool(const json& j, const char* name, bool def) {
  const json* f = Field(j, name);
  if (!f) return def;
  if (!f->is_boolean()) Bad(name, "must be a boolean", "invalid_type");
  return f->get<bool>();
}

}  // namespace

ResponsesTranslation TranslateResponsesRequest(const std::string& body,
                                               const ResponseHistory& history) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded())
    throw ApiError(400, "the request body is not valid JSON", "", "invalid_json");
  if (!j.is_object())
    throw ApiError(400, "the request body must be a JSON object", "", "invalid_type");
  ResponsesTranslation t;
  ojson o = ojson::object();
  json& echo = t.echo;
  echo = {{"instructions", nullptr},
          {"max_output_tokens", nullptr},
          {"metadata", json::object()},
          {"parallel_tool_calls", true},
          {"previous_response_id", nullptr},
          {"reasoning", {{"effort", nullptr}, {"summary", nullptr}}},
          {"temperature", 1.0},
          {"text", {{"format", {{"type", "text"}}}}},
          {"tool_choice", "auto"},
          {"tools", json::array()},
          {"top_p", 1.0},
          {"truncation", "disabled"},
          {"user", nullptr}};
  // The served model answers whatever name an agent asks for (Codex and the Agents SDK send
  // their own defaults, gpt-*), as /v1/messages does; the response names the served model.
  if (const json* m = Field(j, "model"))
    if (!m->is_string()) Bad("model", "must be a string", "invalid_type");
  t.stream = Bool(j, "stream", false);
  t.store = Bool(j, "store", true);
  echo["store"] = t.store;
  if (Bool(j, "background", false))
    Bad("background", "background responses are not supported", "unsupported_value");
  if (const json* tr = Field(j, "truncation")) {
    if (!tr->is_string() || (*tr != "auto" && *tr != "disabled"))
      Bad("truncation", "must be auto or disabled");
    echo["truncation"] = *tr;
  }
  if (const json* u = Field(j, "user")) {
    if (!u->is_string()) Bad("user", "must be a string", "invalid_type");
    echo["user"] = *u;
  }
  Metadata(j, echo);

  // The conversation: the previous response's items, then this input.
  json items = json::array();
  if (const json* prev = Field(j, "previous_response_id")) {
    if (!prev->is_string() || prev->get<std::string>().empty())
      Bad("previous_response_id", "must be a non-empty string", "invalid_type");
    std::optional<json> h = history ? history(prev->get<std::string>()) : std::nullopt;
    if (!h)
      throw ApiError(
          404, fmt::format("Previous response with id '{}' not found.", prev->get<std::string>()),
          "previous_response_id", "previous_response_not_found", "invalid_request_error");
    items = std::move(*h);
    echo["previous_response_id"] = *prev;
  }
  const size_t n_history = items.size();
  for (auto& it : InputItems(j)) items.push_back(it);
  if (items.empty()) Bad("input", "must hold at least one item");

  ojson msgs = ojson::array();
  // instructions apply to this request only: a previous response's are not carried over.
  if (const json* ins = Field(j, "instructions")) {
    if (!ins->is_string()) Bad("instructions", "must be a string", "invalid_type");
    echo["instructions"] = *ins;
    msgs.push_back({{"role", "system"}, {"content", *ins}});
  }
  ItemTranslator tr(msgs);
  for (size_t i = 0; i < items.size(); ++i) {
    // History items were validated when they were stored; errors name this request's input.
    const std::string p = i < n_history ? fmt::format("previous_response_id (item {})", i)
                                        : fmt::format("input[{}]", i - n_history);
    tr.Add(items[i], p);
  }
  if (msgs.empty()) Bad("input", "must hold at least one message");
  o["messages"] = msgs;
  t.items = std::move(items);

  if (const json* mt = Field(j, "max_output_tokens")) {
    if (!mt->is_number_integer() || mt->get<int64_t>() < 1 || mt->get<int64_t>() > (1 << 30))
      Bad("max_output_tokens", "must be an integer between 1 and 2^30");
    o["max_tokens"] = *mt;
    echo["max_output_tokens"] = *mt;
  }
  CopyNumber(j, o, echo, "temperature", 0, 2);
  CopyNumber(j, o, echo, "top_p", 0, 1);
  const json* ts = Field(j, "tools");
  const std::vector<std::string> names = Tools(j, o, echo);
  ToolChoice(j, o, echo, names, ts && ts->is_array() && !ts->empty());
  echo["parallel_tool_calls"] = Bool(j, "parallel_tool_calls", true);
  if (o.contains("tools")) o["parallel_tool_calls"] = echo["parallel_tool_calls"];
  TextFormat(j, o, echo);
  Reasoning(j, o, echo);
  t.chat_body = o.dump();
  return t;
}

json ResponsesUsage(int n_prompt, int n_cached, int n_generated, int n_reasoning) {
  return {{"input_tokens", n_prompt},
          {"input_tokens_details", {{"cached_tokens", n_cached}}},
          {"output_tokens", n_generated},
          {"output_tokens_details", {{"reasoning_tokens", std::min(n_reasoning, n_generated)}}},
          {"total_tokens", n_prompt + n_generated}};
}

}  // namespace origami::server
