// `origami info`: metadata, tensor table, sizes and hyper-parameters of a GGUF file.
#include <cstdio>
#include <map>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/environment.h"
#include "cli/memory_flags.h"
#include "mpi/plan.h"
#include "gguf/gguf.h"
#include "model/arch/registry.h"
#include "model/model.h"
#include "runtime/memory_plan.h"
#include "runtime/session.h"
#include "runtime/speculative.h"
#include "tensor/dtype.h"
#include "util/error.h"

namespace origami::cli {

namespace {

struct InfoOptions {
  std::string path;
  bool json = false;
  bool all_metadata = false;
  std::string split;  // --split / --ranks: print the pipeline plan instead
  int ranks = 0;
  int ctx_size = 0;
  KvTypeFlags kv;
  bool memory_plan = false;  // --plan: the memory plan against the budget
  int parallel = 0;          // --parallel: plan for serve with this many sequences
  int max_queue = 64;        // --max-queue: serve's waiting requests (their state is planned)
  int64_t responses_max_bytes = -1;  // --responses-max-bytes: serve's store (-1: serve's default)
  int threads = 1;
  MemoryFlags mem;
  std::string model_draft;  // -md with --plan: a draft model planned beside this one
  KvTypeFlags kv_draft;     // -ctkd / -ctvd
};

// KV bytes one position takes for each KV type that can store this model's heads.
nlohmann::json KvBytesByType(const DecoderSpec& s) {
  nlohmann::json j = nlohmann::json::object();
  for (DType t : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0}) {
    try {
      CheckKvTypes(s, {t, t});
    } catch (const Error&) {
      continue;
    }
    j[KvTypeName(t)] = KvBytesPerToken(s, {t, t});
  }
  return j;
}

// The first layer with routed experts (DeepSeek's leading layers are dense).
const LayerSpec& FirstMoeLayer(const DecoderSpec& s) {
  for (const auto& l : s.layers)
    if (l.n_expert > 0) return l;
  return s.layers.front();
}

std::string Shape(const gguf::TensorInfo& t) {
  std::string s;
  for (uint32_t d = 0; d < t.n_dims; ++d) s += (d ? " x " : "") + std::to_string(t.ne[d]);
  return s;
}

std::string HumanBytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  return fmt::format("{:.2f} {}", b, units[u]);
}

nlohmann::json ValueToJson(const gguf::Value& v) {
  using gguf::ValueType;
  switch (v.type) {
    case ValueType::kBool: return v.u64 != 0;
    case ValueType::kUint8: case ValueType::kUint16: case ValueType::kUint32: case ValueType::kUint64: return v.u64;
    case ValueType::kInt8: case ValueType::kInt16: case ValueType::kInt32: case ValueType::kInt64: return v.i64;
    case ValueType::kFloat32: case ValueType::kFloat64: return v.f64;
    case ValueType::kString: return std::string(v.str);
    case ValueType::kArray: {
      nlohmann::json a = nlohmann::json::array();
      for (uint64_t i = 0; i < v.count; ++i) {
        if (v.elem_type == ValueType::kString) a.push_back(std::string(v.strings[i]));
        else if (v.elem_type == ValueType::kArray) a.push_back(ValueToJson(v.items[i]));
        else if (v.elem_type == ValueType::kFloat32 || v.elem_type == ValueType::kFloat64) a.push_back(v.NumberAt(i));
        else a.push_back(v.IntAt(i));
      }
      return a;
    }
  }
  return nullptr;
}

