// The io_uring reactor: one ring per JS thread, driven from libuv.
//
// The ring's eventfd is watched with a uv_poll handle. On each wake-up the
// reactor reaps every completion, turns them into event records in memory it
// shares with JS, hands JS the whole batch in one call, applies the commands
// JS queued meanwhile, and submits everything with one io_uring_enter.
//
// user_data packs the operation, the slot's generation and the slot, as
// liburing's examples/proxy.h does, so a completion for a slot that has since
// been reused is recognised and dropped. It also names an operation fully:
// one that finds the submission queue full waits as a user_data and is
// prepared from its owner's state once there is room, never dropped.
#include <liburing.h>
#include <netinet/in.h>
#include <linux/sockios.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <memory>
#include <new>
#include <vector>

#include "../reactor.h"
#include "../reactor_common.h"
#include "../send_queue.h"
#include "../slab.h"
#include "buf_pool.h"
#include "sockets.h"

namespace ringport {

namespace {

enum op : uint8_t {
  OP_ACCEPT = 1,
  OP_ACCEPT_RETRY,
  OP_RECV,
  OP_SEND,
  OP_CONNECT,
  OP_CANCEL,         // a connection's operations, by descriptor
  OP_CANCEL_ACCEPT,  // a closing listener's accept
  OP_CANCEL_RETRY,   // a closing listener's pause before accepting again
};

uint64_t pack(op o, uint32_t gen, uint32_t slot) {
  return (static_cast<uint64_t>(o) << 56) | (static_cast<uint64_t>(gen & RP_GEN_MASK) << 32) | slot;
}
op op_of(uint64_t ud) { return static_cast<op>(ud >> 56); }
uint32_t gen_of(uint64_t ud) { return static_cast<uint32_t>(ud >> 32) & RP_GEN_MASK; }
uint32_t slot_of(uint64_t ud) { return static_cast<uint32_t>(ud); }

// iovecs per sendmsg: enough to carry a tick's worth of packets in one call.
constexpr int MAX_IOV = 64;
// Completions copied out of the ring per pass.
constexpr unsigned REAP_BATCH = 256;
// Rounds of kernel task work run in one wake-up before the loop gets a turn.
constexpr int TASK_WORK_ROUNDS = 8;
// Received bytes held for one delivery before JS gets a part of the wake-up.
constexpr size_t STAGING_SOFT_LIMIT = 4 * 1024 * 1024;
// After EMFILE the accept is re-armed after this pause, not in a hot loop.
constexpr long ACCEPT_RETRY_NS = 100 * 1000 * 1000;
// How often a grown receive buffer pool is trimmed towards recent use.
constexpr uint64_t POOL_SHRINK_MS = 1000;

struct conn {
  uint32_t gen = 0;
  bool in_use = false;
  int fd = -1;
  conn_state state = CS_OPEN;
  uint8_t ops = 0;  // operations the kernel holds for this slot
  bool recv_armed = false;
  bool send_inflight = false;
  bool over_high = false;
  bool dirty = false;
  int32_t close_reason = RP_CLOSE_LOCAL;
  int32_t close_errno = 0;
  uint32_t high_water_mark = 0;
  uint32_t low_water_mark = 0;
  send_queue queue;
  struct msghdr msg = {};
  std::unique_ptr<struct iovec[]> iov;
  sockaddr_storage peer = {};
  socklen_t peer_len = 0;
};

struct listener {
  int fd = -1;
  uint32_t high_water_mark = 0;  // given to each connection it accepts
  uint32_t low_water_mark = 0;
  int ops = 0;
  bool closing = false;
  struct __kernel_timespec retry = {0, ACCEPT_RETRY_NS};
};

struct completion {
  uint64_t user_data;
  int32_t res;
  uint32_t flags;
};

}  // namespace

struct reactor {
  uv_loop_t* loop = nullptr;
  uv_poll_t poll = {};
  uv_timer_t pool_timer = {};  // runs only while the receive buffer pool is grown
  int open_handles = 0;        // memory goes once libuv has closed both
  struct io_uring ring = {};
  bool ring_ready = false;
  int event_fd = -1;
  reactor_options options;
  reactor_shared shared = {};
  buf_pool pool;
  send_memory send_mem;  // before conns: their queues hold its blocks
  slab<conn> conns;
  std::vector<std::unique_ptr<listener>> listeners;  // index = listener id
  uint32_t live_listeners = 0;

