// Reads origami's environment switches once (cli/environment.h).
#include "cli/environment.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "util/error.h"

namespace origami::cli {

namespace {

const char* Get(const char* var) {
  const char* v = std::getenv(var);
  return v && *v ? v : nullptr;
}

Environment Read() {
  Environment e;
  if (const char* v = Get("ORIGAMI_REPACK"))
    e.repack = !(std::strcmp(v, "0") == 0 || std::strcmp(v, "off") == 0 || std::strcmp(v, "false") == 0);
  if (const char* v = Get("ORIGAMI_ISA")) e.isa = v;
  if (const char* v = Get("ORIGAMI_DIST_TIMEOUT")) {
    char* end = nullptr;
    e.dist_timeout = std::strtod(v, &end);
    if (*end || !(e.dist_timeout > 0)) Fail("ORIGAMI_DIST_TIMEOUT must be seconds > 0, got '{}'", v);
  }
  auto integer = [](const char* var, const char* v, int lo, int hi) {
    char* end = nullptr;
    const long n = std::strtol(v, &end, 10);
    if (*end || n < lo || n > hi) Fail("{} must be {} to {}, got '{}'", var, lo, hi, v);
    return static_cast<int>(n);
  };
  if (const char* v = Get("ORIGAMI_MICRO_BATCHES")) e.micro_batches = integer("ORIGAMI_MICRO_BATCHES", v, 1, 512);
  if (const char* v = Get("ORIGAMI_PIPELINE_DEPTH")) e.pipeline_depth = integer("ORIGAMI_PIPELINE_DEPTH", v, 1, 64);
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS"}) {
    if (const char* v = Get(var)) {
      e.mpi_ranks = std::atoi(v);
      break;
    }
  }
  for (const char* var : {"ORIGAMI_TEST_DIE_AT_STEP", "ORIGAMI_TEST_HANG_AT_STEP"}) {
    const char* v = Get(var);
    if (!v) continue;
    if (std::sscanf(v, "%d:%d", &e.die_rank, &e.die_step) != 2) Fail("{} must be rank:step, got '{}'", var, v);
    e.hang = std::string_view(var) == "ORIGAMI_TEST_HANG_AT_STEP";
  }
  return e;
}

}  // namespace

const Environment& Env() {
  static const Environment env = Read();
  return env;
}

}  // namespace origami::cli
