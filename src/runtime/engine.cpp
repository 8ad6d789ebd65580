// Engine: admission, per-step batch assembly (decode tokens first, then prompt chunks), sampling,
// prefix-cache publication, preemption when the KV pool runs dry, cancellation.
#include "runtime/engine.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "backend/registry.h"
#include "util/timer.h"

namespace origami {

int RetryAfterSeconds(const std::deque<double>& t) {
  if (t.size() < 2) return 1;
  const double gap = (t.back() - t.front()) / static_cast<double>(t.size() - 1);
  return static_cast<int>(std::clamp(std::ceil(gap), 1.0, 60.0));
}

const char* FinishReasonName(FinishReason r) {
  switch (r) {
    case FinishReason::kNone:
      return "none";
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kCancelled:
      return "cancelled";
    case FinishReason::kError:
      return "error";
  }
  return "none";
}

bool RequestStream::Next(StreamEvent& out, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  const bool ready =
      cv_.wait_for(lock, timeout, [&] { return !pending_.empty() || (finished_ && !delivered_); });
  if (!ready) return false;
  out = StreamEvent{};
  out.tokens = std::move(pending_);
  pending_.clear();
  if (finished_ && !delivered_) {
    out.finish = final_.finish;
    out.error = final_.error;
    out.n_prompt = final_.n_prompt;
    out.n_cached = final_.n_cached;
    out.n_generated = final_.n_generated;
    delivered_ = true;
  }
  return true;
}

void RequestStream::Push(GeneratedToken t) {
  {
    std::lock_guard lock(mu_);
    pending_.push_back(std::move(t));
  }
  cv_.notify_one();
}

void RequestStream::Finish(FinishReason r, std::string error, int n_prompt, int n_cached,
                           int n_generated) {
  {
    std::lock_guard lock(mu_);
    finished_ = true;
    final_.finish = r;
    final_.error = std::move(error);
    final_.n_prompt = n_prompt;
    final_.n_cached = n_cached;
    final_.n_generated = n_generated;
  }
  cv_.notify_one();
}

DecoderSpec KvShapeSpec(const DecoderSpec& spec, int first_layer, int last_layer) {
  DecoderSpec kv;
  kv.n_embd = spec.n_embd;
  kv.n_vocab = spec.n_vocab;
  kv.layers.resize(spec.layers.size());
  for (int l = std::max(0, first_layer); l < std::min<int>(last_layer, spec.layers.size()); ++l) {
    kv.layers[l].n_head = spec.layers[l].n_head;
    kv.layers[l].n_head_kv = spec.layers[l].n_head_kv;
    kv.layers[l].head_dim = spec.layers[l].head_dim;
    kv.layers[l].head_dim_v = spec.layers[l].head_dim_v;
  }
  return kv;
}

namespace {
// The engine's pool holds every layer, or only this rank's stage under mpirun.
DecoderSpec PoolSpec(const DecoderSpec& spec, const EngineOptions& o) {
  const int n_layer = static_cast<int>(spec.layers.size());
  if (o.kv_first_layer == 0 && (o.kv_last_layer < 0 || o.kv_last_layer == n_layer)) return spec;
  return KvShapeSpec(spec, o.kv_first_layer, o.kv_last_layer < 0 ? n_layer : o.kv_last_layer);
}
}  // namespace

struct Engine::Sequence {
  GenerationRequest req;
  std::shared_ptr<RequestStream> stream;
  std::unique_ptr<Sampler> sampler;
  std::unique_ptr<KvCache> cache;
  std::vector<int32_t> tokens;  // prompt, then every generated token
  int n_prompt = 0;
  int64_t n_computed = 0;  // leading tokens whose K/V are in the cache
  int n_registered = 0;    // leading blocks that are in the prefix index
  bool register_ok = true;
  int n_cached = -1;  // prompt tokens found in the prefix cache at first admission
  int n_generated = 0;
  int n_sched = 0;     // tokens in the batch being assembled or in flight
  uint64_t order = 0;  // admission order (preemption takes the youngest)
  bool done = false, preempted = false;
  bool in_flight = false;  // in a submitted batch: not schedulable, cancellable or preemptable
};

Engine::Engine(const Model& model, Backend& backend, EngineOptions opt)
    : model_(model),
      opt_(std::move(opt)),
      decoder_(model.spec(), backend),
      kv_(PoolSpec(model.spec(), opt_), std::max(1, (opt_.kv_tokens + opt_.block_size - 1) / opt_.block_size),
          opt_.block_size, -1, opt_.kv_types, &decoder_.backend()),
      local_(decoder_),
      embedder_(decoder_, kv_),
      forward_(opt_.forward ? opt_.forward : &local_) {
  Start();
}

Engine::Engine(const Model& model, ThreadPool& pool, EngineOptions opt)
    : model_(model),
      opt_(std::move(opt)),
      owned_backend_(MakeCpuBackend(pool)),
      decoder_(model.spec(), *owned_backend_),
      kv_(PoolSpec(model.spec(), opt_), std::max(1, (opt_.kv_tokens + opt_.block_size - 1) / opt_.block_size),
          opt_.block_size, -1, opt_.kv_types, &decoder_.backend()),
      local_(decoder_),
      embedder_(decoder_, kv_),
      forward_(opt_.forward ? opt_.forward : &local_) {
  Start();
}

void Engine::Start() {
  const DecoderSpec& spec = model_.spec();
  if (opt_.n_parallel < 1) Fail("--parallel must be at least 1, got {}", opt_.n_parallel);
  if (opt_.kv_tokens < 2) Fail("--ctx-size must be at least 2, got {}", opt_.kv_tokens);
  opt_.max_batch_tokens = std::clamp(opt_.max_batch_tokens, 1, Decoder::kMaxBatch);
  opt_.prefill_chunk = std::clamp(opt_.prefill_chunk, 1, opt_.max_batch_tokens);
  const int pool_positions = kv_.n_blocks() * kv_.block_size();
  max_seq_len_ = opt_.max_seq_len > 0 ? opt_.max_seq_len
                                      : (spec.n_ctx_train > 0 ? spec.n_ctx_train : pool_positions);
  max_seq_len_ = std::min(max_seq_len_, pool_positions);
  n_vocab_ = static_cast<int>(spec.n_vocab);
  logits_.resize(static_cast<size_t>(opt_.max_batch_tokens) * n_vocab_);
  scratch_.resize(n_vocab_);
  depth_ = std::max(1, forward_->depth());
  stats_.kv_blocks_total = kv_.n_blocks();
  stats_.block_size = kv_.block_size();
  stats_.kv_bytes_total = kv_.Bytes();
  stats_.n_parallel = opt_.n_parallel;
  stats_.max_queue = opt_.max_queue;
  window_t0_ = NowSeconds();
  thread_ = std::thread([this] { Loop(); });
}

Engine::~Engine() { Shutdown(); }

void LocalForward::Collect(float* logits) {
  decoder_.ForwardBatch(pending_.data(), static_cast<int>(pending_.size()), logits);
}

void Engine::Shutdown() {
  {
    std::lock_guard lock(mu_);
    if (stop_ && !thread_.joinable()) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  embedder_.FailAll("the engine is shutting down");
  for (auto& s : live_) Finish(*s, FinishReason::kCancelled);
  live_.clear();
  std::lock_guard lock(mu_);
  for (auto& s : waiting_) {
    s->cache.reset();
    s->stream->Finish(FinishReason::kCancelled, {}, s->n_prompt, std::max(0, s->n_cached),
                      s->n_generated);
  }
  waiting_.clear();
}

std::shared_ptr<RequestStream> Engine::Submit(GenerationRequest req) {
  const int64_t n = static_cast<int64_t>(req.prompt.size());
  if (n == 0) Fail("the prompt is empty");
  if (n >= max_seq_len_)
    Fail(
        "the prompt has {} tokens, but a sequence may hold at most {} (prompt plus at least one "
        "generated token)",
        n, max_seq_len_);
  for (int32_t t : req.prompt)
    if (t < 0 || t >= n_vocab_)
      Fail("token id {} is out of range (vocabulary has {} tokens)", t, n_vocab_);
  for (const auto& [id, bias] : req.logit_bias)
    if (id < 0 || id >= n_vocab_)
      Fail("logit_bias: token id {} is out of range (vocabulary has {} tokens)", id, n_vocab_);
  if (req.max_tokens < 1) Fail("max_tokens must be at least 1, got {}", req.max_tokens);
  if (req.top_logprobs > 20) Fail("top_logprobs must be at most 20, got {}", req.top_logprobs);
  ValidateSamplerParams(req.sampling);

  auto s = std::make_unique<Sequence>();
  s->stream = std::make_shared<RequestStream>();
  s->sampler = std::make_unique<Sampler>(req.sampling);
  s->tokens = req.prompt;
  s->n_prompt = static_cast<int>(n);
  s->req = std::move(req);
  auto stream = s->stream;
  {
    std::lock_guard lock(mu_);
    if (stop_) FailKind(ErrorKind::kUnsupported, "the engine is shutting down");
    if (static_cast<int>(waiting_.size()) >= opt_.max_queue) {
      ++stats_.requests_rejected;
      throw OverloadedError(
          fmt::format("the server is busy ({} requests waiting); retry later", waiting_.size()),
          RetryAfterSeconds(finish_times_));
    }
    ++stats_.requests_total;
    stats_.prompt_tokens_total += n;
    waiting_.push_back(std::move(s));
    stats_.waiting = static_cast<int>(waiting_.size());
  }
  cv_.notify_one();
  return stream;
}

std::shared_ptr<EmbeddingResult> Engine::SubmitEmbedding(EmbeddingRequest req) {
  if (opt_.forward) FailKind(ErrorKind::kUnsupported, "embeddings are not available on a pipeline of ranks");
  if (req.inputs.empty()) Fail("the input is empty");
  if (static_cast<int>(req.inputs.size()) > kMaxEmbeddingInputs)
    Fail("{} inputs in one request; at most {} are allowed", req.inputs.size(), kMaxEmbeddingInputs);
  // A reranker (a cross-encoder, or a decoder with a yes/no head) scores pairs and nothing else;
  // every other model embeds.
  const bool ranker = reranker();
  if (req.pooling == Pooling::kRank && !ranker)
    FailKind(ErrorKind::kUnsupported, "the model is not a reranker (its pooling type is not rank)");
  if (req.pooling != Pooling::kRank && ranker)
    FailKind(ErrorKind::kUnsupported, "the model is a reranker: it scores query and document pairs, not embeddings");
  if (req.pooling != Pooling::kMean && req.pooling != Pooling::kCls && req.pooling != Pooling::kLast &&
      req.pooling != Pooling::kRank)
    FailKind(ErrorKind::kUnsupported, "pooling type '{}' gives no sentence embedding (mean, cls or last do)",
             PoolingName(req.pooling));
  if (!req.segment_b.empty() && req.segment_b.size() != req.inputs.size())
    Fail("{} segment starts for {} inputs", req.segment_b.size(), req.inputs.size());
  int64_t tokens = 0;
  for (size_t i = 0; i < req.inputs.size(); ++i) {
    const auto& in = req.inputs[i];
    if (in.empty()) Fail("input {} is empty", i);
    if (static_cast<int64_t>(in.size()) > max_seq_len_)
      Fail("input {} has {} tokens, more than the context of {} tokens", i, in.size(), max_seq_len_);
    for (int32_t t : in)
      if (t < 0 || t >= n_vocab_) Fail("input {}: token id {} is out of range (vocabulary has {} tokens)", i, t, n_vocab_);
    tokens += static_cast<int64_t>(in.size());
  }
  {
    std::lock_guard lock(mu_);
    if (stop_) FailKind(ErrorKind::kUnsupported, "the engine is shutting down");
    ++stats_.embedding_requests_total;
    stats_.embedding_tokens_total += tokens;
  }
  auto result = embedder_.Push(std::move(req));
  // Taking mu_ after the push orders it before the engine's next look at its wait predicate.
  { std::lock_guard lock(mu_); }
  cv_.notify_one();
  return result;
}

EngineStats Engine::Stats() const {
  std::lock_guard lock(mu_);
  EngineStats s = stats_;
  if (NowSeconds() - window_t0_ > 3.0) s.generation_tps = 0;  // idle: no recent window
  return s;
}

void Engine::Loop() {
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !waiting_.empty() || !live_.empty() || embedder_.HasWork(); });
      if (stop_) break;
    }
    try {
      Step();
    } catch (const std::exception& e) {
      if (forward_->failure_is_fatal()) {
        // A lost pipeline rank: nothing more can be answered, so nothing more is accepted.
        FailAll(e.what());
        if (opt_.on_fatal) opt_.on_fatal(e.what());
        return;
      }
      // A failed forward pass fails the sequences in it, never the process.
      flights_.clear();
      for (auto& s : live_) Finish(*s, FinishReason::kError, e.what());
      live_.clear();
    }
  }
  // Batches still in the pipeline are collected, so no rank is left holding a result nobody
  // receives; their sequences are then cancelled with the rest by Shutdown.
  try {
    while (!flights_.empty()) Land();
  } catch (const std::exception& e) {
    flights_.clear();
    if (forward_->failure_is_fatal() && opt_.on_fatal) opt_.on_fatal(e.what());
  }
}

