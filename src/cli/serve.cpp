// `origami serve`: the OpenAI-compatible HTTP server over continuous-batching Engines: one model
// (-m FILE), or many (-m given several times, --models-dir) loaded on first use and unloaded by
// keep-alive and the memory budget (server/model_registry.h).
#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/cluster_flags.h"
#include "cli/commands.h"
#include "cli/environment.h"
#include "cli/lora_flags.h"
#include "cli/memory_flags.h"
#include "model/model.h"
#include "mpi/cluster.h"
#include "runtime/engine.h"
#include "runtime/session.h"
#include "server/hooks.h"
#include "server/model_registry.h"
#include "server/ollama_api.h"
#include "server/ollama_model.h"
#include "server/server.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace origami::cli {

namespace {

struct ServeOptions {
  std::string device = "cpu";  // --device
  std::vector<std::string> models;  // -m, once or more
  std::string models_dir;           // --models-dir: every GGUF in it (aliases.json: file -> name)
  std::string keep_alive = "5m";    // --keep-alive: how long an idle model stays (many models)
  int max_loaded = 0;               // --max-loaded: loaded models at once (0: the budget decides)
  std::string host = "127.0.0.1";
  int port = 8080;
  int parallel = 4;
  int ctx_size = 0;
  int max_seq_len = 0;
  int max_queue = 64;
  int n_predict = -1;
  std::string reasoning_format = "auto";
  int threads = 1;
  int http_threads = 0;
  std::string api_key;
  std::string api_key_file;
  std::string alias;
  std::string chat_template_file;
  bool cors = false;
  bool keep_billing_header = false;
  size_t responses_max = 1000;
  size_t responses_max_bytes = 256u << 20;
  bool responses_max_bytes_given = false;  // else: at most a sixteenth of the memory budget
  int responses_ttl = 3600;
  bool no_prefix_cache = false;
  size_t max_body = 8u << 20;
  std::string pooling;  // empty: the model's
  KvTypeFlags kv;
  MemoryFlags mem;
  std::vector<std::string> loras;    // --lora FILE[:SCALE]: applied to every request
  ClusterFlags cluster;              // under mpirun
};

std::string ReadFile(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) FailKind(ErrorKind::kIo, "cannot read {} '{}'", what, path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string ModelId(const std::string& path) {
  std::string base = path.substr(path.find_last_of('/') + 1);
  if (base.size() > 5 && base.ends_with(".gguf")) base.resize(base.size() - 5);
  return base;
}

int HttpThreads(const ServeOptions& o) {
  return o.http_threads > 0 ? o.http_threads : std::max(64, 2 * (o.parallel + o.max_queue) + 16);
}

// The engine options the flags give for a model (before the memory plan adjusts them); is_eog is
// set by whoever holds the tokenizer.
EngineOptions EngineOptionsFor(const ServeOptions& o, const DecoderSpec& spec) {
  EngineOptions eo;
  eo.n_parallel = o.parallel;
  const int per_seq = ResolveContextSize(spec, 0);
  eo.kv_tokens = o.ctx_size > 0 ? o.ctx_size : std::min(65536, per_seq * o.parallel);
  eo.max_seq_len = o.max_seq_len > 0 ? o.max_seq_len : per_seq;
  eo.max_queue = o.max_queue;
  eo.prefix_cache = !o.no_prefix_cache;
  eo.kv_types = o.kv.Resolve();
  if (!o.pooling.empty()) {
    static const char* const kNames[] = {"none", "mean", "cls", "last", "rank"};
    eo.pooling = -1;
    for (int i = 0; i < 5; ++i)
      if (o.pooling == kNames[i]) eo.pooling = i;
    if (eo.pooling < 0)
      Fail("--pooling: '{}' is not one of none, mean, cls, last, rank", o.pooling);
  }
  return eo;
}

// The Responses store is request state the plan counts: unless given, it is bounded by the budget.
uint64_t ResponsesBytes(const ServeOptions& o, const MemoryFlags& mem) {
  return o.responses_max_bytes_given
             ? o.responses_max_bytes
             : std::min<uint64_t>(o.responses_max_bytes,
                                  DefaultResponseStoreBytes(ResolveBudget(mem).bytes));
}

// What every model's server options share (address, auth, limits).
server::ServerOptions CommonServerOptions(const ServeOptions& o, const std::string& key,
                                          uint64_t responses_bytes) {
  server::ServerOptions so;
  so.host = o.host;
  so.port = o.port;
  so.api_key = key;
  so.cors = o.cors;
  so.keep_billing_header = o.keep_billing_header;
  so.responses.max_count = o.responses_max;
  so.responses.max_bytes = responses_bytes;
  so.responses.ttl = std::chrono::seconds(o.responses_ttl);
  so.max_body_bytes = o.max_body;
  so.n_predict = o.n_predict;
  so.reasoning_auto = o.reasoning_format == "auto";
  so.http_threads = HttpThreads(o);
  return so;
}

// One model's own options: its id, file, chat template and the hooks made for its tokenizer.
// Returns whether the template is the default ChatML one.
bool SetModelOptions(server::ServerOptions& so, const ServeOptions& o, const Model& model,
                     const Tokenizer& tok, const std::string& id) {
  so.model_id = id;
  so.model_file = &model.file();
  so.chat_template.clear();
  if (!o.chat_template_file.empty()) {
    so.chat_template = ReadFile(o.chat_template_file, "chat template");
  } else if (auto t = model.file().GetString("tokenizer.chat_template")) {
    so.chat_template = std::string(*t);
  }
  const bool default_template = so.chat_template.empty();
  so.hooks =
      server::DefaultHooks(tok, default_template ? server::kDefaultChatTemplate : so.chat_template);
  return default_template;
}

// Runs the HTTP server until SIGINT/SIGTERM.
void ServeUntilSignal(server::Server& srv, const sigset_t& sigs, const std::string& host) {
  std::thread waiter([&srv, sigs] {
    int sig = 0;
    sigwait(&sigs, &sig);
    srv.Stop();
  });
  std::fprintf(stderr, "origami serve: listening on http://%s:%d\n", host.c_str(), srv.port());
  std::fflush(stderr);
  srv.Serve();
  pthread_kill(waiter.native_handle(),
               SIGTERM);  // wakes the waiter if the server stopped by itself
  waiter.join();
}

// ---- many models ----

// The files --models-dir and -m name, with the names they are served under: the file's base name,
// or the name DIR/aliases.json gives it ({"file.gguf": "name"}).
std::vector<std::pair<std::string, std::string>> ModelFiles(const ServeOptions& o) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const std::string& m : o.models) out.emplace_back(m, ModelId(m));
  if (o.models_dir.empty()) return out;
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(o.models_dir, ec))
    Fail("--models-dir '{}' is not a directory", o.models_dir);
  std::map<std::string, std::string> aliases;
  const fs::path config = fs::path(o.models_dir) / "aliases.json";
  if (fs::exists(config, ec)) {
    const nlohmann::json j =
        nlohmann::json::parse(ReadFile(config.string(), "alias file"), nullptr, false);
    if (!j.is_object())
      Fail("{}: must be a JSON object of file name to model name", config.string());
    for (const auto& [file, name] : j.items()) {
      if (!name.is_string() || name.get<std::string>().empty())
        Fail("{}: the name for '{}' must be a non-empty string", config.string(), file);
      aliases[file] = name.get<std::string>();
    }
  }
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(o.models_dir, ec))
    if (e.is_regular_file() && e.path().extension() == ".gguf") files.push_back(e.path());
  if (ec) FailKind(ErrorKind::kIo, "cannot list --models-dir '{}': {}", o.models_dir, ec.message());
  std::sort(files.begin(), files.end());
  for (const fs::path& f : files) {
    auto a = aliases.find(f.filename().string());
    out.emplace_back(f.string(), a != aliases.end() ? a->second : ModelId(f.string()));
  }
  for (const auto& [file, name] : aliases)
    if (!fs::exists(fs::path(o.models_dir) / file, ec))
      Fail("{}: '{}' is not in {}", config.string(), file, o.models_dir);
  return out;
}

