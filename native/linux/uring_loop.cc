// The io_uring loop: one ring per JS thread, driven from libuv.
//
// The ring's eventfd is watched with a uv_poll handle. On each wake-up the
// reactor reaps every completion, turns them into event records in memory it
// shares with JS, hands JS the whole batch in one call, applies the commands
// JS queued meanwhile, and submits everything with one io_uring_enter.
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

#include "uring.h"

namespace ringport {

namespace {

// Completions copied out of the ring per pass.
constexpr unsigned REAP_BATCH = 256;
// Rounds of kernel task work run in one wake-up before the loop gets a turn.
constexpr int TASK_WORK_ROUNDS = 8;
// How often a grown receive buffer pool is trimmed towards recent use.
constexpr uint64_t POOL_SHRINK_MS = 1000;

struct io_uring_sqe* get_sqe(uring_reactor* u) {
  struct io_uring_sqe* sqe = io_uring_get_sqe(&u->ring);
  if (sqe == nullptr) {
    // The submission queue is full: hand what is there to the kernel now.
    io_uring_submit(&u->ring);
    u->stats.submits++;
    sqe = io_uring_get_sqe(&u->ring);
  }
  return sqe;
}

void prep(uring_reactor* u, struct io_uring_sqe* sqe, uint64_t ud) {
  if (uring_listener_op(uring_op_of(ud))) uring_prep_listener(u, sqe, ud);
  else uring_prep_stream(u, sqe, ud);
  io_uring_sqe_set_data64(sqe, ud);
}

void handle(uring_reactor* u, const uring_completion& done) {
  uring_op o = uring_op_of(done.user_data);
  if (uring_listener_op(o)) uring_on_listener(u, done);
  else if (o != OP_CANCEL) uring_on_stream(u, done);
}

// Handles every completion in the ring; returns how many carried a buffer.
uint32_t reap(uring_reactor* u) {
  uring_completion batch[REAP_BATCH];
  struct io_uring_cqe* cqes[REAP_BATCH];
  uint32_t buffers_used = 0;
  // On until the ring is empty, not until a short batch: a full CQ ring
  // holds fewer than REAP_BATCH, and completions that overflowed it reach it
  // only when a peek finds it empty (liburing then flushes them).
  for (;;) {
    unsigned n = io_uring_peek_batch_cqe(&u->ring, cqes, REAP_BATCH);
    if (n == 0) break;
    u->stats.completions += n;
    // Copy out and release the ring slots first: handling may re-enter JS.
    for (unsigned i = 0; i < n; i++) {
      batch[i] = {cqes[i]->user_data, cqes[i]->res, cqes[i]->flags};
      if (cqes[i]->flags & IORING_CQE_F_BUFFER) buffers_used++;
    }
    io_uring_cq_advance(&u->ring, n);
    for (unsigned i = 0; i < n; i++) handle(u, batch[i]);
    u->pool.commit();
    // A long wake-up goes to JS in parts rather than piling up bytes.
    if (u->staging.size() > STAGING_SOFT_LIMIT) deliver(u);
    if (u->destroyed) break;
  }
  return buffers_used;
}

// Whether the kernel holds task work that only our io_uring_enter runs
// (IORING_SETUP_TASKRUN_FLAG). With DEFER_TASKRUN, Linux 6.10 on runs it in
// bounded batches per enter and signals the eventfd only when the first item
// is queued, so what is left of a burst (a hundred peers' FINs) would wait
// for some unrelated wake-up.
bool task_work_pending(uring_reactor* u) { return (IO_URING_READ_ONCE(*u->ring.sq.kflags) & IORING_SQ_TASKRUN) != 0; }

// Trims a grown receive buffer pool. A libuv timer runs between our
// io_uring_enter calls, where the kernel leaves the buffer ring alone.
void on_pool_timer(uv_timer_t* timer) {
  auto* u = static_cast<uring_reactor*>(timer->data);
  if (!u->pool.shrink()) uv_timer_stop(timer);
}

// Issues what found the queue full before, oldest first, after a reap has
// made room. An operation whose owner has begun closing is not issued: it
// completes as cancelled, through the same handler a cancelled one would.
void issue_unissued(uring_reactor* u) {
  std::vector<uint64_t> waiting;
  waiting.swap(u->unissued);
  for (size_t i = 0; i < waiting.size(); i++) {
    uint64_t ud = waiting[i];
    uint32_t slot = uring_slot_of(ud);
    uring_op o = uring_op_of(ud);
    bool closing;
    if (uring_listener_op(o)) {
      closing = u->listeners[slot] == nullptr || u->listeners[slot]->closing;
    } else {
      conn* c = u->conns.find(slot, uring_gen_of(ud));
      closing = c == nullptr || c->state == CS_CLOSING;
    }
    bool cancel_op = o == OP_CANCEL || o == OP_CANCEL_ACCEPT || o == OP_CANCEL_RETRY;
    if (closing != cancel_op) {
      // An operation of a closing owner never issued, or a cancel with nothing left to cancel.
      if (!cancel_op) handle(u, uring_completion{ud, -ECANCELED, 0});
      continue;
    }
    struct io_uring_sqe* sqe = u->unissued.empty() ? get_sqe(u) : nullptr;
    if (sqe == nullptr) {
      u->unissued.insert(u->unissued.end(), waiting.begin() + static_cast<std::ptrdiff_t>(i), waiting.end());
      break;
    }
    prep(u, sqe, ud);
  }
}

// One wake-up: run the kernel's task work and reap what it completes (again
// while more is pending, a few times), deliver one batch, apply JS's
// commands, submit once.
void process(uring_reactor* u) {
  u->in_process = true;
  uint32_t buffers_used = 0;
  for (int round = 0; round < TASK_WORK_ROUNDS && !u->destroyed; round++) {
    io_uring_get_events(&u->ring);
    buffers_used += reap(u);
    if (!task_work_pending(u)) break;
  }
  if (!u->unissued.empty() && !u->destroyed) issue_unissued(u);
  if (!u->destroyed) {
    u->pool.note_use(buffers_used);
    u->pool.commit();
    if (u->pool.above_initial() && !uv_is_active(reinterpret_cast<uv_handle_t*>(&u->pool_timer))) {
      uv_timer_start(&u->pool_timer, on_pool_timer, POOL_SHRINK_MS, POOL_SHRINK_MS);
    }
    deliver(u);
  }
  u->in_process = false;
  if (u->destroyed) return;
  apply_commands(u);
  uring_submit(u);
  // Held events, or task work past this wake-up's share: the next loop turn
  // carries on, after libuv has served everything else.
  if (has_events(u) || task_work_pending(u) || !u->unissued.empty()) uring_poke(u);
}

void on_poll(uv_poll_t* handle, int status, int) {
  auto* u = static_cast<uring_reactor*>(handle->data);
  if (status < 0) return;
  uint64_t value;
  // Reset the eventfd before reaping, so completions posted during the reap
  // wake us again. Without EFD_SEMAPHORE one read takes the whole count.
  (void)!read(u->event_fd, &value, sizeof(value));
  u->stats.wakeups++;
  process(u);
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

int create_ring(uring_reactor* u) {
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
    params.cq_entries = u->options.queue_depth * 4;
    params.flags |= IORING_SETUP_CQSIZE;
    ret = io_uring_queue_init_params(u->options.queue_depth, &u->ring, &params);
    if (ret != -EINVAL) break;
  }
  return ret;
}

void on_handle_closed(uv_handle_t* handle) {
  auto* u = static_cast<uring_reactor*>(handle->data);
  if (--u->open_handles == 0) delete u;
}

int probe() {
  int forced = ring_setup_errno_for_tests();
  if (forced < 0) return forced;
  struct io_uring ring;
  int ret = io_uring_queue_init(2, &ring, 0);
  if (ret < 0) return ret;
  io_uring_queue_exit(&ring);
  return 0;
}

int create(uv_loop_t* loop, const reactor_options& options, const reactor_shared& shared, reactor** out) {
  std::unique_ptr<uring_reactor> u(new (std::nothrow) uring_reactor(loop, options, shared));
  if (!u) return -ENOMEM;
  int ret = create_ring(u.get());
  if (ret < 0) return ret;
  bool retractable = (u->ring.flags & IORING_SETUP_DEFER_TASKRUN) != 0;
  ret = u->pool.init(&u->ring, options.recv_buffer_bytes, options.recv_buffers_initial, options.recv_buffers_max,
                     retractable);
  if (ret == 0) {
    u->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (u->event_fd < 0) ret = -errno;
  }
  if (ret == 0) ret = io_uring_register_eventfd(&u->ring, u->event_fd);
  if (ret == 0) ret = uv_poll_init(loop, &u->poll, u->event_fd);
  if (ret < 0) {
    if (u->event_fd >= 0) close(u->event_fd);
    u->pool.~buf_pool();
    new (&u->pool) buf_pool();
    io_uring_queue_exit(&u->ring);
    return ret;
  }
  u->poll.data = u.get();
  uv_poll_start(&u->poll, UV_READABLE, on_poll);
  uv_timer_init(loop, &u->pool_timer);
  u->pool_timer.data = u.get();
  // The pool's trimming never keeps the process alive by itself.
  uv_unref(reinterpret_cast<uv_handle_t*>(&u->pool_timer));
  u->open_handles = 2;
  u->keepalive = reinterpret_cast<uv_handle_t*>(&u->poll);
  *out = u.release();
  return 0;
}

void flushed(reactor* r) {
  uring_reactor* u = uring_of(r);
  uring_submit(u);
  // Events raised here (a connection closed on the spot) go out with the
  // next wake-up; poke the eventfd so there is one.
  if (has_events(u)) uring_poke(u);
}

void stats(reactor* r, reactor_stats* stats) { stats->recv_buffers = uring_of(r)->pool.size(); }

void destroy(reactor* r) {
  uring_reactor* u = uring_of(r);
  u->destroyed = true;
  uv_poll_stop(&u->poll);
  // Tearing the ring down cancels everything it holds; then the descriptors go.
  u->pool.~buf_pool();
  new (&u->pool) buf_pool();
  io_uring_queue_exit(&u->ring);
  close_all(u);
  close(u->event_fd);
  uv_close(reinterpret_cast<uv_handle_t*>(&u->poll), on_handle_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&u->pool_timer), on_handle_closed);
}

}  // namespace

uring_reactor::uring_reactor(uv_loop_t* loop, const reactor_options& options, const reactor_shared& shared)
    : reactor(&uring_mechanism, sizeof(uring_conn), loop, options, shared) {}

void uring_submit(uring_reactor* u) {
  if (io_uring_sq_ready(&u->ring) == 0) return;
  io_uring_submit(&u->ring);
  u->stats.submits++;
}

void uring_poke(uring_reactor* u) {
  uint64_t one = 1;
  (void)!write(u->event_fd, &one, sizeof(one));
}

// When the queue stays full the operation waits in `unissued`, and the
// eventfd is poked so that a wake-up comes to issue it even if nothing else
// completes.
void uring_issue(uring_reactor* u, uint64_t ud) {
  struct io_uring_sqe* sqe = u->unissued.empty() ? get_sqe(u) : nullptr;
  if (sqe == nullptr) {
    u->unissued.push_back(ud);
    uring_poke(u);
    return;
  }
  prep(u, sqe, ud);
}

extern const mechanism uring_mechanism = {
    "uring",
    probe,
    create,
    uring_listen,
    uring_close_listener,
    flushed,
    stats,
    destroy,
    &uring_stream_ops,
};

}  // namespace ringport
