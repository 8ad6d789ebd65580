// Anthropic Messages translation: request validation and mapping onto a chat body, answers back
// into content blocks, error shapes.
#include <gtest/gtest.h>

#include "server/anthropic_api.h"

namespace origami::server {
namespace {

using nlohmann::json;

json Chat(const std::string& body, bool keep = false) {
  return json::parse(TranslateAnthropicRequest(body, false, keep).chat_body);
}

int StatusOf(const std::string& body) {
  try {
    TranslateAnthropicRequest(body, false, false);
  } catch (const ApiError& e) {
    return e.status;
  }
  return 200;
}

TEST(AnthropicApi, SystemBlocksAndBillingHeader) {
  json c = Chat(R"({"model":"m","max_tokens":5,"system":[{"type":"text",
    "text":"x-anthropic-billing-header: cc_version=1; cch=abc;"},{"type":"text","text":"Be brief"}],
    "messages":[{"role":"user","content":"hi"}]})");
  EXPECT_EQ(c["messages"][0]["role"], "system");
  EXPECT_EQ(c["messages"][0]["content"], "Be brief");
  EXPECT_EQ(c["max_tokens"], 5);
  json k = json::parse(TranslateAnthropicRequest(
      R"({"model":"m","max_tokens":5,"system":"x-anthropic-billing-header: a\nB","messages":[{"role":"user","content":"hi"}]})",
      false, true).chat_body);
  EXPECT_NE(k["messages"][0]["content"].get<std::string>().find("billing"), std::string::npos);
}

TEST(AnthropicApi, ToolRoundTripMapsToChatToolMessages) {
  json c = Chat(R"({"model":"m","max_tokens":5,
    "tools":[{"name":"get","description":"d","input_schema":{"type":"object"}}],
    "tool_choice":{"type":"tool","name":"get"},
    "messages":[{"role":"user","content":"w"},
      {"role":"assistant","content":[{"type":"thinking","thinking":"hm","signature":"s"},
        {"type":"tool_use","id":"toolu_1","name":"get","input":{"a":1}}]},
      {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1",
        "content":[{"type":"text","text":"42"}],"is_error":true}]}]})");
  EXPECT_EQ(c["tools"][0]["function"]["name"], "get");
  EXPECT_EQ(c["tool_choice"]["function"]["name"], "get");
  EXPECT_EQ(c["messages"][1]["tool_calls"][0]["function"]["arguments"]["a"], 1);
  EXPECT_EQ(c["messages"][1]["reasoning_content"], "hm");
  EXPECT_EQ(c["messages"][2]["role"], "tool");
  EXPECT_EQ(c["messages"][2]["content"], "Error: 42");
}

TEST(AnthropicApi, SamplingStopsThinking) {
  json c = Chat(R"({"model":"m","max_tokens":5,"temperature":0.5,"top_k":3,"top_p":0.9,
    "stop_sequences":["END"],"metadata":{"user_id":"u"},"thinking":{"type":"disabled"},
    "tool_choice":{"type":"none"},"messages":[{"role":"user","content":"x"}]})");
  EXPECT_EQ(c["stop"][0], "END");
  EXPECT_EQ(c["top_k"], 3);
  EXPECT_EQ(c["chat_template_kwargs"]["enable_thinking"], false);
  EXPECT_EQ(c["tool_choice"], "none");
}

TEST(AnthropicApi, BadRequestsAre400) {
  const char* bad[] = {
      "{", "[]", R"({"model":"m","messages":[{"role":"user","content":"x"}]})",
      R"({"model":"m","max_tokens":0,"messages":[{"role":"user","content":"x"}]})",
      R"({"model":"m","max_tokens":"5","messages":[{"role":"user","content":"x"}]})",
      R"({"model":"m","max_tokens":5,"messages":[]})",
      R"({"model":"m","max_tokens":5,"messages":[{"role":"tool","content":"x"}]})",
      R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"image"}]}]})",
      R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"weird"}]}]})",
      R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"x"}]}]})",
      R"({"model":"m","max_tokens":5,"temperature":3,"messages":[{"role":"user","content":"x"}]})",
      R"({"model":"m","max_tokens":5,"tool_choice":{"type":"any"},"messages":[{"role":"user","content":"x"}]})",
      R"({"model":5,"max_tokens":5,"messages":[{"role":"user","content":"x"}]})",
      R"({"model":"m","max_tokens":5,"stop_sequences":"x","messages":[{"role":"user","content":"x"}]})",
  };
  for (const char* b : bad) EXPECT_EQ(StatusOf(b), 400) << b;
}

TEST(AnthropicApi, AnswerBlocksAndStopReasons) {
  json blocks = AnthropicContent(
      {{"role", "assistant"},
       {"content", "hi"},
       {"reasoning_content", "r"},
       {"tool_calls",
        json::array({{{"id", "c1"}, {"function", {{"name", "f"}, {"arguments", "{\"x\":2}"}}}}})}});
  ASSERT_EQ(blocks.size(), 3u);
  EXPECT_EQ(blocks[0]["type"], "thinking");
  EXPECT_EQ(blocks[1]["text"], "hi");
  EXPECT_EQ(blocks[2]["input"]["x"], 2);
  EXPECT_STREQ(AnthropicStopReason("length"), "max_tokens");
  EXPECT_STREQ(AnthropicStopReason("tool_calls"), "tool_use");
  EXPECT_STREQ(AnthropicStopReason("stop"), "end_turn");
  EXPECT_EQ(AnthropicErrorBody(529, "x")["error"]["type"], "overloaded_error");
  EXPECT_EQ(AnthropicErrorBody(401, "x")["type"], "error");
}

}  // namespace
}  // namespace origami::server
