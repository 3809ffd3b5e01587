// The provided-buffer ring that multishot recv picks buffers from. liburing
// 2.3 has no io_uring_setup_buf_ring, so setup is done here by hand: map the
// ring memory, init it, register it.
//
// The ring's capacity is fixed at registration, but the number of buffers
// placed in it is not: the pool starts small, grows when the kernel reports
// ENOBUFS, and shrinks back when load falls (buffers coming back from a read
// are then freed instead of being returned to the ring).
#pragma once

#include <liburing.h>

#include <cstdint>
#include <vector>

namespace ringport {

class buf_pool {
 public:
  static constexpr uint16_t GROUP = 0;

  ~buf_pool();

  // Returns 0 or -errno.
  int init(struct io_uring* ring, uint32_t buffer_bytes, uint32_t initial, uint32_t max);

  uint8_t* data(uint16_t bid) const { return bufs_[bid]; }
  uint32_t size() const { return live_; }

  // A buffer the kernel filled has been copied out: give it back to the ring,
  // or free it while the pool is above its target.
  void recycle(uint16_t bid);

  // The ring ran dry: double the target and fill up to it.
  void grow();

  // Called once per wake-up with the number of buffers that wake-up used.
  // Once a second, a target well above recent use is halved.
  void note_use(uint32_t used, uint64_t now_ms);

  // Publishes the buffers added since the last call to the kernel.
  void commit();

 private:
  void _add(uint16_t bid);
  void _fill();

  struct io_uring* ring_ = nullptr;
  struct io_uring_buf_ring* br_ = nullptr;
  size_t ring_bytes_ = 0;
  uint32_t entries_ = 0;
  uint32_t buffer_bytes_ = 0;
  uint32_t initial_ = 0;
  uint32_t max_ = 0;
  uint32_t target_ = 0;
  uint32_t live_ = 0;
  int pending_adds_ = 0;
  uint32_t peak_use_ = 0;
  uint64_t window_start_ms_ = 0;
  std::vector<uint8_t*> bufs_;
  std::vector<uint16_t> free_bids_;
};

}  // namespace ringport
