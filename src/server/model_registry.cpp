// The model registry: name resolution, the eviction policy, loads and unloads under leases, and
// the reaper thread that unloads models whose keep-alive ran out.
#include "server/model_registry.h"

#include <fmt/format.h>
#include <httplib.h>

#include <algorithm>

#include "server/api.h"
#include "server/job.h"
#include "server/ollama_handler.h"
#include "server/ollama_model.h"

namespace origami::server {

using std::chrono::milliseconds;

int ResolveModelName(const std::vector<ModelInfo>& models, std::string_view requested,
                     bool ollama_names) {
  if (models.empty()) return -1;
  if (requested.empty()) return 0;
  for (size_t i = 0; i < models.size(); ++i)
    if (models[i].id == requested) return static_cast<int>(i);
  if (ollama_names)
    for (size_t i = 0; i < models.size(); ++i)
      if (OllamaNameMatches(requested, models[i].id)) return static_cast<int>(i);
  return -1;
}

EvictionPlan PlanEviction(const std::vector<ResidentModel>& resident, uint64_t new_bytes,
                          uint64_t budget, int max_loaded) {
  EvictionPlan plan;
  if (budget > 0 && new_bytes > budget) {
    plan.outcome = EvictionPlan::Outcome::kNeverFits;
    return plan;
  }
  uint64_t used = 0;
  for (const ResidentModel& r : resident) used += r.bytes;
  size_t count = resident.size();
  auto fits = [&] {
    const bool bytes_ok = budget == 0 || used + new_bytes <= budget;
    const bool count_ok = max_loaded <= 0 || count + 1 <= static_cast<size_t>(max_loaded);
    return bytes_ok && count_ok;
  };
  // Idle models first, least recently used first; then, if they are not enough, busy ones in the
  // same order: those must drain (finish their requests) before they go.
  std::vector<const ResidentModel*> order;
  for (const ResidentModel& r : resident) order.push_back(&r);
  std::stable_sort(order.begin(), order.end(), [](const ResidentModel* a, const ResidentModel* b) {
    if (a->in_use != b->in_use) return !a->in_use;
    return a->last_used < b->last_used;
  });
  for (const ResidentModel* r : order) {
    if (fits()) break;
    plan.victims.push_back(r->index);
    if (r->in_use) plan.outcome = EvictionPlan::Outcome::kBusy;
    used -= r->bytes;
    --count;
  }
  return plan;
}

void AddEngineCounters(EngineStats& into, const EngineStats& s) {
  into.requests_total += s.requests_total;
  into.requests_finished += s.requests_finished;
  into.requests_cancelled += s.requests_cancelled;
  into.requests_rejected += s.requests_rejected;
  into.prompt_tokens_total += s.prompt_tokens_total;
  into.prompt_tokens_cached += s.prompt_tokens_cached;
  into.generated_tokens_total += s.generated_tokens_total;
  into.embedding_requests_total += s.embedding_requests_total;
  into.embedding_tokens_total += s.embedding_tokens_total;
  into.steps += s.steps;
  into.preemptions += s.preemptions;
  into.busy_seconds += s.busy_seconds;
}

namespace {

// How long a load waits for busy models to drain before it answers 503.
constexpr milliseconds kMaxLoadWait = std::chrono::seconds(120);

std::string MiB(uint64_t b) { return fmt::format("{:.1f} MiB", b / 1048576.0); }

}  // namespace

// One model's place in the registry; guarded by the registry's mu_.
struct ModelRegistry::Slot {
  enum class State { kUnloaded, kLoading, kLoaded };
  State state = State::kUnloaded;
  std::shared_ptr<ServerState> st;  // while loaded
  int in_use = 0;                   // live leases
  bool draining = false;            // a load waits for it to go idle: no new leases
  Clock::time_point last_used;
  milliseconds keep_alive{0};                // the last request's, or the server's default
  std::optional<Clock::time_point> expires;  // when idle: unload then (none: never)
};

ModelRegistry::ModelRegistry(std::vector<ModelInfo> models, ModelLoader loader, RegistryOptions opt,
                             std::function<void(const std::string&)> log)
    : models_(std::move(models)),
      loader_(std::move(loader)),
      opt_(opt),
      log_(std::move(log)),
      responses_(opt.responses) {
  for (size_t i = 0; i < models_.size(); ++i) {
    slots_.push_back(std::make_unique<Slot>());
    slots_.back()->keep_alive = opt_.keep_alive;
  }
  if (!opt_.single) reaper_ = std::thread([this] { Reap(); });
}

ModelRegistry::~ModelRegistry() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  changed_.notify_all();
  if (reaper_.joinable()) reaper_.join();
  for (auto& s : slots_) s->st.reset();  // every lease is gone: the HTTP server has stopped
}

