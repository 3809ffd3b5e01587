// Outgoing bytes, held so that a connection pins only what it is owed.
//
// A plain send is copied out of JS's send arena into chunks owned by its
// connection (SEND_CHUNK_BYTES each), appended to while the last one has
// room: the packets a connection gets in one tick sit side by side and leave
// as one buffer. A drained chunk goes back to a small free list shared by the
// reactor's connections, so an idle connection holds no chunk. A broadcast
// is copied once into a block of exactly its payload, shared by reference
// count among its recipients (a tick's broadcasts to the same recipients
// share one block, and leave as one buffer).
//
// So the memory a connection keeps alive is its queued bytes, plus the part
// already sent of the item at the head of its queue (less than a chunk, or
// than one broadcast payload), plus the unused room of its last chunk (less
// than a chunk), plus its slice array while it has queued bytes, or one that
// grew past the smallest size while it is busy: never another connection's
// bytes.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "block_cache.h"

namespace ringport {

// A chunk's allocation, header included: 16 KiB carries a tick's packets for
// one player many times over, and stays off glibc's mmap path.
constexpr uint32_t SEND_CHUNK_BYTES = 16 * 1024;
// Drained chunks kept for reuse: 1 MiB, what a burst of sends churns through.
constexpr size_t SEND_FREE_CHUNKS = 64;
// Slices in a queue's first slice array: a connection's sends of a tick
// usually fill one chunk slice, or a few broadcast ones.
constexpr uint32_t SEND_FIRST_SLICES = 4;
// Drained first-size slice arrays kept for reuse: 64 KiB, a busy tick's worth.
constexpr size_t SEND_FREE_SLICE_ARRAYS = 1024;

struct send_block;

// A run of bytes in a block: what a queue holds, in order.
struct send_slice {
  send_block* block;
  uint32_t offset;
  uint32_t length;
};

struct send_block {
  uint32_t refs;
  uint32_t size;  // bytes of data
  uint32_t used;  // bytes written: a chunk fills as sends arrive, a shared block is born full
  bool shared;    // a broadcast's block; else a chunk, written by one queue only
  uint8_t* data() { return reinterpret_cast<uint8_t*>(this + 1); }
};

constexpr uint32_t SEND_CHUNK_DATA = SEND_CHUNK_BYTES - sizeof(send_block);

// The send storage of one reactor: its free chunks, and what it holds.
class send_memory {
 public:
  send_memory() = default;
  send_memory(const send_memory&) = delete;
  send_memory& operator=(const send_memory&) = delete;

  // An empty chunk, or nullptr when memory runs out.
  send_block* chunk() {
    bool fresh = !chunks_.has_spare();
    send_block* block = chunks_.take();
    if (block == nullptr) return nullptr;
    if (fresh) bytes_ += SEND_CHUNK_BYTES;
    *block = send_block{1, SEND_CHUNK_DATA, 0, false};
    return block;
  }

  // A copy of `src` for many queues (refs 1: the caller's), or nullptr when
  // memory runs out.
  send_block* shared(const uint8_t* src, uint32_t size) {
    auto* block = static_cast<send_block*>(std::malloc(sizeof(send_block) + size));
    if (block == nullptr) return nullptr;
    *block = send_block{1, size, size, true};
    std::memcpy(block->data(), src, size);
    bytes_ += sizeof(send_block) + size;
    return block;
  }

  void unref(send_block* block) {
    if (--block->refs > 0) return;
    if (block->shared) {
      bytes_ -= sizeof(send_block) + block->size;
      std::free(block);
    } else if (!chunks_.give(block)) {
      bytes_ -= SEND_CHUNK_BYTES;
    }
  }

  // Bytes allocated for sends: chunks in use and free, and shared blocks.
  uint64_t bytes() const { return bytes_; }

  // A slice array of SEND_FIRST_SLICES, or nullptr when memory runs out.
  send_slice* first_slices() { return first_slices_.take(); }
  // Takes back a drained queue's first-size slice array.
  void give_back(send_slice* slices) { first_slices_.give(slices); }

 private:
  block_cache<send_block, SEND_CHUNK_BYTES, SEND_FREE_CHUNKS> chunks_;
  block_cache<send_slice, SEND_FIRST_SLICES * sizeof(send_slice), SEND_FREE_SLICE_ARRAYS> first_slices_;
  uint64_t bytes_ = 0;
};

// A FIFO of slices for one connection. It owns no storage while empty, so an
// idle connection costs nothing here.
class send_queue {
 public:
  send_queue() = default;
  send_queue(const send_queue&) = delete;
  send_queue& operator=(const send_queue&) = delete;
  // The reactor clears every queue before it goes; this is a last resort.
  ~send_queue() {
    for (uint32_t i = head_; i < tail_; i++) _free_orphan(slices_[i].block);
    if (chunk_ != nullptr) _free_orphan(chunk_);
    std::free(slices_);
  }

