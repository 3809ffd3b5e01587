// Connection slots that never move once allocated (the kernel may hold
// pointers into them), reused through a free list. Each slot carries a
// generation that changes on reuse, so an id or a completion that names an
// old generation is recognised as stale.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "protocol.h"

namespace ringport {

template <typename T, uint32_t PageSize = 256>
class slab {
 public:
  // Returns the slot index, or -1 when `limit` slots are in use.
  int64_t alloc(uint32_t limit) {
    uint32_t slot;
    if (!free_.empty()) {
      slot = free_.back();
      free_.pop_back();
    } else {
      if (next_ >= limit || next_ >= RP_SLOT_LIMIT) return -1;
      if (next_ % PageSize == 0) pages_.emplace_back(new T[PageSize]);
      slot = next_++;
    }
    T& item = at(slot);
    item.gen = (item.gen + 1) & RP_GEN_MASK;
    item.in_use = true;
    live_++;
    return slot;
  }

  void free(uint32_t slot) {
    at(slot).in_use = false;
    free_.push_back(slot);
    live_--;
  }

  T& at(uint32_t slot) { return pages_[slot / PageSize][slot % PageSize]; }

  // The item at `slot` if it is in use and of generation `gen`, else nullptr.
  T* find(uint32_t slot, uint32_t gen) {
    if (slot >= next_) return nullptr;
    T& item = at(slot);
    return item.in_use && item.gen == (gen & RP_GEN_MASK) ? &item : nullptr;
  }

  uint32_t live() const { return live_; }
  uint32_t high_water() const { return next_; }

 private:
  std::vector<std::unique_ptr<T[]>> pages_;
  std::vector<uint32_t> free_;
  uint32_t next_ = 0;
  uint32_t live_ = 0;
};

}  // namespace ringport
