// Server: httplib routes for the OpenAI API, auth, CORS, metrics, SSE streaming.
#include "server/server.h"

#include <fmt/format.h>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <ctime>
#include <map>
#include <mutex>
#include <random>

#include "chat/template.h"
#include "server/api.h"
#include "server/generation.h"
#include "util/error.h"

namespace origami::server {

using nlohmann::json;
using std::chrono::milliseconds;

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
  if (e.status == 503) res.set_header("Retry-After", "1");
  SendJson(res, e.status, e.Body());
}

std::string Sse(const json& j) {
  return "data: " + j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
}

}  // namespace

struct Server::Impl {
  Engine& engine;
  const Tokenizer& tok;
  ServerOptions opt;
  httplib::Server http;
  std::string chat_template;
  std::string bos_text, eos_text;
  std::atomic<uint64_t> next_id{0};
  uint64_t id_salt = 0;
  std::mutex metrics_mu;
  std::map<int, int64_t> http_status_counts;
  std::atomic<int64_t> streams_open{0};

  Impl(Engine& e, const Tokenizer& t, ServerOptions o) : engine(e), tok(t), opt(std::move(o)) {
    chat_template = opt.chat_template.empty() ? kDefaultChatTemplate : opt.chat_template;
    if (tok.bos_id() >= 0) bos_text = tok.Decode({tok.bos_id()}, false);
    if (tok.eos_id() >= 0) eos_text = tok.Decode({tok.eos_id()}, false);
    id_salt = std::random_device{}();
    Routes();
  }

  std::string NewId(const char* prefix) {
    return fmt::format("{}{:08x}{:08x}", prefix, id_salt & 0xffffffffu, next_id.fetch_add(1) + 1);
  }

  void CheckModel(const std::string& model) const {
    if (!model.empty() && model != opt.model_id)
      throw ApiError(404,
                     fmt::format("The model '{}' does not exist; this server serves '{}'", model,
                                 opt.model_id),
                     "model", "model_not_found");
  }

  std::vector<int32_t> Tokenize(const std::string& text) const {
    EncodeOptions eo;
    eo.add_special = true;
    eo.parse_special = true;
    std::vector<int32_t> ids = tok.Encode(text, eo);
    // A template that spells the BOS token itself plus add_bos would give two.
    if (ids.size() >= 2 && tok.bos_id() >= 0 && ids[0] == tok.bos_id() && ids[1] == tok.bos_id())
      ids.erase(ids.begin());
    if (ids.empty() && tok.bos_id() >= 0) ids.push_back(tok.bos_id());
    return ids;
  }

  void Routes();
  void HandleGenerate(const httplib::Request& req, httplib::Response& res, Endpoint ep);
  void Metrics(httplib::Response& res);
};

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
                              {"Access-Control-Allow-Methods", "GET, POST, OPTIONS"}});
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
    const bool protected_path = req.path.rfind("/v1/", 0) == 0 || req.path == "/metrics";
    if (!opt.api_key.empty() && protected_path) {
      const std::string auth = req.get_header_value("Authorization");
      const std::string prefix = "Bearer ";
      const std::string given =
          auth.rfind(prefix, 0) == 0 ? auth.substr(prefix.size()) : std::string();
      if (!ConstantTimeEquals(given, opt.api_key)) {
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
    std::string msg = "request failed";
    if (res.status == 404)
      msg = fmt::format("Unknown route {} {}", req.method, req.path);
    else if (res.status == 413)
      msg = "The request body is too large";
    else if (res.status == 400)
      msg = "Malformed HTTP request";
    else if (res.status == 405)
      msg = "Method not allowed";
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

  http.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(kWebPage, "text/html; charset=utf-8");
  });
  http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    const EngineStats s = engine.Stats();
    SendJson(res, 200,
             {{"status", "ok"},
              {"live", s.live},
              {"waiting", s.waiting},
              {"kv_blocks_in_use", s.kv_blocks_in_use},
              {"kv_blocks_total", s.kv_blocks_total}});
  });
  auto model_obj = [this] {
    return json{{"id", opt.model_id},
                {"object", "model"},
                {"created", 0},
                {"owned_by", "origami"},
                {"max_seq_len", engine.max_seq_len()}};
  };
  http.Get("/v1/models", [model_obj](const httplib::Request&, httplib::Response& res) {
    SendJson(res, 200, {{"object", "list"}, {"data", json::array({model_obj()})}});
  });
  http.Get(R"(/v1/models/(.+))",
           [this, model_obj](const httplib::Request& req, httplib::Response& res) {
             try {
               CheckModel(req.matches[1].str());
               SendJson(res, 200, model_obj());
             } catch (const ApiError& e) {
               SendError(res, e);
             }
           });
  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) { Metrics(res); });
  http.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
    HandleGenerate(req, res, Endpoint::kChat);
  });
  http.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
    HandleGenerate(req, res, Endpoint::kCompletions);
  });
}