  // Events wait here until a point where calling JS is safe (between
  // completions, never inside one), then go out in chunks of event_capacity.
  std::vector<int32_t> events;
  std::vector<uint8_t> staging;  // the received bytes DATA events point into
  std::vector<uint32_t> dirty;   // slots that got new sends this flush
  // Operations that found the submission queue full even after a submit
  // (the kernel took none of it: out of memory, say), by user_data, oldest
  // first. Each counts as in flight for its connection or listener and is
  // issued after the next reap, or completed as cancelled if its owner has
  // begun closing meanwhile.
  std::vector<uint64_t> unissued;
  bool in_process = false;
  bool destroyed = false;

  reactor_stats stats = {};
};

namespace {

// -- submission ---------------------------------------------------------------

struct io_uring_sqe* get_sqe(reactor* r) {
  struct io_uring_sqe* sqe = io_uring_get_sqe(&r->ring);
  if (sqe == nullptr) {
    // The submission queue is full: hand what is there to the kernel now.
    io_uring_submit(&r->ring);
    r->stats.submits++;
    sqe = io_uring_get_sqe(&r->ring);
  }
  return sqe;
}

void submit(reactor* r) {
  if (io_uring_sq_ready(&r->ring) == 0) return;
  io_uring_submit(&r->ring);
  r->stats.submits++;
}

void poke(reactor* r) {
  uint64_t one = 1;
  (void)!write(r->event_fd, &one, sizeof(one));
}

// Fills an SQE for the operation `ud` names, from its owner's state now: an
// operation issued late carries what is queued then, not what was before.
void prep(reactor* r, struct io_uring_sqe* sqe, uint64_t ud) {
  uint32_t slot = slot_of(ud);
  switch (op_of(ud)) {
    case OP_RECV: {
      conn& c = r->conns.at(slot);
      io_uring_prep_recv_multishot(sqe, c.fd, nullptr, 0, 0);
      sqe->flags |= IOSQE_BUFFER_SELECT;
      sqe->buf_group = buf_pool::GROUP;
      break;
    }
    case OP_SEND: {
      conn& c = r->conns.at(slot);
      struct iovec* iov = c.iov.get();
      int n = c.queue.peek(MAX_IOV, [iov](int i, uint8_t* data, uint32_t length) { iov[i] = {data, length}; });
      if (n == 1) {
        // The common case once slices coalesce: a plain send skips the
        // kernel's msghdr and iovec import.
        io_uring_prep_send(sqe, c.fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
      } else {
        c.msg = {};
        c.msg.msg_iov = iov;
        c.msg.msg_iovlen = static_cast<size_t>(n);
        io_uring_prep_sendmsg(sqe, c.fd, &c.msg, MSG_NOSIGNAL);
      }
      break;
    }
    case OP_CONNECT: {
      conn& c = r->conns.at(slot);
      io_uring_prep_connect(sqe, c.fd, reinterpret_cast<sockaddr*>(&c.peer), c.peer_len);
      break;
    }
    case OP_CANCEL:
      io_uring_prep_cancel_fd(sqe, r->conns.at(slot).fd, IORING_ASYNC_CANCEL_ALL);
      break;
    case OP_ACCEPT:
      io_uring_prep_multishot_accept(sqe, r->listeners[slot]->fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      break;
    case OP_ACCEPT_RETRY:
      io_uring_prep_timeout(sqe, &r->listeners[slot]->retry, 0, 0);
      break;
    case OP_CANCEL_ACCEPT:
      io_uring_prep_cancel64(sqe, pack(OP_ACCEPT, 0, slot), IORING_ASYNC_CANCEL_ALL);
      break;
    case OP_CANCEL_RETRY:
      io_uring_prep_cancel64(sqe, pack(OP_ACCEPT_RETRY, 0, slot), IORING_ASYNC_CANCEL_ALL);
      break;
  }
  io_uring_sqe_set_data64(sqe, ud);
}

// Issues the operation `ud`, whose owner already counts it as in flight.
// When the queue stays full it waits in `unissued`, and the eventfd is poked
// so that a wake-up comes to issue it even if nothing else completes.
void issue(reactor* r, uint64_t ud) {
  struct io_uring_sqe* sqe = r->unissued.empty() ? get_sqe(r) : nullptr;
  if (sqe == nullptr) {
    r->unissued.push_back(ud);
    poke(r);
    return;
  }
  prep(r, sqe, ud);
}

void update_ref(reactor* r) {
  // Like a socket, the reactor keeps the process alive only while it has work.
  if (r->conns.live() + r->live_listeners > 0) uv_ref(reinterpret_cast<uv_handle_t*>(&r->poll));
  else uv_unref(reinterpret_cast<uv_handle_t*>(&r->poll));
}

// -- events to JS -------------------------------------------------------------

// -- connections --------------------------------------------------------------

void arm_recv(reactor* r, uint32_t slot, conn& c) {
  c.recv_armed = true;
  c.ops++;
  issue(r, pack(OP_RECV, c.gen, slot));
}

void start_send(reactor* r, uint32_t slot, conn& c) {
  if (!c.iov) c.iov.reset(new (std::nothrow) struct iovec[MAX_IOV]);
  if (!c.iov) return;  // out of memory: the queue waits for the next flush
  c.send_inflight = true;
  c.ops++;
  issue(r, pack(OP_SEND, c.gen, slot));
}

void finish_close(reactor* r, uint32_t slot, conn& c) {
  close(c.fd);
  c.fd = -1;
  c.queue.clear(r->send_mem);
  c.iov.reset();
  r->shared.queued[slot] = 0;
  push_event(r, RP_EV_CLOSE, slot, c.gen, c.close_reason, -c.close_errno, 0);
  r->conns.free(slot);
  update_ref(r);
}

// Cancels what the kernel holds for this connection; the slot is released
// when the last operation completes, never before.
void begin_closing(reactor* r, uint32_t slot, conn& c, int32_t reason, int32_t err) {
  if (c.state == CS_CLOSING) return;
  c.state = CS_CLOSING;
  c.close_reason = reason;
  c.close_errno = err;
  // A sendmsg in flight may still be reading the queued slices: they are
  // released with the slot (finish_close), not before.
  if (!c.send_inflight) c.queue.clear(r->send_mem);
  r->shared.queued[slot] = 0;
  if (c.ops == 0) {
    finish_close(r, slot, c);
    return;
  }
  issue(r, pack(OP_CANCEL, c.gen, slot));
}

void abort_conn(reactor* r, uint32_t slot, conn& c, int32_t reason, int32_t err) {
  // SO_LINGER 0: close() resets the connection instead of lingering.
  struct linger lg = {1, 0};
  setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  begin_closing(r, slot, c, reason, err);
}

void send_fin(reactor* r, uint32_t slot, conn& c) {
  if (shutdown(c.fd, SHUT_WR) < 0 || !c.recv_armed) {
    begin_closing(r, slot, c, RP_CLOSE_LOCAL, 0);
    return;
  }
  c.state = CS_FIN_SENT;
}

// -- completions --------------------------------------------------------------

void on_recv(reactor* r, uint32_t slot, conn& c, int32_t res, uint32_t flags) {
  bool more = (flags & IORING_CQE_F_MORE) != 0;
  if (!more) {
    c.recv_armed = false;
    c.ops--;
  }
  if (flags & IORING_CQE_F_BUFFER) {
    uint16_t bid = static_cast<uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);
    // Bytes that arrive after this side began closing are dropped, as on net.
    if (res > 0 && c.state == CS_OPEN) {
      push_event(r, RP_EV_DATA, slot, c.gen, static_cast<int32_t>(r->staging.size()), res, 0);
      const uint8_t* src = r->pool.data(bid);
      r->staging.insert(r->staging.end(), src, src + res);
      r->stats.bytes_in += static_cast<uint64_t>(res);
      r->stats.reads++;
    }
    r->pool.recycle(bid);
  }
  if (c.state == CS_CLOSING) {
    if (c.ops == 0) finish_close(r, slot, c);
    return;
  }
  if (res == 0) {
    // The peer's FIN. As node:net does by default, flush what is queued, then close.
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
    return;
  }
  if (res < 0) {
    if (res == -ENOBUFS) {
      // The buffer ring ran dry: a buffer more for this receive, and read again.
      r->stats.enobufs++;
      r->pool.grow();
    } else {
      abort_conn(r, slot, c, RP_CLOSE_ERROR, -res);
      return;
    }
  }
  if (!c.recv_armed && c.state != CS_PEER_DONE) arm_recv(r, slot, c);
}

void on_send(reactor* r, uint32_t slot, conn& c, int32_t res) {
  c.ops--;
  c.send_inflight = false;
  if (c.state == CS_CLOSING) {
    if (c.ops == 0) finish_close(r, slot, c);
    return;
  }
  if (res < 0) {
    abort_conn(r, slot, c, RP_CLOSE_ERROR, -res);
    return;
  }
  r->stats.bytes_out += static_cast<uint64_t>(res);
  c.queue.consume(r->send_mem, static_cast<uint64_t>(res));
  uint64_t queued = c.queue.bytes();
  r->shared.queued[slot] = static_cast<uint32_t>(queued);
  if (c.over_high && queued <= c.low_water_mark) {
    c.over_high = false;
    if (c.state == CS_OPEN) push_event(r, RP_EV_DRAIN, slot, c.gen, 0, 0, 0);
  }
  if (!c.queue.empty()) start_send(r, slot, c);
  else on_queue_empty(r, slot, c);
}

void on_connect(reactor* r, uint32_t slot, conn& c, int32_t res) {
  c.ops--;
  if (c.state == CS_CLOSING) {
    if (c.ops == 0) finish_close(r, slot, c);
    return;
  }
  int port = port_of(c.peer);
  int32_t ipv4 = static_cast<int32_t>(ipv4_of(c.peer));
  if (res == 0 && connected_to_self(c.fd, c.peer)) res = -ECONNREFUSED;
  if (res < 0) {
    // A failed dial reports only its connect outcome: no close event follows.
    push_event(r, RP_EV_CONNECT, slot, c.gen, res, port, ipv4);
    close(c.fd);
    r->conns.free(slot);
    update_ref(r);
    return;
  }
  c.state = CS_OPEN;
  arm_recv(r, slot, c);
  push_event(r, RP_EV_CONNECT, slot, c.gen, 0, port, ipv4);
}

void arm_accept(reactor* r, uint32_t id, listener& l) {
  l.ops++;
  issue(r, pack(OP_ACCEPT, 0, id));
}

void release_listener(reactor* r, uint32_t id) {
  close(r->listeners[id]->fd);
  r->listeners[id].reset();
}

void adopt(reactor* r, uint32_t listener_id, const listener& l, int fd) {
  int64_t allocated = r->conns.alloc(r->options.max_connections);
  if (allocated < 0) {
    // Every slot is taken: refuse this one rather than stop accepting.
    close(fd);
    return;
  }
  uint32_t slot = static_cast<uint32_t>(allocated);
  conn& c = r->conns.at(slot);
  c.fd = fd;
  c.state = CS_OPEN;
  c.ops = 0;
  c.over_high = false;
  c.close_reason = RP_CLOSE_LOCAL;
  c.close_errno = 0;
  c.high_water_mark = l.high_water_mark;
  c.low_water_mark = l.low_water_mark;
  c.peer_len = sizeof(c.peer);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&c.peer), &c.peer_len) < 0) c.peer_len = 0;
  set_nodelay(fd);
  arm_recv(r, slot, c);
  push_event(r, RP_EV_ACCEPT, slot, c.gen, static_cast<int32_t>(listener_id), port_of(c.peer),
             static_cast<int32_t>(ipv4_of(c.peer)));
  update_ref(r);
}

