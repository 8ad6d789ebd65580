// The /api/* handlers: Ollama bodies run as chat or completions jobs (ollama_api.cpp translates)
// and are answered as NDJSON streams or one object; the listing endpoints read the model card.
#include "server/ollama_handler.h"

#include <fmt/format.h>
#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>

#include "server/embeddings.h"
#include "server/job.h"
#include "server/model_registry.h"
#include "server/ollama_api.h"
#include "server/ollama_model.h"
#include "server/stop_filter.h"
#include "server/tool_deltas.h"
#include "util/error.h"

namespace origami::server {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// What the /api/* handlers know of one loaded model: its card and capabilities, computed once
// when it is loaded.
struct OllamaService {
  ServerState& s;
  OllamaModelCard card;
  OllamaContext ctx;
  std::vector<std::string> capabilities;
  std::chrono::system_clock::time_point started = std::chrono::system_clock::now();

  explicit OllamaService(ServerState& st) : s(st) {
    if (s.opt.model_file) {
      card = DescribeGguf(*s.opt.model_file, s.opt.model_id, s.engine.max_seq_len());
    } else {  // a server built without a file (tests): what can be said without one
      card.name = OllamaName(s.opt.model_id);
      card.digest = Sha256Hex(s.opt.model_id);
      card.modified_at = Rfc3339Nano(started);
      card.architecture = "unknown";
      card.parameter_size = "0";
      card.quantization_level = "unknown";
      card.context_length = s.engine.max_seq_len();
    }
    capabilities = OllamaCapabilities(card, s.chat_template);
    ctx.alias = s.opt.model_id;
    auto has = [this](const char* cap) {
      return std::find(capabilities.begin(), capabilities.end(), cap) != capabilities.end();
    };
    ctx.template_thinks = has("thinking");
    ctx.template_tools = has("tools");
    ctx.fim_prefix = card.fim_prefix;
    ctx.fim_suffix = card.fim_suffix;
    ctx.fim_middle = card.fim_middle;
  }
};

std::shared_ptr<OllamaService> MakeOllamaService(ServerState& s) {
  return std::make_shared<OllamaService>(s);
}

namespace {

// The Ollama release whose API this follows; clients gate features on it (tools, think).
constexpr const char* kOllamaVersion = "0.12.0";

int64_t Ns(Clock::duration d) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
}
std::string Now() { return Rfc3339Nano(std::chrono::system_clock::now()); }

void SendError(httplib::Response& res, int status, const std::string& msg, int retry_after_s = 1) {
  if (status == 503) SetRetryAfter(res, retry_after_s);
  res.status = status;
  res.set_content(DumpJson(OllamaErrorBody(msg)), "application/json");
}

void Send(httplib::Response& res, const json& body) {
  res.status = 200;
  res.set_content(DumpJson(body), "application/json; charset=utf-8");
}

json ParseJsonBody(const std::string& body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded()) throw ApiError(400, "invalid JSON in the request body");
  if (!j.is_object()) throw ApiError(400, "the request body must be a JSON object");
  return j;
}

// One /api/chat or /api/generate request being answered.
struct OllamaRun {
  OllamaTranslation tr;
  bool chat = true;
  std::shared_ptr<Job> job;
  // Splits think tags from the answer when tools are off (with tools, the choice's tool parser
  // does it); null when thinking is not split.
  std::unique_ptr<ToolDeltaBuilder> thinking;
  Clock::time_point t0, submitted, first_token, end;
  Clock::time_point last_event;  // when the reader last got something from the engine
  bool have_first = false;
  std::unique_ptr<StopFilter> stops;  // tr.many_stops, applied here rather than by the choice
  std::string text;                   // the answer so far, after those stops

  Choice& choice() { return *job->choices[0]; }
  ToolDeltaBuilder* builder() { return choice().tools ? choice().tools.get() : thinking.get(); }

