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
uint64_t Bytes(const cpu::MatrixView& m) {
  return m.data ? RowBytes(m.type, m.cols) * static_cast<uint64_t>(m.rows) : 0;
}
}  // namespace

uint64_t DecoderSpec::WeightBytesPerToken() const {
  uint64_t b = RowBytes(tok_embd.type, tok_embd.cols) + Bytes(output);
  for (const auto& l : layers)
    b += Bytes(l.wq) + Bytes(l.wk) + Bytes(l.wv) + Bytes(l.wo) + Bytes(l.w_gate) + Bytes(l.w_up) + Bytes(l.w_down) +
         4 * (l.attn_norm.size() + l.ffn_norm.size());
  return b + 4 * output_norm.size();
}

uint64_t DecoderSpec::TotalParameters() const {
  auto n = [](const cpu::MatrixView& m) { return m.data ? static_cast<uint64_t>(m.rows * m.cols) : 0; };
  uint64_t p = n(tok_embd) + (tied_output ? 0 : n(output)) + output_norm.size();
  for (const auto& l : layers)
    p += n(l.wq) + n(l.wk) + n(l.wv) + n(l.wo) + n(l.w_gate) + n(l.w_up) + n(l.w_down) + l.attn_norm.size() +
         l.ffn_norm.size() + l.bq.size() + l.bk.size() + l.bv.size() + l.bo.size();
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

cpu::MatrixView TensorLoader::Matrix(const std::string& name, int64_t rows, int64_t cols) const {
  const gguf::TensorInfo& t = Need(f_, name);
  if (t.n_dims > 2 || t.ne[0] != cols || t.ne[1] != rows)
    Fail("{}: tensor '{}' has shape [{}, {}], expected [{}, {}] (ne order)", f_.path(), name, t.ne[0], t.ne[1], cols,
         rows);
  const TypeTraits* tr = FindTypeTraits(t.type);
  if (!tr->to_float) FailKind(ErrorKind::kUnsupported, "{}: tensor '{}' has type {}, which cannot be a weight", f_.path(), name, tr->name);
  return {static_cast<DType>(t.type), rows, cols, t.data};
}

cpu::MatrixView TensorLoader::OptionalMatrix(const std::string& name, int64_t rows, int64_t cols) const {
  return Has(name) ? Matrix(name, rows, cols) : cpu::MatrixView{};
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