// A loaded model's parts, destroyed in the order the engine needs: the engine stops first, then
// the backend, its threads, the tokenizer and the mapped file.
struct OwnedModel {
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tok;
  std::unique_ptr<ThreadPool> pool;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Engine> engine;
  ~OwnedModel() {
    if (engine) engine->Shutdown();
    engine.reset();
  }
};

int ServeMany(const ServeOptions& o, const std::string& key, const MemoryFlags& mem,
              const sigset_t& sigs) {
  if (Env().mpi_ranks > 1)
    Fail("several models (--models-dir, -m more than once) are not supported under mpirun");
  if (!o.loras.empty()) Fail("--lora applies to one model: serve it alone with -m");
  if (!o.alias.empty()) Fail("--alias names one model: with several, use DIR/aliases.json");
  double keep_alive_s = 0;
  try {
    const std::string& k = o.keep_alive;
    const bool number = !k.empty() && k.find_first_not_of("-0123456789.") == std::string::npos;
    keep_alive_s =
        server::ParseKeepAlive(number ? nlohmann::json(std::stod(k)) : nlohmann::json(k));
  } catch (const std::exception&) {
    Fail("--keep-alive '{}': a duration such as 5m, 30s or 1h, 0 or -1 (forever)", o.keep_alive);
  }
  const uint64_t responses_bytes = ResponsesBytes(o, mem);
  const MemoryBudget budget = ResolveBudget(mem);

  // Plan every model now (its header and the plan only; the weights stay on disk until used).
  struct Prepared {
    std::string path;
    EngineOptions eo;
  };
  std::vector<server::ModelInfo> infos;
  std::map<std::string, Prepared> prepared;
  ThreadPool plan_pool(1);
  const auto plan_backend = OpenBackend(o.device, plan_pool);
  for (const auto& [path, id] : ModelFiles(o)) {
    if (prepared.count(id))
      Fail("two models are named '{}' ({} and {})", id, prepared[id].path, path);
    std::unique_ptr<Model> model;
    try {
      model = Model::Open(path);
    } catch (const Error& e) {
      std::fprintf(stderr, "origami serve: skipping %s: %s\n", path.c_str(), e.what());
      continue;
    }
    server::ModelInfo info;
    info.id = id;
    info.path = path;
    EngineOptions eo = EngineOptionsFor(o, model->spec());
    std::fprintf(stderr, "origami serve: model %s (%s): ", id.c_str(), path.c_str());
    try {
      const ServeMemory m = FitServe(*model, *plan_backend, mem, eo, o.ctx_size > 0, o.threads,
                                     HttpThreads(o), responses_bytes);
      info.planned_bytes = m.plan.Total();
    } catch (const Error& e) {
      std::fprintf(stderr, "%s\n", e.what());
      info.never_fits = e.what();
      info.planned_bytes = budget.bytes + 1;
    }
    info.max_seq_len = eo.max_seq_len;
    info.ollama_tag =
        server::OllamaTagEntry(server::DescribeGguf(model->file(), id, eo.max_seq_len));
    prepared[id] = {path, eo};
    infos.push_back(std::move(info));
  }
  if (infos.empty()) Fail("no model to serve: --models-dir '{}' holds no GGUF file", o.models_dir);

  const server::ServerOptions common = CommonServerOptions(o, key, responses_bytes);
  auto loader = [&o, &prepared, &common](const server::ModelInfo& info) {
    const Prepared& p = prepared.at(info.id);
    auto own = std::make_shared<OwnedModel>();
    own->model = Model::Open(p.path);
    own->tok = Tokenizer::FromGguf(own->model->file());
    EngineOptions eo = p.eo;
    const Tokenizer* tp = own->tok.get();
    eo.is_eog = [tp](int32_t id) { return tp->IsEog(id); };
    own->pool = std::make_unique<ThreadPool>(o.threads);
    own->backend = OpenBackend(o.device, *own->pool);
    PrepareWeights(*own->model, *own->backend);
    own->engine = std::make_unique<Engine>(*own->model, *own->backend, eo);
    server::LoadedModelParts parts;
    parts.engine = own->engine.get();
    parts.tok = tp;
    parts.opt = common;
    SetModelOptions(parts.opt, o, *own->model, *tp, info.id);
    parts.owner = own;
    return parts;
  };
  server::RegistryOptions ro;
  ro.budget = budget.bytes;
  ro.max_loaded = o.max_loaded;
  ro.keep_alive =
      std::chrono::milliseconds(keep_alive_s < 0 ? -1 : static_cast<int64_t>(keep_alive_s * 1000));
  ro.responses = common.responses;
  server::ModelRegistry reg(std::move(infos), loader, ro, [](const std::string& line) {
    std::fprintf(stderr, "%s\n", line.c_str());
    std::fflush(stderr);
  });
  server::ServerOptions so = common;
  so.memory.budget = budget.bytes;
  server::Server srv(reg, so);
  srv.Bind();
  std::fprintf(
      stderr,
      "origami serve: %zu models, loaded on first use (memory budget %.1f MiB, %s, "
      "keep-alive %s)%s\n",
      reg.models().size(), budget.bytes / 1048576.0,
      o.max_loaded > 0 ? fmt::format("at most {} loaded", o.max_loaded).c_str() : "no count cap",
      o.keep_alive.c_str(), key.empty() ? "" : ", API key required");
  ServeUntilSignal(srv, sigs, o.host);
  std::fprintf(stderr, "origami serve: stopped\n");
  return 0;
}