void Engine::FailAll(const std::string& error) {
  std::deque<std::unique_ptr<Sequence>> waiting;
  {
    // Refused from now on, before any reader can see its request fail.
    std::lock_guard lock(mu_);
    stop_ = true;
    waiting.swap(waiting_);
  }
  flights_.clear();
  for (auto& s : live_) Finish(*s, FinishReason::kError, error);
  live_.clear();
  for (auto& s : waiting) Finish(*s, FinishReason::kError, error);
}

void Engine::Finish(Sequence& s, FinishReason r, std::string error) {
  if (s.done) return;
  s.done = true;
  if (s.cache) s.cache->Clear();
  {
    // Counts are published before the reader sees the finish, so it observes its blocks freed.
    std::lock_guard lock(mu_);
    if (r == FinishReason::kCancelled)
      ++stats_.requests_cancelled;
    else
      ++stats_.requests_finished;
    finish_times_.push_back(NowSeconds());
    if (finish_times_.size() > kRetryAfterWindow) finish_times_.pop_front();
    PublishLocked();
  }
  s.stream->Finish(r, std::move(error), s.n_prompt, std::max(0, s.n_cached), s.n_generated);
}


void Engine::PublishLocked() {
  stats_.waiting = static_cast<int>(waiting_.size());
  stats_.live = static_cast<int>(
      std::count_if(live_.begin(), live_.end(), [](const auto& s) { return s && !s->done; }));
  stats_.kv_blocks_in_use = kv_.n_in_use();
  stats_.kv_blocks_cached = kv_.n_cached();
  stats_.kv_bytes_in_use = kv_.BytesInUse();
  stats_.kv_bytes_in_use_peak = std::max(stats_.kv_bytes_in_use_peak, stats_.kv_bytes_in_use);
  stats_.kv_bytes_cached = kv_.BytesCachedOnly();
}

