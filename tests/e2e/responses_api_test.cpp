// OpenAI Responses translation: request validation and mapping onto a chat body (items, tools,
// tool_choice, text.format, reasoning, previous_response_id), the response builder's items and
// event sequence, and the response store's bounds.
#include "server/responses_api.h"

#include <gtest/gtest.h>

#include "server/response_store.h"

namespace origami::server {
namespace {

using nlohmann::json;

ResponsesTranslation Translate(const std::string& body, const ResponseHistory& h = {}) {
  return TranslateResponsesRequest(body, h);
}
json Chat(const std::string& body) { return json::parse(Translate(body).chat_body); }

ApiError ErrorOf(const std::string& body, const ResponseHistory& h = {}) {
  try {
    Translate(body, h);
  } catch (const ApiError& e) {
    return e;
  }
  return ApiError(200, "no error");
}

TEST(ResponsesApi, StringInputAndInstructions) {
  auto t = Translate(R"({"model":"m","input":"hi","instructions":"Be brief",
    "max_output_tokens":7,"temperature":0.5,"top_p":0.9,"metadata":{"k":"v"},"user":"u1"})");
  json c = json::parse(t.chat_body);
  ASSERT_EQ(c["messages"].size(), 2u);
  EXPECT_EQ(c["messages"][0], json({{"role", "system"}, {"content", "Be brief"}}));
  EXPECT_EQ(c["messages"][1], json({{"role", "user"}, {"content", "hi"}}));
  EXPECT_EQ(c["max_tokens"], 7);
  EXPECT_EQ(c["temperature"], 0.5);
  EXPECT_EQ(c["top_p"], 0.9);
  EXPECT_FALSE(t.stream);
  EXPECT_TRUE(t.store);
  EXPECT_EQ(t.echo["instructions"], "Be brief");
  EXPECT_EQ(t.echo["max_output_tokens"], 7);
  EXPECT_EQ(t.echo["metadata"]["k"], "v");
  EXPECT_EQ(t.echo["user"], "u1");
  ASSERT_EQ(t.items.size(), 1u);
  EXPECT_EQ(t.items[0]["role"], "user");
}

TEST(ResponsesApi, ItemsBecomeChatMessages) {
  json c = Chat(R"({"input":[
    {"role":"developer","content":"rules"},
    {"type":"message","role":"user","content":[{"type":"input_text","text":"a"},{"type":"input_text","text":"b"}]},
    {"type":"reasoning","id":"rs_1","summary":[{"type":"summary_text","text":"thought"}]},
    {"type":"message","role":"assistant","content":[{"type":"output_text","text":"let me look"}]},
    {"type":"function_call","call_id":"call_1","name":"get","arguments":"{\"x\":1}"},
    {"type":"function_call","call_id":"call_2","name":"get","arguments":"not json"},
    {"type":"function_call_output","call_id":"call_1","output":"one"},
    {"type":"function_call_output","call_id":"call_2","output":[{"type":"input_text","text":"two"}]}
  ],"tools":[{"type":"function","name":"get","parameters":{"type":"object"}}]})");
  const json& m = c["messages"];
  ASSERT_EQ(m.size(), 5u);
  EXPECT_EQ(m[0]["role"], "system");
  EXPECT_EQ(m[1]["content"], "ab");
  EXPECT_EQ(m[2]["role"], "assistant");
  EXPECT_EQ(m[2]["content"], "let me look");
  EXPECT_EQ(m[2]["reasoning_content"], "thought");
  ASSERT_EQ(m[2]["tool_calls"].size(), 2u);
  EXPECT_EQ(m[2]["tool_calls"][0]["id"], "call_1");
  EXPECT_EQ(m[2]["tool_calls"][0]["function"]["arguments"]["x"], 1);
  EXPECT_EQ(m[2]["tool_calls"][1]["function"]["arguments"], "not json");
  EXPECT_EQ(m[3], json({{"role", "tool"}, {"tool_call_id", "call_1"}, {"content", "one"}}));
  EXPECT_EQ(m[4]["content"], "two");
  EXPECT_EQ(c["tools"][0]["function"]["name"], "get");
}

