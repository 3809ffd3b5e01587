// Outgoing bytes, shared where possible. One flush from JS copies its whole
// send arena into one reference-counted block; every send (and every
// recipient of a broadcast) then queues a slice of that block, so a packet
// broadcast to 500 peers is stored once.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace ringport {

struct send_block {
  uint32_t refs;
  uint32_t size;
  uint8_t* data() { return reinterpret_cast<uint8_t*>(this + 1); }
};

// Returns nullptr when memory runs out; the caller reports ENOMEM.
inline send_block* send_block_new(const uint8_t* src, uint32_t size) {
  auto* block = static_cast<send_block*>(std::malloc(sizeof(send_block) + size));
  if (block == nullptr) return nullptr;
  block->refs = 1;
  block->size = size;
  std::memcpy(block->data(), src, size);
  return block;
}

inline void send_block_ref(send_block* block) { block->refs++; }

inline void send_block_unref(send_block* block) {
  if (--block->refs == 0) std::free(block);
}

struct send_slice {
  send_block* block;
  uint32_t offset;
  uint32_t length;
};

// A FIFO of slices for one connection. It owns no storage while empty, so an
// idle connection costs nothing here.
class send_queue {
 public:
  send_queue() = default;
  send_queue(const send_queue&) = delete;
  send_queue& operator=(const send_queue&) = delete;
  ~send_queue() { clear(); }

  bool empty() const { return head_ == tail_; }
  uint64_t bytes() const { return bytes_; }

  // Takes a reference on `block`. Returns false when memory runs out.
  // Bytes that directly follow the last queued slice in the same block extend
  // it: the packets one connection gets in one flush sit side by side in that
  // flush's block, so they leave as one buffer, not one iovec each. (A send in
  // flight is unaffected: it carries its own copy of pointers and lengths, and
  // consume() counts bytes, not slices.)
  bool push(send_block* block, uint32_t offset, uint32_t length) {
    if (tail_ > head_) {
      send_slice& last = slices_[tail_ - 1];
      if (last.block == block && last.offset + last.length == offset) {
        last.length += length;
        bytes_ += length;
        return true;
      }
    }
    if (tail_ == cap_ && !_grow()) return false;
    send_block_ref(block);
    slices_[tail_++] = send_slice{block, offset, length};
    bytes_ += length;
    return true;
  }

  // Calls put(index, data, length) for up to `max` queued slices, oldest
  // first, and returns how many: a reactor fills its scatter-gather list
  // (iovec, WSABUF) with it.
  template <typename Put>
  int peek(int max, Put&& put) const {
    int n = 0;
    for (uint32_t i = head_; i < tail_ && n < max; i++, n++) {
      put(n, slices_[i].block->data() + slices_[i].offset, slices_[i].length);
    }
    return n;
  }

  // Drops `n` bytes from the front: a partial send resumes where it stopped.
  void consume(uint64_t n) {
    bytes_ -= n;
    while (n > 0) {
      send_slice& s = slices_[head_];
      if (n < s.length) {
        s.offset += static_cast<uint32_t>(n);
        s.length -= static_cast<uint32_t>(n);
        return;
      }
      n -= s.length;
      send_block_unref(s.block);
      head_++;
    }
    if (empty()) _reset();
  }

  void clear() {
    for (uint32_t i = head_; i < tail_; i++) send_block_unref(slices_[i].block);
    bytes_ = 0;
    head_ = tail_ = 0;
    std::free(slices_);
    slices_ = nullptr;
    cap_ = 0;
  }

 private:
  bool _grow() {
    if (head_ > 0) {
      std::memmove(slices_, slices_ + head_, (tail_ - head_) * sizeof(send_slice));
      tail_ -= head_;
      head_ = 0;
      if (tail_ < cap_) return true;
    }
    uint32_t cap = cap_ == 0 ? 4 : cap_ * 2;
    auto* grown = static_cast<send_slice*>(std::realloc(slices_, cap * sizeof(send_slice)));
    if (grown == nullptr) return false;
    slices_ = grown;
    cap_ = cap;
    return true;
  }

  // A drained queue gives back large storage: a burst should not pin memory.
  void _reset() {
    head_ = tail_ = 0;
    if (cap_ > 64) {
      std::free(slices_);
      slices_ = nullptr;
      cap_ = 0;
    }
  }

  send_slice* slices_ = nullptr;
  uint32_t head_ = 0;
  uint32_t tail_ = 0;
  uint32_t cap_ = 0;
  uint64_t bytes_ = 0;
};

}  // namespace ringport
