// Pipeline plans: which contiguous range of layers each rank runs, and what that costs it in
// weight and KV-cache bytes. Pure arithmetic over the GGUF tensor table; no MPI involved.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "model/kv_cache.h"
#include "model/spec.h"

namespace origami::mpi {

// What --split asked for: nothing (automatic, by free memory), layer counts ("10,6") or
// fractions ("0.6,0.4").
struct SplitRequest {
  enum class Kind { kAuto, kLayers, kFractions };
  Kind kind = Kind::kAuto;
  std::vector<double> values;  // one per rank for kLayers / kFractions
};

// Parses --split; throws origami::Error naming the bad item.
SplitRequest ParseSplit(const std::string& s);

// Where the bytes of a model lie, by layer, from its tensor names ("blk.N." prefixes).
struct ModelCosts {
  std::vector<uint64_t> layer_bytes;       // [n_layer] weights of each block
  std::vector<uint64_t> layer_kv_per_pos;  // [n_layer] K+V bytes one position costs (in the KV types)
  uint64_t embd_bytes = 0;                 // token_embd: rank 0 only reads the rows it looks up
  uint64_t head_bytes = 0;  // output_norm + output (rank 0; all of token_embd when tied)
};
ModelCosts CostsOf(const gguf::File& f, const DecoderSpec& spec, KvTypes kv_types = {});

// One rank's share.
struct Stage {
  int first_layer = 0;  // runs layers [first_layer, last_layer)
  int last_layer = 0;
  uint64_t weight_bytes = 0;  // layer weights, plus the output head on rank 0
  uint64_t kv_bytes = 0;      // K and V of its layers for one sequence of n_ctx positions
  bool head = false;          // holds the output head (output_norm + output)
};

// Splits the layers into n_ranks contiguous, non-empty stages. kAuto weighs each rank by
// free_memory[rank] (bytes of MemAvailable); kFractions by the given fractions; both place the
// boundaries where the running sum of layer bytes comes closest to the target. kLayers takes
// the counts as given (they must add up to n_layer). The output head runs on rank 0: the last rank
// returns one hidden state per logits row, n_embd floats instead of n_vocab.
std::vector<Stage> PlanStages(const ModelCosts& costs, int n_ranks, const SplitRequest& req,
                              const std::vector<uint64_t>& free_memory, int n_ctx);

// One line per rank: layers, weight bytes, KV bytes (and free memory when known).
std::string FormatPlan(const std::vector<Stage>& plan, const std::vector<uint64_t>& free_memory);

// This machine's MemAvailable from /proc/meminfo in bytes (0 when unknown).
uint64_t MemAvailableBytes();
// A field of /proc/self/status ("VmRSS", "RssFile", ...) in bytes (0 when unknown).
uint64_t ProcStatusBytes(const char* field);

}  // namespace origami::mpi