  // Waits for the engine once; the new text (after the many-stops filter) goes to `pieces`.
  void PumpOnce(ServerState& s, std::vector<std::string>& pieces) {
    pieces.clear();
    if (!have_first && last_event == Clock::time_point{}) last_event = submitted;
    std::vector<Delta> out = Pump(choice(), s.tok, LogprobShape::kNone, milliseconds(100));
    const auto now = Clock::now();
    for (Delta& d : out) {
      std::string piece = std::move(d.text);
      if (stops) {
        piece = stops->Push(piece);
        if (stops->stopped()) job->CancelAll();  // the engine frees the sequence at its next step
      }
      if (!piece.empty()) pieces.push_back(std::move(piece));
    }
    if (choice().done && stops && !stops->stopped()) pieces.push_back(stops->Flush());
    for (const auto& p : pieces) text += p;
    if (!have_first && choice().n_generated > 0) {
      // The engine stamps no times, so a token's time is when this reader saw it. When a fast
      // model's first k tokens arrive in one event, they were made since the previous event:
      // the first is placed at 1/k of that interval, as if evenly spaced.
      const int k = choice().n_generated;
      first_token = last_event + (now - last_event) / k;
      have_first = true;
    }
    if (!out.empty()) last_event = now;
    if (choice().done) end = now;
  }

  OllamaStats Stats() const {
    const Choice& c = *job->choices[0];
    OllamaStats st;
    // A stop string this handler matched ends the answer even when the engine, not yet told to
    // cancel, reached the length limit first.
    const bool stopped_here = stops && stops->stopped();
    st.done_reason = c.finish == FinishReason::kLength && !stopped_here ? "length" : "stop";
    const auto first = have_first ? first_token : end;
    st.total_ns = Ns(end - t0);
    // The model is resident: "load" is the time before the engine had the request (parsing,
    // template, tokenizing), which is what Ollama's scheduler wait amounts to here.
    st.load_ns = Ns(submitted - t0);
    // At least 1 ns each: clients divide counts by these for tokens per second, and tokens that
    // arrive in one event (the reader was busy) share one timestamp.
    st.prompt_eval_ns = std::max<int64_t>(1, Ns(first - submitted));
    st.eval_ns = std::max<int64_t>(1, Ns(end - first));
    st.total_ns = std::max(st.total_ns, st.load_ns + st.prompt_eval_ns + st.eval_ns);
    // The whole prompt, cached tokens included: Ollama clients show it as the prompt's size.
    st.prompt_eval_count = c.n_prompt;
    st.eval_count = c.n_generated;
    return st;
  }

  // A line that is not the last: message (chat) or response (generate).
  json Line(const std::string& content, const std::string& thinking_text,
            const json& tool_calls = nullptr) const {
    json l = {{"model", tr.model}, {"created_at", Now()}};
    if (chat) {
      json m = {{"role", "assistant"}, {"content", content}};
      if (!thinking_text.empty()) m["thinking"] = thinking_text;
      if (!tool_calls.is_null()) m["tool_calls"] = tool_calls;
      l["message"] = m;
    } else {
      l["response"] = content;
      if (!thinking_text.empty()) l["thinking"] = thinking_text;
    }
    l["done"] = false;
    return l;
  }
};

// Content and thinking out of one batch of parser deltas.
void Collect(const std::vector<json>& deltas, std::string& content, std::string& thinking) {
  for (const json& d : deltas) {
    if (d.contains("content") && d["content"].is_string()) content += d["content"];
    if (d.contains("reasoning_content") && d["reasoning_content"].is_string())
      thinking += d["reasoning_content"];
  }
}

// The run's whole answer once generation has ended (the non-streamed reply).
json FinalObject(OllamaRun& r) {
  json msg = {{"role", "assistant"}, {"content", r.text}};
  if (ToolDeltaBuilder* b = r.builder()) {
    b->Push(r.text);
    b->Finish();
    msg = b->Message();
  }
  const json om = OllamaMessage(msg);
  json out = {{"model", r.tr.model}, {"created_at", Now()}};
  if (r.chat) {
    out["message"] = om;
  } else {
    out["response"] = om["content"];
    if (om.contains("thinking")) out["thinking"] = om["thinking"];
  }
  AddOllamaStats(out, r.Stats());
  return out;
}

