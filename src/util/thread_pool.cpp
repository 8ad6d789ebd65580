// ThreadPool implementation.
#include "util/thread_pool.h"

#include <algorithm>
#include <fstream>
#include <set>
#include <string>
#include <utility>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define ORIGAMI_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define ORIGAMI_PAUSE() asm volatile("yield")
#else
#define ORIGAMI_PAUSE() ((void)0)
#endif

namespace origami {

namespace {
constexpr int kSpinIterations = 20000;
}

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {
  workers_.reserve(n_threads_ - 1);
  for (int t = 1; t < n_threads_; ++t) workers_.emplace_back([this, t] { WorkerLoop(t); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true);
  generation_.fetch_add(1);
  generation_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::DoTasks(int thread) {
  for (;;) {
    const int64_t task = next_task_.fetch_add(1, std::memory_order_relaxed);
    if (task >= n_tasks_) break;
    (*fn_)(task, thread);
  }
}

void ThreadPool::WorkerLoop(int thread) {
  uint32_t seen = 0;
  for (;;) {
    // Spin a little for the next region, then sleep on the futex.
    uint32_t gen = generation_.load(std::memory_order_acquire);
    for (int i = 0; gen == seen && i < kSpinIterations; ++i) {
      ORIGAMI_PAUSE();
      gen = generation_.load(std::memory_order_acquire);
    }
    while (gen == seen) {
      generation_.wait(seen, std::memory_order_acquire);
      gen = generation_.load(std::memory_order_acquire);
    }
    seen = gen;
    if (stop_.load()) return;
    DoTasks(thread);
    // Every worker checks in once per region, so none can straggle into the next one.
    workers_done_.fetch_add(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::Run(int64_t n_tasks, FunctionRef<void(int64_t, int)> fn) {
  if (n_tasks <= 0) return;
  if (n_threads_ == 1 || n_tasks == 1) {
    for (int64_t i = 0; i < n_tasks; ++i) fn(i, 0);
    return;
  }
  fn_ = &fn;
  n_tasks_ = n_tasks;
  workers_done_.store(0, std::memory_order_relaxed);
  next_task_.store(0, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  generation_.notify_all();
  DoTasks(0);
  const int n_workers = n_threads_ - 1;
  // Spin briefly, then yield: on an oversubscribed machine a descheduled worker must get the core.
  for (int spins = 0; workers_done_.load(std::memory_order_acquire) != n_workers; ++spins) {
    if (spins < kSpinIterations) ORIGAMI_PAUSE();
    else std::this_thread::yield();
  }
  fn_ = nullptr;
}

void ThreadPool::ParallelFor(int64_t n, int64_t grain, FunctionRef<void(int64_t, int64_t, int)> fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  // About 4 chunks per thread balances load without much scheduling overhead.
  int64_t chunk = std::max(grain, (n + 4 * n_threads_ - 1) / (4 * n_threads_));
  chunk = (chunk + grain - 1) / grain * grain;
  const int64_t n_chunks = (n + chunk - 1) / chunk;
  Run(n_chunks, [&](int64_t c, int thread) { fn(c * chunk, std::min(n, (c + 1) * chunk), thread); });
}

int ThreadPool::DefaultThreads() {
  // Count distinct (physical id, core id) pairs; fall back to hardware_concurrency.
  std::ifstream in("/proc/cpuinfo");
  std::set<std::pair<int, int>> cores;
  std::string line;
  int phys = 0;
  while (std::getline(in, line)) {
    auto value = [&] { return std::atoi(line.substr(line.find(':') + 1).c_str()); };
    if (line.rfind("physical id", 0) == 0) phys = value();
    if (line.rfind("core id", 0) == 0) cores.insert({phys, value()});
  }
  int n = static_cast<int>(cores.size());
  if (n <= 0) n = static_cast<int>(std::thread::hardware_concurrency());
  return std::max(1, n);
}

}  // namespace origami
