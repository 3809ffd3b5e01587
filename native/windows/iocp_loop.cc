// The IOCP loop: the completion port, its worker's wake-ups, and one batch
// of events to JS per wake-up (see iocp.h).
#include <cerrno>
#include <cstring>
#include <memory>
#include <new>

#include "iocp.h"
#include "win_errors.h"

namespace ringport {

namespace {

void handle(iocp_reactor* w, const completion& done) {
  if (done.op->type == OP_ACCEPT || done.op->type == OP_ACCEPT_RETRY) iocp_on_listener(w, done);
  else iocp_on_stream(w, done);
}

// One wake-up: handle every completion, deliver one batch, apply JS's commands.
void process(iocp_reactor* w) {
  w->in_process = true;
  // Requests that finished at once come first: they are the older ones.
  w->batch.swap(w->ready);
  w->port.take(&w->batch);
  w->stats.completions += w->batch.size();
  for (size_t i = 0; i < w->batch.size() && !w->destroyed; i++) handle(w, w->batch[i]);
  w->batch.clear();
  if (!w->destroyed) deliver(w);
  w->in_process = false;
  if (w->destroyed) return;
  apply_commands(w);
  // Requests that finished at once, and events still held, get the next wake-up.
  if (has_events(w) || !w->ready.empty()) iocp_wake(w);
}

void on_async(uv_async_t* handle) {
  auto* w = static_cast<iocp_reactor*>(handle->data);
  w->stats.wakeups++;
  process(w);
}

void on_handle_closed(uv_handle_t* handle) {
  auto* w = static_cast<iocp_reactor*>(handle->data);
  // A request the kernel never returned may still write to its OVERLAPPED.
  if (!w->leak) delete w;
}

int probe() {
  WSADATA wsa;
  int ret = WSAStartup(MAKEWORD(2, 2), &wsa);
  if (ret != 0) return -errno_of(static_cast<DWORD>(ret));
  HANDLE iocp = CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 1);
  if (iocp == nullptr) {
    ret = -errno_of(GetLastError());
  } else {
    winsock_ext ext;
    ret = load_winsock_ext(AF_INET, &ext);
    CloseHandle(iocp);
  }
  WSACleanup();
  return ret;
}

int create(uv_loop_t* loop, const reactor_options& options, const reactor_shared& shared, reactor** out) {
  std::unique_ptr<iocp_reactor> w(new (std::nothrow) iocp_reactor(loop, options, shared));
  if (!w) return -ENOMEM;
  if (w->options.recv_buffer_bytes == 0) w->options.recv_buffer_bytes = 16384;
  WSADATA wsa;
  int ret = WSAStartup(MAKEWORD(2, 2), &wsa);
  if (ret != 0) return -errno_of(static_cast<DWORD>(ret));
  w->wsa_started = true;
  ret = load_winsock_ext(AF_INET, &w->ext_v4);
  if (ret == 0) ret = w->port.open(loop, on_async, w.get());
  if (ret < 0) {
    WSACleanup();
    return ret;
  }
  w->keepalive = reinterpret_cast<uv_handle_t*>(w->port.async());
  *out = w.release();
  return 0;
}

void flushed(reactor* r) {
  iocp_reactor* w = iocp_of(r);
  // What finished at once and events raised here (a connection closed on
  // the spot) need a wake-up of their own.
  if (has_events(w) || !w->ready.empty()) iocp_wake(w);
}

// Idle connections hold no receive buffer here: a zero-byte receive needs none.
void stats(reactor*, reactor_stats* stats) { stats->recv_buffers = 0; }

void destroy(reactor* r) {
  iocp_reactor* w = iocp_of(r);
  w->destroyed = true;
  // Closing every socket cancels every request; then the worker stops and
  // the packets still owed are collected, so no OVERLAPPED outlives its memory.
  close_streams(w);
  for (auto& l : w->listeners) {
    if (l) iocp_destroy_listener(w, static_cast<iocp_listener&>(*l));
  }
  w->leak = !w->port.stop();
  if (!w->leak) release_queues(w);
  w->ready.clear();
  if (w->wsa_started) WSACleanup();
  w->port.close(on_handle_closed);
}

}  // namespace

iocp_reactor::iocp_reactor(uv_loop_t* loop, const reactor_options& options, const reactor_shared& shared)
    : reactor(&iocp_mechanism, sizeof(iocp_conn), loop, options, shared) {}

void iocp_reset_op(io_op& op, iocp_op type, uint32_t owner, uint32_t gen) {
  std::memset(&op.ov, 0, sizeof(op.ov));
  op.type = type;
  op.owner = owner;
  op.gen = gen;
}

void iocp_wake(iocp_reactor* w) { uv_async_send(w->port.async()); }

// Pending: the port will get a packet. Done at once: with skip mode on, no
// packet comes, so the outcome joins the `ready` list; without it, the
// packet comes anyway. Failed at once: no packet, ever.
void iocp_issued(iocp_reactor* w, io_op& op, bool skip_on_success, bool done_now, DWORD bytes) {
  w->stats.submits++;
  if (done_now) {
    if (skip_on_success) w->ready.push_back(completion{&op, bytes, 0, false});
    else w->port.expect();
    return;
  }
  DWORD error = static_cast<DWORD>(WSAGetLastError());
  if (error == WSA_IO_PENDING) w->port.expect();
  else w->ready.push_back(completion{&op, 0, error, false});
}

// A packet's outcome is the NTSTATUS in ov.Internal; WSAGetOverlappedResult translates it.
DWORD iocp_error_of(const completion& done, SOCKET sock) {
  if (!done.from_port || static_cast<LONG>(done.op->ov.Internal) >= 0) return done.error;
  DWORD bytes = 0, flags = 0;
  if (WSAGetOverlappedResult(sock, &done.op->ov, &bytes, FALSE, &flags)) return 0;
  return static_cast<DWORD>(WSAGetLastError());
}

const winsock_ext* iocp_ext_for(iocp_reactor* w, int family, int* error) {
  winsock_ext& ext = family == AF_INET6 ? w->ext_v6 : w->ext_v4;
  if (ext.accept_ex == nullptr) {
    *error = load_winsock_ext(family, &ext);
    if (*error < 0) return nullptr;
  }
  return &ext;
}

extern const mechanism iocp_mechanism = {
    "iocp",
    probe,
    create,
    iocp_listen,
    iocp_close_listener,
    flushed,
    stats,
    destroy,
    &iocp_stream_ops,
};

}  // namespace ringport
