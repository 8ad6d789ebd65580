// Embedder: batches of embedding inputs through the decoder's hidden-state output, pooled per
// input (or, for a decoder reranker, scored by its yes/no head at the last token).
#include "runtime/embedder.h"

#include <algorithm>
#include <cmath>

#include "util/error.h"

namespace origami {

std::vector<std::vector<float>> EmbeddingResult::Wait() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return done_; });
  if (!error_.empty()) origami::Fail("{}", error_);
  return std::move(vectors_);
}

void EmbeddingResult::Complete() {
  {
    std::lock_guard lock(mu_);
    done_ = true;
  }
  cv_.notify_all();
}

void EmbeddingResult::Fail(const std::string& error) {
  {
    std::lock_guard lock(mu_);
    if (done_) return;
    done_ = true;
    error_ = error.empty() ? "embedding failed" : error;
  }
  cv_.notify_all();
}

std::vector<float> L2Normalized(std::span<const double> x) {
  double ss = 0;
  for (double v : x) ss += v * v;
  const double inv = ss > 0 ? 1 / std::sqrt(ss) : 0.0;
  std::vector<float> out(x.size());
  for (size_t i = 0; i < x.size(); ++i) out[i] = static_cast<float>(x[i] * inv);
  return out;
}

std::vector<float> TruncatedEmbedding(std::span<const float> v, int dims, bool normalize) {
  const size_t n = dims > 0 ? std::min<size_t>(dims, v.size()) : v.size();
  std::vector<double> head(v.begin(), v.begin() + n);
  if (normalize) return L2Normalized(head);
  return std::vector<float>(v.begin(), v.begin() + n);
}

std::shared_ptr<EmbeddingResult> Embedder::Push(EmbeddingRequest req) {
  auto job = std::make_shared<EmbeddingResult>();
  job->remaining_ = req.inputs.size();
  job->vectors_.resize(req.inputs.size());
  for (const auto& in : req.inputs) job->n_tokens_ += static_cast<int>(in.size());
  job->req_ = std::move(req);
  if (job->remaining_ == 0) {
    job->Complete();
    return job;
  }
  std::lock_guard lock(mu_);
  queued_.push_back(job);
  return job;
}

bool Embedder::HasWork() const {
  // items_ and jobs_ are the engine thread's, and so is every caller of HasWork.
  if (!items_.empty() || !jobs_.empty()) return true;
  std::lock_guard lock(mu_);
  return !queued_.empty();
}

int Embedder::Schedule(Item& item, int budget) {
  const int64_t len = static_cast<int64_t>(item.tokens().size());
  int64_t n = std::min<int64_t>(len - item.done, budget);
  // Only the blocks there are: the rest waits for a later step.
  const int64_t fit = item.cache->capacity() +
                      static_cast<int64_t>(kv_.n_available()) * kv_.block_size() - item.done;
  n = std::min(n, fit);
  if (n <= 0 || !item.cache->Grow(item.done + n)) return 0;
  item.sched = n;
  const Pooling pooling = item.job->req_.pooling;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t pos = item.done + i;
    // A decoder reranker reads its yes/no head at the last token, as last pooling does.
    const bool want = pooling == Pooling::kMean || (pooling == Pooling::kCls && pos == 0) ||
                      ((pooling == Pooling::kLast || pooling == Pooling::kRank) && pos == len - 1);
    batch_.push_back({item.tokens()[pos], pos, item.cache.get(), want});
    if (want) rows_.push_back(&item);
  }
  return static_cast<int>(n);
}

void Embedder::Finish(Item& item) {
  EmbeddingResult& job = *item.job;
  if (job.req_.pooling == Pooling::kMean)
    for (double& v : item.acc) v /= static_cast<double>(item.tokens().size());
  if (job.req_.pooling == Pooling::kRank) {
    // The last row as ForwardHidden wrote it (float), through the yes/no head: one score.
    const std::vector<float> row(item.acc.begin(), item.acc.end());
    float score = 0;
    decoder_.RankScores(row.data(), 1, &score);
    job.vectors_[item.input].assign(1, score);
  } else if (job.req_.normalize) {
    job.vectors_[item.input] = L2Normalized(item.acc);
  } else {
    job.vectors_[item.input].assign(item.acc.begin(), item.acc.end());
  }
  item.cache->Clear();
  if (--job.remaining_ == 0) finished_.push_back(item.job);
}

void Embedder::FailJobs(const std::vector<EmbeddingResult*>& failed, const std::string& error) {
  for (EmbeddingResult* j : failed) j->Fail(error);
  std::erase_if(items_, [&](const auto& item) {
    if (std::find(failed.begin(), failed.end(), item->job.get()) == failed.end()) return false;
    item->cache->Clear();
    return true;
  });
  std::erase_if(jobs_, [&](const auto& j) { return std::find(failed.begin(), failed.end(), j.get()) != failed.end(); });
}