// How long a non-streamed reply waits before it commits to a 200 and sends keep-alive spaces
// (as json_response.cpp does): a client that hangs up is then noticed and its sequence freed.
constexpr auto kWaitBeforeKeepAlive = std::chrono::seconds(10);

void ReplyWhole(ServerState& s, std::shared_ptr<OllamaRun> run, httplib::Response& res) {
  const auto until = Clock::now() + kWaitBeforeKeepAlive;
  std::vector<std::string> pieces;
  while (!run->choice().done && Clock::now() < until) run->PumpOnce(s, pieces);
  if (run->choice().done) {
    if (run->choice().finish == FinishReason::kError) {
      SendError(res, 500, "generation failed: " + run->choice().error);
      return;
    }
    Send(res, FinalObject(*run));
    return;
  }
  res.set_chunked_content_provider(
      "application/json; charset=utf-8",
      [&s, run](size_t, httplib::DataSink& sink) {
        std::vector<std::string> pieces;
        auto last = Clock::now();
        while (!run->choice().done) {
          run->PumpOnce(s, pieces);
          if (Clock::now() - last > std::chrono::seconds(1)) {
            if (!sink.write(" ", 1)) {
              run->job->CancelAll();
              return false;
            }
            last = Clock::now();
          }
        }
        // The status is already sent: a failure can only be told in the body.
        const json body = run->choice().finish == FinishReason::kError
                              ? OllamaErrorBody("generation failed: " + run->choice().error)
                              : FinalObject(*run);
        const std::string text = DumpJson(body);
        if (!sink.write(text.data(), text.size())) return false;
        sink.done();
        return true;
      },
      [run](bool) { run->job->CancelAll(); });
}

// NDJSON: a line per piece of text, a line with the tool calls, then the final line with the
// statistics; a failure after the 200 is a final {"error": ...} line.
void ReplyStream(ServerState& s, std::shared_ptr<OllamaRun> run, httplib::Response& res) {
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "application/x-ndjson",
      [&s, run](size_t, httplib::DataSink& sink) {
        auto w = [&](const json& j) {
          const std::string line = DumpJson(j) + "\n";
          if (sink.write(line.data(), line.size())) return true;
          run->job->CancelAll();
          return false;
        };
        Choice& c = run->choice();
        ToolDeltaBuilder* b = run->builder();
        std::vector<std::string> pieces;
        while (!c.done) {
          run->PumpOnce(s, pieces);
          for (const std::string& piece : pieces) {
            if (piece.empty()) continue;
            std::string content, thinking;
            if (b)
              Collect(b->Push(piece), content, thinking);
            else
              content = piece;
            if ((!content.empty() || !thinking.empty()) && !w(run->Line(content, thinking)))
              return false;
          }
        }
        if (c.finish == FinishReason::kError) {
          w(OllamaErrorBody("generation failed: " + c.error));
          sink.done();
          return true;
        }
        if (b) {
          std::string content, thinking;
          Collect(b->Finish(), content, thinking);
          const json om = OllamaMessage(b->Message());
          const json calls = om.contains("tool_calls") ? om["tool_calls"] : json(nullptr);
          if ((!content.empty() || !thinking.empty() || !calls.is_null()) &&
              !w(run->Line(content, thinking, calls)))
            return false;
        }
        json fin = run->Line("", "");
        AddOllamaStats(fin, run->Stats());
        if (!w(fin)) return false;
        sink.done();
        return true;
      },
      [run](bool) { run->job->CancelAll(); });
}

