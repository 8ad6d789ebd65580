// The dispatch point: ISA names, availability, and that ORIGAMI_ISA forces the choice (checked
// in-process through SelectIsa and end to end in a child process).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include <unistd.h>

#include "kernels/cpu/kernels.h"

namespace origami::cpu {
namespace {

TEST(Dispatch, ScalarFirstAndAlwaysAvailable) {
  const auto isas = AvailableIsas();
  ASSERT_FALSE(isas.empty());
  EXPECT_EQ(isas.front(), Isa::kScalar);
  for (Isa isa : isas) {
    ASSERT_NE(KernelsFor(isa), nullptr);
    EXPECT_EQ(KernelsFor(isa)->isa, isa);
  }
  std::string names;
  for (Isa isa : isas) names += std::string(IsaName(isa)) + " ";
  std::printf("[ isas     ] %s\n", names.c_str());
}

TEST(Dispatch, SelectIsaHonoursRequests) {
  const Isa best = AvailableIsas().back();
  EXPECT_EQ(SelectIsa(nullptr), best);
  EXPECT_EQ(SelectIsa(""), best);
  EXPECT_EQ(SelectIsa("no-such-isa"), best);
  for (Isa isa : AvailableIsas()) EXPECT_EQ(SelectIsa(IsaName(isa)), isa);
  for (Isa isa : {Isa::kAvx2, Isa::kAvx512, Isa::kNeon}) {
    if (!KernelsFor(isa)) {
      EXPECT_EQ(SelectIsa(IsaName(isa)), best) << IsaName(isa);
    }
  }
  EXPECT_EQ(Kernels().isa, best);  // the library reads no environment (origami's CLI reads ORIGAMI_ISA)
}

}  // namespace
}  // namespace origami::cpu
