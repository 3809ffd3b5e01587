// The connection core: what every mechanism does the same way. It owns the
// connection slots and their life cycle (open, graceful close, reset, the
// peer's FIN, the end of a send), the send queues, the stats, the queue of
// events bound for JS, and applying the commands JS wrote into shared
// memory. A mechanism (native/linux: io_uring, epoll; native/windows: IOCP)
// derives its reactor from `reactor` and fills in `mechanism`: the few hooks
// that touch the kernel (submit a recv, submit a send, cancel, close a
// descriptor, dial), and its loop. The core decides when each hook runs;
// the mechanism reports back through the stream_* functions below.
//
// Everything here runs on the JS thread, and no function calls into JS but
// deliver(): a mechanism calls it between completions, never inside one.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <vector>

#include "byte_buffer.h"
#include "conn.h"
#include "reactor.h"
#include "relay.h"
#include "send_queue.h"
#include "slab.h"

namespace ringport {

// Received bytes a wake-up holds for JS before it hands them over and reads
// on: a long wake-up goes to JS in parts rather than piling up bytes.
constexpr size_t STAGING_SOFT_LIMIT = 4 * 1024 * 1024;

// A listener as the core sees it; each mechanism's listener extends it.
struct listener {
  virtual ~listener() = default;
  socket_t sock = NO_SOCKET;
  water_marks marks = {};  // given to each connection it accepts
  uint32_t relay_spec = 0; // its connections' frames are followed (relay.h); 0: not
  int ops = 0;             // operations the kernel holds for it
  bool closing = false;
};

// The hooks a mechanism fills in for a stream connection.
struct stream_ops {
  // Watches c's input: arms a recv, posts a zero-byte receive, registers the
  // socket. What arrives comes back through stream_received and
  // stream_peer_fin.
  void (*start_recv)(reactor* r, uint32_t slot, conn& c);
  // Sends what c has queued, and sets c.send_inflight while the send is
  // not done; the outcome comes back through stream_sent or
  // stream_send_result.
  void (*start_send)(reactor* r, uint32_t slot, conn& c);
  // Cancels the c.ops operations the kernel holds for c. Each still comes
  // back (stream_closing), and the last one's return closes the slot.
  void (*cancel)(reactor* r, uint32_t slot, conn& c);
  // Closes c's descriptor and drops what the mechanism holds for it. No
  // operation of c is left in the kernel when this runs.
  void (*close)(reactor* r, uint32_t slot, conn& c);
  // Opens a socket for c.peer's family into c.sock and starts a dial to
  // c.peer; the outcome comes back through stream_connected. Returns 0, or
  // -errno when the dial could not start (then no socket is left open).
  int (*dial)(reactor* r, uint32_t slot, conn& c);
};

// A mechanism: its name, its loop and its hooks (see reactor.h for what
// each reactor_* call promises).
struct mechanism {
  const char* name;
  // Whether it works here: 0, or why not (-EPERM, -ENOSYS, ...).
  int (*probe)();
  int (*create)(uv_loop_t* loop, const reactor_options& options, const reactor_shared& shared, reactor** out);
  // Opens a listener, registers it with listener_add and starts accepting.
  int (*listen)(reactor* r, const listen_request& request, int* listener_id, int* bound_port);
  // Stops accepting on `l`, which the core has marked closing; the
  // mechanism calls listener_release once nothing of it is left in flight.
  void (*close_listener)(reactor* r, uint32_t id, listener& l);
  // JS flushed commands outside a wake-up: submit what they queued, and see
  // that a wake-up comes for the events they raised (has_events).
  void (*flushed)(reactor* r);
  // Fills what only the mechanism knows (recv_buffers, enobufs).
  void (*stats)(reactor* r, reactor_stats* stats);
  // Closes every socket and stops the loop's handles; the memory goes once
  // libuv has closed them. Sets r->destroyed first.
  void (*destroy)(reactor* r);
  const stream_ops* stream;
};

struct reactor {
  // `conn_ext_bytes`: the size of the mechanism's per-connection data (see conn_ext).
  reactor(const mechanism* m, size_t conn_ext_bytes, uv_loop_t* l, const reactor_options& o, const reactor_shared& s)
      : mech(m), loop(l), options(o), shared(s), conns(conn_ext_bytes) {
    events.reserve(1024 * RP_EVENT_INTS);
  }
  reactor(const reactor&) = delete;
  reactor& operator=(const reactor&) = delete;

  const mechanism* mech;
  uv_loop_t* loop;
  // The handle that keeps the loop alive while there are connections or
  // listeners, like a socket's (reactor_update_ref).
  uv_handle_t* keepalive = nullptr;
  reactor_options options;
  reactor_shared shared;
  send_memory send_mem;  // before conns: their queues hold its blocks
  slab<conn> conns;
  std::vector<std::unique_ptr<listener>> listeners;  // index = listener id
  uint32_t live_listeners = 0;

  // Events wait here until a point where calling JS is safe (between
  // completions, never inside one), then go out in chunks of event_capacity.
  std::vector<int32_t> events;
  byte_buffer staging;           // the received bytes DATA events point into
  std::vector<uint32_t> dirty;   // slots that got new sends this flush
  relay_table relay;
  bool in_process = false;       // inside a wake-up: the mechanism submits at its end
  bool destroyed = false;

