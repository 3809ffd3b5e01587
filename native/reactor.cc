// reactor.h on top of the core: the mechanisms this build has, and the calls
// that are the same whichever one a reactor runs on.
#include <cerrno>
#include <cstring>

#include "core.h"

namespace ringport {

#ifdef _WIN32
extern const mechanism iocp_mechanism;
#else
extern const mechanism uring_mechanism;
extern const mechanism epoll_mechanism;
#endif

namespace {

// In the order `auto` tries them.
const mechanism* const built[] = {
#ifdef _WIN32
    &iocp_mechanism,
#else
    &uring_mechanism,
    &epoll_mechanism,
#endif
};

const mechanism* find_mechanism(const char* name) {
  for (const mechanism* m : built) {
    if (std::strcmp(m->name, name) == 0) return m;
  }
  return nullptr;
}

}  // namespace

size_t reactor_mechanisms(const char** names, size_t max) {
  size_t n = 0;
  for (const mechanism* m : built) {
    if (n < max) names[n] = m->name;
    n++;
  }
  return n;
}

int reactor_probe(const char* name) {
  const mechanism* m = find_mechanism(name);
  return m == nullptr ? -ENOTSUP : m->probe();
}

int reactor_create(uv_loop_t* loop, const char* name, const reactor_options& options, const reactor_shared& shared,
                   reactor** out) {
  const mechanism* m = find_mechanism(name);
  if (m == nullptr) return -ENOTSUP;
  int ret = m->create(loop, options, shared, out);
  if (ret == 0) reactor_update_ref(*out);
  return ret;
}

int reactor_listen(reactor* r, const listen_request& request, int* listener_id, int* bound_port) {
  int ret = r->mech->listen(r, request, listener_id, bound_port);
  // Accepts complete in a later wake-up, never inside listen: the spec is in place before the first.
  if (ret == 0 && request.relay != nullptr) r->listeners[*listener_id]->relay_spec = relay_add_spec(r, *request.relay);
  reactor_update_ref(r);
  return ret;
}

int reactor_close_listener(reactor* r, int listener_id) {
  if (listener_id < 0 || static_cast<size_t>(listener_id) >= r->listeners.size()) return -EINVAL;
  listener* l = r->listeners[listener_id].get();
  if (l == nullptr || l->closing) return 0;
  l->closing = true;
  r->live_listeners--;
  r->mech->close_listener(r, static_cast<uint32_t>(listener_id), *l);
  reactor_update_ref(r);
  return 0;
}

int reactor_connect(reactor* r, const char* ip, int port, const water_marks& marks, uint32_t* slot_out,
                    uint32_t* gen_out) {
  sockaddr_storage addr;
#ifdef _WIN32
  int len;
#else
  socklen_t len;
#endif
  int ret = parse_address(ip, port, &addr, &len);
  if (ret < 0) return ret;
  uint32_t slot;
  conn* c = stream_alloc(r, marks, &slot);
  if (c == nullptr) return -EMFILE;
  c->state = CS_CONNECTING;
  set_peer_address(c->peer, addr, static_cast<size_t>(len));
  c->peer_len = static_cast<uint32_t>(len);
  ret = r->mech->stream->dial(r, slot, *c);
  if (ret < 0) {
    c->sock = NO_SOCKET;
    r->conns.free(slot);
    return ret;
  }
  *slot_out = slot;
  *gen_out = c->gen;
  reactor_update_ref(r);
  return 0;
}

int reactor_flush(reactor* r, bool tick_done) {
  int ret = apply_commands(r, tick_done);
  // Inside a wake-up the mechanism submits once at its end; from a JS timer, now.
  if (!r->in_process) r->mech->flushed(r);
  return ret;
}

int reactor_unsent(reactor* r, uint32_t slot, uint32_t gen, uint64_t* bytes, bool* kernel_counted) {
  conn* c = r->conns.find(slot, gen);
  if (c == nullptr) return -ENOENT;
  *bytes = c->queue.bytes();
  uint64_t unacked = 0;
  *kernel_counted = c->sock != NO_SOCKET && socket_unacked(c->sock, &unacked) == 0;
  *bytes += unacked;
  return 0;
}

int reactor_peer(reactor* r, uint32_t slot, uint32_t gen, char* host, size_t host_length, int* port) {
  conn* c = r->conns.find(slot, gen);
  if (c == nullptr) return -ENOENT;
  int family = family_of(c->peer);
  const void* src = family == AF_INET ? static_cast<const void*>(&c->peer.v4.sin_addr)
                                      : static_cast<const void*>(&c->peer.v6.sin6_addr);
  if (inet_ntop(family, src, host, static_cast<socklen_t>(host_length)) == nullptr) return -EINVAL;
  *port = port_of(c->peer);
  return 0;
}

void reactor_get_stats(reactor* r, reactor_stats* stats) {
  *stats = r->stats;
  stats->connections = r->conns.live();
  stats->listeners = r->live_listeners;
  // What is still to be written: a closing connection's queue is being
  // dropped (shared.queued says 0 for it), whatever a send in flight still reads.
  uint64_t queued = 0;
  for (uint32_t slot = 0; slot < r->conns.high_water(); slot++) {
    conn& c = r->conns.at(slot);
    if (c.in_use && c.state != CS_CLOSING) queued += c.queue.bytes();
  }
  stats->queued_bytes = queued;
  stats->send_buffer_bytes = r->send_mem.bytes();
  r->mech->stats(r, stats);
}

void reactor_destroy(reactor* r) {
  if (r->destroyed) return;
  r->mech->destroy(r);
}

uint32_t listener_add(reactor* r, std::unique_ptr<listener> l) {
  uint32_t id = static_cast<uint32_t>(r->listeners.size());
  r->listeners.push_back(std::move(l));
  r->live_listeners++;
  return id;
}

void listener_release(reactor* r, uint32_t id) { r->listeners[id].reset(); }

void reactor_update_ref(reactor* r) {
  if (r->destroyed || r->keepalive == nullptr) return;
  if (r->conns.live() + r->live_listeners > 0) uv_ref(r->keepalive);
  else uv_unref(r->keepalive);
}

void close_streams(reactor* r) {
  for (uint32_t slot = 0; slot < r->conns.high_water(); slot++) {
    conn& c = r->conns.at(slot);
    if (c.in_use) relay_forget(r, c);
    if (!c.in_use || c.sock == NO_SOCKET) continue;
    r->mech->stream->close(r, slot, c);
    c.sock = NO_SOCKET;
  }
}

void release_queues(reactor* r) {
  for (uint32_t slot = 0; slot < r->conns.high_water(); slot++) r->conns.at(slot).queue.clear(r->send_mem);
}

void close_all(reactor* r) {
  close_streams(r);
  release_queues(r);
  for (auto& l : r->listeners) {
    if (l) socket_close(l->sock);
  }
}

}  // namespace ringport
