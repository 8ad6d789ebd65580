// Model: an opened GGUF file plus the DecoderSpec its architecture file built from it.
#pragma once

#include <memory>
#include <string>

#include "gguf/gguf.h"
#include "model/spec.h"

namespace origami {

class Model {
 public:
  // Opens a GGUF model and builds its spec. Throws origami::Error naming what is wrong.
  static std::unique_ptr<Model> Open(const std::string& path);

  const gguf::File& file() const { return *file_; }
  const DecoderSpec& spec() const { return spec_; }

 private:
  std::unique_ptr<gguf::File> file_;
  DecoderSpec spec_;
};

// Helpers for arch files: typed tensor lookups with shape checks and clear errors.
class TensorLoader {
 public:
  explicit TensorLoader(const gguf::File& f) : f_(f) {}
  // A matrix with ne = [cols, rows]; throws if missing or of another shape.
  cpu::MatrixView Matrix(const std::string& name, int64_t rows, int64_t cols) const;
  cpu::MatrixView OptionalMatrix(const std::string& name, int64_t rows, int64_t cols) const;
  // A 3-D stack of n_expert matrices, ne = [cols, rows, n_expert]; throws if missing or misshapen.
  ExpertsView Experts(const std::string& name, int64_t n_expert, int64_t rows, int64_t cols) const;
  // A vector of n elements converted to float; throws if missing.
  Vec Vector(const std::string& name, int64_t n) const;
  Vec OptionalVector(const std::string& name, int64_t n) const;
  bool Has(const std::string& name) const { return f_.FindTensor(name) != nullptr; }

 private:
  const gguf::File& f_;
};

// Metadata helpers with the architecture prefix ("llama.embedding_length").
class MetaReader {
 public:
  MetaReader(const gguf::File& f, std::string arch) : f_(f), arch_(std::move(arch)) {}
  uint32_t U32(const std::string& key) const;                // required
  uint32_t U32Or(const std::string& key, uint32_t def) const;
  float F32Or(const std::string& key, float def) const;
  const std::string& arch() const { return arch_; }

 private:
  const gguf::File& f_;
  std::string arch_;
};

}  // namespace origami
