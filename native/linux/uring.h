// The io_uring mechanism, in three files by job: the loop (uring_loop.cc:
// the ring, submission, reaping, the wake-up), listeners (uring_listener.cc:
// multishot accept, the pause after EMFILE) and streams (uring_stream.cc:
// multishot recv into provided buffers, sendmsg, connect, cancel). This
// header is what they share.
//
// user_data packs the operation, the slot's generation and the slot, as
// liburing's examples/proxy.h does, so a completion for a slot that has since
// been reused is recognised and dropped. It also names an operation fully:
// one that finds the submission queue full waits as a user_data and is
// prepared from its owner's state once there is room, never dropped.
#pragma once

#include <liburing.h>
#include <sys/socket.h>

#include <cstdint>
#include <cstdlib>
#include <vector>

#include "../block_cache.h"
#include "../core.h"
#include "buf_pool.h"

namespace ringport {

enum uring_op : uint8_t {
  OP_ACCEPT = 1,
  OP_ACCEPT_RETRY,
  OP_RECV,
  OP_SEND,
  OP_CONNECT,
  OP_CANCEL,         // a connection's operations, by descriptor
  OP_CANCEL_ACCEPT,  // a closing listener's accept
  OP_CANCEL_RETRY,   // a closing listener's pause before accepting again
};

inline uint64_t uring_pack(uring_op o, uint32_t gen, uint32_t slot) {
  return (static_cast<uint64_t>(o) << 56) | (static_cast<uint64_t>(gen & RP_GEN_MASK) << 32) | slot;
}
inline uring_op uring_op_of(uint64_t ud) { return static_cast<uring_op>(ud >> 56); }
inline uint32_t uring_gen_of(uint64_t ud) { return static_cast<uint32_t>(ud >> 32) & RP_GEN_MASK; }
inline uint32_t uring_slot_of(uint64_t ud) { return static_cast<uint32_t>(ud); }

// iovecs per sendmsg: enough to carry a tick's worth of packets in one call.
constexpr int URING_MAX_IOV = 64;
// Spare send blocks kept for reuse: 256 KiB, what the sends in flight of a
// busy tick churn through, so a steady load allocates none.
constexpr size_t URING_SPARE_SENDS = 256;

// What a connection's send in flight points the kernel at (1 KiB). Taken
// when a send starts and handed back when it completes, so only connections
// with a send in flight hold one: an idle connection holds none, whatever it
// sent before. Handed-back ones wait on the reactor's spare list for the next.
struct uring_send {
  struct msghdr msg;
  struct iovec iov[URING_MAX_IOV];
};

// A connection's extension (see slab.h).
struct uring_conn {
  uring_send* send;
};

struct uring_listener : listener {
  // The pause after EMFILE before accepting again (a timeout SQE reads it).
  struct __kernel_timespec retry = {};
};

struct uring_completion {
  uint64_t user_data;
  int32_t res;
  uint32_t flags;
};

struct uring_reactor : reactor {
  uring_reactor(uv_loop_t* loop, const reactor_options& options, const reactor_shared& shared);

  uv_poll_t poll = {};         // the ring's eventfd
  uv_timer_t pool_timer = {};  // runs only while the receive buffer pool is grown
  int open_handles = 0;        // memory goes once libuv has closed both
  struct io_uring ring = {};
  int event_fd = -1;
  buf_pool pool;
  // Operations that found the submission queue full even after a submit
  // (the kernel took none of it: out of memory, say), by user_data, oldest
  // first. Each counts as in flight for its connection or listener and is
  // issued after the next reap, or completed as cancelled if its owner has
  // begun closing meanwhile.
  std::vector<uint64_t> unissued;
  // uring_send blocks of finished sends, for the next ones (at most URING_SPARE_SENDS).
  block_cache<uring_send, sizeof(uring_send), URING_SPARE_SENDS> spare_sends;
};

extern const mechanism uring_mechanism;

inline uring_reactor* uring_of(reactor* r) { return static_cast<uring_reactor*>(r); }

// uring_loop.cc: issues the operation `ud`, whose owner already counts it
// as in flight; submits what is queued; makes a wake-up come.
void uring_issue(uring_reactor* u, uint64_t ud);
void uring_submit(uring_reactor* u);
void uring_poke(uring_reactor* u);

// uring_stream.cc: the stream hooks, and the stream operations' SQEs and completions.
extern const stream_ops uring_stream_ops;
void uring_prep_stream(uring_reactor* u, struct io_uring_sqe* sqe, uint64_t ud);
void uring_on_stream(uring_reactor* u, const uring_completion& done);

// uring_listener.cc: the listener hooks, and the listener operations' SQEs and completions.
int uring_listen(reactor* r, const listen_request& request, int* listener_id, int* bound_port);
void uring_close_listener(reactor* r, uint32_t id, listener& l);
void uring_prep_listener(uring_reactor* u, struct io_uring_sqe* sqe, uint64_t ud);
void uring_on_listener(uring_reactor* u, const uring_completion& done);

inline bool uring_listener_op(uring_op o) {
  return o == OP_ACCEPT || o == OP_ACCEPT_RETRY || o == OP_CANCEL_ACCEPT || o == OP_CANCEL_RETRY;
}

}  // namespace ringport
