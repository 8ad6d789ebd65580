// A command (`run` or `serve`) under mpirun: every rank joins, agrees on the plan and lays out its
// own layers; ranks 1..n-1 then run their stages, and rank 0 computes its Engine's steps through
// the pipeline (mpi/pipeline.h).
#pragma once

#include <memory>
#include <string>

#include "mpi/pipeline.h"
#include "runtime/engine.h"

namespace origami::mpi {

class Cluster {
 public:
  // Joins the MPI job and plans the stages (by `opts.split`, else by each rank's free memory; KV
  // for eo.kv_tokens positions; the output head on rank 0). Ranks 1..n-1 run their stages here
  // until rank 0 shuts down, then get null (and should exit 0). Rank 0 gets the cluster, with `eo`
  // set to compute through it (forward, kv layers, on_fatal: print the error and end the job). An
  // error on any rank ends the whole job, naming the rank.
  static std::unique_ptr<Cluster> Join(Model& model, ThreadPool& pool, EngineOptions& eo,
                                       PipelineOptions opts);
  ~Cluster();
  // Sends the engine's KV geometry to the workers (before the engine takes requests).
  void Start(const Engine& engine);
  // After the engine has stopped: ends the workers' loops, gathers every rank's counters and
  // prints them (the plan, bytes on the wire per token, each rank's resident memory).
  PipelineStats Finish();
  // Prints "error: rank 0: ..." and ends every rank of the job.
  [[noreturn]] void Abort(const std::string& error);

  const std::vector<Stage>& plan() const { return pipe_->plan(); }
  int ranks() const { return world_->size(); }

 private:
  Cluster() = default;
  std::unique_ptr<World> world_;
  std::unique_ptr<Pipeline> pipe_;
  Wire wire_ = Wire::kF32;
  int64_t n_embd_ = 0;
};

}  // namespace origami::mpi
