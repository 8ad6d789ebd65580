// The models one server serves (serve -m given several times, or --models-dir): which name means
// which model, which are loaded, and the policy that unloads idle least-recently-used models
// when a new one would not fit the memory budget or the --max-loaded count. A request holds a
// lease on its model, so a model in use is never unloaded under it; each loaded model has its
// own Engine thread, so requests to two models run at once.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "runtime/engine.h"
#include "server/response_store.h"
#include "server/server.h"

namespace httplib {
struct Response;
}

namespace origami::server {

struct ServerState;

// What is known of a model without loading it (read from its GGUF header and memory plan at
// start).
struct ModelInfo {
  std::string id;              // what /v1/models lists and requests name
  std::string path;            // the GGUF
  uint64_t planned_bytes = 0;  // its memory plan's total: weights, KV pool, scratch
  int max_seq_len = 0;         // tokens one request may use once loaded
  // Set when the model does not fit the budget even alone: the plan's refusal, told to clients.
  std::string never_fits;
  nlohmann::json ollama_tag = nlohmann::json::object();  // its /api/tags entry
};

// ---- the pure policy (model_registry.cpp; unit-tested without loading anything) ----

// Index of the model `requested` names, or -1. An empty name is the first model (the default,
// what the web page and clients that send no model get). ollama_names: Ollama's spelling is
// accepted too (case-insensitive, with ":latest"), as /api/* clients send it.
int ResolveModelName(const std::vector<ModelInfo>& models, std::string_view requested,
                     bool ollama_names);

// One loaded model as the eviction policy sees it.
struct ResidentModel {
  size_t index = 0;
  uint64_t bytes = 0;
  bool in_use = false;  // a request holds it (or it is being loaded): never a victim
  std::chrono::steady_clock::time_point last_used;
};

struct EvictionPlan {
  enum class Outcome {
    kFits,       // load after unloading `victims` (least recently used first)
    kBusy,       // would fit once models in use go idle: 503 with Retry-After
    kNeverFits,  // larger than the whole budget: no wait helps
  };
  Outcome outcome = Outcome::kFits;
  std::vector<size_t> victims;  // ResidentModel::index of each model to unload
};

// Which idle models to unload so that a model of new_bytes fits: the sum of the resident models'
// bytes plus new_bytes within budget (0: no byte budget) and their count below max_loaded (0: no
// cap). Idle models go least recently used first, and only as many as needed.
// Adds an engine's counters (requests, tokens, steps, busy time: what only grows) to `into`; the
// gauges (live, waiting, KV in use, ...) are left alone. Unloaded models' counters are kept this way.
void AddEngineCounters(EngineStats& into, const EngineStats& s);

EvictionPlan PlanEviction(const std::vector<ResidentModel>& resident, uint64_t new_bytes,
                          uint64_t budget, int max_loaded);

// ---- the registry ----

// What loading a model gives the server: the engine and tokenizer it computes with, its own
// server options (model_id, model_file, chat template, hooks), and the owner of all of it.
struct LoadedModelParts {
  Engine* engine = nullptr;
  const Tokenizer* tok = nullptr;
  ServerOptions opt;
  // Destroyed on unload, after the server's state for the model: it must shut the engine down
  // before freeing what the engine computes with.
  std::shared_ptr<void> owner;
};
using ModelLoader = std::function<LoadedModelParts(const ModelInfo&)>;

struct RegistryOptions {
  uint64_t budget = 0;  // bytes all loaded models' plans may sum to (0: no byte budget)
  int max_loaded = 0;   // --max-loaded (0: no cap)
  // How long an idle model stays loaded (--keep-alive; negative: forever, 0: unload at once).
  std::chrono::milliseconds keep_alive = std::chrono::minutes(5);
  // One model (serve -m once): loaded at start, never unloaded, and every name reaches it so its
  // handlers answer unknown names as a one-model server always has.
  bool single = false;
  ResponseStoreLimits responses;  // one store for every model (ids are the server's)
};

class ModelRegistry {
 public:
  using Clock = std::chrono::steady_clock;