void on_accept(reactor* r, uint32_t id, int32_t res, uint32_t flags) {
  listener* l = id < r->listeners.size() ? r->listeners[id].get() : nullptr;
  if (l == nullptr) {
    if (res >= 0) close(res);
    return;
  }
  bool more = (flags & IORING_CQE_F_MORE) != 0;
  if (!more) l->ops--;
  if (l->closing) {
    if (res >= 0) close(res);
    if (l->ops == 0) release_listener(r, id);
    return;
  }
  if (res >= 0) {
    adopt(r, id, *l, res);
  } else if (!more && (res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM)) {
    // Out of descriptors or memory: pause, then accept again; closing
    // connections will have freed some by then.
    l->ops++;
    issue(r, pack(OP_ACCEPT_RETRY, 0, id));
    return;
  }
  if (!more) arm_accept(r, id, *l);
}

void on_accept_retry(reactor* r, uint32_t id) {
  listener* l = id < r->listeners.size() ? r->listeners[id].get() : nullptr;
  if (l == nullptr) return;
  l->ops--;
  if (l->closing) {
    if (l->ops == 0) release_listener(r, id);
    return;
  }
  arm_accept(r, id, *l);
}

void handle(reactor* r, const completion& cqe) {
  uint64_t ud = cqe.user_data;
  op o = op_of(ud);
  uint32_t slot = slot_of(ud);
  switch (o) {
    case OP_ACCEPT:
      on_accept(r, slot, cqe.res, cqe.flags);
      return;
    case OP_ACCEPT_RETRY:
      on_accept_retry(r, slot);
      return;
    case OP_CANCEL:
    case OP_CANCEL_ACCEPT:
    case OP_CANCEL_RETRY:
      return;
    default:
      break;
  }
  conn* c = r->conns.find(slot, gen_of(ud));
  if (c == nullptr) {
    // A completion for a slot that has moved on: only its buffer matters.
    if (cqe.flags & IORING_CQE_F_BUFFER) r->pool.recycle(static_cast<uint16_t>(cqe.flags >> IORING_CQE_BUFFER_SHIFT));
    return;
  }
  switch (o) {
    case OP_RECV:
      on_recv(r, slot, *c, cqe.res, cqe.flags);
      break;
    case OP_SEND:
      on_send(r, slot, *c, cqe.res);
      break;
    case OP_CONNECT:
      on_connect(r, slot, *c, cqe.res);
      break;
    default:
      break;
  }
}

