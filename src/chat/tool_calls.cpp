// Tool-call formats: detection from template source, an incremental parser (text / reasoning /
// call bodies as a small state machine over a byte buffer), and forced-call grammars.
#include "chat/tool_calls.h"

#include <algorithm>

#include "sampling/json_schema.h"
#include "util/error.h"

namespace origami {

using json = nlohmann::json;

ToolCallFormat DetectToolCallFormat(std::string_view src) {
  auto has = [&](std::string_view s) { return src.find(s) != std::string_view::npos; };
  if (has("<|channel|>") && has("<|message|>")) return ToolCallFormat::kHarmony;
  if (has("[TOOL_CALLS]"))
    return has("[ARGS]") ? ToolCallFormat::kMistralV11 : ToolCallFormat::kMistral;
  if (has("<tool_call>")) return ToolCallFormat::kHermes;
  if (has("<|python_tag|>") || (has("<|start_header_id|>") && has("tools")))
    return ToolCallFormat::kLlama3;
  if (has("tools")) return ToolCallFormat::kHermes;
  return ToolCallFormat::kNone;
}

const char* ToolCallFormatName(ToolCallFormat f) {
  switch (f) {
    case ToolCallFormat::kNone:
      return "none";
    case ToolCallFormat::kLlama3:
      return "llama3";
    case ToolCallFormat::kHermes:
      return "hermes";
    case ToolCallFormat::kMistral:
      return "mistral";
    case ToolCallFormat::kMistralV11:
      return "mistral-v11";
    case ToolCallFormat::kHarmony:
      return "harmony";
  }
  return "?";
}

namespace {

bool IsWs(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

std::string MakeId(uint64_t seed, size_t index) {
  // splitmix64: ids differ per call and per request seed, and are reproducible.
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * (index + 1);
  static constexpr char kAlnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::string id = "call_";
  for (int i = 0; i < 9; ++i) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    id += kAlnum[z % 62];
  }
  return id;
}

// Length of the longest suffix of `s` that is a proper prefix of `m`.
size_t PartialSuffix(std::string_view s, std::string_view m) {
  for (size_t n = std::min(s.size(), m.size() - 1); n > 0; --n)
    if (s.substr(s.size() - n) == m.substr(0, n)) return n;
  return 0;
}

// Where a JSON value ends, one byte at a time: bracket depth outside strings. Call objects
// (kCallJson) and bare argument values (kArgsValue) both stream their bytes through it.
struct JsonValueEnd {
  bool in_str = false, esc = false;
  int depth = 0;
  // Returns true when `c` closes the value (a scalar closes at its first byte).
  bool Feed(char c) {
    if (in_str) {
      if (esc)
        esc = false;
      else if (c == '\\')
        esc = true;
      else if (c == '"')
        in_str = false;
    } else if (c == '"') {
      in_str = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      --depth;
    }
    return depth <= 0 && !in_str;
  }
};

const std::vector<std::string>& DroppedMarkers() {
  static const std::vector<std::string> k = {"<|eot_id|>", "<|eom_id|>",     "<|im_end|>",
                                             "<|end|>",    "<|return|>",     "<|call|>",
                                             "</s>",       "<|end_of_text|>"};
  return k;
}

}  // namespace

struct ToolCallParser::Impl {
  enum class Mode {
    kText,
    kLlamaProbe,     // start of a Llama 3 answer: is this `{"name"` ...?
    kCallJson,       // inside {"name": ..., "arguments": ...}
    kMistralStart,   // just after [TOOL_CALLS]
    kMistralArray,   // between objects of [TOOL_CALLS][...]
    kMistralName,    // [TOOL_CALLS]name([CALL_ID]id)?[ARGS]
    kArgsValue,      // a bare JSON value of arguments
    kHarmonyHeader,  // <|channel|>... up to <|message|>
    kHarmonyBody,
  };
  enum class Route { kContent, kReasoning, kCall };