void HandleGeneration(OllamaService& svc, const httplib::Request& req, httplib::Response& res,
                      bool chat) {
  auto run = std::make_shared<OllamaRun>();
  run->t0 = Clock::now();
  run->chat = chat;
  try {
    run->tr =
        chat ? TranslateOllamaChat(req.body, svc.ctx) : TranslateOllamaGenerate(req.body, svc.ctx);
    // An embedding model (its GGUF names a pooling type) answers only /api/embed, as in Ollama.
    if (svc.card.embedding)
      throw ApiError(400, fmt::format("\"{}\" does not support {}", run->tr.model,
                                      chat ? "chat" : "generate"));
    if (run->tr.action != OllamaAction::kGenerate) {
      // The load call, and keep_alive 0's unload call: the model is loaded (the route leased it),
      // and with keep_alive 0 the registry unloads it once this answer is written (a one-model
      // server keeps it: it is all it serves).
      json out = {{"model", run->tr.model}, {"created_at", Now()}};
      if (chat)
        out["message"] = {{"role", "assistant"}, {"content", ""}};
      else
        out["response"] = "";
      out["done"] = true;
      out["done_reason"] = run->tr.action == OllamaAction::kUnload ? "unload" : "load";
      Send(res, out);
      return;
    }
    run->job = StartJob(svc.s, run->tr.body, run->tr.endpoint);
  } catch (const ApiError& e) {
    SendError(res, e.status, e.what(), e.retry_after_s);
    return;
  } catch (const std::exception& e) {  // origami::Error from building the job: the client's input
    SendError(res, 400, e.what());
    return;
  }
  run->submitted = Clock::now();
  if (!run->tr.many_stops.empty()) run->stops = std::make_unique<StopFilter>(run->tr.many_stops);
  if (!run->choice().tools && run->tr.split_thinking) {
    ToolParseOptions po;
    po.parse_tool_calls = false;
    po.starts_in_reasoning = run->job->prompt_in_think;
    run->thinking = std::make_unique<ToolDeltaBuilder>(ToolCallFormat::kNone, po);
  }
  if (run->tr.stream)
    ReplyStream(svc.s, std::move(run), res);
  else
    ReplyWhole(svc.s, std::move(run), res);
}

// /api/embed (input: a string or strings; truncate, dimensions) and the older /api/embeddings
// (prompt: one string). Only embedding models (the GGUF names a pooling type) answer, as the
// capability list says. As in Ollama, an empty input is a load call (no vectors), /api/embed's
// vectors are unit length and /api/embeddings' are not.
void HandleEmbed(OllamaService& svc, const httplib::Request& req, httplib::Response& res,
                 bool legacy) {
  try {
    const auto t0 = Clock::now();
    const json j = ParseJsonBody(req.body);
    const std::string model = OllamaModelOf(j, svc.ctx.alias);
    std::vector<std::string> inputs;
    const char* field = legacy ? "prompt" : "input";
    auto it = j.find(field);
    if (it != j.end() && !it->is_null()) {
      if (it->is_string()) {
        if (!it->get_ref<const std::string&>().empty()) inputs.push_back(it->get<std::string>());
      } else if (!legacy && it->is_array()) {
        for (const auto& x : *it) {
          if (!x.is_string()) throw ApiError(400, "input: must be a string or an array of strings");
          inputs.push_back(x.get<std::string>());
        }
      } else {
        throw ApiError(400, fmt::format("{}: must be a string{}", field,
                                        legacy ? "" : " or an array of strings"));
      }
    }
    if (auto ka = j.find("keep_alive"); ka != j.end() && !ka->is_null()) ParseKeepAlive(*ka);
    bool truncate = true;
    if (auto tr = j.find("truncate"); tr != j.end() && !tr->is_null()) {
      if (!tr->is_boolean()) throw ApiError(400, "truncate: must be true or false");
      truncate = tr->get<bool>();
    }
    int dimensions = 0;
    if (auto d = j.find("dimensions"); d != j.end() && !d->is_null() && !legacy)
      dimensions = ParseDimensions(svc.s, *d, "dimensions");
    if (!svc.card.embedding)
      throw ApiError(400, fmt::format("\"{}\" does not support embeddings", model));
    if (inputs.size() > static_cast<size_t>(Engine::kMaxEmbeddingInputs))
      throw ApiError(400, fmt::format("input: {} inputs in one request; at most {} are allowed",
                                      inputs.size(), Engine::kMaxEmbeddingInputs));
    std::vector<std::vector<int32_t>> ids;
    for (size_t i = 0; i < inputs.size(); ++i) {
      try {
        ids.push_back(EmbeddingTokens(svc.s, inputs[i], truncate, i));
      } catch (const ApiError& e) {
        if (e.status != 400) throw;
        throw ApiError(400, "the input length exceeds the context length");  // Ollama's words
      }
    }
    const auto loaded = Clock::now();
    EmbedAnswer a;
    if (!ids.empty()) a = RunEmbeddings(svc.s, std::move(ids), dimensions, !legacy);
    if (legacy) {
      Send(res, {{"embedding", a.vectors.empty() ? std::vector<float>{} : a.vectors[0]}});
      return;
    }
    Send(res, {{"model", model},
               {"embeddings", a.vectors},
               {"total_duration", Ns(Clock::now() - t0)},
               {"load_duration", Ns(loaded - t0)},
               {"prompt_eval_count", a.n_tokens}});
  } catch (const ApiError& e) {
    SendError(res, e.status, e.what(), e.retry_after_s);
  } catch (const std::exception& e) {
    SendError(res, 400, e.what());
  }
}