// Handles every completion in the ring; returns how many carried a buffer.
uint32_t reap(reactor* r) {
  completion batch[REAP_BATCH];
  struct io_uring_cqe* cqes[REAP_BATCH];
  uint32_t buffers_used = 0;
  // On until the ring is empty, not until a short batch: a full CQ ring
  // holds fewer than REAP_BATCH, and completions that overflowed it reach it
  // only when a peek finds it empty (liburing then flushes them).
  for (;;) {
    unsigned n = io_uring_peek_batch_cqe(&r->ring, cqes, REAP_BATCH);
    if (n == 0) break;
    // Copy out and release the ring slots first: handling may re-enter JS.
    for (unsigned i = 0; i < n; i++) {
      batch[i] = {cqes[i]->user_data, cqes[i]->res, cqes[i]->flags};
      if (cqes[i]->flags & IORING_CQE_F_BUFFER) buffers_used++;
    }
    io_uring_cq_advance(&r->ring, n);
    for (unsigned i = 0; i < n; i++) handle(r, batch[i]);
    r->pool.commit();
    // A long wake-up goes to JS in parts rather than piling up bytes.
    if (r->staging.size() > STAGING_SOFT_LIMIT) deliver(r);
    if (r->destroyed) break;
  }
  return buffers_used;
}

