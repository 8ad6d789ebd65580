// /v1/embeddings and the embedding path the Ollama handlers share: inputs to token ids, the
// request limits, the engine call, Matryoshka truncation and base64 output.
#include "server/embeddings.h"

#include <fmt/format.h>
#include <httplib.h>

#include <cstring>
#include <limits>

#include "server/job.h"
#include "util/error.h"

namespace origami::server {

using nlohmann::json;

std::string Base64(const void* data, size_t n) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const auto* p = static_cast<const uint8_t*>(data);
  std::string out;
  out.reserve((n + 2) / 3 * 4);
  for (size_t i = 0; i < n; i += 3) {
    const uint32_t b0 = p[i], b1 = i + 1 < n ? p[i + 1] : 0, b2 = i + 2 < n ? p[i + 2] : 0;
    const uint32_t v = b0 << 16 | b1 << 8 | b2;
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += i + 1 < n ? kAlphabet[v >> 6 & 63] : '=';
    out += i + 2 < n ? kAlphabet[v & 63] : '=';
  }
  return out;
}

std::vector<int32_t> EmbeddingTokens(ServerState& s, const std::string& text, bool truncate,
                                     size_t index) {
  std::vector<int32_t> ids = s.Tokenize(text);
  const size_t limit = static_cast<size_t>(s.engine.max_seq_len());
  if (ids.size() > limit) {
    if (!truncate)
      throw ApiError(
          400,
          fmt::format("input {} has {} tokens, more than the model's context of {} tokens", index,
                      ids.size(), limit),
          "input", "context_length_exceeded");
    ids.resize(limit);
  }
  return ids;
}

int ParseDimensions(ServerState& s, const json& v, const char* param) {
  const int n_embd = s.engine.n_embd();
  if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > n_embd)
    throw ApiError(400,
                   fmt::format("{}: must be an integer from 1 to {} (the model's embedding width)",
                               param, n_embd),
                   param, "invalid_value");
  return v.get<int>();
}

EmbedAnswer RunEmbeddings(ServerState& s, std::vector<std::vector<int32_t>> inputs, int dimensions,
                          bool normalize) {
  if (inputs.empty()) throw ApiError(400, "input: must not be empty", "input", "invalid_value");
  if (inputs.size() > static_cast<size_t>(Engine::kMaxEmbeddingInputs))
    throw ApiError(400,
                   fmt::format("input: {} inputs in one request; at most {} are allowed",
                               inputs.size(), Engine::kMaxEmbeddingInputs),
                   "input", "invalid_value");
  if (s.engine.reranker())
    throw ApiError(400,
                   fmt::format("The model '{}' is a reranker: it scores documents on /v1/rerank and gives no "
                               "embeddings",
                               s.opt.model_id),
                   "model", "model_not_supported");
  EmbeddingRequest req;
  req.inputs = std::move(inputs);
  req.pooling = s.engine.pooling();
  req.normalize = normalize;
  std::shared_ptr<EmbeddingResult> job;
  try {
    job = s.engine.SubmitEmbedding(std::move(req));
  } catch (const OverloadedError& e) {
    ApiError busy(503, e.what());
    busy.retry_after_s = e.retry_after_s;
    throw busy;
  } catch (const Error& e) {
    throw ApiError(400, e.what(), "input", "invalid_value");
  }
  EmbedAnswer a;
  a.n_tokens = job->n_tokens();
  try {
    a.vectors = job->Wait();
  } catch (const Error& e) {
    throw ApiError(500, fmt::format("embedding failed: {}", e.what()));
  }
  if (dimensions > 0)
    for (auto& v : a.vectors) v = TruncatedEmbedding(v, dimensions, normalize);
  return a;
}

