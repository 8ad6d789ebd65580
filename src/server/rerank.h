// Reranking on the server: POST /v1/rerank (and the /rerank, /v1/reranking aliases) for a
// cross-encoder model (an encoder whose pooling type is rank) or a decoder reranker
// (Qwen3-Reranker: a prompt per pair, yes/no head at its last token).
#pragma once

#include <string>
#include <string_view>

namespace httplib {
struct Response;
}

namespace origami::server {

struct ServerState;

// Qwen3-Reranker's documented prompt, with {query} and {document} where the pair goes.
extern const char* const kQwen3RerankTemplate;

// A decoder reranker's prompt for one pair: `tmpl` (the GGUF's rerank template, or
// kQwen3RerankTemplate when empty) with every {query} and {document} replaced by the texts, which
// are inserted verbatim (a placeholder spelled inside the query is not substituted again).
std::string RerankPrompt(std::string_view tmpl, std::string_view query, std::string_view document);

// Scores every document against the query and answers the results sorted by relevance_score,
// highest first, top_n of them: a cross-encoder's head logit (no sigmoid, as llama-server returns
// it), or a decoder reranker's sigmoid(yes - no), a probability in [0, 1].
// Errors are OpenAI-shaped: 400 for a bad body or a model that is not a reranker.
void HandleRerank(ServerState& s, const std::string& body, httplib::Response& res);

}  // namespace origami::server
