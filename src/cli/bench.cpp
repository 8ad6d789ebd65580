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
#include "cli/lora_flags.h"
#include "cli/speculation.h"
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
  SpecFlags spec;      // with a drafter: tg with and without speculation
  int verify_k = -1;   // >= 0: time one target step over k+1 tokens for k = 0..verify_k
  std::vector<std::string> loras;  // --lora FILE[:SCALE]: measured with the adapters applied
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

// The cost of verifying k drafted tokens: one target step over k + 1 tokens (logits for each) after
// the depth, against a one-token step. Each step is undone (Truncate) and repeated.
void BenchVerify(const BenchOptions& o, const Model& model, Backend& backend, KvTypes kv_types,
                 const std::vector<int32_t>& depth_ids, int n_ctx) {
  Session session(model, backend, n_ctx + 8, kv_types);
  std::vector<int32_t> start = depth_ids;
  start.push_back(1);
  session.Eval(start);
  const int64_t n0 = session.n_past();
  const int steps = 8 * o.reps;
  double base = 0;
  for (int k = 0; k <= o.verify_k; ++k) {
    std::vector<int32_t> batch(k + 1);
    for (int i = 0; i <= k; ++i) batch[i] = (i * 7919 + 13) % model.spec().n_vocab;
    session.EvalAll(batch);  // warm-up
    session.Truncate(n0);
    std::vector<double> ms;
    for (int r = 0; r < steps; ++r) {
      const double t0 = NowSeconds();
      session.EvalAll(batch);
      ms.push_back(1e3 * (NowSeconds() - t0));
      session.Truncate(n0);
    }
    std::sort(ms.begin(), ms.end());
    const double med = ms[ms.size() / 2];
    if (k == 0) base = med;
    if (o.json)
      fmt::print("{}\n", nlohmann::json({{"test", "verify"}, {"k", k}, {"tokens", k + 1}, {"ms_per_step", med},
                                          {"vs_one_token", med / base}, {"threads", o.threads},
                                          {"model", o.model}, {"n_depth", o.n_depth}})
                             .dump());
    else
      fmt::print("verify k={}: one step over {} tokens {:8.2f} ms (median of {}), {:.2f}x a one-token step\n", k,
                 k + 1, med, steps, med / base);
    std::fflush(stdout);
  }
}

