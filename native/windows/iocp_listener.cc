// IOCP listeners: ACCEPTS_AHEAD AcceptEx requests stay posted on each
// listener. Out of sockets (or worse), the missing ones are posted again
// after a pause, from a timer that posts to the port.
#include <memory>

#include "iocp.h"
#include "win_errors.h"

namespace ringport {

namespace {

// After running out of sockets the listener posts again after this pause,
// not in a hot loop.
constexpr DWORD ACCEPT_RETRY_MS = 100;

void CALLBACK on_retry_timer(void* param, BOOLEAN) {
  auto* l = static_cast<iocp_listener*>(param);
  l->retry_posted = true;
  PostQueuedCompletionStatus(l->iocp, 0, 0, &l->retry_op.ov);
}

// Out of sockets (or worse): post the missing accepts again after a pause;
// closing connections will have freed some by then.
void schedule_retry(iocp_reactor* w, uint32_t id, iocp_listener& l) {
  if (l.retry_timer != nullptr) return;
  iocp_reset_op(l.retry_op, OP_ACCEPT_RETRY, id, 0);
  l.retry_posted = false;
  if (!CreateTimerQueueTimer(&l.retry_timer, nullptr, on_retry_timer, &l, ACCEPT_RETRY_MS, 0, WT_EXECUTEONLYONCE)) {
    // No timer either: the listener waits for its next accepted connection to post again.
    l.retry_timer = nullptr;
    return;
  }
  l.ops++;
  w->port.expect();
}

// Returns false when no socket could be made for the accept.
bool post_accept(iocp_reactor* w, uint32_t id, iocp_listener& l, accept_op& a) {
  int error = 0;
  const winsock_ext* ext = iocp_ext_for(w, l.family, &error);
  if (ext == nullptr) return false;
  a.sock = open_socket(l.family);
  if (a.sock == INVALID_SOCKET) return false;
  iocp_reset_op(a.op, OP_ACCEPT, id, 0);
  DWORD bytes = 0;
  BOOL done = ext->accept_ex(l.sock, a.sock, a.addresses, 0, ACCEPT_ADDRESS_BYTES, ACCEPT_ADDRESS_BYTES, &bytes,
                             &a.op.ov);
  a.posted = true;
  l.ops++;
  iocp_issued(w, a.op, l.skip_on_success, done != FALSE, bytes);
  return true;
}

void fill_accepts(iocp_reactor* w, uint32_t id, iocp_listener& l) {
  for (accept_op& a : l.accepts) {
    if (a.posted) continue;
    if (!post_accept(w, id, l, a)) {
      schedule_retry(w, id, l);
      return;
    }
  }
}

void adopt(iocp_reactor* w, uint32_t listener_id, const iocp_listener& l, SOCKET sock) {
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
      attach_socket(sock, w->port.handle(), &skip) < 0) {
    closesocket(sock);
    return;
  }
  uint32_t slot;
  conn* c = stream_adopt(w, l, sock, &slot);
  if (c == nullptr) return;
  set_peer_address(c->peer, peer, static_cast<size_t>(peer_len));
  c->peer_len = static_cast<uint32_t>(peer_len);
  conn_ext<iocp_conn>(*c).skip_on_success = skip;
  stream_accepted(w, listener_id, slot, *c);
}

bool peer_gave_up(DWORD error) {
  return error == WSAECONNRESET || error == ERROR_NETNAME_DELETED || error == WSAECONNABORTED ||
         error == ERROR_CONNECTION_ABORTED;
}

void on_accept(iocp_reactor* w, accept_op& a, const completion& done) {
  uint32_t id = a.op.owner;
  auto* l = static_cast<iocp_listener*>(w->listeners[id].get());
  l->ops--;
  a.posted = false;
  SOCKET sock = a.sock;
  a.sock = INVALID_SOCKET;
  if (l->closing) {
    closesocket(sock);
    if (l->ops == 0) listener_release(w, id);
    return;
  }
  DWORD error = iocp_error_of(done, l->sock);
  if (error == 0) {
    adopt(w, id, *l, sock);
  } else {
    closesocket(sock);
    // A peer that gave up before we took it costs nothing; anything else
    // (out of memory or sockets) gets a pause before the next try.
    if (!peer_gave_up(error)) {
      schedule_retry(w, id, *l);
      return;
    }
  }
  if (!post_accept(w, id, *l, a)) schedule_retry(w, id, *l);
}

void on_accept_retry(iocp_reactor* w, uint32_t id) {
  auto* l = static_cast<iocp_listener*>(w->listeners[id].get());
  l->ops--;
  DeleteTimerQueueTimer(nullptr, l->retry_timer, nullptr);
  l->retry_timer = nullptr;
  if (l->closing) {
    if (l->ops == 0) listener_release(w, id);
    return;
  }
  fill_accepts(w, id, *l);
}

}  // namespace

void iocp_on_listener(iocp_reactor* w, const completion& done) {
  if (done.op->type == OP_ACCEPT) on_accept(w, *reinterpret_cast<accept_op*>(done.op), done);
  else on_accept_retry(w, done.op->owner);
}

int iocp_listen(reactor* r, const listen_request& request, int* listener_id, int* bound_port) {
  iocp_reactor* w = iocp_of(r);
  // request.reuse_port is never set here: Windows has no SO_REUSEPORT, and the JS side
  // refuses the option on iocp with ENOTSUP before it reaches the reactor (reuse-port.ts).
  auto l = std::make_unique<iocp_listener>();
  int ret = open_listener(request.host, request.port, request.backlog, w->port.handle(), &l->sock, &l->family,
                          &l->skip_on_success, bound_port);
  if (ret < 0) return ret;
  int error = 0;
  if (iocp_ext_for(w, l->family, &error) == nullptr) {
    closesocket(l->sock);
    return error;
  }
  l->marks = request.marks;
  l->iocp = w->port.handle();
  uint32_t id = listener_add(w, std::move(l));
  fill_accepts(w, id, static_cast<iocp_listener&>(*w->listeners[id]));
  *listener_id = static_cast<int>(id);
  if (!w->in_process && !w->ready.empty()) iocp_wake(w);
  return 0;
}

void iocp_close_listener(reactor* r, uint32_t id, listener& l) {
  // Closing the socket refuses new connections at once and cancels every
  // AcceptEx posted on it; the listener goes when the last has returned.
  closesocket(l.sock);
  l.sock = INVALID_SOCKET;
  if (l.ops == 0) listener_release(r, id);
}

void iocp_destroy_listener(iocp_reactor* w, iocp_listener& l) {
  if (l.sock != INVALID_SOCKET) closesocket(l.sock);
  for (accept_op& a : l.accepts) {
    if (a.sock != INVALID_SOCKET) closesocket(a.sock);
  }
  if (l.retry_timer != nullptr) {
    // Waits for a running callback; a timer that never fired posts nothing.
    DeleteTimerQueueTimer(nullptr, l.retry_timer, INVALID_HANDLE_VALUE);
    if (!l.retry_posted) w->port.unexpect();
    l.retry_timer = nullptr;
  }
}

}  // namespace ringport