ModelRegistry::Lease::~Lease() {
  state_.reset();  // before Release: an unload after it must drop the last reference
  reg_->Release(index_, keep_alive_);
}

const ModelInfo& ModelRegistry::Lease::info() const { return reg_->models_[index_]; }

std::shared_ptr<ModelRegistry::Lease> ModelRegistry::Acquire(
    std::string_view name, bool ollama_names, std::optional<milliseconds> keep_alive) {
  const int i = opt_.single ? 0 : ResolveModelName(models_, name, ollama_names);
  if (i < 0) {
    std::string ids;
    for (const ModelInfo& m : models_) ids += (ids.empty() ? "'" : ", '") + m.id + "'";
    throw ApiError(404,
                   fmt::format("The model '{}' does not exist; this server serves {}", name, ids),
                   "model", "model_not_found");
  }
  const size_t idx = static_cast<size_t>(i);
  std::unique_lock lock(mu_);
  Slot& s = *slots_[idx];
  bool loaded_here = false;
  for (;;) {
    if (stop_) throw ApiError(503, "the server is stopping");
    if (s.state == Slot::State::kLoaded && !s.draining) break;
    if (s.state != Slot::State::kUnloaded) {  // loading, or draining to make room for another
      changed_.wait(lock);
      continue;
    }
    s.state = Slot::State::kLoading;
    lock.unlock();
    try {
      Load(idx, /*for_request=*/true);  // leaves the slot loaded and in use by this request
    } catch (...) {
      lock.lock();
      s.state = Slot::State::kUnloaded;
      changed_.notify_all();
      throw;
    }
    lock.lock();
    loaded_here = true;
    break;
  }
  if (!loaded_here) ++s.in_use;
  s.last_used = Clock::now();
  s.keep_alive = keep_alive.value_or(opt_.keep_alive);  // as Ollama: each request sets it
  auto lease = std::shared_ptr<Lease>(new Lease());
  lease->reg_ = this;
  lease->index_ = idx;
  lease->keep_alive_ = keep_alive;
  lease->state_ = s.st;
  return lease;
}

void ModelRegistry::Release(size_t index, std::optional<milliseconds> keep_alive) {
  {
    std::lock_guard lock(mu_);
    Slot& s = *slots_[index];
    --s.in_use;
    s.last_used = Clock::now();
    s.keep_alive = keep_alive.value_or(opt_.keep_alive);  // as Ollama: each request sets it
    if (s.in_use == 0) {
      if (s.keep_alive.count() < 0)
        s.expires.reset();
      else
        s.expires = s.last_used + s.keep_alive;
    }
  }
  changed_.notify_all();  // a drain waiting for it, or the reaper (keep_alive 0)
}

bool ModelRegistry::UnloadSoon(std::string_view name) {
  const int i = ResolveModelName(models_, name, true);
  if (i < 0) return false;
  if (opt_.single) return true;  // the one model stays: it is all this server serves
  {
    std::lock_guard lock(mu_);
    Slot& s = *slots_[static_cast<size_t>(i)];
    s.keep_alive = milliseconds(0);
    s.expires = Clock::now();
  }
  changed_.notify_all();
  return true;
}

