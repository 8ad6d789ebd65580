// Embeddings on the server: OpenAI's POST /v1/embeddings, and the tokenizing, limits and engine
// call it shares with Ollama's /api/embed and /api/embeddings (ollama_handler.cpp).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace httplib {
struct Response;
}

namespace origami::server {

struct ServerState;

struct EmbedAnswer {
  std::vector<std::vector<float>> vectors;  // one per input, unit length unless dimensions cut it
  int n_tokens = 0;                         // tokens over every input (usage)
};

// A text's ids as embeddings take them (the vocabulary's BOS/EOS added). Longer than the context:
// cut to it when `truncate`, else ApiError(400) naming input `index`.
std::vector<int32_t> EmbeddingTokens(ServerState& s, const std::string& text, bool truncate,
                                     size_t index);
// Runs the inputs through the engine (the model's pooling; unit length when `normalize`) and waits;
// `dimensions` > 0 keeps that many leading values and normalises again (Matryoshka). Throws
// ApiError: 400 for bad input, 503 when the engine is overloaded, 500 when the forward pass failed.
EmbedAnswer RunEmbeddings(ServerState& s, std::vector<std::vector<int32_t>> inputs, int dimensions,
                          bool normalize = true);
// Checks a "dimensions" value against the model's width (ApiError 400 naming `param`).
int ParseDimensions(ServerState& s, const nlohmann::json& v, const char* param);

// POST /v1/embeddings: input as a string, strings, token ids or arrays of token ids;
// encoding_format float or base64; dimensions.
void HandleOpenAiEmbeddings(ServerState& s, const std::string& body, httplib::Response& res);

// Standard base64 (RFC 4648, with padding) of raw bytes: base64 embeddings are the float32
// little-endian bytes of the vector.
std::string Base64(const void* data, size_t n);

}  // namespace origami::server