void HandleShow(OllamaService& svc, const httplib::Request& req, httplib::Response& res) {
  try {
    const json j = ParseJsonBody(req.body);
    OllamaModelOf(j, svc.ctx.alias);
    const OllamaModelCard& c = svc.card;
    Send(res, {{"license", c.license},
               {"modelfile", fmt::format("# origami serves this GGUF file as it is\nFROM {}\n",
                                         c.path.empty() ? c.name : c.path)},
               {"parameters", fmt::format("num_ctx {}", svc.s.engine.max_seq_len())},
               {"template", svc.s.chat_template},
               {"system", ""},
               {"details", OllamaDetails(c)},
               {"model_info", c.model_info},
               {"capabilities", svc.capabilities},
               {"modified_at", c.modified_at}});
  } catch (const ApiError& e) {
    SendError(res, e.status, e.what(), e.retry_after_s);
  }
}

json PsEntry(OllamaService& svc, std::optional<std::chrono::system_clock::time_point> expires) {
  json e = OllamaTagEntry(svc.card);
  e.erase("modified_at");
  // Weights and the KV pool; nothing is on a GPU.
  e["size"] = svc.card.size + svc.s.engine.kv_pool_bytes();
  e["size_vram"] = 0;
  e["context_length"] = svc.s.engine.max_seq_len();
  // A model kept forever (keep_alive -1, or the one model of a one-model server): a century
  // stands for "forever" (Ollama writes a far-future time for keep_alive -1 too).
  e["expires_at"] = Rfc3339Nano(
      expires ? *expires : std::chrono::system_clock::now() + std::chrono::hours(24 * 36525));
  return e;
}

// The model a body names and its keep_alive, read before the model is resolved. Throws ApiError
// (400) for a missing model or a bad keep_alive.
struct Routing {
  std::string model;
  std::optional<milliseconds> keep_alive;
  bool unload_call = false;  // keep_alive 0 with nothing to generate
};

std::string RouteName(const std::string& body) {
  const json j = json::parse(body, nullptr, false);
  if (!j.is_object()) return "";
  for (const char* f : {"model", "name"})
    if (auto it = j.find(f); it != j.end() && it->is_string()) return it->get<std::string>();
  return "";
}

Routing RouteOf(const ModelRegistry& reg, const std::string& body, const char* prompt_field) {
  Routing r;
  const json j = json::parse(body, nullptr, false);
  if (!j.is_object()) return r;  // the handler reports the body
  if (reg.single()) return r;    // the one model; its handler checks the name
  r.model = RouteName(body);
  if (r.model.empty()) OllamaModelOf(j, "");  // its 400s: missing, empty, not a string
  if (auto ka = j.find("keep_alive"); ka != j.end() && !ka->is_null()) {
    const double seconds = ParseKeepAlive(*ka);
    r.keep_alive =
        seconds < 0 ? milliseconds(-1) : milliseconds(static_cast<int64_t>(seconds * 1000));
    if (seconds == 0 && prompt_field) {
      auto p = j.find(prompt_field);
      r.unload_call = p == j.end() || p->is_null() ||
                      (p->is_string() && p->get_ref<const std::string&>().empty()) ||
                      (p->is_array() && p->empty());
    }
  }
  return r;
}

}  // namespace

