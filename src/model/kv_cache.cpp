// KvPool (blocks, refcounts, prefix index) and KvCache (a sequence's block table).
#include "model/kv_cache.h"

#include <algorithm>
#include <bit>
#include <cctype>
#include <utility>

#include "util/error.h"

namespace origami {

DType ParseKvType(std::string_view name, std::string_view flag) {
  for (DType t : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0}) {
    const std::string n = KvTypeName(t);
    if (name.size() == n.size() &&
        std::equal(name.begin(), name.end(), n.begin(), [](char a, char b) { return std::tolower(a) == b; }))
      return t;
  }
  Fail("{}: unknown KV cache type '{}' (f32, f16, bf16, q8_0, q4_0)", flag, name);
}

std::string KvTypeName(DType t) {
  std::string n = TypeName(t);
  for (char& c : n) c = static_cast<char>(std::tolower(c));
  return n;
}

void CheckKvTypes(const DecoderSpec& spec, KvTypes types, bool draft) {
  for (bool is_v : {false, true}) {
    const DType t = is_v ? types.v : types.k;
    const char* flag = draft ? (is_v ? "-ctvd/--cache-type-v-draft" : "-ctkd/--cache-type-k-draft")
                             : (is_v ? "-ctv/--cache-type-v" : "-ctk/--cache-type-k");
    const int64_t bs = Traits(t).block_size;
    for (size_t il = 0; il < spec.layers.size(); ++il) {
      const LayerSpec& l = spec.layers[il];
      const int hd = is_v ? l.v_dim() : l.head_dim;
      if (l.n_head_kv > 0 && hd % bs != 0)
        Fail("{} {} stores heads in blocks of {} values, but layer {} of this model has a head size of {} "
             "(use f16 or bf16)",
             flag, KvTypeName(t), bs, il, hd);
    }
  }
}

uint64_t KvBytesPerToken(const DecoderSpec& spec, KvTypes types) {
  uint64_t b = 0;
  for (const auto& l : spec.layers) {
    const int64_t row = static_cast<int64_t>(l.n_head_kv) * l.head_dim;
    const int64_t v_row = static_cast<int64_t>(l.n_head_kv) * l.v_dim();
    if (row > 0) b += RowBytes(types.k, row) + RowBytes(types.v, v_row);
  }
  return b;
}

KvPool::KvPool(const DecoderSpec& spec, int n_blocks, int block_size, int n_window_blocks, KvTypes types,
               Backend* backend)
    : block_size_(block_size) {
  if (n_blocks <= 0) Fail("KV pool needs at least one block, got {}", n_blocks);
  if (block_size <= 0 || !std::has_single_bit(static_cast<unsigned>(block_size)))
    Fail("KV block size must be a power of two, got {}", block_size);
  CheckKvTypes(spec, types);
  shift_ = std::countr_zero(static_cast<unsigned>(block_size));
  layout_.types = types;
  layout_.block_shift = shift_;
  for (const auto& l : spec.layers) window_ = std::max(window_, l.sliding_window);
  if (n_window_blocks < 0) n_window_blocks = n_blocks;
  if (window_ > 0 && n_window_blocks == 0) Fail("KV pool with sliding layers needs window blocks");
  // Per layer: where its K and V regions start, in bytes. Each region is rounded up to 64 bytes so
  // rows of every layer start on a cache line when their size allows it.
  std::vector<size_t> k_off, v_off;
  size_t total = 0;
  auto region = [&](size_t bytes) {
    const size_t at = total;
    total += (bytes + 63) & ~size_t{63};
    return at;
  };
  for (const auto& l : spec.layers) {
    const int64_t row = static_cast<int64_t>(l.n_head_kv) * l.head_dim;
    const bool sliding = window_ > 0 && l.sliding_window > 0;
    const int64_t positions = static_cast<int64_t>(sliding ? n_window_blocks : n_blocks) * block_size;
    KvLayout::Layer kl;
    kl.sliding = sliding;
    kl.k_row_bytes = RowBytes(types.k, row);
    kl.v_row_bytes = RowBytes(types.v, static_cast<int64_t>(l.n_head_kv) * l.v_dim());
    kl.k_head_bytes = RowBytes(types.k, l.head_dim);
    kl.v_head_bytes = RowBytes(types.v, l.v_dim());
    k_off.push_back(region(kl.k_row_bytes * positions));
    v_off.push_back(region(kl.v_row_bytes * positions));
    (sliding ? win_block_bytes_ : main_block_bytes_) += static_cast<uint64_t>(kl.k_row_bytes + kl.v_row_bytes) * block_size;
    layout_.layers.push_back(kl);
  }
  const size_t bytes = std::max<size_t>(total, 64);
  mem_ = backend ? backend->AllocateKv(bytes) : HostKvMemory(bytes);
  auto* base = static_cast<uint8_t*>(mem_->data());
  for (size_t i = 0; i < k_off.size(); ++i) {
    layout_.layers[i].k = base + k_off[i];
    layout_.layers[i].v = base + v_off[i];
  }
  blocks_.resize(n_blocks);
  free_.reserve(n_blocks);
  // Handed out lowest id first, so a fresh standalone cache is laid out contiguously.
  for (int b = n_blocks - 1; b >= 0; --b) free_.push_back(b);
  if (window_ > 0) {
    win_owner_.assign(n_window_blocks, -1);
    for (int w = n_window_blocks - 1; w >= 0; --w) win_free_.push_back(w);
  }
}