  ToolCallFormat f;
  ToolParseOptions opt;
  ParsedMessage msg;
  MessageDelta out;
  std::string buf;
  Mode mode = Mode::kText;
  bool in_think = false;
  bool skip_ws = false;
  bool probe_llama = false;
  Route route = Route::kContent;
  bool finishing = false;

  // The call being read.
  bool call_open = false;
  std::string pending_args;  // arguments seen before the name
  // JSON object scanner state (kCallJson).
  enum class Phase {
    kStart,
    kBeforeKey,
    kKey,
    kColon,
    kValue,
    kAfter,
    kDone
  } phase = Phase::kStart;
  std::string key, val, raw;
  bool key_esc = false, val_started = false, val_scalar = false;
  JsonValueEnd scan;  // the value being read (kCallJson's value, kArgsValue)
  bool after_array = false;  // the object sits in a Mistral array

  Impl(ToolCallFormat format, ToolParseOptions o) : f(format), opt(o) {
    in_think = opt.starts_in_reasoning;
    if (f == ToolCallFormat::kHarmony) mode = Mode::kHarmonyHeader;
    probe_llama = f == ToolCallFormat::kLlama3 && opt.parse_tool_calls;
  }

  // ---- emission ----
  void EmitText(std::string_view s) {
    if (skip_ws) {
      size_t i = 0;
      while (i < s.size() && IsWs(s[i])) ++i;
      s.remove_prefix(i);
      if (s.empty()) return;
      skip_ws = false;
    }
    if (s.empty()) return;
    if (in_think || route == Route::kReasoning) {
      msg.reasoning_content += s;
      out.reasoning_content += s;
    } else {
      msg.content += s;
      out.content += s;
    }
  }
  void BeginCall(std::string name) {
    ToolCall c{MakeId(opt.id_seed, msg.tool_calls.size()), std::move(name), ""};
    out.tool_calls.push_back({msg.tool_calls.size(), c.id, c.name, ""});
    msg.tool_calls.push_back(std::move(c));
    call_open = true;
    if (!pending_args.empty()) EmitArgs(std::exchange(pending_args, {}));
  }
  void EmitArgs(std::string_view s) {
    if (s.empty()) return;
    if (!call_open) {
      pending_args += s;
      return;
    }
    const size_t index = msg.tool_calls.size() - 1;
    msg.tool_calls.back().arguments += s;
    if (out.tool_calls.empty() || out.tool_calls.back().index != index)
      out.tool_calls.push_back({index, "", "", ""});
    out.tool_calls.back().arguments += s;
  }
  void EndCall() {
    call_open = false;
    pending_args.clear();
  }

  // ---- text mode ----
  struct Marker {
    std::string_view text;
    int action;  // 0 drop, 1 think open, 2 think close, 3 call start
  };
  std::vector<Marker> ActiveMarkers() const {
    std::vector<Marker> m;
    const bool mistral = f == ToolCallFormat::kMistral || f == ToolCallFormat::kMistralV11;
    if (!in_think) {
      m.push_back({"<think>", 1});
      if (mistral) m.push_back({"[THINK]", 1});
    } else {
      m.push_back({"</think>", 2});
      if (mistral) m.push_back({"[/THINK]", 2});
    }
    for (const auto& d : DroppedMarkers()) m.push_back({d, 0});
    if (opt.parse_tool_calls && !in_think) {
      if (f == ToolCallFormat::kHermes) {
        m.push_back({"<tool_call>", 3});
        m.push_back({"</tool_call>", 0});
      }
      if (f == ToolCallFormat::kLlama3) m.push_back({"<|python_tag|>", 3});
      if (mistral) m.push_back({"[TOOL_CALLS]", 3});
    }
    return m;
  }

