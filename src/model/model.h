// Model: an opened GGUF file plus the DecoderSpec its architecture file built from it.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "backend/backend.h"
#include "gguf/gguf.h"
#include "model/lora.h"
#include "model/spec.h"
#include "util/mapped_file.h"

namespace origami {

class Model {
 public:
  // Opens a GGUF model and builds its spec. Throws origami::Error naming what is wrong.
  static std::unique_ptr<Model> Open(const std::string& path);

  const gguf::File& file() const { return *file_; }
  const DecoderSpec& spec() const { return spec_; }

  // What PrepareWeights did, for `origami info` and the bench.
  struct Prepared {
    int tensors = 0;        // matrices rewritten in a kernel layout
    uint64_t bytes = 0;     // their bytes
    // How many of them went to each layout, in the order first met (a Q4_K_M file has two).
    std::vector<std::pair<Layout, int>> layouts;
    double seconds = 0;

    void Count(Layout l);
    int CountOf(Layout l) const;
    // "113 matrices repacked: 97 as Q4_Kx8, 16 as Q6_Kx8", or "weights used as laid out in the
    // file" when nothing was.
    std::string Summary() const;
  };
  // Rewrites the matrices of layers [first_layer, last_layer) (and the output matrix when
  // `output`; a tied output is the embedding table too, which then reads rows from the new layout)
  // into the layouts `backend` reads fastest (Backend::PreferredLayout). The new copy lives in
  // anonymous memory and each source range is dropped from the mapping as soon as it is copied, so
  // resident memory does not grow by more than a chunk. Only those layers' pages are touched, so a
  // pipeline stage stays resident in its own layers. Call before any decoding (the CLI skips it
  // under ORIGAMI_REPACK=0, keeping the file's layout).
  const Prepared& PrepareWeights(const Backend& backend, int first_layer, int last_layer, bool output);
  // The same for every layer and the output.
  const Prepared& PrepareWeights(const Backend& backend);
  const Prepared& prepared() const { return prepared_; }
  // What PrepareWeights(backend) would do for the whole model, without doing it (`origami info`).
  Prepared PlanWeights(const Backend& backend) const;

  // Adds a LoRA adapter (LoraAdapter::Open checked it against this model) at user scale `scale`
  // to every product of the matrices it names; several adapters sum. The model keeps it. Call
  // before any decoding. A scale of 0 adds nothing (the forward pass stays the base's, bit for bit).
  void AddAdapter(std::unique_ptr<LoraAdapter> adapter, float scale);
  const std::vector<std::unique_ptr<LoraAdapter>>& adapters() const { return adapters_; }
  // Bytes the adapters hold (F32 values).
  uint64_t AdapterBytes() const;

 private:
  std::unique_ptr<gguf::File> file_;
  DecoderSpec spec_;
  Prepared prepared_;
  std::vector<std::unique_ptr<AnonymousBuffer>> repacked_;  // what prepared views point into
  std::vector<std::unique_ptr<LoraAdapter>> adapters_;     // what the layers' LoRA terms point into
};

// Helpers for arch files: typed tensor lookups with shape checks and clear errors.
class TensorLoader {
 public:
  explicit TensorLoader(const gguf::File& f) : f_(f) {}
  // A matrix with ne = [cols, rows]; throws if missing or of another shape.
  MatrixView Matrix(const std::string& name, int64_t rows, int64_t cols) const;
  MatrixView OptionalMatrix(const std::string& name, int64_t rows, int64_t cols) const;
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
