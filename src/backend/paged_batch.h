// The paged KV storage as a backend addresses it, and a batch as the decoder hands it to a
// backend: flat arrays of tokens, positions and sequences, and each sequence's block table. The
// block bookkeeping (refcounts, prefix index, eviction) stays with the KV pool above; a backend
// sees only where rows live.
#pragma once

#include <cstdint>
#include <vector>

#include "tensor/dtype.h"

namespace origami {

// The storage types of the K and V rows (-ctk / -ctv).
struct KvTypes {
  DType k = DType::kF16;
  DType v = DType::kF16;
};

// Where every layer's K and V rows live. A layer's rows are [slots, block_size, row] in its own
// region; a slot is a block id, or for a sliding-window layer the block's window part.
struct KvLayout {
  struct Layer {
    uint8_t* k = nullptr;
    uint8_t* v = nullptr;
    size_t k_row_bytes = 0, v_row_bytes = 0;  // n_head_kv * head_dim elements in types.k / types.v
    size_t k_head_bytes = 0, v_head_bytes = 0;  // one head's share of a row
    bool sliding = false;                       // rows live in window parts
  };
  KvTypes types;
  int block_shift = 0;  // log2 of the block size
  std::vector<Layer> layers;
};

// A batch of tokens (at most the decoder's kMaxBatch), flat. Tokens of one sequence are at
// consecutive positions, in order; a batch may mix many sequences.
struct PagedBatch {
  int n = 0;
  const int32_t* token = nullptr;  // [n]
  const int64_t* pos = nullptr;    // [n]
  const int32_t* seq = nullptr;    // [n]: index into the per-sequence arrays
  const uint8_t* logits = nullptr; // [n]: 1 where the token's logits are wanted
  int n_seq = 0;
  const KvLayout* const* kv = nullptr;  // [n_seq]: the storage each sequence's rows live in
  const int32_t* table_begin = nullptr; // [n_seq + 1]: the sequence's entries in block / window
  const int32_t* block = nullptr;       // block id of each table entry
  const int32_t* window = nullptr;      // window part of each table entry (-1: none held)

  // Row `p` of token t's sequence in layer il (K or V), as stored.
  uint8_t* K(int il, int t, int64_t p) const { return Row(il, t, p, true); }
  uint8_t* V(int il, int t, int64_t p) const { return Row(il, t, p, false); }
  const KvLayout& Kv(int t) const { return *kv[seq[t]]; }

 private:
  uint8_t* Row(int il, int t, int64_t p, bool k) const {
    const int s = seq[t];
    const KvLayout& kv_s = *kv[s];
    const KvLayout::Layer& l = kv_s.layers[il];
    const int32_t e = table_begin[s] + static_cast<int32_t>(p >> kv_s.block_shift);
    const int64_t slot = l.sliding ? window[e] : block[e];
    const int64_t row = (slot << kv_s.block_shift) | (p & ((int64_t{1} << kv_s.block_shift) - 1));
    return k ? l.k + row * static_cast<int64_t>(l.k_row_bytes) : l.v + row * static_cast<int64_t>(l.v_row_bytes);
  }
};

// The arrays behind a PagedBatch, reused from step to step.
struct PagedBatchTables {
  std::vector<int32_t> token, seq, table_begin, block, window;
  std::vector<int64_t> pos;
  std::vector<uint8_t> logits;
  std::vector<const KvLayout*> kv;

  PagedBatchTables() { Clear(); }
  void Clear() {
    token.clear(), seq.clear(), table_begin.assign(1, 0), block.clear(), window.clear();
    pos.clear(), logits.clear(), kv.clear();
  }
  PagedBatch View() const {
    PagedBatch b;
    b.n = static_cast<int>(token.size());
    b.token = token.data(), b.pos = pos.data(), b.seq = seq.data(), b.logits = logits.data();
    b.n_seq = static_cast<int>(kv.size());
    b.kv = kv.data(), b.table_begin = table_begin.data(), b.block = block.data(), b.window = window.data();
    return b;
  }
};

}  // namespace origami
