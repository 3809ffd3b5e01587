// epoll streams: reads straight into the wake-up's staging until a short
// read, the peer's FIN or the read budget; every queued slice in one
// sendmsg, again until the queue is empty or the socket full; a dial's
// outcome from its first event.
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "epoll.h"
#include "sockets.h"

namespace ringport {

int epoll_register(epoll_reactor* e, uint32_t slot, conn& c) {
  conn_ext<epoll_conn>(c) = {};
  struct epoll_event ev = {};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u64 = epoll_pack(EP_STREAM, c.gen, slot);
  return epoll_ctl(e->epoll_fd, EPOLL_CTL_ADD, c.sock, &ev) == 0 ? 0 : -errno;
}

namespace {

// Bytes asked of one recv. Reads land in the wake-up's staging, which they
// only reserve, so no connection pins a buffer for its input.
constexpr size_t READ_BYTES = 64 * 1024;
// Bytes read from one connection per wake-up before the others get a turn.
constexpr size_t READ_BUDGET = 256 * 1024;
// iovecs per sendmsg: enough to carry a tick's worth of packets in one call.
constexpr int MAX_IOV = 64;

void read_input(epoll_reactor* e, uint32_t slot, conn& c) {
  epoll_conn& x = conn_ext<epoll_conn>(c);
  size_t budget = READ_BUDGET;
  for (;;) {
    uint8_t* room = stream_input(e, READ_BYTES);
    if (room == nullptr) {
      stream_abort(e, slot, c, RP_CLOSE_ERROR, ENOMEM);
      return;
    }
    ssize_t n = recv(c.sock, room, READ_BYTES, 0);
    if (n > 0) {
      stream_received(e, slot, c, static_cast<size_t>(n));
      // It may have closed the connection (out of memory): nothing more to read for it.
      if (!c.in_use || c.state == CS_CLOSING) return;
      // A short read emptied the socket: input that comes later raises a new
      // edge. Unless the FIN is already there, which raises none.
      if (static_cast<size_t>(n) < READ_BYTES && !x.rdhup) return;
      budget = static_cast<size_t>(n) >= budget ? 0 : budget - static_cast<size_t>(n);
      if (budget == 0) {
        if (!x.unread) {
          x.unread = true;
          e->unread.push_back(epoll_pack(EP_STREAM, c.gen, slot));
        }
        return;
      }
      continue;
    }
    if (n == 0) {
      stream_peer_fin(e, slot, c);
      return;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    stream_fail(e, slot, c, errno);
    return;
  }
}

void on_connect(epoll_reactor* e, uint32_t slot, conn& c, uint32_t events) {
  int err = 0;
  socklen_t len = sizeof(err);
  if (getsockopt(c.sock, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
  // A socket that hung up without an error to show was refused all the same.
  if (err == 0 && (events & EPOLLOUT) == 0) err = ECONNREFUSED;
  uint32_t gen = c.gen;
  stream_connected(e, slot, c, -err);
  // Input that came with the connection raised no edge of its own.
  if (err == 0 && e->conns.find(slot, gen) == &c && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP))) {
    if (events & (EPOLLRDHUP | EPOLLHUP)) conn_ext<epoll_conn>(c).rdhup = true;
    read_input(e, slot, c);
  }
}

// An epoll socket's input is watched from its registration on (epoll_register).
void start_recv(reactor*, uint32_t, conn&) {}

void start_send(reactor* r, uint32_t slot, conn& c) {
  epoll_reactor* e = epoll_of(r);
  while (!c.queue.empty()) {
    struct iovec iov[MAX_IOV];
    int n = c.queue.peek(MAX_IOV, [&iov](int i, uint8_t* data, uint32_t length) { iov[i] = {data, length}; });
    ssize_t sent;
    if (n == 1) {
      sent = send(c.sock, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
    } else {
      struct msghdr msg = {};
      msg.msg_iov = iov;
      msg.msg_iovlen = static_cast<size_t>(n);
      sent = sendmsg(c.sock, &msg, MSG_NOSIGNAL);
    }
    e->stats.submits++;
    if (sent < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        // The socket is full: the EPOLLOUT edge its room brings sends the rest.
        c.send_inflight = true;
        return;
      }
      stream_fail(e, slot, c, errno);
      return;
    }
    stream_sent(e, slot, c, static_cast<uint64_t>(sent));
  }
  stream_queue_empty(e, slot, c);
}

// Nothing to cancel: epoll holds no operation, only the registration that
// closing the descriptor ends (c.ops stays 0, so the core never calls this).
void cancel(reactor*, uint32_t, conn&) {}

void close_conn(reactor*, uint32_t, conn& c) {
  // The last descriptor for the socket: closing it takes it out of the epoll set.
  if (c.sock != NO_SOCKET) close(c.sock);
}

int dial(reactor* r, uint32_t slot, conn& c) {
  epoll_reactor* e = epoll_of(r);
  int fd = open_stream(family_of(c.peer));
  if (fd < 0) return fd;
  c.sock = fd;
  int ret = 0;
  if (connect(fd, reinterpret_cast<sockaddr*>(&c.peer), c.peer_len) < 0 && errno != EINPROGRESS) ret = -errno;
  // Registered only now: a socket that has not begun to connect reads as hung up.
  if (ret == 0) ret = epoll_register(e, slot, c);
  if (ret < 0) {
    close(fd);
    return ret;
  }
  return 0;
}

}  // namespace

extern const stream_ops epoll_stream_ops = {start_recv, start_send, cancel, close_conn, dial};

void epoll_on_stream(epoll_reactor* e, uint64_t data, uint32_t events) {
  uint32_t slot = epoll_slot_of(data);
  uint32_t gen = epoll_gen_of(data);
  conn* c = e->conns.find(slot, gen);
  // Closed earlier in this wake-up: its socket left the set with its descriptor.
  if (c == nullptr) return;
  if (c->state == CS_CONNECTING) {
    on_connect(e, slot, *c, events);
    return;
  }
  if (c->reading && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
    if (events & (EPOLLRDHUP | EPOLLHUP)) conn_ext<epoll_conn>(*c).rdhup = true;
    read_input(e, slot, *c);
    if (e->conns.find(slot, gen) != c) return;
  }
  if (c->send_inflight && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
    c->send_inflight = false;
    start_send(e, slot, *c);
  }
}

void epoll_read_unread(epoll_reactor* e) {
  std::vector<uint64_t> waiting;
  waiting.swap(e->unread);
  for (uint64_t data : waiting) {
    uint32_t slot = epoll_slot_of(data);
    conn* c = e->conns.find(slot, epoll_gen_of(data));
    if (c == nullptr) continue;
    conn_ext<epoll_conn>(*c).unread = false;
    if (c->reading) read_input(e, slot, *c);
  }
}

}  // namespace ringport