void RegisterOllamaRoutes(httplib::Server& http, ModelRegistry& reg) {
  http.Get("/api/version", [](const httplib::Request&, httplib::Response& res) {
    Send(res, {{"version", kOllamaVersion}});
  });
  http.Get("/api/tags", [&reg](const httplib::Request&, httplib::Response& res) {
    json models = json::array();
    for (const auto& m : reg.List())
      models.push_back(m.state ? OllamaTagEntry(m.state->ollama->card) : m.info->ollama_tag);
    Send(res, {{"models", models}});
  });
  http.Get("/api/ps", [&reg](const httplib::Request&, httplib::Response& res) {
    json models = json::array();
    for (const auto& m : reg.List())
      if (m.state) models.push_back(PsEntry(*m.state->ollama, m.expires_at));
    Send(res, {{"models", models}});
  });
  // Each model route resolves the body's model (loading it, or waiting for its load) and holds
  // it until the answer is written.
  auto routed = [&reg](const char* prompt_field, auto handle) {
    return [&reg, prompt_field, handle](const httplib::Request& req, httplib::Response& res) {
      std::shared_ptr<ModelRegistry::Lease> lease;
      try {
        const Routing r = RouteOf(reg, req.body, prompt_field);
        if (r.unload_call && !reg.IsLoaded(r.model)) {
          // Ollama's unload call for a model that is not loaded: nothing to load first.
          if (!reg.UnloadSoon(r.model))
            throw ApiError(404,
                           fmt::format("model \"{}\" not found, try pulling it first", r.model));
          json out = {
              {"model", r.model}, {"created_at", Now()}, {"done", true}, {"done_reason", "unload"}};
          if (std::string_view(prompt_field) == "messages")
            out["message"] = {{"role", "assistant"}, {"content", ""}};
          else
            out["response"] = "";
          Send(res, out);
          return;
        }
        lease = reg.Acquire(r.model, true, r.keep_alive);
      } catch (const ApiError& e) {
        // Ollama's words for a model it does not have.
        SendError(
            res, e.status,
            e.status == 404 && e.param == "model"
                ? fmt::format("model \"{}\" not found, try pulling it first", RouteName(req.body))
                : std::string(e.what()));
        return;
      }
      handle(*lease->state().ollama, req, res);
      HoldUntilSent(res, std::move(lease));
    };
  };
  http.Post("/api/show",
            routed(nullptr, [](OllamaService& svc, const httplib::Request& req,
                               httplib::Response& res) { HandleShow(svc, req, res); }));
  http.Post("/api/chat", routed("messages", [](OllamaService& svc, const httplib::Request& req,
                                               httplib::Response& res) {
              HandleGeneration(svc, req, res, true);
            }));
  http.Post("/api/generate", routed("prompt", [](OllamaService& svc, const httplib::Request& req,
                                                 httplib::Response& res) {
              HandleGeneration(svc, req, res, false);
            }));
  http.Post("/api/embed",
            routed(nullptr, [](OllamaService& svc, const httplib::Request& req,
                               httplib::Response& res) { HandleEmbed(svc, req, res, false); }));
  http.Post("/api/embeddings",
            routed(nullptr, [](OllamaService& svc, const httplib::Request& req,
                               httplib::Response& res) { HandleEmbed(svc, req, res, true); }));
  // Model management needs a registry and a model store; origami serves the files it was started
  // with. 400 rather than 501: Ollama clients show the message either way, and generic HTTP
  // clients retry 5xx answers, which cannot succeed here.
  auto unsupported = [](const char* what) {
    return [what](const httplib::Request&, httplib::Response& res) {
      SendError(res, 400,
                fmt::format("{} is not supported: origami serves the local GGUF file it was "
                            "started with (origami serve -m FILE.gguf)",
                            what));
    };
  };
  http.Post("/api/pull", unsupported("pulling models"));
  http.Post("/api/push", unsupported("pushing models"));
  http.Post("/api/create", unsupported("creating models"));
  http.Post("/api/copy", unsupported("copying models"));
  http.Delete("/api/delete", unsupported("deleting models"));
  http.Post("/api/delete", unsupported("deleting models"));
  http.Post(R"(/api/blobs/(.+))", unsupported("uploading blobs"));
}

}  // namespace origami::server
