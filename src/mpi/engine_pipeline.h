// `serve` across MPI ranks: the Engine's forward seam (BatchForward) on rank 0 and the worker loop
// of ranks 1..n-1. Rank 0's KvPool decides block ids; every worker keeps a mirror pool of the same
// geometry holding only its own layers, so block tables (and prefix-shared blocks) mean the same
// on every rank and the workers keep no per-sequence state at all.
//
// Protocol (tag kTagStage, rank r -> r+1, one message per micro-batch):
//   StepHeader{kGeometry, n_blocks, block_size}          once, before the first step
//   StepHeader{kForward, micro_batch, n_tokens, n_tables, n_ids, wire} | PagedToken[n_tokens] |
//     int32 table_len[n_tables] | int32 block_ids[n_ids] | hidden [n_tokens, n_embd] (wire)
//   StepHeader{kShutdown}
// and from the last rank to rank 0 (tag kTagResult), per micro-batch:
//   StepHeader{kHidden, micro_batch, n_rows, wire} | final hidden [n_rows, n_embd] (wire)
// Rank 0 applies output_norm and the output matrix itself, so a logits row costs n_embd values on
// the wire instead of n_vocab (8 KiB instead of 501 KiB per token for a Llama-3.2-1B shape).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "mpi/pipeline.h"
#include "runtime/engine.h"

namespace origami::mpi {

struct EnginePipelineOptions {
  PipelineOptions base;
  // Each step's batch is cut into this many micro-batches (fewer when it has fewer tokens), so
  // rank 0 computes micro-batch k+1 while rank 1 computes k. 0: automatic, one per rank for
  // steps of many tokens (prompt chunks), none for small decode steps (see Forward).
  int micro_batches = 0;
  // Steps kept in flight across the engine's steps (BatchForward::depth): the engine samples one
  // group of sequences while the next ranks compute the others. 0: one per rank.
  int depth = 0;
};

// Rank 0: runs stage 0 and the output head, drives the other ranks.
class EnginePipeline : public BatchForward {
 public:
  EnginePipeline(World& world, const Model& model, ThreadPool& pool, std::vector<Stage> plan,
                 EnginePipelineOptions opts);
  // Tells the workers the KV pool's geometry (call once the Engine exists, before any request).
  void Start(int n_blocks, int block_size);
  int depth() const override;
  void Submit(const BatchToken* batch, int n) override;
  void Collect(float* logits) override;
  // Ends the workers' loops and gathers the statistics (a collective with RunEngineWorker's end).
  PipelineStats Shutdown();

  const std::vector<Stage>& plan() const { return plan_; }
  uint64_t tokens() const { return tokens_; }

 private:
  // Runs stage 0 on a micro-batch and sends it on; returns its id.
  uint32_t SubmitMicroBatch(const BatchToken* batch, int n);
  // Receives micro-batch `id`'s final hidden states (the oldest in flight) and writes its logits.
  void CollectMicroBatch(uint32_t id, float* logits, int rows_expected);

  struct Pending {  // a submitted step: its micro-batches and their logits rows
    std::vector<uint32_t> ids;
    std::vector<int> rows;
  };

  World& world_;
  const DecoderSpec& spec_;
  std::vector<Stage> plan_;
  EnginePipelineOptions opts_;
  Decoder decoder_;
  std::vector<float> hidden_;
  std::deque<Pending> pending_;
  uint32_t next_id_ = 0;
  uint64_t tokens_ = 0;
  uint64_t stage_bytes_ = 0;
  bool started_ = false, shut_down_ = false;
};

// serve's flags for the cluster (as run's): empty split = by free memory, wire "f32" or "bf16",
// timeout_s <= 0: ORIGAMI_DIST_TIMEOUT or the default.
struct ServeClusterOptions {
  std::string split;
  std::string wire = "f32";
  double timeout_s = 0;  // <= 0: the default
  int micro_batches = 0;  // EnginePipelineOptions::micro_batches
  int depth = 0;          // EnginePipelineOptions::depth
  std::string isa;        // PipelineOptions::isa
  bool repack = true;     // PipelineOptions::repack
  int die_rank = -1, die_step = -1;  // PipelineOptions' test hooks
  bool hang = false;
};

// `serve` under mpirun, as the serve command sees it.
class ServeCluster {
 public:
  // Joins the MPI job and plans the stages (automatic, by each rank's free memory; the output head
  // on rank 0). Ranks 1..n-1 run their stages here until rank 0 shuts down, then get null (and
  // exit 0). Rank 0 gets the cluster, with `eo` set to compute through it. An error on any rank
  // ends the whole job, naming the rank.
  static std::unique_ptr<ServeCluster> Join(Model& model, ThreadPool& pool, EngineOptions& eo,
                                            const ServeClusterOptions& opts = {});
  ~ServeCluster();
  // Sends the engine's KV geometry to the workers (before the server takes requests).
  void Start(const Engine& engine);
  // After the engine has stopped: ends the workers' loops, prints the bytes on the wire.
  void Finish();

 private:
  ServeCluster() = default;
  std::unique_ptr<World> world_;
  std::unique_ptr<EnginePipeline> pipe_;
};

// Ranks 1..n-1 of `serve`: run their stage for every micro-batch until rank 0 shuts down.
PipelineStats RunEngineWorker(World& world, const Model& model, ThreadPool& pool,
                              const std::vector<Stage>& plan, const PipelineOptions& opts);

}  // namespace origami::mpi
