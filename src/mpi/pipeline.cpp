// The pipeline protocol: message packing, rank 0's forward seam (micro-batches, stage 0, the output
// head), the worker loop over mirror KV pools addressed by rank 0's block ids, the wire formats.
#include "mpi/pipeline.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <utility>

#include "backend/registry.h"
#include "util/error.h"
#include "util/fp16.h"

namespace origami::mpi {

namespace {

enum class StepKind : uint32_t { kGeometry = 11, kForward = 12, kShutdown = 13, kHidden = 14 };

struct StepHeader {
  uint32_t magic = 0x4547524f;  // "ORGE"
  uint32_t kind = 0;
  uint32_t micro_batch = 0;
  int32_t n_tokens = 0;  // kGeometry: n_blocks; kHidden: rows
  int32_t n_tables = 0;  // kGeometry: block_size
  int32_t n_ids = 0;     // block ids of all tables together
  uint32_t wire = 0;
  uint32_t reserved = 0;
};
static_assert(sizeof(StepHeader) == 32);

struct PagedToken {
  int32_t token = 0;
  int32_t pos = 0;
  int32_t table = 0;   // which block table (sequence) of the micro-batch
  int32_t logits = 0;  // nonzero: the last rank returns this token's final hidden state
};
static_assert(sizeof(PagedToken) == 16);

std::vector<uint8_t> PackHeader(StepKind kind, int32_t a = 0, int32_t b = 0) {
  StepHeader h;
  h.kind = static_cast<uint32_t>(kind);
  h.n_tokens = a;
  h.n_tables = b;
  std::vector<uint8_t> out(sizeof h);
  std::memcpy(out.data(), &h, sizeof h);
  return out;
}

StepHeader ReadStepHeader(const std::vector<uint8_t>& msg, int from) {
  StepHeader h;
  if (msg.size() < sizeof h) Fail("short message ({} bytes) from rank {}", msg.size(), from);
  std::memcpy(&h, msg.data(), sizeof h);
  if (h.magic != StepHeader{}.magic)
    Fail("message from rank {} is not an origami pipeline message", from);
  return h;
}

bool ValidWire(uint32_t w) {
  return w == static_cast<uint32_t>(Wire::kF32) || w == static_cast<uint32_t>(Wire::kBf16);
}

}  // namespace

Wire ParseWire(const std::string& name) {
  if (name == "f32") return Wire::kF32;
  if (name == "bf16") return Wire::kBf16;
  Fail("--wire must be f32 or bf16, got '{}'", name);
}

const char* WireName(Wire w) { return w == Wire::kBf16 ? "bf16" : "f32"; }

void MaybeDie(const PipelineOptions& o, int rank, int step) {
  if (o.die_rank == rank && o.die_step == step) {
    std::fprintf(stderr, "rank %d: test hook: %s at micro-batch %d\n", rank,
                 o.hang ? "hanging" : "exiting", step);
    std::fflush(stderr);
    while (o.hang) pause();
    _exit(9);
  }
}

namespace {
// Every rank's counters and resident memory (a collective: all ranks call it at the end).
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
}  // namespace

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

std::vector<Stage> PlanForWorld(World& world, const Model& model, const PipelineOptions& opts,
                                int n_kv, std::vector<uint64_t>* free_memory) {
  std::vector<uint64_t> mem = world.AllgatherU64(MemAvailableBytes());
  if (free_memory) *free_memory = mem;
  return PlanStages(CostsOf(model.file(), model.spec(), opts.kv_types), world.size(),
                    ParseSplit(opts.split), mem, n_kv);
}

// ---- Rank 0 -------------------------------------------------------------------------------------

Pipeline::Pipeline(World& world, const Model& model, ThreadPool& pool,
                               std::vector<Stage> plan, PipelineOptions opts)
    : world_(world),
      spec_(model.spec()),
      plan_(std::move(plan)),
      opts_(opts),
      decoder_(model.spec(), MakeCpuBackend(pool, opts.isa)) {
  if (world.rank() != 0 || world.size() < 2 || static_cast<int>(plan_.size()) != world.size())
    Fail("internal: a Pipeline runs on rank 0 of a world of at least two ranks");
}

void Pipeline::Start(int n_blocks, int block_size) {
  if (started_) Fail("internal: pipeline started twice");
  started_ = true;
  std::vector<uint8_t> msg = PackHeader(StepKind::kGeometry, n_blocks, block_size);
  stage_bytes_ += msg.size();
  world_.Send(1, kTagStage, std::move(msg), opts_.timeout_s);
}

int Pipeline::depth() const {
  return opts_.depth > 0 ? opts_.depth : world_.size();
}

void Pipeline::Submit(const BatchToken* batch, int n) {
  if (!started_ || shut_down_) Fail("internal: the pipeline is not running");
  if (n <= 0) Fail("internal: an empty batch");
  // Contiguous cuts of near-equal size. A sequence's tokens may straddle two cuts: every rank runs
  // micro-batches in order, so the earlier cut's K/V are written before the later one reads them.
  // Automatic: one cut per rank, but only cuts of at least kMinAutoCut tokens. A decode step of a
  // few tokens costs a stage one read of its weights whatever its size (memory-bound), so cutting
  // it would make every rank read its weights twice per step for an overlap worth less than that
  // (measured: 8 streams of llama-1b Q4_0 on 2 ranks, 11.5 tokens/s cut in two vs 15.8 whole).
  constexpr int kMinAutoCut = 32;
  const int m = opts_.micro_batches > 0
                    ? std::clamp(opts_.micro_batches, 1, std::max(n, 1))
                    : std::clamp(n / kMinAutoCut, 1, world_.size());
  Pending p;
  p.rows.assign(m, 0);
  p.ids.resize(m);
  for (int k = 0, begin = 0; k < m; ++k) {
    const int len = n / m + (k < n % m ? 1 : 0);
    for (int i = begin; i < begin + len; ++i) p.rows[k] += batch[i].logits ? 1 : 0;
    p.ids[k] = SubmitMicroBatch(batch + begin, len);
    begin += len;
  }
  pending_.push_back(std::move(p));
}

void Pipeline::Collect(float* logits) {
  if (pending_.empty()) Fail("internal: nothing submitted to collect");
  const Pending p = std::move(pending_.front());
  pending_.pop_front();
  int64_t row0 = 0;
  for (size_t k = 0; k < p.ids.size(); ++k) {
    CollectMicroBatch(p.ids[k], logits + row0 * spec_.n_vocab, p.rows[k]);
    row0 += p.rows[k];
  }
}

uint32_t Pipeline::SubmitMicroBatch(const BatchToken* batch, int n) {
  const uint32_t id = next_id_++;
  MaybeDie(opts_, 0, static_cast<int>(id));
  const int64_t e = spec_.n_embd;
  hidden_.resize(static_cast<size_t>(n) * e);
  decoder_.ForwardStage(batch, n, 0, plan_[0].last_layer, nullptr, hidden_.data(), nullptr);

  // One block table per sequence, cut to the blocks the micro-batch's positions reach.
  std::vector<KvCache*> caches;
  std::vector<int64_t> reach;  // per table: highest position + 1
  std::vector<PagedToken> toks(n);
  for (int i = 0; i < n; ++i) {
    const auto it = std::find(caches.begin(), caches.end(), batch[i].cache);
    const int t = static_cast<int>(it - caches.begin());
    if (it == caches.end()) {
      caches.push_back(batch[i].cache);
      reach.push_back(0);
    }
    reach[t] = std::max(reach[t], batch[i].pos + 1);
    toks[i] = {batch[i].token, static_cast<int32_t>(batch[i].pos), t, batch[i].logits ? 1 : 0};
  }
  std::vector<int32_t> lens, ids;
  for (size_t t = 0; t < caches.size(); ++t) {
    const int shift = caches[t]->pool().block_shift();
    const int64_t len = ((reach[t] - 1) >> shift) + 1;
    const auto& table = caches[t]->blocks();
    if (len > static_cast<int64_t>(table.size()))
      Fail("internal: position {} is beyond the sequence's block table", reach[t] - 1);
    lens.push_back(static_cast<int32_t>(len));
    ids.insert(ids.end(), table.begin(), table.begin() + len);
  }

  StepHeader h;
  h.kind = static_cast<uint32_t>(StepKind::kForward);
  h.micro_batch = id;
  h.n_tokens = n;
  h.n_tables = static_cast<int32_t>(lens.size());
  h.n_ids = static_cast<int32_t>(ids.size());
  h.wire = static_cast<uint32_t>(opts_.wire);
  const size_t head = sizeof h + n * sizeof(PagedToken) + (lens.size() + ids.size()) * 4;
  std::vector<uint8_t> msg(head + hidden_.size() * WireBytes(opts_.wire));
  uint8_t* p = msg.data();
  std::memcpy(p, &h, sizeof h);
  p += sizeof h;
  std::memcpy(p, toks.data(), n * sizeof(PagedToken));
  p += n * sizeof(PagedToken);
  std::memcpy(p, lens.data(), lens.size() * 4);
  p += lens.size() * 4;
  std::memcpy(p, ids.data(), ids.size() * 4);
  EncodeHidden(hidden_.data(), hidden_.size(), opts_.wire, msg.data() + head);
  stage_bytes_ += msg.size();
  tokens_ += n;
  world_.Send(1, kTagStage, std::move(msg), opts_.timeout_s);
  return id;
}

void Pipeline::CollectMicroBatch(uint32_t id, float* logits, int rows_expected) {
  const int last = world_.size() - 1;
  int tag = 0;
  std::vector<uint8_t> msg;
  try {
    msg = world_.Recv(last, &tag, opts_.timeout_s);
  } catch (const Error& e) {
    // A timeout says only that the pipeline stalled somewhere in ranks 1..last (a dead process is
    // named by mpirun, which notices the exit first).
    FailKind(ErrorKind::kIo,
             "{}: a micro-batch is stuck in the pipeline of ranks 1..{} (one of them, or its "
             "network, is lost)",
             e.what(), last);
  }
  const StepHeader h = ReadStepHeader(msg, last);
  const int64_t e = spec_.n_embd;
  if (tag != kTagResult || h.kind != static_cast<uint32_t>(StepKind::kHidden) ||
      !ValidWire(h.wire) || h.micro_batch != id || h.n_tokens != rows_expected ||
      msg.size() != sizeof h + static_cast<size_t>(h.n_tokens) * e *
                                   WireBytes(static_cast<Wire>(h.wire)))
    Fail("rank {} returned a malformed result (micro-batch {} with {} rows; expected {} with {})",
         last, h.micro_batch, h.n_tokens, id, rows_expected);
  const int rows = h.n_tokens;
  if (rows == 0) return;
  std::vector<float> final_hidden(static_cast<size_t>(rows) * e);
  DecodeHidden(msg.data() + sizeof h, final_hidden.size(), static_cast<Wire>(h.wire),
               final_hidden.data());
  // The output head, as Decoder::ForwardStage applies it on a last layer: final norm, classifier.
  decoder_.Head(final_hidden.data(), rows, logits);
}

PipelineStats Pipeline::Shutdown() {
  if (shut_down_) Fail("internal: pipeline shut down twice");
  shut_down_ = true;
  if (!started_) Start(1, 1);  // the workers wait for a geometry first
  std::vector<uint8_t> msg = PackHeader(StepKind::kShutdown);
  stage_bytes_ += msg.size();
  world_.Send(1, kTagStage, std::move(msg), opts_.timeout_s);
  world_.FlushSends(opts_.timeout_s);
  return GatherStats(world_, stage_bytes_, 0, tokens_);
}

// ---- Workers ------------------------------------------------------------------------------------

PipelineStats RunWorker(World& world, const Model& model, ThreadPool& pool,
                              const std::vector<Stage>& plan, const PipelineOptions& opts) {
  const int rank = world.rank();
  const int prev = rank - 1;
  const bool last = rank == world.size() - 1;
  const DecoderSpec& spec = model.spec();
  const Stage& stage = plan.at(rank);
  const int64_t e = spec.n_embd;
  uint64_t stage_bytes = 0, result_bytes = 0;
  auto pass_on = [&](std::vector<uint8_t> msg) {
    stage_bytes += msg.size();
    world.Send(rank + 1, kTagStage, std::move(msg), opts.timeout_s);
  };

  // No timeouts on receiving: a worker idles for as long as rank 0 has no work (a quiet server).
  int tag = 0;
  std::vector<uint8_t> msg = world.Recv(prev, &tag, 0);
  StepHeader h = ReadStepHeader(msg, prev);
  if (h.kind != static_cast<uint32_t>(StepKind::kGeometry))
    Fail("rank {} sent message kind {} before the KV geometry", prev, h.kind);
  const int n_blocks = h.n_tokens, block_size = h.n_tables;
  if (n_blocks < 1 || n_blocks > (1 << 24) || block_size < 1 || block_size > (1 << 16))
    Fail("rank {} sent a bad KV geometry ({} blocks of {})", prev, n_blocks, block_size);
  if (!last) pass_on(std::move(msg));
  // The mirror pool: rank 0's block ids address it directly. One holder cache keeps every block
  // retained, so the per-step views below never return a block to the free list.
  Decoder decoder(spec, MakeCpuBackend(pool, opts.isa));
  KvPool mirror(KvShapeSpec(spec, stage.first_layer, stage.last_layer), n_blocks, block_size, -1, opts.kv_types,
                &decoder.backend());
  const int n_pos = n_blocks * block_size;
  KvCache holder(mirror, n_pos);
  if (!holder.Grow(n_pos)) Fail("internal: the mirror KV pool could not map its blocks");

  std::vector<PagedToken> toks;
  std::vector<int32_t> lens, ids;
  std::vector<BatchToken> batch;
  std::vector<float> hidden_in, hidden_out;
  std::vector<uint8_t> out;
  for (;;) {
    msg = world.Recv(prev, &tag, 0);
    h = ReadStepHeader(msg, prev);
    if (h.kind == static_cast<uint32_t>(StepKind::kShutdown)) {
      if (!last) pass_on(std::move(msg));
      break;
    }
    if (h.kind != static_cast<uint32_t>(StepKind::kForward))
      Fail("unexpected message kind {} from rank {}", h.kind, prev);
    MaybeDie(opts, rank, static_cast<int>(h.micro_batch));
    // Every count is checked before it sizes anything (the counts bound each other, so the size
    // arithmetic below cannot overflow).
    const Wire wire = static_cast<Wire>(h.wire);
    if (h.n_tokens <= 0 || h.n_tokens > Decoder::kMaxBatch || h.n_tables <= 0 ||
        h.n_tables > h.n_tokens || h.n_ids < h.n_tables ||
        static_cast<int64_t>(h.n_ids) > static_cast<int64_t>(h.n_tables) * n_blocks ||
        !ValidWire(h.wire))
      Fail("malformed micro-batch {} from rank {}", h.micro_batch, prev);
    const size_t n = static_cast<size_t>(h.n_tokens);
    const size_t head = sizeof h + n * sizeof(PagedToken) +
                        (static_cast<size_t>(h.n_tables) + static_cast<size_t>(h.n_ids)) * 4;
    if (msg.size() != head + n * e * WireBytes(wire))
      Fail("micro-batch {} from rank {} has {} bytes, expected {}", h.micro_batch, prev,
           msg.size(), head + n * e * WireBytes(wire));
    const uint8_t* p = msg.data() + sizeof h;
    toks.resize(n);
    std::memcpy(toks.data(), p, n * sizeof(PagedToken));
    p += n * sizeof(PagedToken);
    lens.resize(h.n_tables);
    std::memcpy(lens.data(), p, lens.size() * 4);
    p += lens.size() * 4;
    ids.resize(h.n_ids);
    std::memcpy(ids.data(), p, ids.size() * 4);

    // Views over the mirror pool, one per block table.
    std::vector<std::unique_ptr<KvCache>> views;
    size_t next = 0;
    for (int32_t len : lens) {
      if (len < 1 || next + len > ids.size())
        Fail("micro-batch {} from rank {}: bad block table", h.micro_batch, prev);
      auto v = std::make_unique<KvCache>(mirror, n_pos);
      for (int32_t i = 0; i < len; ++i, ++next) {
        const int32_t b = ids[next];
        if (b < 0 || b >= n_blocks)
          Fail("micro-batch {} from rank {}: block id {} outside the pool of {}", h.micro_batch,
               prev, b, n_blocks);
        mirror.Retain(b);
        v->AppendShared(b);
      }
      views.push_back(std::move(v));
    }
    if (next != ids.size())
      Fail("micro-batch {} from rank {}: bad block table", h.micro_batch, prev);
    batch.resize(n);
    size_t rows = 0;
    for (size_t i = 0; i < n; ++i) {
      const PagedToken& t = toks[i];
      if (t.table < 0 || t.table >= h.n_tables || t.pos < 0 ||
          static_cast<int64_t>(t.pos) >= views[t.table]->capacity())
        Fail("micro-batch {} from rank {}: token {} outside its block table", h.micro_batch, prev,
             i);
      batch[i] = {t.token, t.pos, views[t.table].get(), t.logits != 0};
      rows += t.logits != 0 ? 1 : 0;
    }
    hidden_in.resize(n * e);
    DecodeHidden(msg.data() + head, hidden_in.size(), wire, hidden_in.data());
    hidden_out.resize(n * e);
    // On the last rank (last_layer == n_layer, logits null) this leaves the final hidden states.
    decoder.ForwardStage(batch.data(), static_cast<int>(n), stage.first_layer, stage.last_layer,
                         hidden_in.data(), hidden_out.data(), nullptr);
    if (!last) {
      // Same tokens and tables; only the hidden states change, in place.
      EncodeHidden(hidden_out.data(), hidden_out.size(), wire, msg.data() + head);
      pass_on(std::move(msg));
      continue;
    }
    StepHeader r;
    r.kind = static_cast<uint32_t>(StepKind::kHidden);
    r.micro_batch = h.micro_batch;
    r.n_tokens = static_cast<int32_t>(rows);
    r.wire = h.wire;
    out.assign(sizeof r + rows * e * WireBytes(wire), 0);
    std::memcpy(out.data(), &r, sizeof r);
    size_t row = 0;
    for (size_t i = 0; i < n; ++i)
      if (toks[i].logits)
        EncodeHidden(&hidden_out[i * e], e, wire, out.data() + sizeof r + row++ * e * WireBytes(wire));
    result_bytes += out.size();
    world.Send(0, kTagResult, std::move(out), opts.timeout_s);
  }
  world.FlushSends(opts.timeout_s);
  return GatherStats(world, stage_bytes, result_bytes, 0);
}

}  // namespace origami::mpi

