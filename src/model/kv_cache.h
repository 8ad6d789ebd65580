// The paged KV cache: a KvPool of fixed-size blocks shared by every sequence, with a prefix index
// (full blocks keyed by their tokens and their parent block) and refcounts, and a KvCache per
// sequence that maps positions to blocks through its block table. K and V rows are stored in a KV
// type each (KvTypes: F16 by default, as llama.cpp's; BF16, Q8_0, Q4_0, or F32, which is exact),
// and attention reads them in that type.
//
// Sliding-window layers (LayerSpec::sliding_window > 0) keep their rows in a second space of
// "window parts": each block id names its full-attention rows and, while anyone needs them, one
// window part holding its sliding layers' rows. A paged cache drops its hold on the window parts of
// blocks wholly before its window as it grows, so a long sequence holds only about
// window / block_size window parts. A dropped part of a block in the prefix index stays attached
// (reclaimable, like the index's LRU) until the window space runs short; a block whose part was
// reclaimed no longer matches in Lookup, because a sequence reusing it would miss those rows.
#pragma once

#include <algorithm>
#include <cstdint>
#include <list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "backend/backend.h"
#include "backend/paged_batch.h"
#include "model/spec.h"
#include "tensor/dtype.h"
#include "util/mapped_file.h"

namespace origami {

// Parses a KV type name as llama.cpp's -ctk/-ctv take it (f32, f16, bf16, q8_0, q4_0; any case).
// Throws origami::Error naming `flag` and the allowed names otherwise.
DType ParseKvType(std::string_view name, std::string_view flag);
// "f16" etc., as ParseKvType reads it.
std::string KvTypeName(DType t);
// Throws origami::Error when a type cannot store this model's heads: quantized rows are read per
// head in whole blocks of 32, so every head size must be a multiple of 32. draft: name the draft
// model's flags (-ctkd/-ctvd) in the message.
void CheckKvTypes(const DecoderSpec& spec, KvTypes types, bool draft = false);
// Bytes of K and V one position takes over every layer of `spec` (layers with no KV heads take none).
uint64_t KvBytesPerToken(const DecoderSpec& spec, KvTypes types);

class KvPool {
 public:
  static constexpr int kDefaultBlockSize = 16;

  // n_blocks blocks of block_size positions (block_size: a power of two), and n_window_blocks
  // window parts for the sliding layers (-1: n_blocks, so the window space never runs short
  // before the main one; fewer saves memory when the number of live sequences is bounded).
  // The rows live in `backend`'s KV memory (null: host memory).
  KvPool(const DecoderSpec& spec, int n_blocks, int block_size = kDefaultBlockSize, int n_window_blocks = -1,
         KvTypes types = {}, Backend* backend = nullptr);

  int block_size() const { return block_size_; }
  int block_shift() const { return shift_; }
  int n_blocks() const { return static_cast<int>(blocks_.size()); }
  // Blocks that Allocate can hand out: free ones plus cached ones nobody holds (evicted LRU-first).
  int n_available() const {
    const int main = static_cast<int>(free_.size() + lru_.size());
    if (window_ == 0) return main;
    return std::min(main, static_cast<int>(win_free_.size() + win_lru_.size()));
  }
  int n_in_use() const { return n_blocks() - n_available(); }
  int n_cached() const { return n_cached_; }
  bool indexed(int block) const { return blocks_[block].indexed; }
  int refcount(int block) const { return blocks_[block].ref; }
  // The widest sliding window of any layer (0: no sliding layers, no window space).
  int window() const { return window_; }
  int n_window_blocks() const { return static_cast<int>(win_owner_.size()); }
  // Window parts someone holds (not free, not merely cached with an indexed block).
  int n_window_in_use() const {
    return n_window_blocks() - static_cast<int>(win_free_.size() + win_lru_.size());
  }
  bool has_window_part(int block) const { return blocks_[block].win >= 0; }

  // A block with refcount 1, or -1 when every block is held.
  int Allocate();
  void Retain(int block);
  // Drops one reference; at zero the block becomes free, or stays in the prefix index (evictable).
  void Release(int block);
  // Window holds (pools with sliding layers): Allocate gives the new block's window part with one
  // hold; HoldWindow adds one (the block must still have its part), DropWindow removes one. At
  // zero holds the part is freed, or, for an indexed block, stays attached until reclaimed.
  void HoldWindow(int block);
  void DropWindow(int block);

  // Prefix index. A block is identified by its tokens and the block before it (parent -1: the
  // first block of a sequence); each registration gets a new epoch, so a child of an evicted and
  // reused parent never matches. Lookup returns a retained block or -1.
  int Lookup(int parent, std::span<const int32_t> tokens);
  // Publishes a full, computed block. False when an equal block is already indexed (the caller
  // keeps its private copy) or the block is already indexed.
  bool Register(int block, int parent, std::span<const int32_t> tokens);

