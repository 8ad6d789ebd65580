// World: the few MPI calls origami needs (point-to-point messages with timeouts, one allgather,
// abort), behind a header that does not include <mpi.h>. Built without MPI, Init() throws.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace origami::mpi {

// Message tags: the stage stream flows rank r -> r+1; results flow from the last rank to rank 0.
inline constexpr int kTagStage = 1;
inline constexpr int kTagResult = 2;

class World {
 public:
  // True when this binary was built with MPI support.
  static bool Available();
  // MPI_Init and a private communicator with MPI_ERRORS_RETURN, so failures come back as values
  // we can name (which rank, which call) instead of Open MPI's default abort.
  static std::unique_ptr<World> Init();
  ~World();  // MPI_Finalize

  int rank() const { return rank_; }
  int size() const { return size_; }

  // Every rank's value, in rank order (a collective: all ranks must call it).
  std::vector<uint64_t> AllgatherU64(uint64_t v);

  // Starts sending `bytes` to `dest`; the World keeps the buffer until the send completes.
  // At most `max_pending` sends stay open: beyond that the oldest is waited for (with timeout).
  void Send(int dest, int tag, std::vector<uint8_t> bytes, double timeout_s);
  // Waits for the next message from `source` (any tag) and returns it with its tag. timeout_s <= 0
  // waits forever. Throws origami::Error naming `source` on timeout or on an MPI error.
  std::vector<uint8_t> Recv(int source, int* tag, double timeout_s);
  // Waits for every open send.
  void FlushSends(double timeout_s);

  // Ends every rank of the job now (MPI_Abort).
  [[noreturn]] void Abort(int code);

  uint64_t bytes_sent() const { return bytes_sent_; }

 private:
  World() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int rank_ = 0;
  int size_ = 1;
  uint64_t bytes_sent_ = 0;
};

}  // namespace origami::mpi
