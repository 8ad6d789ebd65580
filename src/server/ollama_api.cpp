// Translation of Ollama /api/chat and /api/generate bodies into OpenAI bodies, and the pieces of
// Ollama's answers. Validation and field mapping only; generation is the chat path's.
#include "server/ollama_api.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cmath>
#include <ctime>
#include <vector>

#include "server/ollama_model.h"

namespace origami::server {

using nlohmann::json;
using ojson = nlohmann::ordered_json;

json OllamaErrorBody(const std::string& message) { return {{"error", message}}; }

namespace {

[[noreturn]] void Bad(const std::string& field, const std::string& msg) {
  throw ApiError(400, fmt::format("{}: {}", field, msg), field);
}

const json* Field(const json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return nullptr;
  return &*it;
}

constexpr size_t kMaxStops = 64;

double Number(const json& v, const std::string& name) {
  if (!v.is_number()) Bad(name, "must be a number");
  return v.get<double>();
}

// An integer, or a float with an integral value (JavaScript clients send 1.0 as 1 anyway).
int64_t Integer(const json& v, const std::string& name) {
  if (v.is_number_unsigned())
    return static_cast<int64_t>(std::min<uint64_t>(v.get<uint64_t>(), INT64_MAX));
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (std::floor(d) == d && std::abs(d) < 9e15) return static_cast<int64_t>(d);
  }
  Bad(name, "must be an integer");
}

std::string String(const json& j, const char* name, const std::string& prefix = {}) {
  const json* f = Field(j, name);
  if (!f) return {};
  if (!f->is_string()) Bad(prefix + name, "must be a string");
  return f->get<std::string>();
}

bool Bool(const json& j, const char* name, bool def) {
  const json* f = Field(j, name);
  if (!f) return def;
  if (!f->is_boolean()) Bad(name, "must be a boolean");
  return f->get<bool>();
}

json ParseBody(const std::string& body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded()) throw ApiError(400, "invalid JSON in the request body");
  if (!j.is_object()) throw ApiError(400, "the request body must be a JSON object");
  return j;
}