  // Returns false when more input is needed.
  bool StepText() {
    if (probe_llama && !in_think) {
      // Calls may be separated by ';' (Llama 3.2 writes `{...}; {...}`).
      const bool after_call = !msg.tool_calls.empty();
      size_t i = 0;
      while (i < buf.size() && (IsWs(buf[i]) || (after_call && buf[i] == ';'))) ++i;
      if (i == buf.size() && !finishing) return false;
      if (i < buf.size() && buf[i] == '{') {
        // `{` ws* `"name"` decides; a prefix of it waits for more bytes.
        size_t j = i + 1;
        while (j < buf.size() && IsWs(buf[j])) ++j;
        const std::string_view want = "\"name\"";
        const std::string_view have = std::string_view(buf).substr(j, want.size());
        if (want.substr(0, have.size()) == have) {
          if (have.size() < want.size()) {
            if (!finishing) return false;
          } else {
            buf.erase(0, i);
            StartCallJson(false);
            return true;
          }
        }
      }
      probe_llama = false;
    }
    const auto markers = ActiveMarkers();
    size_t best = std::string::npos;
    const Marker* hit = nullptr;
    for (const auto& m : markers) {
      const size_t p = buf.find(m.text);
      if (p != std::string::npos && (p < best || (p == best && m.text.size() > hit->text.size()))) {
        best = p;
        hit = &m;
      }
    }
    if (hit == nullptr) {
      size_t hold = 0;
      if (!finishing)
        for (const auto& m : markers) hold = std::max(hold, PartialSuffix(buf, m.text));
      EmitText(std::string_view(buf).substr(0, buf.size() - hold));
      buf.erase(0, buf.size() - hold);
      return false;
    }
    EmitText(std::string_view(buf).substr(0, best));
    const int action = hit->action;
    const std::string marker(hit->text);
    buf.erase(0, best + marker.size());
    switch (action) {
      case 1:
        in_think = true;
        break;
      case 2:
        in_think = false;
        skip_ws = true;
        break;
      case 3:
        if (f == ToolCallFormat::kHermes || f == ToolCallFormat::kLlama3) {
          StartCallJson(false);
        } else {
          mode = Mode::kMistralStart;
        }
        break;
      default:
        break;
    }
    return true;
  }

  void StartCallJson(bool in_array) {
    mode = Mode::kCallJson;
    phase = Phase::kStart;
    key.clear();
    val.clear();
    raw.clear();
    after_array = in_array;
    pending_args.clear();
    call_open = false;
  }

  // ---- {"name": ..., "arguments": ...} ----
  bool IsArgsKey() const { return key == "arguments" || key == "parameters"; }

  void FinishValue() {
    if (key == "name") {
      std::string name;
      try {
        const json j = json::parse(val);
        if (j.is_string()) name = j.get<std::string>();
      } catch (const json::exception&) {
      }
      if (!call_open && !name.empty()) BeginCall(name);
    } else if (IsArgsKey() && !val.empty() && val[0] == '"') {
      // Arguments given as a JSON string holding JSON: report the inner text.
      try {
        const json j = json::parse(val);
        if (j.is_string()) {
          pending_args.clear();
          EmitArgs(j.get<std::string>());
        }
      } catch (const json::exception&) {
      }
    }
    val.clear();
    val_started = false;
    phase = Phase::kAfter;
  }

