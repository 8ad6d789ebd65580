// `origami bench`: prompt processing (pp) and generation (tg) speed, with the share of the memory
// bandwidth roofline this machine allows. Token ids are fed directly: no tokenizer involved.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <random>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "model/model.h"
#include "runtime/session.h"
#include "tensor/dtype.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/timer.h"

namespace origami::cli {

namespace {

struct BenchOptions {
  std::string device = "cpu";  // --device
  std::string model;
  bool tokenize = false;
  std::string text_dir;
  int threads = 1;
  int n_prompt = 512;
  int n_gen = 128;
  int n_depth = 0;  // tokens already in the context before each test (llama-bench's -d)
  int reps = 3;
  bool json = false;
  KvTypeFlags kv;
};

// XOR-reduces n 64-bit words. Compiled for AVX2 and for the baseline, picked at run time, so
// the measurement uses the widest loads this CPU has (a narrower loop understates bandwidth).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
uint64_t XorReduce(const uint64_t* p, int64_t n) {
  uint64_t acc[16] = {};
  for (int64_t i = 0; i + 16 <= n; i += 16)
    for (int k = 0; k < 16; ++k) acc[k] ^= p[i + k];
  uint64_t s = 0;
  for (uint64_t a : acc) s ^= a;
  return s;
}

// Best-of-7 read bandwidth over a buffer far larger than the caches, with `threads` readers.
double MeasureReadBandwidth(ThreadPool& pool) {
  const size_t bytes = size_t{1} << 30;
  const size_t words = bytes / sizeof(uint64_t);
  std::vector<uint64_t> buf(words);
  pool.ParallelFor(static_cast<int64_t>(words), 4096, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) buf[i] = static_cast<uint64_t>(i);
  });
  std::vector<uint64_t> sink(pool.size() * 8);
  double best = 0;
  for (int rep = 0; rep < 7; ++rep) {
    const double t0 = NowSeconds();
    const int64_t per = static_cast<int64_t>(words) / pool.size();
    pool.Run(pool.size(), [&](int64_t task, int) { sink[task * 8] = XorReduce(buf.data() + task * per, per); });
    const double dt = NowSeconds() - t0;
    best = std::max(best, static_cast<double>(per * pool.size() * sizeof(uint64_t)) / dt);
  }
  volatile uint64_t keep = sink[0];
  (void)keep;
  return best;
}

// Multiply-adds of one prompt of n tokens after `depth` cached ones: every matrix once per token,
// attention over the prefix, the classifier for the last token only.
// The routed experts and the MoE router count as a token computes them (DecoderSpec::MatMulMacsPerToken).
double PromptFlops(const DecoderSpec& s, int n, int depth) {
  double attn = 0;
  for (const auto& l : s.layers)  // QK^T and PV: token i of the prompt attends to depth + i + 1 positions.
    attn += 2.0 * l.n_head * l.head_dim * (static_cast<double>(n) * depth + static_cast<double>(n) * (n + 1) / 2);
  return 2.0 * (s.MatMulMacsPerToken() * n + attn + static_cast<double>(s.output.rows) * s.output.cols);
}

struct Stat {
  double mean = 0, sd = 0;
};
Stat Summarize(const std::vector<double>& v) {
  Stat s;
  for (double x : v) s.mean += x;
  s.mean /= static_cast<double>(v.size());
  for (double x : v) s.sd += (x - s.mean) * (x - s.mean);
  s.sd = v.size() > 1 ? std::sqrt(s.sd / static_cast<double>(v.size() - 1)) : 0;
  return s;
}

std::string MainType(const gguf::File& f) {
  std::map<std::string, uint64_t> bytes;
  for (const auto& t : f.tensors()) bytes[FindTypeTraits(t.type)->name] += t.n_bytes;
  std::string best;
  uint64_t most = 0;
  for (const auto& [k, v] : bytes)
    if (v > most) most = v, best = k;
  return best;
}

