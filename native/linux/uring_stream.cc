// io_uring streams: a multishot recv into the provided-buffer ring, one
// sendmsg in flight carrying every queued slice, connect, and cancel by
// descriptor before the close.
#include <unistd.h>

#include <cstdlib>
#include <new>

#include "sockets.h"
#include "uring.h"

namespace ringport {

namespace {

void start_recv(reactor* r, uint32_t slot, conn& c) {
  c.reading = true;
  c.ops++;
  uring_issue(uring_of(r), uring_pack(OP_RECV, c.gen, slot));
}

// A connection's send block while its send is in flight (see uring_send).
uring_send* take_send(uring_reactor* u, uring_conn& x) {
  if (x.send == nullptr) x.send = u->spare_sends.take();
  return x.send;
}

void give_back_send(uring_reactor* u, uring_conn& x) {
  if (x.send == nullptr) return;
  u->spare_sends.give(x.send);
  x.send = nullptr;
}

void start_send(reactor* r, uint32_t slot, conn& c) {
  uring_reactor* u = uring_of(r);
  if (take_send(u, conn_ext<uring_conn>(c)) == nullptr) return;  // out of memory: the queue waits for the next flush
  c.send_inflight = true;
  c.ops++;
  uring_issue(u, uring_pack(OP_SEND, c.gen, slot));
}

void cancel(reactor* r, uint32_t slot, conn& c) { uring_issue(uring_of(r), uring_pack(OP_CANCEL, c.gen, slot)); }

void close_conn(reactor* r, uint32_t, conn& c) {
  if (c.sock != NO_SOCKET) close(c.sock);
  give_back_send(uring_of(r), conn_ext<uring_conn>(c));
}

int dial(reactor* r, uint32_t slot, conn& c) {
  int fd = open_stream(family_of(c.peer));
  if (fd < 0) return fd;
  c.sock = fd;
  conn_ext<uring_conn>(c).send = nullptr;
  c.ops++;
  uring_issue(uring_of(r), uring_pack(OP_CONNECT, c.gen, slot));
  if (!r->in_process) uring_submit(uring_of(r));
  return 0;
}

}  // namespace

extern const stream_ops uring_stream_ops = {start_recv, start_send, cancel, close_conn, dial};

// Fills an SQE for the stream operation `ud` names, from its owner's state
// now: an operation issued late carries what is queued then, not what was before.
void uring_prep_stream(uring_reactor* u, struct io_uring_sqe* sqe, uint64_t ud) {
  conn& c = u->conns.at(uring_slot_of(ud));
  switch (uring_op_of(ud)) {
    case OP_RECV:
      io_uring_prep_recv_multishot(sqe, c.sock, nullptr, 0, 0);
      sqe->flags |= IOSQE_BUFFER_SELECT;
      sqe->buf_group = buf_pool::GROUP;
      break;
    case OP_SEND: {
      uring_send* s = conn_ext<uring_conn>(c).send;
      struct iovec* iov = s->iov;
      int n = c.queue.peek(URING_MAX_IOV, [iov](int i, uint8_t* data, uint32_t length) { iov[i] = {data, length}; });
      if (n == 1) {
        // The common case once slices coalesce: a plain send skips the
        // kernel's msghdr and iovec import.
        io_uring_prep_send(sqe, c.sock, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
      } else {
        s->msg = {};
        s->msg.msg_iov = iov;
        s->msg.msg_iovlen = static_cast<size_t>(n);
        io_uring_prep_sendmsg(sqe, c.sock, &s->msg, MSG_NOSIGNAL);
      }
      break;
    }
    case OP_CONNECT:
      io_uring_prep_connect(sqe, c.sock, reinterpret_cast<sockaddr*>(&c.peer), c.peer_len);
      break;
    case OP_CANCEL:
      io_uring_prep_cancel_fd(sqe, c.sock, IORING_ASYNC_CANCEL_ALL);
      break;
    default:
      break;
  }
}

namespace {

void on_recv(uring_reactor* u, uint32_t slot, conn& c, int32_t res, uint32_t flags) {
  if ((flags & IORING_CQE_F_MORE) == 0) {
    c.reading = false;
    c.ops--;
  }
  if (flags & IORING_CQE_F_BUFFER) {
    uint16_t bid = static_cast<uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);
    if (res > 0) stream_received_copy(u, slot, c, u->pool.data(bid), static_cast<size_t>(res));
    u->pool.recycle(bid);
  }
  if (stream_closing(u, slot, c)) return;
  if (res == 0) {
    stream_peer_fin(u, slot, c);
    return;
  }
  if (res < 0) {
    if (res != -ENOBUFS) {
      stream_fail(u, slot, c, -res);
      return;
    }
    // The buffer ring ran dry: a buffer more for this receive, and read again.
    u->stats.enobufs++;
    u->pool.grow();
  }
  if (!c.reading && c.state != CS_PEER_DONE) start_recv(u, slot, c);
}

void on_send(uring_reactor* u, uint32_t slot, conn& c, int32_t res) {
  c.ops--;
  c.send_inflight = false;
  // The kernel is done with the msghdr and iovecs: the next send, of any connection, may have them.
  give_back_send(u, conn_ext<uring_conn>(c));
  if (stream_closing(u, slot, c)) return;
  stream_send_result(u, slot, c, res);
}

void on_connect(uring_reactor* u, uint32_t slot, conn& c, int32_t res) {
  c.ops--;
  if (stream_closing(u, slot, c)) return;
  stream_connected(u, slot, c, res);
}

}  // namespace

void uring_on_stream(uring_reactor* u, const uring_completion& done) {
  uint64_t ud = done.user_data;
  uint32_t slot = uring_slot_of(ud);
  conn* c = u->conns.find(slot, uring_gen_of(ud));
  if (c == nullptr) {
    // A completion for a slot that has moved on: only its buffer matters.
    if (done.flags & IORING_CQE_F_BUFFER) u->pool.recycle(static_cast<uint16_t>(done.flags >> IORING_CQE_BUFFER_SHIFT));
    return;
  }
  switch (uring_op_of(ud)) {
    case OP_RECV:
      on_recv(u, slot, *c, done.res, done.flags);
      break;
    case OP_SEND:
      on_send(u, slot, *c, done.res);
      break;
    case OP_CONNECT:
      on_connect(u, slot, *c, done.res);
      break;
    default:
      break;
  }
}

}  // namespace ringport
