// The provided-buffer ring that multishot recv picks buffers from. liburing
// 2.3 has no io_uring_setup_buf_ring, so setup is done here by hand: map the
// ring memory, init it, register it.
//
// The ring's capacity is fixed at registration, but the number of buffers
// placed in it is not. The pool starts small and grows by one buffer for
// each receive that found the ring empty (ENOBUFS): what the shortage
// needs, not a doubling. While it is above its initial size, a timer lowers
// the target towards recent use once a second and gives back what is over:
// buffers coming back from a read are freed, and buffers sitting unused in
// the ring are taken back out of it, so an idle server returns to the
// initial pool.
//
// Taking buffers out of the ring is safe only while the kernel cannot pick
// from it: with SINGLE_ISSUER and DEFER_TASKRUN it does so only inside our
// own io_uring_enter calls, and the kernel's head is read with
// IORING_REGISTER_PBUF_STATUS (Linux 6.8). Without either, buffers in the
// ring stay until a read hands them back.
#pragma once

#include <liburing.h>

#include <cstdint>
#include <vector>

namespace ringport {

class buf_pool {
 public:
  static constexpr uint16_t GROUP = 0;

  ~buf_pool();

  // Returns 0 or -errno. `retractable`: the ring was set up with
  // DEFER_TASKRUN, so entries may be taken back between io_uring_enter calls.
  int init(struct io_uring* ring, uint32_t buffer_bytes, uint32_t initial, uint32_t max, bool retractable);

  uint8_t* data(uint16_t bid) const { return bufs_[bid]; }
  uint32_t size() const { return live_; }
  bool above_initial() const { return live_ > initial_ || target_ > initial_; }

  // A buffer the kernel filled has been copied out: give it back to the ring,
  // or free it while the pool is above its target.
  void recycle(uint16_t bid);

  // A receive found the ring empty: one more buffer, for it.
  void grow();

  // Called once per wake-up with the number of buffers that wake-up used.
  void note_use(uint32_t used);

  // Called once a second while above_initial(): lowers the target to twice
  // the busiest wake-up since the last call (by at most half; to the initial
  // size at once after a second in which no wake-up used a buffer), and gives
  // back what is over it. Returns above_initial().
  bool shrink();

  // Publishes the buffers added since the last call to the kernel.
  void commit();

 private:
  void _add(uint16_t bid);
  void _fill();
  void _release(uint16_t bid);
  void _retract(uint32_t count);

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
  bool retractable_ = false;
  std::vector<uint8_t*> bufs_;
  std::vector<uint16_t> free_bids_;
};

}  // namespace ringport