// Whether the kernel holds task work that only our io_uring_enter runs
// (IORING_SETUP_TASKRUN_FLAG). With DEFER_TASKRUN, Linux 6.10 on runs it in
// bounded batches per enter and signals the eventfd only when the first item
// is queued, so what is left of a burst (a hundred peers' FINs) would wait
// for some unrelated wake-up.
bool task_work_pending(reactor* r) { return (IO_URING_READ_ONCE(*r->ring.sq.kflags) & IORING_SQ_TASKRUN) != 0; }

// Trims a grown receive buffer pool. A libuv timer runs between our
// io_uring_enter calls, where the kernel leaves the buffer ring alone.
void on_pool_timer(uv_timer_t* timer) {
  auto* r = static_cast<reactor*>(timer->data);
  if (!r->pool.shrink()) uv_timer_stop(timer);
}

// Issues what found the queue full before, oldest first, after a reap has
// made room. An operation whose owner has begun closing is not issued: it
// completes as cancelled, through the same handler a cancelled one would.
void issue_unissued(reactor* r) {
  std::vector<uint64_t> waiting;
  waiting.swap(r->unissued);
  for (size_t i = 0; i < waiting.size(); i++) {
    uint64_t ud = waiting[i];
    uint32_t slot = slot_of(ud);
    op o = op_of(ud);
    bool closing;
    if (o == OP_ACCEPT || o == OP_ACCEPT_RETRY || o == OP_CANCEL_ACCEPT || o == OP_CANCEL_RETRY) {
      closing = r->listeners[slot] == nullptr || r->listeners[slot]->closing;
    } else {
      conn* c = r->conns.find(slot, gen_of(ud));
      closing = c == nullptr || c->state == CS_CLOSING;
    }
    bool cancel_op = o == OP_CANCEL || o == OP_CANCEL_ACCEPT || o == OP_CANCEL_RETRY;
    if (closing != cancel_op) {
      // An operation of a closing owner never issued, or a cancel with nothing left to cancel.
      if (!cancel_op) handle(r, completion{ud, -ECANCELED, 0});
      continue;
    }
    struct io_uring_sqe* sqe = r->unissued.empty() ? get_sqe(r) : nullptr;
    if (sqe == nullptr) {
      r->unissued.insert(r->unissued.end(), waiting.begin() + static_cast<std::ptrdiff_t>(i), waiting.end());
      break;
    }
    prep(r, sqe, ud);
  }
}

