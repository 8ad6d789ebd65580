// Server pieces without sockets: stop strings split across pieces, request validation, the
// constant-time key comparison, a decoder reranker's prompt.
#include <gtest/gtest.h>

#include "server/api.h"
#include "server/rerank.h"
#include "server/server.h"
#include "server/stop_filter.h"

namespace origami::server {
namespace {

std::string Feed(StopFilter& f, std::initializer_list<const char*> pieces) {
  std::string out;
  for (const char* p : pieces) out += f.Push(p);
  return out + f.Flush();
}

TEST(StopFilter, StopSplitAcrossPiecesIsNeverEmitted) {
  StopFilter f({"END"});
  EXPECT_EQ(Feed(f, {"hello E", "N", "D world"}), "hello ");
  EXPECT_TRUE(f.stopped());
}

TEST(StopFilter, HeldPrefixIsReleasedWhenItDoesNotComplete) {
  StopFilter f({"END"});
  EXPECT_EQ(f.Push("abc E"), "abc ");
  EXPECT_EQ(f.Push("Nx"), "ENx");
  EXPECT_EQ(f.Flush(), "");
  EXPECT_FALSE(f.stopped());
}

TEST(StopFilter, EarliestOfSeveralStops) {
  StopFilter f({"world", "lo"});
  EXPECT_EQ(Feed(f, {"hello world"}), "hel");
}

TEST(StopFilter, NoStopsPassesEverything) {
  StopFilter f({});
  EXPECT_EQ(Feed(f, {"a", "b"}), "ab");
}

TEST(Api, ValidRequestWithExtensions) {
  ApiRequest r = ParseRequest(
      R"({"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0,"top_k":5,"min_p":0.1,
          "max_completion_tokens":7,"stop":"x","seed":3,"logit_bias":{"12":-100},"unknown":1})",
      Endpoint::kChat, 8);
  EXPECT_EQ(r.sampling.temperature, 0.0f);
  EXPECT_EQ(r.sampling.top_k, 5);
  EXPECT_EQ(*r.max_tokens, 7);
  ASSERT_EQ(r.stop.size(), 1u);
  EXPECT_TRUE(r.seed_given);
  ASSERT_EQ(r.logit_bias.size(), 1u);
  EXPECT_EQ(r.logit_bias[0].first, 12);
}

TEST(Api, BadFieldsNameTheParam) {
  auto param_of = [](const char* body) {
    try {
      ParseRequest(body, Endpoint::kChat, 8);
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status, 400);
      return e.param;
    }
    return std::string("accepted");
  };
  EXPECT_EQ(param_of(R"({"messages":[{"role":"user","content":"x"}],"temperature":2.01})"),
            "temperature");
  EXPECT_EQ(
      param_of(R"({"messages":[{"role":"user","content":"x"}],"stop":["a","b","c","d","e"]})"),
      "stop");
  EXPECT_EQ(param_of(R"({"messages":[{"role":"bot","content":"x"}]})"), "messages[0].role");
  EXPECT_EQ(param_of(R"({"messages":[]})"), "messages");
  EXPECT_EQ(param_of(R"({"messages":[{"role":"user","content":"x"}],"n":0})"), "n");
}

TEST(Api, ErrorBodyShape) {
  nlohmann::json j = ErrorBody(400, "bad", "temperature", "invalid_value");
  EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  EXPECT_EQ(j["error"]["param"], "temperature");
  EXPECT_TRUE(ErrorBody(401, "no")["error"]["param"].is_null());
}

TEST(Auth, ConstantTimeEquals) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abcd"));
  EXPECT_FALSE(ConstantTimeEquals("", "a"));
}

TEST(RerankPrompt, FileTemplateGetsQueryAndDocument) {
  EXPECT_EQ(RerankPrompt("Q={query};D={document};Q again={query}", "what", "doc"), "Q=what;D=doc;Q again=what");
}

TEST(RerankPrompt, PlaceholdersInsideTheTextsAreLeftAlone) {
  // One pass over the template: a query that spells {document} is text, not a second slot.
  EXPECT_EQ(RerankPrompt("<{query}|{document}>", "{document}", "{query}"), "<{document}|{query}>");
}

TEST(RerankPrompt, NoTemplateUsesQwen3RerankersFormat) {
  const std::string p = RerankPrompt("", "capital of france", "paris");
  EXPECT_EQ(p,
            "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the "
            "Instruct provided. Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n<|im_start|>user\n"
            "<Instruct>: Given a web search query, retrieve relevant passages that answer the query\n<Query>: "
            "capital of france\n<Document>: paris<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
}

}  // namespace
}  // namespace origami::server
