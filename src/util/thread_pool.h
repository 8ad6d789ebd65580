// One thread pool, created once: the caller plus n-1 workers run the tasks of a parallel region.
// No allocation and no system call on the hot path while workers are spinning; they sleep on a
// futex (std::atomic::wait) only after a short spin, so back-to-back regions stay cheap.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "util/function_ref.h"

namespace origami {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Runs fn(task, thread) for task in [0, n_tasks); returns when all are done. Tasks are handed
  // out dynamically, so uneven tasks still finish together. Not reentrant.
  void Run(int64_t n_tasks, FunctionRef<void(int64_t task, int thread)> fn);

  // Splits [0, n) into chunks of at least `grain` and calls fn(begin, end, thread) for each.
  void ParallelFor(int64_t n, int64_t grain, FunctionRef<void(int64_t, int64_t, int)> fn);

  // Number of physical cores (what `-t` defaults to).
  static int DefaultThreads();

 private:
  void WorkerLoop(int thread);
  void DoTasks(int thread);

  int n_threads_;
  std::vector<std::thread> workers_;
  std::atomic<uint32_t> generation_{0};
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> next_task_{0};
  std::atomic<int> workers_done_{0};
  int64_t n_tasks_ = 0;
  FunctionRef<void(int64_t, int)>* fn_ = nullptr;
};

}  // namespace origami
