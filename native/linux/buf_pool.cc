#include "buf_pool.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstdlib>

namespace ringport {

namespace {

uint32_t round_up_pow2(uint32_t n) {
  uint32_t p = 1;
  while (p < n) p <<= 1;
  return p;
}

}  // namespace

buf_pool::~buf_pool() {
  for (uint8_t* buf : bufs_) std::free(buf);
  if (br_ != nullptr) {
    io_uring_unregister_buf_ring(ring_, GROUP);
    munmap(br_, ring_bytes_);
  }
}

int buf_pool::init(struct io_uring* ring, uint32_t buffer_bytes, uint32_t initial, uint32_t max) {
  ring_ = ring;
  buffer_bytes_ = buffer_bytes;
  // Buffer ids are 16 bits and the ring holds a power of two entries.
  max_ = max > 32768 ? 32768 : max;
  entries_ = round_up_pow2(max_);
  initial_ = initial > max_ ? max_ : initial;
  target_ = initial_;
  ring_bytes_ = entries_ * sizeof(struct io_uring_buf);
  void* mem = mmap(nullptr, ring_bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (mem == MAP_FAILED) return -errno;
  br_ = static_cast<struct io_uring_buf_ring*>(mem);
  io_uring_buf_ring_init(br_);
  struct io_uring_buf_reg reg = {};
  reg.ring_addr = reinterpret_cast<unsigned long>(br_);
  reg.ring_entries = entries_;
  reg.bgid = GROUP;
  int ret = io_uring_register_buf_ring(ring_, &reg, 0);
  if (ret < 0) {
    munmap(br_, ring_bytes_);
    br_ = nullptr;
    return ret;
  }
  _fill();
  commit();
  return live_ > 0 ? 0 : -ENOMEM;
}

void buf_pool::_add(uint16_t bid) {
  io_uring_buf_ring_add(br_, bufs_[bid], buffer_bytes_, bid, io_uring_buf_ring_mask(entries_), pending_adds_);
  pending_adds_++;
}

void buf_pool::commit() {
  if (pending_adds_ == 0) return;
  io_uring_buf_ring_advance(br_, pending_adds_);
  pending_adds_ = 0;
}

void buf_pool::_fill() {
  while (live_ < target_) {
    uint16_t bid;
    if (!free_bids_.empty()) {
      bid = free_bids_.back();
      free_bids_.pop_back();
    } else {
      bid = static_cast<uint16_t>(bufs_.size());
      bufs_.push_back(nullptr);
    }
    bufs_[bid] = static_cast<uint8_t*>(std::malloc(buffer_bytes_));
    if (bufs_[bid] == nullptr) {
      // Out of memory: keep what we have; recv reports ENOBUFS again later.
      free_bids_.push_back(bid);
      target_ = live_;
      return;
    }
    live_++;
    _add(bid);
  }
}

void buf_pool::recycle(uint16_t bid) {
  if (live_ > target_) {
    std::free(bufs_[bid]);
    bufs_[bid] = nullptr;
    free_bids_.push_back(bid);
    live_--;
    return;
  }
  _add(bid);
}

void buf_pool::grow() {
  target_ = target_ * 2 > max_ ? max_ : target_ * 2;
  _fill();
}

void buf_pool::note_use(uint32_t used, uint64_t now_ms) {
  if (used > peak_use_) peak_use_ = used;
  if (now_ms - window_start_ms_ < 1000) return;
  if (peak_use_ * 4 < target_ && target_ / 2 >= initial_) target_ /= 2;
  peak_use_ = 0;
  window_start_ms_ = now_ms;
}

}  // namespace ringport