void Engine::Admit() {
  const int bs = kv_.block_size();
  while (static_cast<int>(live_.size()) < opt_.n_parallel) {
    std::unique_ptr<Sequence> s;
    {
      std::lock_guard lock(mu_);
      if (waiting_.empty()) return;
      s = std::move(waiting_.front());
      waiting_.pop_front();
    }
    if (s->stream->cancelled()) {
      Finish(*s, FinishReason::kCancelled);
      continue;
    }
    s->cache = std::make_unique<KvCache>(kv_, max_seq_len_);
    // Prefix cache: reuse full blocks, but always leave the last prompt token to compute (its
    // logits start the generation, and positions written must be in private blocks).
    int matched = 0;
    if (opt_.prefix_cache) {
      const int64_t full = (static_cast<int64_t>(s->tokens.size()) - 1) / bs;
      int parent = -1;
      for (int64_t i = 0; i < full; ++i) {
        const int b = kv_.Lookup(parent, std::span<const int32_t>(s->tokens.data() + i * bs, bs));
        if (b < 0) break;
        s->cache->AppendShared(b);
        parent = b;
        ++matched;
      }
    }
    const int64_t need =
        (static_cast<int64_t>(s->tokens.size()) + bs) / bs - matched;  // + one generated token
    if (need > kv_.n_available() && !live_.empty()) {
      s->cache->Clear();
      std::lock_guard lock(mu_);
      waiting_.push_front(std::move(s));
      return;
    }
    s->n_computed = static_cast<int64_t>(matched) * bs;
    s->n_registered = matched;
    s->register_ok = true;
    s->preempted = false;
    s->order = ++next_order_;
    if (s->n_cached < 0) {
      s->n_cached = static_cast<int>(std::min<int64_t>(s->n_computed, s->n_prompt));
      std::lock_guard lock(mu_);
      stats_.prompt_tokens_cached += s->n_cached;
    }
    live_.push_back(std::move(s));
  }
}