TEST(ResponsesApi, InstructionsAndDeveloperItemsMakeOneSystemMessage) {
  json c = Chat(R"({"instructions":"A","input":[{"role":"developer","content":"B"},
    {"role":"user","content":"hi"},{"role":"system","content":"C"}]})");
  const json& m = c["messages"];
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[0], json({{"role", "system"}, {"content", "A\n\nB"}}));
  EXPECT_EQ(m[2]["role"], "system");  // a later one stays where it was
}

TEST(ResponsesApi, HostedAndCustomToolItemsInHistory) {
  json c = Chat(R"({"input":[{"role":"user","content":"go"},
    {"type":"web_search_call","id":"ws_1","status":"completed"},
    {"type":"custom_tool_call","call_id":"c1","name":"apply_patch","input":"*** Begin Patch"},
    {"type":"custom_tool_call_output","call_id":"c1","output":"done"}]})");
  const json& m = c["messages"];
  ASSERT_EQ(m.size(), 3u);  // the hosted call is skipped
  EXPECT_EQ(m[1]["tool_calls"][0]["function"]["name"], "apply_patch");
  EXPECT_EQ(m[1]["tool_calls"][0]["function"]["arguments"], "*** Begin Patch");
  EXPECT_EQ(m[2]["tool_call_id"], "c1");
}

TEST(ResponsesApi, ToolsAndToolChoice) {
  json c = Chat(R"({"input":"x","tools":[{"type":"web_search_preview"},
    {"type":"function","name":"f","description":"d","parameters":{"type":"object"},"strict":true}],
    "tool_choice":{"type":"function","name":"f"},"parallel_tool_calls":false})");
  ASSERT_EQ(c["tools"].size(), 1u);  // the hosted tool is skipped, never a 400
  EXPECT_EQ(c["tools"][0]["function"]["description"], "d");
  EXPECT_EQ(c["tool_choice"]["function"]["name"], "f");
  EXPECT_EQ(c["parallel_tool_calls"], false);
  auto t = Translate(R"({"input":"x","tools":[{"type":"web_search"}],"tool_choice":"required"})");
  json h = json::parse(t.chat_body);
  EXPECT_FALSE(h.contains("tools"));
  EXPECT_EQ(h["tool_choice"], "auto");
  EXPECT_EQ(t.echo["ignored_tools"][0], "web_search");
  EXPECT_EQ(Chat(R"({"input":"x","tools":[{"type":"function","name":"f"}],"tool_choice":"none"})")
                ["tool_choice"],
            "none");
  EXPECT_EQ(ErrorOf(R"({"input":"x","tool_choice":"required"})").param, "tool_choice");
  EXPECT_EQ(ErrorOf(R"({"input":"x","tools":[{"type":"function","name":"f"}],
    "tool_choice":{"type":"function","name":"g"}})")
                .param,
            "tool_choice.name");
}

TEST(ResponsesApi, TextFormatAndReasoning) {
  json c = Chat(R"({"input":"x","text":{"format":{"type":"json_schema","name":"p",
    "schema":{"type":"object","properties":{"a":{"type":"integer"}}},"strict":true}},
    "reasoning":{"effort":"minimal"}})");
  EXPECT_EQ(c["response_format"]["type"], "json_schema");
  EXPECT_EQ(c["response_format"]["json_schema"]["name"], "p");
  EXPECT_EQ(c["response_format"]["json_schema"]["schema"]["properties"]["a"]["type"], "integer");
  EXPECT_EQ(c["chat_template_kwargs"]["enable_thinking"], false);
  EXPECT_EQ(Chat(R"({"input":"x","reasoning":{"effort":"high"}})")["chat_template_kwargs"]
                                                                  ["enable_thinking"],
            true);
  EXPECT_EQ(
      Chat(R"({"input":"x","text":{"format":{"type":"json_object"}}})")["response_format"]["type"],
      "json_object");
  EXPECT_FALSE(
      Chat(R"({"input":"x","text":{"format":{"type":"text"}}})").contains("response_format"));
  EXPECT_EQ(ErrorOf(R"({"input":"x","text":{"format":{"type":"json_schema","name":"p"}}})").param,
            "text.format.schema");
}

