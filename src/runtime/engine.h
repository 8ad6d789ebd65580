// Engine: the continuous-batching scheduler. One engine thread owns the decoder and the paged KV
// pool; each step it batches every live sequence's next token with chunks of waiting prompts.
// Callers (the HTTP server, tests) submit token-level requests and read a per-request stream; they
// never touch the KV cache. Text (detokenizing, stop strings) is the caller's business.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "model/decoder.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "runtime/embedder.h"
#include "sampling/sampler.h"
#include "util/error.h"
#include "util/thread_pool.h"

namespace origami {

// A per-request constraint on the next token (JSON schema / grammar plugs in here). Mask runs on
// the raw logits before the sampler (set disallowed ids to -inf); Accept sees the chosen token.
// Both run on the engine thread.
class TokenConstraint {
 public:
  virtual ~TokenConstraint() = default;
  virtual void Mask(std::span<float> logits) = 0;
  virtual void Accept(int32_t token) = 0;
  // True when the constraint is satisfied and nothing more may be generated.
  virtual bool Done() const { return false; }
};

struct GenerationRequest {
  std::vector<int32_t> prompt;
  SamplerParams sampling;
  int max_tokens = 256;  // new tokens at most (further capped by the sequence limit)
  bool ignore_eos = false;
  std::vector<std::pair<int32_t, float>> logit_bias;  // added to the raw logits
  int top_logprobs = -1;  // -1: no logprobs; 0: the chosen token's; k: plus the k likeliest
  std::unique_ptr<TokenConstraint> constraint;
  // When set, called once with the raw logits after the prompt (before logit_bias and the
  // constraint), on the engine thread, before the first event reaches the stream (`run` times the
  // prompt with it and writes --logits-out).
  std::function<void(std::span<const float>)> on_prompt_logits;
};

enum class FinishReason { kNone, kStop, kLength, kCancelled, kError };
const char* FinishReasonName(FinishReason r);

struct TokenLogprob {
  int32_t token = 0;
  float logprob = 0.0f;
};

struct GeneratedToken {
  int32_t token = 0;
  float logprob = 0.0f;           // log softmax of the biased, masked logits (before penalties)
  std::vector<TokenLogprob> top;  // the top_logprobs likeliest, best first
};

// What a reader gets from a stream: tokens, then once a finish reason (with counts).
struct StreamEvent {
  std::vector<GeneratedToken> tokens;
  FinishReason finish = FinishReason::kNone;
  std::string error;  // with kError
  int n_prompt = 0;   // prompt tokens (set with the finish)
  int n_cached = 0;   // prompt tokens served from the prefix cache
  int n_generated = 0;
};

// The reader's handle. Thread-safe; the engine pushes, one reader pops.
class RequestStream {
 public:
  // Waits up to `timeout` for something; merges everything pending into `out`. False on timeout.
  bool Next(StreamEvent& out, std::chrono::milliseconds timeout);
  // Asks the engine to stop this request and free its KV blocks (at the next step boundary).
  void Cancel() { cancelled_.store(true); }
  bool cancelled() const { return cancelled_.load(); }

 private:
  friend class Engine;
  void Push(GeneratedToken t);
  void Finish(FinishReason r, std::string error, int n_prompt, int n_cached, int n_generated);

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<GeneratedToken> pending_;
  bool finished_ = false;
  bool delivered_ = false;
  StreamEvent final_;
  std::atomic<bool> cancelled_{false};
};

// Thrown by Submit when the waiting queue is full (the HTTP layer answers 503 + Retry-After).
class OverloadedError : public Error {
 public:
  OverloadedError(const std::string& what, int retry_after_s) : Error(what), retry_after_s(retry_after_s) {}
  // When a place in the queue is expected to free (RetryAfterSeconds), in whole seconds.
  int retry_after_s;
};

// A full queue moves one place each time a running request ends (a waiting one takes its slot),
// so the wait is about the mean interval between the recent ends (times in seconds, oldest first):
// rounded up, 1..60. Fewer than two ends give no rate: 1, the shortest a client should wait.
int RetryAfterSeconds(const std::deque<double>& finish_times);

// Where a step's batch is computed: this process's decoder by default; under mpirun, rank 0 plugs
// in a pipeline of ranks (src/mpi). Called on the engine thread only.
//
// A pipeline of n stages is busy only with n batches in flight, so the seam is asynchronous: the
// engine submits up to depth() batches of disjoint sequences and collects their logits in
// submission order, sampling one group while the others are still in the pipeline.
class BatchForward {
 public:
  virtual ~BatchForward() = default;
  // Batches that may be in flight at once (1: Submit then Collect, every step).
  virtual int depth() const { return 1; }
  // Starts a batch, as Decoder::ForwardBatch takes it: the tokens' caches are the engine's paged
  // caches and block ids index the engine's KvPool. `batch` need not outlive the call.
  virtual void Submit(const BatchToken* batch, int n) = 0;
  // The logits of the oldest batch not yet collected: one row (n_vocab floats) per token that
  // asks, in batch order.
  virtual void Collect(float* logits) = 0;
  // Whether a failed batch ends the engine (a lost pipeline rank: nothing more can be answered)
  // or only the sequences in it (a local forward pass).
  virtual bool failure_is_fatal() const { return true; }
};

// The forward seam over this process's decoder: a batch is computed when it is collected, straight
// into the caller's logits (depth 1: the engine collects each batch right after submitting it).
class LocalForward final : public BatchForward {
 public:
  explicit LocalForward(Decoder& decoder) : decoder_(decoder) {}
  void Submit(const BatchToken* batch, int n) override { pending_.assign(batch, batch + n); }
  void Collect(float* logits) override;
  bool failure_is_fatal() const override { return false; }