void Server::Impl::Metrics(httplib::Response& res) {
  const EngineStats s = engine.Stats();
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
         static_cast<double>(streams_open.load()));
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

namespace {

// State shared by a request's handler and its SSE provider.
struct Job {
  ApiRequest req;
  std::string id;
  int64_t created = 0;
  std::vector<std::unique_ptr<Choice>> choices;
  std::vector<std::string> echo;  // completions with echo: the prompt text per prompt
  bool tools_active = false;
  void CancelAll() {
    for (auto& c : choices)
      if (c->stream && !c->done) c->stream->Cancel();
  }
};

json Usage(const Job& job) {
  int prompt = 0, completion = 0, cached = 0;
  std::vector<bool> seen;
  const int n = job.req.n;
  for (size_t i = 0; i < job.choices.size(); ++i) {
    const Choice& c = *job.choices[i];
    if (i % n == 0) {  // the prompt counts once per prompt, as OpenAI does for n > 1
      prompt += c.n_prompt;
      cached += c.n_cached;
    }
    completion += c.n_generated;
  }
  return {{"prompt_tokens", prompt},
          {"completion_tokens", completion},
          {"total_tokens", prompt + completion},
          {"prompt_tokens_details", {{"cached_tokens", cached}}}};
}

}  // namespace