bool Embedder::StepEncoder(int max_tokens) {
  enc_tokens_.clear();
  enc_types_.clear();
  enc_starts_.assign(1, 0);
  enc_inputs_.clear();
  // Whole inputs only (attention sees the entire sequence), oldest request first; an input longer
  // than the budget runs alone (the engine checked it against the model's context).
  while (!jobs_.empty()) {
    EmbeddingResult& job = *jobs_.front();
    const size_t input = job.next_input_;
    const std::vector<int32_t>& in = job.req_.inputs[input];
    if (!enc_tokens_.empty() && enc_tokens_.size() + in.size() > static_cast<size_t>(max_tokens)) break;
    const size_t seg = input < job.req_.segment_b.size() ? static_cast<size_t>(job.req_.segment_b[input]) : in.size();
    enc_tokens_.insert(enc_tokens_.end(), in.begin(), in.end());
    for (size_t i = 0; i < in.size(); ++i) enc_types_.push_back(i < seg ? 0 : 1);
    enc_starts_.push_back(static_cast<int64_t>(enc_tokens_.size()));
    enc_inputs_.emplace_back(jobs_.front(), input);
    if (++job.next_input_ == job.req_.inputs.size()) jobs_.pop_front();
  }
  if (enc_inputs_.empty()) return false;

  const int64_t e = decoder_.spec().n_embd;
  const bool rank = decoder_.spec().pooling == Pooling::kRank;
  hidden_.resize(rank ? enc_inputs_.size() : enc_tokens_.size() * e);
  try {
    decoder_.Encode({enc_tokens_, enc_types_, enc_starts_}, hidden_.data());
  } catch (const std::exception& ex) {
    std::vector<EmbeddingResult*> failed;
    for (auto& [job, input] : enc_inputs_)
      if (std::find(failed.begin(), failed.end(), job.get()) == failed.end()) failed.push_back(job.get());
    FailJobs(failed, ex.what());
    return true;
  }
  std::vector<double> acc;
  for (size_t s = 0; s < enc_inputs_.size(); ++s) {
    const auto& [job, input] = enc_inputs_[s];
    const Pooling pooling = job->req_.pooling;
    std::vector<float>& out = job->vectors_[input];
    if (pooling == Pooling::kRank) {
      out.assign(1, hidden_[s]);
    } else {
      const int64_t t0 = enc_starts_[s], len = enc_starts_[s + 1] - t0;
      acc.assign(e, 0.0);
      // Pooling as for the decoder: the mean of every row (summed in double), the first or the last.
      const int64_t first = pooling == Pooling::kMean ? 0 : pooling == Pooling::kCls ? 0 : len - 1;
      const int64_t last = pooling == Pooling::kMean ? len : first + 1;
      for (int64_t r = first; r < last; ++r)
        for (int64_t i = 0; i < e; ++i) acc[i] += hidden_[(t0 + r) * e + i];
      for (double& v : acc) v /= static_cast<double>(last - first);
      if (job->req_.normalize) out = L2Normalized(acc);
      else out.assign(acc.begin(), acc.end());
    }
    if (--job->remaining_ == 0) finished_.push_back(job);
  }
  return true;
}

bool Embedder::Step(int max_tokens) {
  {
    std::lock_guard lock(mu_);
    while (!queued_.empty()) {
      jobs_.push_back(std::move(queued_.front()));
      queued_.pop_front();
    }
  }
  if (decoder_.spec().encoder) return StepEncoder(max_tokens);
  batch_.clear();
  rows_.clear();
  int budget = max_tokens;
  // Inputs in progress first (a long one continues where the last batch stopped), then new ones.
  for (auto& item : items_)
    if (budget > 0) budget -= Schedule(*item, budget);
  while (budget > 0 && !jobs_.empty()) {
    EmbeddingResult& job = *jobs_.front();
    auto item = std::make_unique<Item>();
    item->job = jobs_.front();
    item->input = job.next_input_;
    item->cache = std::make_unique<KvCache>(kv_, static_cast<int>(item->tokens().size()));
    item->acc.assign(decoder_.spec().n_embd, 0.0);
    const int n = Schedule(*item, budget);
    if (n == 0) break;  // the pool is dry: wait for blocks
    budget -= n;
    items_.push_back(std::move(item));
    if (++job.next_input_ == job.req_.inputs.size()) jobs_.pop_front();
  }
  if (batch_.empty()) return false;

  const int64_t e = decoder_.spec().n_embd;
  hidden_.resize(rows_.size() * e);
  try {
    decoder_.ForwardHidden(batch_.data(), static_cast<int>(batch_.size()), hidden_.data());
  } catch (const std::exception& ex) {
    // A failed pass fails the requests in it (their other inputs are dropped with them).
    std::vector<EmbeddingResult*> failed;
    for (auto& item : items_)
      if (item->sched > 0) failed.push_back(item->job.get());
    FailJobs(failed, ex.what());
    return true;
  }
  for (size_t r = 0; r < rows_.size(); ++r) {
    Item& item = *rows_[r];
    const float* row = hidden_.data() + r * e;
    if (item.job->req_.pooling == Pooling::kMean) {
      for (int64_t i = 0; i < e; ++i) item.acc[i] += row[i];
    } else {
      for (int64_t i = 0; i < e; ++i) item.acc[i] = row[i];
    }
  }
  for (auto& item : items_) {
    item->done += item->sched;
    item->sched = 0;
    if (item->done == static_cast<int64_t>(item->tokens().size())) Finish(*item);
  }
  std::erase_if(items_, [](const auto& item) {
    return item->done == static_cast<int64_t>(item->tokens().size());
  });
  return true;
}

void Embedder::Deliver() {
  for (auto& job : finished_) job->Complete();
  finished_.clear();
}

void Embedder::FailAll(const std::string& error) {
  Deliver();
  {
    std::lock_guard lock(mu_);
    for (auto& j : queued_) j->Fail(error);
    queued_.clear();
  }
  for (auto& item : items_) {
    item->cache->Clear();
    item->job->Fail(error);
  }
  items_.clear();
  for (auto& j : jobs_) j->Fail(error);
  jobs_.clear();
}

}  // namespace origami
