// Reading and checking GGUF LoRA adapters.
//
// The format, as llama.cpp's convert_lora_to_gguf.py writes it (read from its source): metadata
// general.type = "adapter", adapter.type = "lora", adapter.lora.alpha (float32, PEFT's lora_alpha),
// general.architecture as the base model's. For each adapted base tensor `<name>` (the base's GGUF
// name, ".weight" included: "blk.0.attn_q.weight") two tensors `<name>.lora_a` and
// `<name>.lora_b`: PEFT's lora_A (torch shape (rank, n_in)) and lora_B ((n_out, rank)) after the
// same renaming and row permutations the base went through, written in ggml's ne order, so
// lora_a has ne = [n_in, rank] (rank rows of n_in) and lora_b ne = [rank, n_out] (n_out rows of
// rank). The delta of W ([n_out, n_in], ne = [n_in, n_out]) is then B A, in the base's own row
// order. llama.cpp applies it as y += s * B (A x) with s = user_scale * alpha / rank, rank being
// lora_b's ne[0], and s = user_scale when alpha is 0 (llm_graph_context::build_lora_mm); we do
// the same. The converter may also add norm vectors (mergekit-extract-lora) and token-embedding
// pairs (lora_a transposed there); neither is supported yet and both are refused by name.
#include "model/lora.h"

#include <charconv>
#include <cmath>
#include <map>
#include <string_view>
#include <utility>

#include "gguf/gguf.h"
#include "tensor/dtype.h"
#include "util/error.h"