// Tokenizer throughput on a mixed multilingual text of at least 10 MB built from the tokenizer test
// inputs (*.inp: many scripts, code, emoji, digits, whitespace runs).
int BenchTokenize(const BenchOptions& o) {
  auto f = gguf::File::Open(o.model);
  auto tok = Tokenizer::FromGguf(*f);
  std::string seed;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(o.text_dir, ec)) {
    if (entry.path().extension() != ".inp") continue;
    std::ifstream in(entry.path(), std::ios::binary);
    seed.append(std::istreambuf_iterator<char>(in), {});
  }
  if (seed.empty()) Fail("bench --tokenize: no *.inp texts in '{}' (set --text-dir)", o.text_dir);
  std::string text;
  while (text.size() < (size_t{10} << 20)) text += seed;
  std::vector<double> mbps;
  size_t n_tokens = 0;
  for (int r = 0; r < o.reps; ++r) {
    const double t0 = NowSeconds();
    n_tokens = tok->Encode(text, {.add_special = false, .parse_special = false}).size();
    mbps.push_back(text.size() / 1e6 / (NowSeconds() - t0));
  }
  const Stat s = Summarize(mbps);
  if (o.json) {
    fmt::print("{}\n", nlohmann::json({{"test", "tokenize"}, {"model", o.model}, {"bytes", text.size()},
                                        {"tokens", n_tokens}, {"mb_per_second", s.mean}, {"stddev", s.sd}})
                            .dump());
  } else {
    fmt::print("tokenize: {:.1f} MB of text -> {} tokens, {:.2f} ± {:.2f} MB/s ({} model, pre-tokenizer '{}')\n",
               text.size() / 1e6, n_tokens, s.mean, s.sd, tok->model_name(), tok->pre_name());
  }
  return 0;
}