// Greedy generation of n_gen tokens after a short random prompt, plainly and with speculation,
// checked to give the same tokens. The prompt repeats itself (a random 8-token phrase four times),
// which makes random models loop, so prompt lookup has something to find.
void BenchSpeculative(const BenchOptions& o, const SpecParams& params, const Model& model, Backend& backend,
                      KvTypes kv_types) {
  std::mt19937 rng(4321);
  std::uniform_int_distribution<int32_t> dist(0, model.spec().n_vocab - 1);
  std::vector<int32_t> phrase(8), prompt;
  for (auto& id : phrase) id = dist(rng);
  for (int i = 0; i < 4; ++i) prompt.insert(prompt.end(), phrase.begin(), phrase.end());
  const int n_ctx = static_cast<int>(prompt.size()) + o.n_gen + params.n_max + 16;
  SamplerParams greedy;
  greedy.temperature = 0;
  auto generate = [&](bool speculate, SpecStats* stats) {
    Session session(model, backend, n_ctx, kv_types);
    std::unique_ptr<Speculation> spec;
    if (speculate) spec = MakeSpeculation(o.spec, params, model, session, o.threads, greedy);
    Sampler sampler(greedy);
    std::vector<int32_t> out = {sampler.Sample(session.Eval(prompt), session.tokens())};
    const double t0 = NowSeconds();
    while (static_cast<int>(out.size()) < o.n_gen) {
      if (spec) {
        spec->decoder->Step(out.back(), sampler, out);
      } else {
        const int32_t one[1] = {out.back()};
        out.push_back(sampler.Sample(session.Eval(one), session.tokens()));
      }
    }
    const double dt = NowSeconds() - t0;
    out.resize(o.n_gen);
    if (stats && spec) *stats = spec->decoder->stats();
    return std::make_pair(out, (o.n_gen - 1) / dt);
  };
  std::vector<double> plain_tps, spec_tps;
  SpecStats st;
  bool same = true;
  for (int r = -1; r < o.reps; ++r) {
    const auto [a, ta] = generate(false, nullptr);
    const auto [b, tb] = generate(true, &st);
    same = same && a == b;
    if (r < 0) continue;
    plain_tps.push_back(ta);
    spec_tps.push_back(tb);
  }
  const Stat sp = Summarize(plain_tps), ss = Summarize(spec_tps);
  const std::string name = SpecTypeName(params.type);
  if (o.json) {
    fmt::print("{}\n", nlohmann::json({{"test", "tg" + std::to_string(o.n_gen) + "+spec"}, {"spec_type", name},
                                        {"model", o.model}, {"model_draft", o.spec.model_draft},
                                        {"threads", o.threads}, {"tokens_per_second", ss.mean}, {"stddev", ss.sd},
                                        {"plain_tokens_per_second", sp.mean}, {"plain_stddev", sp.sd},
                                        {"speedup", ss.mean / sp.mean}, {"acceptance_rate", st.acceptance()},
                                        {"tokens_per_step", st.tokens_per_step()}, {"drafted", st.drafted},
                                        {"accepted", st.accepted}, {"same_output", same}})
                           .dump());
  } else {
    fmt::print("tg{} greedy: plain {:.2f} ± {:.2f} tok/s, speculative ({}) {:.2f} ± {:.2f} tok/s = {:.2f}x; "
               "acceptance {:.1f}% ({} of {} drafted), {:.2f} tokens per target step, same output: {}\n",
               o.n_gen, sp.mean, sp.sd, name, ss.mean, ss.sd, ss.mean / sp.mean, 100 * st.acceptance(), st.accepted,
               st.drafted, st.tokens_per_step(), same ? "yes" : "NO");
  }
  std::fflush(stdout);
  if (!same) Fail("bench: speculative decoding changed the greedy output");
}

int Bench(const BenchOptions& o) {
  if (o.tokenize) return BenchTokenize(o);
  if (o.n_prompt < 0 || o.n_gen < 0 || o.n_depth < 0 || o.reps <= 0)
    Fail("bench: -p, -n, -d must be >= 0 and -r > 0");
  const KvTypes kv_types = o.kv.Resolve();
  const SpecParams spec_params = o.spec.Resolve();
  if (o.verify_k > 64) Fail("bench: --verify-k must be at most 64, got {}", o.verify_k);
  auto model = Model::Open(o.model);
  LoadAdapters(*model, o.loras);
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
                          {"type_v", KvTypeName(kv_types.v)}, {"kv_bytes_per_token", kv_bytes_per_pos},
                          {"lora", o.loras}};
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
  if (o.verify_k >= 0) BenchVerify(o, *model, *backend, kv_types, depth_ids, n_ctx + o.verify_k);
  if (spec_params.type != SpecType::kNone) BenchSpeculative(o, spec_params, *model, *backend, kv_types);
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
  AddSpecOptions(*sub, o->spec);
  AddLoraOption(*sub, o->loras);
  sub->add_option("--verify-k", o->verify_k,
                  "time one target step over k+1 tokens for k = 0..K (speculative verification cost)");
  sub->add_flag("--tokenize", o->tokenize, "measure tokenizer throughput (MB/s) instead of the model");
  o->text_dir = "../shared/tokenizer";
  sub->add_option("--text-dir", o->text_dir, "folder of *.inp texts for --tokenize")->capture_default_str();
  sub->callback([o, &action] { action = [o] { return Bench(*o); }; });
}

}  // namespace origami::cli
