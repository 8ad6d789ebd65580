// The MPI flags of run and serve (cli/cluster_flags.h).
#include "cli/cluster_flags.h"

#include "cli/environment.h"

namespace origami::cli {

mpi::PipelineOptions ClusterFlags::Resolve() const {
  mpi::PipelineOptions po;
  po.split = split;
  po.wire = mpi::ParseWire(wire);
  if (timeout_s > 0)
    po.timeout_s = timeout_s;
  else if (Env().dist_timeout > 0)
    po.timeout_s = Env().dist_timeout;
  po.micro_batches = Env().micro_batches;
  po.depth = Env().pipeline_depth;
  po.isa = Env().isa;
  po.repack = Env().repack;
  po.die_rank = Env().die_rank, po.die_step = Env().die_step, po.hang = Env().hang;
  return po;
}

void AddClusterOptions(CLI::App& sub, ClusterFlags& flags) {
  sub.add_option("--split", flags.split,
                 "under mpirun: layers per rank (10,6) or fractions (0.6,0.4); default: by each "
                 "rank's free memory");
  sub.add_option("--wire", flags.wire,
                 "under mpirun: hidden states as f32 (bit-identical) or bf16 (half the bytes)")
      ->capture_default_str();
  sub.add_option("--dist-timeout", flags.timeout_s,
                 "under mpirun: seconds to wait for a stage before giving up (default 300, or "
                 "ORIGAMI_DIST_TIMEOUT)");
}

}  // namespace origami::cli
