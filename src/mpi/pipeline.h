// Pipeline parallelism over MPI ranks: rank r runs layers [plan[r].first_layer, plan[r].last_layer)
// and passes one hidden-state row per token to rank r+1; the last rank computes the logits of the
// tokens that ask for them and returns them to rank 0, which tokenizes, samples and prints.
//
// The stage protocol (one MPI message per hop, tag kTagStage, rank r -> r+1):
//   Header{kind=kForward, micro_batch, n_tokens, wire} | StageToken[n_tokens] | hidden [n_tokens,
//   n_embd] Header{kind=kRelease, seq}    forget a sequence's KV cache on every rank
//   Header{kind=kShutdown}        leave the loop (then every rank joins the closing statistics)
// and back from the last rank to rank 0 (tag kTagResult):
//   Header{kind=kLogits, micro_batch, n_rows} | float [n_rows, n_vocab]
// A micro-batch may mix tokens of many sequences (continuous batching); several micro-batches
// may be in flight at once, so while rank 1 runs micro-batch k, rank 0 already runs k+1. Each
// rank processes micro-batches in the order it receives them, so per-sequence order holds.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <span>
#include <vector>

#include "mpi/plan.h"
#include "mpi/world.h"
#include "model/decoder.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "util/thread_pool.h"

namespace origami::mpi {

// How hidden states travel: float32 keeps the logits bit-identical to one process; bfloat16
// halves the bytes (rounded to nearest even, as Fp32ToBf16 does).
enum class Wire : uint32_t { kF32 = 0, kBf16 = 1 };

// One token of a micro-batch as it crosses the wire.
struct StageToken {
  int32_t seq = 0;  // sequence id: each rank keeps a KV cache (of its own layers) per id
  int32_t token = 0;
  int32_t pos = 0;
  int32_t logits = 0;  // nonzero: the last rank returns this token's logits
};

struct PipelineOptions {
  Wire wire = Wire::kF32;
  double timeout_s =
      300;            // longest wait for a micro-batch's result before naming the pipeline lost
  int die_rank = -1;  // test hook (ORIGAMI_TEST_DIE_AT_STEP=rank:step): that rank _exit(9)s
  int die_step = -1;  //   when it receives its step-th micro-batch
  bool hang = false;  // ORIGAMI_TEST_HANG_AT_STEP=rank:step: it stops answering instead
                      //   (a partitioned network: the process lives, nothing arrives)
  KvTypes kv_types;   // every rank stores its layers' K/V in these (-ctk/-ctv, same on all ranks)
  std::string isa;    // the CPU backend's kernel table on every rank ("": the best each CPU runs)
  bool repack = true; // weights rewritten into the backend's layouts at load
};
// The hook itself: exits (or hangs) when `rank` is the chosen rank and `step` its micro-batch.
void MaybeDie(const PipelineOptions& o, int rank, int step);

// What every rank did, gathered on all ranks at shutdown.
struct PipelineStats {
  std::vector<uint64_t> stage_bytes;   // per rank: bytes of kTagStage messages sent
  std::vector<uint64_t> result_bytes;  // per rank: bytes of logits sent back to rank 0
  std::vector<uint64_t> rss_file;      // per rank: resident bytes of mapped files (the model)
  std::vector<uint64_t> rss;           // per rank: VmRSS
  uint64_t tokens = 0;                 // tokens rank 0 pushed through the pipeline
};
// Every rank's counters and resident memory (a collective: all ranks call it at the end).
PipelineStats GatherStats(World& world, uint64_t stage_bytes, uint64_t result_bytes,
                          uint64_t tokens);

// Runs one rank's layers for micro-batches, holding a KV cache (of its layers only) per sequence.
class StageRunner {
 public:
  StageRunner(const Model& model, ThreadPool& pool, const Stage& stage, int n_ctx, const PipelineOptions& opts);
  // hidden_in: null on the first stage. hidden_out: [n, n_embd] (unused on the last stage).
  // logits: [rows, n_vocab] on the last stage.
  void Run(std::span<const StageToken> tokens, const float* hidden_in, float* hidden_out,
           float* logits);
  void Release(int32_t seq) { caches_.erase(seq); }
  const Stage& stage() const { return stage_; }

