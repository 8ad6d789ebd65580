// The environment switches origami reads, once, at the edge: the layers below take them as
// options and never read the environment themselves.
#pragma once

#include <string>

namespace origami::cli {

struct Environment {
  bool repack = true;       // ORIGAMI_REPACK=0|off|false keeps the file's weight layout
  std::string isa;          // ORIGAMI_ISA=scalar|avx2|avx512|neon forces a lower kernel table
  double dist_timeout = 0;  // ORIGAMI_DIST_TIMEOUT: seconds rank 0 of a pipeline waits for a micro-batch (0: default)
  int micro_batches = 0;    // ORIGAMI_MICRO_BATCHES: micro-batches per pipelined step (0: automatic)
  int pipeline_depth = 0;   // ORIGAMI_PIPELINE_DEPTH: steps in flight in the pipeline (0: one per rank)
  // Ranks the MPI launcher started (OMPI_COMM_WORLD_SIZE, PMI_SIZE, PMIX_SIZE, MPI_LOCALNRANKS):
  // 0 when not started by mpirun, so a plain `origami run` never touches MPI.
  int mpi_ranks = 0;
  // Test hooks of the MPI pipeline: ORIGAMI_TEST_DIE_AT_STEP / ORIGAMI_TEST_HANG_AT_STEP=rank:step.
  int die_rank = -1, die_step = -1;
  bool hang = false;
};

// The switches, read on the first call. Throws origami::Error naming a malformed value.
const Environment& Env();

}  // namespace origami::cli
