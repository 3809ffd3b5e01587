// The contract of a native reactor, whatever its mechanism (native/linux:
// io_uring and epoll; native/windows: IOCP). native/reactor.cc implements it
// over the connection core (core.h) and the mechanism a reactor was created
// with. addon.cc is its only caller and the only file that sees N-API; a
// reactor sees bytes and connection slots, never a session, and frames only
// on a listener that asks it to relay some (relay.h).
// Every function returns 0 or a negative errno and never aborts.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>

namespace ringport {

struct reactor;
struct relay_spec;

struct reactor_options {
  uint32_t queue_depth = 1024;      // submission queue entries; an operation that finds it full waits, never dropped
  uint32_t max_connections = 65536; // slots; also the length of `queued`
  uint32_t recv_buffer_bytes = 16384;
  uint32_t recv_buffers_initial = 64;
  uint32_t recv_buffers_max = 4096;
};

// A connection past `high_water_mark` queued bytes reports RP_EV_DRAIN once
// its queue falls back to `low_water_mark`.
struct water_marks {
  uint32_t high_water_mark;
  uint32_t low_water_mark;
};

struct listen_request {
  const char* host;  // numeric; empty for every interface
  int port;
  int backlog;  // JS passes the system's limit unless told otherwise (src/backend/backlog.ts)
  bool reuse_port;
  water_marks marks;  // for the connections it accepts
  // Its connections speak ringport's framing and have these packet ids
  // relayed to their group (relay.h); null: bytes only.
  const relay_spec* relay = nullptr;
};

// Memory owned by JS and shared with the reactor (see protocol.h), and the
// callback that hands one batch of events to JS.
struct reactor_shared {
  int32_t* events;
  uint32_t event_capacity;  // in records
  int32_t* commands;
  uint32_t command_capacity;  // in int32s
  uint8_t* arena;
  uint32_t arena_capacity;
  int32_t* control;
  uint32_t* queued;  // bytes queued per slot, max_connections entries
  // Delivers `count` event records; DATA events index into `data`.
  void (*deliver)(void* context, uint32_t count, const uint8_t* data, size_t data_length);
  void* context;
};

struct reactor_stats {
  uint64_t connections;
  uint64_t listeners;
  uint64_t bytes_in;
  uint64_t bytes_out;
  uint64_t reads;
  uint64_t sends;
  uint64_t queued_bytes;
  uint64_t send_buffer_bytes;  // what the queues pin (see send_queue.h), free chunks included
  uint64_t batches;
  uint64_t submits;
  uint64_t wakeups;
  uint64_t completions;  // what the wake-ups reaped: CQEs (uring), ready events (epoll), completion packets (iocp)
  uint64_t recv_buffers;  // a receive pool's buffers (uring); 0 where no buffer waits for input
  uint64_t enobufs;
};

// The mechanisms this build has ("uring", "epoll"; "iocp"), in the order
// `auto` tries them: up to `max` names into `names`; returns how many there are.
size_t reactor_mechanisms(const char** names, size_t max);

// Whether `mechanism` works here: 0, or why not (-EPERM, -ENOSYS, ...;
// -ENOTSUP for one this build does not have).
int reactor_probe(const char* mechanism);

// Creates a reactor of `mechanism` on `loop`. On failure *out is untouched
// and the result says why (-EPERM: io_uring refused, e.g. by a seccomp
// profile; -ENOSYS: the kernel has no io_uring; -ENOTSUP: not built here).
int reactor_create(uv_loop_t* loop, const char* mechanism, const reactor_options& options, const reactor_shared& shared,
                   reactor** out);

int reactor_listen(reactor* r, const listen_request& request, int* listener_id, int* bound_port);
int reactor_close_listener(reactor* r, int listener_id);

// Starts a dial to a numeric IPv4/IPv6 address; the outcome arrives as RP_EV_CONNECT.
int reactor_connect(reactor* r, const char* ip, int port, const water_marks& marks, uint32_t* slot, uint32_t* gen);

// Applies the commands JS wrote since the last flush and submits once.
// `tick_done` false: JS flushed early because its buffers were full, and
// more commands of the same tick follow; the sends start with the tick's
// last flush, so that each connection writes once per tick.
int reactor_flush(reactor* r, bool tick_done);

// Bytes of a connection not yet taken by the peer: its queue, plus, where
// *kernel_counted says so, what the kernel has not had acknowledged. A
// closing connection's progress is judged by it.
int reactor_unsent(reactor* r, uint32_t slot, uint32_t gen, uint64_t* bytes, bool* kernel_counted);

// The peer address of a connection as text, for the rare non-IPv4 peer.
int reactor_peer(reactor* r, uint32_t slot, uint32_t gen, char* host, size_t host_length, int* port);

void reactor_get_stats(reactor* r, reactor_stats* stats);

// Closes every socket and the mechanism (the ring, the epoll set, the port);
// memory is released once libuv has closed the reactor's handles.
void reactor_destroy(reactor* r);

}  // namespace ringport
