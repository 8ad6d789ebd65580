// Pipeline plans: parsing --split, costing layers from the tensor table, placing stage boundaries.
#include "mpi/plan.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <numeric>
#include <sstream>

#include "util/error.h"

namespace origami::mpi {

SplitRequest ParseSplit(const std::string& s) {
  SplitRequest r;
  if (s.empty() || s == "auto") return r;
  bool any_fraction = false;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    char* end = nullptr;
    const double v = std::strtod(item.c_str(), &end);
    if (item.empty() || end != item.c_str() + item.size() || !std::isfinite(v) || v <= 0)
      Fail(
          "--split: '{}' is not a positive number (use layer counts like 10,6 or fractions like "
          "0.6,0.4)",
          item);
    if (item.find_first_of(".eE") != std::string::npos) any_fraction = true;
    r.values.push_back(v);
  }
  if (r.values.empty()) Fail("--split: empty list");
  r.kind = any_fraction ? SplitRequest::Kind::kFractions : SplitRequest::Kind::kLayers;
  return r;
}

ModelCosts CostsOf(const gguf::File& f, const DecoderSpec& spec, KvTypes kv_types) {
  ModelCosts c;
  const int n_layer = spec.n_layer();
  c.layer_bytes.assign(n_layer, 0);
  for (const auto& l : spec.layers) {
    const int64_t row = static_cast<int64_t>(l.n_head_kv) * l.head_dim;
    c.layer_kv_per_pos.push_back(RowBytes(kv_types.k, row) + RowBytes(kv_types.v, row));
  }
  bool has_output = false;
  for (const auto& t : f.tensors()) {
    if (t.name.rfind("blk.", 0) == 0) {
      const int layer = std::atoi(t.name.c_str() + 4);
      if (layer >= 0 && layer < n_layer) c.layer_bytes[layer] += t.n_bytes;
    } else if (t.name == "token_embd.weight") {
      c.embd_bytes = t.n_bytes;
    } else if (t.name == "output.weight" || t.name == "output_norm.weight") {
      c.head_bytes += t.n_bytes;
      has_output |= t.name == "output.weight";
    }
  }
  if (!has_output) c.head_bytes += c.embd_bytes;  // tied: the classifier reads all of token_embd
  return c;
}

namespace {

// Boundaries b[0] = 0 < b[1] < ... < b[n] = n_layer, each where the prefix sum of layer bytes
// comes closest to its share of the weights.
std::vector<int> BoundariesByWeight(const std::vector<uint64_t>& layer_bytes,
                                    const std::vector<double>& weight) {
  const int n_layer = static_cast<int>(layer_bytes.size());
  const int n = static_cast<int>(weight.size());
  std::vector<double> prefix(n_layer + 1, 0.0);
  for (int i = 0; i < n_layer; ++i) prefix[i + 1] = prefix[i] + static_cast<double>(layer_bytes[i]);
  const double total_w = std::accumulate(weight.begin(), weight.end(), 0.0);
  std::vector<int> b(n + 1, 0);
  b[n] = n_layer;
  double cum = 0;
  for (int r = 1; r < n; ++r) {
    cum += weight[r - 1];
    const double target = prefix[n_layer] * cum / total_w;
    const int lo = b[r - 1] + 1, hi = n_layer - (n - r);  // every stage keeps at least one layer
    int best = lo;
    for (int k = lo; k <= hi; ++k)
      if (std::abs(prefix[k] - target) < std::abs(prefix[best] - target)) best = k;
    b[r] = best;
  }
  return b;
}

}  // namespace

std::vector<Stage> PlanStages(const ModelCosts& costs, int n_ranks, const SplitRequest& req,
                              const std::vector<uint64_t>& free_memory, int n_ctx) {
  const int n_layer = static_cast<int>(costs.layer_bytes.size());
  if (n_ranks < 1) Fail("a plan needs at least one rank, got {}", n_ranks);
  if (n_ranks > n_layer)
    Fail("{} ranks cannot each hold a stage of a model with {} layers (use at most {} ranks)",
         n_ranks, n_layer, n_layer);
  if (req.kind != SplitRequest::Kind::kAuto && static_cast<int>(req.values.size()) != n_ranks)
    Fail("--split has {} entries but there are {} ranks", req.values.size(), n_ranks);

  std::vector<int> b;
  if (req.kind == SplitRequest::Kind::kLayers) {
    b.push_back(0);
    for (double v : req.values) {
      if (v != std::floor(v) || v < 1)
        Fail("--split: layer counts must be whole numbers >= 1, got {}", v);
      b.push_back(b.back() + static_cast<int>(v));
    }
    if (b.back() != n_layer)
      Fail("--split: the layer counts add up to {}, but the model has {} layers", b.back(),
           n_layer);
  } else {
    std::vector<double> w = req.values;
    if (req.kind == SplitRequest::Kind::kAuto) {
      w.assign(n_ranks, 1.0);
      // Proportional to free memory when every rank reported it; equal shares otherwise.
      if (static_cast<int>(free_memory.size()) == n_ranks &&
          std::all_of(free_memory.begin(), free_memory.end(), [](uint64_t m) { return m > 0; }))
        for (int r = 0; r < n_ranks; ++r) w[r] = static_cast<double>(free_memory[r]);
    }
    b = BoundariesByWeight(costs.layer_bytes, w);
  }

  std::vector<Stage> plan(n_ranks);
  for (int r = 0; r < n_ranks; ++r) {
    Stage& s = plan[r];
    s.first_layer = b[r];
    s.last_layer = b[r + 1];
    for (int l = s.first_layer; l < s.last_layer; ++l) {
      s.weight_bytes += costs.layer_bytes[l];
      s.kv_bytes += costs.layer_kv_per_pos[l] * static_cast<uint64_t>(n_ctx);
    }
    s.head = r == 0;
    if (s.head) s.weight_bytes += costs.head_bytes;
  }
  return plan;
}

std::string FormatPlan(const std::vector<Stage>& plan, const std::vector<uint64_t>& free_memory) {
  std::string out;
  for (size_t r = 0; r < plan.size(); ++r) {
    const Stage& s = plan[r];
    out += fmt::format(
        "  rank {}: layers {:>3}-{:<3} ({:>3} layers)  weights {:>10.2f} MiB  KV {:>9.2f} MiB", r,
        s.first_layer, s.last_layer - 1, s.last_layer - s.first_layer, s.weight_bytes / 1048576.0,
        s.kv_bytes / 1048576.0);
    if (r < free_memory.size() && free_memory[r] > 0)
      out += fmt::format("  (free memory {:.2f} GiB)", free_memory[r] / 1073741824.0);
    if (r == 0) out += "  + token embedding rows";
    if (s.head) out += "  + output head";
    out += "\n";
  }
  return out;
}

namespace {
uint64_t KibField(const char* path, const char* field) {
  std::ifstream in(path);
  std::string line;
  const std::string key = std::string(field) + ":";
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0)
      return std::strtoull(line.c_str() + key.size(), nullptr, 10) * 1024;
  }
  return 0;
}
}  // namespace

uint64_t MemAvailableBytes() { return KibField("/proc/meminfo", "MemAvailable"); }
uint64_t ProcStatusBytes(const char* field) { return KibField("/proc/self/status", field); }

}  // namespace origami::mpi
