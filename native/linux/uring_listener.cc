// io_uring listeners: one multishot accept per listener; after EMFILE (or
// ENFILE, ENOBUFS, ENOMEM) a timeout SQE pauses it before accepting again,
// as closing connections will have freed descriptors by then.
#include <unistd.h>

#include <memory>

#include "sockets.h"
#include "uring.h"

namespace ringport {

namespace {

// After EMFILE the accept is re-armed after this pause, not in a hot loop.
constexpr long ACCEPT_RETRY_NS = 100 * 1000 * 1000;

void arm_accept(uring_reactor* u, uint32_t id, listener& l) {
  l.ops++;
  uring_issue(u, uring_pack(OP_ACCEPT, 0, id));
}

void release(uring_reactor* u, uint32_t id) {
  socket_close(u->listeners[id]->sock);
  listener_release(u, id);
}

void adopt(uring_reactor* u, uint32_t listener_id, const listener& l, int fd) {
  uint32_t slot;
  conn* c = stream_adopt(u, l, fd, &slot);
  if (c == nullptr) return;
  conn_ext<uring_conn>(*c).send = nullptr;
  socklen_t len = sizeof(c->peer);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&c->peer), &len) == 0) c->peer_len = len;
  stream_accepted(u, listener_id, slot, *c);
}

void on_accept(uring_reactor* u, uint32_t id, int32_t res, uint32_t flags) {
  listener* l = id < u->listeners.size() ? u->listeners[id].get() : nullptr;
  if (l == nullptr) {
    if (res >= 0) close(res);
    return;
  }
  bool more = (flags & IORING_CQE_F_MORE) != 0;
  if (!more) l->ops--;
  if (l->closing) {
    if (res >= 0) close(res);
    if (l->ops == 0) release(u, id);
    return;
  }
  if (res >= 0) {
    adopt(u, id, *l, res);
  } else if (!more && (res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM)) {
    // Out of descriptors or memory: pause, then accept again; closing
    // connections will have freed some by then.
    l->ops++;
    uring_issue(u, uring_pack(OP_ACCEPT_RETRY, 0, id));
    return;
  }
  if (!more) arm_accept(u, id, *l);
}

void on_accept_retry(uring_reactor* u, uint32_t id) {
  listener* l = id < u->listeners.size() ? u->listeners[id].get() : nullptr;
  if (l == nullptr) return;
  l->ops--;
  if (l->closing) {
    if (l->ops == 0) release(u, id);
    return;
  }
  arm_accept(u, id, *l);
}

}  // namespace

void uring_prep_listener(uring_reactor* u, struct io_uring_sqe* sqe, uint64_t ud) {
  uint32_t id = uring_slot_of(ud);
  auto& l = static_cast<uring_listener&>(*u->listeners[id]);
  switch (uring_op_of(ud)) {
    case OP_ACCEPT:
      io_uring_prep_multishot_accept(sqe, l.sock, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      break;
    case OP_ACCEPT_RETRY:
      io_uring_prep_timeout(sqe, &l.retry, 0, 0);
      break;
    case OP_CANCEL_ACCEPT:
      io_uring_prep_cancel64(sqe, uring_pack(OP_ACCEPT, 0, id), IORING_ASYNC_CANCEL_ALL);
      break;
    case OP_CANCEL_RETRY:
      io_uring_prep_cancel64(sqe, uring_pack(OP_ACCEPT_RETRY, 0, id), IORING_ASYNC_CANCEL_ALL);
      break;
    default:
      break;
  }
}

void uring_on_listener(uring_reactor* u, const uring_completion& done) {
  uint32_t id = uring_slot_of(done.user_data);
  switch (uring_op_of(done.user_data)) {
    case OP_ACCEPT:
      on_accept(u, id, done.res, done.flags);
      break;
    case OP_ACCEPT_RETRY:
      on_accept_retry(u, id);
      break;
    default:
      // A cancel's own completion: what it cancelled reports for itself.
      break;
  }
}

int uring_listen(reactor* r, const listen_request& request, int* listener_id, int* bound_port) {
  uring_reactor* u = uring_of(r);
  int fd = open_listener(request.host, request.port, request.backlog, request.reuse_port, bound_port);
  if (fd < 0) return fd;
  auto l = std::make_unique<uring_listener>();
  l->sock = fd;
  l->marks = request.marks;
  l->retry = {0, ACCEPT_RETRY_NS};
  uint32_t id = listener_add(u, std::move(l));
  arm_accept(u, id, *u->listeners[id]);
  uring_submit(u);
  *listener_id = static_cast<int>(id);
  return 0;
}

void uring_close_listener(reactor* r, uint32_t id, listener& l) {
  uring_reactor* u = uring_of(r);
  // The kernel holds a reference to the socket while an accept is armed:
  // cancel, and close the descriptor once the last operation has completed.
  uring_issue(u, uring_pack(OP_CANCEL_ACCEPT, 0, id));
  uring_issue(u, uring_pack(OP_CANCEL_RETRY, 0, id));
  // Stop taking connections now, even before the cancellation completes.
  shutdown(l.sock, SHUT_RD);
  uring_submit(u);
}

}  // namespace ringport