void Engine::Preempt(Sequence& s) {
  s.cache->Clear();
  s.n_computed = 0;
  s.n_registered = 0;
  s.n_sched = 0;
  s.preempted = true;
}

// Fills the batch: one token for every sequence that is generating (oldest first), then chunks of
// prompts with what is left. Returns false when nothing could be scheduled.
bool Engine::Schedule(std::vector<BatchToken>& batch, std::vector<Sequence*>& rows) {
  int budget = opt_.max_batch_tokens;
  const int bs = kv_.block_size();
  // With batches in flight, only sequences in none are scheduled, and a batch takes at most its
  // share of the active sequences, so the pipeline's depth_ groups stay about equal in size.
  std::vector<Sequence*> order;
  int active = 0;
  for (auto& s : live_) {
    if (s->done || s->preempted) continue;
    ++active;
    if (!s->in_flight) order.push_back(s.get());
  }
  int seats = depth_ > 1 ? (active + depth_ - 1) / depth_ : active;
  std::sort(order.begin(), order.end(),
            [](Sequence* a, Sequence* b) { return a->order < b->order; });
  for (int pass = 0; pass < 2; ++pass) {
    for (Sequence* s : order) {
      if (s->preempted || s->done || budget == 0 || seats == 0) continue;
      const int64_t remaining = static_cast<int64_t>(s->tokens.size()) - s->n_computed;
      const bool decoding = remaining == 1;
      if (decoding != (pass == 0)) continue;
      int n = static_cast<int>(
          std::min<int64_t>({remaining, budget, pass == 0 ? 1 : opt_.prefill_chunk}));
      while (!s->cache->Grow(s->n_computed + n)) {
        if (pass == 1) {
          // Shrink the chunk to the blocks there are; wait if there are none.
          const int64_t fit =
              s->cache->capacity() + static_cast<int64_t>(kv_.n_available()) * bs - s->n_computed;
          n = static_cast<int>(std::min<int64_t>(n, fit));
          if (n <= 0) break;
          continue;
        }
        // A generating sequence needs a block: take them from the youngest live sequence.
        Sequence* victim = nullptr;
        for (Sequence* v : order)
          if (!v->preempted && !v->done && (!victim || v->order > victim->order)) victim = v;
        Preempt(*victim);
        if (victim == s) break;
      }
      if (n <= 0 || s->preempted) continue;
      for (int i = 0; i < n; ++i) {
        const int64_t pos = s->n_computed + i;
        batch.push_back({s->tokens[pos], pos, s->cache.get(),
                         pos + 1 == static_cast<int64_t>(s->tokens.size())});
      }
      s->n_sched = n;
      budget -= n;
      --seats;
      if (batch.back().logits) rows.push_back(s);
    }
  }
  if (batch.empty() && flights_.empty()) {
    // Every live sequence is mid-prompt and the pool is dry (admission does not reserve a
    // prompt's blocks): the youngest steps back so the older ones can finish their prompts.
    Sequence* victim = nullptr;
    int alive = 0;
    for (Sequence* v : order) {
      if (v->preempted || v->done) continue;
      ++alive;
      if (!victim || v->order > victim->order) victim = v;
    }
    if (alive >= 2) Preempt(*victim);
  }
  // Preemption may have hit a sequence scheduled earlier in this pass: drop its tokens.
  std::erase_if(batch, [](const BatchToken& b) { return b.cache->blocks().empty(); });
  std::erase_if(rows, [](Sequence* s) { return s->preempted; });
  return !batch.empty();
}