uint64_t KvPool::Bytes() const {
  return mem_ ? mem_->size() : 0;
}

int KvPool::Allocate() {
  if (n_available() == 0) return -1;
  int b;
  if (!free_.empty()) {
    b = free_.back();
    free_.pop_back();
  } else {
    b = lru_.front();
    lru_.pop_front();
    Unindex(b);
  }
  blocks_[b].ref = 1;
  if (window_ > 0) {
    // n_available counted a free or reclaimable part, and evicting b above freed b's own part.
    if (win_free_.empty()) {
      const int old = win_lru_.front();  // an indexed block nobody holds the window rows of
      win_lru_.pop_front();
      FreeWindowPart(old);
    }
    const int w = win_free_.back();
    win_free_.pop_back();
    win_owner_[w] = b;
    blocks_[b].win = w;
    blocks_[b].win_hold = 1;
  }
  return b;
}

void KvPool::Retain(int block) {
  Block& b = blocks_[block];
  if (b.ref == 0 && b.indexed) lru_.erase(b.lru_it);
  ++b.ref;
}

void KvPool::Release(int block) {
  Block& b = blocks_[block];
  if (b.ref <= 0)
    FailKind(ErrorKind::kInternal, "KV block {} released more often than retained", block);
  if (--b.ref > 0) return;
  if (b.indexed) {
    b.lru_it = lru_.insert(lru_.end(), block);
  } else {
    if (b.win >= 0 && b.win_hold == 0) FreeWindowPart(block);  // pools whose caches never drop
    free_.push_back(block);
  }
}

void KvPool::HoldWindow(int block) {
  if (window_ == 0) return;
  Block& b = blocks_[block];
  if (b.win < 0) FailKind(ErrorKind::kInternal, "KV block {} has no window part to hold", block);
  if (b.win_hold++ == 0 && b.indexed) win_lru_.erase(b.win_lru_it);
}

void KvPool::DropWindow(int block) {
  if (window_ == 0) return;
  Block& b = blocks_[block];
  if (b.win < 0 || b.win_hold <= 0)
    FailKind(ErrorKind::kInternal, "KV block {} window part dropped more often than held", block);
  if (--b.win_hold > 0) return;
  if (b.indexed) {
    b.win_lru_it = win_lru_.insert(win_lru_.end(), block);
  } else {
    FreeWindowPart(block);
  }
}

void KvPool::FreeWindowPart(int block) {
  Block& b = blocks_[block];
  win_owner_[b.win] = -1;
  win_free_.push_back(b.win);
  b.win = -1;
}

uint64_t KvPool::Key(int parent, std::span<const int32_t> tokens) const {
  // FNV-1a over the parent's identity (id and epoch) and the token ids; equality is re-checked.
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      h ^= (v >> (8 * i)) & 0xff;
      h *= 1099511628211ull;
    }
  };
  mix(static_cast<uint64_t>(static_cast<int64_t>(parent)));
  mix(parent >= 0 ? blocks_[parent].epoch : 0);
  for (int32_t t : tokens) mix(static_cast<uint32_t>(t));
  return h;
}

int KvPool::Lookup(int parent, std::span<const int32_t> tokens) {
  if (static_cast<int>(tokens.size()) != block_size_) return -1;
  // (A hit whose window part was reclaimed is refused below: its sliding rows are gone.)
  if (parent >= 0 && !blocks_[parent].indexed) return -1;
  const uint32_t parent_epoch = parent >= 0 ? blocks_[parent].epoch : 0;
  auto [lo, hi] = index_.equal_range(Key(parent, tokens));
  for (auto it = lo; it != hi; ++it) {
    const Block& b = blocks_[it->second];
    if (b.parent == parent && b.parent_epoch == parent_epoch &&
        std::equal(tokens.begin(), tokens.end(), b.tokens.begin())) {
      if (window_ > 0 && b.win < 0) return -1;
      Retain(it->second);
      return it->second;
    }
  }
  return -1;
}

