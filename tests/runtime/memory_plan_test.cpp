// The memory plan's arithmetic, the budget and the refusal message, on a hand-made spec.
#include "runtime/memory_plan.h"

#include <gtest/gtest.h>

namespace origami {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kGiB = uint64_t{1} << 30;

// A llama-like shape: 8 layers, n_embd 1024, 16 heads of 64, 4 KV heads, n_ff 2816, byte vocab.
DecoderSpec Spec() {
  DecoderSpec s;
  s.n_embd = 1024;
  s.n_vocab = 259;
  LayerSpec l;
  l.n_head = 16;
  l.n_head_kv = 4;
  l.head_dim = 64;
  l.n_ff = 2816;
  s.layers.assign(8, l);
  return s;
}

TEST(MemoryPlan, KvIsBytesPerTokenTimesWholeBlocks) {
  MemoryRequest r;
  r.kv_tokens = 8192;
  const MemoryPlan p = PlanMemory(Spec(), {400 * kMiB, 0}, r);
  // f16: 8 layers x (K + V) x 4 heads x 64 x 2 bytes.
  EXPECT_EQ(p.kv_bytes_per_token, 8u * 2 * 256 * 2);
  EXPECT_EQ(p.kv, 8192u * 8192);
  EXPECT_EQ(p.weights, 400 * kMiB);
  r.kv_tokens = 8190;  // rounds up to a block of 16
  EXPECT_EQ(PlanMemory(Spec(), {}, r).kv, 8192u * 8192);
  r.kv_tokens = 8192;
  r.kv_types = {DType::kQ8_0, DType::kQ8_0};  // 34 bytes per 32 values
  EXPECT_EQ(PlanMemory(Spec(), {}, r).kv_bytes_per_token, 8u * 2 * 8 * 34);
  EXPECT_EQ(p.Dominant(), "weights");
  EXPECT_EQ(p.Total(), p.weights + p.kv + p.workspace + p.logits + p.requests + p.overhead);
}

TEST(MemoryPlan, WorkspaceFollowsTheBatchNotTheContextAlone) {
  MemoryRequest r;
  r.kv_tokens = 64;  // a step never holds more tokens than the context
  const uint64_t small = PlanMemory(Spec(), {}, r).workspace;
  r.kv_tokens = 4096;
  const uint64_t big = PlanMemory(Spec(), {}, r).workspace;
  // Decoder::Reserve for 512 tokens: 512 x (2e + e + 2q + 2kv + 2ff) floats = 512 x 11264 x 4.
  EXPECT_GE(big, 512u * 11264 * 4);
  EXPECT_LT(small, big / 4);
}

TEST(MemoryPlan, ServeCountsTheBatchLogitsAndRequests) {
  MemoryRequest r;
  r.mode = MemoryRequest::Mode::kServe;
  r.kv_tokens = 16384;
  r.max_seq_len = 4096;
  r.n_parallel = 4;
  r.http_threads = 64;
  const MemoryPlan p = PlanMemory(Spec(), {}, r);
  EXPECT_EQ(p.logits, 513u * 259 * 4);
  EXPECT_GT(p.requests, 4 * 256 * 1024u);
  EXPECT_LT(p.requests, 16 * kMiB);
  EXPECT_NE(p.Table().find("shared by 4 sequences"), std::string::npos) << p.Table();
}

// What serve keeps beyond its running sequences: the waiting requests' prompts and state, and the
// Responses store at about twice its bound of JSON text (parsed objects), bounded by the budget
// unless --responses-max-bytes says otherwise.
TEST(MemoryPlan, ServeCountsWaitingRequestsAndTheResponseStore) {
  MemoryRequest r;
  r.mode = MemoryRequest::Mode::kServe;
  r.kv_tokens = 16384;
  r.max_seq_len = 4096;
  r.n_parallel = 4;
  const uint64_t base = PlanMemory(Spec(), {}, r).requests;
  r.max_queue = 8;
  const uint64_t queued = PlanMemory(Spec(), {}, r).requests;
  EXPECT_EQ(queued - base, 8u * (4096 * 4 + 256 * 1024));
  r.responses_bytes = 10 * kMiB;
  const MemoryPlan p = PlanMemory(Spec(), {}, r);
  EXPECT_EQ(p.requests - queued, 20 * kMiB);
  EXPECT_NE(p.Table().find("8 waiting"), std::string::npos) << p.Table();
  EXPECT_NE(p.Table().find("responses store 10.0 MiB"), std::string::npos) << p.Table();
  EXPECT_EQ(DefaultResponseStoreBytes(20 * kGiB), 256 * kMiB);
  EXPECT_EQ(DefaultResponseStoreBytes(160 * kMiB), 10 * kMiB);
}

TEST(MemoryBudget, MemAvailableLessReserveOrTheCgroup) {
  MachineMemory m;
  m.meminfo.total = 24 * kGiB;
  m.meminfo.available = 20 * kGiB;
  MemoryBudget b = ComputeBudget(m, std::nullopt);  // reserve max(1 GiB, 5% of 24 GiB = 1.2 GiB)
  EXPECT_EQ(b.bytes, 20 * kGiB - 24 * kGiB / 20);
  EXPECT_NE(b.source.find("MemAvailable"), std::string::npos);
  b = ComputeBudget(m, 0);
  EXPECT_EQ(b.bytes, 20 * kGiB);
  m.cgroup.found = true;
  m.cgroup.limit = 256 * kMiB;
  m.cgroup.usage = 6 * kMiB;
  b = ComputeBudget(m, std::nullopt);  // the cgroup is ours alone: no reserve taken from it
  EXPECT_EQ(b.bytes, 250 * kMiB);
  EXPECT_NE(b.source.find("cgroup v1 limit 256.0 MiB"), std::string::npos) << b.source;
  m.cgroup.usage = 300 * kMiB;  // over the limit already: nothing left, not a wrap-around
  EXPECT_EQ(ComputeBudget(m, std::nullopt).bytes, 0u);
  m.meminfo.available = 512 * kMiB;  // below the reserve
  m.cgroup.limit.reset();
  EXPECT_EQ(ComputeBudget(m, std::nullopt).bytes, 0u);
}

TEST(MemoryPlan, RefusalGivesNumbersAndFlagsThatFit) {
  MemoryRequest r;
  r.kv_tokens = 65536;  // 512 MiB of f16 KV
  const WeightBytes w{100 * kMiB, 0};
  const DecoderSpec s = Spec();
  const MemoryPlan p = PlanMemory(s, w, r);
  const MemoryBudget b = ExplicitBudget(400 * kMiB);
  const std::string msg = RefusalMessage(s, w, p, b);
  EXPECT_NE(msg.find("largest part: KV cache"), std::string::npos) << msg;
  EXPECT_NE(msg.find("budget is 400.0 MiB (--mem-budget)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("would fit: -c "), std::string::npos) << msg;
  EXPECT_NE(msg.find("-ctk q4_0 -ctv q4_0"), std::string::npos)
      << msg;  // q8_0 is 272 MiB: too much
  // The suggested context fits and one more block does not.
  const size_t at = msg.find("-c ") + 3;
  const int c = std::stoi(msg.substr(at));
  r.kv_tokens = c;
  EXPECT_LE(PlanMemory(s, w, r).Total(), b.bytes);
  r.kv_tokens = c + 16;
  EXPECT_GT(PlanMemory(s, w, r).Total(), b.bytes);
  EXPECT_EQ(RefusalMessage(s, w, PlanMemory(s, w, MemoryRequest{}), ExplicitBudget(8 * kGiB)), "");
  // Weights alone too big: nothing fits, said so.
  const std::string none = RefusalMessage(s, {kGiB, 0}, PlanMemory(s, {kGiB, 0}, r), b);
  EXPECT_NE(none.find("nothing fits"), std::string::npos) << none;
  EXPECT_NE(none.find("largest part: weights"), std::string::npos) << none;
}

TEST(MemoryPlan, LargestFitting) {
  EXPECT_EQ(LargestFitting(1, 100, 50, [](int64_t x) { return static_cast<uint64_t>(x); }), 50);
  EXPECT_EQ(LargestFitting(1, 100, 500, [](int64_t x) { return static_cast<uint64_t>(x); }), 100);
  EXPECT_EQ(LargestFitting(1, 100, 0, [](int64_t x) { return static_cast<uint64_t>(x); }), 0);
}

}  // namespace
}  // namespace origami