  // Feeds one byte of the call object; returns true when the object has closed.
  bool FeedObject(char c) {
    raw += c;
    switch (phase) {
      case Phase::kStart:
        if (c == '{') phase = Phase::kBeforeKey;
        return false;
      case Phase::kBeforeKey:
        if (c == '"') {
          phase = Phase::kKey;
          key.clear();
          key_esc = false;
        } else if (c == '}') {
          phase = Phase::kDone;
          return true;
        }
        return false;
      case Phase::kKey:
        if (key_esc) {
          key_esc = false;
          key += c;
        } else if (c == '\\') {
          key_esc = true;
        } else if (c == '"') {
          phase = Phase::kColon;
        } else {
          key += c;
        }
        return false;
      case Phase::kColon:
        if (c == ':') {
          phase = Phase::kValue;
          val_started = false;
          val.clear();
        }
        return false;
      case Phase::kValue: {
        if (!val_started) {
          if (IsWs(c)) return false;
          val_started = true;
          val_scalar = !(c == '{' || c == '[' || c == '"');
          if (val_scalar) {
            val += c;
            return false;
          }
          scan = {};
          scan.Feed(c);
          val += c;
          if (IsArgsKey() && c != '"') EmitArgs(std::string_view(&c, 1));
          return false;
        }
        if (val_scalar) {
          if (c == ',' || c == '}' || IsWs(c)) {
            raw.pop_back();
            FinishValue();
            return FeedObject(c);
          }
          val += c;
          return false;
        }
        val += c;
        const bool closed = scan.Feed(c);
        if (IsArgsKey() && val[0] != '"') EmitArgs(std::string_view(&c, 1));
        if (closed) FinishValue();
        return false;
      }
      case Phase::kAfter:
        if (c == ',') phase = Phase::kBeforeKey;
        if (c == '}') {
          phase = Phase::kDone;
          return true;
        }
        return false;
      case Phase::kDone:
        return true;
    }
    return false;
  }

  void CloseCallObject() {
    if (!call_open) {
      // Not a call after all (no name): give the text back as content.
      const std::string text = std::exchange(raw, {});
      EmitText(text);
    }
    EndCall();
    if (after_array) {
      mode = Mode::kMistralArray;
    } else {
      mode = Mode::kText;
      skip_ws = true;
      if (f == ToolCallFormat::kLlama3) probe_llama = true;  // `{...}; {...}` or one per line
    }
  }

  bool StepCallJson() {
    size_t i = 0;
    bool closed = false;
    for (; i < buf.size() && !closed; ++i) closed = FeedObject(buf[i]);
    buf.erase(0, i);
    if (closed) {
      CloseCallObject();
      if (f == ToolCallFormat::kLlama3) {
        size_t j = 0;
        while (j < buf.size() && (IsWs(buf[j]) || buf[j] == ';')) ++j;
        if (j < buf.size() || finishing) buf.erase(0, j);
      }
      return true;
    }
    return false;
  }

  // ---- Mistral ----
  bool StepMistralStart() {
    size_t i = 0;
    while (i < buf.size() && IsWs(buf[i])) ++i;
    buf.erase(0, i);
    if (buf.empty()) return false;
    if (buf[0] == '[') {
      buf.erase(0, 1);
      mode = Mode::kMistralArray;
    } else {
      mode = Mode::kMistralName;
    }
    return true;
  }

  bool StepMistralArray() {
    size_t i = 0;
    while (i < buf.size() && (IsWs(buf[i]) || buf[i] == ',')) ++i;
    buf.erase(0, i);
    if (buf.empty()) return false;
    if (buf[0] == ']') {
      buf.erase(0, 1);
      mode = Mode::kText;
      skip_ws = true;
    } else if (buf[0] == '{') {
      StartCallJson(true);
    } else {
      mode = Mode::kText;  // malformed: the rest is content
    }
    return true;
  }

  bool StepMistralName() {
    const size_t p = buf.find("[ARGS]");
    if (p == std::string::npos) {
      if (buf.size() > 512 || finishing) {  // no [ARGS]: not a call
        mode = Mode::kText;
        return true;
      }
      return false;
    }
    std::string head = buf.substr(0, p);
    const size_t id_at = head.find("[CALL_ID]");
    if (id_at != std::string::npos) head.resize(id_at);
    while (!head.empty() && IsWs(head.back())) head.pop_back();
    while (!head.empty() && IsWs(head.front())) head.erase(0, 1);
    buf.erase(0, p + 6);
    BeginCall(head);
    mode = Mode::kArgsValue;
    val_started = false;
    return true;
  }