namespace origami {

namespace {

constexpr std::pair<LoraTarget, const char*> kTargets[] = {
    {LoraTarget::kQ, "attn_q"},      {LoraTarget::kK, "attn_k"},      {LoraTarget::kV, "attn_v"},
    {LoraTarget::kO, "attn_output"}, {LoraTarget::kGate, "ffn_gate"}, {LoraTarget::kUp, "ffn_up"},
    {LoraTarget::kDown, "ffn_down"},
};

// A base matrix an adapter tensor may name.
struct BaseMatrix {
  int layer = -1;
  const MatrixView* matrix = nullptr;  // null: a tensor of the base that LoRA cannot target yet
  LoraTarget target = LoraTarget::kQ;
};

// Every matrix of the base by its GGUF name ("blk.3.attn_q.weight").
std::map<std::string, BaseMatrix, std::less<>> BaseMatrices(const DecoderSpec& spec) {
  std::map<std::string, BaseMatrix, std::less<>> m;
  ForEachMatrix(spec, [&](const MatrixRef& r) {
    const std::string name = r.layer < 0 ? std::string(r.name) + ".weight"
                                         : fmt::format("blk.{}.{}.weight", r.layer, r.name);
    BaseMatrix b{r.layer, nullptr, LoraTarget::kQ};
    // MLA layers (deepseek2) make attention through the latent (Decoder::MlaAttention), where no
    // adapter is applied yet: their attention matrices are refused like other untargetable ones.
    const bool mla_attention =
        r.role == WeightRole::kAttention && r.layer >= 0 && spec.layers[r.layer].mla();
    if (r.matrix && !mla_attention && (r.role == WeightRole::kAttention || r.role == WeightRole::kFfn))
      for (auto [t, short_name] : kTargets)
        if (std::string_view(r.name) == short_name) b = {r.layer, r.matrix, t};
    m[name] = b;
  });
  if (spec.tied_output) m["output.weight"] = {-1, nullptr, LoraTarget::kQ};
  return m;
}

std::string Shape(const gguf::TensorInfo& t) {
  std::string s = "[";
  for (uint32_t d = 0; d < std::max<uint32_t>(t.n_dims, 1); ++d)
    s += (d ? ", " : "") + std::to_string(t.ne[d]);
  return s + "]";
}

// A tensor's values as F32, checked to be a 2-D matrix of `cols` x `rows` (ne order) and finite.
std::vector<float> ReadMatrix(const std::string& path, const gguf::TensorInfo& t, int64_t cols,
                              int64_t rows, const char* expected) {
  if (t.n_dims > 2 || t.ne[0] != cols || t.ne[1] != rows)
    Fail("{}: tensor '{}' has shape {} (ne order), expected {} = [{}, {}]", path, t.name, Shape(t),
         expected, cols, rows);
  const TypeTraits* tr = FindTypeTraits(t.type);
  if (!tr || !tr->to_float || cols % tr->block_size != 0)
    FailKind(ErrorKind::kUnsupported,
             "{}: tensor '{}' has type {}, which a LoRA tensor cannot have", path, t.name,
             tr ? tr->name : "unknown");
  std::vector<float> v(static_cast<size_t>(cols * rows));
  tr->to_float(t.data, v.data(), cols * rows);
  for (size_t i = 0; i < v.size(); ++i)
    if (!std::isfinite(v[i]))
      Fail("{}: tensor '{}' holds a non-finite value ({}) at element {}", path, t.name, v[i], i);
  return v;
}

}  // namespace

const char* LoraTargetName(LoraTarget t) {
  for (auto [target, name] : kTargets)
    if (target == t) return name;
  return "?";
}

uint64_t LoraAdapter::bytes() const {
  uint64_t n = 0;
  for (const Pair& p : pairs_) n += (p.a.size() + p.b.size()) * sizeof(float);
  return n;
}

float LoraAdapter::TermScale(const Pair& p, float scale) const {
  return alpha_ != 0.0f ? scale * alpha_ / static_cast<float>(p.rank) : scale;
}

std::unique_ptr<LoraAdapter> LoraAdapter::Open(const std::string& path, const DecoderSpec& base) {
  auto f = gguf::File::Open(path);
  const auto type = f->GetString("general.type");
  if (type != "adapter")
    Fail("{}: not a LoRA adapter (general.type is {}, expected 'adapter')", path,
         type ? "'" + std::string(*type) + "'" : std::string("missing"));
  const auto kind = f->GetString("adapter.type");
  if (kind != "lora")
    FailKind(ErrorKind::kUnsupported, "{}: adapter type {} is not supported (only 'lora')", path,
             kind ? "'" + std::string(*kind) + "'" : std::string("missing"));
  const auto arch = f->GetString("general.architecture");
  if (!arch) Fail("{}: missing general.architecture", path);
  if (*arch != base.arch)
    Fail("{}: the adapter is for architecture '{}', but the model is '{}'", path, *arch, base.arch);

  auto a = std::unique_ptr<LoraAdapter>(new LoraAdapter());
  a->path_ = path;
  const double alpha = f->GetFloat("adapter.lora.alpha").value_or(0.0);
  if (!std::isfinite(alpha)) Fail("{}: adapter.lora.alpha is not a finite number", path);
  a->alpha_ = static_cast<float>(alpha);

  const auto matrices = BaseMatrices(base);
  for (const gguf::TensorInfo& t : f->tensors()) {
    const std::string_view name = t.name;
    const bool is_a = name.ends_with(".lora_a"), is_b = name.ends_with(".lora_b");
    if (!is_a && !is_b)
      FailKind(ErrorKind::kUnsupported,
               "{}: tensor '{}' is not a LoRA tensor (names end in .lora_a or .lora_b)", path,
               t.name);
    const std::string_view target = name.substr(0, name.size() - 7);
    const auto it = matrices.find(target);
    if (it == matrices.end())
      Fail("{}: tensor '{}' names no matrix of the model ('{}' is not one of its tensors)", path,
           t.name, target);
    if (!it->second.matrix)
      FailKind(ErrorKind::kUnsupported,
               "{}: tensor '{}': LoRA on '{}' is not supported yet (attention and dense FFN "
               "matrices only)",
               path, t.name, target);
    const std::string other = std::string(target) + (is_a ? ".lora_b" : ".lora_a");
    const gguf::TensorInfo* partner = f->FindTensor(other);
    if (!partner) Fail("{}: tensor '{}' has no matching '{}'", path, t.name, other);
    if (is_b) continue;  // each pair is read once, from its A

    const MatrixView& w = *it->second.matrix;
    const gguf::TensorInfo& tb = *partner;
    // The rank is A's ne[1] and must be B's ne[0]; everything else follows from W.
    const int64_t rank = t.n_dims >= 2 ? t.ne[1] : 1;
    const int64_t rank_b = tb.ne[0];
    if (t.ne[0] == w.cols && tb.n_dims <= 2 && tb.ne[1] == w.rows && rank != rank_b)
      Fail("{}: '{}' has rank {} but '{}' has rank {}", path, t.name, rank, other, rank_b);
    if (rank < 1) Fail("{}: tensor '{}' has rank {}", path, t.name, rank);
    Pair p;
    p.layer = it->second.layer;
    p.target = it->second.target;
    p.rank = rank, p.n_in = w.cols, p.n_out = w.rows;
    p.a = ReadMatrix(path, t, w.cols, rank, "[n_in, rank]");
    p.b = ReadMatrix(path, tb, rank, w.rows, "[rank, n_out]");
    a->pairs_.push_back(std::move(p));
  }
  if (a->pairs_.empty()) Fail("{}: the adapter has no LoRA tensors", path);
  return a;
}

}  // namespace origami
