// The backend registry: one place that knows every backend this build has.
#include "backend/registry.h"

#include "backend/cpu/cpu_backend.h"
#include "util/error.h"

namespace origami {

std::unique_ptr<Backend> MakeCpuBackend(ThreadPool& pool) { return std::make_unique<CpuBackend>(pool); }

std::vector<std::string> BackendNames() { return {"cpu"}; }

std::unique_ptr<Backend> MakeBackend(const BackendOptions& opt) {
  if (opt.device == "cpu") {
    if (!opt.pool) FailKind(ErrorKind::kInternal, "the cpu backend needs a thread pool");
    return MakeCpuBackend(*opt.pool);
  }
  Fail("--device {}: this build has no such backend (it has: cpu)", opt.device);
}

}  // namespace origami