void Engine::Step() {
  // Cancelled requests go first, so their blocks are free for this step.
  for (auto& s : live_)
    if (!s->in_flight && s->stream->cancelled()) Finish(*s, FinishReason::kCancelled);
  std::erase_if(live_, [](const auto& s) { return s->done; });
  {
    std::lock_guard lock(mu_);
    for (auto it = waiting_.begin(); it != waiting_.end();) {
      if ((*it)->stream->cancelled()) {
        (*it)->stream->Finish(FinishReason::kCancelled, {}, (*it)->n_prompt,
                              std::max(0, (*it)->n_cached), (*it)->n_generated);
        ++stats_.requests_cancelled;
        it = waiting_.erase(it);
      } else {
        ++it;
      }
    }
    PublishLocked();
  }
  Admit();

  // Embedding batches go between generation batches (the decoder is idle once flights land).
  bool embedded = false;
  if (flights_.empty() && embedder_.HasWork()) {
    const double t0 = NowSeconds();
    embedded = embedder_.Step(opt_.max_batch_tokens);
    {
      std::lock_guard lock(mu_);
      stats_.busy_seconds += NowSeconds() - t0;
      PublishLocked();
    }
    embedder_.Deliver();
  }

  bool launched = false;
  if (static_cast<int>(flights_.size()) < depth_) {
    std::vector<BatchToken> batch;
    std::vector<Sequence*> rows;
    const bool any = Schedule(batch, rows);
    // Preempted sequences go back to the front of the queue, oldest first; they keep their tokens
    // and sampler, and the prefix cache usually gives their blocks back.
    std::vector<std::unique_ptr<Sequence>> back;
    for (auto& s : live_)
      if (s->preempted) back.push_back(std::move(s));
    std::erase_if(live_, [](const auto& s) { return !s; });
    if (!back.empty()) {
      std::sort(back.begin(), back.end(),
                [](const auto& a, const auto& b) { return a->order > b->order; });
      std::lock_guard lock(mu_);
      for (auto& s : back) waiting_.push_front(std::move(s));
      stats_.preemptions += static_cast<int64_t>(back.size());
    }
    if (any) {
      Launch(std::move(batch), std::move(rows));
      launched = true;
    }
  }
  // The oldest batch lands when the pipeline is full or nothing else can go in.
  if (!flights_.empty() && (static_cast<int>(flights_.size()) >= depth_ || !launched)) {
    Land();
  } else if (!launched && !embedded) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::milliseconds(5));
  }
}

