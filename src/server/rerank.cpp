// POST /v1/rerank (also /rerank and /v1/reranking): a cross-encoder or a decoder reranker
// (Qwen3-Reranker) scores each document against the query, in the request shape llama-server,
// Jina and Cohere clients send (query, documents, top_n, return_documents) and the results shape
// they read (index, relevance_score, document).
#include "server/rerank.h"

#include <fmt/format.h>
#include <httplib.h>

#include <algorithm>
#include <numeric>

#include "runtime/engine.h"
#include "server/api.h"
#include "server/job.h"
#include "util/error.h"

namespace origami::server {

using nlohmann::json;

namespace {

struct RerankRequest {
  std::string query;
  std::vector<std::string> documents;
  size_t top_n = 0;  // results to return (all when the request has none)
  bool return_documents = false;
};

RerankRequest ParseRerank(ServerState& s, const json& j) {
  RerankRequest r;
  std::string model;
  if (auto m = j.find("model"); m != j.end() && !m->is_null()) {
    if (!m->is_string()) throw ApiError(400, "model: must be a string", "model", "invalid_type");
    model = m->get<std::string>();
  }
  s.CheckModel(model);
  auto q = j.find("query");
  if (q == j.end() || q->is_null())
    throw ApiError(400, "query: required", "query", "missing_required_parameter");
  if (!q->is_string()) throw ApiError(400, "query: must be a string", "query", "invalid_type");
  r.query = q->get<std::string>();
  if (r.query.empty()) throw ApiError(400, "query: must not be empty", "query", "invalid_value");
  // "texts" is the name Hugging Face's text-embeddings-inference gives the same list.
  auto d = j.find("documents");
  if (d == j.end() || d->is_null()) d = j.find("texts");
  if (d == j.end() || d->is_null())
    throw ApiError(400, "documents: required", "documents", "missing_required_parameter");
  if (!d->is_array())
    throw ApiError(400, "documents: must be an array of strings", "documents", "invalid_type");
  if (d->empty()) throw ApiError(400, "documents: must not be empty", "documents", "invalid_value");
  if (d->size() > static_cast<size_t>(Engine::kMaxEmbeddingInputs))
    throw ApiError(400,
                   fmt::format("documents: {} documents in one request; at most {} are allowed",
                               d->size(), Engine::kMaxEmbeddingInputs),
                   "documents", "invalid_value");
  for (size_t i = 0; i < d->size(); ++i) {
    const json& x = (*d)[i];
    // Cohere's older clients send {"text": ...} objects; plain strings are the common shape.
    if (x.is_object() && x.contains("text") && x["text"].is_string()) {
      r.documents.push_back(x["text"].get<std::string>());
    } else if (x.is_string()) {
      r.documents.push_back(x.get<std::string>());
    } else {
      throw ApiError(400, fmt::format("documents[{}]: must be a string", i), "documents",
                     "invalid_type");
    }
  }
  r.top_n = r.documents.size();
  if (auto t = j.find("top_n"); t != j.end() && !t->is_null()) {
    if (!t->is_number_integer() || t->get<int64_t>() < 1)
      throw ApiError(400, "top_n: must be a positive integer", "top_n", "invalid_value");
    r.top_n = std::min<size_t>(r.top_n, t->get<uint64_t>());
  }
  if (auto rd = j.find("return_documents"); rd != j.end() && !rd->is_null()) {
    if (!rd->is_boolean())
      throw ApiError(400, "return_documents: must be a boolean", "return_documents",
                     "invalid_type");
    r.return_documents = rd->get<bool>();
  }
  return r;
}

}  // namespace

const char* const kQwen3RerankTemplate =
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query "
    "and the Instruct provided. Note that the answer can only be \"yes\" or \"no\"."
    "<|im_end|>\n<|im_start|>user\n<Instruct>: Given a web search query, retrieve relevant "
    "passages that answer the query\n<Query>: {query}\n<Document>: {document}<|im_end|>\n"
    "<|im_start|>assistant\n<think>\n\n</think>\n\n";

std::string RerankPrompt(std::string_view tmpl, std::string_view query, std::string_view document) {
  if (tmpl.empty()) tmpl = kQwen3RerankTemplate;
  static constexpr std::string_view kQuery = "{query}", kDocument = "{document}";
  // One left-to-right pass over the template, so the texts themselves are never searched.
  std::string out;
  out.reserve(tmpl.size() + query.size() + document.size());
  size_t i = 0;
  while (i < tmpl.size()) {
    if (tmpl.substr(i, kQuery.size()) == kQuery) {
      out += query;
      i += kQuery.size();
    } else if (tmpl.substr(i, kDocument.size()) == kDocument) {
      out += document;
      i += kDocument.size();
    } else {
      out += tmpl[i++];
    }
  }
  return out;
}

void HandleRerank(ServerState& s, const std::string& body, httplib::Response& res) {
  auto send = [&res](int status, const json& j) {
    res.status = status;
    res.set_content(DumpJson(j), "application/json");
  };
  try {
    const json j = json::parse(body, nullptr, false);
    if (j.is_discarded())
      throw ApiError(400, "We could not parse the JSON body of your request.", "", "invalid_json");
    if (!j.is_object())
      throw ApiError(400, "The request body must be a JSON object.", "", "invalid_json");
    const RerankRequest r = ParseRerank(s, j);
    if (!s.engine.reranker())
      throw ApiError(
          400,
          fmt::format("The model '{}' is not a reranker (its pooling type is not rank): it cannot "
                      "answer /v1/rerank",
                      s.opt.model_id),
          "model", "model_not_supported");

    EmbeddingRequest req;
    req.pooling = Pooling::kRank;
    req.normalize = false;
    const size_t limit = static_cast<size_t>(s.engine.max_seq_len());
    auto too_long = [&](size_t i, size_t n) {
      return ApiError(
          400,
          fmt::format("documents[{}]: the query and document have {} tokens together, more "
                      "than the model's context of {} tokens",
                      i, n, limit),
          "documents", "context_length_exceeded");
    };
    // A decoder reranker reads one prompt per pair, special tokens of the template included.
    for (size_t i = 0; !s.engine.encoder() && i < r.documents.size(); ++i) {
      std::vector<int32_t> ids =
          s.Tokenize(RerankPrompt(s.rerank_template, r.query, r.documents[i]));
      if (ids.size() > limit) throw too_long(i, ids.size());
      req.inputs.push_back(std::move(ids));
    }
    // A cross-encoder's pair is [CLS] query [SEP] document [SEP]: the query's ids as the
    // vocabulary adds its specials, then the document's without its leading [CLS]; the document
    // is token type 1.
    const std::vector<int32_t> q =
        s.engine.encoder() ? s.Tokenize(r.query) : std::vector<int32_t>{};
    for (size_t i = 0; s.engine.encoder() && i < r.documents.size(); ++i) {
      std::vector<int32_t> d = s.Tokenize(r.documents[i]);
      if (!d.empty() && d.front() == s.tok.bos_id() && s.tok.add_bos()) d.erase(d.begin());
      std::vector<int32_t> pair = q;
      pair.insert(pair.end(), d.begin(), d.end());
      if (pair.size() > limit) throw too_long(i, pair.size());
      req.segment_b.push_back(static_cast<int>(q.size()));
      req.inputs.push_back(std::move(pair));
    }
    std::shared_ptr<EmbeddingResult> job;
    try {
      job = s.engine.SubmitEmbedding(std::move(req));
    } catch (const OverloadedError& e) {
      ApiError busy(503, e.what());
      busy.retry_after_s = e.retry_after_s;
      throw busy;
    } catch (const Error& e) {
      throw ApiError(400, e.what(), "documents", "invalid_value");
    }
    std::vector<std::vector<float>> scores;
    try {
      scores = job->Wait();
    } catch (const Error& e) {
      throw ApiError(500, fmt::format("reranking failed: {}", e.what()));
    }
    // Highest score first; equal scores keep the documents' order.
    std::vector<size_t> order(scores.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return scores[a][0] > scores[b][0]; });
    json results = json::array();
    for (size_t k = 0; k < r.top_n; ++k) {
      const size_t i = order[k];
      json e = {{"index", i}, {"relevance_score", scores[i][0]}};
      if (r.return_documents) e["document"] = {{"text", r.documents[i]}};
      results.push_back(std::move(e));
    }
    send(200, {{"model", s.opt.model_id},
               {"object", "list"},
               {"results", std::move(results)},
               {"usage", {{"prompt_tokens", job->n_tokens()}, {"total_tokens", job->n_tokens()}}}});
  } catch (const ApiError& e) {
    if (e.status == 503) SetRetryAfter(res, e.retry_after_s);
    send(e.status, e.Body());
  } catch (const std::exception& e) {  // origami::Error from tokenizing: the client's input
    send(400, ErrorBody(400, e.what()));
  }
}

}  // namespace origami::server
