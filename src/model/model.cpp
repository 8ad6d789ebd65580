// Model loading: open the GGUF, find the architecture's builder, check what it built.
#include "model/model.h"

#include "model/arch/registry.h"
#include "tensor/dtype.h"
#include "util/error.h"

namespace origami {

std::unique_ptr<Model> Model::Open(const std::string& path) {
  auto m = std::unique_ptr<Model>(new Model());
  m->file_ = gguf::File::Open(path);
  const auto arch = m->file_->GetString("general.architecture");
  if (!arch) Fail("{}: missing general.architecture", path);
  const ArchEntry* entry = FindArch(*arch);
  if (!entry)
    FailKind(ErrorKind::kUnsupported, "{}: architecture '{}' is not supported (supported: {})", path, *arch,
             SupportedArchs());
  m->spec_.arch = std::string(*arch);
  entry->build(*m->file_, m->spec_);
  if (m->file_->tensors().empty()) Fail("{}: the file has no tensors (a vocabulary-only GGUF?)", path);
  return m;
}

namespace {
uint64_t Bytes(const MatrixView& m) {
  return m.data ? RowBytes(m.type, m.cols) * static_cast<uint64_t>(m.rows) : 0;
}
uint64_t Params(const MatrixView& m) { return m.data ? static_cast<uint64_t>(m.rows * m.cols) : 0; }
uint64_t ExpertParams(const ExpertsView& x) { return x.data ? static_cast<uint64_t>(x.rows * x.cols) : 0; }
uint64_t ExpertBytes(const ExpertsView& x) { return x.data ? x.stride : 0; }

// Parameters of one layer; experts counted `experts` times (n_expert for the total, k for active).
uint64_t LayerParams(const LayerSpec& l, int64_t experts) {
  uint64_t p = Params(l.wq) + Params(l.wk) + Params(l.wv) + Params(l.wo) + Params(l.w_gate) + Params(l.w_up) +
               Params(l.w_down) + l.attn_norm.size() + l.ffn_norm.size() + l.bq.size() + l.bk.size() +
               l.bv.size() + l.bo.size() + l.q_norm.size() + l.k_norm.size() + l.post_attn_norm.size() +
               l.post_ffn_norm.size() + l.attn_sinks.size() + Params(l.router) + l.router_bias.size();
  if (l.n_expert > 0) {
    const uint64_t per = ExpertParams(l.gate_exps) + ExpertParams(l.up_exps) + ExpertParams(l.down_exps);
    const uint64_t bias = (l.gate_exps_b.size() + l.up_exps_b.size() + l.down_exps_b.size()) / l.n_expert;
    p += (per + bias) * static_cast<uint64_t>(experts);
  }
  return p;
}
}  // namespace

bool DecoderSpec::IsMoe() const {
  for (const auto& l : layers)
    if (l.n_expert > 0) return true;
  return false;
}

uint64_t DecoderSpec::WeightBytesPerToken() const {
  uint64_t b = RowBytes(tok_embd.type, tok_embd.cols) + Bytes(output);
  for (const auto& l : layers) {
    b += Bytes(l.wq) + Bytes(l.wk) + Bytes(l.wv) + Bytes(l.wo) + Bytes(l.w_gate) + Bytes(l.w_up) + Bytes(l.w_down) +
         Bytes(l.router) + 4 * (l.attn_norm.size() + l.ffn_norm.size());
    // A token reads only its n_expert_used experts.
    if (l.n_expert > 0)
      b += (ExpertBytes(l.gate_exps) + ExpertBytes(l.up_exps) + ExpertBytes(l.down_exps)) *
           static_cast<uint64_t>(l.n_expert_used);
  }
  return b + 4 * output_norm.size();
}

uint64_t DecoderSpec::TotalParameters() const {
  uint64_t p = Params(tok_embd) + (tied_output ? 0 : Params(output)) + output_norm.size();
  for (const auto& l : layers) p += LayerParams(l, l.n_expert);
  return p;
}

uint64_t DecoderSpec::ActiveParameters() const {
  uint64_t p = Params(tok_embd) + (tied_output ? 0 : Params(output)) + output_norm.size();
  for (const auto& l : layers) p += LayerParams(l, l.n_expert_used);
  return p;
}

// ---- TensorLoader / MetaReader -----------------------------------------------------------------

namespace {
const gguf::TensorInfo& Need(const gguf::File& f, const std::string& name) {
  const gguf::TensorInfo* t = f.FindTensor(name);
  if (!t) Fail("{}: missing tensor '{}'", f.path(), name);
  return *t;
}
}  // namespace

MatrixView TensorLoader::Matrix(const std::string& name, int64_t rows, int64_t cols) const {
  const gguf::TensorInfo& t = Need(f_, name);
  if (t.n_dims > 2 || t.ne[0] != cols || t.ne[1] != rows)
    Fail("{}: tensor '{}' has shape [{}, {}], expected [{}, {}] (ne order)", f_.path(), name, t.ne[0], t.ne[1], cols,
         rows);
  const TypeTraits* tr = FindTypeTraits(t.type);
  if (!tr->to_float) FailKind(ErrorKind::kUnsupported, "{}: tensor '{}' has type {}, which cannot be a weight", f_.path(), name, tr->name);
  return {static_cast<DType>(t.type), rows, cols, t.data};
}

MatrixView TensorLoader::OptionalMatrix(const std::string& name, int64_t rows, int64_t cols) const {
  return Has(name) ? Matrix(name, rows, cols) : MatrixView{};
}

ExpertsView TensorLoader::Experts(const std::string& name, int64_t n_expert, int64_t rows, int64_t cols) const {
  const gguf::TensorInfo& t = Need(f_, name);
  if (t.n_dims != 3 || t.ne[0] != cols || t.ne[1] != rows || t.ne[2] != n_expert)
    Fail("{}: tensor '{}' has shape [{}, {}, {}], expected [{}, {}, {}] (ne order)", f_.path(), name, t.ne[0],
         t.ne[1], t.n_dims > 2 ? t.ne[2] : 1, cols, rows, n_expert);
  const TypeTraits* tr = FindTypeTraits(t.type);
  if (!tr->to_float || cols % tr->block_size)
    FailKind(ErrorKind::kUnsupported, "{}: tensor '{}' has type {}, which cannot be an expert weight", f_.path(),
             name, tr->name);
  ExpertsView x;
  x.type = static_cast<DType>(t.type);
  x.n_expert = n_expert;
  x.rows = rows;
  x.cols = cols;
  x.data = t.data;
  x.stride = RowBytes(x.type, cols) * static_cast<uint64_t>(rows);
  return x;
}

Vec TensorLoader::Vector(const std::string& name, int64_t n) const {
  const gguf::TensorInfo& t = Need(f_, name);
  if (t.NumElements() != n)
    Fail("{}: tensor '{}' has {} elements, expected {}", f_.path(), name, t.NumElements(), n);
  const TypeTraits* tr = FindTypeTraits(t.type);
  if (!tr->to_float) FailKind(ErrorKind::kUnsupported, "{}: tensor '{}' has type {}", f_.path(), name, tr->name);
  Vec v(n);
  tr->to_float(t.data, v.data(), n);
  return v;
}

Vec TensorLoader::OptionalVector(const std::string& name, int64_t n) const {
  return Has(name) ? Vector(name, n) : Vec{};
}

uint32_t MetaReader::U32(const std::string& key) const {
  const std::string k = arch_ + "." + key;
  const auto v = f_.GetUint(k);
  if (!v) Fail("{}: missing metadata key '{}'", f_.path(), k);
  if (*v > 0xffffffffu) Fail("{}: key '{}' is out of range ({})", f_.path(), k, *v);
  return static_cast<uint32_t>(*v);
}

uint32_t MetaReader::U32Or(const std::string& key, uint32_t def) const {
  const std::string k = arch_ + "." + key;
  if (!f_.Has(k)) return def;
  return U32(key);
}

float MetaReader::F32Or(const std::string& key, float def) const {
  return static_cast<float>(f_.GetFloat(arch_ + "." + key).value_or(def));
}

}  // namespace origami