void Engine::Launch(std::vector<BatchToken> batch, std::vector<Sequence*> rows) {
  Flight f;
  for (auto& s : live_)
    if (s->n_sched > 0 && !s->in_flight) f.members.push_back(s.get());
  f.rows = std::move(rows);
  const double t0 = NowSeconds();
  forward_->Submit(batch.data(), static_cast<int>(batch.size()));
  for (Sequence* s : f.members) s->in_flight = true;
  flights_.push_back(std::move(f));
  std::lock_guard lock(mu_);
  stats_.busy_seconds += NowSeconds() - t0;
  PublishLocked();  // the blocks this batch grew into count towards the peak
}

void Engine::Land() {
  const Flight f = std::move(flights_.front());
  flights_.pop_front();
  const double t0 = NowSeconds();
  forward_->Collect(logits_.data());
  const double t1 = NowSeconds();
  for (Sequence* s : f.members) {
    s->n_computed += s->n_sched;
    s->n_sched = 0;
    s->in_flight = false;
  }
  int generated = 0;
  for (size_t r = 0; r < f.rows.size(); ++r) {
    const int before = f.rows[r]->n_generated;
    SampleRow(*f.rows[r], logits_.data() + r * static_cast<size_t>(n_vocab_));
    generated += f.rows[r]->n_generated - before;
  }
  for (Sequence* s : f.members)
    if (!s->done) RegisterBlocks(*s);
  std::erase_if(live_, [](const auto& s) { return s->done; });

  std::lock_guard lock(mu_);
  ++stats_.steps;
  stats_.generated_tokens_total += generated;
  stats_.busy_seconds += t1 - t0;
  window_tokens_ += generated;
  if (t1 - window_t0_ >= 1.0) {
    stats_.generation_tps = window_tokens_ / (t1 - window_t0_);
    window_t0_ = t1;
    window_tokens_ = 0;
  }
  PublishLocked();
}

