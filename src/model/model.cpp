// Model loading: open the GGUF, find the architecture's builder, check what it built.
#include "model/model.h"

#include <cmath>

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

void Model::AddAdapter(std::unique_ptr<LoraAdapter> adapter, float scale) {
  if (!std::isfinite(scale)) Fail("{}: LoRA scale {} is not a finite number", adapter->path(), scale);
  if (scale != 0.0f) {
    for (const LoraAdapter::Pair& p : adapter->pairs()) {
      LoraTerm t;
      t.target = p.target;
      t.a = {DType::kF32, p.rank, p.n_in, p.a.data()};
      t.b = {DType::kF32, p.n_out, p.rank, p.b.data()};
      t.scale = adapter->TermScale(p, scale);
      spec_.layers[p.layer].lora.push_back(t);
    }
  }
  adapters_.push_back(std::move(adapter));  // the vectors (and the views into them) stay put
}

uint64_t Model::AdapterBytes() const {
  uint64_t n = 0;
  for (const auto& a : adapters_) n += a->bytes();
  return n;
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