int Serve(const ServeOptions& o) {
  // SIGINT/SIGTERM are taken by a waiting thread (no handler state), so every thread started
  // below inherits the blocked mask.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  std::string key = o.api_key;
  if (!o.api_key_file.empty()) {
    key = ReadFile(o.api_key_file, "API key file");
    while (!key.empty() && (key.back() == '\n' || key.back() == '\r' || key.back() == ' '))
      key.pop_back();
    if (key.empty()) Fail("--api-key-file '{}' is empty", o.api_key_file);
  }

  const MemoryFlags mem = WithBudgetAtStart(o.mem);  // before the model's pages are charged to us
  if (o.models.size() != 1 || !o.models_dir.empty()) return ServeMany(o, key, mem, sigs);
  const std::string& path = o.models[0];
  auto model = Model::Open(path);
  if (!o.loras.empty() && Env().mpi_ranks > 1) Fail("--lora is not supported under mpirun yet");
  LoadAdapters(*model, o.loras);
  auto tok = Tokenizer::FromGguf(model->file());
  EngineOptions eo = EngineOptionsFor(o, model->spec());
  const Tokenizer* tp = tok.get();
  eo.is_eog = [tp](int32_t id) { return tp->IsEog(id); };
  ThreadPool pool(o.threads);
  // The memory plan, before the weights are touched or the KV pool is mapped (one process only:
  // the pipeline plans each rank's layers itself).
  server::ServerOptions::MemoryFigures figures;
  const uint64_t responses_bytes = ResponsesBytes(o, mem);
  if (Env().mpi_ranks <= 1) {
    const ServeMemory m = FitServe(*model, *OpenBackend(o.device, pool), mem, eo, o.ctx_size > 0,
                                   o.threads, HttpThreads(o), responses_bytes);
    figures = {m.budget.bytes, m.plan.Total(), m.plan.weights};
  }
  // Under mpirun, rank 0 serves through a pipeline of ranks; the others only run their stages.
  std::unique_ptr<mpi::Cluster> cluster;
  if (Env().mpi_ranks > 1 && !(cluster = mpi::Cluster::Join(*model, pool, eo, o.cluster.Resolve())))
    return 0;
  const auto backend = OpenBackend(o.device, pool);
  if (!cluster) PrepareWeights(*model, *backend);  // a cluster prepared each rank's own layers
  Engine engine(*model, *backend, eo);
  if (cluster) cluster->Start(engine);

  server::ServerOptions so = CommonServerOptions(o, key, responses_bytes);
  const bool default_template =
      SetModelOptions(so, o, *model, *tok, o.alias.empty() ? ModelId(path) : o.alias);
  so.memory = figures;
  // The one model, loaded now and never unloaded: every request reaches it and its handlers
  // check the name as they always have.
  server::ModelInfo info;
  info.id = so.model_id;
  info.path = path;
  info.planned_bytes = figures.planned;
  info.max_seq_len = engine.max_seq_len();
  server::RegistryOptions ro;
  ro.single = true;
  ro.keep_alive = std::chrono::milliseconds(-1);
  ro.responses = so.responses;
  server::ModelRegistry reg(
      {info},
      [&](const server::ModelInfo&) {
        return server::LoadedModelParts{&engine, tok.get(), so, nullptr};
      },
      ro, nullptr);
  reg.LoadAllNow();
  server::Server srv(reg, so);
  srv.Bind();
  std::fprintf(stderr,
               "origami serve: model %s (%s chat template), %d parallel, KV pool %d tokens (K %s, V %s: "
               "%llu bytes per token, %.1f MiB), up to %d per sequence%s\n",
               so.model_id.c_str(), default_template ? "default ChatML" : "model's", eo.n_parallel,
               eo.kv_tokens, KvTypeName(eo.kv_types.k).c_str(), KvTypeName(eo.kv_types.v).c_str(),
               static_cast<unsigned long long>(engine.kv_bytes_per_token()), engine.kv_pool_bytes() / 1048576.0,
               engine.max_seq_len(), key.empty() ? "" : ", API key required");
  ServeUntilSignal(srv, sigs, o.host);
  engine.Shutdown();
  if (cluster) cluster->Finish();
  std::fprintf(stderr, "origami serve: stopped\n");
  return 0;
}

}  // namespace

