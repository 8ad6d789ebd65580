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
  EXPECT_EQ(Kernels().isa, SelectIsa(std::getenv("ORIGAMI_ISA")));
}

// Run by ForcedIsaInChildProcess only.
TEST(Dispatch, DISABLED_ReportChosenIsa) { std::printf("chosen-isa: %s\n", IsaName(Kernels().isa)); }

TEST(Dispatch, ForcedIsaInChildProcess) {
  char exe[4096];
  const ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (len <= 0) GTEST_SKIP() << "cannot find the test binary's path";
  exe[len] = 0;
  for (Isa isa : AvailableIsas()) {
    const std::string cmd = std::string("ORIGAMI_ISA=") + IsaName(isa) + " '" + exe +
                            "' --gtest_also_run_disabled_tests"
                            " --gtest_filter=Dispatch.DISABLED_ReportChosenIsa 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    ASSERT_NE(p, nullptr);
    std::string out;
    char buf[256];
    while (std::fgets(buf, sizeof buf, p)) out += buf;
    pclose(p);
    if (out.find("[==========]") == std::string::npos)
      GTEST_SKIP() << "cannot re-run the test binary here (emulator?): " << out;
    EXPECT_NE(out.find(std::string("chosen-isa: ") + IsaName(isa) + "\n"), std::string::npos) << out;
  }
}

}  // namespace
}  // namespace origami::cpu