  // Rows of [n_head_kv * head_dim] elements in types().k / types().v; head h starts at
  // h * KHeadBytes(layer) (VHeadBytes). A sliding layer's rows live in the block's window part.
  uint8_t* K(int layer, int block, int offset) {
    return layout_.layers[layer].k + Row(Slot(layer, block), offset) * layout_.layers[layer].k_row_bytes;
  }
  uint8_t* V(int layer, int block, int offset) {
    return layout_.layers[layer].v + Row(Slot(layer, block), offset) * layout_.layers[layer].v_row_bytes;
  }
  KvTypes types() const { return layout_.types; }
  size_t KHeadBytes(int layer) const { return layout_.layers[layer].k_head_bytes; }
  size_t VHeadBytes(int layer) const { return layout_.layers[layer].v_head_bytes; }
  // Where the rows live, as a backend addresses them (a batch's block tables index into it).
  const KvLayout& layout() const { return layout_; }
  // The window part a block's sliding-layer rows live in (-1: none, or no sliding layers).
  int WindowPart(int block) const { return blocks_[block].win; }
  uint64_t Bytes() const;
  // The pool's bytes split three ways (they add up to Bytes(), less the alignment padding):
  // rows of blocks and window parts that sequences hold, rows kept only by the prefix index
  // (reclaimable on demand), and the free rest.
  uint64_t BytesInUse() const {
    const uint64_t held = blocks_.size() - free_.size() - lru_.size();
    return held * main_block_bytes_ + static_cast<uint64_t>(n_window_in_use()) * win_block_bytes_;
  }
  uint64_t BytesCachedOnly() const {
    return lru_.size() * main_block_bytes_ + win_lru_.size() * win_block_bytes_;
  }
  // Bytes of one block's full-attention rows, and of one window part.
  uint64_t BlockBytes() const { return main_block_bytes_; }
  uint64_t WindowPartBytes() const { return win_block_bytes_; }

 private:
  struct Block {
    int ref = 0;
    bool indexed = false;
    uint32_t epoch = 0;
    int parent = -1;
    uint32_t parent_epoch = 0;
    uint64_t key = 0;
    std::vector<int32_t> tokens;
    std::list<int>::iterator lru_it;
    int win = -1;      // window part id, -1: none (no sliding layers, or dropped/reclaimed)
    int win_hold = 0;  // caches that still need the window part
    std::list<int>::iterator win_lru_it;
  };
  int Slot(int layer, int block) const { return layout_.layers[layer].sliding ? blocks_[block].win : block; }
  // Position index of a row within its layer's region.
  int64_t Row(int block, int offset) const { return static_cast<int64_t>(block) * block_size_ + offset; }
  uint64_t Key(int parent, std::span<const int32_t> tokens) const;
  void Unindex(int block);
  void FreeWindowPart(int block);  // detaches and frees a part nobody holds

  int block_size_;
  int shift_;
  KvLayout layout_;  // per layer: where K and V rows start, row and head bytes, sliding or not
  // Every layer's K and V in one anonymous mapping: pages are zero until written, so a pool sized
  // for the whole context costs memory (and start-up time) only for the positions in use.
  std::unique_ptr<KvMemory> mem_;  // per layer: [n_blocks (or window parts), block_size, row]
  std::vector<Block> blocks_;
  std::vector<int> free_;
  std::list<int> lru_;  // indexed blocks with refcount 0, oldest first
  std::unordered_multimap<uint64_t, int> index_;
  int n_cached_ = 0;
  // Window space (empty when no layer has a sliding window).
  int window_ = 0;
  std::vector<int> win_owner_;      // per window part: the block it is attached to, -1 when free
  std::vector<int> win_free_;
  std::list<int> win_lru_;        // blocks with an attached part and no holds, oldest first
  uint64_t main_block_bytes_ = 0, win_block_bytes_ = 0;
};

// One sequence's view of the pool. The decoder only uses K, V and n_ctx; the scheduler grows the
// block table before each step (positions written must be in blocks this cache owns privately).
class KvCache {
 public:
  // A standalone cache (Session): a private pool with every block of n_ctx positions mapped.
  KvCache(const DecoderSpec& spec, int n_ctx, KvTypes types = {}, Backend* backend = nullptr);
  // A paged cache over a shared pool; blocks are added with Grow / AppendShared.
  KvCache(KvPool& pool, int n_ctx);
  ~KvCache();
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;

  int n_ctx() const { return n_ctx_; }
  // The position's K or V row of a layer, in the pool's KV types.
  uint8_t* K(int layer, int64_t pos) { return pool_->K(layer, Block(pos), Offset(pos)); }
  uint8_t* V(int layer, int64_t pos) { return pool_->V(layer, Block(pos), Offset(pos)); }
  const uint8_t* K(int layer, int64_t pos) const { return pool_->K(layer, Block(pos), Offset(pos)); }
  const uint8_t* V(int layer, int64_t pos) const { return pool_->V(layer, Block(pos), Offset(pos)); }
  const KvPool& pool() const { return *pool_; }
  uint64_t Bytes() const;

  // Positions covered by the block table.
  int64_t capacity() const { return static_cast<int64_t>(table_.size()) << pool_->block_shift(); }
  const std::vector<int>& blocks() const { return table_; }
  KvPool& pool() { return *pool_; }
  // Maps blocks until positions [0, n) are covered; false (no block added) when the pool is short.
  // A paged cache takes each Grow as saying that every position below the previous successful
  // Grow's bound is computed and that later queries are at or after it (how the engine steps), so
  // it first drops its holds on window parts that no such query can see.
  bool Grow(int64_t n);
  // Appends a block the caller already retained (a prefix-cache hit); the cache now owns that ref
  // (and takes a hold on the block's window part, if the pool has sliding layers).
  void AppendShared(int block);
  // Releases every block.
  void Clear();
  // Leading blocks whose window parts this cache no longer holds.
  int n_window_dropped() const { return win_from_; }

 private:
  int Block(int64_t pos) const { return table_[static_cast<size_t>(pos >> pool_->block_shift())]; }
  int Offset(int64_t pos) const { return static_cast<int>(pos & (pool_->block_size() - 1)); }

  std::unique_ptr<KvPool> owned_;
  KvPool* pool_;
  int n_ctx_;
  std::vector<int> table_;
  int win_from_ = 0;   // table entries below this have had their window holds dropped
  int64_t grown_ = 0;  // the largest bound a Grow succeeded with
};

}  // namespace origami