namespace {

// OpenAI's input: a string, an array of strings, an array of token ids, or an array of such
// arrays. Every text and id list must be non-empty; ids must fit int32 (the engine checks the
// vocabulary).
std::vector<std::vector<int32_t>> OpenAiInputs(ServerState& s, const json& input) {
  const char* kShape =
      "input: must be a string, an array of strings, an array of token ids or an array of arrays "
      "of token ids";
  auto ids_of = [&](const json& arr, size_t index) {
    std::vector<int32_t> ids;
    for (const json& t : arr) {
      if (!t.is_number_integer()) throw ApiError(400, kShape, "input", "invalid_type");
      const int64_t v = t.get<int64_t>();
      if (v < 0 || v > std::numeric_limits<int32_t>::max())
        throw ApiError(400, fmt::format("input {}: token id {} is out of range", index, v), "input",
                       "invalid_value");
      ids.push_back(static_cast<int32_t>(v));
    }
    if (ids.empty())
      throw ApiError(400, fmt::format("input {}: must not be empty", index), "input",
                     "invalid_value");
    if (ids.size() > static_cast<size_t>(s.engine.max_seq_len()))
      throw ApiError(
          400,
          fmt::format("input {} has {} tokens, more than the model's context of {} tokens", index,
                      ids.size(), s.engine.max_seq_len()),
          "input", "context_length_exceeded");
    return ids;
  };
  auto text_of = [&](const json& t, size_t index) {
    const std::string& text = t.get_ref<const std::string&>();
    if (text.empty())
      throw ApiError(400, fmt::format("input {}: must not be empty", index), "input",
                     "invalid_value");
    return EmbeddingTokens(s, text, false, index);
  };
  std::vector<std::vector<int32_t>> out;
  if (input.is_string()) {
    out.push_back(text_of(input, 0));
    return out;
  }
  if (!input.is_array()) throw ApiError(400, kShape, "input", "invalid_type");
  if (input.empty()) throw ApiError(400, "input: must not be empty", "input", "invalid_value");
  if (input.size() > static_cast<size_t>(Engine::kMaxEmbeddingInputs))
    throw ApiError(400,
                   fmt::format("input: {} inputs in one request; at most {} are allowed",
                               input.size(), Engine::kMaxEmbeddingInputs),
                   "input", "invalid_value");
  if (input[0].is_number_integer()) {
    out.push_back(ids_of(input, 0));
    return out;
  }
  for (size_t i = 0; i < input.size(); ++i) {
    const json& x = input[i];
    if (x.is_string())
      out.push_back(text_of(x, i));
    else if (x.is_array())
      out.push_back(ids_of(x, i));
    else
      throw ApiError(400, kShape, "input", "invalid_type");
    // One kind per request, as OpenAI's schema has it.
    if (x.type() != input[0].type()) throw ApiError(400, kShape, "input", "invalid_type");
  }
  return out;
}

}  // namespace

void HandleOpenAiEmbeddings(ServerState& s, const std::string& body, httplib::Response& res) {
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
    std::string model;
    if (auto m = j.find("model"); m != j.end() && !m->is_null()) {
      if (!m->is_string()) throw ApiError(400, "model: must be a string", "model", "invalid_type");
      model = m->get<std::string>();
    }
    s.CheckModel(model);
    bool base64 = false;
    if (auto f = j.find("encoding_format"); f != j.end() && !f->is_null()) {
      if (!f->is_string() || (*f != "float" && *f != "base64"))
        throw ApiError(400, "encoding_format: must be 'float' or 'base64'", "encoding_format",
                       "invalid_value");
      base64 = *f == "base64";
    }
    int dimensions = 0;
    if (auto d = j.find("dimensions"); d != j.end() && !d->is_null())
      dimensions = ParseDimensions(s, *d, "dimensions");
    auto in = j.find("input");
    if (in == j.end() || in->is_null())
      throw ApiError(400, "input: required", "input", "missing_required_parameter");
    EmbedAnswer a = RunEmbeddings(s, OpenAiInputs(s, *in), dimensions);
    json data = json::array();
    for (size_t i = 0; i < a.vectors.size(); ++i) {
      const auto& v = a.vectors[i];
      json e = {{"object", "embedding"}, {"index", i}};
      if (base64) {
        // float32 little-endian, as OpenAI sends it (every target origami builds for is
        // little-endian).
        e["embedding"] = Base64(v.data(), v.size() * sizeof(float));
      } else {
        e["embedding"] = v;
      }
      data.push_back(std::move(e));
    }
    send(200, {{"object", "list"},
               {"data", std::move(data)},
               {"model", s.opt.model_id},
               {"usage", {{"prompt_tokens", a.n_tokens}, {"total_tokens", a.n_tokens}}}});
  } catch (const ApiError& e) {
    if (e.status == 503) SetRetryAfter(res, e.retry_after_s);
    send(e.status, e.Body());
  } catch (const std::exception& e) {  // origami::Error from tokenizing: the client's input
    send(400, ErrorBody(400, e.what()));
  }
}

}  // namespace origami::server