 private:
  Decoder& decoder_;
  std::vector<BatchToken> pending_;
};

// The model's shape with K/V widths zeroed outside layers [first_layer, last_layer): a KvPool made
// from it holds only those layers (a pipeline stage's share). No weights are copied.
DecoderSpec KvShapeSpec(const DecoderSpec& spec, int first_layer, int last_layer);

struct EngineOptions {
  int n_parallel = 4;    // sequences decoded at once
  int kv_tokens = 4096;  // the shared KV pool, in positions
  int max_seq_len = 0;   // one sequence's limit (0: the model's context, at most kv_tokens)
  int max_queue = 64;    // waiting requests before Submit throws OverloadedError
  int max_batch_tokens = Decoder::kMaxBatch;
  int prefill_chunk = 256;  // prompt tokens one sequence adds to a step
  int block_size = KvPool::kDefaultBlockSize;
  bool prefix_cache = true;
  KvTypes kv_types;  // storage of the pool's K and V rows (-ctk/-ctv)
  std::function<bool(int32_t)> is_eog;  // end-of-generation ids (may be empty)
  // Under mpirun (rank 0): the pipeline that computes each step, and the layers whose K/V this
  // process keeps (the other ranks mirror the pool's geometry for theirs). A failure of `forward`
  // is fatal: every request fails, Submit refuses new ones and `on_fatal` runs (engine thread).
  BatchForward* forward = nullptr;  // null: this process's decoder, every layer
  int kv_first_layer = 0;
  int kv_last_layer = -1;  // -1: every layer
  std::function<void(const std::string&)> on_fatal;
  // Embeddings: how a sequence's hidden states are pooled (-1: as the model's file says).
  int pooling = -1;
};

struct EngineStats {
  int64_t requests_total = 0, requests_finished = 0, requests_cancelled = 0, requests_rejected = 0;
  int64_t prompt_tokens_total = 0, prompt_tokens_cached = 0, generated_tokens_total = 0;
  int64_t embedding_requests_total = 0, embedding_tokens_total = 0;
  int64_t steps = 0, preemptions = 0;
  int waiting = 0, live = 0;
  int kv_blocks_total = 0, kv_blocks_in_use = 0, kv_blocks_cached = 0, block_size = 0;
  // The pool in bytes: its mapping, the rows sequences hold (and the most they ever held at once),
  // and the rows only the prefix index keeps (evicted when a sequence needs the room).
  uint64_t kv_bytes_total = 0, kv_bytes_in_use = 0, kv_bytes_in_use_peak = 0, kv_bytes_cached = 0;
  int n_parallel = 0, max_queue = 0;  // the limits: sequences at once, requests waiting
  // Every slot is busy or requests already wait: a new request will not start at once.
  bool saturated() const { return waiting > 0 || live >= n_parallel; }
  // The queue is full: Submit refuses (the HTTP layer answers 503 with Retry-After).
  bool queue_full() const { return waiting >= max_queue; }
  double busy_seconds = 0;    // time spent in forward passes
  double generation_tps = 0;  // tokens/s over the recent window
};

class Engine {
 public:
  // Computes through `backend` (not owned; it must outlive the engine).
  Engine(const Model& model, Backend& backend, EngineOptions opt);
  // Computes through a CPU backend of its own over `pool`.
  Engine(const Model& model, ThreadPool& pool, EngineOptions opt);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Validates and queues a request. Throws origami::Error (bad request: empty prompt, prompt
  // longer than a sequence or the pool) or OverloadedError (queue full).
  std::shared_ptr<RequestStream> Submit(GenerationRequest req);

  // Validates and queues an embedding request: every input non-empty, its ids in the vocabulary
  // and at most max_seq_len() tokens; pooling mean, cls or last, or rank for a cross-encoder
  // (and only there). Throws origami::Error (a bad
  // request) or OverloadedError. Batches of it run between generation steps (Embedder).
  std::shared_ptr<EmbeddingResult> SubmitEmbedding(EmbeddingRequest req);
  // Inputs one embedding request may hold.
  static constexpr int kMaxEmbeddingInputs = 2048;
  // Finished requests whose times set Retry-After (OverloadedError).
  static constexpr size_t kRetryAfterWindow = 16;

  EngineStats Stats() const;
  int max_seq_len() const { return max_seq_len_; }
  // The pool's geometry (what a pipeline's mirror pools copy).
  int kv_blocks() const { return kv_.n_blocks(); }
  int kv_block_size() const { return kv_.block_size(); }
  // Bytes of the pool's K/V mapping (its pages become resident as positions are written), and
  // what one position takes over the layers this process keeps.
  uint64_t kv_pool_bytes() const { return kv_.Bytes(); }
  uint64_t kv_bytes_per_token() const {
    return (kv_.BlockBytes() + kv_.WindowPartBytes()) / static_cast<uint64_t>(kv_.block_size());
  }
  int n_vocab() const { return n_vocab_; }
  int n_embd() const { return model_.spec().n_embd; }
  // The pooling embedding requests get (EngineOptions::pooling, else the model's).
  Pooling pooling() const { return opt_.pooling >= 0 ? static_cast<Pooling>(opt_.pooling) : model_.spec().pooling; }
  // An encoder (bert) embeds or scores only. A reranker has rank pooling and a head to score
  // with: a cross-encoder's cls.output, or a decoder's yes/no rows (Qwen3-Reranker).
  bool encoder() const { return model_.spec().encoder; }
  bool reranker() const { return model_.spec().pooling == Pooling::kRank && model_.spec().cls_out.data; }
  // Stops the engine thread; pending requests finish with kCancelled.
  void Shutdown();

 private:
  struct Sequence;
  void Loop();
  // A batch submitted to the forward seam: its sequences (none of them schedulable until it
  // lands) and, in batch order, those whose logits come back.
  struct Flight {
    std::vector<Sequence*> members, rows;
  };
  void Start();  // checks the options and starts the engine thread (both constructors)
  void Step();
  void Admit();
  bool Schedule(std::vector<BatchToken>& batch, std::vector<Sequence*>& rows);
  void Launch(std::vector<BatchToken> batch, std::vector<Sequence*> rows);
  void Land();  // collects and samples the oldest batch in flight
  void SampleRow(Sequence& s, float* logits);
  void RegisterBlocks(Sequence& s);
  void Preempt(Sequence& s);
  void Finish(Sequence& s, FinishReason r, std::string error = {});
  void FailAll(const std::string& error);  // a fatal forward failure
  void PublishLocked();  // copies queue/KV counts into stats_ (mu_ held, engine thread)

  const Model& model_;
  EngineOptions opt_;
  int max_seq_len_ = 0;
  int n_vocab_ = 0;
  std::unique_ptr<Backend> owned_backend_;  // the pool constructor's CPU backend
  Decoder decoder_;
  KvPool kv_;
  LocalForward local_;     // the forward seam when opt_.forward is null
  Embedder embedder_;      // embedding batches, run on the engine thread between steps
  BatchForward* forward_;  // opt_.forward or &local_: where every batch is computed

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Sequence>> waiting_;  // guarded by mu_
  bool stop_ = false;                              // guarded by mu_
  std::vector<std::unique_ptr<Sequence>> live_;    // engine thread only
  std::deque<Flight> flights_;                     // batches submitted, not yet collected
  int depth_ = 1;                                  // batches kept in flight at most
  std::vector<float> logits_;
  std::vector<float> scratch_;
  EngineStats stats_;        // guarded by mu_
  std::deque<double> finish_times_;  // guarded by mu_: the last few requests' ends (Retry-After)
  uint64_t next_order_ = 0;  // engine thread only
  double window_t0_ = 0;
  int64_t window_tokens_ = 0;
  std::thread thread_;
};

}  // namespace origami
