// The many-model server's pure logic: which model a request's name means, and which idle models
// the eviction policy unloads so that a new one fits the budget and the --max-loaded count.
#include "server/model_registry.h"

#include <gtest/gtest.h>

namespace origami::server {
namespace {

using Clock = std::chrono::steady_clock;
using Outcome = EvictionPlan::Outcome;

std::vector<ModelInfo> Models(std::initializer_list<const char*> ids) {
  std::vector<ModelInfo> out;
  for (const char* id : ids) {
    out.emplace_back();
    out.back().id = id;
  }
  return out;
}

TEST(ModelNames, ExactIdsFirstThenOllamaSpellings) {
  const auto m = Models({"stories260K", "tiny-b", "Tiny-B:q8"});
  EXPECT_EQ(ResolveModelName(m, "stories260K", false), 0);
  EXPECT_EQ(ResolveModelName(m, "tiny-b", false), 1);
  // The exact id wins over a case-insensitive match of another model.
  EXPECT_EQ(ResolveModelName(m, "Tiny-B:q8", true), 2);
  // OpenAI-style names are exact: no tag, no case folding.
  EXPECT_EQ(ResolveModelName(m, "stories260K:latest", false), -1);
  EXPECT_EQ(ResolveModelName(m, "STORIES260K", false), -1);
  // Ollama clients send "name:latest" and any case.
  EXPECT_EQ(ResolveModelName(m, "stories260K:latest", true), 0);
  EXPECT_EQ(ResolveModelName(m, "STORIES260k", true), 0);
  EXPECT_EQ(ResolveModelName(m, "stories260K:q4", true), -1);  // another tag is another model
  EXPECT_EQ(ResolveModelName(m, "gpt-4o", false), -1);
  EXPECT_EQ(ResolveModelName(m, "gpt-4o", true), -1);
  // No name: the first model, the default.
  EXPECT_EQ(ResolveModelName(m, "", false), 0);
  EXPECT_EQ(ResolveModelName({}, "", false), -1);
}

ResidentModel R(size_t index, uint64_t bytes, bool in_use, int age_s) {
  return {index, bytes, in_use, Clock::time_point() + std::chrono::seconds(1000 - age_s)};
}

TEST(Eviction, FitsWithoutUnloading) {
  const auto p = PlanEviction({R(0, 100, false, 5)}, 100, 250, 0);
  EXPECT_EQ(p.outcome, Outcome::kFits);
  EXPECT_TRUE(p.victims.empty());
  // No byte budget and no cap: everything fits.
  EXPECT_EQ(PlanEviction({R(0, 1u << 30, true, 1)}, 1u << 30, 0, 0).outcome, Outcome::kFits);
}

TEST(Eviction, UnloadsLeastRecentlyUsedIdleModelsOnlyAsNeeded) {
  // Budget 300, three idle models of 100; a 150 one needs two to go: the two oldest.
  const std::vector<ResidentModel> r = {R(0, 100, false, 10), R(1, 100, false, 30),
                                        R(2, 100, false, 20)};
  const auto p = PlanEviction(r, 150, 300, 0);
  EXPECT_EQ(p.outcome, Outcome::kFits);
  EXPECT_EQ(p.victims, (std::vector<size_t>{1, 2}));
  // A 100 one needs only the oldest to go.
  EXPECT_EQ(PlanEviction(r, 100, 300, 0).victims, (std::vector<size_t>{1}));
}

TEST(Eviction, BusyModelsAreNeverIdleVictimsButMustDrain) {
  // The oldest model is in use: the younger idle one goes instead.
  const std::vector<ResidentModel> r = {R(0, 100, true, 50), R(1, 100, false, 5)};
  const auto p = PlanEviction(r, 100, 250, 0);
  EXPECT_EQ(p.outcome, Outcome::kFits);
  EXPECT_EQ(p.victims, (std::vector<size_t>{1}));
  // Both in use: the load must wait for the least recently used one to drain.
  const auto busy = PlanEviction({R(0, 100, true, 50), R(1, 100, true, 5)}, 100, 250, 0);
  EXPECT_EQ(busy.outcome, Outcome::kBusy);
  EXPECT_EQ(busy.victims, (std::vector<size_t>{0}));
  // Idle ones go first, then the oldest busy one.
  const auto mixed =
      PlanEviction({R(0, 100, true, 50), R(1, 100, false, 5), R(2, 100, true, 9)}, 200, 300, 0);
  EXPECT_EQ(mixed.outcome, Outcome::kBusy);
  EXPECT_EQ(mixed.victims, (std::vector<size_t>{1, 0}));
}

TEST(Eviction, NeverFitsWhenLargerThanTheBudget) {
  const auto p = PlanEviction({R(0, 10, false, 1)}, 301, 300, 0);
  EXPECT_EQ(p.outcome, Outcome::kNeverFits);
  EXPECT_TRUE(p.victims.empty());
  // Exactly the budget fits, once the others are gone.
  const auto q = PlanEviction({R(0, 10, false, 1)}, 300, 300, 0);
  EXPECT_EQ(q.outcome, Outcome::kFits);
  EXPECT_EQ(q.victims, (std::vector<size_t>{0}));
}

TEST(Eviction, MaxLoadedCountsModels) {
  // Room for bytes, but --max-loaded 2 with two loaded: the older idle one goes.
  const std::vector<ResidentModel> r = {R(0, 1, false, 3), R(1, 1, false, 7)};
  EXPECT_EQ(PlanEviction(r, 1, 0, 2).victims, (std::vector<size_t>{1}));
  EXPECT_EQ(PlanEviction(r, 1, 0, 3).victims, (std::vector<size_t>{}));
  EXPECT_EQ(PlanEviction(r, 1, 0, 1).victims, (std::vector<size_t>{1, 0}));
  EXPECT_EQ(PlanEviction({R(0, 1, true, 3)}, 1, 0, 1).outcome, Outcome::kBusy);
}

}  // namespace
}  // namespace origami::server
