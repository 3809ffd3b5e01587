// A bounded free list of same-size allocations: what the reactor reuses in
// place of a malloc per send (send chunks, first-size slice arrays, uring's
// send blocks). At most `Limit` wait here; beyond that a block goes back to
// malloc, so a burst does not pin its peak for ever.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <vector>

namespace ringport {

template <typename T, size_t Bytes, size_t Limit>
class block_cache {
 public:
  block_cache() = default;
  block_cache(const block_cache&) = delete;
  block_cache& operator=(const block_cache&) = delete;
  ~block_cache() {
    for (T* block : free_) std::free(block);
  }

  // Whether take() would reuse a block rather than allocate one.
  bool has_spare() const { return !free_.empty(); }

  // A block of `Bytes`, uninitialised, or nullptr when memory runs out.
  T* take() {
    if (free_.empty()) return static_cast<T*>(std::malloc(Bytes));
    T* block = free_.back();
    free_.pop_back();
    return block;
  }

  // Keeps `block` for the next take(), or frees it when the list is full:
  // returns whether it was kept.
  bool give(T* block) {
    if (free_.size() >= Limit) {
      std::free(block);
      return false;
    }
    free_.push_back(block);
    return true;
  }

 private:
  std::vector<T*> free_;
};

}  // namespace ringport