// One wake-up: run the kernel's task work and reap what it completes (again
// while more is pending, a few times), deliver one batch, apply JS's
// commands, submit once.
void process(reactor* r) {
  r->in_process = true;
  uint32_t buffers_used = 0;
  for (int round = 0; round < TASK_WORK_ROUNDS && !r->destroyed; round++) {
    io_uring_get_events(&r->ring);
    buffers_used += reap(r);
    if (!task_work_pending(r)) break;
  }
  if (!r->unissued.empty() && !r->destroyed) issue_unissued(r);
  if (!r->destroyed) {
    r->pool.note_use(buffers_used);
    r->pool.commit();
    if (r->pool.above_initial() && !uv_is_active(reinterpret_cast<uv_handle_t*>(&r->pool_timer))) {
      uv_timer_start(&r->pool_timer, on_pool_timer, POOL_SHRINK_MS, POOL_SHRINK_MS);
    }
    deliver(r);
  }
  r->in_process = false;
  if (r->destroyed) return;
  apply_commands(r);
  submit(r);
  // Held events, or task work past this wake-up's share: the next loop turn
  // carries on, after libuv has served everything else.
  if (has_events(r) || task_work_pending(r) || !r->unissued.empty()) poke(r);
}

void on_poll(uv_poll_t* handle, int status, int) {
  auto* r = static_cast<reactor*>(handle->data);
  if (status < 0) return;
  uint64_t value;
  // Reset the eventfd before reaping, so completions posted during the reap
  // wake us again. Without EFD_SEMAPHORE one read takes the whole count.
  (void)!read(r->event_fd, &value, sizeof(value));
  r->stats.wakeups++;
  process(r);
}

int ring_setup_errno_for_tests() {
  // Tests make ring creation fail as a seccomp profile would (EPERM) to
  // check the fallback path; no production code sets this variable.
  const char* forced = std::getenv("RINGPORT_TEST_URING_SETUP_ERRNO");
  if (forced == nullptr || forced[0] == '\0') return 0;
  if (std::strcmp(forced, "EPERM") == 0) return -EPERM;
  if (std::strcmp(forced, "ENOSYS") == 0) return -ENOSYS;
  return -EINVAL;
}

int create_ring(reactor* r) {
  int forced = ring_setup_errno_for_tests();
  if (forced < 0) return forced;
  // SINGLE_ISSUER needs Linux 6.0 and DEFER_TASKRUN 6.1; older kernels say
  // EINVAL and get a ring without them. TASKRUN_FLAG (5.19, like
  // COOP_TASKRUN) makes the kernel say when task work waits for us.
  constexpr unsigned base = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
  const unsigned attempts[] = {
      base | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
      base | IORING_SETUP_SINGLE_ISSUER,
      base,
      0,
  };
  int ret = -EINVAL;
  for (unsigned flags : attempts) {
    struct io_uring_params params = {};
    params.flags = flags;
    params.cq_entries = r->options.queue_depth * 4;
    params.flags |= IORING_SETUP_CQSIZE;
    ret = io_uring_queue_init_params(r->options.queue_depth, &r->ring, &params);
    if (ret != -EINVAL) break;
  }
  return ret;
}

