// The IOCP reactor: reactor.h on Windows, with the io_uring reactor's
// observable behaviour (native/linux/uring_reactor.cc): the same events, the
// same close reasons, the same per-slot queue accounting.
//
// Requests are issued on the JS thread and complete on the port; a worker
// thread (completion_port.h) hands the packets back, and on each wake-up the
// reactor handles them all, gives JS one batch of events, and applies the
// commands JS queued meanwhile.
//
// - Listening: ACCEPTS_AHEAD AcceptEx requests stay posted on each listener.
// - Dialling: ConnectEx on a socket bound to the wildcard address.
// - Receiving: an idle connection has a zero-byte WSARecv posted, which pins
//   no buffer; when it completes the reactor reads what is there with plain
//   non-blocking recv calls straight into the batch, then posts it again.
// - Sending: one WSASend at a time per connection, gathering every queued
//   slice; a partial send resumes where it stopped.
// - A request that succeeds at once on a socket in
//   FILE_SKIP_COMPLETION_PORT_ON_SUCCESS mode posts no packet; it, and one that
//   fails at once, goes on the `ready` list and is handled on the next
//   wake-up exactly like a packet, so every outcome takes one path.
// - Closing cancels a connection's requests (CancelIoEx); the slot is released
//   only when the last one has come back, and each request carries the slot's
//   generation, so no completion can reach a connection that reused the slot.
#include "../reactor.h"
#include "../reactor_common.h"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

#include "../send_queue.h"
#include "../slab.h"
#include "completion_port.h"
#include "win_errors.h"
#include "winsock.h"

namespace ringport {

namespace {

enum op_type : uint8_t {
  OP_ACCEPT = 1,
  OP_ACCEPT_RETRY,
  OP_RECV,
  OP_SEND,
  OP_CONNECT,
};

// WSABUFs per WSASend: enough to carry a tick's worth of packets in one call.
constexpr int MAX_BUFS = 64;
// AcceptEx requests kept posted per listener, as libuv does: a burst of
// logins between two wake-ups is taken from the backlog without waiting.
constexpr int ACCEPTS_AHEAD = 32;
// After running out of sockets the listener posts again after this pause,
// not in a hot loop.
constexpr DWORD ACCEPT_RETRY_MS = 100;
// AcceptEx wants room for each address plus 16 bytes.
constexpr DWORD ACCEPT_ADDRESS_BYTES = sizeof(sockaddr_in6) + 16;
// Bytes read from one connection per wake-up before the others get a turn.
constexpr uint32_t READ_BUDGET = 256 * 1024;

struct conn {
  uint32_t gen = 0;
  bool in_use = false;
  SOCKET sock = INVALID_SOCKET;
  conn_state state = CS_OPEN;
  uint8_t ops = 0;       // requests not yet handled for this slot
  bool reading = false;  // input is watched: a zero-byte receive is posted or about to be
  bool send_inflight = false;
  bool over_high = false;
  bool dirty = false;
  bool skip_on_success = false;
  int32_t close_reason = RP_CLOSE_LOCAL;
  int32_t close_errno = 0;
  uint32_t high_water_mark = 0;
  uint32_t low_water_mark = 0;
  send_queue queue;
  io_op recv_op;  // the zero-byte WSARecv
  io_op send_op;  // WSASend; ConnectEx while dialling
  sockaddr_storage peer = {};
};

struct accept_op {
  io_op op;  // first: the port hands back &op.ov
  SOCKET sock = INVALID_SOCKET;
  bool posted = false;
  char addresses[2 * ACCEPT_ADDRESS_BYTES];
};

struct listener {
  SOCKET sock = INVALID_SOCKET;
  int family = AF_INET;
  bool skip_on_success = false;
  uint32_t high_water_mark = 0;  // given to each connection it accepts
  uint32_t low_water_mark = 0;
  int ops = 0;
  bool closing = false;
  accept_op accepts[ACCEPTS_AHEAD];
  // The pause after running out of sockets: a timer posts retry_op to the port.
  HANDLE iocp = nullptr;
  HANDLE retry_timer = nullptr;
  io_op retry_op;
  std::atomic<bool> retry_posted{false};
};

}  // namespace

struct reactor {
  uv_loop_t* loop = nullptr;
  reactor_options options;
  reactor_shared shared = {};
  completion_port port;
  bool wsa_started = false;
  winsock_ext ext_v4;
  winsock_ext ext_v6;
  send_memory send_mem;  // before conns: their queues hold its blocks
  slab<conn> conns;
  std::vector<std::unique_ptr<listener>> listeners;  // index = listener id
  uint32_t live_listeners = 0;