  reactor_stats stats = {};
};

// A mechanism's per-connection data (the slot's extension, see slab.h).
template <typename E>
E& conn_ext(conn& c) {
  return slab_ext<E>(c);
}

// -- events.cc: the queue of events bound for JS -------------------------------

inline void push_event(reactor* r, int32_t type, uint32_t slot, uint32_t gen, int32_t a, int32_t b, int32_t c) {
  r->events.insert(r->events.end(), {type, static_cast<int32_t>(slot), static_cast<int32_t>(gen), a, b, c});
}

inline bool has_events(const reactor* r) { return !r->events.empty(); }

// c got sends in this flush: its send starts with the tick's last flush (apply_commands).
inline void mark_dirty(reactor* r, uint32_t slot, conn& c) {
  if (c.dirty) return;
  c.dirty = true;
  r->dirty.push_back(slot);
}

// Hands JS everything pending, then applies what JS queued in response.
void deliver(reactor* r);

// -- stream.cc: a connection's life cycle -------------------------------------

// A fresh slot for a connection with these marks (no socket yet, state
// CS_OPEN), or nullptr when every slot is taken.
conn* stream_alloc(reactor* r, const water_marks& marks, uint32_t* slot);

// A slot for a connection `l` accepted on `sock`, or nullptr when every slot
// is taken: then `sock` is closed, refused rather than accepting stopped.
conn* stream_adopt(reactor* r, const listener& l, socket_t sock, uint32_t* slot);

// A connection the mechanism accepted (c.sock and c.peer set): watch its
// input and tell JS.
void stream_accepted(reactor* r, uint32_t listener_id, uint32_t slot, conn& c);

// A dial ended with `result`, 0 or -errno: the connection opens, or JS is
// told why not and the slot is released (no close event follows).
void stream_connected(reactor* r, uint32_t slot, conn& c, int result);

// Room for `n` received bytes at the end of this wake-up's staging, or
// nullptr when memory runs out.
uint8_t* stream_input(reactor* r, size_t n);

// The first `n` bytes of the room stream_input gave hold c's input: a DATA
// event, unless this side began closing (then they are dropped, as on net).
void stream_received(reactor* r, uint32_t slot, conn& c, size_t n);

// The same for bytes the mechanism holds elsewhere (a provided buffer).
void stream_received_copy(reactor* r, uint32_t slot, conn& c, const uint8_t* data, size_t n);

// The peer sent FIN. As node:net does by default: flush what is queued, then close.
void stream_peer_fin(reactor* r, uint32_t slot, conn& c);

// `n` bytes of c's queue have left: counted, dropped from the queue, and a
// drain event once it falls to the low-water mark.
void stream_sent(reactor* r, uint32_t slot, conn& c, uint64_t n);

// A send came back (the mechanism has cleared c.send_inflight): `result` is
// the bytes sent or -errno. Sends the rest, or carries on with whatever
// close waited for the queue.
void stream_send_result(reactor* r, uint32_t slot, conn& c, int64_t result);

// c's queue is empty: carry on with whatever close was waiting for it.
void stream_queue_empty(reactor* r, uint32_t slot, conn& c);

// An operation of c came back and the mechanism counted it off c.ops.
// Returns true when c is closing: the caller does nothing more with it, and
// the last operation back closes the slot.
bool stream_closing(reactor* r, uint32_t slot, conn& c);

// A graceful close: flush, FIN, wait for the peer's.
void stream_close(reactor* r, uint32_t slot, conn& c);

// Resets c (SO_LINGER 0) and closes it with `reason` and `err` (a positive errno or 0).
void stream_abort(reactor* r, uint32_t slot, conn& c, int32_t reason, int32_t err);

// A read or a send failed with `err` (a positive errno): c is reset and
// closed with RP_CLOSE_ERROR, and its input no longer watched.
void stream_fail(reactor* r, uint32_t slot, conn& c, int32_t err);

// -- commands.cc ----------------------------------------------------------------

// Applies the commands JS wrote since the last flush (see protocol.h) and,
// once the tick is done, starts one send on each connection that got some
// in it. `tick_done` is false for a flush JS made early because its buffers
// were full: more commands of the same tick follow.
int apply_commands(reactor* r, bool tick_done = true);

// -- reactor.cc -----------------------------------------------------------------

// Gives a new listener its id and counts it.
uint32_t listener_add(reactor* r, std::unique_ptr<listener> l);

// Forgets a closed listener whose descriptor the mechanism has closed.
void listener_release(reactor* r, uint32_t id);

// Like a socket, the reactor keeps the process alive only while it has work.
void reactor_update_ref(reactor* r);

// For destroy: runs the close hook on every open connection, then drops
// every queue. A mechanism whose kernel may still read the queued bytes
// (an IOCP request that never came back) skips release_queues.
void close_streams(reactor* r);
void release_queues(reactor* r);

// For destroy, where nothing is left in flight once the mechanism has
// stopped: every connection as close_streams and release_queues do, and
// every listener's socket.
void close_all(reactor* r);

}  // namespace ringport