// Ollama's options onto OpenAI fields. Types are checked (400 naming options.x); out-of-range
// values are clamped into what the sampler takes, as Ollama itself does not reject them. Options
// that only tune Ollama's runner (num_gpu, num_thread, mirostat, ...) are ignored, as are
// unknown ones. Defaults are the server's, not Ollama's, except temperature, top_k and top_p,
// which Ollama clients expect at 0.8, 40 and 0.9 when they send none.
void MapOptions(const json* opts, ojson& o, std::vector<std::string>& many_stops) {
  o["temperature"] = 0.8;
  o["top_k"] = 40;
  o["top_p"] = 0.9;
  if (!opts) return;
  if (!opts->is_object()) Bad("options", "must be an object");
  auto get = [&](const char* k) { return Field(*opts, k); };
  auto name = [](const char* k) { return std::string("options.") + k; };
  if (const json* v = get("temperature"))
    o["temperature"] = std::clamp(Number(*v, name("temperature")), 0.0, 2.0);
  if (const json* v = get("top_k"))
    o["top_k"] = std::clamp<int64_t>(Integer(*v, name("top_k")), 0, 1 << 20);
  if (const json* v = get("top_p")) o["top_p"] = std::clamp(Number(*v, name("top_p")), 0.0, 1.0);
  if (const json* v = get("min_p")) o["min_p"] = std::clamp(Number(*v, name("min_p")), 0.0, 1.0);
  if (const json* v = get("seed")) {
    const int64_t seed = Integer(*v, name("seed"));
    if (seed >= 0) o["seed"] = seed;  // Ollama's -1: a random seed
  }
  if (const json* v = get("num_predict")) {
    const int64_t n = Integer(*v, name("num_predict"));
    // Ollama: -1 generates until the end, -2 until the context is full, 0 has no limit either.
    if (n < -2) Bad(name("num_predict"), "must be -2, -1 or a non-negative integer");
    if (n > 0) o["max_tokens"] = std::min<int64_t>(n, 1 << 30);
  }
  if (const json* v = get("num_ctx")) {
    // Accepted and clamped to the server's context, which is fixed at start: nothing to send.
    if (Integer(*v, name("num_ctx")) < 1) Bad(name("num_ctx"), "must be a positive integer");
  }
  if (const json* v = get("stop")) {
    ojson stops = ojson::array();
    auto add = [&](const json& s) {
      if (!s.is_string()) Bad(name("stop"), "must be a string or an array of strings");
      if (!s.get<std::string>().empty()) stops.push_back(s.get<std::string>());
    };
    if (v->is_array()) {
      for (const auto& s : *v) add(s);
    } else {
      add(*v);
    }
    // OpenAI's parser takes four; clients such as Continue send a model's whole list, which the
    // handler then applies to the text itself.
    if (stops.size() > kMaxStops)
      Bad(name("stop"), fmt::format("at most {} stop sequences are supported", kMaxStops));
    if (stops.size() > 4)
      for (const auto& s : stops) many_stops.push_back(s.get<std::string>());
    else if (!stops.empty())
      o["stop"] = stops;
  }
  if (const json* v = get("repeat_penalty")) {
    const double p = Number(*v, name("repeat_penalty"));
    if (p > 0) o["repeat_penalty"] = std::clamp(p, 0.01, 10.0);  // <= 0: off, as Ollama treats it
  }
  if (const json* v = get("repeat_last_n"))
    o["repeat_last_n"] = std::clamp<int64_t>(Integer(*v, name("repeat_last_n")), -1, 1 << 20);
  for (const char* k : {"presence_penalty", "frequency_penalty"})
    if (const json* v = get(k)) o[k] = std::clamp(Number(*v, name(k)), -2.0, 2.0);
}

// format: "json" or a JSON schema object, onto response_format (the json-schema grammar).
void MapFormat(const json& j, ojson& o) {
  const json* f = Field(j, "format");
  if (!f) return;
  if (f->is_string()) {
    const std::string s = f->get<std::string>();
    if (s.empty()) return;
    if (s != "json") Bad("format", "must be \"json\" or a JSON schema object");
    o["response_format"] = {{"type", "json_object"}};
    return;
  }
  if (!f->is_object()) Bad("format", "must be \"json\" or a JSON schema object");
  o["response_format"] = {
      {"type", "json_schema"},
      {"json_schema", {{"name", "format"}, {"schema", ojson::parse(f->dump())}}}};
}

[[noreturn]] void Unsupported(const std::string& model, const char* what, const char* field) {
  // Ollama's wording for a capability the model lacks.
  throw ApiError(400, fmt::format("\"{}\" does not support {}", model, what), field);
}

// think: true/false, or gpt-oss's "high"/"medium"/"low" (thinking on at that effort). Asking a
// model without a thinking switch to think is a 400, as in Ollama; false is always accepted.
void MapThink(const json& j, ojson& o, bool template_thinks, OllamaTranslation& t) {
  const json* th = Field(j, "think");
  if (!th) {
    t.split_thinking = template_thinks;
    return;
  }
  const bool wants = (th->is_boolean() && th->get<bool>()) || th->is_string();
  if (wants && !template_thinks) Unsupported(t.model, "thinking", "think");
  if (th->is_boolean()) {
    t.split_thinking = th->get<bool>();
    o["chat_template_kwargs"] = {{"enable_thinking", th->get<bool>()}};
    return;
  }
  if (th->is_string()) {
    const std::string e = th->get<std::string>();
    if (e != "high" && e != "medium" && e != "low")
      Bad("think", "must be a boolean or one of \"high\", \"medium\", \"low\"");
    t.split_thinking = true;
    o["chat_template_kwargs"] = {{"enable_thinking", true}, {"reasoning_effort", e}};
    return;
  }
  Bad("think", "must be a boolean or one of \"high\", \"medium\", \"low\"");
}

