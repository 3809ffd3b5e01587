// epoll listeners: level-triggered, and accept4 in a loop on each
// readiness. Out of descriptors (EMFILE, ENFILE) or memory, a listener
// leaves the epoll set and a timer brings it back after a pause, as the
// io_uring mechanism pauses its accept: connections wait in the backlog
// meanwhile rather than being taken and dropped, and closing connections
// will have freed descriptors by then.
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>

#include "epoll.h"
#include "sockets.h"

namespace ringport {

namespace {

// Connections taken per listener per wake-up: a burst of logins between two
// wake-ups without starving the connections already open. The epoll set
// reports the rest of the backlog again (level-triggered).
constexpr int ACCEPTS_PER_WAKE = 128;
// The pause after EMFILE before accepting again, as on io_uring.
constexpr uint64_t ACCEPT_RETRY_MS = 100;

int watch(epoll_reactor* e, uint32_t id, const listener& l) {
  struct epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.u64 = epoll_pack(EP_LISTENER, 0, id);
  return epoll_ctl(e->epoll_fd, EPOLL_CTL_ADD, l.sock, &ev) == 0 ? 0 : -errno;
}

void pause_accepting(epoll_reactor* e, uint32_t id, epoll_listener& l) {
  epoll_ctl(e->epoll_fd, EPOLL_CTL_DEL, l.sock, nullptr);
  l.paused = true;
  e->paused.push_back(id);
  if (!uv_is_active(reinterpret_cast<uv_handle_t*>(&e->accept_timer))) {
    uv_timer_start(&e->accept_timer, epoll_on_accept_timer, ACCEPT_RETRY_MS, 0);
  }
}

void adopt(epoll_reactor* e, uint32_t listener_id, const listener& l, int fd, const sockaddr_storage& peer,
           socklen_t peer_len) {
  uint32_t slot;
  conn* c = stream_adopt(e, l, fd, &slot);
  if (c == nullptr) return;
  set_peer_address(c->peer, peer, peer_len);
  c->peer_len = peer_len;
  if (epoll_register(e, slot, *c) < 0) {
    // The epoll set is full (max_user_watches) or memory ran out: refuse this one too.
    close(fd);
    c->sock = NO_SOCKET;
    e->conns.free(slot);
    return;
  }
  stream_accepted(e, listener_id, slot, *c);
}

}  // namespace

void epoll_on_listener(epoll_reactor* e, uint32_t id) {
  auto* l = static_cast<epoll_listener*>(id < e->listeners.size() ? e->listeners[id].get() : nullptr);
  if (l == nullptr || l->closing || l->paused) return;
  for (int i = 0; i < ACCEPTS_PER_WAKE; i++) {
    sockaddr_storage peer = {};
    socklen_t len = sizeof(peer);
    int fd = accept4(l->sock, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      adopt(e, id, *l, fd, peer, len);
      continue;
    }
    switch (errno) {
      case EINTR:
      case ECONNABORTED:  // a peer that gave up before we took it costs nothing
      case EPROTO:
        continue;
      case EMFILE:
      case ENFILE:
      case ENOBUFS:
      case ENOMEM:
        pause_accepting(e, id, *l);
        return;
      default:  // EAGAIN: the backlog is empty
        return;
    }
  }
}

void epoll_on_accept_timer(uv_timer_t* timer) {
  auto* e = static_cast<epoll_reactor*>(timer->data);
  std::vector<uint32_t> waiting;
  waiting.swap(e->paused);
  for (uint32_t id : waiting) {
    auto* l = static_cast<epoll_listener*>(e->listeners[id].get());
    if (l == nullptr || l->closing) continue;
    // Back in the set, a listener with a backlog is reported at once.
    if (watch(e, id, *l) == 0) {
      l->paused = false;
    } else {
      e->paused.push_back(id);
    }
  }
  if (!e->paused.empty()) uv_timer_start(&e->accept_timer, epoll_on_accept_timer, ACCEPT_RETRY_MS, 0);
}

int epoll_listen(reactor* r, const listen_request& request, int* listener_id, int* bound_port) {
  epoll_reactor* e = epoll_of(r);
  int fd = open_listener(request.host, request.port, request.backlog, request.reuse_port, bound_port);
  if (fd < 0) return fd;
  auto l = std::make_unique<epoll_listener>();
  l->sock = fd;
  l->marks = request.marks;
  uint32_t id = listener_add(e, std::move(l));
  int ret = watch(e, id, *e->listeners[id]);
  if (ret < 0) {
    e->live_listeners--;
    listener_release(e, id);
    close(fd);
    return ret;
  }
  *listener_id = static_cast<int>(id);
  return 0;
}

void epoll_close_listener(reactor* r, uint32_t id, listener& l) {
  // Nothing of a listener is in flight here: closing the descriptor takes it
  // out of the set (a paused one is out already, and its timer passes it by).
  socket_close(l.sock);
  listener_release(r, id);
}

}  // namespace ringport
