// A growable run of bytes that a read can land in directly: reserve room at
// the end, read into it, commit what was read. std::vector would zero the
// room first, once per read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>

namespace ringport {

class byte_buffer {
 public:
  byte_buffer() = default;
  byte_buffer(const byte_buffer&) = delete;
  byte_buffer& operator=(const byte_buffer&) = delete;
  ~byte_buffer() { std::free(data_); }

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

  // Room for `n` more bytes at the end, or nullptr when memory runs out.
  uint8_t* reserve(size_t n) {
    if (capacity_ - size_ < n) {
      size_t capacity = capacity_ == 0 ? 64 * 1024 : capacity_;
      while (capacity - size_ < n) capacity *= 2;
      auto* grown = static_cast<uint8_t*>(std::realloc(data_, capacity));
      if (grown == nullptr) return nullptr;
      data_ = grown;
      capacity_ = capacity;
    }
    return data_ + size_;
  }

  // The first `n` bytes of the last reserve() now hold data.
  void commit(size_t n) { size_ += n; }

  void clear() { size_ = 0; }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

}  // namespace ringport