void on_handle_closed(uv_handle_t* handle) {
  auto* r = static_cast<reactor*>(handle->data);
  if (--r->open_handles == 0) delete r;
}

}  // namespace

int reactor_probe() {
  int forced = ring_setup_errno_for_tests();
  if (forced < 0) return forced;
  struct io_uring ring;
  int ret = io_uring_queue_init(2, &ring, 0);
  if (ret < 0) return ret;
  io_uring_queue_exit(&ring);
  return 0;
}

int reactor_create(uv_loop_t* loop, const reactor_options& options, const reactor_shared& shared, reactor** out) {
  std::unique_ptr<reactor> r(new (std::nothrow) reactor());
  if (!r) return -ENOMEM;
  r->loop = loop;
  r->options = options;
  r->shared = shared;
  int ret = create_ring(r.get());
  if (ret < 0) return ret;
  r->ring_ready = true;
  bool retractable = (r->ring.flags & IORING_SETUP_DEFER_TASKRUN) != 0;
  ret = r->pool.init(&r->ring, options.recv_buffer_bytes, options.recv_buffers_initial, options.recv_buffers_max,
                     retractable);
  if (ret == 0) {
    r->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (r->event_fd < 0) ret = -errno;
  }
  if (ret == 0) ret = io_uring_register_eventfd(&r->ring, r->event_fd);
  if (ret == 0) ret = uv_poll_init(loop, &r->poll, r->event_fd);
  if (ret < 0) {
    if (r->event_fd >= 0) close(r->event_fd);
    r->pool.~buf_pool();
    new (&r->pool) buf_pool();
    io_uring_queue_exit(&r->ring);
    return ret;
  }
  r->poll.data = r.get();
  uv_poll_start(&r->poll, UV_READABLE, on_poll);
  uv_timer_init(loop, &r->pool_timer);
  r->pool_timer.data = r.get();
  // The pool's trimming never keeps the process alive by itself.
  uv_unref(reinterpret_cast<uv_handle_t*>(&r->pool_timer));
  r->open_handles = 2;
  r->staging.reserve(64 * 1024);
  r->events.reserve(1024 * RP_EVENT_INTS);
  *out = r.release();
  update_ref(*out);
  return 0;
}

int reactor_listen(reactor* r, const listen_request& request, int* listener_id, int* bound_port) {
  int fd = open_listener(request.host, request.port, request.backlog, request.reuse_port, bound_port);
  if (fd < 0) return fd;
  auto l = std::make_unique<listener>();
  l->fd = fd;
  l->high_water_mark = request.marks.high_water_mark;
  l->low_water_mark = request.marks.low_water_mark;
  uint32_t id = static_cast<uint32_t>(r->listeners.size());
  r->listeners.push_back(std::move(l));
  r->live_listeners++;
  arm_accept(r, id, *r->listeners[id]);
  submit(r);
  *listener_id = static_cast<int>(id);
  update_ref(r);
  return 0;
}

int reactor_close_listener(reactor* r, int listener_id) {
  if (listener_id < 0 || static_cast<size_t>(listener_id) >= r->listeners.size()) return -EINVAL;
  listener* l = r->listeners[listener_id].get();
  if (l == nullptr || l->closing) return 0;
  l->closing = true;
  r->live_listeners--;
  // The kernel holds a reference to the socket while an accept is armed:
  // cancel, and close the descriptor once the last operation has completed.
  issue(r, pack(OP_CANCEL_ACCEPT, 0, static_cast<uint32_t>(listener_id)));
  issue(r, pack(OP_CANCEL_RETRY, 0, static_cast<uint32_t>(listener_id)));
  // Stop taking connections now, even before the cancellation completes.
  shutdown(l->fd, SHUT_RD);
  submit(r);
  update_ref(r);
  return 0;
}