TEST(ResponsesApi, PreviousResponseId) {
  json hist = json::array(
      {{{"type", "message"}, {"role", "user"}, {"content", "first"}},
       {{"type", "function_call"}, {"call_id", "c1"}, {"name", "f"}, {"arguments", "{}"}}});
  ResponseHistory h = [&](const std::string& id) -> std::optional<json> {
    if (id == "resp_1") return hist;
    return std::nullopt;
  };
  auto t = Translate(R"({"previous_response_id":"resp_1","input":[
    {"type":"function_call_output","call_id":"c1","output":"done"}]})",
                     h);
  json c = json::parse(t.chat_body);
  ASSERT_EQ(c["messages"].size(), 3u);
  EXPECT_EQ(c["messages"][0]["content"], "first");
  EXPECT_EQ(c["messages"][2]["role"], "tool");
  EXPECT_EQ(t.items.size(), 3u);
  EXPECT_EQ(t.echo["previous_response_id"], "resp_1");
  ApiError e = ErrorOf(R"({"previous_response_id":"resp_2","input":"x"})", h);
  EXPECT_EQ(e.status, 404);
  EXPECT_EQ(e.code, "previous_response_not_found");
  EXPECT_EQ(e.param, "previous_response_id");
  EXPECT_EQ(e.Body()["error"]["type"], "invalid_request_error");
}

TEST(ResponsesApi, BadRequestsName400sAndFields) {
  const std::pair<const char*, const char*> cases[] = {
      {"{", ""},
      {"[]", ""},
      {R"({})", "input"},
      {R"({"input":5})", "input"},
      {R"({"input":[]})", "input"},
      {R"({"input":[5]})", "input[0]"},
      {R"({"input":[{"role":"tool","content":"x"}]})", "input[0].role"},
      {R"({"input":[{"role":"user"}]})", "input[0].content"},
      {R"({"input":[{"role":"user","content":[{"type":"input_image","image_url":"x"}]}]})",
       "input[0].content[0]"},
      {R"({"input":[{"type":"function_call_output","call_id":"nope","output":"x"}]})",
       "input[0].call_id"},
      {R"({"input":[{"type":"function_call","name":"f","arguments":"{}"}]})", "input[0].call_id"},
      {R"({"input":[{"type":"teleport"}]})", "input[0].type"},
      {R"({"input":"x","max_output_tokens":0})", "max_output_tokens"},
      {R"({"input":"x","temperature":3})", "temperature"},
      {R"({"input":"x","stream":"yes"})", "stream"},
      {R"({"input":"x","metadata":{"k":1}})", "metadata"},
      {R"({"input":"x","tools":{}})", "tools"},
      {R"({"input":"x","tools":[{"type":"function"}]})", "tools[0].name"},
      {R"({"input":"x","reasoning":{"effort":"max"}})", "reasoning.effort"},
      {R"({"input":"x","instructions":5})", "instructions"},
      {R"({"input":"x","background":true})", "background"},
  };
  for (const auto& [body, param] : cases) {
    ApiError e = ErrorOf(body);
    EXPECT_EQ(e.status, 400) << body;
    EXPECT_EQ(e.param, param) << body;
  }
}

// The events of one response, checked the way a strict client reads them.
void CheckSequence(const std::vector<json>& ev) {
  for (size_t i = 0; i < ev.size(); ++i) EXPECT_EQ(ev[i]["sequence_number"], i);
}