int Bench(const BenchOptions& o) {
  if (o.tokenize) return BenchTokenize(o);
  if (o.n_prompt < 0 || o.n_gen < 0 || o.n_depth < 0 || o.reps <= 0)
    Fail("bench: -p, -n, -d must be >= 0 and -r > 0");
  const KvTypes kv_types = o.kv.Resolve();
  auto model = Model::Open(o.model);
  ThreadPool pool(o.threads);
  const auto backend = OpenBackend(o.device, pool);
  PrepareWeights(*model, *backend);
  const DecoderSpec& spec = model->spec();
  CheckKvTypes(spec, kv_types);
  const double bandwidth = MeasureReadBandwidth(pool);
  const double bytes_per_token = static_cast<double>(spec.WeightBytesPerToken());
  const int n_ctx = o.n_depth + std::max(o.n_prompt, o.n_gen) + 16;
  // Decode at depth also reads the cache: K and V rows of every layer for every earlier position
  // (on average depth + n_gen / 2 of them), counted into the roofline's bytes per token.
  const double kv_bytes_per_pos = static_cast<double>(KvBytesPerToken(spec, kv_types));
  const std::string at_depth = o.n_depth > 0 ? "@d" + std::to_string(o.n_depth) : "";
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> dist(0, spec.n_vocab - 1);
  const std::string type = MainType(model->file());
  uint64_t model_bytes = 0;
  for (const auto& t : model->file().tensors()) model_bytes += t.n_bytes;

  if (!o.json) {
    fmt::print("model: {} ({}, {:.2f} GiB, {:.2f} B params), threads {}, KV {}/{} ({} bytes per token), read "
               "bandwidth {:.1f} GB/s\n",
               o.model, type, model_bytes / 1073741824.0, spec.TotalParameters() / 1e9, o.threads,
               KvTypeName(kv_types.k), KvTypeName(kv_types.v), KvBytesPerToken(spec, kv_types), bandwidth / 1e9);
    fmt::print("| {:>6} | {:>7} | {:>16} | {:>24} |\n", "test", "threads", "tokens/s", "roofline share / GFLOP/s");
    fmt::print("|--------|---------|------------------|--------------------------|\n");
  }
  auto report = [&](const std::string& test, const std::vector<double>& tps, double extra, bool gen) {
    const Stat s = Summarize(tps);
    if (o.json) {
      nlohmann::json j = {{"test", test},          {"threads", o.threads},       {"tokens_per_second", s.mean},
                          {"stddev", s.sd},        {"model", o.model},           {"type", type},
                          {"model_bytes", model_bytes}, {"bandwidth_gbps", bandwidth / 1e9},
                          {"weight_bytes_per_token", bytes_per_token}, {"reps", o.reps},
                          {"n_depth", o.n_depth},  {"type_k", KvTypeName(kv_types.k)},
                          {"type_v", KvTypeName(kv_types.v)}, {"kv_bytes_per_token", kv_bytes_per_pos}};
      if (gen) j["roofline_share"] = extra;
      else j["gflops"] = extra;
      fmt::print("{}\n", j.dump());
    } else {
      fmt::print("| {:>6} | {:>7} | {:>8.2f} ± {:<5.2f} | {:>24} |\n", test, o.threads, s.mean, s.sd,
                 gen ? fmt::format("{:.1f}% of roofline", 100 * extra) : fmt::format("{:.1f} GFLOP/s", extra));
    }
    std::fflush(stdout);
  };

  std::vector<int32_t> depth_ids(o.n_depth);
  for (auto& id : depth_ids) id = dist(rng);
  auto fill_depth = [&](Session& session) {
    if (!depth_ids.empty()) session.Eval(depth_ids);
  };
  if (o.n_prompt > 0) {
    std::vector<int32_t> ids(o.n_prompt);
    for (auto& id : ids) id = dist(rng);
    std::vector<double> tps;
    for (int r = -1; r < o.reps; ++r) {  // one warm-up run
      Session session(*model, *backend, n_ctx, kv_types);
      fill_depth(session);
      const double t0 = NowSeconds();
      session.Eval(ids);
      const double dt = NowSeconds() - t0;
      if (r >= 0) tps.push_back(o.n_prompt / dt);
    }
    const double gflops = PromptFlops(spec, o.n_prompt, o.n_depth) * Summarize(tps).mean / o.n_prompt / 1e9;
    report("pp" + std::to_string(o.n_prompt) + at_depth, tps, gflops, false);
  }
  if (o.n_gen > 0) {
    std::vector<double> tps;
    for (int r = -1; r < o.reps; ++r) {
      Session session(*model, *backend, n_ctx, kv_types);
      fill_depth(session);
      int32_t id = dist(rng);
      const double t0 = NowSeconds();
      for (int i = 0; i < o.n_gen; ++i) {
        const int32_t one[1] = {id};
        session.Eval(one);
        id = dist(rng);
      }
      const double dt = NowSeconds() - t0;
      if (r >= 0) tps.push_back(o.n_gen / dt);
    }
    const double kv_bytes = kv_bytes_per_pos * (o.n_depth + o.n_gen / 2.0);
    const double share = Summarize(tps).mean * (bytes_per_token + kv_bytes) / bandwidth;
    report("tg" + std::to_string(o.n_gen) + at_depth, tps, share, true);
  }
  return 0;
}

}  // namespace

void AddBenchCommand(CLI::App& app, Action& action) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* sub = app.add_subcommand("bench", "measure prompt-processing and generation speed");
  sub->add_option("-m,--model", o->model, "model file (.gguf)")->required();
  AddThreadsOption(*sub, o->threads);
  AddDeviceOption(*sub, o->device);
  AddKvTypeOptions(*sub, o->kv);
  sub->add_option("-p,--n-prompt", o->n_prompt, "prompt tokens for the pp test (0 = skip)")->capture_default_str();
  sub->add_option("-n,--n-gen", o->n_gen, "generated tokens for the tg test (0 = skip)")->capture_default_str();
  sub->add_option("-d,--n-depth", o->n_depth, "tokens already in the context before each pp and tg test (untimed)")
      ->capture_default_str();
  sub->add_option("-r,--repetitions", o->reps, "repetitions of each test")->capture_default_str();
  sub->add_flag("--json", o->json, "one JSON object per test and line");
  sub->add_flag("--tokenize", o->tokenize, "measure tokenizer throughput (MB/s) instead of the model");
  o->text_dir = "../shared/tokenizer";
  sub->add_option("--text-dir", o->text_dir, "folder of *.inp texts for --tokenize")->capture_default_str();
  sub->callback([o, &action] { action = [o] { return Bench(*o); }; });
}

}  // namespace origami::cli
