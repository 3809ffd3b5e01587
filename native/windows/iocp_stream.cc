// IOCP streams. An idle connection has a zero-byte WSARecv posted, which
// pins no buffer; when it completes the reactor reads what is there with
// plain non-blocking recv calls straight into the batch, then posts it
// again. One WSASend at a time per connection gathers every queued slice; a
// partial send resumes where it stopped. ConnectEx dials from a socket bound
// to the wildcard address. Closing cancels the connection's requests
// (CancelIoEx); the slot is released only when the last one has come back.
#include <cstring>

#include "iocp.h"
#include "win_errors.h"

namespace ringport {

namespace {

// WSABUFs per WSASend: enough to carry a tick's worth of packets in one call.
constexpr int MAX_BUFS = 64;
// Bytes read from one connection per wake-up before the others get a turn.
constexpr uint32_t READ_BUDGET = 256 * 1024;

void start_recv(reactor* r, uint32_t slot, conn& c);

// The zero-byte receive said input is there: read it into this batch, up to
// the connection's share, then watch again.
void read_input(iocp_reactor* w, uint32_t slot, conn& c) {
  const int chunk = static_cast<int>(w->options.recv_buffer_bytes);
  uint32_t budget = READ_BUDGET;
  for (;;) {
    uint8_t* room = stream_input(w, static_cast<size_t>(chunk));
    if (room == nullptr) {
      stream_abort(w, slot, c, RP_CLOSE_ERROR, ENOMEM);
      return;
    }
    int n = recv(c.sock, reinterpret_cast<char*>(room), chunk, 0);
    if (n > 0) {
      stream_received(w, slot, c, static_cast<size_t>(n));
      // It may have closed the connection (out of memory): nothing more to read for it.
      if (!c.in_use || c.state == CS_CLOSING) return;
      budget = static_cast<uint32_t>(n) >= budget ? 0 : budget - static_cast<uint32_t>(n);
      // A short read emptied the socket; a full one may not have.
      if (n < chunk || budget == 0) break;
      continue;
    }
    if (n == 0) {
      stream_peer_fin(w, slot, c);
      return;
    }
    DWORD error = static_cast<DWORD>(WSAGetLastError());
    if (error == WSAEWOULDBLOCK) break;
    stream_fail(w, slot, c, errno_of(error));
    return;
  }
  // More may have come meanwhile: then this receive completes at once.
  start_recv(w, slot, c);
}

void on_recv(iocp_reactor* w, uint32_t slot, conn& c, const completion& done) {
  c.ops--;
  if (stream_closing(w, slot, c)) return;
  DWORD error = iocp_error_of(done, c.sock);
  if (error != 0) {
    stream_fail(w, slot, c, errno_of(error));
    return;
  }
  read_input(w, slot, c);
}

void on_send(iocp_reactor* w, uint32_t slot, conn& c, const completion& done) {
  c.ops--;
  c.send_inflight = false;
  if (stream_closing(w, slot, c)) return;
  DWORD error = iocp_error_of(done, c.sock);
  stream_send_result(w, slot, c, error != 0 ? -errno_of(error) : static_cast<int64_t>(done.bytes));
}

void on_connect(iocp_reactor* w, uint32_t slot, conn& c, const completion& done) {
  c.ops--;
  if (stream_closing(w, slot, c)) return;
  DWORD error = iocp_error_of(done, c.sock);
  // Without SO_UPDATE_CONNECT_CONTEXT, shutdown() and getpeername() fail on
  // the socket on Windows (Wine does not mind): check it like the dial itself.
  if (error == 0 && setsockopt(c.sock, SOL_SOCKET, SO_UPDATE_CONNECT_CONTEXT, nullptr, 0) != 0) {
    error = static_cast<DWORD>(WSAGetLastError());
  }
  stream_connected(w, slot, c, error != 0 ? -errno_of(error) : 0);
}

void start_recv(reactor* r, uint32_t slot, conn& c) {
  iocp_conn& x = conn_ext<iocp_conn>(c);
  iocp_reset_op(x.recv_op, OP_RECV, slot, c.gen);
  WSABUF none = {0, nullptr};
  DWORD bytes = 0, flags = 0;
  int ret = WSARecv(c.sock, &none, 1, &bytes, &flags, &x.recv_op.ov, nullptr);
  c.reading = true;
  c.ops++;
  iocp_issued(iocp_of(r), x.recv_op, x.skip_on_success, ret == 0, bytes);
}

void start_send(reactor* r, uint32_t slot, conn& c) {
  iocp_conn& x = conn_ext<iocp_conn>(c);
  // Winsock captures the WSABUFs before WSASend returns: a stack array will do.
  WSABUF bufs[MAX_BUFS];
  int n = c.queue.peek(MAX_BUFS, [&bufs](int i, uint8_t* data, uint32_t length) {
    bufs[i].buf = reinterpret_cast<char*>(data);
    bufs[i].len = length;
  });
  iocp_reset_op(x.send_op, OP_SEND, slot, c.gen);
  DWORD sent = 0;
  int ret = WSASend(c.sock, bufs, static_cast<DWORD>(n), &sent, 0, &x.send_op.ov, nullptr);
  c.send_inflight = true;
  c.ops++;
  iocp_issued(iocp_of(r), x.send_op, x.skip_on_success, ret == 0, sent);
}

void cancel(reactor*, uint32_t, conn& c) {
  if (!CancelIoEx(reinterpret_cast<HANDLE>(c.sock), nullptr) && GetLastError() != ERROR_NOT_FOUND) {
    // The handle could not cancel (a layered provider's, say); closing the
    // socket cancels everything posted on it, whoever's handle it is.
    closesocket(c.sock);
    c.sock = INVALID_SOCKET;
  }
}

void close_conn(reactor*, uint32_t, conn& c) {
  if (c.sock != INVALID_SOCKET) closesocket(c.sock);
}

int dial(reactor* r, uint32_t slot, conn& c) {
  iocp_reactor* w = iocp_of(r);
  int ret = 0;
  const winsock_ext* ext = iocp_ext_for(w, family_of(c.peer), &ret);
  if (ext == nullptr) return ret;
  SOCKET sock = open_socket(family_of(c.peer));
  if (sock == INVALID_SOCKET) return wsa_result();
  // ConnectEx wants a bound socket.
  sockaddr_storage local = {};
  local.ss_family = static_cast<decltype(local.ss_family)>(family_of(c.peer));
  if (family_of(c.peer) == AF_INET6) reinterpret_cast<sockaddr_in6&>(local).sin6_addr = in6addr_any;
  iocp_conn& x = conn_ext<iocp_conn>(c);
  x.skip_on_success = false;
  if (bind(sock, reinterpret_cast<sockaddr*>(&local), static_cast<int>(c.peer_len)) != 0) ret = wsa_result();
  if (ret == 0) ret = attach_socket(sock, w->port.handle(), &x.skip_on_success);
  if (ret < 0) {
    closesocket(sock);
    return ret;
  }
  socket_set_nodelay(sock);
  c.sock = sock;
  iocp_reset_op(x.send_op, OP_CONNECT, slot, c.gen);
  DWORD sent = 0;
  BOOL done = ext->connect_ex(sock, reinterpret_cast<sockaddr*>(&c.peer), static_cast<int>(c.peer_len), nullptr, 0,
                              &sent, &x.send_op.ov);
  c.ops++;
  iocp_issued(w, x.send_op, x.skip_on_success, done != FALSE, sent);
  if (!w->in_process && !w->ready.empty()) iocp_wake(w);
  return 0;
}

}  // namespace

extern const stream_ops iocp_stream_ops = {start_recv, start_send, cancel, close_conn, dial};

void iocp_on_stream(iocp_reactor* w, const completion& done) {
  io_op* op = done.op;
  // A slot is released only after its last request returned, so this finds
  // it; the generation makes sure of it.
  conn* c = w->conns.find(op->owner, op->gen);
  if (c == nullptr) return;
  switch (op->type) {
    case OP_RECV:
      on_recv(w, op->owner, *c, done);
      break;
    case OP_SEND:
      on_send(w, op->owner, *c, done);
      break;
    case OP_CONNECT:
      on_connect(w, op->owner, *c, done);
      break;
    default:
      break;
  }
}

}  // namespace ringport