 private:
  const DecoderSpec& spec_;
  DecoderSpec kv_spec_;  // the model's shape with K/V widths zeroed outside this stage
  Decoder decoder_;
  Stage stage_;
  int n_ctx_;
  KvTypes kv_types_;
  std::map<int32_t, std::unique_ptr<KvCache>> caches_;
  std::vector<BatchToken> batch_;
};

// Rank 0's side: runs stage 0 and drives the others.
class Pipeline {
 public:
  Pipeline(World& world, const Model& model, ThreadPool& pool, std::vector<Stage> plan, int n_ctx,
           PipelineOptions opts);

  // Runs stage 0 on a micro-batch (at most Decoder::kMaxBatch tokens) and sends it on; returns
  // its id. Does not wait for the other stages.
  uint32_t Submit(std::span<const StageToken> tokens);
  // Waits for the oldest micro-batch in flight; its logits rows (one per token with `logits`
  // set, in batch order) are left in `logits`. Returns its id.
  uint32_t Collect(std::vector<float>& logits);
  size_t in_flight() const { return in_flight_.size(); }
  // Frees a sequence's KV cache on every rank.
  void ReleaseSequence(int32_t seq);
  // Ends the workers' loops and gathers the statistics (a collective with RunWorker's end).
  PipelineStats Shutdown();

  const std::vector<Stage>& plan() const { return plan_; }
  const DecoderSpec& spec() const { return spec_; }

 private:
  World& world_;
  const DecoderSpec& spec_;
  std::vector<Stage> plan_;
  PipelineOptions opts_;
  StageRunner runner_;
  std::vector<float> hidden_;
  std::deque<uint32_t> in_flight_;
  uint32_t next_id_ = 0;
  uint64_t tokens_ = 0;
  uint64_t stage_bytes_ = 0;
  bool shut_down_ = false;
};

// A Session-shaped view of one sequence on a Pipeline (what `origami run` uses).
class PipelineSession {
 public:
  PipelineSession(Pipeline& pipeline, int n_ctx, int32_t seq = 0);
  // Appends tokens and returns the logits after the last one (valid until the next call).
  std::span<float> Eval(std::span<const int32_t> tokens);
  const std::vector<int32_t>& tokens() const { return tokens_; }
  int64_t n_past() const { return static_cast<int64_t>(tokens_.size()); }
  int n_ctx() const { return n_ctx_; }

 private:
  Pipeline& pipeline_;
  int n_ctx_;
  int32_t seq_;
  std::vector<int32_t> tokens_;
  std::vector<float> logits_;
};

// Ranks 1..n-1: receive micro-batches, run the stage, pass them on, until rank 0 shuts down.
PipelineStats RunWorker(World& world, const Model& model, ThreadPool& pool,
                        const std::vector<Stage>& plan, int n_ctx, const PipelineOptions& opts);

// Plans the stages for this world: every rank's MemAvailable is gathered (a collective) so the
// automatic split is proportional to free memory; all ranks compute the same plan.
std::vector<Stage> PlanForWorld(World& world, const Model& model, const SplitRequest& req,
                                int n_ctx, std::vector<uint64_t>* free_memory = nullptr,
                                HeadAt head_at = HeadAt::kLastRank, KvTypes kv_types = {});

// Hidden states on the wire: n floats to/from F32 or BF16 bytes (n * 4 or n * 2 of them).
size_t WireBytes(Wire w);
void EncodeHidden(const float* x, size_t n, Wire w, uint8_t* dst);
void DecodeHidden(const uint8_t* src, size_t n, Wire w, float* x);

}  // namespace origami::mpi
