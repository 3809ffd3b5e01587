// The epoll mechanism: the native backend where io_uring is refused (Docker's
// default seccomp profile since Docker 25 and containerd's both answer
// io_uring_setup with EPERM), in three files by job like the io_uring one:
// the loop (epoll_loop.cc: the epoll set, its wake-up, one batch per
// wake-up), listeners (epoll_listener.cc: accept4 in a loop, the pause
// after EMFILE) and streams (epoll_stream.cc: reads, writev, connect). This
// header is what they share.
//
// Streams are edge-triggered, registered once for EPOLLIN | EPOLLOUT |
// EPOLLRDHUP when accepted or dialled and never modified again: no
// epoll_ctl on the hot path, nor when a slow reader's queue fills and
// drains (level-triggered EPOLLOUT would need one to arm it and one to
// disarm it each time). What edge triggering asks for in return: a read
// stops only at a short read (input that arrives later raises a new edge),
// or once the peer's FIN is known to be there, at its end; a connection that
// used its read budget waits on a list for the next wake-up rather than for
// an edge that will not come; a send that meets a full socket waits for
// the EPOLLOUT edge its room brings.
//
// Listeners are level-triggered: a wake-up accepts a bounded number of
// connections and the epoll set reports the rest of the backlog again, and a
// listener paused by EMFILE is simply taken out of the set until its timer.
//
// epoll_event.data packs a tag, the slot's generation and the slot, like the
// io_uring mechanism's user_data: an event fetched for a connection that has
// since closed (and whose slot may have been reused) is recognised as stale.
#pragma once

#include <cstdint>
#include <vector>

#include "../core.h"

namespace ringport {

enum epoll_tag : uint8_t {
  EP_WAKE = 1,  // the eventfd a poke writes to
  EP_LISTENER,
  EP_STREAM,
};

inline uint64_t epoll_pack(epoll_tag tag, uint32_t gen, uint32_t slot) {
  return (static_cast<uint64_t>(tag) << 56) | (static_cast<uint64_t>(gen & RP_GEN_MASK) << 32) | slot;
}
inline epoll_tag epoll_tag_of(uint64_t data) { return static_cast<epoll_tag>(data >> 56); }
inline uint32_t epoll_gen_of(uint64_t data) { return static_cast<uint32_t>(data >> 32) & RP_GEN_MASK; }
inline uint32_t epoll_slot_of(uint64_t data) { return static_cast<uint32_t>(data); }

// A connection's extension (see slab.h).
struct epoll_conn {
  bool unread;  // on the reactor's list of connections with input left after their read budget
  bool rdhup;   // the peer's FIN is there: read to its end, whatever the reads' sizes
};

struct epoll_listener : listener {
  bool paused = false;  // out of the epoll set after EMFILE, until the accept timer
};

struct epoll_reactor : reactor {
  epoll_reactor(uv_loop_t* loop, const reactor_options& options, const reactor_shared& shared);

  uv_poll_t poll = {};           // the epoll descriptor, readable while events wait in it
  uv_timer_t accept_timer = {};  // resumes listeners paused by EMFILE
  int open_handles = 0;          // memory goes once libuv has closed both
  int epoll_fd = -1;
  int wake_fd = -1;
  // Connections with input left after their read budget, as packed
  // (gen, slot), for the next wake-up: no edge will come for what they hold.
  std::vector<uint64_t> unread;
  std::vector<uint32_t> paused;  // ids of listeners waiting out EMFILE
};

extern const mechanism epoll_mechanism;

inline epoll_reactor* epoll_of(reactor* r) { return static_cast<epoll_reactor*>(r); }

// epoll_loop.cc: makes a wake-up come.
void epoll_poke(epoll_reactor* e);

// epoll_stream.cc: the stream hooks; a stream's readiness; the connections
// the last wake-up left with input.
extern const stream_ops epoll_stream_ops;
// Adds an accepted or dialled socket to the epoll set, for good. Returns 0 or -errno.
int epoll_register(epoll_reactor* e, uint32_t slot, conn& c);
void epoll_on_stream(epoll_reactor* e, uint64_t data, uint32_t events);
void epoll_read_unread(epoll_reactor* e);

// epoll_listener.cc: the listener hooks; a listener's readiness; the
// accept timer's callback.
int epoll_listen(reactor* r, const listen_request& request, int* listener_id, int* bound_port);
void epoll_close_listener(reactor* r, uint32_t id, listener& l);
void epoll_on_listener(epoll_reactor* e, uint32_t id);
void epoll_on_accept_timer(uv_timer_t* timer);

}  // namespace ringport
