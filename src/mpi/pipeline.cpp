// The pipeline-stage protocol: message packing, the stage runner, rank 0's driver, the worker loop.
#include "mpi/pipeline.h"

#include "backend/registry.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "util/error.h"
#include "util/fp16.h"

namespace origami::mpi {

namespace {

enum class Kind : uint32_t { kForward = 1, kRelease = 2, kShutdown = 3, kLogits = 4 };

struct Header {
  uint32_t magic = 0x4947524f;  // "ORGI"
  uint32_t kind = 0;
  uint32_t micro_batch = 0;
  int32_t n_tokens = 0;
  int32_t n_rows = 0;  // kLogits: rows of n_vocab floats
  uint32_t wire = 0;
  int32_t seq = 0;  // kRelease
  uint32_t reserved = 0;
};
static_assert(sizeof(Header) == 32);
static_assert(sizeof(StageToken) == 16);


std::vector<uint8_t> PackForward(uint32_t id, std::span<const StageToken> toks, const float* hidden,
                                 int64_t n_embd, Wire wire) {
  const size_t n = toks.size();
  const size_t hidden_bytes = n * n_embd * WireBytes(wire);
  std::vector<uint8_t> out(sizeof(Header) + n * sizeof(StageToken) + hidden_bytes);
  Header h;
  h.kind = static_cast<uint32_t>(Kind::kForward);
  h.micro_batch = id;
  h.n_tokens = static_cast<int32_t>(n);
  h.wire = static_cast<uint32_t>(wire);
  std::memcpy(out.data(), &h, sizeof h);
  std::memcpy(out.data() + sizeof h, toks.data(), n * sizeof(StageToken));
  EncodeHidden(hidden, n * n_embd, wire, out.data() + sizeof h + n * sizeof(StageToken));
  return out;
}

std::vector<uint8_t> PackHeader(Kind kind, int32_t seq = 0) {
  std::vector<uint8_t> out(sizeof(Header));
  Header h;
  h.kind = static_cast<uint32_t>(kind);
  h.seq = seq;
  std::memcpy(out.data(), &h, sizeof h);
  return out;
}

Header ReadHeader(const std::vector<uint8_t>& msg, int from) {
  Header h;
  if (msg.size() < sizeof h) Fail("short message ({} bytes) from rank {}", msg.size(), from);
  std::memcpy(&h, msg.data(), sizeof h);
  if (h.magic != Header{}.magic) Fail("message from rank {} is not an origami stage message", from);
  return h;
}

// Unpacks a kForward message into tokens and float32 hidden states.
void UnpackForward(const std::vector<uint8_t>& msg, const Header& h, int64_t n_embd, int from,
                   std::vector<StageToken>& toks, std::vector<float>& hidden) {
  const size_t n = static_cast<size_t>(h.n_tokens);
  const Wire wire = static_cast<Wire>(h.wire);
  if (h.n_tokens <= 0 || h.n_tokens > Decoder::kMaxBatch ||
      (wire != Wire::kF32 && wire != Wire::kBf16) ||
      msg.size() != sizeof(Header) + n * sizeof(StageToken) + n * n_embd * WireBytes(wire))
    Fail("malformed micro-batch {} from rank {} ({} tokens, {} bytes)", h.micro_batch, from,
         h.n_tokens, msg.size());
  toks.resize(n);
  std::memcpy(toks.data(), msg.data() + sizeof(Header), n * sizeof(StageToken));
  hidden.resize(n * n_embd);
  DecodeHidden(msg.data() + sizeof(Header) + n * sizeof(StageToken), hidden.size(), wire,
               hidden.data());
}

int LogitRows(std::span<const StageToken> toks) {
  return static_cast<int>(
      std::count_if(toks.begin(), toks.end(), [](const StageToken& t) { return t.logits != 0; }));
}

}  // namespace

void MaybeDie(const PipelineOptions& o, int rank, int step) {
  if (o.die_rank == rank && o.die_step == step) {
    std::fprintf(stderr, "rank %d: test hook: %s at micro-batch %d\n", rank,
                 o.hang ? "hanging" : "exiting", step);
    std::fflush(stderr);
    while (o.hang) pause();
    _exit(9);
  }
}

PipelineStats GatherStats(World& world, uint64_t stage_bytes, uint64_t result_bytes,
                          uint64_t tokens) {
  PipelineStats s;
  s.stage_bytes = world.AllgatherU64(stage_bytes);
  s.result_bytes = world.AllgatherU64(result_bytes);
  s.rss_file = world.AllgatherU64(ProcStatusBytes("RssFile"));
  s.rss = world.AllgatherU64(ProcStatusBytes("VmRSS"));
  s.tokens = tokens;
  return s;
}

size_t WireBytes(Wire w) { return w == Wire::kBf16 ? 2 : 4; }

void EncodeHidden(const float* x, size_t n, Wire w, uint8_t* dst) {
  if (w == Wire::kF32) {
    std::memcpy(dst, x, n * sizeof(float));
    return;
  }
  for (size_t i = 0; i < n; ++i) {
    const uint16_t b = Fp32ToBf16(x[i]);
    std::memcpy(dst + 2 * i, &b, 2);
  }
}

void DecodeHidden(const uint8_t* src, size_t n, Wire w, float* x) {
  if (w == Wire::kF32) {
    std::memcpy(x, src, n * sizeof(float));
    return;
  }
  for (size_t i = 0; i < n; ++i) {
    uint16_t b;
    std::memcpy(&b, src + 2 * i, 2);
    x[i] = Bf16ToFp32(b);
  }
}

// ---- StageRunner --------------------------------------------------------------------------------

StageRunner::StageRunner(const Model& model, ThreadPool& pool, const Stage& stage, int n_ctx,
                         const PipelineOptions& opts)
    : spec_(model.spec()),
      decoder_(model.spec(), MakeCpuBackend(pool, opts.isa)),
      stage_(stage),
      n_ctx_(n_ctx),
      kv_types_(opts.kv_types) {
  // A shape-only copy of the spec for the KV caches: layers outside the stage get zero-width K/V
  // rows, so the cache holds nothing for them (no weights are copied: LayerSpec views stay empty).
  kv_spec_.n_embd = spec_.n_embd;
  kv_spec_.n_vocab = spec_.n_vocab;
  kv_spec_.layers.resize(spec_.layers.size());
  for (int l = stage.first_layer; l < stage.last_layer; ++l) {
    kv_spec_.layers[l].n_head = spec_.layers[l].n_head;
    kv_spec_.layers[l].n_head_kv = spec_.layers[l].n_head_kv;
    kv_spec_.layers[l].head_dim = spec_.layers[l].head_dim;
  }
}

void StageRunner::Run(std::span<const StageToken> tokens, const float* hidden_in, float* hidden_out,
                      float* logits) {
  const int n = static_cast<int>(tokens.size());
  batch_.resize(n);
  for (int i = 0; i < n; ++i) {
    const StageToken& t = tokens[i];
    auto& cache = caches_[t.seq];
    if (!cache) cache = std::make_unique<KvCache>(kv_spec_, n_ctx_, kv_types_);
    batch_[i] = {t.token, t.pos, cache.get(), t.logits != 0};
  }
  decoder_.ForwardStage(batch_.data(), n, stage_.first_layer, stage_.last_layer, hidden_in,
                        hidden_out, logits);
}

// ---- Pipeline (rank 0) --------------------------------------------------------------------------

Pipeline::Pipeline(World& world, const Model& model, ThreadPool& pool, std::vector<Stage> plan,
                   int n_ctx, PipelineOptions opts)
    : world_(world),
      spec_(model.spec()),
      plan_(std::move(plan)),
      opts_(opts),
      runner_(model, pool, plan_.at(0), n_ctx, opts) {
  if (world.rank() != 0 || world.size() < 2 || static_cast<int>(plan_.size()) != world.size())
    Fail(
        "internal: a Pipeline runs on rank 0 of a world of at least two ranks with one stage each");
}

uint32_t Pipeline::Submit(std::span<const StageToken> tokens) {
  const uint32_t id = next_id_++;
  MaybeDie(opts_, 0, static_cast<int>(id));
  hidden_.resize(tokens.size() * spec_.n_embd);
  runner_.Run(tokens, nullptr, hidden_.data(), nullptr);
  std::vector<uint8_t> msg = PackForward(id, tokens, hidden_.data(), spec_.n_embd, opts_.wire);
  stage_bytes_ += msg.size();
  world_.Send(1, kTagStage, std::move(msg), opts_.timeout_s);
  in_flight_.push_back(id);
  tokens_ += tokens.size();
  return id;
}

uint32_t Pipeline::Collect(std::vector<float>& logits) {
  if (in_flight_.empty()) Fail("internal: Collect with no micro-batch in flight");
  const int last = world_.size() - 1;
  int tag = 0;
  std::vector<uint8_t> msg;
  try {
    msg = world_.Recv(last, &tag, opts_.timeout_s);
  } catch (const Error& e) {
    // A timeout only says the pipeline stalled somewhere between rank 1 and the last rank (a dead
    // process is named by mpirun itself, which notices the exit first).
    FailKind(ErrorKind::kIo,
             "{}: micro-batch {} is stuck in the pipeline of ranks 1..{} (one of them, or its "
             "network, is lost)",
             e.what(), in_flight_.front(), last);
  }
  const Header h = ReadHeader(msg, last);
  if (tag != kTagResult || h.kind != static_cast<uint32_t>(Kind::kLogits) ||
      h.micro_batch != in_flight_.front() || h.n_rows < 0 ||
      msg.size() != sizeof(Header) + static_cast<size_t>(h.n_rows) * spec_.n_vocab * sizeof(float))
    Fail("rank {} returned a malformed result (micro-batch {}, expected {})", last, h.micro_batch,
         in_flight_.front());
  logits.resize(static_cast<size_t>(h.n_rows) * spec_.n_vocab);
  std::memcpy(logits.data(), msg.data() + sizeof(Header), logits.size() * sizeof(float));
  in_flight_.pop_front();
  return h.micro_batch;
}

void Pipeline::ReleaseSequence(int32_t seq) {
  runner_.Release(seq);
  std::vector<uint8_t> msg = PackHeader(Kind::kRelease, seq);
  stage_bytes_ += msg.size();
  world_.Send(1, kTagStage, std::move(msg), opts_.timeout_s);
}

PipelineStats Pipeline::Shutdown() {
  if (shut_down_) Fail("internal: pipeline shut down twice");
  shut_down_ = true;
  std::vector<uint8_t> msg = PackHeader(Kind::kShutdown);
  stage_bytes_ += msg.size();
  world_.Send(1, kTagStage, std::move(msg), opts_.timeout_s);
  world_.FlushSends(opts_.timeout_s);
  return GatherStats(world_, stage_bytes_, 0, tokens_);
}

// ---- PipelineSession
// ------------------------------------------------------------------------------

PipelineSession::PipelineSession(Pipeline& pipeline, int n_ctx, int32_t seq)
    : pipeline_(pipeline), n_ctx_(n_ctx), seq_(seq) {}

std::span<float> PipelineSession::Eval(std::span<const int32_t> tokens) {
  if (tokens.empty()) Fail("nothing to decode: empty token batch");
  if (n_past() + static_cast<int64_t>(tokens.size()) > n_ctx_)
    Fail("context is full: position {} exceeds the context size {}", n_past() + tokens.size() - 1,
         n_ctx_);
  // Chunks as Decoder::Forward makes them (same chunk boundaries: same arithmetic, same logits),
  // all submitted before any is collected so the stages work on consecutive chunks at once.
  std::vector<StageToken> chunk;
  const int n = static_cast<int>(tokens.size());
  int submitted = 0;
  for (int done = 0; done < n;) {
    const int len = std::min(Decoder::kMaxBatch, n - done);
    chunk.resize(len);
    for (int i = 0; i < len; ++i)
      chunk[i] = {seq_, tokens[done + i], static_cast<int32_t>(n_past() + done + i),
                  done + i == n - 1 ? 1 : 0};
    pipeline_.Submit(chunk);
    ++submitted;
    done += len;
  }
  for (int i = 0; i < submitted; ++i) pipeline_.Collect(logits_);
  tokens_.insert(tokens_.end(), tokens.begin(), tokens.end());
  return logits_;
}

// ---- Workers ------------------------------------------------------------------------------------

PipelineStats RunWorker(World& world, const Model& model, ThreadPool& pool,
                        const std::vector<Stage>& plan, int n_ctx, const PipelineOptions& opts) {
  const int rank = world.rank();
  const int prev = rank - 1;
  const bool last = rank == world.size() - 1;
  const DecoderSpec& spec = model.spec();
  StageRunner runner(model, pool, plan.at(rank), n_ctx, opts);
  std::vector<StageToken> toks;
  std::vector<float> hidden_in, hidden_out, logits;
  uint64_t stage_bytes = 0, result_bytes = 0;
  for (int step = 0;; ++step) {
    int tag = 0;
    // No timeout here: a worker may idle for as long as rank 0 has no work (a quiet server).
    std::vector<uint8_t> msg = world.Recv(prev, &tag, 0);
    const Header h = ReadHeader(msg, prev);
    if (h.kind == static_cast<uint32_t>(Kind::kShutdown) ||
        h.kind == static_cast<uint32_t>(Kind::kRelease)) {
      if (h.kind == static_cast<uint32_t>(Kind::kRelease)) runner.Release(h.seq);
      if (!last) {
        stage_bytes += msg.size();
        world.Send(rank + 1, kTagStage, std::move(msg), opts.timeout_s);
      }
      if (h.kind == static_cast<uint32_t>(Kind::kShutdown)) break;
      continue;
    }
    if (h.kind != static_cast<uint32_t>(Kind::kForward))
      Fail("unexpected message kind {} from rank {}", h.kind, prev);
    MaybeDie(opts, rank, static_cast<int>(h.micro_batch));
    UnpackForward(msg, h, spec.n_embd, prev, toks, hidden_in);
    if (!last) {
      hidden_out.resize(hidden_in.size());
      runner.Run(toks, hidden_in.data(), hidden_out.data(), nullptr);
      std::vector<uint8_t> out = PackForward(h.micro_batch, toks, hidden_out.data(), spec.n_embd,
                                             static_cast<Wire>(h.wire));
      stage_bytes += out.size();
      world.Send(rank + 1, kTagStage, std::move(out), opts.timeout_s);
    } else {
      const int rows = LogitRows(toks);
      logits.resize(static_cast<size_t>(rows) * spec.n_vocab);
      runner.Run(toks, hidden_in.data(), nullptr, logits.data());
      std::vector<uint8_t> out(sizeof(Header) + logits.size() * sizeof(float));
      Header r;
      r.kind = static_cast<uint32_t>(Kind::kLogits);
      r.micro_batch = h.micro_batch;
      r.n_rows = rows;
      std::memcpy(out.data(), &r, sizeof r);
      std::memcpy(out.data() + sizeof r, logits.data(), logits.size() * sizeof(float));
      result_bytes += out.size();
      world.Send(0, kTagResult, std::move(out), opts.timeout_s);
    }
  }
  world.FlushSends(opts.timeout_s);
  return GatherStats(world, stage_bytes, result_bytes, 0);
}

std::vector<Stage> PlanForWorld(World& world, const Model& model, const SplitRequest& req,
                                int n_ctx, std::vector<uint64_t>* free_memory, HeadAt head_at,
                                KvTypes kv_types) {
  std::vector<uint64_t> mem = world.AllgatherU64(MemAvailableBytes());
  if (free_memory) *free_memory = mem;
  return PlanStages(CostsOf(model.file(), model.spec(), kv_types), world.size(), req, mem, n_ctx, head_at);
}

}  // namespace origami::mpi
