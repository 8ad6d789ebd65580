// ForEachMatrix / ForEachVector: the one walk over a model's weights lists every tensor of the file
// once (its parameter count equals the file's), and what is counted with it (bytes per decoded
// token, multiply-adds per token) agrees with a count written here from the tensors themselves.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <string>

#include "convert/synth.h"
#include "gguf/gguf.h"
#include "model/model.h"

namespace origami {
namespace {

std::string Synth(const std::string& arch) {
  SynthOptions o;
  o.arch = arch;
  o.type = "Q8_0";
  o.seed = 5;
  o.output = (std::filesystem::temp_directory_path() / ("origami-weights-test-" + arch + ".gguf")).string();
  WriteSynthModel(o);
  return o.output;
}

TEST(ForEachMatrix, ListsEveryTensorOfTheFileOnce) {
  for (const std::string& arch : SynthArchs()) {
    SCOPED_TRACE(arch);
    const auto model = Model::Open(Synth(arch));
    const DecoderSpec& s = model->spec();
    uint64_t file_params = 0, expert_bytes_all = 0;
    for (const auto& t : model->file().tensors())
      if (t.name != "rope_freqs.weight") file_params += static_cast<uint64_t>(t.NumElements());
    // Every matrix is named once, and MoE layers list their three stacks.
    std::set<std::pair<int, std::string>> seen;
    uint64_t macs = 0;
    ForEachMatrix(s, [&](const MatrixRef& r) {
      EXPECT_TRUE(seen.insert({r.layer, r.name}).second) << r.name << " twice in layer " << r.layer;
      EXPECT_NE(r.matrix == nullptr, r.experts == nullptr);
      if (r.experts) {
        expert_bytes_all += r.experts->stride * r.experts->n_expert;
        macs += static_cast<uint64_t>(r.experts->rows * r.experts->cols) * s.layers[r.layer].n_expert_used;
      } else if (r.role != WeightRole::kEmbedding && r.role != WeightRole::kOutput) {
        macs += static_cast<uint64_t>(r.matrix->rows * r.matrix->cols);
      }
    });
    EXPECT_EQ(s.TotalParameters(), file_params);
    EXPECT_EQ(static_cast<uint64_t>(s.MatMulMacsPerToken()), macs);
    if (s.IsMoe()) {
      EXPECT_GT(expert_bytes_all, 0u);
      EXPECT_LT(s.ActiveParameters(), s.TotalParameters());
    } else {
      EXPECT_EQ(s.ActiveParameters(), s.TotalParameters());
    }
  }
}

}  // namespace
}  // namespace origami