  bool empty() const { return head_ == tail_; }
  uint64_t bytes() const { return bytes_; }

  // Copies `length` bytes to the end of the queue: into the queue's current
  // chunk while it has room, then into new ones. Returns false when memory
  // runs out. (A send in flight is unaffected: it reads only bytes before
  // the chunk's `used`, and consume() counts bytes, not slices.)
  bool copy(send_memory& memory, const uint8_t* src, uint32_t length) {
    while (length > 0) {
      if (chunk_ == nullptr || chunk_->used == chunk_->size) {
        // A full chunk stays alive through its slices only.
        if (chunk_ != nullptr) memory.unref(chunk_);
        chunk_ = memory.chunk();
        if (chunk_ == nullptr) return false;
      }
      uint32_t at = chunk_->used;
      uint32_t n = chunk_->size - at < length ? chunk_->size - at : length;
      send_slice* last = tail_ > head_ ? &slices_[tail_ - 1] : nullptr;
      if (last != nullptr && last->block == chunk_ && last->offset + last->length == at) {
        last->length += n;
      } else {
        // After a shared block, the chunk's room is used by a slice of its own.
        if (!_push(memory, chunk_, at, n)) return false;
        chunk_->refs++;
      }
      std::memcpy(chunk_->data() + at, src, n);
      chunk_->used += n;
      bytes_ += n;
      src += n;
      length -= n;
    }
    return true;
  }

  // Queues the whole of a shared block, taking a reference on it. Returns
  // false when memory runs out.
  bool share(send_memory& memory, send_block* block) {
    if (!_push(memory, block, 0, block->size)) return false;
    block->refs++;
    bytes_ += block->size;
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
  void consume(send_memory& memory, uint64_t n) {
    bytes_ -= n;
    while (n > 0) {
      send_slice& s = slices_[head_];
      if (n < s.length) {
        s.offset += static_cast<uint32_t>(n);
        s.length -= static_cast<uint32_t>(n);
        return;
      }
      n -= s.length;
      memory.unref(s.block);
      head_++;
    }
    if (empty()) _reset(memory);
  }

  void clear(send_memory& memory) {
    for (uint32_t i = head_; i < tail_; i++) memory.unref(slices_[i].block);
    bytes_ = 0;
    _release(memory, false);
  }

 private:
  bool _push(send_memory& memory, send_block* block, uint32_t offset, uint32_t length) {
    if (tail_ == cap_ && !_grow(memory)) return false;
    slices_[tail_++] = send_slice{block, offset, length};
    return true;
  }

  bool _grow(send_memory& memory) {
    if (cap_ == 0) {
      slices_ = memory.first_slices();
      if (slices_ == nullptr) return false;
      cap_ = SEND_FIRST_SLICES;
      return true;
    }
    if (head_ > 0) {
      std::memmove(slices_, slices_ + head_, (tail_ - head_) * sizeof(send_slice));
      tail_ -= head_;
      head_ = 0;
      if (tail_ < cap_) return true;
    }
    uint32_t cap = cap_ * 2;
    auto* grown = static_cast<send_slice*>(std::realloc(slices_, cap * sizeof(send_slice)));
    if (grown == nullptr) return false;
    slices_ = grown;
    cap_ = cap;
    return true;
  }

  // A drained queue gives back its chunk, its first-size slice array (to
  // the reactor's spares: an idle connection holds none, and the next send
  // of any connection takes it without an allocation) and large storage (a
  // burst should not pin memory). A middle-sized array stays: its
  // connection is a busy one.
  void _reset(send_memory& memory) { _release(memory, true); }

  // Gives back the chunk and the slice array; `keep_busy` keeps a
  // middle-sized array (see _reset). The queue holds no slices afterwards.
  void _release(send_memory& memory, bool keep_busy) {
    if (chunk_ != nullptr) memory.unref(chunk_);
    chunk_ = nullptr;
    head_ = tail_ = 0;
    if (cap_ == SEND_FIRST_SLICES) {
      memory.give_back(slices_);
    } else if (keep_busy && cap_ > 0 && cap_ <= 64) {
      return;
    } else {
      std::free(slices_);
    }
    slices_ = nullptr;
    cap_ = 0;
  }

  static void _free_orphan(send_block* block) {
    if (--block->refs == 0) std::free(block);
  }

  send_slice* slices_ = nullptr;
  send_block* chunk_ = nullptr;  // where copies go; the queue holds a reference while it has one
  uint32_t head_ = 0;
  uint32_t tail_ = 0;
  uint32_t cap_ = 0;
  uint64_t bytes_ = 0;
};

}  // namespace ringport
