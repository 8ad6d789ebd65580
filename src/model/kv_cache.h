// The paged KV cache: a KvPool of fixed-size blocks shared by every sequence, with a prefix index
// (full blocks keyed by their tokens and their parent block) and refcounts, and a KvCache per
// sequence that maps positions to blocks through its block table. K/V are float32 (exact; the
// decoder's golden tests hold logits to 1e-4).
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <span>
#include <unordered_map>
#include <vector>

#include "model/spec.h"

namespace origami {

class KvPool {
 public:
  static constexpr int kDefaultBlockSize = 16;

  // n_blocks blocks of block_size positions (block_size: a power of two).
  KvPool(const DecoderSpec& spec, int n_blocks, int block_size = kDefaultBlockSize);

  int block_size() const { return block_size_; }
  int block_shift() const { return shift_; }
  int n_blocks() const { return static_cast<int>(blocks_.size()); }
  // Blocks that Allocate can hand out: free ones plus cached ones nobody holds (evicted LRU-first).
  int n_available() const { return static_cast<int>(free_.size() + lru_.size()); }
  int n_in_use() const { return n_blocks() - n_available(); }
  int n_cached() const { return n_cached_; }
  bool indexed(int block) const { return blocks_[block].indexed; }
  int refcount(int block) const { return blocks_[block].ref; }

  // A block with refcount 1, or -1 when every block is held.
  int Allocate();
  void Retain(int block);
  // Drops one reference; at zero the block becomes free, or stays in the prefix index (evictable).
  void Release(int block);

  // Prefix index. A block is identified by its tokens and the block before it (parent -1: the
  // first block of a sequence); each registration gets a new epoch, so a child of an evicted and
  // reused parent never matches. Lookup returns a retained block or -1.
  int Lookup(int parent, std::span<const int32_t> tokens);
  // Publishes a full, computed block. False when an equal block is already indexed (the caller
  // keeps its private copy) or the block is already indexed.
  bool Register(int block, int parent, std::span<const int32_t> tokens);

  // Rows of [n_head_kv * head_dim] floats.
  float* K(int layer, int block, int offset) {
    return k_[layer].data() + Row(layer, block, offset);
  }
  float* V(int layer, int block, int offset) {
    return v_[layer].data() + Row(layer, block, offset);
  }
  uint64_t Bytes() const;

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
  };
  int64_t Row(int layer, int block, int offset) const {
    return (static_cast<int64_t>(block) * block_size_ + offset) * row_[layer];
  }
  uint64_t Key(int parent, std::span<const int32_t> tokens) const;
  void Unindex(int block);

  int block_size_;
  int shift_;
  std::vector<int64_t> row_;               // per layer: n_head_kv * head_dim
  std::vector<std::vector<float>> k_, v_;  // per layer: [n_blocks, block_size, row]
  std::vector<Block> blocks_;
  std::vector<int> free_;
  std::list<int> lru_;  // indexed blocks with refcount 0, oldest first
  std::unordered_multimap<uint64_t, int> index_;
  int n_cached_ = 0;
};

// One sequence's view of the pool. The decoder only uses K, V and n_ctx; the scheduler grows the
// block table before each step (positions written must be in blocks this cache owns privately).
class KvCache {
 public:
  // A standalone cache (Session): a private pool with every block of n_ctx positions mapped.
  KvCache(const DecoderSpec& spec, int n_ctx);
  // A paged cache over a shared pool; blocks are added with Grow / AppendShared.
  KvCache(KvPool& pool, int n_ctx);
  ~KvCache();
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;

  int n_ctx() const { return n_ctx_; }
  float* K(int layer, int64_t pos) { return pool_->K(layer, Block(pos), Offset(pos)); }
  float* V(int layer, int64_t pos) { return pool_->V(layer, Block(pos), Offset(pos)); }
  const float* K(int layer, int64_t pos) const { return pool_->K(layer, Block(pos), Offset(pos)); }
  const float* V(int layer, int64_t pos) const { return pool_->V(layer, Block(pos), Offset(pos)); }
  uint64_t Bytes() const;

  // Positions covered by the block table.
  int64_t capacity() const { return static_cast<int64_t>(table_.size()) << pool_->block_shift(); }
  const std::vector<int>& blocks() const { return table_; }
  KvPool& pool() { return *pool_; }
  // Maps blocks until positions [0, n) are covered; false (nothing changed) when the pool is short.
  bool Grow(int64_t n);
  // Appends a block the caller already retained (a prefix-cache hit); the cache now owns that ref.
  void AppendShared(int block) { table_.push_back(block); }
  // Releases every block.
  void Clear();

 private:
  int Block(int64_t pos) const { return table_[static_cast<size_t>(pos >> pool_->block_shift())]; }
  int Offset(int64_t pos) const { return static_cast<int>(pos & (pool_->block_size() - 1)); }

  std::unique_ptr<KvPool> owned_;
  KvPool* pool_;
  int n_ctx_;
  std::vector<int> table_;
};

}  // namespace origami