void Server::Impl::HandleGenerate(const httplib::Request& http_req, httplib::Response& res,
                                  Endpoint ep) {
  auto job = std::make_shared<Job>();
  try {
    job->req = ParseRequest(http_req.body, ep, opt.max_n);
    ApiRequest& r = job->req;
    CheckModel(r.model);
    std::vector<std::vector<int32_t>> prompts;
    if (ep == Endpoint::kChat) {
      job->tools_active = !r.tools.is_null() && r.tool_choice != "none" &&
                          static_cast<bool>(opt.hooks.parse_tool_calls);
      std::string text;
      try {
        text = ApplyChatTemplate(chat_template, r.messages,
                                 r.tool_choice == "none" ? nullptr : r.tools, true, bos_text,
                                 eos_text, r.template_kwargs);
      } catch (const Error& e) {
        throw ApiError(400, fmt::format("the chat template rejected the messages: {}", e.what()),
                       "messages");
      }
      prompts.push_back(Tokenize(text));
    } else {
      for (const auto& p : r.prompts) {
        prompts.push_back(Tokenize(p));
        job->echo.push_back(p);
      }
      for (const auto& p : r.prompt_ids) {
        for (int32_t t : p)
          if (t >= engine.n_vocab())
            throw ApiError(400,
                           fmt::format("token id {} is out of range (vocabulary has {} tokens)", t,
                                       engine.n_vocab()),
                           "prompt");
        prompts.push_back(p);
        job->echo.push_back(tok.Decode(p, true));
      }
    }
    const char* prompt_param = ep == Endpoint::kChat ? "messages" : "prompt";
    for (const auto& p : prompts) {
      if (static_cast<int64_t>(p.size()) >= engine.max_seq_len())
        throw ApiError(
            400,
            fmt::format(
                "This model's maximum context length is {} tokens; the prompt has {} tokens",
                engine.max_seq_len(), p.size()),
            prompt_param, "context_length_exceeded");
      for (int32_t t : p)
        if (t < 0 || t >= engine.n_vocab())
          throw ApiError(400, fmt::format("token id {} is out of range", t), prompt_param);
    }
    for (const auto& [id, b] : r.logit_bias)
      if (id >= engine.n_vocab())
        throw ApiError(400, fmt::format("logit_bias: token id {} is out of range", id),
                       "logit_bias");

    job->id = NewId(ep == Endpoint::kChat ? "chatcmpl-" : "cmpl-");
    job->created = static_cast<int64_t>(std::time(nullptr));
    for (size_t pi = 0; pi < prompts.size(); ++pi) {
      for (int j = 0; j < r.n; ++j) {
        const int room = engine.max_seq_len() - static_cast<int>(prompts[pi].size());
        auto c = std::make_unique<Choice>(tok, r.stop, static_cast<int>(job->choices.size()),
                                          static_cast<int>(prompts[pi].size()), job->tools_active);
        for (int32_t t : prompts[pi]) c->dec.Push(t);  // prime the detokenizer (leading-space rule)
        GenerationRequest g;
        g.prompt = prompts[pi];
        g.sampling = r.sampling;
        if (r.seed_given) g.sampling.seed = r.sampling.seed + static_cast<uint64_t>(j);
        g.max_tokens = std::min(r.max_tokens.value_or(room), room);
        g.logit_bias = r.logit_bias;
        g.ignore_eos = r.ignore_eos;
        g.top_logprobs = r.logprobs ? r.top_logprobs : -1;
        if (opt.hooks.make_constraint) {
          try {
            g.constraint = opt.hooks.make_constraint(r.raw, tok);
          } catch (const Error& e) {
            throw ApiError(400, e.what(), "response_format");
          }
        }
        try {
          c->stream = engine.Submit(std::move(g));
        } catch (const OverloadedError& e) {
          job->CancelAll();
          throw ApiError(503, e.what(), "", "overloaded", "server_error");
        } catch (const Error& e) {
          job->CancelAll();
          throw ApiError(400, e.what(), prompt_param);
        }
        job->choices.push_back(std::move(c));
      }
    }
  } catch (const ApiError& e) {
    SendError(res, e);
    return;
  } catch (const Error& e) {
    SendError(res, ApiError(400, e.what()));
    return;
  }

  const bool chat = ep == Endpoint::kChat;
  const LogprobShape shape = !job->req.logprobs ? LogprobShape::kNone
                             : chat             ? LogprobShape::kChat
                                                : LogprobShape::kCompletions;
  const std::string object = chat ? "chat.completion" : "text_completion";
  auto finish_reason = [this, job](const Choice& c, std::string& content,
                                   json& tool_calls) -> std::string {
    content = c.text;
    if (job->tools_active && opt.hooks.parse_tool_calls(c.text, job->req.raw, content, tool_calls))
      return "tool_calls";
    return OpenAiFinishReason(c.finish);
  };
  // Completions logprobs: OpenAI's column layout.
  auto completion_logprobs = [](const json& entries, size_t offset0) {
    json lp = {{"tokens", json::array()},
               {"token_logprobs", json::array()},
               {"top_logprobs", json::array()},
               {"text_offset", json::array()}};
    size_t off = offset0;
    for (const auto& e : entries) {
      lp["tokens"].push_back(e["token"]);
      lp["token_logprobs"].push_back(e["logprob"]);
      lp["top_logprobs"].push_back(e["top"]);
      lp["text_offset"].push_back(off);
      off += e["token"].get<std::string>().size();
    }
    return lp;
  };

  if (!job->req.stream) {
    // Not streamed: the JSON body is written once generation ends. Until then a space (JSON's
    // leading whitespace) goes out every second, so a client that hung up is noticed and its
    // sequences freed; httplib has no other way to see a closed connection mid-handler.
    res.set_chunked_content_provider(
        "application/json",
        [this, job, chat, shape, object, completion_logprobs, finish_reason](
            size_t, httplib::DataSink& sink) {
          std::vector<json> logprobs(job->choices.size(), json::array());
          auto last_write = std::chrono::steady_clock::now();
          for (bool all = false; !all;) {
            all = true;
            for (auto& c : job->choices) {
              if (c->done) continue;
              for (Delta& d : Pump(*c, tok, shape, milliseconds(50)))
                for (auto& e : d.logprobs) logprobs[c->index].push_back(std::move(e));
              all = all && c->done;
            }
            if (!all && std::chrono::steady_clock::now() - last_write > std::chrono::seconds(1)) {
              if (!sink.write(" ", 1)) {
                job->CancelAll();
                return false;
              }
              last_write = std::chrono::steady_clock::now();
            }
          }
          json body;
          json choices = json::array();
          for (auto& c : job->choices) {
            if (c->finish == FinishReason::kError) {
              body = ErrorBody(500, "generation failed: " + c->error, "", "generation_error",
                               "server_error");
              break;
            }
            std::string content;
            json tool_calls;
            const std::string fr = finish_reason(*c, content, tool_calls);
            json ch = {{"index", c->index}};
            if (chat) {
              json msg = {{"role", "assistant"}, {"content", content}};
              if (!tool_calls.is_null()) {
                msg["tool_calls"] = tool_calls;
                if (content.empty()) msg["content"] = nullptr;
              }
              ch["message"] = msg;
              ch["logprobs"] = shape == LogprobShape::kNone ? json(nullptr)
                                                            : json{{"content", logprobs[c->index]}};
            } else {
              const std::string echo = job->req.echo ? job->echo[c->index / job->req.n] : "";
              ch["text"] = echo + content;
              ch["logprobs"] = shape == LogprobShape::kNone
                                   ? json(nullptr)
                                   : completion_logprobs(logprobs[c->index], echo.size());
            }
            ch["finish_reason"] = fr;
            choices.push_back(ch);
          }
          if (body.is_null())
            body = {{"id", job->id},
                    {"object", object},
                    {"created", job->created},
                    {"model", opt.model_id},
                    {"system_fingerprint", "origami"},
                    {"choices", choices},
                    {"usage", Usage(*job)}};
          const std::string text = body.dump(-1, ' ', false, json::error_handler_t::replace);
          if (!sink.write(text.data(), text.size())) return false;
          sink.done();
          return true;
        },
        [job](bool) { job->CancelAll(); });
    return;
  }

  // Streaming: one SSE event per pump with news; a comment line now and then detects a client
  // that went away during a long prefill.
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, job, chat, shape, completion_logprobs, finish_reason](size_t,
                                                                   httplib::DataSink& sink) {
        ++streams_open;
        struct Guard {
          std::atomic<int64_t>& n;
          ~Guard() { --n; }
        } guard{streams_open};
        const std::string object = chat ? "chat.completion.chunk" : "text_completion";
        auto chunk = [&](const json& choices) {
          json j = {{"id", job->id},
                    {"object", object},
                    {"created", job->created},
                    {"model", opt.model_id},
                    {"system_fingerprint", "origami"},
                    {"choices", choices}};
          if (job->req.include_usage) j["usage"] = nullptr;
          const std::string s = Sse(j);
          return sink.write(s.data(), s.size());
        };
        auto fail = [&] {
          job->CancelAll();
          return false;
        };
        if (chat) {
          for (auto& c : job->choices)
            if (!chunk(json::array({{{"index", c->index},
                                     {"delta", {{"role", "assistant"}, {"content", ""}}},
                                     {"logprobs", nullptr},
                                     {"finish_reason", nullptr}}})))
              return fail();
        }
        std::vector<size_t> offsets(job->choices.size(), 0);
        auto last_write = std::chrono::steady_clock::now();
        for (;;) {
          bool all = true, wrote = false;
          for (auto& c : job->choices) {
            if (c->done) continue;
            for (Delta& d : Pump(*c, tok, shape, milliseconds(job->choices.size() > 1 ? 5 : 100))) {
              const bool hold = job->tools_active;  // tool calls are parsed from the whole text
              if ((!d.text.empty() && !hold) || (!d.logprobs.empty() && !hold)) {
                json ch = {{"index", c->index}, {"finish_reason", nullptr}};
                if (chat) {
                  ch["delta"] = {{"content", d.text}};
                  ch["logprobs"] =
                      shape == LogprobShape::kNone ? json(nullptr) : json{{"content", d.logprobs}};
                } else {
                  ch["text"] = d.text;
                  ch["logprobs"] = shape == LogprobShape::kNone
                                       ? json(nullptr)
                                       : completion_logprobs(d.logprobs, offsets[c->index]);
                  offsets[c->index] += d.text.size();
                }
                if (!chunk(json::array({ch}))) return fail();
                wrote = true;
              }
              if (d.finished) {
                if (c->finish == FinishReason::kError) {
                  const std::string s =
                      Sse(ErrorBody(500, "generation failed: " + c->error, "", "generation_error"));
                  sink.write(s.data(), s.size());
                  sink.done();
                  return true;
                }
                std::string content;
                json tool_calls;
                const std::string fr = finish_reason(*c, content, tool_calls);
                json ch = {{"index", c->index}, {"finish_reason", fr}};
                if (chat) {
                  json delta = json::object();
                  if (job->tools_active) {
                    if (!content.empty()) delta["content"] = content;
                    if (!tool_calls.is_null()) {
                      json calls = tool_calls;
                      for (size_t k = 0; k < calls.size(); ++k) calls[k]["index"] = k;
                      delta["tool_calls"] = calls;
                    }
                  }
                  ch["delta"] = delta;
                  ch["logprobs"] = nullptr;
                } else {
                  ch["text"] = "";
                  ch["logprobs"] = nullptr;
                }
                if (!chunk(json::array({ch}))) return fail();
                wrote = true;
              }
            }
            all = all && c->done;
          }
          const auto now = std::chrono::steady_clock::now();
          if (wrote) {
            last_write = now;
          } else if (now - last_write > std::chrono::seconds(1)) {
            static const char kPing[] = ": ping\n\n";
            if (!sink.write(kPing, sizeof(kPing) - 1)) return fail();
            last_write = now;
          }
          if (all) break;
        }
        if (job->req.include_usage) {
          json j = {{"id", job->id},
                    {"object", object},
                    {"created", job->created},
                    {"model", opt.model_id},
                    {"system_fingerprint", "origami"},
                    {"choices", json::array()},
                    {"usage", Usage(*job)}};
          const std::string s = Sse(j);
          if (!sink.write(s.data(), s.size())) return fail();
        }
        static const char kDone[] = "data: [DONE]\n\n";
        if (!sink.write(kDone, sizeof(kDone) - 1)) return fail();
        sink.done();
        return true;
      },
      [job](bool) { job->CancelAll(); });  // a dropped connection frees the sequences at once
}

Server::Server(Engine& engine, const Tokenizer& tok, ServerOptions opt)
    : impl_(std::make_unique<Impl>(engine, tok, std::move(opt))) {}

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