TEST(ResponseBuilder, TextReasoningAndCallEvents) {
  ResponseBuilder b({{"tools", json::array()}}, "resp_abc", 5, "m");
  std::vector<json> ev = b.Start();
  auto add = [&](const std::vector<json>& v) { ev.insert(ev.end(), v.begin(), v.end()); };
  add(b.Push({{"reasoning_content", "hmm"}}));
  add(b.Push({{"content", "Hel"}}));
  add(b.Push({{"content", "lo"}}));
  add(b.Push({{"tool_calls",
               {{{"index", 0},
                 {"id", "call_9"},
                 {"type", "function"},
                 {"function", {{"name", "f"}, {"arguments", ""}}}}}}}));
  add(b.Push({{"tool_calls", {{{"index", 0}, {"function", {{"arguments", "{\"a\":"}}}}}}}));
  add(b.Push({{"tool_calls", {{{"index", 0}, {"function", {{"arguments", "1}"}}}}}}}));
  add(b.Finish("tool_calls", ResponsesUsage(10, 4, 6, 2)));
  CheckSequence(ev);
  std::vector<std::string> types;
  for (const json& e : ev) types.push_back(e["type"]);
  const std::vector<std::string> want = {"response.created",
                                         "response.in_progress",
                                         "response.output_item.added",
                                         "response.content_part.added",
                                         "response.reasoning_text.delta",
                                         "response.reasoning_text.done",
                                         "response.content_part.done",
                                         "response.output_item.done",
                                         "response.output_item.added",
                                         "response.content_part.added",
                                         "response.output_text.delta",
                                         "response.output_text.delta",
                                         "response.output_text.done",
                                         "response.content_part.done",
                                         "response.output_item.done",
                                         "response.output_item.added",
                                         "response.function_call_arguments.delta",
                                         "response.function_call_arguments.delta",
                                         "response.function_call_arguments.done",
                                         "response.output_item.done",
                                         "response.completed"};
  EXPECT_EQ(types, want);
  const json& r = b.response();
  EXPECT_EQ(r["status"], "completed");
  ASSERT_EQ(r["output"].size(), 3u);
  EXPECT_EQ(r["output"][0]["type"], "reasoning");
  EXPECT_EQ(r["output"][0]["content"][0]["text"], "hmm");
  EXPECT_EQ(r["output"][1]["content"][0]["text"], "Hello");
  EXPECT_EQ(r["output"][1]["content"][0]["annotations"], json::array());
  EXPECT_EQ(r["output"][2]["call_id"], "call_9");
  EXPECT_EQ(r["output"][2]["arguments"], "{\"a\":1}");
  EXPECT_EQ(ev[16]["output_index"], 2);
  EXPECT_EQ(ev[16]["item_id"], r["output"][2]["id"]);
  EXPECT_EQ(r["usage"]["total_tokens"], 16);
  EXPECT_EQ(r["usage"]["input_tokens_details"]["cached_tokens"], 4);
  EXPECT_EQ(r["usage"]["output_tokens_details"]["reasoning_tokens"], 2);
  EXPECT_EQ(b.reasoning_text(), "hmm");
  EXPECT_EQ(ev.back()["response"], r);
}

TEST(ResponseBuilder, LengthCutIsIncomplete) {
  ResponseBuilder b(json::object(), "resp_x", 1, "m");
  std::vector<json> ev = b.Start();
  auto add = [&](const std::vector<json>& v) { ev.insert(ev.end(), v.begin(), v.end()); };
  add(b.Push({{"content", "abc"}}));
  add(b.Finish("length", ResponsesUsage(3, 0, 2, 0)));
  CheckSequence(ev);
  EXPECT_EQ(ev.back()["type"], "response.incomplete");
  EXPECT_EQ(b.response()["status"], "incomplete");
  EXPECT_EQ(b.response()["incomplete_details"]["reason"], "max_output_tokens");
  EXPECT_EQ(b.response()["output"][0]["status"], "incomplete");
  ResponseBuilder f(json::object(), "resp_y", 1, "m");
  f.Start();
  EXPECT_EQ(f.Fail("boom").back()["type"], "response.failed");
  EXPECT_EQ(f.response()["error"]["code"], "server_error");
}