void AddServeCommand(CLI::App& app, Action& action) {
  auto o = std::make_shared<ServeOptions>();
  CLI::App* sub =
      app.add_subcommand("serve", "serve an OpenAI-compatible API (and a chat page at /)");
  sub->add_option("-m,--model", o->models,
                  "model file (.gguf); given more than once, each is loaded on first use");
  sub->add_option("--models-dir", o->models_dir,
                  "serve every .gguf in DIR, each loaded on first use (names: file names, or "
                  "DIR/aliases.json {\"file.gguf\": \"name\"})");
  sub->add_option("--keep-alive", o->keep_alive,
                  "with several models: how long an idle model stays loaded (5m, 30s, 0: unload "
                  "at once, -1: forever); Ollama's keep_alive overrides it per request")
      ->capture_default_str();
  sub->add_option("--max-loaded", o->max_loaded,
                  "with several models: most loaded at once (0: as many as the memory budget "
                  "fits); the least recently used idle one is unloaded first")
      ->check(CLI::Range(0, 1000))
      ->capture_default_str();
  sub->add_option("--host", o->host, "address to bind")->capture_default_str();
  sub->add_option("--port", o->port, "port (0: any free port, printed at start)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  sub->add_option("--parallel,--np", o->parallel, "sequences decoded at once")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  sub->add_option("-c,--ctx-size", o->ctx_size,
                  "KV pool in tokens, shared by all requests (0: parallel x per-sequence context)")
      ->check(CLI::Range(0, 1 << 24))
      ->capture_default_str();
  sub->add_option("--max-seq-len", o->max_seq_len,
                  "tokens one request may use (0: min(4096, model's context))")
      ->check(CLI::Range(0, 1 << 24));
  sub->add_option("--max-queue", o->max_queue, "waiting requests before answering 503")
      ->check(CLI::Range(0, 100000))
      ->capture_default_str();
  sub->add_option("-n,--n-predict", o->n_predict,
                  "most tokens one answer may generate, whatever the request asks (-1: up to the "
                  "context); a request that gives no limit (Codex sends none) stops here")
      ->check(CLI::Range(-1, 1 << 30))
      ->capture_default_str();
  sub->add_option("--reasoning-format", o->reasoning_format,
                  "auto: a reasoning template's thinking comes back apart from the answer "
                  "(reasoning_content, thinking blocks, reasoning items); none: Chat Completions "
                  "and Messages answers without tools keep it in the text")
      ->check(CLI::IsMember({"none", "auto"}))
      ->capture_default_str();
  sub->add_option("--api-key", o->api_key, "require 'Authorization: Bearer KEY'");
  sub->add_option("--api-key-file", o->api_key_file, "read the API key from a file");
  sub->add_option("--alias", o->alias, "model id to serve under (default: the file name)");
  sub->add_option("--chat-template-file", o->chat_template_file,
                  "Jinja chat template to use instead of the model's");
  sub->add_option("--max-body", o->max_body, "largest request body in bytes (413 beyond)")
      ->capture_default_str();
  sub->add_option("--http-threads", o->http_threads,
                  "HTTP worker threads (0: from --parallel and --max-queue)");
  sub->add_flag("--cors", o->cors, "allow cross-origin requests (Access-Control-Allow-Origin: *)");
  sub->add_flag("--keep-billing-header", o->keep_billing_header,
                "keep Claude Code's x-anthropic-billing-header line in /v1/messages system prompts");
  sub->add_option("--responses-max", o->responses_max,
                  "/v1/responses kept for previous_response_id (0: keep none)")
      ->capture_default_str();
  CLI::Option* store_bytes =
      sub->add_option("--responses-max-bytes", o->responses_max_bytes,
                      "bytes of JSON the kept responses may hold (least recently used go first; "
                      "default: 256 MiB or a sixteenth of the memory budget, whichever is less)");
  sub->add_option("--responses-ttl", o->responses_ttl,
                  "seconds a kept response lives after its last use")
      ->check(CLI::Range(1, 365 * 86400))
      ->capture_default_str();
  sub->add_option("--pooling", o->pooling,
                  "embeddings: mean, cls or last pooling instead of the model's pooling_type "
                  "(default: the file's, mean when it names none)");
  sub->add_flag("--no-prefix-cache", o->no_prefix_cache,
                "do not reuse KV blocks of earlier prompts");
  AddClusterOptions(*sub, o->cluster);
  AddThreadsOption(*sub, o->threads);
  AddDeviceOption(*sub, o->device);
  AddKvTypeOptions(*sub, o->kv);
  AddMemoryOptions(*sub, o->mem, /*serve=*/true);
  AddLoraOption(*sub, o->loras);
  sub->callback([o, store_bytes, &action] {
    o->responses_max_bytes_given = store_bytes->count() > 0;
    if (o->models.empty() && o->models_dir.empty())
      throw CLI::RequiredError("-m,--model or --models-dir");
    action = [o] { return Serve(*o); };
  });
}

}  // namespace origami::cli
