// `origami serve`: the OpenAI-compatible HTTP server over a continuous-batching Engine.
#include <pthread.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <memory>
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
#include "server/server.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace origami::cli {

namespace {

struct ServeOptions {
  std::string device = "cpu";  // --device
  std::string model;
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
  auto model = Model::Open(o.model);
  if (!o.loras.empty() && Env().mpi_ranks > 1) Fail("--lora is not supported under mpirun yet");
  LoadAdapters(*model, o.loras);
  auto tok = Tokenizer::FromGguf(model->file());
  const DecoderSpec& spec = model->spec();

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
    if (eo.pooling < 0) Fail("--pooling: '{}' is not one of none, mean, cls, last, rank", o.pooling);
  }
  const Tokenizer* tp = tok.get();
  eo.is_eog = [tp](int32_t id) { return tp->IsEog(id); };
  ThreadPool pool(o.threads);
  // The memory plan, before the weights are touched or the KV pool is mapped (one process only:
  // the pipeline plans each rank's layers itself).
  server::ServerOptions::MemoryFigures figures;
  // The Responses store is request state the plan counts: unless given, it is bounded by the
  // budget.
  const uint64_t responses_bytes =
      o.responses_max_bytes_given
          ? o.responses_max_bytes
          : std::min<uint64_t>(o.responses_max_bytes,
                               DefaultResponseStoreBytes(ResolveBudget(mem).bytes));
  if (Env().mpi_ranks <= 1) {
    const ServeMemory m = FitServe(
        *model, *OpenBackend(o.device, pool), mem, eo, o.ctx_size > 0, o.threads,
        o.http_threads > 0 ? o.http_threads : std::max(64, 2 * (o.parallel + o.max_queue) + 16),
        responses_bytes);
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

  server::ServerOptions so;
  so.host = o.host;
  so.port = o.port;
  so.api_key = key;
  so.cors = o.cors;
  so.keep_billing_header = o.keep_billing_header;
  so.responses.max_count = o.responses_max;
  so.responses.max_bytes = responses_bytes;
  so.responses.ttl = std::chrono::seconds(o.responses_ttl);
  so.model_id = o.alias.empty() ? ModelId(o.model) : o.alias;
  so.max_body_bytes = o.max_body;
  so.n_predict = o.n_predict;
  so.reasoning_auto = o.reasoning_format == "auto";
  so.model_file = &model->file();
  so.memory = figures;
  so.http_threads =
      o.http_threads > 0 ? o.http_threads : std::max(64, 2 * (o.parallel + o.max_queue) + 16);
  if (!o.chat_template_file.empty()) {
    so.chat_template = ReadFile(o.chat_template_file, "chat template");
  } else if (auto t = model->file().GetString("tokenizer.chat_template")) {
    so.chat_template = std::string(*t);
  }
  const bool default_template = so.chat_template.empty();
  so.hooks = server::DefaultHooks(
      *tok, default_template ? server::kDefaultChatTemplate : so.chat_template);
  server::Server srv(engine, *tok, so);
  srv.Bind();

  std::thread waiter([&srv, sigs] {
    int sig = 0;
    sigwait(&sigs, &sig);
    srv.Stop();
  });
  std::fprintf(stderr,
               "origami serve: model %s (%s chat template), %d parallel, KV pool %d tokens (K %s, V %s: "
               "%llu bytes per token, %.1f MiB), up to %d per sequence%s\n",
               so.model_id.c_str(), default_template ? "default ChatML" : "model's", eo.n_parallel,
               eo.kv_tokens, KvTypeName(eo.kv_types.k).c_str(), KvTypeName(eo.kv_types.v).c_str(),
               static_cast<unsigned long long>(engine.kv_bytes_per_token()), engine.kv_pool_bytes() / 1048576.0,
               engine.max_seq_len(), key.empty() ? "" : ", API key required");
  std::fprintf(stderr, "origami serve: listening on http://%s:%d\n", o.host.c_str(), srv.port());
  std::fflush(stderr);
  srv.Serve();
  pthread_kill(waiter.native_handle(),
               SIGTERM);  // wakes the waiter if the server stopped by itself
  waiter.join();
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
  sub->add_option("-m,--model", o->model, "model file (.gguf)")->required();
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
    action = [o] { return Serve(*o); };
  });
}

}  // namespace origami::cli
