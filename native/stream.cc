// A stream connection's life cycle, whatever the mechanism under it:
//
//   CS_CONNECTING -> CS_OPEN -> (graceful) CS_DRAINING -> CS_FIN_SENT -> CS_CLOSING
//                            -> (peer FIN) CS_PEER_DONE ------------------> CS_CLOSING
//
// CS_CLOSING cancels what the kernel holds for the connection; the slot is
// released, and JS told, once the last operation is back. A reset skips the
// rest of the way: SO_LINGER 0, then CS_CLOSING.
#include <cstring>

#include "core.h"

namespace ringport {

namespace {

// The last operation is back: close the descriptor and release the slot.
void finish_close(reactor* r, uint32_t slot, conn& c) {
  r->mech->stream->close(r, slot, c);
  c.sock = NO_SOCKET;
  relay_forget(r, c);
  c.queue.clear(r->send_mem);
  r->shared.queued[slot] = 0;
  push_event(r, RP_EV_CLOSE, slot, c.gen, c.close_reason, -c.close_errno, 0);
  r->conns.free(slot);
  reactor_update_ref(r);
}

// Cancels what the kernel holds for this connection; the slot is released
// when the last operation has come back, never before.
void begin_closing(reactor* r, uint32_t slot, conn& c, int32_t reason, int32_t err) {
  if (c.state == CS_CLOSING) return;
  c.state = CS_CLOSING;
  c.close_reason = reason;
  c.close_errno = err;
  // A send in flight may still be reading the queued slices: they are
  // released with the slot (finish_close), not before.
  if (!c.send_inflight) c.queue.clear(r->send_mem);
  r->shared.queued[slot] = 0;
  if (c.ops == 0) {
    finish_close(r, slot, c);
    return;
  }
  r->mech->stream->cancel(r, slot, c);
}

// FIN sent: wait for the peer's. Without input watched, there is nothing to wait on.
void send_fin(reactor* r, uint32_t slot, conn& c) {
  if (socket_shutdown_send(c.sock) < 0 || !c.reading) {
    begin_closing(r, slot, c, RP_CLOSE_LOCAL, 0);
    return;
  }
  c.state = CS_FIN_SENT;
}

}  // namespace

conn* stream_alloc(reactor* r, const water_marks& marks, uint32_t* slot) {
  int64_t allocated = r->conns.alloc(r->options.max_connections);
  if (allocated < 0) return nullptr;
  *slot = static_cast<uint32_t>(allocated);
  conn& c = r->conns.at(*slot);
  c.state = CS_OPEN;
  c.ops = 0;
  c.reading = false;
  c.send_inflight = false;
  c.over_high = false;
  c.dirty = false;
  c.close_reason = RP_CLOSE_LOCAL;
  c.close_errno = 0;
  c.high_water_mark = marks.high_water_mark;
  c.low_water_mark = marks.low_water_mark;
  c.sock = NO_SOCKET;
  c.peer = {};
  c.peer_len = 0;
  c.relay.reset();
  return &c;
}

conn* stream_adopt(reactor* r, const listener& l, socket_t sock, uint32_t* slot) {
  conn* c = stream_alloc(r, l.marks, slot);
  if (c == nullptr) {
    socket_close(sock);
    return nullptr;
  }
  c->sock = sock;
  if (!relay_follow(*c, l.relay_spec)) {
    socket_close(sock);
    c->sock = NO_SOCKET;
    r->conns.free(*slot);
    return nullptr;
  }
  return c;
}

void stream_accepted(reactor* r, uint32_t listener_id, uint32_t slot, conn& c) {
  socket_set_nodelay(c.sock);
  c.reading = true;
  r->mech->stream->start_recv(r, slot, c);
  push_event(r, RP_EV_ACCEPT, slot, c.gen, static_cast<int32_t>(listener_id), port_of(c.peer),
             static_cast<int32_t>(ipv4_of(c.peer)));
  reactor_update_ref(r);
}

void stream_connected(reactor* r, uint32_t slot, conn& c, int result) {
  if (result == 0 && connected_to_self(c.sock, c.peer)) result = -ECONNREFUSED;
  int port = port_of(c.peer);
  int32_t ipv4 = static_cast<int32_t>(ipv4_of(c.peer));
  if (result < 0) {
    // A failed dial reports only its connect outcome: no close event follows.
    push_event(r, RP_EV_CONNECT, slot, c.gen, result, port, ipv4);
    r->mech->stream->close(r, slot, c);
    c.sock = NO_SOCKET;
    r->conns.free(slot);
    reactor_update_ref(r);
    return;
  }
  c.state = CS_OPEN;
  c.reading = true;
  r->mech->stream->start_recv(r, slot, c);
  push_event(r, RP_EV_CONNECT, slot, c.gen, 0, port, ipv4);
}

uint8_t* stream_input(reactor* r, size_t n) { return r->staging.reserve(n); }

void stream_received(reactor* r, uint32_t slot, conn& c, size_t n) {
  // Bytes that arrive after this side began closing are dropped, as on net.
  if (n == 0 || c.state != CS_OPEN) return;
  if (c.relay != nullptr && c.relay->spec != 0) {
    relay_received(r, slot, c, n);
    return;
  }
  push_event(r, RP_EV_DATA, slot, c.gen, static_cast<int32_t>(r->staging.size()), static_cast<int32_t>(n), 0);
  r->staging.commit(n);
  r->stats.bytes_in += n;
  r->stats.reads++;
}

void stream_received_copy(reactor* r, uint32_t slot, conn& c, const uint8_t* data, size_t n) {
  if (n == 0 || c.state != CS_OPEN) return;
  uint8_t* room = stream_input(r, n);
  if (room == nullptr) {
    stream_abort(r, slot, c, RP_CLOSE_ERROR, ENOMEM);
    return;
  }
  std::memcpy(room, data, n);
  stream_received(r, slot, c, n);
}

void stream_peer_fin(reactor* r, uint32_t slot, conn& c) {
  c.reading = false;
  switch (c.state) {
    case CS_FIN_SENT:
      begin_closing(r, slot, c, RP_CLOSE_LOCAL, 0);
      return;
    case CS_DRAINING:
      c.state = CS_PEER_DONE;
      c.close_reason = RP_CLOSE_LOCAL;
      break;
    case CS_OPEN:
      c.state = CS_PEER_DONE;
      c.close_reason = RP_CLOSE_PEER;
      break;
    default:
      return;
  }
  if (!c.send_inflight && c.queue.empty()) stream_queue_empty(r, slot, c);
}

void stream_sent(reactor* r, uint32_t slot, conn& c, uint64_t n) {
  r->stats.bytes_out += n;
  c.queue.consume(r->send_mem, n);
  uint64_t queued = c.queue.bytes();
  r->shared.queued[slot] = static_cast<uint32_t>(queued);
  if (c.over_high && queued <= c.low_water_mark) {
    c.over_high = false;
    if (c.state == CS_OPEN) push_event(r, RP_EV_DRAIN, slot, c.gen, 0, 0, 0);
  }
}

void stream_send_result(reactor* r, uint32_t slot, conn& c, int64_t result) {
  if (result < 0) {
    stream_abort(r, slot, c, RP_CLOSE_ERROR, static_cast<int32_t>(-result));
    return;
  }
  stream_sent(r, slot, c, static_cast<uint64_t>(result));
  if (!c.queue.empty()) r->mech->stream->start_send(r, slot, c);
  else stream_queue_empty(r, slot, c);
}

void stream_queue_empty(reactor* r, uint32_t slot, conn& c) {
  if (c.state == CS_DRAINING) send_fin(r, slot, c);
  else if (c.state == CS_PEER_DONE) begin_closing(r, slot, c, c.close_reason, 0);
}

bool stream_closing(reactor* r, uint32_t slot, conn& c) {
  // Released already: a close inside the completion being handled (a read that ran out of memory).
  if (!c.in_use) return true;
  if (c.state != CS_CLOSING) return false;
  // Once no send reads them, the queued bytes of a closing connection go.
  if (!c.send_inflight) c.queue.clear(r->send_mem);
  if (c.ops == 0) finish_close(r, slot, c);
  return true;
}

void stream_close(reactor* r, uint32_t slot, conn& c) {
  switch (c.state) {
    case CS_OPEN:
      c.state = CS_DRAINING;
      if (!c.send_inflight && c.queue.empty()) send_fin(r, slot, c);
      break;
    case CS_PEER_DONE:
      c.close_reason = RP_CLOSE_LOCAL;
      break;
    case CS_CONNECTING:
      begin_closing(r, slot, c, RP_CLOSE_LOCAL, 0);
      break;
    default:
      break;
  }
}

void stream_abort(reactor* r, uint32_t slot, conn& c, int32_t reason, int32_t err) {
  if (c.state == CS_CLOSING) return;
  socket_set_reset(c.sock);
  begin_closing(r, slot, c, reason, err);
}

void stream_fail(reactor* r, uint32_t slot, conn& c, int32_t err) {
  c.reading = false;
  stream_abort(r, slot, c, RP_CLOSE_ERROR, err);
}

}  // namespace ringport