void NoImages(const json& j, const std::string& field) {
  const json* im = Field(j, "images");
  if (!im) return;
  if (!im->is_array()) Bad(field, "must be an array of base64 images");
  if (!im->empty()) Bad(field, "images are not supported: this model has no vision");
}

// What chat and generate share: model, stream, keep_alive, options, format, think.
ojson Common(const json& j, const OllamaContext& ctx, OllamaTranslation& t, bool* unload) {
  t.model = OllamaModelOf(j, ctx.alias);
  t.stream = Bool(j, "stream", true);
  *unload = false;
  if (const json* ka = Field(j, "keep_alive")) *unload = ParseKeepAlive(*ka) == 0;
  ojson o = ojson::object();
  MapOptions(Field(j, "options"), o, t.many_stops);
  MapFormat(j, o);
  return o;
}

ojson Tools(const json& j) {
  const json* t = Field(j, "tools");
  if (!t) return nullptr;
  if (!t->is_array()) Bad("tools", "must be an array");
  ojson out = ojson::array();
  for (size_t i = 0; i < t->size(); ++i) {
    const json& tl = (*t)[i];
    const std::string p = fmt::format("tools[{}]", i);
    if (!tl.is_object()) Bad(p, "must be an object");
    if (tl.contains("type") && tl["type"] != "function") Bad(p + ".type", "must be \"function\"");
    if (!tl.contains("function") || !tl["function"].is_object())
      Bad(p + ".function", "is required");
    const json& f = tl["function"];
    if (!f.contains("name") || !f["name"].is_string() || f["name"].get<std::string>().empty())
      Bad(p + ".function.name", "is required (a non-empty string)");
    if (f.contains("parameters") && !f["parameters"].is_null() && !f["parameters"].is_object())
      Bad(p + ".function.parameters", "must be a JSON schema object");
    ojson fn = ojson::parse(f.dump());
    out.push_back({{"type", "function"}, {"function", fn}});
  }
  return out.empty() ? ojson(nullptr) : out;
}

ojson ToolCallsOf(const json& m, const std::string& p) {
  const json* tc = Field(m, "tool_calls");
  if (!tc) return nullptr;
  if (!tc->is_array()) Bad(p + ".tool_calls", "must be an array");
  ojson calls = ojson::array();
  for (size_t k = 0; k < tc->size(); ++k) {
    const json& c = (*tc)[k];
    const std::string cp = fmt::format("{}.tool_calls[{}]", p, k);
    if (!c.is_object() || !c.contains("function") || !c["function"].is_object())
      Bad(cp + ".function", "is required (an object)");
    const json& f = c["function"];
    if (!f.contains("name") || !f["name"].is_string()) Bad(cp + ".function.name", "is required");
    ojson args = ojson::object();
    if (f.contains("arguments") && !f["arguments"].is_null()) {
      // Ollama sends an object; a JSON string (OpenAI's habit) is taken too.
      if (f["arguments"].is_object()) {
        args = ojson::parse(f["arguments"].dump());
      } else if (f["arguments"].is_string()) {
        args = ojson::parse(f["arguments"].get<std::string>(), nullptr, false);
        if (!args.is_object()) Bad(cp + ".function.arguments", "must be a JSON object");
      } else {
        Bad(cp + ".function.arguments", "must be an object");
      }
    }
    const std::string id = c.contains("id") && c["id"].is_string() ? c["id"].get<std::string>()
                                                                   : fmt::format("call_{}", k);
    calls.push_back({{"id", id},
                     {"type", "function"},
                     {"function", {{"name", f["name"]}, {"arguments", args}}}});
  }
  return calls.empty() ? ojson(nullptr) : calls;
}