// `origami info MODEL --split 10,6 [--ranks N]`: the pipeline plan from the tensor table alone
// (the file is mapped, no weight is read). Automatic splits assume every rank has this
// machine's free memory; under mpirun each rank reports its own.
int PrintPlan(const InfoOptions& o) {
  auto model = Model::Open(o.path);
  const DecoderSpec& s = model->spec();
  const mpi::SplitRequest req = mpi::ParseSplit(o.split);
  const int ranks = o.ranks > 0 ? o.ranks : req.kind == mpi::SplitRequest::Kind::kAuto ? 2 : static_cast<int>(req.values.size());
  const int n_ctx = ResolveContextSize(s, o.ctx_size);
  const mpi::ModelCosts costs = mpi::CostsOf(model->file(), s, o.kv.Resolve());
  const std::vector<uint64_t> mem(ranks, mpi::MemAvailableBytes());
  const auto plan = mpi::PlanStages(costs, ranks, req, mem, n_ctx);
  if (o.json) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& st : plan)
      j.push_back({{"first_layer", st.first_layer}, {"last_layer", st.last_layer},
                   {"weight_bytes", st.weight_bytes}, {"kv_bytes", st.kv_bytes}});
    std::puts(nlohmann::json{{"n_layer", s.n_layer()}, {"n_ctx", n_ctx}, {"hidden_bytes_per_token", 4 * s.n_embd},
                             {"ranks", j}}.dump(2).c_str());
    return 0;
  }
  fmt::print("pipeline plan for {} ({} layers) on {} ranks, context {} tokens:\n{}", o.path, s.n_layer(), ranks, n_ctx,
             mpi::FormatPlan(plan, mem));
  fmt::print("wire: {} bytes (f32) or {} bytes (bf16) per token per stage boundary\n", 4 * s.n_embd, 2 * s.n_embd);
  return 0;
}

// `origami info MODEL --plan [-c N] [--parallel P] [-ctk T -ctv T] [--json]`: the memory plan
// (what run, or serve with --parallel, would hold resident) against this machine's budget.
int PrintMemoryPlan(const InfoOptions& o) {
  auto model = Model::Open(o.path);
  const DecoderSpec& s = model->spec();
  ThreadPool pool(1);
  const auto backend = OpenBackend("cpu", pool);
  const WeightBytes weights = PlanWeightBytes(*model, *backend, Env().repack);
  const int n_ctx = ResolveContextSize(s, o.ctx_size);
  MemoryRequest req;
  req.kv_types = o.kv.Resolve();
  req.threads = o.threads;
  req.kv_tokens = n_ctx;
  if (o.parallel > 0) {  // as serve sizes its pool: parallel x per-sequence context
    req.mode = MemoryRequest::Mode::kServe;
    req.n_parallel = o.parallel;
    req.kv_tokens = std::min(65536, n_ctx * o.parallel);
    req.max_seq_len = n_ctx;
    req.http_threads = std::max(64, 2 * (o.parallel + o.max_queue) + 16);  // serve's default
    req.max_queue = o.max_queue;
  }
  std::unique_ptr<Model> draft;
  if (!o.model_draft.empty()) {
    if (o.parallel > 0) Fail("--model-draft plans run and chat; serve takes no draft model yet (drop --parallel)");
    draft = Model::Open(o.model_draft);
    CheckSameVocabulary(*model, *draft);
    DraftRequest d;
    d.spec = &draft->spec();
    d.weights = PlanWeightBytes(*draft, *backend, Env().repack).resident;
    d.kv_types = {ParseKvType(o.kv_draft.k, "-ctkd/--cache-type-k-draft"),
                  ParseKvType(o.kv_draft.v, "-ctvd/--cache-type-v-draft")};
    CheckKvTypes(draft->spec(), d.kv_types, /*draft=*/true);
    d.threads = o.threads;
    req.draft = d;
  }
  const MemoryBudget budget = ResolveBudget(o.mem);
  if (o.parallel > 0)
    req.responses_bytes = o.responses_max_bytes >= 0 ? static_cast<uint64_t>(o.responses_max_bytes)
                                                     : DefaultResponseStoreBytes(budget.bytes);
  const MemoryPlan plan = PlanMemory(s, weights, req);
  const std::string refusal = RefusalMessage(s, weights, plan, budget);
  if (o.json) {
    nlohmann::json j = {{"mode", o.parallel > 0 ? "serve" : "run"},
                        {"n_ctx", n_ctx},
                        {"kv_tokens", req.kv_tokens},
                        {"n_parallel", req.n_parallel},
                        {"cache_type_k", KvTypeName(req.kv_types.k)},
                        {"cache_type_v", KvTypeName(req.kv_types.v)},
                        {"threads", req.threads},
                        {"weights", plan.weights},
                        {"weights_repacked", plan.weights_repacked},
                        {"kv", plan.kv},
                        {"kv_bytes_per_token", plan.kv_bytes_per_token},
                        {"workspace", plan.workspace},
                        {"logits", plan.logits},
                        {"requests", plan.requests},
                        {"overhead", plan.overhead},
                        {"draft", plan.draft},
                        {"total", plan.Total()},
                        {"dominant", plan.Dominant()},
                        {"budget", budget.bytes},
                        {"budget_source", budget.source},
                        {"fits", refusal.empty()}};
    if (!refusal.empty()) j["refusal"] = refusal;
    std::puts(j.dump(2).c_str());
    return 0;
  }
  fmt::print("memory plan for {} ({}, {}), context {}{}:\n{}", o.path, s.arch,
             o.parallel > 0 ? fmt::format("serve, {} parallel", o.parallel) : std::string("run"), n_ctx,
             o.parallel > 0 ? fmt::format(" per sequence, pool {}", req.kv_tokens) : std::string(), plan.Table());
  fmt::print("budget: {} ({}): {}\n", FormatBytes(budget.bytes), budget.source,
             refusal.empty() ? "fits" : refusal);
  return 0;
}

