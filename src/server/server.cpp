// Server: httplib routes for the OpenAI API, auth, CORS, metrics. A generation request is built
// in job_builder.cpp and answered by json_response.cpp or sse_stream.cpp (see job.h).
#include "server/server.h"

#include <fmt/format.h>
#include <httplib.h>

#include <algorithm>
#include <map>
#include <mutex>

#include "server/anthropic_api.h"
#include "server/anthropic_handler.h"
#include "server/api.h"
#include "server/embeddings.h"
#include "server/rerank.h"
#include "server/job.h"
#include "server/model_registry.h"
#include "server/ollama_api.h"
#include "server/ollama_handler.h"
#include "server/responses_handler.h"
#include "util/error.h"
#include "util/sysmem.h"

namespace origami::server {

using nlohmann::json;

const char* const kDefaultChatTemplate =
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] "
    "+ '<|im_end|>' + "
    "'\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

bool ConstantTimeEquals(const std::string& a, const std::string& b) {
  const size_t n = std::max(a.size(), b.size());
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= x ^ y;
  }
  return diff == 0;
}

namespace {

void SendJson(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

void SendError(httplib::Response& res, const ApiError& e) {
  if (e.status == 503) SetRetryAfter(res, e.retry_after_s);
  SendJson(res, e.status, e.Body());
}

// Which API a route speaks, for the shape of the errors its model resolution may answer.
enum class Shape { kOpenAi, kAnthropic };

// The body's "model" (empty when absent or not a string: the default model, whose handler then
// reports what is wrong with the body).
std::string ModelOf(const std::string& body) {
  const json j = json::parse(body, nullptr, false);
  if (!j.is_object()) return "";
  auto it = j.find("model");
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

// Adds a loaded model's engine figures to the server's: counters and gauges alike.
void AddStats(EngineStats& into, const EngineStats& s) {
  AddEngineCounters(into, s);
  into.waiting += s.waiting;
  into.live += s.live;
  into.kv_blocks_total += s.kv_blocks_total;
  into.kv_blocks_in_use += s.kv_blocks_in_use;
  into.kv_blocks_cached += s.kv_blocks_cached;
  into.block_size = s.block_size;
  into.kv_bytes_total += s.kv_bytes_total;
  into.kv_bytes_in_use += s.kv_bytes_in_use;
  into.kv_bytes_in_use_peak += s.kv_bytes_in_use_peak;
  into.kv_bytes_cached += s.kv_bytes_cached;
  into.n_parallel += s.n_parallel;
  into.max_queue += s.max_queue;
  into.generation_tps += s.generation_tps;
}

// With several models and none loaded there are no slots at all, and nothing waits: not saturated.
bool Saturated(const EngineStats& s) { return s.n_parallel > 0 && s.saturated(); }

}  // namespace

struct Server::Impl {
  ServerOptions opt;
  ModelRegistry& models;  // the served models; handlers read a leased model's ServerState
  httplib::Server http;
  std::mutex metrics_mu;
  std::map<int, int64_t> http_status_counts;

  Impl(ModelRegistry& m, ServerOptions o) : opt(std::move(o)), models(m) { Routes(); }

  void Routes();
  // Resolves the body's model (loading it, or waiting for its load), runs `handle` on its state
  // and holds the model until the answer is written. Resolution errors go out in `shape`.
  template <class F>
  void WithModel(const httplib::Request& req, httplib::Response& res, Shape shape, F&& handle);
  void HandleGenerate(ServerState& st, const httplib::Request& req, httplib::Response& res,
                      Endpoint ep);
  // Every loaded engine's figures summed, plus the counters of engines already unloaded.
  EngineStats TotalStats(int64_t* streams_open = nullptr) const;
  void Metrics(httplib::Response& res);
};

template <class F>
void Server::Impl::WithModel(const httplib::Request& req, httplib::Response& res, Shape shape,
                             F&& handle) {
  std::shared_ptr<ModelRegistry::Lease> lease;
  try {
    lease = models.Acquire(models.single() ? "" : ModelOf(req.body), false);
  } catch (const ApiError& e) {
    if (e.status == 503) SetRetryAfter(res, e.retry_after_s);
    if (shape == Shape::kAnthropic)
      SendJson(res, e.status, AnthropicErrorBody(e.status, e.what()));
    else
      SendJson(res, e.status, e.Body());
    return;
  }
  handle(lease->state());
  HoldUntilSent(res, std::move(lease));
}

EngineStats Server::Impl::TotalStats(int64_t* streams_open) const {
  const ModelRegistry::Counters c = models.counters();
  EngineStats total = c.retired;
  if (streams_open) *streams_open = 0;
  for (const auto& m : models.List()) {
    if (!m.state) continue;
    AddStats(total, m.state->engine.Stats());
    if (streams_open) *streams_open += m.state->streams_open.load();
  }
  return total;
}

void Server::Impl::Routes() {
  http.set_payload_max_length(opt.max_body_bytes);
  const int threads = opt.http_threads > 0 ? opt.http_threads : 128;
  http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http.set_keep_alive_max_count(1000);
  http.set_read_timeout(60, 0);
  http.set_write_timeout(60, 0);
  if (opt.cors) {
    http.set_default_headers({{"Access-Control-Allow-Origin", "*"},
                              {"Access-Control-Allow-Headers", "Authorization, Content-Type"},
                              {"Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS"}});
  }
  http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (req.method == "OPTIONS") {
      if (!opt.cors) {
        SendJson(res, 404,
                 ErrorBody(404, "CORS is not enabled on this server (start it with --cors)"));
        return httplib::Server::HandlerResponse::Handled;
      }
      res.status = 204;
      return httplib::Server::HandlerResponse::Handled;
    }
    const bool ollama = req.path.rfind("/api/", 0) == 0;
    const bool protected_path = req.path.rfind("/v1/", 0) == 0 || req.path == "/metrics" || ollama;
    if (!opt.api_key.empty() && protected_path) {
      const std::string auth = req.get_header_value("Authorization");
      const std::string prefix = "Bearer ";
      std::string given = auth.rfind(prefix, 0) == 0 ? auth.substr(prefix.size()) : std::string();
      if (given.empty()) given = req.get_header_value("x-api-key");  // Anthropic clients
      if (!ConstantTimeEquals(given, opt.api_key)) {
        if (req.path.rfind("/v1/messages", 0) == 0) {
          SendJson(res, 401, AnthropicErrorBody(401, "invalid x-api-key"));
          return httplib::Server::HandlerResponse::Handled;
        }
        if (ollama) {
          SendJson(res, 401, OllamaErrorBody("unauthorized: send 'Authorization: Bearer <key>'"));
          return httplib::Server::HandlerResponse::Handled;
        }
        SendJson(res, 401,
                 ErrorBody(401,
                           auth.empty() ? "Missing API key: send 'Authorization: Bearer <key>'"
                                        : "Incorrect API key provided",
                           "", "invalid_api_key"));
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (req.path.rfind("/v1/messages", 0) == 0) {
      SendJson(res, res.status, AnthropicErrorBody(res.status, "request failed"));
      return;
    }
    std::string msg = "request failed";
    if (res.status == 404)
      msg = fmt::format("Unknown route {} {}", req.method, req.path);
    else if (res.status == 413)
      msg = "The request body is too large";
    else if (res.status == 400)
      msg = "Malformed HTTP request";
    else if (res.status == 405)
      msg = "Method not allowed";
    if (req.path.rfind("/api/", 0) == 0) {  // Ollama's shape: {"error": "..."}
      SendJson(res, res.status, OllamaErrorBody(res.status == 404 ? "404 page not found" : msg));
      return;
    }
    SendJson(res, res.status, ErrorBody(res.status, msg));
  });
  http.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "internal error";
        try {
          if (ep) std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        SendJson(res, 500, ErrorBody(500, what));
      });
  http.set_logger([this](const httplib::Request&, const httplib::Response& res) {
    std::lock_guard lock(metrics_mu);
    ++http_status_counts[res.status];
  });

  http.Get("/", [](const httplib::Request& req, httplib::Response& res) {
    // Browsers ask for HTML and get the chat page; scripts probing for an Ollama server (curl,
    // health checks) get its plain-text answer.
    const std::string accept = req.get_header_value("Accept");
    if (!accept.empty() && accept.find("text/html") == std::string::npos) {
      res.set_content("Ollama is running", "text/plain; charset=utf-8");
      return;
    }
    res.set_content(kWebPage, "text/html; charset=utf-8");
  });
  http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    // 200 while serving either way (load balancers read the code); "saturated" says a new request
    // would wait for a slot or KV blocks, and queue_full that it would get a 503 now.
    const EngineStats s = TotalStats();
    SendJson(res, 200,
             {{"status", Saturated(s) ? "saturated" : "ok"},
              {"live", s.live},
              {"waiting", s.waiting},
              {"parallel", s.n_parallel},
              {"max_queue", s.max_queue},
              {"queue_full", s.n_parallel > 0 && s.queue_full()},
              {"kv_blocks_in_use", s.kv_blocks_in_use},
              {"kv_blocks_total", s.kv_blocks_total},
              {"kv_bytes_in_use", s.kv_bytes_in_use},
              {"kv_bytes_total", s.kv_bytes_total}});
  });
  // Every model the server knows, loaded or not (a loaded one gives its engine's limit).
  auto model_obj = [](const ModelRegistry::Status& m) {
    return json{{"id", m.info->id},
                {"object", "model"},
                {"created", 0},
                {"owned_by", "origami"},
                {"max_seq_len", m.state ? m.state->engine.max_seq_len() : m.info->max_seq_len}};
  };
  http.Get("/v1/models", [this, model_obj](const httplib::Request&, httplib::Response& res) {
    json data = json::array();
    for (const auto& m : models.List()) data.push_back(model_obj(m));
    SendJson(res, 200, {{"object", "list"}, {"data", data}});
  });
  http.Get(R"(/v1/models/(.+))",
           [this, model_obj](const httplib::Request& req, httplib::Response& res) {
             const std::string name = req.matches[1].str();
             const auto list = models.List();
             if (models.single()) {
               try {
                 list[0].state->CheckModel(name);
                 SendJson(res, 200, model_obj(list[0]));
               } catch (const ApiError& e) {
                 SendError(res, e);
               }
               return;
             }
             for (const auto& m : list)
               if (m.info->id == name) return SendJson(res, 200, model_obj(m));
             SendError(res, ApiError(404, fmt::format("The model '{}' does not exist", name),
                                     "model", "model_not_found"));
           });
  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) { Metrics(res); });
  http.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
    WithModel(req, res, Shape::kOpenAi,
              [&](ServerState& st) { HandleGenerate(st, req, res, Endpoint::kChat); });
  });
  http.Post("/v1/messages", [this](const httplib::Request& req, httplib::Response& res) {
    WithModel(req, res, Shape::kAnthropic,
              [&](ServerState& st) { HandleAnthropicMessages(st, req.body, res); });
  });
  http.Post("/v1/messages/count_tokens",
            [this](const httplib::Request& req, httplib::Response& res) {
              WithModel(req, res, Shape::kAnthropic,
                        [&](ServerState& st) { HandleAnthropicCountTokens(st, req.body, res); });
            });
  http.Post("/v1/responses", [this](const httplib::Request& req, httplib::Response& res) {
    WithModel(req, res, Shape::kOpenAi,
              [&](ServerState& st) { HandleResponsesCreate(st, req.body, res); });
  });
  // Stored responses are the server's, whichever model wrote them.
  http.Get(R"(/v1/responses/([^/]+)/input_items)",
           [this](const httplib::Request& req, httplib::Response& res) {
             HandleResponsesInputItems(models.responses(), req.matches[1].str(), req.params, res);
           });
  http.Get(R"(/v1/responses/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    HandleResponsesGet(models.responses(), req.matches[1].str(), res);
  });
  http.Delete(R"(/v1/responses/([^/]+))",
              [this](const httplib::Request& req, httplib::Response& res) {
                HandleResponsesDelete(models.responses(), req.matches[1].str(), res);
              });
  http.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
    WithModel(req, res, Shape::kOpenAi,
              [&](ServerState& st) { HandleGenerate(st, req, res, Endpoint::kCompletions); });
  });
  http.Post("/v1/embeddings", [this](const httplib::Request& req, httplib::Response& res) {
    WithModel(req, res, Shape::kOpenAi,
              [&](ServerState& st) { HandleOpenAiEmbeddings(st, req.body, res); });
  });
  // llama-server answers reranking under all three paths.
  for (const char* path : {"/v1/rerank", "/rerank", "/v1/reranking"})
    http.Post(path, [this](const httplib::Request& req, httplib::Response& res) {
      WithModel(req, res, Shape::kOpenAi, [&](ServerState& st) { HandleRerank(st, req.body, res); });
    });
  RegisterOllamaRoutes(http, models);
}

