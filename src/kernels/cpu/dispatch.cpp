// The one ISA dispatch point: CPU feature detection and the per-ISA kernel tables.
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "kernels/cpu/kernels.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/ref/attn_tile_ref.h"
#include "kernels/cpu/ref/vec_dot_mxfp4.h"
#include "kernels/cpu/ref/vec_dot_nvfp4.h"
#include "kernels/cpu/ref/vec_dot_ref.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>

#include "kernels/cpu/x86/x86_kernels.h"
#define ORIGAMI_X86 1
#elif defined(__aarch64__)
#include <sys/auxv.h>

#include "kernels/cpu/arm/arm_kernels.h"
#define ORIGAMI_ARM 1
#endif

namespace origami::cpu {

namespace {

struct CpuFeatures {
  bool avx2 = false;    // AVX2 + FMA + F16C with the OS saving YMM state
  bool avx512 = false;  // F + BW + VL + DQ + VNNI with the OS saving ZMM and opmask state
  bool neon_dot = false;
};

#if defined(ORIGAMI_X86)
uint64_t XGetBv0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}
#endif

CpuFeatures Detect() {
  CpuFeatures f;
#if defined(ORIGAMI_X86)
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = c & (1u << 27), avx = c & (1u << 28), fma = c & (1u << 12), f16c = c & (1u << 29);
  if (!osxsave || !avx) return f;
  const uint64_t xcr0 = XGetBv0();
  const bool ymm_saved = (xcr0 & 0x6) == 0x6;            // SSE and AVX state
  const bool zmm_saved = (xcr0 & 0xe6) == 0xe6;          // plus opmask, ZMM_Hi256, Hi16_ZMM
  if (__get_cpuid_max(0, nullptr) < 7) return f;
  __cpuid_count(7, 0, a, b, c, d);
  const bool avx2 = b & (1u << 5), bmi2 = b & (1u << 8);
  const bool f512 = b & (1u << 16), dq = b & (1u << 17), bw = b & (1u << 30), vl = b & (1u << 31);
  const bool vnni = c & (1u << 11);
  f.avx2 = ymm_saved && avx2 && fma && f16c && bmi2;
  f.avx512 = f.avx2 && zmm_saved && f512 && dq && bw && vl && vnni;
#elif defined(ORIGAMI_ARM)
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
  f.neon_dot = (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#endif
  return f;
}

const CpuFeatures& Features() {
  static const CpuFeatures f = Detect();
  return f;
}

void Set(KernelTable& t, DType w, DType act, VecDotFn dot, VecDotRowsFn rows = nullptr,
         VecDotTileFn tile = nullptr) {
  t.weights[static_cast<uint32_t>(w)] = TypeKernels{act, dot, rows, tile};
}

KernelTable ScalarTable() {
  KernelTable t;
  t.isa = Isa::kScalar;
  Set(t, DType::kF32, DType::kF32, ref::VecDotF32);
  Set(t, DType::kF16, DType::kF32, ref::VecDotF16);
  Set(t, DType::kBF16, DType::kF32, ref::VecDotBF16);
  Set(t, DType::kQ4_0, DType::kQ8_0, ref::VecDotQ4_0);
  Set(t, DType::kQ5_0, DType::kQ8_0, ref::VecDotQ5_0);
  Set(t, DType::kQ8_0, DType::kQ8_0, ref::VecDotQ8_0);
  Set(t, DType::kQ4_1, DType::kQ8_1, ref::VecDotQ4_1);
  Set(t, DType::kQ5_1, DType::kQ8_1, ref::VecDotQ5_1);
  Set(t, DType::kQ2_K, DType::kQ8_K, ref::VecDotQ2_K);
  Set(t, DType::kQ3_K, DType::kQ8_K, ref::VecDotQ3_K);
  Set(t, DType::kQ4_K, DType::kQ8_K, ref::VecDotQ4_K);
  Set(t, DType::kQ5_K, DType::kQ8_K, ref::VecDotQ5_K);
  Set(t, DType::kQ6_K, DType::kQ8_K, ref::VecDotQ6_K);
  // MXFP4 pairs with Q8_0 activations, as in ggml: the E2M1 values are small integers, so the block
  // dot product is exact in int32 (ref::VecDotMxfp4 with F32 activations stays as the oracle).
  Set(t, DType::kMXFP4, DType::kQ8_0, ref::VecDotMxfp4Q8_0);
  // NVFP4 likewise (ggml's vec_dot_type for it is Q8_0); its per-16 scales are applied per sub-block.
  Set(t, DType::kNVFP4, DType::kQ8_0, ref::VecDotNvfp4Q8_0);
  t.quantize[static_cast<uint32_t>(DType::kF32)] = ref::QuantizeActF32;
  t.quantize[static_cast<uint32_t>(DType::kQ8_0)] = ref::QuantizeActQ8_0;
  t.quantize[static_cast<uint32_t>(DType::kQ8_1)] = ref::QuantizeActQ8_1;
  t.quantize[static_cast<uint32_t>(DType::kQ8_K)] = ref::QuantizeActQ8_K;
  for (DType kv : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0}) {
    t.attn[static_cast<uint32_t>(kv)] = AttnRef(kv);
    t.attn[static_cast<uint32_t>(kv)].keys = ref::AttnKeysRef(kv);
    t.attn[static_cast<uint32_t>(kv)].rows = ref::AttnRowsRef(kv);
  }
  t.attn_tile = {ref::AttnTileScores, ref::AttnExpStep, ref::AttnRowValues};
  return t;
}

#if defined(ORIGAMI_X86)
// Types without an AVX2 kernel keep the scalar one.
KernelTable Avx2Table() {
  KernelTable t = ScalarTable();
  t.isa = Isa::kAvx2;
  Set(t, DType::kF32, DType::kF32, x86::VecDotF32Avx2, x86::VecDotRowsF32Avx2);
  Set(t, DType::kF16, DType::kF32, x86::VecDotF16Avx2, x86::VecDotRowsF16Avx2, x86::VecDotTileF16Avx2);
  Set(t, DType::kBF16, DType::kF32, x86::VecDotBF16Avx2, x86::VecDotRowsBF16Avx2, x86::VecDotTileBF16Avx2);
  Set(t, DType::kQ4_0, DType::kQ8_0, x86::VecDotQ4_0Avx2, x86::VecDotRowsQ4_0Avx2, x86::VecDotTileQ4_0Avx2);
  Set(t, DType::kQ8_0, DType::kQ8_0, x86::VecDotQ8_0Avx2, x86::VecDotRowsQ8_0Avx2);
  Set(t, DType::kQ4_K, DType::kQ8_K, x86::VecDotQ4_KAvx2, x86::VecDotRowsQ4_KAvx2, x86::VecDotTileQ4_KAvx2);
  Set(t, DType::kQ6_K, DType::kQ8_K, x86::VecDotQ6_KAvx2, x86::VecDotRowsQ6_KAvx2);
  Set(t, DType::kMXFP4, DType::kQ8_0, x86::VecDotMxfp4Avx2, x86::VecDotRowsMxfp4Avx2, x86::VecDotTileMxfp4Avx2);
  Set(t, DType::kNVFP4, DType::kQ8_0, x86::VecDotNvfp4Avx2, x86::VecDotRowsNvfp4Avx2, x86::VecDotTileNvfp4Avx2);
  t.quantize[static_cast<uint32_t>(DType::kQ8_0)] = x86::QuantizeQ8_0Avx2;
  t.quantize[static_cast<uint32_t>(DType::kQ8_K)] = x86::QuantizeQ8_KAvx2;
  t.attn[static_cast<uint32_t>(DType::kF32)] = {x86::AttnScoresAvx2, x86::AttnValuesAvx2, x86::AttnKeysF32Avx2,
                                                 x86::AttnRowsF32Avx2};
  t.attn[static_cast<uint32_t>(DType::kF16)] = {x86::AttnScoresF16Avx2, x86::AttnValuesF16Avx2, x86::AttnKeysF16Avx2,
                                                 x86::AttnRowsF16Avx2};
  t.attn[static_cast<uint32_t>(DType::kBF16)] = {x86::AttnScoresBF16Avx2, x86::AttnValuesBF16Avx2,
                                                  x86::AttnKeysBF16Avx2, x86::AttnRowsBF16Avx2};
  t.attn[static_cast<uint32_t>(DType::kQ8_0)] = {x86::AttnScoresQ8_0Avx2, x86::AttnValuesQ8_0Avx2,
                                                  x86::AttnKeysQ8_0Avx2, x86::AttnRowsQ8_0Avx2};
  t.attn[static_cast<uint32_t>(DType::kQ4_0)] = {x86::AttnScoresQ4_0Avx2, x86::AttnValuesQ4_0Avx2,
                                                  x86::AttnKeysQ4_0Avx2, x86::AttnRowsQ4_0Avx2};
  t.attn_tile = {x86::AttnTileScoresAvx2, x86::AttnExpStepAvx2, x86::AttnRowValuesAvx2};
  // Q4_0 and Q8_0 matrices are repacked at load for these (Model::PrepareWeights).
  t.q4_0x8 = TypeKernels{DType::kQ8_0, nullptr, x86::VecDotRowsQ4_0x8Avx2, x86::VecDotTileQ4_0x8Avx2};
  t.q8_0x8 = TypeKernels{DType::kQ8_0, nullptr, x86::VecDotRowsQ8_0x8Avx2, x86::VecDotTileQ8_0x8Avx2};
  // Q4_K and Q6_K likewise (Q4_Kx8, Q6_Kx8); the AVX-512 table inherits all four.
  t.q4_kx8 = TypeKernels{DType::kQ8_K, nullptr, x86::VecDotRowsQ4_Kx8Avx2, x86::VecDotTileQ4_Kx8Avx2};
  t.q6_kx8 = TypeKernels{DType::kQ8_K, nullptr, x86::VecDotRowsQ6_Kx8Avx2, x86::VecDotTileQ6_Kx8Avx2};
  return t;
}

KernelTable Avx512Table() {
  KernelTable t = Avx2Table();
  t.isa = Isa::kAvx512;
  // The AVX2 prefill tiles stay where this ISA has no tile of its own.
  Set(t, DType::kQ4_0, DType::kQ8_0, x86::VecDotQ4_0Avx512, x86::VecDotRowsQ4_0Avx512, x86::VecDotTileQ4_0Avx2);
  Set(t, DType::kQ8_0, DType::kQ8_0, x86::VecDotQ8_0Avx512, x86::VecDotRowsQ8_0Avx512);
  Set(t, DType::kBF16, DType::kF32, x86::VecDotBF16Avx512, nullptr, x86::VecDotTileBF16Avx2);
  return t;
}
#endif

#if defined(ORIGAMI_ARM)
KernelTable NeonTable() {
  KernelTable t = ScalarTable();
  t.isa = Isa::kNeon;
  Set(t, DType::kQ4_0, DType::kQ8_0, arm::VecDotQ4_0Neon, arm::VecDotRowsQ4_0Neon);
  Set(t, DType::kQ8_0, DType::kQ8_0, arm::VecDotQ8_0Neon, arm::VecDotRowsQ8_0Neon);
  Set(t, DType::kMXFP4, DType::kQ8_0, arm::VecDotMxfp4Neon, arm::VecDotRowsMxfp4Neon);
  // The flash path's converters and tile kernels stay the portable ones (ScalarTable) on ARM.
  auto neon_attn = [&t](DType kv, AttnScoresFn scores, AttnValuesFn values) {
    AttnKernels& a = t.attn[static_cast<uint32_t>(kv)];
    a.scores = scores;
    a.values = values;
  };
  neon_attn(DType::kF32, arm::AttnScoresF32Neon, arm::AttnValuesF32Neon);
  neon_attn(DType::kF16, arm::AttnScoresF16Neon, arm::AttnValuesF16Neon);
  neon_attn(DType::kBF16, arm::AttnScoresBF16Neon, arm::AttnValuesBF16Neon);
  neon_attn(DType::kQ8_0, arm::AttnScoresQ8_0Neon, arm::AttnValuesQ8_0Neon);
  neon_attn(DType::kQ4_0, arm::AttnScoresQ4_0Neon, arm::AttnValuesQ4_0Neon);
  return t;
}
#endif

bool Runnable(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return true;
    case Isa::kAvx2: return Features().avx2;
    case Isa::kAvx512: return Features().avx512;
    case Isa::kNeon: return Features().neon_dot;
  }
  return false;
}