int Info(const InfoOptions& o) {
  if (o.path.empty()) Fail("info: give a GGUF file (origami info MODEL.gguf)");
  if (o.memory_plan) return PrintMemoryPlan(o);
  if (!o.split.empty() || o.ranks > 0) return PrintPlan(o);
  auto f = gguf::File::Open(o.path);
  uint64_t total = 0, n_params = 0;
  std::map<std::string, std::pair<int, uint64_t>> by_type;  // type -> (count, bytes)
  for (const auto& t : f->tensors()) {
    total += t.n_bytes;
    n_params += static_cast<uint64_t>(t.NumElements());
    auto& e = by_type[FindTypeTraits(t.type)->name];
    e.first++;
    e.second += t.n_bytes;
  }
  // Hyper-parameters as the decoder sees them, when the architecture is supported; the weight
  // layouts the CPU backend would choose (planned, not done: one thread is enough).
  ThreadPool pool(1);
  const auto backend = OpenBackend("cpu", pool);
  std::unique_ptr<Model> model;
  std::string model_error;
  if (!f->tensors().empty()) {
    try {
      model = Model::Open(o.path);
    } catch (const Error& e) {
      model_error = e.what();
    }
  }

  if (o.json) {
    nlohmann::json j;
    j["path"] = o.path;
    j["version"] = f->version();
    j["alignment"] = f->alignment();
    j["file_size"] = f->file_size();
    j["tensor_bytes"] = total;
    j["n_parameters"] = n_params;
    nlohmann::json meta = nlohmann::json::object();
    for (const auto& [k, v] : f->metadata()) meta[k] = ValueToJson(v);
    j["metadata"] = meta;
    nlohmann::json tensors = nlohmann::json::array();
    for (const auto& t : f->tensors()) {
      nlohmann::json ne = nlohmann::json::array();
      for (uint32_t d = 0; d < t.n_dims; ++d) ne.push_back(t.ne[d]);
      tensors.push_back({{"name", t.name}, {"type", FindTypeTraits(t.type)->name}, {"shape", ne},
                         {"bytes", t.n_bytes}, {"offset", f->data_offset() + t.offset}});
    }
    j["tensors"] = tensors;
    if (model) {
      const DecoderSpec& s = model->spec();
      const LayerSpec& l = s.layers.front();
      j["hparams"] = {{"architecture", s.arch}, {"n_vocab", s.n_vocab}, {"n_embd", s.n_embd},
                      {"n_layer", s.n_layer()}, {"n_head", l.n_head}, {"n_head_kv", l.n_head_kv},
                      {"head_dim", l.head_dim}, {"n_ff", l.n_ff}, {"n_ctx_train", s.n_ctx_train},
                      {"norm_eps", s.norm_eps}, {"tied_output", s.tied_output},
                      {"weight_bytes_per_token", s.WeightBytesPerToken()},
                      {"kv_bytes_per_token", KvBytesByType(s)}, {"layer_kinds", s.LayerKinds()}};
      // Encoders (bert) have absolute positions, no rope.
      if (!s.ropes.empty())
        j["hparams"].update({{"rope_freq_base", s.ropes.front().freq_base}, {"n_rot", s.ropes.front().n_rot}});
      if (s.encoder) j["hparams"].update({{"encoder", true}, {"pooling", PoolingName(s.pooling)}});
      const Model::Prepared plan = (Env().repack ? model->PlanWeights(*backend) : Model::Prepared{});
      nlohmann::json layouts = nlohmann::json::object();  // layout name -> matrices repacked to it
      for (const auto& [layout, count] : plan.layouts) layouts[LayoutName(layout)] = count;
      j["kernel_layout"] = {{"isa", backend->variant()}, {"repacked_tensors", plan.tensors},
                            {"repacked_bytes", plan.bytes}, {"layouts", layouts}};
      if (s.IsMoe())
        j["hparams"].update({{"n_expert", FirstMoeLayer(s).n_expert}, {"n_expert_used", FirstMoeLayer(s).n_expert_used},
                             {"n_parameters_total", s.TotalParameters()}, {"n_parameters_active", s.ActiveParameters()}});
    } else if (!model_error.empty()) {
      j["model_error"] = model_error;
    }
    std::puts(j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return 0;
  }

  fmt::print("file:       {}\n", o.path);
  fmt::print("format:     GGUF v{}, alignment {}, {} metadata keys, {} tensors\n", f->version(), f->alignment(),
             f->metadata().size(), f->tensors().size());
  fmt::print("size:       {} ({} bytes), tensors {}, {:.2f} M parameters\n", HumanBytes(f->file_size()),
             f->file_size(), HumanBytes(total), n_params / 1e6);
  if (!by_type.empty()) {
    fmt::print("types:     ");
    for (const auto& [name, e] : by_type) fmt::print(" {} x{} ({})", name, e.first, HumanBytes(e.second));
    fmt::print("\n");
  }
  if (model) {
    const DecoderSpec& s = model->spec();
    const LayerSpec& l = s.layers.front();
    fmt::print("\nhyper-parameters ({}):\n", s.arch);
    fmt::print("  vocabulary {}, embedding {}, layers {}, feed-forward {}\n", s.n_vocab, s.n_embd, s.n_layer(), l.n_ff);
    fmt::print("  layers: {}\n", s.LayerKinds());
    if (l.v_dim() != l.head_dim)
      fmt::print("  heads {} (kv {}, size {}, values {}), context (training) {}\n", l.n_head, l.n_head_kv, l.head_dim,
                 l.v_dim(), s.n_ctx_train);
    else
      fmt::print("  heads {} (kv {}, size {}), context (training) {}\n", l.n_head, l.n_head_kv, l.head_dim, s.n_ctx_train);
    if (s.encoder)
      fmt::print("  encoder: bidirectional, absolute positions, LayerNorm eps {}; pooling {}{}\n", s.norm_eps,
                 PoolingName(s.pooling), s.cls_out.data ? " (cls head)" : "");
    else
      fmt::print("  rope: {} dims, base {}, {} layout{}; rms eps {}; output {}\n", s.ropes.front().n_rot,
                 s.ropes.front().freq_base,
                 s.ropes.front().layout == RopeLayout::kAdjacent ? "adjacent-pair" : "neox",
                 model->file().FindTensor("rope_freqs.weight") ? ", per-pair frequency factors" : "", s.norm_eps,
                 s.tied_output ? "tied to token_embd" : "separate");
    fmt::print("  weight bytes read per decoded token: {}\n", HumanBytes(static_cast<double>(s.WeightBytesPerToken())));
    fmt::print("  KV bytes per token (-ctk/-ctv):");
    const nlohmann::json kv = KvBytesByType(s);
    for (auto it = kv.begin(); it != kv.end(); ++it) fmt::print(" {} {}", it.key(), it.value().get<uint64_t>());
    fmt::print("\n");
    const Model::Prepared plan = (Env().repack ? model->PlanWeights(*backend) : Model::Prepared{});
    if (plan.tensors > 0)
      fmt::print("  kernel layout: {} ({}) at load for {} (ORIGAMI_REPACK=0: as in the file)\n", plan.Summary(),
                 HumanBytes(static_cast<double>(plan.bytes)), backend->variant());
    else
      fmt::print("  kernel layout: as in the file ({})\n", backend->variant());
    if (s.IsMoe())
      fmt::print("  experts: {} used of {} per layer; parameters: {:.2f} M active of {:.2f} M total\n",
                 FirstMoeLayer(s).n_expert_used, FirstMoeLayer(s).n_expert, s.ActiveParameters() / 1e6,
                 s.TotalParameters() / 1e6);
  } else if (!model_error.empty()) {
    fmt::print("\n(not runnable: {})\n", model_error);
  }

  fmt::print("\nmetadata:\n");
  for (const auto& [k, v] : f->metadata()) fmt::print("  {:<44} {}\n", k, v.ToString(o.all_metadata ? 1u << 20 : 8));
  if (!f->tensors().empty()) {
    fmt::print("\ntensors:\n  {:<36} {:<6} {:>22} {:>12}\n", "name", "type", "shape", "bytes");
    for (const auto& t : f->tensors())
      fmt::print("  {:<36} {:<6} {:>22} {:>12}\n", t.name, FindTypeTraits(t.type)->name, Shape(t), t.n_bytes);
  }
  return 0;
}

}  // namespace