  // A bare JSON value (object or array) of arguments, streamed as it comes.
  bool StepArgsValue() {
    size_t i = 0;
    bool done = false;
    for (; i < buf.size() && !done; ++i) {
      const char c = buf[i];
      if (!val_started) {
        if (IsWs(c)) continue;
        val_started = true;
        scan = {};
      }
      done = scan.Feed(c);
      EmitArgs(std::string_view(&c, 1));
    }
    buf.erase(0, i);
    if (!done) return false;
    EndCall();
    mode = Mode::kText;
    skip_ws = true;
    return true;
  }

  // ---- harmony ----
  bool StepHarmonyHeader() {
    size_t i = 0;
    while (i < buf.size() && IsWs(buf[i])) ++i;
    if (i == buf.size()) return false;
    if (buf.compare(i, 2, "<|", 0, std::min<size_t>(2, buf.size() - i)) != 0 &&
        buf.compare(i, 3, "to=", 0, std::min<size_t>(3, buf.size() - i)) != 0) {
      // Plain text without a header: content.
      route = Route::kContent;
      mode = Mode::kHarmonyBody;
      return true;
    }
    const size_t p = buf.find("<|message|>");
    if (p == std::string::npos) {
      if (finishing) buf.clear();
      return false;
    }
    const std::string header = buf.substr(0, p);
    buf.erase(0, p + 11);
    std::string channel, recipient;
    const size_t ch = header.find("<|channel|>");
    if (ch != std::string::npos) {
      size_t a = ch + 11;
      size_t b = a;
      while (b < header.size() && !IsWs(header[b]) && header[b] != '<') ++b;
      channel = header.substr(a, b - a);
    }
    const size_t to = header.find("to=");
    if (to != std::string::npos) {
      size_t a = to + 3, b = to + 3;
      while (b < header.size() && !IsWs(header[b]) && header[b] != '<') ++b;
      recipient = header.substr(a, b - a);
    }
    if (recipient.rfind("functions.", 0) == 0 && opt.parse_tool_calls) {
      route = Route::kCall;
      BeginCall(recipient.substr(10));
    } else if (channel == "analysis") {
      route = Route::kReasoning;
    } else {
      route = Route::kContent;
    }
    mode = Mode::kHarmonyBody;
    return true;
  }

  bool StepHarmonyBody() {
    static const std::string_view kEnds[] = {"<|end|>", "<|call|>", "<|return|>", "<|start|>",
                                             "<|channel|>"};
    size_t best = std::string::npos, len = 0;
    for (auto e : kEnds) {
      const size_t p = buf.find(e);
      if (p != std::string::npos && p < best) {
        best = p;
        len = e == "<|start|>" || e == "<|channel|>" ? 0 : e.size();
      }
    }
    auto emit = [&](std::string_view s) {
      if (route == Route::kCall)
        EmitArgs(s);
      else
        EmitText(s);
    };
    if (best == std::string::npos) {
      size_t hold = 0;
      if (!finishing)
        for (auto e : kEnds) hold = std::max(hold, PartialSuffix(buf, e));
      emit(std::string_view(buf).substr(0, buf.size() - hold));
      buf.erase(0, buf.size() - hold);
      return false;
    }
    emit(std::string_view(buf).substr(0, best));
    buf.erase(0, best + len);
    if (route == Route::kCall) EndCall();
    route = Route::kContent;
    mode = Mode::kHarmonyHeader;
    return true;
  }

  bool Step() {
    if (buf.empty()) return false;
    switch (mode) {
      case Mode::kText:
      case Mode::kLlamaProbe:
        return StepText();
      case Mode::kCallJson:
        return StepCallJson();
      case Mode::kMistralStart:
        return StepMistralStart();
      case Mode::kMistralArray:
        return StepMistralArray();
      case Mode::kMistralName:
        return StepMistralName();
      case Mode::kArgsValue:
        return StepArgsValue();
      case Mode::kHarmonyHeader:
        return StepHarmonyHeader();
      case Mode::kHarmonyBody:
        return StepHarmonyBody();
    }
    return false;
  }