  std::vector<completion> batch;  // this wake-up's completions
  std::vector<completion> ready;  // requests that finished at once, for the next wake-up
  std::unique_ptr<uint8_t[]> scratch;  // one recv's worth

  // Events for JS wait here (see reactor_common.h).
  std::vector<int32_t> events;
  std::vector<uint8_t> staging;  // the received bytes DATA events point into
  std::vector<uint32_t> dirty;   // slots that got new sends this flush
  bool in_process = false;
  bool destroyed = false;
  bool leak = false;  // some request never came back: its memory must stay

  reactor_stats stats = {};
};

namespace {

// -- requests -----------------------------------------------------------------

void reset_op(io_op& op, op_type type, uint32_t owner, uint32_t gen) {
  std::memset(&op.ov, 0, sizeof(op.ov));
  op.type = type;
  op.owner = owner;
  op.gen = gen;
}

void wake(reactor* r) { uv_async_send(r->port.async()); }

// Records how an overlapped call ended. Pending: the port will get a packet.
// Done at once: with skip mode on, no packet comes, so the outcome joins the
// `ready` list; without it, the packet comes anyway. Failed at once: no
// packet, ever. WSAGetLastError must still hold the call's error.
void issued(reactor* r, io_op& op, bool skip_on_success, bool done_now, DWORD bytes) {
  r->stats.submits++;
  if (done_now) {
    if (skip_on_success) r->ready.push_back(completion{&op, bytes, 0, false});
    else r->port.expect();
    return;
  }
  DWORD error = static_cast<DWORD>(WSAGetLastError());
  if (error == WSA_IO_PENDING) r->port.expect();
  else r->ready.push_back(completion{&op, 0, error, false});
}

// The Winsock error a completion carries, 0 for success. A packet's outcome
// is the NTSTATUS in ov.Internal; WSAGetOverlappedResult translates it.
DWORD error_of(const completion& done, SOCKET sock) {
  if (!done.from_port || static_cast<LONG>(done.op->ov.Internal) >= 0) return done.error;
  DWORD bytes = 0, flags = 0;
  if (WSAGetOverlappedResult(sock, &done.op->ov, &bytes, FALSE, &flags)) return 0;
  return static_cast<DWORD>(WSAGetLastError());
}

const winsock_ext* ext_for(reactor* r, int family, int* error) {
  winsock_ext& ext = family == AF_INET6 ? r->ext_v6 : r->ext_v4;
  if (ext.accept_ex == nullptr) {
    *error = load_winsock_ext(family, &ext);
    if (*error < 0) return nullptr;
  }
  return &ext;
}

void update_ref(reactor* r) {
  if (r->destroyed) return;
  // Like a socket, the reactor keeps the process alive only while it has work.
  auto* handle = reinterpret_cast<uv_handle_t*>(r->port.async());
  if (r->conns.live() + r->live_listeners > 0) uv_ref(handle);
  else uv_unref(handle);
}

// -- events to JS -------------------------------------------------------------

// -- connections --------------------------------------------------------------

void arm_recv(reactor* r, uint32_t slot, conn& c) {
  reset_op(c.recv_op, OP_RECV, slot, c.gen);
  WSABUF none = {0, nullptr};
  DWORD bytes = 0, flags = 0;
  int ret = WSARecv(c.sock, &none, 1, &bytes, &flags, &c.recv_op.ov, nullptr);
  c.ops++;
  issued(r, c.recv_op, c.skip_on_success, ret == 0, bytes);
}

void start_send(reactor* r, uint32_t slot, conn& c) {
  // Winsock captures the WSABUFs before WSASend returns: a stack array will do.
  WSABUF bufs[MAX_BUFS];
  int n = c.queue.peek(MAX_BUFS, [&bufs](int i, uint8_t* data, uint32_t length) {
    bufs[i].buf = reinterpret_cast<char*>(data);
    bufs[i].len = length;
  });
  reset_op(c.send_op, OP_SEND, slot, c.gen);
  DWORD sent = 0;
  int ret = WSASend(c.sock, bufs, static_cast<DWORD>(n), &sent, 0, &c.send_op.ov, nullptr);
  c.send_inflight = true;
  c.ops++;
  issued(r, c.send_op, c.skip_on_success, ret == 0, sent);
}

void finish_close(reactor* r, uint32_t slot, conn& c) {
  if (c.sock != INVALID_SOCKET) closesocket(c.sock);
  c.sock = INVALID_SOCKET;
  c.queue.clear(r->send_mem);
  r->shared.queued[slot] = 0;
  push_event(r, RP_EV_CLOSE, slot, c.gen, c.close_reason, -c.close_errno, 0);
  r->conns.free(slot);
  update_ref(r);
}

// Cancels what the kernel holds for this connection; the slot is released
// when the last request has returned, never before.
void begin_closing(reactor* r, uint32_t slot, conn& c, int32_t reason, int32_t err) {
  if (c.state == CS_CLOSING) return;
  c.state = CS_CLOSING;
  c.close_reason = reason;
  c.close_errno = err;
  // A WSASend in flight still reads its bytes: they go when it returns.
  if (!c.send_inflight) c.queue.clear(r->send_mem);
  r->shared.queued[slot] = 0;
  if (c.ops == 0) {
    finish_close(r, slot, c);
    return;
  }
  if (!CancelIoEx(reinterpret_cast<HANDLE>(c.sock), nullptr) && GetLastError() != ERROR_NOT_FOUND) {
    // The handle could not cancel (a layered provider's, say); closing the
    // socket cancels everything posted on it, whoever's handle it is.
    closesocket(c.sock);
    c.sock = INVALID_SOCKET;
  }
}

void abort_conn(reactor* r, uint32_t slot, conn& c, int32_t reason, int32_t err) {
  // SO_LINGER 0: closesocket resets the connection instead of lingering.
  struct linger lg = {1, 0};
  setsockopt(c.sock, SOL_SOCKET, SO_LINGER, reinterpret_cast<const char*>(&lg), sizeof(lg));
  begin_closing(r, slot, c, reason, err);
}

void send_fin(reactor* r, uint32_t slot, conn& c) {
  if (shutdown(c.sock, SD_SEND) != 0 || !c.reading) {
    begin_closing(r, slot, c, RP_CLOSE_LOCAL, 0);
    return;
  }
  c.state = CS_FIN_SENT;
}

// -- completions --------------------------------------------------------------

// The peer's FIN. As node:net does by default, flush what is queued, then close.
void on_peer_fin(reactor* r, uint32_t slot, conn& c) {
  c.reading = false;
  if (c.state == CS_FIN_SENT) {
    begin_closing(r, slot, c, RP_CLOSE_LOCAL, 0);
  } else if (c.state == CS_DRAINING) {
    c.state = CS_PEER_DONE;
    c.close_reason = RP_CLOSE_LOCAL;
    if (!c.send_inflight && c.queue.empty()) on_queue_empty(r, slot, c);
  } else if (c.state == CS_OPEN) {
    c.state = CS_PEER_DONE;
    c.close_reason = RP_CLOSE_PEER;
    if (!c.send_inflight && c.queue.empty()) on_queue_empty(r, slot, c);
  }
}

// The zero-byte receive said input is there: read it into this batch, up to
// the connection's share, then watch again.
void read_input(reactor* r, uint32_t slot, uint32_t gen) {
  conn* c = &r->conns.at(slot);
  const int chunk = static_cast<int>(r->options.recv_buffer_bytes);
  uint32_t budget = READ_BUDGET;
  for (;;) {
    int n = recv(c->sock, reinterpret_cast<char*>(r->scratch.get()), chunk, 0);
    if (n > 0) {
      // Bytes that arrive after this side began closing are dropped, as on net.
      if (c->state == CS_OPEN) {
        push_event(r, RP_EV_DATA, slot, gen, static_cast<int32_t>(r->staging.size()), n, 0);
        r->staging.insert(r->staging.end(), r->scratch.get(), r->scratch.get() + n);
        r->stats.bytes_in += static_cast<uint64_t>(n);
        r->stats.reads++;
      }
      budget = static_cast<uint32_t>(n) >= budget ? 0 : budget - static_cast<uint32_t>(n);
      // A short read emptied the socket; a full one may not have.
      if (n < chunk || budget == 0) break;
      continue;
    }
    if (n == 0) {
      on_peer_fin(r, slot, *c);
      return;
    }
    DWORD error = static_cast<DWORD>(WSAGetLastError());
    if (error == WSAEWOULDBLOCK) break;
    c->reading = false;
    abort_conn(r, slot, *c, RP_CLOSE_ERROR, errno_of(error));
    return;
  }
  // More may have come meanwhile: then this receive completes at once.
  arm_recv(r, slot, *c);
}

void on_recv(reactor* r, uint32_t slot, conn& c, const completion& done) {
  c.ops--;
  if (c.state == CS_CLOSING) {
    if (c.ops == 0) finish_close(r, slot, c);
    return;
  }
  DWORD error = error_of(done, c.sock);
  if (error != 0) {
    c.reading = false;
    abort_conn(r, slot, c, RP_CLOSE_ERROR, errno_of(error));
    return;
  }
  read_input(r, slot, c.gen);
}

void on_send(reactor* r, uint32_t slot, conn& c, const completion& done) {
  c.ops--;
  c.send_inflight = false;
  if (c.state == CS_CLOSING) {
    c.queue.clear(r->send_mem);
    if (c.ops == 0) finish_close(r, slot, c);
    return;
  }
  DWORD error = error_of(done, c.sock);
  if (error != 0) {
    abort_conn(r, slot, c, RP_CLOSE_ERROR, errno_of(error));
    return;
  }
  r->stats.bytes_out += done.bytes;
  c.queue.consume(r->send_mem, done.bytes);
  uint64_t queued = c.queue.bytes();
  r->shared.queued[slot] = static_cast<uint32_t>(queued);
  if (c.over_high && queued <= c.low_water_mark) {
    c.over_high = false;
    uint32_t gen = c.gen;
    if (c.state == CS_OPEN) push_event(r, RP_EV_DRAIN, slot, gen, 0, 0, 0);
    // A full batch may have gone to JS on the way, and JS may have closed this connection.
    if (r->destroyed || r->conns.find(slot, gen) == nullptr || c.state == CS_CLOSING) return;
  }
  if (!c.queue.empty()) start_send(r, slot, c);
  else on_queue_empty(r, slot, c);
}

void on_connect(reactor* r, uint32_t slot, conn& c, const completion& done) {
  c.ops--;
  if (c.state == CS_CLOSING) {
    if (c.ops == 0) finish_close(r, slot, c);
    return;
  }
  DWORD error = error_of(done, c.sock);
  // Without SO_UPDATE_CONNECT_CONTEXT, shutdown() and getpeername() fail on
  // the socket on Windows (Wine does not mind): check it like the dial itself.
  if (error == 0 && setsockopt(c.sock, SOL_SOCKET, SO_UPDATE_CONNECT_CONTEXT, nullptr, 0) != 0) {
    error = static_cast<DWORD>(WSAGetLastError());
  }
  if (error == 0 && connected_to_self(c.sock, c.peer)) error = WSAECONNREFUSED;
  int port = port_of(c.peer);
  int32_t ipv4 = static_cast<int32_t>(ipv4_of(c.peer));
  uint32_t gen = c.gen;
  if (error != 0) {
    // A failed dial reports only its connect outcome: no close event follows.
    closesocket(c.sock);
    c.sock = INVALID_SOCKET;
    r->conns.free(slot);
    update_ref(r);
    push_event(r, RP_EV_CONNECT, slot, gen, -errno_of(error), port, ipv4);
    return;
  }
  c.state = CS_OPEN;
  c.reading = true;
  arm_recv(r, slot, c);
  push_event(r, RP_EV_CONNECT, slot, gen, 0, port, ipv4);
}

// -- listeners ----------------------------------------------------------------

void CALLBACK on_retry_timer(void* param, BOOLEAN) {
  auto* l = static_cast<listener*>(param);
  l->retry_posted = true;
  PostQueuedCompletionStatus(l->iocp, 0, 0, &l->retry_op.ov);
}

// Out of sockets (or worse): post the missing accepts again after a pause;
// closing connections will have freed some by then.
void schedule_retry(reactor* r, uint32_t id, listener& l) {
  if (l.retry_timer != nullptr) return;
  reset_op(l.retry_op, OP_ACCEPT_RETRY, id, 0);
  l.retry_posted = false;
  if (!CreateTimerQueueTimer(&l.retry_timer, nullptr, on_retry_timer, &l, ACCEPT_RETRY_MS, 0, WT_EXECUTEONLYONCE)) {
    // No timer either: the listener waits for its next accepted connection to post again.
    l.retry_timer = nullptr;
    return;
  }
  l.ops++;
  r->port.expect();
}

// Returns false when no socket could be made for the accept.
bool post_accept(reactor* r, uint32_t id, listener& l, accept_op& a) {
  int error = 0;
  const winsock_ext* ext = ext_for(r, l.family, &error);
  if (ext == nullptr) return false;
  a.sock = open_socket(l.family);
  if (a.sock == INVALID_SOCKET) return false;
  reset_op(a.op, OP_ACCEPT, id, 0);
  DWORD bytes = 0;
  BOOL done = ext->accept_ex(l.sock, a.sock, a.addresses, 0, ACCEPT_ADDRESS_BYTES, ACCEPT_ADDRESS_BYTES, &bytes,
                             &a.op.ov);
  a.posted = true;
  l.ops++;
  issued(r, a.op, l.skip_on_success, done != FALSE, bytes);
  return true;
}

void fill_accepts(reactor* r, uint32_t id, listener& l) {
  for (accept_op& a : l.accepts) {
    if (a.posted) continue;
    if (!post_accept(r, id, l, a)) {
      schedule_retry(r, id, l);
      return;
    }
  }
}

void release_listener(reactor* r, uint32_t id) { r->listeners[id].reset(); }

void adopt(reactor* r, uint32_t listener_id, const listener& l, SOCKET sock) {
  // SO_UPDATE_ACCEPT_CONTEXT gives the socket the listener's properties;
  // without it shutdown() and getpeername() fail on Windows, though Wine lets
  // them pass, so each result is checked here rather than trusted.
  SOCKET listen_sock = l.sock;
  bool skip = false;
  sockaddr_storage peer = {};
  int peer_len = sizeof(peer);
  if (setsockopt(sock, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, reinterpret_cast<const char*>(&listen_sock),
                 sizeof(listen_sock)) != 0 ||
      getpeername(sock, reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0 ||  // reset before we got to it
      attach_socket(sock, r->port.handle(), &skip) < 0) {
    closesocket(sock);
    return;
  }
  int64_t allocated = r->conns.alloc(r->options.max_connections);
  if (allocated < 0) {
    // Every slot is taken: refuse this one rather than stop accepting.
    closesocket(sock);
    return;
  }
  uint32_t slot = static_cast<uint32_t>(allocated);
  conn& c = r->conns.at(slot);
  c.sock = sock;
  c.state = CS_OPEN;
  c.ops = 0;
  c.reading = true;
  c.send_inflight = false;
  c.over_high = false;
  c.skip_on_success = skip;
  c.close_reason = RP_CLOSE_LOCAL;
  c.close_errno = 0;
  c.high_water_mark = l.high_water_mark;
  c.low_water_mark = l.low_water_mark;
  c.peer = peer;
  set_nodelay(sock);
  arm_recv(r, slot, c);
  update_ref(r);
  push_event(r, RP_EV_ACCEPT, slot, c.gen, static_cast<int32_t>(listener_id), port_of(peer),
             static_cast<int32_t>(ipv4_of(peer)));
}

bool peer_gave_up(DWORD error) {
  return error == WSAECONNRESET || error == ERROR_NETNAME_DELETED || error == WSAECONNABORTED ||
         error == ERROR_CONNECTION_ABORTED;
}

void on_accept(reactor* r, accept_op& a, const completion& done) {
  uint32_t id = a.op.owner;
  listener* l = r->listeners[id].get();
  l->ops--;
  a.posted = false;
  SOCKET sock = a.sock;
  a.sock = INVALID_SOCKET;
  if (l->closing) {
    closesocket(sock);
    if (l->ops == 0) release_listener(r, id);
    return;
  }
  DWORD error = error_of(done, l->sock);
  if (error == 0) {
    adopt(r, id, *l, sock);
    // Delivering the accept may have closed the listener, or everything.
    l = r->destroyed ? nullptr : r->listeners[id].get();
    if (l == nullptr || l->closing) return;
  } else {
    closesocket(sock);
    // A peer that gave up before we took it costs nothing; anything else
    // (out of memory or sockets) gets a pause before the next try.
    if (!peer_gave_up(error)) {
      schedule_retry(r, id, *l);
      return;
    }
  }
  if (!post_accept(r, id, *l, a)) schedule_retry(r, id, *l);
}

void on_accept_retry(reactor* r, uint32_t id) {
  listener* l = r->listeners[id].get();
  l->ops--;
  DeleteTimerQueueTimer(nullptr, l->retry_timer, nullptr);
  l->retry_timer = nullptr;
  if (l->closing) {
    if (l->ops == 0) release_listener(r, id);
    return;
  }
  fill_accepts(r, id, *l);
}

void handle(reactor* r, const completion& done) {
  io_op* op = done.op;
  switch (op->type) {
    case OP_ACCEPT:
      on_accept(r, *reinterpret_cast<accept_op*>(op), done);
      return;
    case OP_ACCEPT_RETRY:
      on_accept_retry(r, op->owner);
      return;
    default:
      break;
  }
  // A slot is released only after its last request returned, so this finds
  // it; the generation makes sure of it.
  conn* c = r->conns.find(op->owner, op->gen);
  if (c == nullptr) return;
  switch (op->type) {
    case OP_RECV:
      on_recv(r, op->owner, *c, done);
      break;
    case OP_SEND:
      on_send(r, op->owner, *c, done);
      break;
    case OP_CONNECT:
      on_connect(r, op->owner, *c, done);
      break;
    default:
      break;
  }
}

// One wake-up: handle every completion, deliver one batch, apply JS's commands.
void process(reactor* r) {
  r->in_process = true;
  // Requests that finished at once come first: they are the older ones.
  r->batch.swap(r->ready);
  r->port.take(&r->batch);
  for (size_t i = 0; i < r->batch.size(); i++) handle(r, r->batch[i]);
  r->batch.clear();
  deliver(r);
  r->in_process = false;
  if (r->destroyed) return;
  apply_commands(r);
  // Requests that finished at once, and events still held, get the next wake-up.
  if (has_events(r) || !r->ready.empty()) wake(r);
}

void on_async(uv_async_t* handle) {
  auto* r = static_cast<reactor*>(handle->data);
  r->stats.wakeups++;
  process(r);
}

void on_handle_closed(uv_handle_t* handle) {
  auto* r = static_cast<reactor*>(handle->data);
  // A request the kernel never returned may still write to its OVERLAPPED.
  if (!r->leak) delete r;
}

}  // namespace

int reactor_probe() {
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

int reactor_create(uv_loop_t* loop, const reactor_options& options, const reactor_shared& shared, reactor** out) {
  std::unique_ptr<reactor> r(new (std::nothrow) reactor());
  if (!r) return -ENOMEM;
  r->loop = loop;
  r->options = options;
  r->shared = shared;
  if (r->options.recv_buffer_bytes == 0) r->options.recv_buffer_bytes = 16384;
  r->scratch.reset(new (std::nothrow) uint8_t[r->options.recv_buffer_bytes]);
  if (!r->scratch) return -ENOMEM;
  WSADATA wsa;
  int ret = WSAStartup(MAKEWORD(2, 2), &wsa);
  if (ret != 0) return -errno_of(static_cast<DWORD>(ret));
  r->wsa_started = true;
  ret = load_winsock_ext(AF_INET, &r->ext_v4);
  if (ret == 0) ret = r->port.open(loop, on_async, r.get());
  if (ret < 0) {
    WSACleanup();
    return ret;
  }
  r->staging.reserve(64 * 1024);
  *out = r.release();
  update_ref(*out);
  return 0;
}

int reactor_listen(reactor* r, const listen_request& request, int* listener_id, int* bound_port) {
  // request.reuse_port is never set here: Windows has no SO_REUSEPORT, and the JS side
  // refuses the option on iocp with ENOTSUP before it reaches the reactor (reuse-port.ts).
  auto l = std::make_unique<listener>();
  int ret = open_listener(request.host, request.port, request.backlog, r->port.handle(), &l->sock, &l->family,
                          &l->skip_on_success, bound_port);
  if (ret < 0) return ret;
  int error = 0;
  if (ext_for(r, l->family, &error) == nullptr) {
    closesocket(l->sock);
    return error;
  }
  l->high_water_mark = request.marks.high_water_mark;
  l->low_water_mark = request.marks.low_water_mark;
  l->iocp = r->port.handle();
  uint32_t id = static_cast<uint32_t>(r->listeners.size());
  r->listeners.push_back(std::move(l));
  r->live_listeners++;
  fill_accepts(r, id, *r->listeners[id]);
  *listener_id = static_cast<int>(id);
  update_ref(r);
  if (!r->in_process && !r->ready.empty()) wake(r);
  return 0;
}

int reactor_close_listener(reactor* r, int listener_id) {
  if (listener_id < 0 || static_cast<size_t>(listener_id) >= r->listeners.size()) return -EINVAL;
  listener* l = r->listeners[listener_id].get();
  if (l == nullptr || l->closing) return 0;
  l->closing = true;
  r->live_listeners--;
  // Closing the socket refuses new connections at once and cancels every
  // AcceptEx posted on it; the listener goes when the last has returned.
  closesocket(l->sock);
  l->sock = INVALID_SOCKET;
  if (l->ops == 0) release_listener(r, static_cast<uint32_t>(listener_id));
  update_ref(r);
  return 0;
}

int reactor_connect(reactor* r, const char* ip, int port, const water_marks& marks, uint32_t* slot_out,
                    uint32_t* gen_out) {
  sockaddr_storage addr;
  int len;
  int ret = parse_address(ip, port, &addr, &len);
  if (ret < 0) return ret;
  const winsock_ext* ext = ext_for(r, addr.ss_family, &ret);
  if (ext == nullptr) return ret;
  SOCKET sock = open_socket(addr.ss_family);
  if (sock == INVALID_SOCKET) return wsa_result();
  // ConnectEx wants a bound socket.
  sockaddr_storage local = {};
  local.ss_family = addr.ss_family;
  if (addr.ss_family == AF_INET6) reinterpret_cast<sockaddr_in6&>(local).sin6_addr = in6addr_any;
  bool skip = false;
  if (bind(sock, reinterpret_cast<sockaddr*>(&local), len) != 0) ret = wsa_result();
  if (ret == 0) ret = attach_socket(sock, r->port.handle(), &skip);
  if (ret < 0) {
    closesocket(sock);
    return ret;
  }
  set_nodelay(sock);
  int64_t allocated = r->conns.alloc(r->options.max_connections);
  if (allocated < 0) {
    closesocket(sock);
    return -EMFILE;
  }
  uint32_t slot = static_cast<uint32_t>(allocated);
  conn& c = r->conns.at(slot);
  c.sock = sock;
  c.state = CS_CONNECTING;
  c.ops = 0;
  c.reading = false;
  c.send_inflight = false;
  c.over_high = false;
  c.skip_on_success = skip;
  c.close_reason = RP_CLOSE_LOCAL;
  c.close_errno = 0;
  c.high_water_mark = marks.high_water_mark;
  c.low_water_mark = marks.low_water_mark;
  c.peer = addr;
  reset_op(c.send_op, OP_CONNECT, slot, c.gen);
  DWORD sent = 0;
  BOOL done = ext->connect_ex(sock, reinterpret_cast<sockaddr*>(&c.peer), len, nullptr, 0, &sent, &c.send_op.ov);
  c.ops++;
  issued(r, c.send_op, skip, done != FALSE, sent);
  if (!r->in_process && !r->ready.empty()) wake(r);
  *slot_out = slot;
  *gen_out = c.gen;
  update_ref(r);
  return 0;
}

int reactor_flush(reactor* r) {
  int ret = apply_commands(r);
  // Inside a wake-up the reactor looks at `ready` at its end; from a JS timer,
  // what finished at once and events raised here (a connection closed on the
  // spot) need a wake-up of their own.
  if (!r->in_process && (has_events(r) || !r->ready.empty())) wake(r);
  return ret;
}

int reactor_unsent(reactor* r, uint32_t slot, uint32_t gen, uint64_t* bytes, bool* kernel_counted) {
  conn* c = r->conns.find(slot, gen);
  if (c == nullptr) return -ENOENT;
  // Winsock has no portable count of unacknowledged bytes: the queue only.
  *bytes = c->queue.bytes();
  *kernel_counted = false;
  return 0;
}

int reactor_peer(reactor* r, uint32_t slot, uint32_t gen, char* host, size_t host_length, int* port) {
  conn* c = r->conns.find(slot, gen);
  if (c == nullptr) return -ENOENT;
  const void* src = c->peer.ss_family == AF_INET
                        ? static_cast<const void*>(&reinterpret_cast<sockaddr_in&>(c->peer).sin_addr)
                        : static_cast<const void*>(&reinterpret_cast<sockaddr_in6&>(c->peer).sin6_addr);
  if (inet_ntop(c->peer.ss_family, src, host, host_length) == nullptr) return wsa_result();
  *port = port_of(c->peer);
  return 0;
}

void reactor_get_stats(reactor* r, reactor_stats* stats) {
  *stats = r->stats;
  stats->connections = r->conns.live();
  stats->listeners = r->live_listeners;
  // Idle connections hold no receive buffer here: a zero-byte receive needs none.
  stats->recv_buffers = 0;
  uint64_t queued = 0;
  for (uint32_t slot = 0; slot < r->conns.high_water(); slot++) {
    conn& c = r->conns.at(slot);
    if (c.in_use && c.state != CS_CLOSING) queued += c.queue.bytes();
  }
  stats->queued_bytes = queued;
  stats->send_buffer_bytes = r->send_mem.bytes();
}

void reactor_destroy(reactor* r) {
  if (r->destroyed) return;
  r->destroyed = true;
  // Closing every socket cancels every request; then the worker stops and
  // the packets still owed are collected, so no OVERLAPPED outlives its memory.
  for (uint32_t slot = 0; slot < r->conns.high_water(); slot++) {
    conn& c = r->conns.at(slot);
    if (c.in_use && c.sock != INVALID_SOCKET) closesocket(c.sock);
    c.sock = INVALID_SOCKET;
  }
  for (auto& l : r->listeners) {
    if (!l) continue;
    if (l->sock != INVALID_SOCKET) closesocket(l->sock);
    for (accept_op& a : l->accepts) {
      if (a.sock != INVALID_SOCKET) closesocket(a.sock);
    }
    if (l->retry_timer != nullptr) {
      // Waits for a running callback; a timer that never fired posts nothing.
      DeleteTimerQueueTimer(nullptr, l->retry_timer, INVALID_HANDLE_VALUE);
      if (!l->retry_posted) r->port.unexpect();
      l->retry_timer = nullptr;
    }
  }
  r->leak = !r->port.stop();
  if (!r->leak) {
    for (uint32_t slot = 0; slot < r->conns.high_water(); slot++) r->conns.at(slot).queue.clear(r->send_mem);
  }
  r->ready.clear();
  if (r->wsa_started) WSACleanup();
  r->port.close(on_handle_closed);
}

}  // namespace ringport
