// `origami quantize IN.gguf OUT.gguf TYPE`: requantize a model's weights, printing each tensor's
// relative error and a progress bar.
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "convert/quantize.h"
#include "util/error.h"
#include "util/timer.h"

namespace origami::cli {

namespace {

struct QuantizeCliOptions {
  QuantizeOptions q;
  int threads = 1;
};

int Quantize(const QuantizeCliOptions& o) {
  ThreadPool pool(o.threads);
  const double t0 = NowSeconds();
  QuantizeModel(o.q, pool, [](const TensorReport& r) {
    const int width = 30;
    const int done = static_cast<int>((r.index + 1) * width / r.count);
    std::fprintf(stderr, "[%.*s%*s] %4zu/%zu %-36s %-5s -> %-5s", done, "##############################", width - done,
                 "", r.index + 1, r.count, r.name.c_str(), r.from.c_str(), r.to.c_str());
    if (r.from != r.to) std::fprintf(stderr, "  rel. RMS error %.4f", r.rel_rmse);
    std::fputc('\n', stderr);
  });
  std::fprintf(stderr, "wrote %s in %.1f s\n", o.q.output.c_str(), NowSeconds() - t0);
  return 0;
}

}  // namespace

void AddQuantizeCommand(CLI::App& app, Action& action) {
  auto o = std::make_shared<QuantizeCliOptions>();
  CLI::App* sub = app.add_subcommand("quantize", "quantize a model's weights (F32/F16/BF16 input)");
  sub->add_option("input", o->q.input, "input GGUF (F32, F16 or BF16 weights)")->required();
  sub->add_option("output", o->q.output, "output GGUF")->required();
  sub->add_option("type", o->q.type,
                  "F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q3_K_M, Q4_K, Q4_K_S, Q4_K_M, Q5_K, Q5_K_S, "
                  "Q5_K_M, Q6_K, NVFP4")
      ->required();
  AddThreadsOption(*sub, o->threads);
  sub->callback([o, &action] { action = [o] { return Quantize(*o); }; });
}

}  // namespace origami::cli