  MessageDelta Push(std::string_view text) {
    buf += text;
    while (Step()) {
    }
    return std::exchange(out, {});
  }

  MessageDelta Finish(bool cut) {
    finishing = true;
    if (cut && (mode == Mode::kText || mode == Mode::kLlamaProbe)) {
      // Cut by max_tokens while a marker was being written: the marker's start is not content.
      size_t hold = 0;
      for (const auto& m : ActiveMarkers()) hold = std::max(hold, PartialSuffix(buf, m.text));
      buf.erase(buf.size() - hold);
    }
    while (Step()) {
    }
    // A call cut before its name was complete cannot be reported as a call, and its half JSON is
    // not content either: it is dropped (finish_reason "length" says why the answer is short).
    // Without a cut the model chose to stop there, so its text comes back as content.
    const bool drop_unnamed = cut && mode == Mode::kCallJson && !call_open;
    if (drop_unnamed) raw.clear();
    if (!buf.empty()) {
      // Whatever is left could not finish: an open call keeps what it has; else it is content.
      if (call_open) {
        EmitArgs(buf);
      } else if (mode == Mode::kCallJson) {
        if (!drop_unnamed) EmitText(raw);
      } else if (mode != Mode::kHarmonyHeader) {
        EmitText(buf);
      }
      buf.clear();
    } else if (mode == Mode::kCallJson && !call_open && !raw.empty()) {
      EmitText(raw);
    }
    raw.clear();
    if (call_open && !pending_args.empty()) EmitArgs(std::exchange(pending_args, {}));
    EndCall();
    return std::exchange(out, {});
  }
};

ToolCallParser::ToolCallParser(ToolCallFormat format, ToolParseOptions opt)
    : impl_(std::make_unique<Impl>(format, opt)) {}
ToolCallParser::~ToolCallParser() = default;
ToolCallParser::ToolCallParser(ToolCallParser&&) noexcept = default;
ToolCallParser& ToolCallParser::operator=(ToolCallParser&&) noexcept = default;
MessageDelta ToolCallParser::Push(std::string_view text) { return impl_->Push(text); }
MessageDelta ToolCallParser::Finish(bool cut) { return impl_->Finish(cut); }
const ParsedMessage& ToolCallParser::message() const { return impl_->msg; }

ParsedMessage ParseToolCalls(ToolCallFormat format, std::string_view text,
                             const ToolParseOptions& opt) {
  ToolCallParser p(format, opt);
  p.Push(text);
  p.Finish(opt.cut);
  ParsedMessage m = p.message();
  if (!m.tool_calls.empty()) {
    // Whitespace around calls is layout, not content.
    auto trim = [](std::string& s) {
      while (!s.empty() && IsWs(s.back())) s.pop_back();
      size_t i = 0;
      while (i < s.size() && IsWs(s[i])) ++i;
      s.erase(0, i);
    };
    trim(m.content);
  }
  return m;
}

// ---- forced-call grammars ----

std::shared_ptr<const Grammar> ToolCallGrammar(ToolCallFormat format, const json& tools,
                                               std::string_view forced_name, bool parallel,
                                               bool allow_think) {
  return ToolCallGrammar(format, nlohmann::ordered_json(tools), forced_name, parallel,
                         allow_think);
}

std::shared_ptr<const Grammar> ToolCallGrammar(ToolCallFormat format,
                                               const nlohmann::ordered_json& tools,
                                               std::string_view forced_name, bool parallel,
                                               bool allow_think) {
  using json = nlohmann::ordered_json;
  using B = GrammarBuilder;
  if (!tools.is_array() || tools.empty()) Fail("tools must be a non-empty array");
  GrammarBuilder b;
  JsonSchemaCompiler c(b);
  const uint32_t call = b.NewRule("call");
  bool found = false;
  for (size_t i = 0; i < tools.size(); ++i) {
    const json& t = tools[i];
    const json* fn = &t;
    if (t.is_object() && t.contains("function")) fn = &t["function"];
    if (!fn->is_object() || !fn->contains("name") || !(*fn)["name"].is_string())
      Fail("tools[{}].function.name must be a string", i);
    const std::string name = (*fn)["name"].get<std::string>();
    if (!forced_name.empty() && name != forced_name) continue;
    found = true;
    uint32_t args;
    try {
      args = fn->contains("parameters")
                 ? c.CompileRoot((*fn)["parameters"], "tool" + std::to_string(i))
                 : c.AnyObject();
    } catch (const Error& e) {
      throw Error(fmt::format("tools[{}].function.parameters: {}", i, e.what()), e.kind());
    }
    const std::string qname = json(name).dump();
    switch (format) {
      case ToolCallFormat::kHarmony:
        b.AddAlt(call, {B::Special("<|channel|>"), B::Lit("commentary to=functions." + name + " "),
                        B::Special("<|constrain|>"), B::Lit("json"), B::Special("<|message|>"),
                        B::Ref(args)});
        break;
      case ToolCallFormat::kMistralV11:
        b.AddAlt(call,
                 {B::Special("[TOOL_CALLS]"), B::Lit(name), B::Special("[ARGS]"), B::Ref(args)});
        break;
      case ToolCallFormat::kLlama3:
        b.AddAlt(call,
                 {B::Lit("{\"name\": " + qname + ", \"parameters\": "), B::Ref(args), B::Lit("}")});
        break;
      case ToolCallFormat::kMistral:
        b.AddAlt(call,
                 {B::Lit("{\"name\": " + qname + ", \"arguments\": "), B::Ref(args), B::Lit("}")});
        break;
      case ToolCallFormat::kHermes:
      // No tool syntax in the template: the generic JSON call in Hermes' tags, which the server's
      // parser reads back (DefaultHooks parses kNone templates as kHermes).
      case ToolCallFormat::kNone:
        b.AddAlt(call, {B::Lit("<tool_call>\n{\"name\": " + qname + ", \"arguments\": "),
                        B::Ref(args), B::Lit("}\n</tool_call>")});
        break;
    }
  }
  if (!found)
    Fail("tool_choice names function '{}', which is not in tools", std::string(forced_name));
  const uint32_t root = b.NewRule("root");
  // Several calls: one after another; Mistral's JSON form puts them in one array.
  const uint32_t calls = b.NewRule("calls");
  const uint32_t more = b.NewRule("more-calls");
  std::string sep = "\n";
  if (format == ToolCallFormat::kMistral) sep = ", ";
  if (format == ToolCallFormat::kLlama3) sep = "; ";
  b.AddAlt(calls, {B::Ref(call), B::Ref(more)});
  b.AddAlt(more, {});
  if (parallel && format != ToolCallFormat::kHarmony)
    b.AddAlt(more, {B::Lit(sep), B::Ref(call), B::Ref(more)});
  if (format == ToolCallFormat::kMistral) {
    b.AddAlt(root, {B::Special("[TOOL_CALLS]"), B::Lit("["), B::Ref(calls), B::Lit("]")});
  } else if ((format == ToolCallFormat::kHermes || format == ToolCallFormat::kNone) &&
             allow_think) {
    // Qwen3 may think first: an optional <think> block without '<' inside.
    const uint32_t think = b.NewRule("think");
    b.AddAlt(think,
             {B::Lit("<think>"), B::Repeat(CharClass::Of("<").Inverted(), 0, kUnbounded, true),
              B::Lit("</think>"), B::Repeat(CharClass::Of("\n "), 0, 4)});
    b.AddAlt(think, {});
    b.AddAlt(root, {B::Ref(think), B::Ref(calls)});
  } else {
    b.AddAlt(root, {B::Ref(calls)});
  }
  return b.Build(root);
}

}  // namespace origami
