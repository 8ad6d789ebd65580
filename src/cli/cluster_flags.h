// The MPI flags of run and serve (--split, --wire, --dist-timeout) and the environment's pipeline
// switches, resolved into the one options struct the pipeline takes.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "mpi/pipeline.h"

namespace origami::cli {

struct ClusterFlags {
  std::string split;         // --split
  std::string wire = "f32";  // --wire
  double timeout_s = 0;      // --dist-timeout (<= 0: ORIGAMI_DIST_TIMEOUT, else 300 s)
  // The flags with ORIGAMI_MICRO_BATCHES, ORIGAMI_PIPELINE_DEPTH, ORIGAMI_DIST_TIMEOUT,
  // ORIGAMI_ISA, ORIGAMI_REPACK and the test hooks; throws origami::Error naming a bad value.
  mpi::PipelineOptions Resolve() const;
};
void AddClusterOptions(CLI::App& sub, ClusterFlags& flags);

}  // namespace origami::cli