// Generation: build the job (validation, template, engine requests), then answer it as one JSON
// body or as a stream of events.
void Server::Impl::HandleGenerate(ServerState& st, const httplib::Request& http_req,
                                  httplib::Response& res, Endpoint ep) {
  std::shared_ptr<Job> job;
  try {
    job = StartJob(st, http_req.body, ep,
                   ep == Endpoint::kChat && st.opt.reasoning_auto && st.template_reasons);
  } catch (const ApiError& e) {
    SendError(res, e);
    return;
  } catch (const Error& e) {
    SendError(res, ApiError(400, e.what()));
    return;
  }
  if (job->req.stream)
    SendEventStream(st, std::move(job), res);
  else
    SendJsonResponse(st, std::move(job), res);
}

void Server::Impl::Metrics(httplib::Response& res) {
  int64_t streams_open = 0;
  const EngineStats s = TotalStats(&streams_open);
  std::string out;
  auto metric = [&out](const char* name, const char* type, const char* help, double v) {
    out += fmt::format("# HELP origami_{0} {1}\n# TYPE origami_{0} {2}\norigami_{0} {3}\n", name,
                       help, type, v);
  };
  metric("requests_total", "counter", "Generation requests accepted by the engine.",
         s.requests_total);
  metric("requests_finished_total", "counter", "Generation requests that ran to a stop or length.",
         s.requests_finished);
  metric("requests_cancelled_total", "counter",
         "Generation requests cancelled (disconnect, stop string, stop).", s.requests_cancelled);
  metric("requests_rejected_total", "counter", "Requests refused because the queue was full (503).",
         s.requests_rejected);
  metric("prompt_tokens_total", "counter", "Prompt tokens received.", s.prompt_tokens_total);
  metric("prompt_tokens_cached_total", "counter", "Prompt tokens served from the prefix cache.",
         s.prompt_tokens_cached);
  metric("generated_tokens_total", "counter", "Tokens generated.", s.generated_tokens_total);
  metric("embedding_requests_total", "counter", "Embedding requests accepted by the engine.",
         s.embedding_requests_total);
  metric("embedding_tokens_total", "counter", "Tokens of embedding inputs.", s.embedding_tokens_total);
  metric("engine_steps_total", "counter", "Batched forward passes.", s.steps);
  metric("preemptions_total", "counter", "Sequences preempted because the KV pool ran out.",
         s.preemptions);
  metric("engine_busy_seconds_total", "counter", "Seconds spent in forward passes.",
         s.busy_seconds);
  metric("queue_depth", "gauge", "Requests waiting for a slot.", s.waiting);
  metric("live_sequences", "gauge", "Sequences being decoded.", s.live);
  metric("generation_tokens_per_second", "gauge",
         "Generated tokens per second over the last window.", s.generation_tps);
  metric("kv_blocks_total", "gauge", "KV cache blocks in the pool.", s.kv_blocks_total);
  metric("kv_blocks_in_use", "gauge", "KV cache blocks held by sequences.", s.kv_blocks_in_use);
  metric("kv_blocks_cached", "gauge", "KV cache blocks in the prefix index.", s.kv_blocks_cached);
  metric("kv_cache_usage_ratio", "gauge", "Share of the KV pool held by sequences.",
         s.kv_blocks_total ? static_cast<double>(s.kv_blocks_in_use) / s.kv_blocks_total : 0.0);
  metric("http_streams_open", "gauge", "SSE streams being written.",
         static_cast<double>(streams_open));
  metric("saturated", "gauge",
         "1 while a new request would wait (every slot busy or requests queued).",
         Saturated(s) ? 1 : 0);
  metric("max_queue", "gauge", "Requests that may wait before new ones get 503 (--max-queue).",
         s.max_queue);
  // Memory (issue 16): the budget and plan serve started with, the KV pool by bytes, and this
  // process's resident memory read at scrape time with the kernel's high-water mark of it.
  const ServerOptions::MemoryFigures& m = opt.memory;
  if (m.planned > 0) {
    metric("memory_budget_bytes", "gauge",
           "Memory this process may use: --mem-budget, or the lesser of MemAvailable less the "
           "reserve and the memory cgroup's headroom, read at start.",
           static_cast<double>(m.budget));
    metric("memory_planned_bytes", "gauge", "The memory plan's total at start.",
           static_cast<double>(m.planned));
    metric("weights_bytes", "gauge", "Resident weight bytes (mapped and repacked, counted once).",
           static_cast<double>(m.weights));
  }
  metric("kv_cache_bytes_total", "gauge", "Bytes of the KV pool (its pages are taken as written).",
         static_cast<double>(s.kv_bytes_total));
  metric("kv_cache_bytes_in_use", "gauge", "Bytes of KV rows held by sequences.",
         static_cast<double>(s.kv_bytes_in_use));
  metric("kv_cache_bytes_in_use_peak", "gauge", "The most KV bytes held by sequences at once.",
         static_cast<double>(s.kv_bytes_in_use_peak));
  metric("prefix_cache_bytes", "gauge",
         "Bytes of KV rows kept only by the prefix cache (given back when sequences need them).",
         static_cast<double>(s.kv_bytes_cached));
  const ProcessMemory rss = ReadProcessMemory();
  metric("resident_memory_bytes", "gauge", "Resident set size of this process (VmRSS).",
         static_cast<double>(rss.rss));
  metric("resident_memory_peak_bytes", "gauge", "High-water mark of the resident set size (VmHWM).",
         static_cast<double>(rss.rss_peak));
  // Models (issue 17): loads, unloads and what each loaded model's plan holds.
  const ModelRegistry::Counters c = models.counters();
  const auto list = models.List();
  const auto loaded =
      std::count_if(list.begin(), list.end(), [](const auto& m) { return m.loaded; });
  metric("models_known", "gauge", "Models this server serves (loaded or not).",
         static_cast<double>(list.size()));
  metric("models_loaded", "gauge", "Models loaded now.", static_cast<double>(loaded));
  metric("model_loads_total", "counter", "Model loads.", static_cast<double>(c.loads));
  metric("model_unloads_total", "counter", "Model unloads (keep_alive expired or evicted).",
         static_cast<double>(c.unloads));
  metric("model_evictions_total", "counter",
         "Models unloaded to make room for another (memory budget or --max-loaded).",
         static_cast<double>(c.evictions));
  metric("model_load_failures_total", "counter", "Loads that failed or were refused.",
         static_cast<double>(c.load_failures));
  out +=
      "# HELP origami_model_bytes Planned bytes of each loaded model (weights, KV pool, scratch).\n"
      "# TYPE origami_model_bytes gauge\n";
  for (const auto& m : list) {
    if (!m.loaded) continue;
    std::string label;
    for (char ch : m.info->id) {
      if (ch == '\\' || ch == '"') label += '\\';
      label += ch == '\n' ? ' ' : ch;
    }
    out += fmt::format("origami_model_bytes{{model=\"{}\"}} {}\n", label, m.info->planned_bytes);
  }
  out +=
      "# HELP origami_http_responses_total HTTP responses by status.\n# TYPE "
      "origami_http_responses_total counter\n";
  {
    std::lock_guard lock(metrics_mu);
    for (const auto& [code, n] : http_status_counts)
      out += fmt::format("origami_http_responses_total{{code=\"{}\"}} {}\n", code, n);
  }
  res.set_content(out, "text/plain; version=0.0.4");
}

Server::Server(ModelRegistry& models, ServerOptions opt)
    : impl_(std::make_unique<Impl>(models, std::move(opt))) {}

Server::~Server() { Stop(); }

void Server::Bind() {
  auto& o = impl_->opt;
  if (o.port == 0) {
    port_ = impl_->http.bind_to_any_port(o.host);
    if (port_ <= 0) FailKind(ErrorKind::kIo, "cannot bind to {}", o.host);
  } else {
    if (!impl_->http.bind_to_port(o.host, o.port))
      FailKind(ErrorKind::kIo, "cannot bind to {}:{}", o.host, o.port);
    port_ = o.port;
  }
}

void Server::Serve() { impl_->http.listen_after_bind(); }

void Server::Stop() {
  if (impl_) impl_->http.stop();
}

}  // namespace origami::server
