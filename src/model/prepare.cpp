// Model::PrepareWeights: copies weight matrices into the kernels' layouts at load.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "model/model.h"
#include "util/error.h"

namespace origami {

namespace {

// Rows repacked per task: small enough that both threads finish together and that the source
// pages dropped after each task keep the extra resident memory to a few MiB.
constexpr int64_t kChunkRows = 512;

}  // namespace

void Model::Prepared::Count(Layout l) {
  for (auto& [layout, n] : layouts)
    if (layout == l) {
      ++n;
      return;
    }
  layouts.emplace_back(l, 1);
}

int Model::Prepared::CountOf(Layout l) const {
  for (const auto& [layout, n] : layouts)
    if (layout == l) return n;
  return 0;
}

std::string Model::Prepared::Summary() const {
  if (tensors == 0) return "weights used as laid out in the file";
  std::string s = std::to_string(tensors) + (tensors == 1 ? " matrix" : " matrices") + " repacked:";
  for (size_t i = 0; i < layouts.size(); ++i)
    s += (i ? ", " : " ") + std::to_string(layouts[i].second) + " as " + LayoutName(layouts[i].first);
  return s;
}

const Model::Prepared& Model::PrepareWeights(const Backend& backend) {
  return PrepareWeights(backend, 0, static_cast<int>(spec_.layers.size()), true);
}

namespace {

// A matrix to rewrite, placed at `offset` of the new buffer.
struct Job {
  MatrixView* src;
  Layout to;
  size_t offset;
};

// The views of layers [first, last) (and the output) and the distinct matrices among them that
// `backend` has a better layout for. Views sharing bytes (a tied output and the embeddings) are
// one job; every view of those bytes switches with it.
std::vector<Job> CollectJobs(DecoderSpec& spec, const Backend& backend, int first, int last, bool output,
                             std::vector<MatrixView*>& views, size_t& total) {
  // The layers' attention and dense FFN matrices (routers and expert stacks keep the file's
  // layout), then the head; a tied head is the embedding table, which ForEachMatrix lists as such.
  ForEachMatrix(spec, [&](const MatrixRef& r) {
    if (r.layer >= first && r.layer < last && (r.role == WeightRole::kAttention || r.role == WeightRole::kFfn))
      views.push_back(r.matrix);
  });
  if (output && spec.output.data) views.push_back(&spec.output);
  std::vector<Job> jobs;
  total = 0;
  for (MatrixView* m : views) {
    const Layout to = backend.PreferredLayout(*m);
    if (to == Layout::kRows) continue;
    if (std::any_of(jobs.begin(), jobs.end(), [&](const Job& j) { return j.src->data == m->data; })) continue;
    jobs.push_back({m, to, total});
    total += (RowBytes(m->type, m->cols) * static_cast<size_t>(m->rows) + 63) & ~size_t{63};
  }
  return jobs;
}

void CheckRange(int first_layer, int last_layer, int n_layer) {
  if (first_layer < 0 || last_layer > n_layer || first_layer > last_layer)
    Fail("prepare weights: layer range [{}, {}) is outside [0, {})", first_layer, last_layer, n_layer);
}

}  // namespace

Model::Prepared Model::PlanWeights(const Backend& backend) const {
  Prepared plan;
  DecoderSpec copy = spec_;  // views only: cheap, and CollectJobs wants mutable ones
  std::vector<MatrixView*> views;
  size_t total = 0;
  for (const Job& j : CollectJobs(copy, backend, 0, static_cast<int>(copy.layers.size()), true, views, total)) {
    plan.tensors += 1;
    plan.bytes += RowBytes(j.src->type, j.src->cols) * static_cast<uint64_t>(j.src->rows);
    plan.Count(j.to);
  }
  return plan;
}

const Model::Prepared& Model::PrepareWeights(const Backend& backend, int first_layer, int last_layer,
                                             bool output) {
  CheckRange(first_layer, last_layer, static_cast<int>(spec_.layers.size()));
  const MappedFile* map = file_->mapping();
  if (!map) return prepared_;  // parsed from memory (tests): leave it as it is
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<MatrixView*> views;
  size_t total = 0;
  std::vector<Job> jobs = CollectJobs(spec_, backend, first_layer, last_layer, output, views, total);
  if (jobs.empty()) return prepared_;
  // Plain 4 KiB pages: with huge pages the first fill sometimes stalled for seconds while the
  // kernel compacted memory (defrag=madvise): 2.8 s against 0.8-0.9 s for 663 MiB without.
  auto buffer = std::make_unique<AnonymousBuffer>(total, /*huge_pages=*/false);

  struct Task {
    size_t job;
    int64_t row0, rows;
  };
  std::vector<Task> tasks;
  for (size_t j = 0; j < jobs.size(); ++j)
    for (int64_t r = 0; r < jobs[j].src->rows; r += kChunkRows)
      tasks.push_back({j, r, std::min(kChunkRows, jobs[j].src->rows - r)});
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i; (i = next.fetch_add(1)) < tasks.size();) {
      const Task& t = tasks[i];
      const MatrixView& m = *jobs[t.job].src;
      const size_t row_bytes = RowBytes(m.type, m.cols);
      const auto* src = static_cast<const uint8_t*>(m.data) + t.row0 * row_bytes;
      const size_t dst_offset = jobs[t.job].offset + t.row0 * row_bytes;
      // One call maps the task's destination pages (zeroed by the kernel) instead of a page
      // fault per 4 KiB; without MADV_POPULATE_WRITE the writes fault them in as before.
      buffer->Populate(dst_offset, row_bytes * static_cast<size_t>(t.rows));
      backend.Repack(jobs[t.job].to, src, buffer->data() + dst_offset, t.rows, m.cols);
      map->Release(static_cast<size_t>(src - map->data()), row_bytes * static_cast<size_t>(t.rows));
    }
  };
  const unsigned n_threads = std::clamp(std::thread::hardware_concurrency(), 1u, 8u);
  std::vector<std::thread> threads;
  for (unsigned t = 1; t < n_threads; ++t) threads.emplace_back(work);
  work();
  for (auto& t : threads) t.join();

  for (const Job& j : jobs) {
    const void* old = j.src->data;
    prepared_.tensors += 1;
    prepared_.bytes += RowBytes(j.src->type, j.src->cols) * static_cast<uint64_t>(j.src->rows);
    prepared_.Count(j.to);
    // Every view of these bytes, the embeddings included when the output is tied.
    for (MatrixView* m : views)
      if (m->data == old) *m = {m->type, m->rows, m->cols, buffer->data() + j.offset, j.to};
    if (spec_.tok_embd.data == old)
      spec_.tok_embd = {spec_.tok_embd.type, spec_.tok_embd.rows, spec_.tok_embd.cols, buffer->data() + j.offset, j.to};
  }
  repacked_.push_back(std::move(buffer));
  prepared_.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return prepared_;
}

}  // namespace origami