ojson Messages(const json& j) {
  const json* ms = Field(j, "messages");
  ojson out = ojson::array();
  if (!ms) return out;
  if (!ms->is_array()) Bad("messages", "must be an array");
  for (size_t i = 0; i < ms->size(); ++i) {
    const json& m = (*ms)[i];
    const std::string p = fmt::format("messages[{}]", i);
    if (!m.is_object()) Bad(p, "must be an object");
    if (!m.contains("role") || !m["role"].is_string()) Bad(p + ".role", "is required (a string)");
    const std::string role = m["role"].get<std::string>();
    if (role != "system" && role != "user" && role != "assistant" && role != "tool")
      Bad(p + ".role", fmt::format("'{}' is not one of system, user, assistant, tool", role));
    NoImages(m, p + ".images");
    ojson o = {{"role", role}, {"content", String(m, "content", p + ".")}};
    const std::string thinking = String(m, "thinking", p + ".");
    if (role == "assistant" && !thinking.empty()) o["reasoning_content"] = thinking;
    ojson calls = ToolCallsOf(m, p);
    if (!calls.is_null()) {
      if (role != "assistant") Bad(p + ".tool_calls", "belong to assistant messages");
      o["tool_calls"] = calls;
    }
    const std::string tool_name = String(m, "tool_name", p + ".");
    if (!tool_name.empty()) o["name"] = tool_name;
    const std::string call_id = String(m, "tool_call_id", p + ".");
    if (!call_id.empty()) o["tool_call_id"] = call_id;
    out.push_back(std::move(o));
  }
  return out;
}

}  // namespace

std::string OllamaModelOf(const json& j, const std::string& alias) {
  const json* m = Field(j, "model");
  if (!m) m = Field(j, "name");  // the field's older name, still sent by pull/delete clients
  if (!m) throw ApiError(400, "model is required", "model");
  if (!m->is_string()) Bad("model", "must be a string");
  const std::string name = m->get<std::string>();
  if (name.empty()) throw ApiError(400, "model is required", "model");
  if (!OllamaNameMatches(name, alias))
    throw ApiError(404, fmt::format("model \"{}\" not found, try pulling it first", name), "model");
  return name;
}

double ParseKeepAlive(const json& v) {
  if (v.is_number()) return v.get<double>();
  if (!v.is_string()) Bad("keep_alive", "must be a number of seconds or a duration such as \"5m\"");
  const std::string s = v.get<std::string>();
  // A bare integer is seconds (Ollama accepts it); otherwise Go's duration syntax: an optional
  // sign, then numbers with units ns, us, ms, s, m, h.
  size_t i = 0;
  double sign = 1;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) sign = s[i++] == '-' ? -1 : 1;
  if (i == s.size()) Bad("keep_alive", fmt::format("'{}' is not a duration", s));
  double total = 0;
  bool any_unit = false;
  while (i < s.size()) {
    size_t start = i;
    while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
    if (start == i) Bad("keep_alive", fmt::format("'{}' is not a duration", s));
    double num = 0;
    try {
      num = std::stod(s.substr(start, i - start));
    } catch (const std::exception&) {
      Bad("keep_alive", fmt::format("'{}' is not a duration", s));
    }
    size_t u = i;
    while (i < s.size() && std::isalpha(static_cast<unsigned char>(s[i]))) ++i;
    const std::string unit = s.substr(u, i - u);
    double scale;
    if (unit.empty() && !any_unit && i == s.size())
      scale = 1;  // "300": seconds
    else if (unit == "h")
      scale = 3600;
    else if (unit == "m")
      scale = 60;
    else if (unit == "s")
      scale = 1;
    else if (unit == "ms")
      scale = 1e-3;
    else if (unit == "us" || unit == "µs")
      scale = 1e-6;
    else if (unit == "ns")
      scale = 1e-9;
    else
      Bad("keep_alive", fmt::format("'{}' is not a duration", s));
    any_unit = true;
    total += num * scale;
  }
  return sign * total;
}

