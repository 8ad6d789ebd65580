// ResponseBuilder: the chat path's deltas become Responses output items and the streamed events
// that announce, fill and close them, in the order the Agents SDK and Codex read them.
#include <fmt/format.h>

#include "server/responses_api.h"

namespace origami::server {

using nlohmann::json;

ResponseBuilder::ResponseBuilder(json echo, std::string id, int64_t created_at, std::string model)
    : id_(std::move(id)) {
  response_ = {{"id", id_},
               {"object", "response"},
               {"created_at", created_at},
               {"status", "in_progress"},
               {"background", false},
               {"error", nullptr},
               {"incomplete_details", nullptr},
               {"model", std::move(model)},
               {"output", json::array()},
               {"usage", nullptr}};
  for (auto& [k, v] : echo.items()) response_[k] = v;
}

json ResponseBuilder::Event(const char* type, json fields) {
  json e = {{"type", type}, {"sequence_number", seq_++}};
  for (auto& [k, v] : fields.items()) e[k] = std::move(v);
  return e;
}

std::string ResponseBuilder::NextItemId(const char* prefix) {
  // Item ids carry the response id, so they are unique across responses too.
  return fmt::format("{}_{}_{}", prefix, id_.substr(id_.find('_') + 1), items_made_++);
}

std::vector<json> ResponseBuilder::Start() {
  std::vector<json> out;
  out.push_back(Event("response.created", {{"response", response_}}));
  out.push_back(Event("response.in_progress", {{"response", response_}}));
  return out;
}

void ResponseBuilder::Open(Kind kind, std::vector<json>& out, const json& call) {
  json item;
  if (kind == Kind::kMessage) {
    item = {{"id", NextItemId("msg")},
            {"type", "message"},
            {"status", "in_progress"},
            {"role", "assistant"},
            {"content", json::array()}};
  } else if (kind == Kind::kReasoning) {
    item = {{"id", NextItemId("rs")},
            {"type", "reasoning"},
            {"summary", json::array()},
            {"content", json::array()}};
  } else {
    const json& f = call.value("function", json::object());
    item = {{"id", NextItemId("fc")},
            {"type", "function_call"},
            {"status", "in_progress"},
            {"call_id", call.value("id", std::string())},
            {"name", f.value("name", std::string())},
            {"arguments", ""}};
  }
  const size_t index = response_["output"].size();
  out.push_back(Event("response.output_item.added", {{"output_index", index}, {"item", item}}));
  const std::string item_id = item["id"];
  response_["output"].push_back(std::move(item));
  open_ = kind;
  text_.clear();
  if (kind == Kind::kFunctionCall) return;
  const json part =
      kind == Kind::kMessage
          ? json{{"type", "output_text"}, {"text", ""}, {"annotations", json::array()}}
          : json{{"type", "reasoning_text"}, {"text", ""}};
  out.push_back(
      Event("response.content_part.added",
            {{"item_id", item_id}, {"output_index", index}, {"content_index", 0}, {"part", part}}));
}

void ResponseBuilder::Close(std::vector<json>& out, const char* status) {
  if (open_ == Kind::kNone) return;
  const size_t index = response_["output"].size() - 1;
  json& item = response_["output"][index];
  const std::string item_id = item["id"];
  if (open_ == Kind::kFunctionCall) {
    item["arguments"] = text_;
    item["status"] = status;
    out.push_back(Event("response.function_call_arguments.done", {{"item_id", item_id},
                                                                  {"output_index", index},
                                                                  {"name", item["name"]},
                                                                  {"arguments", text_}}));
  } else {
    const bool msg = open_ == Kind::kMessage;
    const json part =
        msg ? json{{"type", "output_text"}, {"text", text_}, {"annotations", json::array()}}
            : json{{"type", "reasoning_text"}, {"text", text_}};
    json done = {
        {"item_id", item_id}, {"output_index", index}, {"content_index", 0}, {"text", text_}};
    if (msg) done["logprobs"] = json::array();
    out.push_back(Event(msg ? "response.output_text.done" : "response.reasoning_text.done", done));
    out.push_back(Event(
        "response.content_part.done",
        {{"item_id", item_id}, {"output_index", index}, {"content_index", 0}, {"part", part}}));
    item["content"] = json::array({part});
    if (msg) item["status"] = status;
  }
  out.push_back(Event("response.output_item.done", {{"output_index", index}, {"item", item}}));
  open_ = Kind::kNone;
  text_.clear();
}

std::vector<json> ResponseBuilder::Push(const json& d) {
  std::vector<json> out;
  auto text_delta = [&](Kind kind, const std::string& s) {
    if (s.empty()) return;
    if (open_ != kind) {
      Close(out, "completed");
      Open(kind, out);
    }
    text_ += s;
    if (kind == Kind::kReasoning) reasoning_ += s;
    const size_t index = response_["output"].size() - 1;
    json e = {{"item_id", response_["output"][index]["id"]},
              {"output_index", index},
              {"content_index", 0},
              {"delta", s}};
    if (kind == Kind::kMessage) e["logprobs"] = json::array();
    out.push_back(Event(
        kind == Kind::kMessage ? "response.output_text.delta" : "response.reasoning_text.delta",
        e));
  };
  if (d.contains("reasoning_content") && d["reasoning_content"].is_string())
    text_delta(Kind::kReasoning, d["reasoning_content"].get<std::string>());
  if (d.contains("content") && d["content"].is_string())
    text_delta(Kind::kMessage, d["content"].get<std::string>());
  if (d.contains("tool_calls") && d["tool_calls"].is_array()) {
    for (const json& c : d["tool_calls"]) {
      // A call's first delta carries its id and name; later ones only argument text.
      if (c.contains("id") || open_ != Kind::kFunctionCall) {
        Close(out, "completed");
        Open(Kind::kFunctionCall, out, c);
      }
      const json& f = c.value("function", json::object());
      if (!f.contains("arguments") || !f["arguments"].is_string()) continue;
      const std::string a = f["arguments"];
      if (a.empty()) continue;
      text_ += a;
      const size_t index = response_["output"].size() - 1;
      out.push_back(Event(
          "response.function_call_arguments.delta",
          {{"item_id", response_["output"][index]["id"]}, {"output_index", index}, {"delta", a}}));
    }
  }
  return out;
}

std::vector<json> ResponseBuilder::Finish(const std::string& finish_reason, const json& usage) {
  std::vector<json> out;
  const bool cut = finish_reason == "length";
  Close(out, cut ? "incomplete" : "completed");
  response_["status"] = cut ? "incomplete" : "completed";
  if (cut) response_["incomplete_details"] = {{"reason", "max_output_tokens"}};
  response_["usage"] = usage;
  out.push_back(
      Event(cut ? "response.incomplete" : "response.completed", {{"response", response_}}));
  return out;
}

std::vector<json> ResponseBuilder::Fail(const std::string& message) {
  std::vector<json> out;
  Close(out, "incomplete");
  response_["status"] = "failed";
  response_["error"] = {{"code", "server_error"}, {"message", message}};
  out.push_back(Event("response.failed", {{"response", response_}}));
  return out;
}

}  // namespace origami::server