int reactor_connect(reactor* r, const char* ip, int port, const water_marks& marks, uint32_t* slot_out,
                    uint32_t* gen_out) {
  sockaddr_storage addr;
  socklen_t len;
  int ret = parse_address(ip, port, &addr, &len);
  if (ret < 0) return ret;
  int fd = open_stream(addr.ss_family);
  if (fd < 0) return fd;
  int64_t allocated = r->conns.alloc(r->options.max_connections);
  if (allocated < 0) {
    close(fd);
    return -EMFILE;
  }
  uint32_t slot = static_cast<uint32_t>(allocated);
  conn& c = r->conns.at(slot);
  c.fd = fd;
  c.state = CS_CONNECTING;
  c.ops = 0;
  c.over_high = false;
  c.close_reason = RP_CLOSE_LOCAL;
  c.close_errno = 0;
  c.high_water_mark = marks.high_water_mark;
  c.low_water_mark = marks.low_water_mark;
  c.peer = addr;
  c.peer_len = len;
  c.ops++;
  issue(r, pack(OP_CONNECT, c.gen, slot));
  if (!r->in_process) submit(r);
  *slot_out = slot;
  *gen_out = c.gen;
  update_ref(r);
  return 0;
}

int reactor_flush(reactor* r) {
  int ret = apply_commands(r);
  // Inside a wake-up the reactor submits once at its end; from a JS timer, now.
  if (!r->in_process) {
    submit(r);
    // Events raised here (a connection closed on the spot) go out with the
    // next wake-up; poke the eventfd so there is one.
    if (has_events(r)) {
      uint64_t one = 1;
      if (write(r->event_fd, &one, sizeof(one)) < 0) ret = ret == 0 ? -errno : ret;
    }
  }
  return ret;
}

int reactor_unsent(reactor* r, uint32_t slot, uint32_t gen, uint64_t* bytes, bool* kernel_counted) {
  conn* c = r->conns.find(slot, gen);
  if (c == nullptr) return -ENOENT;
  *bytes = c->queue.bytes();
  *kernel_counted = false;
  int outq = 0;
  // SIOCOUTQ: bytes in the socket's send queue the peer has not acknowledged.
  if (c->fd >= 0 && ioctl(c->fd, SIOCOUTQ, &outq) == 0) {
    *bytes += static_cast<uint64_t>(outq);
    *kernel_counted = true;
  }
  return 0;
}

int reactor_peer(reactor* r, uint32_t slot, uint32_t gen, char* host, size_t host_length, int* port) {
  conn* c = r->conns.find(slot, gen);
  if (c == nullptr) return -ENOENT;
  const void* src = c->peer.ss_family == AF_INET ? static_cast<const void*>(&reinterpret_cast<sockaddr_in&>(c->peer).sin_addr)
                                                 : static_cast<const void*>(&reinterpret_cast<sockaddr_in6&>(c->peer).sin6_addr);
  if (inet_ntop(c->peer.ss_family, src, host, static_cast<socklen_t>(host_length)) == nullptr) return -errno;
  *port = port_of(c->peer);
  return 0;
}

void reactor_get_stats(reactor* r, reactor_stats* stats) {
  *stats = r->stats;
  stats->connections = r->conns.live();
  stats->listeners = r->live_listeners;
  stats->recv_buffers = r->pool.size();
  uint64_t queued = 0;
  for (uint32_t slot = 0; slot < r->conns.high_water(); slot++) {
    conn& c = r->conns.at(slot);
    if (c.in_use) queued += c.queue.bytes();
  }
  stats->queued_bytes = queued;
  stats->send_buffer_bytes = r->send_mem.bytes();
}

void reactor_destroy(reactor* r) {
  if (r->destroyed) return;
  r->destroyed = true;
  uv_poll_stop(&r->poll);
  // Tearing the ring down cancels everything it holds; then the descriptors go.
  r->pool.~buf_pool();
  new (&r->pool) buf_pool();
  io_uring_queue_exit(&r->ring);
  for (uint32_t slot = 0; slot < r->conns.high_water(); slot++) {
    conn& c = r->conns.at(slot);
    if (c.in_use && c.fd >= 0) close(c.fd);
    c.queue.clear(r->send_mem);
  }
  for (auto& l : r->listeners) {
    if (l) close(l->fd);
  }
  close(r->event_fd);
  uv_close(reinterpret_cast<uv_handle_t*>(&r->poll), on_handle_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&r->pool_timer), on_handle_closed);
}

}  // namespace ringport
