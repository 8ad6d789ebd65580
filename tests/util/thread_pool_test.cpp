// ThreadPool: every task runs exactly once, regions run back to back, results are complete.
#include "util/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <vector>

namespace origami {
namespace {

TEST(ThreadPool, EveryTaskRunsOnce) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    for (int rep = 0; rep < 200; ++rep) {
      const int n = 1 + rep % 37;
      std::vector<std::atomic<int>> hits(n);
      pool.Run(n, [&](int64_t task, int thread) {
        ASSERT_LT(thread, threads);
        hits[task].fetch_add(1);
      });
      for (int i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "threads " << threads << " task " << i;
    }
  }
}

TEST(ThreadPool, ParallelForCoversRangeExactly) {
  ThreadPool pool(2);
  for (int64_t n : {0, 1, 7, 64, 1000, 4097}) {
    std::vector<int> seen(n, 0);
    pool.ParallelFor(n, 16, [&](int64_t b, int64_t e, int) {
      for (int64_t i = b; i < e; ++i) seen[i]++;
    });
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(seen[i], 1);
  }
}

TEST(ThreadPool, DefaultThreadsIsPositive) { EXPECT_GE(ThreadPool::DefaultThreads(), 1); }

}  // namespace
}  // namespace origami