bool ModelRegistry::IsLoaded(std::string_view name) const {
  const int i = opt_.single ? 0 : ResolveModelName(models_, name, true);
  if (i < 0) return false;
  std::lock_guard lock(mu_);
  return slots_[static_cast<size_t>(i)]->state == Slot::State::kLoaded;
}

void HoldUntilSent(httplib::Response& res, std::shared_ptr<ModelRegistry::Lease> lease) {
  if (!res.content_provider_) return;  // a whole body: nothing reads the model after this
  // Members go in reverse order: the provider (and what it captured) before the lease.
  struct Held {
    std::shared_ptr<ModelRegistry::Lease> lease;
    httplib::ContentProvider inner;
  };
  auto held = std::make_shared<Held>(Held{std::move(lease), std::move(res.content_provider_)});
  res.content_provider_ = [held](size_t offset, size_t length, httplib::DataSink& sink) {
    return held->inner(offset, length, sink);
  };
}

void ModelRegistry::LoadAllNow() {
  for (size_t i = 0; i < models_.size(); ++i) Load(i, false);
}

std::shared_ptr<ServerState> ModelRegistry::TakeOut(size_t index, const char*) {
  Slot& s = *slots_[index];
  s.state = Slot::State::kUnloaded;
  s.draining = false;
  s.expires.reset();
  s.keep_alive = opt_.keep_alive;
  return std::move(s.st);
}

void ModelRegistry::Destroy(size_t index, std::shared_ptr<ServerState> state, const char* why) {
  if (!state) return;
  const EngineStats stats = state->engine.Stats();
  // Usually the last reference: the engine stops, weights and KV pool are freed. A listing
  // (/api/ps, /metrics) that holds a copy frees them when it is done.
  state.reset();
  {
    std::lock_guard lock(mu_);
    AddEngineCounters(counters_.retired, stats);
    ++counters_.unloads;
  }
  if (log_)
    log_(fmt::format("origami serve: unloaded model {} ({}; {} planned)", models_[index].id, why,
                     MiB(models_[index].planned_bytes)));
  changed_.notify_all();
}