  ModelRegistry(std::vector<ModelInfo> models, ModelLoader loader, RegistryOptions opt,
                std::function<void(const std::string&)> log);
  ~ModelRegistry();  // unloads every model
  ModelRegistry(const ModelRegistry&) = delete;
  ModelRegistry& operator=(const ModelRegistry&) = delete;

  // A request's hold on a loaded model: while any lease is alive the model is not unloaded.
  class Lease {
   public:
    ~Lease();
    ServerState& state() const { return *state_; }
    const ModelInfo& info() const;

   private:
    friend class ModelRegistry;
    ModelRegistry* reg_ = nullptr;
    size_t index_ = 0;
    std::optional<std::chrono::milliseconds> keep_alive_;
    std::shared_ptr<ServerState> state_;
  };

  // Resolves `name`, loads the model if it is not (unloading idle ones as the policy says) or
  // waits for a load in progress, and leases it. keep_alive: the request's (Ollama's), or none
  // for the server's --keep-alive; as in Ollama, each request sets how long the model stays after
  // it (the last to end wins). Throws ApiError: 404 unknown name, 503 busy models hold the memory, 400
  // the model never fits, 500 the load failed.
  std::shared_ptr<Lease> Acquire(std::string_view name, bool ollama_names,
                                 std::optional<std::chrono::milliseconds> keep_alive = {});
  // Ollama's unload call (keep_alive 0 with no prompt): unloads the model now if it is loaded and
  // idle, or as soon as its last request ends. False for an unknown name.
  bool UnloadSoon(std::string_view name);
  // Whether the model `name` names (Ollama's spelling accepted) is loaded now.
  bool IsLoaded(std::string_view name) const;
  // Loads every model (serve -m once, at start). Throws what the loader throws.
  void LoadAllNow();

  struct Status {
    const ModelInfo* info = nullptr;
    bool loaded = false;
    int in_use = 0;
    std::optional<std::chrono::system_clock::time_point> expires_at;  // none: forever
    std::shared_ptr<ServerState> state;                               // when loaded
  };
  std::vector<Status> List() const;
  const std::vector<ModelInfo>& models() const { return models_; }
  bool single() const { return opt_.single; }
  ResponseStore& responses() { return responses_; }

  struct Counters {
    int64_t loads = 0, unloads = 0, load_failures = 0, evictions = 0;
    EngineStats retired;  // counters of engines already unloaded (so /metrics' totals only grow)
  };
  Counters counters() const;

 private:
  struct Slot;
  void Release(size_t index, std::optional<std::chrono::milliseconds> keep_alive);
  // Takes the model's state out of its slot (under mu_); the caller destroys it unlocked.
  std::shared_ptr<ServerState> TakeOut(size_t index, const char* why);
  void Destroy(size_t index, std::shared_ptr<ServerState> state, const char* why);
  // Plans, evicts and loads the model, leaving its slot loaded (under load_mu_) and, for a
  // request, leased to it.
  void Load(size_t index, bool for_request);
  void Reap();

  std::vector<ModelInfo> models_;
  ModelLoader loader_;
  RegistryOptions opt_;
  std::function<void(const std::string&)> log_;
  ResponseStore responses_;
  mutable std::mutex mu_;
  std::condition_variable changed_;  // a load ended, a lease ended, or stop
  std::vector<std::unique_ptr<Slot>> slots_;
  Counters counters_;
  bool stop_ = false;
  std::mutex load_mu_;  // one load at a time: its plan must see what the previous one took
  std::thread reaper_;
};

// Keeps `lease` until `res` is written and destroyed: a streamed body's provider runs after the
// handler has returned, and reads the model's state all along.
void HoldUntilSent(httplib::Response& res, std::shared_ptr<ModelRegistry::Lease> lease);

}  // namespace origami::server