OllamaTranslation TranslateOllamaChat(const std::string& body, const OllamaContext& ctx) {
  const json j = ParseBody(body);
  OllamaTranslation t;
  bool unload = false;
  ojson o = Common(j, ctx, t, &unload);
  ojson msgs = Messages(j);
  if (msgs.empty()) {
    t.action = unload ? OllamaAction::kUnload : OllamaAction::kLoad;
    return t;
  }
  MapThink(j, o, ctx.template_thinks, t);
  o["messages"] = msgs;
  ojson tools = Tools(j);
  if (!tools.is_null() && !ctx.template_tools) Unsupported(t.model, "tools", "tools");
  if (!tools.is_null()) o["tools"] = tools;
  // Ollama has no tool_choice; origami takes OpenAI's as an extension so a call can be forced.
  if (const json* tc = Field(j, "tool_choice")) o["tool_choice"] = ojson::parse(tc->dump());
  t.endpoint = Endpoint::kChat;
  t.body = o.dump();
  return t;
}

OllamaTranslation TranslateOllamaGenerate(const std::string& body, const OllamaContext& ctx) {
  const json j = ParseBody(body);
  OllamaTranslation t;
  bool unload = false;
  ojson o = Common(j, ctx, t, &unload);
  const std::string prompt = String(j, "prompt");
  const std::string suffix = String(j, "suffix");
  const std::string system = String(j, "system");
  const std::string tmpl = String(j, "template");
  const bool raw = Bool(j, "raw", false);
  NoImages(j, "images");
  if (const json* c = Field(j, "context")) {
    if (!c->is_array()) Bad("context", "must be an array of token ids");
    // origami sends no context back, so only a client of another server could have one.
    if (!c->empty()) Bad("context", "is not supported: send the conversation in the prompt");
  }
  if (!suffix.empty() && ctx.fim_prefix.empty())
    throw ApiError(400, fmt::format("\"{}\" does not support insert", t.model), "suffix");
  if (prompt.empty() && suffix.empty()) {
    t.action = unload ? OllamaAction::kUnload : OllamaAction::kLoad;
    return t;
  }
  if (!suffix.empty()) {
    // Fill in the middle in the vocabulary's own tokens; the tokenizer parses them as specials.
    t.endpoint = Endpoint::kCompletions;
    o["prompt"] = ctx.fim_prefix + prompt + ctx.fim_suffix + suffix + ctx.fim_middle;
    t.split_thinking = false;
  } else if (raw || !tmpl.empty()) {
    t.endpoint = Endpoint::kCompletions;
    o["prompt"] = raw ? prompt : RenderOllamaTemplate(tmpl, system, prompt);
    const json* th = Field(j, "think");
    if (th && !th->is_boolean() && !th->is_string()) Bad("think", "must be a boolean");
    t.split_thinking = th && (!th->is_boolean() || th->get<bool>());
    if (t.split_thinking && !ctx.template_thinks) Unsupported(t.model, "thinking", "think");
  } else {
    t.endpoint = Endpoint::kChat;
    ojson msgs = ojson::array();
    if (!system.empty()) msgs.push_back({{"role", "system"}, {"content", system}});
    msgs.push_back({{"role", "user"}, {"content", prompt}});
    o["messages"] = msgs;
    MapThink(j, o, ctx.template_thinks, t);
  }
  t.body = o.dump();
  return t;
}

json OllamaMessage(const json& m) {
  json out = {{"role", "assistant"},
              {"content", m.contains("content") && m["content"].is_string() ? m["content"] : ""}};
  if (m.contains("reasoning_content") && m["reasoning_content"].is_string() &&
      !m["reasoning_content"].get<std::string>().empty())
    out["thinking"] = m["reasoning_content"];
  if (m.contains("tool_calls") && m["tool_calls"].is_array() && !m["tool_calls"].empty()) {
    json calls = json::array();
    for (size_t i = 0; i < m["tool_calls"].size(); ++i) {
      const json& c = m["tool_calls"][i];
      const json f = c.value("function", json::object());
      json args = json::object();
      if (f.contains("arguments") && f["arguments"].is_string()) {
        json parsed = json::parse(f["arguments"].get<std::string>(), nullptr, false);
        if (parsed.is_object()) args = parsed;
      } else if (f.contains("arguments") && f["arguments"].is_object()) {
        args = f["arguments"];
      }
      json call = {
          {"function", {{"index", i}, {"name", f.value("name", "")}, {"arguments", args}}}};
      if (c.contains("id") && c["id"].is_string()) call["id"] = c["id"];
      calls.push_back(std::move(call));
    }
    out["tool_calls"] = calls;
  }
  return out;
}