bool KvPool::Register(int block, int parent, std::span<const int32_t> tokens) {
  if (static_cast<int>(tokens.size()) != block_size_ || blocks_[block].indexed) return false;
  if (parent >= 0 && !blocks_[parent].indexed) return false;
  const uint64_t key = Key(parent, tokens);
  const uint32_t parent_epoch = parent >= 0 ? blocks_[parent].epoch : 0;
  auto [lo, hi] = index_.equal_range(key);
  for (auto it = lo; it != hi; ++it) {
    const Block& o = blocks_[it->second];
    if (o.parent == parent && o.parent_epoch == parent_epoch &&
        std::equal(tokens.begin(), tokens.end(), o.tokens.begin()))
      return false;
  }
  Block& b = blocks_[block];
  b.indexed = true;
  ++b.epoch;
  b.parent = parent;
  b.parent_epoch = parent_epoch;
  b.key = key;
  b.tokens.assign(tokens.begin(), tokens.end());
  index_.emplace(key, block);
  ++n_cached_;
  return true;
}

void KvPool::Unindex(int block) {
  Block& b = blocks_[block];
  auto [lo, hi] = index_.equal_range(b.key);
  for (auto it = lo; it != hi; ++it) {
    if (it->second == block) {
      index_.erase(it);
      break;
    }
  }
  b.indexed = false;
  if (b.win >= 0 && b.win_hold == 0) {  // a cached part goes with its block
    win_lru_.erase(b.win_lru_it);
    FreeWindowPart(block);
  }
  ++b.epoch;  // children keyed on the old epoch can no longer match
  b.tokens.clear();
  --n_cached_;
}

KvCache::KvCache(const DecoderSpec& spec, int n_ctx, KvTypes types, Backend* backend) : n_ctx_(n_ctx) {
  if (n_ctx <= 0) Fail("context size must be positive, got {}", n_ctx);
  const int bs = KvPool::kDefaultBlockSize;
  owned_ = std::make_unique<KvPool>(spec, (n_ctx + bs - 1) / bs, bs, -1, types, backend);
  pool_ = owned_.get();
  if (!Grow(n_ctx))
    FailKind(ErrorKind::kInternal, "standalone KV cache could not map its own blocks");
}

KvCache::KvCache(KvPool& pool, int n_ctx) : pool_(&pool), n_ctx_(n_ctx) {
  if (n_ctx <= 0) Fail("context size must be positive, got {}", n_ctx);
}

KvCache::~KvCache() { Clear(); }

bool KvCache::Grow(int64_t n) {
  n = std::min<int64_t>(n, n_ctx_);
  const int window = pool_->window();
  if (window > 0 && !owned_) {
    // Queries from now on are at positions >= grown_ and see back to q - window + 1: blocks that
    // end at or before grown_ - window + 1 are out of every window.
    const int64_t dead = std::min<int64_t>((grown_ - window + 1) >> pool_->block_shift(),
                                           static_cast<int64_t>(table_.size()));
    for (; win_from_ < dead; ++win_from_) pool_->DropWindow(table_[win_from_]);
  }
  const int64_t need =
      ((n + pool_->block_size() - 1) >> pool_->block_shift()) - static_cast<int64_t>(table_.size());
  if (need > 0) {
    if (need > pool_->n_available()) return false;
    for (int64_t i = 0; i < need; ++i) table_.push_back(pool_->Allocate());
  }
  grown_ = std::max(grown_, n);
  return true;
}

void KvCache::AppendShared(int block) {
  table_.push_back(block);
  pool_->HoldWindow(block);
}

void KvCache::Clear() {
  // Last block first: the LRU then evicts a sequence's tail before its (more shareable) head.
  for (int i = static_cast<int>(table_.size()) - 1; i >= 0; --i) {
    if (pool_->window() > 0 && i >= win_from_) pool_->DropWindow(table_[i]);
    pool_->Release(table_[i]);
  }
  table_.clear();
  win_from_ = 0;
  grown_ = 0;
}

uint64_t KvCache::Bytes() const {
  if (owned_) return owned_->Bytes();
  const uint64_t held_parts = pool_->window() > 0 ? table_.size() - win_from_ : 0;
  return pool_->BlockBytes() * table_.size() + pool_->WindowPartBytes() * held_parts;
}

}  // namespace origami
