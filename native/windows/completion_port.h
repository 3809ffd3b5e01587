// The I/O completion port, the worker thread that waits on it, and the
// hand-off of its completions to the JS thread: the worker collects what one
// GetQueuedCompletionStatusEx returns, appends it to a locked list, and
// wakes the JS thread with one uv_async_send per batch.
//
// Every socket request is issued on the JS thread and every completion is
// handled there, so the reactor's state needs no lock; the worker only moves
// packets. One worker is enough for that: more would just take turns at the
// list's lock.
#pragma once

#include <uv.h>

#include <cstdint>
#include <vector>

namespace ringport {

// One overlapped request. The port hands back &ov; the request is recovered
// from it (libuv's container_of) and tells which connection it belongs to.
struct io_op {
  OVERLAPPED ov = {};  // first, so a pointer to it is a pointer to the op
  uint8_t type = 0;
  uint32_t owner = 0;  // a connection slot or a listener id
  uint32_t gen = 0;    // the slot's generation when the request was issued
};

// A finished request, as the JS thread handles it.
struct completion {
  io_op* op;
  DWORD bytes;
  DWORD error;     // Win32 or Winsock error; 0 for success
  bool from_port;  // the outcome is still in op->ov.Internal (see error_of in the reactor)
};

class completion_port {
 public:
  completion_port() = default;
  completion_port(const completion_port&) = delete;
  completion_port& operator=(const completion_port&) = delete;

  // Creates the port, the wake-up handle on `loop` (its data is `data`) and
  // the worker. Returns 0 or -errno; on failure nothing is left open.
  int open(uv_loop_t* loop, uv_async_cb on_ready, void* data);

  HANDLE handle() const { return iocp_; }
  uv_async_t* async() { return &async_; }

  // A request went pending: the kernel owes the port a packet for it.
  void expect() { owed_++; }
  // A packet that was expected will never come (its timer was cancelled).
  void unexpect() { owed_--; }

  // Appends what the worker has collected to `out`, oldest first.
  void take(std::vector<completion>* out);

  // Stops the worker, then waits (a bounded time) for the packets the kernel
  // still owes once every socket is closed. Returns false if some never came:
  // their OVERLAPPEDs may still be written, so the caller must not free them.
  bool stop();

  // Closes the port and, through libuv, the wake-up handle; `on_closed` runs
  // once libuv is done with it.
  void close(uv_close_cb on_closed);

 private:
  static DWORD WINAPI _worker_main(void* arg);

  HANDLE iocp_ = nullptr;
  HANDLE worker_ = nullptr;
  uv_async_t async_ = {};
  SRWLOCK lock_ = SRWLOCK_INIT;
  std::vector<completion> incoming_;  // guarded by lock_
  uint64_t owed_ = 0;                 // JS thread only
};

}  // namespace ringport