void AddOllamaStats(json& line, const OllamaStats& s) {
  line["done"] = true;
  line["done_reason"] = s.done_reason;
  line["total_duration"] = s.total_ns;
  line["load_duration"] = s.load_ns;
  line["prompt_eval_count"] = s.prompt_eval_count;
  line["prompt_eval_duration"] = s.prompt_eval_ns;
  line["eval_count"] = s.eval_count;
  line["eval_duration"] = s.eval_ns;
}

std::string Rfc3339Nano(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  const auto ns = duration_cast<nanoseconds>(t.time_since_epoch()).count();
  int64_t secs = ns / 1000000000;
  int64_t frac = ns % 1000000000;
  if (frac < 0) {
    frac += 1000000000;
    --secs;
  }
  const std::time_t tt = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  return fmt::format("{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}.{:09d}Z", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

std::string RenderOllamaTemplate(std::string_view tmpl, const std::string& system,
                                 const std::string& prompt) {
  auto is_ws = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  std::string out;
  // One entry per open {{ if }}: whether its body is being written.
  std::vector<bool> active;
  auto writing = [&] {
    return std::all_of(active.begin(), active.end(), [](bool b) { return b; });
  };
  bool trim_next = false;  // the previous action ended with "-}}"
  size_t pos = 0;
  while (pos <= tmpl.size()) {
    const size_t open = tmpl.find("{{", pos);
    std::string_view text = tmpl.substr(pos, open == std::string_view::npos ? open : open - pos);
    if (trim_next)
      while (!text.empty() && is_ws(text.front())) text.remove_prefix(1);
    bool trim_before =
        open != std::string_view::npos && open + 2 < tmpl.size() && tmpl[open + 2] == '-';
    if (trim_before)
      while (!text.empty() && is_ws(text.back())) text.remove_suffix(1);
    if (writing()) out.append(text);
    if (open == std::string_view::npos) break;
    const size_t close = tmpl.find("}}", open + 2);
    if (close == std::string_view::npos) Bad("template", "an action is not closed with }}");
    std::string_view action = tmpl.substr(open + 2, close - open - 2);
    if (trim_before) action.remove_prefix(1);
    trim_next = !action.empty() && action.back() == '-';
    if (trim_next) action.remove_suffix(1);
    while (!action.empty() && is_ws(action.front())) action.remove_prefix(1);
    while (!action.empty() && is_ws(action.back())) action.remove_suffix(1);
    if (action == ".System") {
      if (writing()) out += system;
    } else if (action == ".Prompt") {
      if (writing()) out += prompt;
    } else if (action == ".Response") {
      if (writing()) return out;  // generation continues from here
    } else if (action == "if .System") {
      active.push_back(!system.empty());
    } else if (action == "if .Prompt") {
      active.push_back(!prompt.empty());
    } else if (action == "end") {
      if (active.empty()) Bad("template", "{{ end }} without {{ if }}");
      active.pop_back();
    } else {
      Bad("template", fmt::format("{{{{ {} }}}} is not supported; only .System, .Prompt, "
                                  ".Response and if .System/.Prompt ... end are",
                                  action));
    }
    pos = close + 2;
  }
  if (!active.empty()) Bad("template", "{{ if }} without {{ end }}");
  return out;
}

}  // namespace origami::server
