// The epoll loop: one epoll set per JS thread, its descriptor watched by
// libuv (uv_poll). On each wake-up the reactor takes one batch of ready
// sockets from the set, reads what they hold and accepts what waits, hands
// JS the whole batch of events in one call, and applies the commands JS
// queued meanwhile: every connection that got sends in the tick writes them
// in that one pass, one sendmsg each.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <new>

#include "epoll.h"

namespace ringport {

namespace {

// Ready sockets taken from the set per wake-up. A fuller set stays readable,
// so libuv wakes us again on its next turn, after serving everything else.
constexpr int EVENTS_PER_WAKE = 1024;

void process(epoll_reactor* e) {
  e->in_process = true;
  // Connections the last wake-up left with input come first: they are older.
  if (!e->unread.empty()) epoll_read_unread(e);
  struct epoll_event ready[EVENTS_PER_WAKE];
  int n = e->destroyed ? 0 : epoll_wait(e->epoll_fd, ready, EVENTS_PER_WAKE, 0);
  if (n > 0) e->stats.completions += static_cast<uint64_t>(n);
  for (int i = 0; i < n && !e->destroyed; i++) {
    uint64_t data = ready[i].data.u64;
    switch (epoll_tag_of(data)) {
      case EP_WAKE: {
        uint64_t value;
        // Without EFD_SEMAPHORE one read takes the whole count.
        (void)!read(e->wake_fd, &value, sizeof(value));
        break;
      }
      case EP_LISTENER:
        epoll_on_listener(e, epoll_slot_of(data));
        break;
      case EP_STREAM:
        epoll_on_stream(e, data, ready[i].events);
        break;
    }
    if (e->staging.size() > STAGING_SOFT_LIMIT) deliver(e);
  }
  if (!e->destroyed) deliver(e);
  e->in_process = false;
  if (e->destroyed) return;
  apply_commands(e);
  // Held events, or input left by a read budget: the next loop turn carries on.
  if (has_events(e) || !e->unread.empty()) epoll_poke(e);
}

void on_poll(uv_poll_t* handle, int status, int) {
  auto* e = static_cast<epoll_reactor*>(handle->data);
  if (status < 0) return;
  e->stats.wakeups++;
  process(e);
}

void on_handle_closed(uv_handle_t* handle) {
  auto* e = static_cast<epoll_reactor*>(handle->data);
  if (--e->open_handles == 0) delete e;
}

int probe() {
  int fd = epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) return -errno;
  close(fd);
  return 0;
}

int create(uv_loop_t* loop, const reactor_options& options, const reactor_shared& shared, reactor** out) {
  std::unique_ptr<epoll_reactor> e(new (std::nothrow) epoll_reactor(loop, options, shared));
  if (!e) return -ENOMEM;
  int ret = 0;
  e->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  if (e->epoll_fd < 0) ret = -errno;
  if (ret == 0) {
    e->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (e->wake_fd < 0) ret = -errno;
  }
  if (ret == 0) {
    struct epoll_event ev = {};
    ev.events = EPOLLIN;
    ev.data.u64 = epoll_pack(EP_WAKE, 0, 0);
    if (epoll_ctl(e->epoll_fd, EPOLL_CTL_ADD, e->wake_fd, &ev) < 0) ret = -errno;
  }
  if (ret == 0) ret = uv_poll_init(loop, &e->poll, e->epoll_fd);
  if (ret < 0) {
    if (e->wake_fd >= 0) close(e->wake_fd);
    if (e->epoll_fd >= 0) close(e->epoll_fd);
    return ret;
  }
  e->poll.data = e.get();
  uv_poll_start(&e->poll, UV_READABLE, on_poll);
  uv_timer_init(loop, &e->accept_timer);
  e->accept_timer.data = e.get();
  // A paused listener keeps the process alive through the poll handle already.
  uv_unref(reinterpret_cast<uv_handle_t*>(&e->accept_timer));
  e->open_handles = 2;
  e->keepalive = reinterpret_cast<uv_handle_t*>(&e->poll);
  *out = e.release();
  return 0;
}

void flushed(reactor* r) {
  // The sends went out as they were applied. Events raised here (a
  // connection closed on the spot) go out with the next wake-up.
  if (has_events(r)) epoll_poke(epoll_of(r));
}

// No receive buffer waits for input here: reads land in the wake-up's staging.
void stats(reactor*, reactor_stats* stats) { stats->recv_buffers = 0; }

void destroy(reactor* r) {
  epoll_reactor* e = epoll_of(r);
  e->destroyed = true;
  uv_poll_stop(&e->poll);
  uv_timer_stop(&e->accept_timer);
  close_all(e);
  close(e->wake_fd);
  close(e->epoll_fd);
  uv_close(reinterpret_cast<uv_handle_t*>(&e->poll), on_handle_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&e->accept_timer), on_handle_closed);
}

}  // namespace

epoll_reactor::epoll_reactor(uv_loop_t* loop, const reactor_options& options, const reactor_shared& shared)
    : reactor(&epoll_mechanism, sizeof(epoll_conn), loop, options, shared) {}

void epoll_poke(epoll_reactor* e) {
  uint64_t one = 1;
  (void)!write(e->wake_fd, &one, sizeof(one));
}

extern const mechanism epoll_mechanism = {
    "epoll",
    probe,
    create,
    epoll_listen,
    epoll_close_listener,
    flushed,
    stats,
    destroy,
    &epoll_stream_ops,
};

}  // namespace ringport