void Engine::SampleRow(Sequence& s, float* logits) {
  std::span<float> row(logits, static_cast<size_t>(n_vocab_));
  if (s.req.on_prompt_logits && s.n_generated == 0) s.req.on_prompt_logits(row);
  for (const auto& [id, bias] : s.req.logit_bias) row[id] += bias;
  if (s.req.constraint) s.req.constraint->Mask(row);
  const bool want_logprobs = s.req.top_logprobs >= 0;
  if (want_logprobs) std::copy(row.begin(), row.end(), scratch_.begin());
  const int32_t id = s.sampler->Sample(row, s.tokens);
  if (!s.req.ignore_eos && opt_.is_eog && opt_.is_eog(id)) {
    Finish(s, FinishReason::kStop);
    return;
  }
  GeneratedToken g;
  g.token = id;
  if (want_logprobs) {
    // log softmax of the logits the sampler saw, before penalties and truncation.
    float mx = -std::numeric_limits<float>::infinity();
    for (float v : scratch_) mx = std::max(mx, v);
    double sum = 0;
    for (float v : scratch_) sum += std::exp(static_cast<double>(v) - mx);
    const float lse = mx + static_cast<float>(std::log(sum));
    g.logprob = scratch_[id] - lse;
    const int k = std::min(s.req.top_logprobs, n_vocab_);
    if (k > 0) {
      std::vector<int32_t> ids(n_vocab_);
      for (int i = 0; i < n_vocab_; ++i) ids[i] = i;
      std::partial_sort(ids.begin(), ids.begin() + k, ids.end(), [&](int32_t a, int32_t b) {
        return scratch_[a] > scratch_[b] || (scratch_[a] == scratch_[b] && a < b);
      });
      for (int i = 0; i < k; ++i) g.top.push_back({ids[i], scratch_[ids[i]] - lse});
    }
  }
  if (s.req.constraint) s.req.constraint->Accept(id);
  s.tokens.push_back(id);
  ++s.n_generated;
  s.stream->Push(std::move(g));
  if (s.n_generated >= s.req.max_tokens || static_cast<int64_t>(s.tokens.size()) >= max_seq_len_) {
    Finish(s, FinishReason::kLength);
  } else if (s.req.constraint && s.req.constraint->Done()) {
    Finish(s, FinishReason::kStop);
  }
}

// Publishes the sequence's newly completed blocks to the prefix index.
void Engine::RegisterBlocks(Sequence& s) {
  if (!opt_.prefix_cache || !s.register_ok) return;
  const int bs = kv_.block_size();
  const auto& table = s.cache->blocks();
  while (static_cast<int64_t>(s.n_registered + 1) * bs <= s.n_computed) {
    const int i = s.n_registered;
    const int parent = i > 0 ? table[i - 1] : -1;
    if (!kv_.Register(
            table[i], parent,
            std::span<const int32_t>(s.tokens.data() + static_cast<size_t>(i) * bs, bs)) &&
        !kv_.indexed(table[i])) {
      s.register_ok = false;  // an equal block was published first; this chain stays private
      return;
    }
    ++s.n_registered;
  }
}

}  // namespace origami
