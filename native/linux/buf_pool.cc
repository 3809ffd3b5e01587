#include "buf_pool.h"

#include <malloc.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>

namespace ringport {

namespace {

// IORING_REGISTER_PBUF_STATUS and its argument, from Linux 6.8's
// <linux/io_uring.h>: liburing 2.3 predates them.
constexpr unsigned REGISTER_PBUF_STATUS = 26;
struct buf_status {
  uint32_t buf_group;  // in
  uint32_t head;       // out: the next entry the kernel will take
  uint32_t resv[8];
};

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

int buf_pool::init(struct io_uring* ring, uint32_t buffer_bytes, uint32_t initial, uint32_t max, bool retractable) {
  ring_ = ring;
  retractable_ = retractable;
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

void buf_pool::_release(uint16_t bid) {
  std::free(bufs_[bid]);
  bufs_[bid] = nullptr;
  free_bids_.push_back(bid);
  live_--;
}

void buf_pool::recycle(uint16_t bid) {
  if (live_ > target_) _release(bid);
  else _add(bid);
}

void buf_pool::grow() {
  if (target_ < max_) target_++;
  _fill();
}

void buf_pool::note_use(uint32_t used) { peak_use_ = std::max(peak_use_, used); }

bool buf_pool::shrink() {
  uint32_t wanted = std::max(initial_, 2 * peak_use_);
  // A second in which no wake-up used a buffer: the burst is over, and all of its growth goes at
  // once. Otherwise the target falls by at most half, in case the load comes back.
  if (peak_use_ == 0) target_ = initial_;
  else if (wanted < target_) target_ = std::max(wanted, target_ / 2);
  peak_use_ = 0;
  uint32_t before = live_;
  if (retractable_ && live_ > target_) _retract(live_ - target_);
  // Freed buffers sit among live heap memory, where free() keeps their
  // pages; glibc hands them back to the kernel only when asked.
#ifdef __GLIBC__
  if (live_ < before) malloc_trim(0);
#endif
  return above_initial();
}

// Takes up to `count` unused buffers back out of the ring, newest first, and
// frees them. Only ever called between io_uring_enter calls (see buf_pool.h).
void buf_pool::_retract(uint32_t count) {
  commit();
  buf_status status = {};
  status.buf_group = GROUP;
  if (syscall(__NR_io_uring_register, ring_->ring_fd, REGISTER_PBUF_STATUS, &status, 1) < 0) {
    // Before Linux 6.8: the kernel's head cannot be read, so nothing is taken back.
    retractable_ = false;
    return;
  }
  // Entries from the kernel's head to our tail are buffers it has not taken.
  uint16_t tail = br_->tail;
  uint16_t unused = static_cast<uint16_t>(tail - static_cast<uint16_t>(status.head));
  uint16_t n = static_cast<uint16_t>(std::min<uint32_t>(count, unused));
  uint16_t mask = static_cast<uint16_t>(io_uring_buf_ring_mask(entries_));
  for (uint16_t i = 1; i <= n; i++) _release(br_->bufs[static_cast<uint16_t>(tail - i) & mask].bid);
  io_uring_smp_store_release(&br_->tail, static_cast<uint16_t>(tail - n));
}

}  // namespace ringport
