// ToolDeltaBuilder: ToolCallParser's deltas in OpenAI's chunk shape.
#include "server/tool_deltas.h"

namespace origami::server {

using nlohmann::json;

namespace {

bool IsWs(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

}  // namespace

ToolDeltaBuilder::ToolDeltaBuilder(ToolCallFormat format, ToolParseOptions opt)
    : parser_(format, opt), max_calls_(opt.max_calls) {}

std::vector<json> ToolDeltaBuilder::Push(std::string_view text) {
  return Convert(parser_.Push(text), false);
}

std::vector<json> ToolDeltaBuilder::Finish(bool cut) { return Convert(parser_.Finish(cut), true); }

// Whitespace around calls is layout, not content (ParseToolCalls trims it too): leading
// whitespace is dropped and trailing whitespace is held until more content follows; at the end it
// is dropped beside calls and sent otherwise. Holding only whitespace keeps streaming prompt.
std::string ToolDeltaBuilder::TakeContent(std::string_view s, bool final) {
  if (!content_started_) {
    size_t i = 0;
    while (i < s.size() && IsWs(s[i])) ++i;
    s.remove_prefix(i);
    if (!s.empty()) content_started_ = true;
  }
  std::string out;
  size_t end = s.size();
  while (end > 0 && IsWs(s[end - 1])) --end;
  if (end > 0) {
    out = std::exchange(held_ws_, {});
    out.append(s.substr(0, end));
  }
  held_ws_.append(s.substr(end));
  if (final && calls_.empty()) out += std::exchange(held_ws_, {});
  return out;
}

std::vector<json> ToolDeltaBuilder::Convert(const MessageDelta& d, bool final) {
  std::vector<json> out;
  if (!d.reasoning_content.empty()) {
    reasoning_ += d.reasoning_content;
    out.push_back({{"reasoning_content", d.reasoning_content}});
  }
  // Content first: within one piece of text it precedes a call far more often than it follows
  // one, and a client accumulates content and calls apart anyway.
  const std::string content = TakeContent(d.content, false);
  if (!content.empty()) {
    content_ += content;
    out.push_back({{"content", content}});
  }
  for (const ToolCallDelta& tc : d.tool_calls) {
    if (max_calls_ > 0 && tc.index >= max_calls_) continue;  // parallel_tool_calls false
    if (tc.index == calls_.size() && !tc.name.empty()) {
      calls_.push_back({{"id", tc.id},
                        {"type", "function"},
                        {"function", {{"name", tc.name}, {"arguments", ""}}}});
      out.push_back(
          {{"tool_calls", json::array({{{"index", tc.index},
                                        {"id", tc.id},
                                        {"type", "function"},
                                        {"function", {{"name", tc.name}, {"arguments", ""}}}}})}});
    }
    // The parser opens a call (with its name) before any of its arguments; a piece for a call
    // that was never opened cannot be shown to a client and is dropped.
    if (tc.index >= calls_.size() || tc.arguments.empty()) continue;
    calls_[tc.index]["function"]["arguments"] =
        calls_[tc.index]["function"]["arguments"].get<std::string>() + tc.arguments;
    out.push_back({{"tool_calls", json::array({{{"index", tc.index},
                                                {"function", {{"arguments", tc.arguments}}}}})}});
  }
  if (final) {
    // Held trailing whitespace: sent when the answer has no calls (see TakeContent).
    const std::string rest = TakeContent({}, true);
    if (!rest.empty()) {
      content_ += rest;
      out.push_back({{"content", rest}});
    }
  }
  return out;
}

json ToolDeltaBuilder::Message() const {
  json m = {{"role", "assistant"}, {"content", content_}};
  if (!reasoning_.empty()) m["reasoning_content"] = reasoning_;
  if (!calls_.empty()) {
    if (content_.empty()) m["content"] = nullptr;
    m["tool_calls"] = calls_;
  }
  return m;
}

}  // namespace origami::server