void ModelRegistry::Load(size_t index, bool for_request) {
  const ModelInfo& info = models_[index];
  std::lock_guard load_lock(load_mu_);
  if (!info.never_fits.empty())
    throw ApiError(400, fmt::format("model '{}' cannot be loaded: {}", info.id, info.never_fits),
                   "model", "model_too_large");
  std::vector<std::pair<size_t, std::shared_ptr<ServerState>>> out;
  {
    std::unique_lock lock(mu_);
    const auto deadline = Clock::now() + kMaxLoadWait;
    for (;;) {
      // Each plan names its own models to drain: one an earlier plan chose may be spared now
      // (another went idle first), and must take requests again.
      for (auto& s : slots_) s->draining = false;
      if (stop_) throw ApiError(503, "the server is stopping");
      std::vector<ResidentModel> resident;
      for (size_t j = 0; j < slots_.size(); ++j) {
        const Slot& s = *slots_[j];
        if (s.state != Slot::State::kLoaded) continue;
        resident.push_back({j, models_[j].planned_bytes, s.in_use > 0, s.last_used});
      }
      const EvictionPlan plan =
          PlanEviction(resident, info.planned_bytes, opt_.budget, opt_.max_loaded);
      if (plan.outcome == EvictionPlan::Outcome::kNeverFits)
        throw ApiError(400,
                       fmt::format("model '{}' needs {} and the memory budget is {}: it cannot be "
                                   "loaded (raise --mem-budget or serve it with a smaller context)",
                                   info.id, MiB(info.planned_bytes), MiB(opt_.budget)),
                       "model", "model_too_large");
      if (plan.outcome == EvictionPlan::Outcome::kFits) {
        for (size_t v : plan.victims) out.emplace_back(v, TakeOut(v, "evicted"));
        break;
      }
      // Models in use hold the room: they take no new requests until they are idle and go.
      for (size_t v : plan.victims) slots_[v]->draining = true;
      if (changed_.wait_until(lock, deadline) == std::cv_status::timeout) {
        for (auto& s : slots_) s->draining = false;
        changed_.notify_all();
        throw ApiError(503,
                       fmt::format("model '{}' waits for memory that loaded models in use hold; "
                                   "try again later",
                                   info.id),
                       "model", "model_busy");
      }
    }
    if (!out.empty()) counters_.evictions += static_cast<int64_t>(out.size());
  }
  changed_.notify_all();  // requests that waited on a drain this plan no longer needs
  for (auto& [v, st] : out)
    Destroy(v, std::move(st), fmt::format("evicted to load {}", info.id).c_str());

  struct Holder {
    LoadedModelParts parts;
    std::unique_ptr<ServerState> st;  // destroyed first: it refers to parts
    ~Holder() { st.reset(); }
  };
  auto h = std::make_shared<Holder>();
  const auto t0 = Clock::now();
  try {
    h->parts = loader_(info);
    h->st =
        std::make_unique<ServerState>(*h->parts.engine, *h->parts.tok, h->parts.opt, responses_);
    h->st->ollama = MakeOllamaService(*h->st);
  } catch (const ApiError&) {
    std::lock_guard lock(mu_);
    ++counters_.load_failures;
    throw;
  } catch (const std::exception& e) {
    {
      std::lock_guard lock(mu_);
      ++counters_.load_failures;
    }
    if (log_) log_(fmt::format("origami serve: loading model {} failed: {}", info.id, e.what()));
    throw ApiError(500, fmt::format("loading model '{}' failed: {}", info.id, e.what()), "model");
  }
  if (log_)
    log_(fmt::format("origami serve: loaded model {} ({} planned, {:.0f} ms)", info.id,
                     MiB(info.planned_bytes),
                     std::chrono::duration<double, std::milli>(Clock::now() - t0).count()));
  {
    // Resident before load_mu_ is released: the next load's plan must count it.
    std::lock_guard lock(mu_);
    ++counters_.loads;
    Slot& s = *slots_[index];
    s.state = Slot::State::kLoaded;
    s.st = std::shared_ptr<ServerState>(h, h->st.get());
    s.last_used = Clock::now();
    s.expires.reset();
    // The request that loads it holds it from here: no other load's plan may take it first.
    s.in_use = for_request ? 1 : 0;
  }
  changed_.notify_all();
}

void ModelRegistry::Reap() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    const auto now = Clock::now();
    std::vector<std::pair<size_t, std::shared_ptr<ServerState>>> out;
    for (size_t i = 0; i < slots_.size(); ++i) {
      Slot& s = *slots_[i];
      if (s.state == Slot::State::kLoaded && s.in_use == 0 && s.expires && *s.expires <= now)
        out.emplace_back(i, TakeOut(i, "expired"));
    }
    if (!out.empty()) {
      lock.unlock();
      for (auto& [i, st] : out) Destroy(i, std::move(st), "keep_alive expired");
      lock.lock();
      continue;
    }
    changed_.wait_for(lock, milliseconds(200));
  }
}

std::vector<ModelRegistry::Status> ModelRegistry::List() const {
  std::lock_guard lock(mu_);
  std::vector<Status> out;
  const auto now = Clock::now();
  const auto wall = std::chrono::system_clock::now();
  for (size_t i = 0; i < models_.size(); ++i) {
    const Slot& s = *slots_[i];
    Status st;
    st.info = &models_[i];
    st.loaded = s.state == Slot::State::kLoaded;
    st.in_use = s.in_use;
    st.state = s.st;
    if (st.loaded && !opt_.single) {
      std::optional<Clock::time_point> e = s.expires;
      if (s.in_use > 0)
        e = s.keep_alive.count() < 0 ? std::nullopt : std::optional(now + s.keep_alive);
      if (e)
        st.expires_at =
            wall + std::chrono::duration_cast<std::chrono::system_clock::duration>(*e - now);
    }
    out.push_back(std::move(st));
  }
  return out;
}

ModelRegistry::Counters ModelRegistry::counters() const {
  std::lock_guard lock(mu_);
  return counters_;
}

}  // namespace origami::server
