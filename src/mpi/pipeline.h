// Pipeline parallelism over MPI ranks, the one protocol `run` and `serve` share: rank r runs layers
// [plan[r].first_layer, plan[r].last_layer) of the Engine's flat batches and passes one
// hidden-state row per token to rank r+1. Rank 0's KvPool decides block ids; every worker keeps a
// mirror pool of the same geometry holding only its own layers, so block tables (and prefix-shared
// blocks) mean the same on every rank and the workers keep no per-sequence state at all.
//
// Protocol (tag kTagStage, rank r -> r+1, one message per micro-batch):
//   StepHeader{kGeometry, n_blocks, block_size}          once, before the first step
//   StepHeader{kForward, micro_batch, n_tokens, n_tables, n_ids, wire} | PagedToken[n_tokens] |
//     int32 table_len[n_tables] | int32 block_ids[n_ids] | hidden [n_tokens, n_embd] (wire)
//   StepHeader{kShutdown}                                 then every rank joins GatherStats
// and from the last rank to rank 0 (tag kTagResult), per micro-batch:
//   StepHeader{kHidden, micro_batch, n_rows, wire} | final hidden [n_rows, n_embd] (wire)
// Rank 0 applies output_norm and the output matrix itself, so a logits row costs n_embd values on
// the wire instead of n_vocab (8 KiB instead of 501 KiB per token for a Llama-3.2-1B shape).
// Each rank runs micro-batches in the order it receives them, so a sequence's order holds.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "model/decoder.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "mpi/plan.h"
#include "mpi/world.h"
#include "runtime/engine.h"
#include "util/thread_pool.h"

namespace origami::mpi {

// How hidden states travel: float32 keeps the logits bit-identical to one process; bfloat16
// halves the bytes (rounded to nearest even, as Fp32ToBf16 does).
enum class Wire : uint32_t { kF32 = 0, kBf16 = 1 };
// "f32" or "bf16" (--wire); throws origami::Error on anything else.
Wire ParseWire(const std::string& name);
const char* WireName(Wire w);

// Everything a pipeline needs from the command line and the environment (parsed in src/cli),
// the same for `run` and `serve`.
struct PipelineOptions {
  std::string split;  // --split: layers (10,6) or fractions (0.6,0.4) per rank; "": by free memory
  Wire wire = Wire::kF32;  // --wire
  double timeout_s =
      300;  // longest wait for a micro-batch's result before naming the pipeline lost
  // Each step's batch is cut into this many micro-batches (fewer when it has fewer tokens), so
  // rank 0 computes micro-batch k+1 while rank 1 computes k. 0: automatic, one per rank for
  // steps of many tokens (prompt chunks), none for small decode steps (see Pipeline::Submit).
  int micro_batches = 0;
  // Steps kept in flight across the engine's steps (BatchForward::depth): the engine samples one
  // group of sequences while the next ranks compute the others. 0: one per rank.
  int depth = 0;
  KvTypes kv_types;    // every rank stores its layers' K/V in these (Cluster::Join: the engine's)
  std::string isa;     // the CPU backend's kernel table on every rank ("": the best each CPU runs)
  bool repack = true;  // weights rewritten into the backend's layouts at load
  int die_rank = -1;   // test hook (ORIGAMI_TEST_DIE_AT_STEP=rank:step): that rank _exit(9)s
  int die_step = -1;   //   when it receives its step-th micro-batch
  bool hang = false;   // ORIGAMI_TEST_HANG_AT_STEP=rank:step: it stops answering instead
                       //   (a partitioned network: the process lives, nothing arrives)
};
// The hook itself: exits (or hangs) when `rank` is the chosen rank and `step` its micro-batch.
void MaybeDie(const PipelineOptions& o, int rank, int step);

// What every rank did, gathered on all ranks at shutdown.
struct PipelineStats {
  std::vector<uint64_t> stage_bytes;   // per rank: bytes of kTagStage messages sent
  std::vector<uint64_t> result_bytes;  // per rank: bytes of final hidden states sent to rank 0
  std::vector<uint64_t> rss_file;      // per rank: resident bytes of mapped files (the model)
  std::vector<uint64_t> rss;           // per rank: VmRSS
  uint64_t tokens = 0;                 // tokens rank 0 pushed through the pipeline
};

// Rank 0: the Engine's forward seam. Runs stage 0 and the output head, drives the other ranks.
class Pipeline final : public BatchForward {
 public:
  Pipeline(World& world, const Model& model, ThreadPool& pool, std::vector<Stage> plan,
           PipelineOptions opts);
  // Tells the workers the KV pool's geometry (call once the Engine exists, before any request).
  void Start(int n_blocks, int block_size);
  int depth() const override;
  void Submit(const BatchToken* batch, int n) override;
  void Collect(float* logits) override;
  // Ends the workers' loops and gathers the statistics (a collective with RunWorker's end).
  PipelineStats Shutdown();

  const std::vector<Stage>& plan() const { return plan_; }

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
  PipelineOptions opts_;
  Decoder decoder_;
  std::vector<float> hidden_;
  std::deque<Pending> pending_;
  uint32_t next_id_ = 0;
  uint64_t tokens_ = 0;
  uint64_t stage_bytes_ = 0;
  bool started_ = false, shut_down_ = false;
};

// Ranks 1..n-1: run their stage for every micro-batch until rank 0 shuts down, then join the
// statistics.
PipelineStats RunWorker(World& world, const Model& model, ThreadPool& pool,
                        const std::vector<Stage>& plan, const PipelineOptions& opts);

// Plans the stages for this world: every rank's MemAvailable is gathered (a collective) so the
// automatic split is proportional to free memory; all ranks compute the same plan. KV is costed
// for n_kv positions of each rank's layers.
std::vector<Stage> PlanForWorld(World& world, const Model& model, const PipelineOptions& opts,
                                int n_kv, std::vector<uint64_t>* free_memory = nullptr);

// Hidden states on the wire: n floats to/from F32 or BF16 bytes (n * 4 or n * 2 of them).
size_t WireBytes(Wire w);
void EncodeHidden(const float* x, size_t n, Wire w, uint8_t* dst);
void DecodeHidden(const uint8_t* src, size_t n, Wire w, float* x);

}  // namespace origami::mpi
