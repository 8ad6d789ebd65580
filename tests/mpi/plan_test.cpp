// Pipeline plans: --split parsing and stage boundaries (no MPI needed).
#include "mpi/plan.h"

#include <gtest/gtest.h>

#include "util/error.h"

namespace origami::mpi {
namespace {

ModelCosts Uniform(int n_layer, uint64_t bytes = 100) {
  ModelCosts c;
  c.layer_bytes.assign(n_layer, bytes);
  c.layer_kv_per_pos.assign(n_layer, 8);
  c.embd_bytes = 1000;
  c.head_bytes = 50;
  return c;
}

TEST(SplitTest, ParsesLayersFractionsAndAuto) {
  EXPECT_EQ(ParseSplit("").kind, SplitRequest::Kind::kAuto);
  EXPECT_EQ(ParseSplit("auto").kind, SplitRequest::Kind::kAuto);
  const SplitRequest l = ParseSplit("10,6");
  EXPECT_EQ(l.kind, SplitRequest::Kind::kLayers);
  EXPECT_EQ(l.values, (std::vector<double>{10, 6}));
  EXPECT_EQ(ParseSplit("0.6,0.4").kind, SplitRequest::Kind::kFractions);
  EXPECT_THROW(ParseSplit("10,x"), Error);
  EXPECT_THROW(ParseSplit("10,-1"), Error);
  EXPECT_THROW(ParseSplit("10,,6"), Error);
  EXPECT_THROW(ParseSplit("nan,1"), Error);
}

TEST(PlanTest, LayerCountsAreTakenAsGiven) {
  const auto plan = PlanStages(Uniform(16), 2, ParseSplit("10,6"), {}, 4);
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_EQ(plan[0].first_layer, 0);
  EXPECT_EQ(plan[0].last_layer, 10);
  EXPECT_EQ(plan[1].first_layer, 10);
  EXPECT_EQ(plan[1].last_layer, 16);
  EXPECT_EQ(plan[0].weight_bytes, 1000u + 50u);  // rank 0 also holds the output head
  EXPECT_TRUE(plan[0].head);
  EXPECT_EQ(plan[1].weight_bytes, 600u);
  EXPECT_FALSE(plan[1].head);
  EXPECT_EQ(plan[0].kv_bytes, 10u * 8 * 4);
}

TEST(PlanTest, FractionsAndFreeMemoryPlaceBoundariesByBytes) {
  auto plan = PlanStages(Uniform(10), 2, ParseSplit("0.6,0.4"), {}, 1);
  EXPECT_EQ(plan[0].last_layer, 6);
  plan = PlanStages(Uniform(10), 3, SplitRequest{}, {100, 100, 200}, 1);
  EXPECT_EQ(plan[0].last_layer, 2);  // 2.5 rounds to the nearer boundary first found
  EXPECT_EQ(plan[2].first_layer, 5);
  EXPECT_EQ(plan[2].last_layer, 10);
  // Uneven layers: the heavy first layer alone is half the bytes.
  ModelCosts c = Uniform(5);
  c.layer_bytes[0] = 400;
  plan = PlanStages(c, 2, SplitRequest{}, {1, 1}, 1);
  EXPECT_EQ(plan[0].last_layer, 1);
}

TEST(PlanTest, EveryStageKeepsALayer) {
  const auto plan = PlanStages(Uniform(3), 3, ParseSplit("0.98,0.01,0.01"), {}, 1);
  for (int r = 0; r < 3; ++r) EXPECT_EQ(plan[r].last_layer - plan[r].first_layer, 1) << r;
}

TEST(PlanTest, RejectsImpossiblePlans) {
  EXPECT_THROW(PlanStages(Uniform(16), 2, ParseSplit("10,5"), {}, 1), Error);  // sums to 15
  EXPECT_THROW(PlanStages(Uniform(16), 3, ParseSplit("10,6"), {}, 1), Error);  // 2 entries, 3 ranks
  EXPECT_THROW(PlanStages(Uniform(2), 3, SplitRequest{}, {}, 1), Error);  // more ranks than layers
  EXPECT_THROW(PlanStages(Uniform(4), 2, ParseSplit("4,0"), {}, 1), Error);
}

}  // namespace
}  // namespace origami::mpi
