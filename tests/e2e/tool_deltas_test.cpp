// ToolDeltaBuilder: streamed chat deltas in OpenAI's shape for each tool-call syntax (Llama 3,
// Hermes/Qwen, Mistral, Mistral v11, gpt-oss harmony). The oracle is the message written out by
// hand per case; every split of the text into two pieces, and one byte at a time, must give
// exactly that message, both as the deltas a client accumulates and as Message().
#include "server/tool_deltas.h"

#include <gtest/gtest.h>

#include <set>

namespace origami::server {
namespace {

using nlohmann::json;

// Applies deltas as an OpenAI client does (content and reasoning concatenated; a tool call opened
// by a delta with id, type and name, then arguments appended by index), checking each delta's
// shape on the way.
json Accumulate(const std::vector<json>& deltas, size_t* argument_pieces = nullptr) {
  json m = {{"content", ""}, {"reasoning_content", ""}, {"tool_calls", json::array()}};
  for (const json& d : deltas) {
    EXPECT_EQ(d.size(), 1u) << d.dump();
    if (d.contains("content")) {
      EXPECT_FALSE(d["content"].get<std::string>().empty()) << "no empty content deltas";
      m["content"] = m["content"].get<std::string>() + d["content"].get<std::string>();
    } else if (d.contains("reasoning_content")) {
      m["reasoning_content"] =
          m["reasoning_content"].get<std::string>() + d["reasoning_content"].get<std::string>();
    } else {
      EXPECT_TRUE(d.contains("tool_calls")) << d.dump();
      if (!d.contains("tool_calls")) continue;
      EXPECT_EQ(d["tool_calls"].size(), 1u);
      const json& tc = d["tool_calls"][0];
      const size_t index = tc["index"].get<size_t>();
      json& calls = m["tool_calls"];
      if (tc.contains("id")) {
        // A call's first delta: index, id, type, name, empty arguments.
        EXPECT_EQ(index, calls.size()) << "calls open in order";
        EXPECT_EQ(tc["type"], "function");
        EXPECT_FALSE(tc["function"]["name"].get<std::string>().empty());
        EXPECT_EQ(tc["function"]["arguments"], "");
        calls.push_back({{"id", tc["id"]}, {"name", tc["function"]["name"]}, {"arguments", ""}});
      } else {
        EXPECT_LT(index, calls.size()) << "arguments for a call that was opened";
        if (index >= calls.size()) continue;
        EXPECT_FALSE(tc["function"].contains("name"));
        const std::string piece = tc["function"]["arguments"].get<std::string>();
        EXPECT_FALSE(piece.empty());
        calls[index]["arguments"] = calls[index]["arguments"].get<std::string>() + piece;
        if (argument_pieces) ++*argument_pieces;
      }
    }
  }
  return m;
}

// Message() in the accumulated layout, to compare with the deltas.
json Flatten(const json& msg) {
  json m = {{"content", msg["content"].is_null() ? "" : msg["content"].get<std::string>()},
            {"reasoning_content", msg.value("reasoning_content", "")},
            {"tool_calls", json::array()}};
  if (msg.contains("tool_calls"))
    for (const json& c : msg["tool_calls"])
      m["tool_calls"].push_back({{"id", c["id"]},
                                 {"name", c["function"]["name"]},
                                 {"arguments", c["function"]["arguments"]}});
  return m;
}

struct Case {
  ToolCallFormat format;
  std::string text;
  std::string content, reasoning;
  std::vector<std::pair<std::string, std::string>> calls;  // name, arguments text exactly
};

// Pushes the pieces, finishes, and checks the accumulated deltas against the case and against
// the builder's own Message().
json Run(const Case& c, const std::vector<std::string_view>& pieces,
         size_t* argument_pieces = nullptr) {
  ToolParseOptions opt;
  opt.id_seed = 42;
  ToolDeltaBuilder b(c.format, opt);
  std::vector<json> deltas;
  for (std::string_view p : pieces)
    for (json& d : b.Push(p)) deltas.push_back(std::move(d));
  for (json& d : b.Finish()) deltas.push_back(std::move(d));
  const json m = Accumulate(deltas, argument_pieces);
  EXPECT_EQ(m, Flatten(b.Message())) << "deltas and Message() agree";
  EXPECT_EQ(b.has_tool_calls(), !c.calls.empty());
  return m;
}

const std::vector<std::string> kMarkers = {
    "<tool_call>", "</tool_call>",  "<|python_tag|>", "[TOOL_CALLS]", "[ARGS]",     "<|channel|>",
    "<|message|>", "<|call|>",      "<|end|>",        "<|start|>",    "<|im_end|>", "<|eot_id|>",
    "<|eom_id|>",  "<|constrain|>", "</s>",           "<think>",      "</think>"};

void CheckMessage(const Case& c, const json& m, const std::string& how) {
  SCOPED_TRACE(how);
  EXPECT_EQ(m["content"], c.content);
  EXPECT_EQ(m["reasoning_content"], c.reasoning);
  ASSERT_EQ(m["tool_calls"].size(), c.calls.size());
  std::set<std::string> ids;
  for (size_t i = 0; i < c.calls.size(); ++i) {
    EXPECT_EQ(m["tool_calls"][i]["name"], c.calls[i].first);
    EXPECT_EQ(m["tool_calls"][i]["arguments"], c.calls[i].second);
    if (json::accept(c.calls[i].second)) {  // a call cut off by the length limit is not JSON yet
      EXPECT_TRUE(json::accept(m["tool_calls"][i]["arguments"].get<std::string>()));
    }
    ids.insert(m["tool_calls"][i]["id"].get<std::string>());
  }
  EXPECT_EQ(ids.size(), c.calls.size()) << "distinct call ids";
  for (const auto& marker : kMarkers)
    EXPECT_EQ(m["content"].get<std::string>().find(marker), std::string::npos)
        << marker << " leaked into content";
}

// args_stream: arguments written after the name stream as they come; written before it they
// wait for the name and arrive in one piece.
void CheckEverySplit(const Case& c, bool args_stream = true) {
  SCOPED_TRACE(std::string(ToolCallFormatName(c.format)) + ": " + c.text);
  const std::string_view text = c.text;
  const json whole = Run(c, {text});
  CheckMessage(c, whole, "whole text");
  for (size_t k = 0; k <= text.size(); ++k) {
    const json m = Run(c, {text.substr(0, k), text.substr(k)});
    CheckMessage(c, m, "split at byte " + std::to_string(k));
    EXPECT_EQ(m, whole) << "split at byte " << k << " (ids included)";
  }
  std::vector<std::string_view> bytes;
  for (size_t i = 0; i < text.size(); ++i) bytes.push_back(text.substr(i, 1));
  size_t argument_pieces = 0;
  const json m = Run(c, bytes, &argument_pieces);
  CheckMessage(c, m, "one byte at a time");
  EXPECT_EQ(m, whole);
  // Streamed, arguments arrive as the model writes them, not in one piece at the end.
  size_t long_args = 0;
  for (const auto& [name, args] : c.calls) long_args += args.size() > 2;
  if (args_stream && long_args > 0) {
    EXPECT_GT(argument_pieces, c.calls.size());
  }
}

TEST(ToolDeltas, Llama3) {
  const auto f = ToolCallFormat::kLlama3;
  CheckEverySplit({f,
                   "<|python_tag|>{\"name\": \"get_weather\", \"parameters\": {\"city\": "
                   "\"Paris\"}}<|eom_id|>",
                   "",
                   "",
                   {{"get_weather", "{\"city\": \"Paris\"}"}}});
  // A bare call (Llama 3.2), a brace inside a string, two calls separated by ';'.
  CheckEverySplit({f,
                   "{\"name\": \"f\", \"parameters\": {\"a\": [1, {\"b\": \"}\"}]}}; {\"name\": "
                   "\"g\", \"parameters\": {}}",
                   "",
                   "",
                   {{"f", "{\"a\": [1, {\"b\": \"}\"}]}"}, {"g", "{}"}}});
  CheckEverySplit({f, "Hello {world}!<|eot_id|>", "Hello {world}!", "", {}});
}

TEST(ToolDeltas, HermesAndQwen) {
  const auto f = ToolCallFormat::kHermes;
  CheckEverySplit({f,
                   "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
                   "{\"city\": \"Pa\\\"ris}\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"noop\", "
                   "\"arguments\": {}}\n</tool_call><|im_end|>",
                   "Let me check.",
                   "",
                   {{"get_weather", "{\"city\": \"Pa\\\"ris}\"}"}, {"noop", "{}"}}});
  // Qwen3 thinks first; the think block goes to reasoning_content.
  CheckEverySplit(
      {f,
       "<think>\nThe user wants weather.\n</think>\n\n<tool_call>\n{\"name\": "
       "\"get_weather\", \"arguments\": {\"city\": \"Oslo\", \"days\": 3}}\n</tool_call>",
       "",
       "\nThe user wants weather.\n",
       {{"get_weather", "{\"city\": \"Oslo\", \"days\": 3}"}}});
  // Arguments written before the name still stream once the name is known.
  CheckEverySplit({f,
                   "<tool_call>{\"arguments\": {\"x\": 1}, \"name\": \"late\"}</tool_call>",
                   "",
                   "",
                   {{"late", "{\"x\": 1}"}}},
                  /*args_stream=*/false);
  // No call: content keeps inner whitespace and loses only the answer's leading whitespace.
  CheckEverySplit({f, "\n\nIt is <b>sunny</b>.\n", "It is <b>sunny</b>.\n", "", {}});
}

// parallel_tool_calls false: the model wrote two calls, the client sees the first only, in the
// stream and in the message alike.
TEST(ToolDeltas, OneCallWhenParallelCallsAreOff) {
  ToolParseOptions po;
  po.max_calls = 1;
  ToolDeltaBuilder b(ToolCallFormat::kHermes, po);
  std::vector<json> deltas = b.Push(
      "<tool_call>\n{\"name\": \"a\", \"arguments\": {\"x\": 1}}\n</tool_call>\n"
      "<tool_call>\n{\"name\": \"b\", \"arguments\": {}}\n</tool_call>");
  for (json& d : b.Finish()) deltas.push_back(std::move(d));
  const json m = Accumulate(deltas);
  ASSERT_EQ(m["tool_calls"].size(), 1u);
  EXPECT_EQ(m["tool_calls"][0]["name"], "a");
  EXPECT_EQ(m["tool_calls"][0]["arguments"], "{\"x\": 1}");
  EXPECT_EQ(m["content"], "");
  ASSERT_EQ(b.Message()["tool_calls"].size(), 1u);
  // Unbounded (the default): both.
  ToolDeltaBuilder all(ToolCallFormat::kHermes, ToolParseOptions{});
  all.Push("<tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call><tool_call>{\"name\": "
           "\"b\", \"arguments\": {}}</tool_call>");
  all.Finish();
  EXPECT_EQ(all.Message()["tool_calls"].size(), 2u);
}

TEST(ToolDeltas, Mistral) {
  CheckEverySplit(
      {ToolCallFormat::kMistral,
       "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": "
       "\"Paris\"}, \"id\": \"abc123xyz\"}, {\"name\": \"noop\", \"arguments\": {}}]</s>",
       "",
       "",
       {{"get_weather", "{\"city\": \"Paris\"}"}, {"noop", "{}"}}});
  CheckEverySplit({ToolCallFormat::kMistralV11,
                   "Checking.[TOOL_CALLS]get_weather[ARGS]{\"city\": \"[ARGS]\"}",
                   "Checking.",
                   "",
                   {{"get_weather", "{\"city\": \"[ARGS]\"}"}}});
}

TEST(ToolDeltas, Harmony) {
  const auto f = ToolCallFormat::kHarmony;
  CheckEverySplit({f,
                   "<|channel|>analysis<|message|>Need the weather.<|end|><|start|>assistant<|"
                   "channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"
                   "\"city\": \"Paris\"}<|call|>",
                   "",
                   "Need the weather.",
                   {{"get_weather", "{\"city\": \"Paris\"}"}}});
  CheckEverySplit({f, "<|channel|>final<|message|>It is sunny.<|return|>", "It is sunny.", "", {}});
}

TEST(ToolDeltas, CallCutOffByLengthKeepsWhatItHas) {
  // The length limit hit mid-arguments: the call is still reported (finish_reason says length).
  CheckEverySplit({ToolCallFormat::kHermes,
                   "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": [1, 2",
                   "",
                   "",
                   {{"f", "{\"a\": [1, 2"}}});
}

}  // namespace
}  // namespace origami::server