TEST(ResponseStore, BoundsCountBytesAndAge) {
  using C = ResponseStore::Clock;
  const C::time_point t0 = C::now();
  ResponseStore s({3, 1u << 20, std::chrono::seconds(10)});
  for (int i = 0; i < 4; ++i) s.Put("r" + std::to_string(i), {json{{"i", i}}, json::array()}, t0);
  EXPECT_EQ(s.size(), 3u);
  EXPECT_FALSE(s.Get("r0", t0));  // least recently used went first
  EXPECT_TRUE(s.Get("r1", t0));   // r1 is now the most recent
  s.Put("r4", {json::object(), json::array()}, t0);
  EXPECT_TRUE(s.Get("r1", t0));
  EXPECT_FALSE(s.Get("r2", t0));
  EXPECT_FALSE(s.Get("r1", t0 + std::chrono::seconds(11)));  // expired
  EXPECT_TRUE(s.Erase("r3"));
  EXPECT_FALSE(s.Erase("r3"));
  ResponseStore tiny({10, 64, std::chrono::seconds(10)});
  tiny.Put("big", {json{{"x", std::string(100, 'a')}}, json::array()}, t0);
  EXPECT_EQ(tiny.size(), 0u);
  tiny.Put("a", {json{{"x", std::string(25, 'a')}}, json::array()}, t0);
  tiny.Put("b", {json{{"x", std::string(25, 'a')}}, json::array()}, t0);
  EXPECT_EQ(tiny.size(), 1u);  // two would exceed 64 bytes
  EXPECT_LE(tiny.bytes(), 64u);
  EXPECT_TRUE(tiny.Get("b", t0));
}

// input_items: the conversation before the response's own output, paged as OpenAI lists do.
TEST(ResponseStore, InputItemsPages) {
  StoredResponse r;
  r.items = json::array();
  for (int i = 0; i < 5; ++i)
    r.items.push_back({{"type", "message"}, {"role", "user"}, {"content", std::to_string(i)}});
  r.items[2]["id"] = "msg_client";
  r.items.push_back({{"type", "message"}, {"role", "assistant"}, {"id", "msg_out"}});
  r.response = {{"output", json::array({r.items.back()})}};
  using Q = std::multimap<std::string, std::string>;
  auto contents = [](const json& page) {
    std::string s;
    for (const json& it : page["data"]) s += it["content"][0]["text"].get<std::string>();
    return s;
  };
  json all = InputItemsPage(r, "resp_1", {});
  EXPECT_EQ(all["object"], "list");
  EXPECT_EQ(contents(all), "43210");  // newest first by default; the output is not an input
  EXPECT_FALSE(all["has_more"].get<bool>());
  EXPECT_EQ(all["data"][2]["id"], "msg_client");  // the client's id is kept
  EXPECT_EQ(all["first_id"], "msg_resp_1_4");
  EXPECT_EQ(all["data"][0]["status"], "completed");
  EXPECT_EQ(all["data"][0]["content"][0]["type"], "input_text");  // a string became a text part
  json p1 = InputItemsPage(r, "resp_1", Q{{"order", "asc"}, {"limit", "2"}});
  EXPECT_EQ(contents(p1), "01");
  EXPECT_TRUE(p1["has_more"].get<bool>());
  json p2 = InputItemsPage(r, "resp_1", Q{{"order", "asc"}, {"limit", "2"}, {"after", p1["last_id"]}});
  EXPECT_EQ(contents(p2), "23");  // the next page of two
  EXPECT_EQ(p2["first_id"], "msg_client");
  EXPECT_EQ(contents(InputItemsPage(r, "resp_1", Q{{"order", "asc"}, {"after", "msg_client"}})),
            "34");
  json back = InputItemsPage(r, "resp_1", Q{{"order", "asc"}, {"limit", "2"}, {"before", "msg_resp_1_4"}});
  EXPECT_EQ(contents(back), "23");
  EXPECT_TRUE(back["has_more"].get<bool>());
  for (const Q& bad : {Q{{"limit", "0"}}, Q{{"limit", "101"}}, Q{{"limit", "x"}},
                       Q{{"order", "up"}}, Q{{"after", "nope"}}, Q{{"after", "a"}, {"before", "b"}}}) {
    try {
      InputItemsPage(r, "resp_1", bad);
      ADD_FAILURE() << "accepted " << bad.begin()->first << "=" << bad.begin()->second;
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status, 400);
    }
  }
}

}  // namespace
}  // namespace origami::server