void AddInfoCommand(CLI::App& app, Action& action) {
  auto o = std::make_shared<InfoOptions>();
  CLI::App* sub = app.add_subcommand("info", "show a GGUF file's metadata, tensors and hyper-parameters");
  sub->add_option("model", o->path, "GGUF file");
  sub->add_option("-m,--model", o->path, "GGUF file (same as the positional argument)");
  sub->add_flag("--json", o->json, "machine-readable output");
  sub->add_flag("--all", o->all_metadata, "print arrays in full");
  sub->add_option("--split", o->split, "print the pipeline plan: layers per rank (10,6), fractions (0.6,0.4) or auto");
  sub->add_option("--ranks", o->ranks, "ranks for the plan (default: one per --split entry)");
  sub->add_option("-c,--ctx-size", o->ctx_size, "context size for the plan's KV bytes (0 = min(4096, model's))");
  AddKvTypeOptions(*sub, o->kv);
  sub->add_flag("--plan", o->memory_plan, "print the memory plan (weights, KV, workspaces) against the budget");
  sub->add_option("--responses-max-bytes", o->responses_max_bytes,
                  "with --plan --parallel: serve's Responses store (default: as serve chooses it)")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--max-queue", o->max_queue, "with --plan --parallel: serve's waiting requests")
      ->check(CLI::Range(0, 100000))
      ->capture_default_str();
  sub->add_option("--parallel,--np", o->parallel, "with --plan: plan for serve with this many sequences")
      ->check(CLI::Range(0, 4096));
  AddThreadsOption(*sub, o->threads);
  sub->add_option("--model-draft", o->model_draft, "with --plan: a draft model planned beside this one");
  sub->add_option("--cache-type-k-draft", o->kv_draft.k, "with --plan -md: the draft's KV type of K")
      ->capture_default_str();
  sub->add_option("--cache-type-v-draft", o->kv_draft.v, "with --plan -md: the draft's KV type of V")
      ->capture_default_str();
  sub->add_option("--mem-budget", o->mem.budget, "with --plan: the budget to compare with (8G, 512M, bytes)");
  sub->add_option("--mem-reserve", o->mem.reserve, "with --plan: memory left to the rest of the machine");
  sub->callback([o, &action] { action = [o] { return Info(*o); }; });
}

}  // namespace origami::cli
