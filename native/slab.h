// Connection slots that never move once allocated (the kernel may hold
// pointers into them), reused through a free list. Each slot carries a
// generation that changes on reuse, so an id or a completion that names an
// old generation is recognised as stale.
//
// A slot may carry an extension of `ext_bytes` right after its item, for
// the mechanism's own per-connection data (an iovec, two OVERLAPPEDs): it is
// allocated with the slot, as uSockets allocates a socket's extension with
// the socket, not kept in a side map. An extension is plain data, zeroed
// when its page is made; the mechanism sets it up each time the slot is
// taken.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <type_traits>
#include <vector>

#include "protocol.h"

namespace ringport {

template <typename T, uint32_t PageSize = 256>
class slab {
 public:
  // Where an item's extension starts: past the item, suitably aligned.
  static constexpr size_t EXT_OFFSET = (sizeof(T) + alignof(std::max_align_t) - 1) / alignof(std::max_align_t) *
                                       alignof(std::max_align_t);

  explicit slab(size_t ext_bytes = 0)
      : stride_((EXT_OFFSET + ext_bytes + alignof(std::max_align_t) - 1) / alignof(std::max_align_t) *
                alignof(std::max_align_t)) {}
  slab(const slab&) = delete;
  slab& operator=(const slab&) = delete;
  ~slab() {
    for (size_t page = 0; page < pages_.size(); page++) {
      for (uint32_t i = 0; i < PageSize; i++) at(static_cast<uint32_t>(page * PageSize + i)).~T();
      std::free(pages_[page]);
    }
  }

  // Returns the slot index, or -1 when `limit` slots are in use or memory runs out.
  int64_t alloc(uint32_t limit) {
    uint32_t slot;
    if (!free_.empty()) {
      slot = free_.back();
      free_.pop_back();
    } else {
      if (next_ >= limit || next_ >= RP_SLOT_LIMIT) return -1;
      if (next_ % PageSize == 0 && !_add_page()) return -1;
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

  T& at(uint32_t slot) { return *reinterpret_cast<T*>(pages_[slot / PageSize] + (slot % PageSize) * stride_); }

  // The item at `slot` if it is in use and of generation `gen`, else nullptr.
  T* find(uint32_t slot, uint32_t gen) {
    if (slot >= next_) return nullptr;
    T& item = at(slot);
    return item.in_use && item.gen == (gen & RP_GEN_MASK) ? &item : nullptr;
  }

  uint32_t live() const { return live_; }
  uint32_t high_water() const { return next_; }

 private:
  bool _add_page() {
    auto* page = static_cast<uint8_t*>(std::calloc(PageSize, stride_));
    if (page == nullptr) return false;
    for (uint32_t i = 0; i < PageSize; i++) new (page + i * stride_) T();
    pages_.push_back(page);
    return true;
  }

  size_t stride_;
  std::vector<uint8_t*> pages_;
  std::vector<uint32_t> free_;
  uint32_t next_ = 0;
  uint32_t live_ = 0;
};

// The extension of a slab item (see slab): plain data only, as nothing
// destroys it.
template <typename E, typename T>
E& slab_ext(T& item) {
  static_assert(std::is_trivially_destructible<E>::value, "a slab extension is never destroyed");
  return *reinterpret_cast<E*>(reinterpret_cast<uint8_t*>(&item) + slab<T>::EXT_OFFSET);
}

}  // namespace ringport
