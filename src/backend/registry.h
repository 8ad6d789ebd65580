// Chooses a backend once, by name, as kernels/cpu/dispatch.cpp chooses an ISA table.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "util/thread_pool.h"

namespace origami {

struct BackendOptions {
  std::string device = "cpu";  // --device
  ThreadPool* pool = nullptr;  // the CPU backend's threads (not owned; the caller keeps one pool per process)
};

// The backend `opt.device` names. Throws origami::Error naming the devices this build has when it
// has no such backend or the machine has no such device.
std::unique_ptr<Backend> MakeBackend(const BackendOptions& opt);
// The CPU backend over `pool` (what tests and single-purpose tools use).
std::unique_ptr<Backend> MakeCpuBackend(ThreadPool& pool);
// The device names MakeBackend accepts in this build.
std::vector<std::string> BackendNames();

}  // namespace origami