bool ParseIsa(const char* s, Isa* out) {
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kNeon}) {
    if (std::strcmp(s, IsaName(isa)) == 0) {
      *out = isa;
      return true;
    }
  }
  return false;
}

}  // namespace

const char* IsaName(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return "scalar";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
    case Isa::kNeon: return "neon";
  }
  return "?";
}

std::vector<Isa> AvailableIsas() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kNeon})
    if (KernelsFor(isa)) out.push_back(isa);
  return out;
}

const KernelTable* KernelsFor(Isa isa) {
  if (!Runnable(isa)) return nullptr;
  switch (isa) {
    case Isa::kScalar: {
      static const KernelTable t = ScalarTable();
      return &t;
    }
#if defined(ORIGAMI_X86)
    case Isa::kAvx2: {
      static const KernelTable t = Avx2Table();
      return &t;
    }
    case Isa::kAvx512: {
      static const KernelTable t = Avx512Table();
      return &t;
    }
#endif
#if defined(ORIGAMI_ARM)
    case Isa::kNeon: {
      static const KernelTable t = NeonTable();
      return &t;
    }
#endif
    default: return nullptr;
  }
}

Isa SelectIsa(const char* requested) {
  const Isa best = AvailableIsas().back();
  if (!requested || !*requested) return best;
  Isa want;
  if (!ParseIsa(requested, &want)) {
    std::fprintf(stderr, "origami: unknown ISA %s (scalar|avx2|avx512|neon); using %s\n", requested,
                 IsaName(best));
    return best;
  }
  if (!KernelsFor(want)) {
    std::fprintf(stderr, "origami: ISA %s is not available on this CPU; using %s\n", requested,
                 IsaName(best));
    return best;
  }
  return want;
}

const KernelTable& Kernels() {
  static const KernelTable* const table = KernelsFor(SelectIsa(nullptr));
  return *table;
}

}  // namespace origami::cpu
