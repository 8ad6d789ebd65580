// Reranking on the server: POST /v1/rerank (and the /rerank, /v1/reranking aliases) for a
// cross-encoder model (an encoder whose pooling type is rank).
#pragma once

#include <string>

namespace httplib {
struct Response;
}

namespace origami::server {

struct ServerState;

// Scores every document against the query and answers the results sorted by relevance_score
// (the head's logit, no sigmoid, as llama-server returns it), highest first, top_n of them.
// Errors are OpenAI-shaped: 400 for a bad body or a model that is not a reranker.
void HandleRerank(ServerState& s, const std::string& body, httplib::Response& res);

}  // namespace origami::server
