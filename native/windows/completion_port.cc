#include "completion_port.h"

#include <cerrno>

#include "win_errors.h"

namespace ringport {

namespace {

// Packets taken per GetQueuedCompletionStatusEx call: one wake-up's worth.
constexpr ULONG WORKER_BATCH = 256;
// The packet that tells the worker to exit; no request uses this key.
constexpr ULONG_PTR KEY_STOP = 1;
// How long stop() waits for the kernel to return cancelled requests.
constexpr DWORD STOP_WAIT_MS = 2000;

}  // namespace

int completion_port::open(uv_loop_t* loop, uv_async_cb on_ready, void* data) {
  iocp_ = CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 1);
  if (iocp_ == nullptr) return -errno_of(GetLastError());
  worker_ = CreateThread(nullptr, 64 * 1024, _worker_main, this, STACK_SIZE_PARAM_IS_A_RESERVATION, nullptr);
  int ret = worker_ == nullptr ? -errno_of(GetLastError()) : 0;
  // The handle goes last: once libuv knows it, its memory must outlive a uv_close.
  // (libuv's errors are negative errno values of the same CRT.)
  if (ret == 0) ret = uv_async_init(loop, &async_, on_ready);
  if (ret < 0) {
    stop();
    CloseHandle(iocp_);
    iocp_ = nullptr;
    return ret;
  }
  async_.data = data;
  return 0;
}

DWORD WINAPI completion_port::_worker_main(void* arg) {
  auto* port = static_cast<completion_port*>(arg);
  OVERLAPPED_ENTRY entries[WORKER_BATCH];
  for (;;) {
    ULONG n = 0;
    if (!GetQueuedCompletionStatusEx(port->iocp_, entries, WORKER_BATCH, &n, INFINITE, FALSE)) {
      // Only a closed port ends the wait this way; stop() never lets that happen first.
      return 0;
    }
    bool stop = false;
    AcquireSRWLockExclusive(&port->lock_);
    for (ULONG i = 0; i < n; i++) {
      if (entries[i].lpCompletionKey == KEY_STOP) {
        stop = true;
        continue;
      }
      port->incoming_.push_back(completion{reinterpret_cast<io_op*>(entries[i].lpOverlapped),
                                           entries[i].dwNumberOfBytesTransferred, 0, true});
    }
    ReleaseSRWLockExclusive(&port->lock_);
    if (stop) return 0;
    uv_async_send(&port->async_);
  }
}

void completion_port::take(std::vector<completion>* out) {
  AcquireSRWLockExclusive(&lock_);
  owed_ -= incoming_.size();
  if (out->empty()) out->swap(incoming_);
  else out->insert(out->end(), incoming_.begin(), incoming_.end());
  incoming_.clear();
  ReleaseSRWLockExclusive(&lock_);
}

bool completion_port::stop() {
  if (worker_ == nullptr) return owed_ == 0;
  PostQueuedCompletionStatus(iocp_, 0, KEY_STOP, nullptr);
  WaitForSingleObject(worker_, INFINITE);
  CloseHandle(worker_);
  worker_ = nullptr;
  // What the worker collected last is accounted for, not handled: the reactor is going away.
  std::vector<completion> unhandled;
  take(&unhandled);
  DWORD started = GetTickCount();
  while (owed_ > 0) {
    DWORD waited = GetTickCount() - started;
    if (waited >= STOP_WAIT_MS) return false;
    OVERLAPPED_ENTRY entries[WORKER_BATCH];
    ULONG n = 0;
    if (!GetQueuedCompletionStatusEx(iocp_, entries, WORKER_BATCH, &n, STOP_WAIT_MS - waited, FALSE)) return false;
    for (ULONG i = 0; i < n; i++) {
      if (entries[i].lpCompletionKey != KEY_STOP) owed_--;
    }
  }
  return true;
}

void completion_port::close(uv_close_cb on_closed) {
  if (iocp_ != nullptr) CloseHandle(iocp_);
  iocp_ = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(&async_), on_closed);
}

}  // namespace ringport
