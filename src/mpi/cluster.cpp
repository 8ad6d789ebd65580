// Joining an MPI job for `run` or `serve`: planning, weight layout, the workers' loop, the closing
// statistics.
#include "mpi/cluster.h"

#include <pthread.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>

#include "backend/registry.h"
#include "util/error.h"

namespace origami::mpi {

std::unique_ptr<Cluster> Cluster::Join(Model& model, ThreadPool& pool, EngineOptions& eo,
                                       PipelineOptions opts) {
  opts.kv_types = eo.kv_types;  // the workers' mirror pools store K/V as rank 0's pool does
  auto world = World::Init();
  const int rank = world->rank();
  try {
    std::vector<uint64_t> free_memory;
    const auto plan = PlanForWorld(*world, model, opts, eo.kv_tokens, &free_memory);
    // Each rank lays out only its own layers (and the head where it runs) for the kernels.
    const Stage& own = plan[static_cast<size_t>(rank)];
    if (opts.repack)
      model.PrepareWeights(*MakeCpuBackend(pool, opts.isa), own.first_layer, own.last_layer,
                           own.head);
    if (rank != 0) {
      // serve blocks SIGINT/SIGTERM for its signal thread; a worker has none, so mpirun's
      // SIGTERM (Ctrl-C on the job) must end it.
      sigset_t sigs;
      sigemptyset(&sigs);
      sigaddset(&sigs, SIGINT);
      sigaddset(&sigs, SIGTERM);
      pthread_sigmask(SIG_UNBLOCK, &sigs, nullptr);
      RunWorker(*world, model, pool, plan, opts);
      return nullptr;
    }
    std::fprintf(stderr, "dist: %d ranks, pipeline plan (KV %d positions):\n%s", world->size(),
                 eo.kv_tokens, FormatPlan(plan, free_memory).c_str());
    auto c = std::unique_ptr<Cluster>(new Cluster());
    c->wire_ = opts.wire;
    c->n_embd_ = model.spec().n_embd;
    c->pipe_ = std::make_unique<Pipeline>(*world, model, pool, plan, opts);
    eo.forward = c->pipe_.get();
    eo.kv_first_layer = plan[0].first_layer;
    eo.kv_last_layer = plan[0].last_layer;
    World* w = world.get();
    eo.on_fatal = [w](const std::string& error) {
      // The engine has failed every request; give the readers (HTTP threads) a moment to answer
      // them, then end the whole job (a pipeline that cannot compute must not take requests).
      std::fprintf(stderr, "error: rank 0: %s\n", error.c_str());
      std::fflush(stderr);
      usleep(300 * 1000);
      w->Abort(1);
    };
    c->world_ = std::move(world);
    return c;
  } catch (const Error& e) {
    // Other ranks may be blocked in a collective or waiting for our messages: end the whole job.
    std::fprintf(stderr, "error: rank %d: %s\n", rank, e.what());
    world->Abort(1);
  }
}

Cluster::~Cluster() = default;

void Cluster::Abort(const std::string& error) {
  std::fprintf(stderr, "error: rank 0: %s\n", error.c_str());
  world_->Abort(1);
}

void Cluster::Start(const Engine& engine) {
  try {
    pipe_->Start(engine.kv_blocks(), engine.kv_block_size());
  } catch (const Error& e) {
    Abort(e.what());
  }
}

PipelineStats Cluster::Finish() {
  PipelineStats s;
  try {
    s = pipe_->Shutdown();
  } catch (const Error& e) {
    Abort(e.what());
  }
  uint64_t stage = 0, result = 0;
  for (uint64_t b : s.stage_bytes) stage += b;
  for (uint64_t b : s.result_bytes) result += b;
  const double per_token = s.tokens ? static_cast<double>(stage + result) / s.tokens : 0.0;
  std::fprintf(stderr,
               "dist: %d ranks, hidden state %lld bytes (%s) per token per stage boundary\n",
               world_->size(), static_cast<long long>(n_embd_ * WireBytes(wire_)), WireName(wire_));
  for (size_t r = 0; r < s.rss.size(); ++r)
    std::fprintf(stderr,
                 "dist: rank %zu: layers %d-%d, sent %llu B forward + %llu B back, RSS %.1f MiB "
                 "(model pages %.1f MiB)\n",
                 r, plan()[r].first_layer, plan()[r].last_layer - 1,
                 static_cast<unsigned long long>(s.stage_bytes[r]),
                 static_cast<unsigned long long>(s.result_bytes[r]), s.rss[r] / 1048576.0,
                 s.rss_file[r] / 1048576.0);
  std::fprintf(stderr,
               "dist: %llu tokens through the pipeline, %.1f bytes on the wire per token (%.1f "
               "forward, %.1f returned)\n",
               static_cast<unsigned long long>(s.tokens), per_token,
               s.tokens ? static_cast<double>(stage) / s.tokens : 0.0,
               s.tokens ? static_cast<double>(result) / s.tokens : 0.0);
  return s;
}

}  // namespace origami::mpi
