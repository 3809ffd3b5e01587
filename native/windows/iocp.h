// The IOCP mechanism, in three files by job like the Linux ones: the loop
// (iocp_loop.cc: the port and its wake-up, how a request ended, one batch
// per wake-up), listeners (iocp_listener.cc: AcceptEx posted ahead, the
// pause after running out of sockets) and streams (iocp_stream.cc: the
// zero-byte WSARecv, WSASend, ConnectEx, CancelIoEx). This header is what
// they share.
//
// Requests are issued on the JS thread and complete on the port; a worker
// thread (completion_port.h) hands the packets back, and on each wake-up the
// reactor handles them all, gives JS one batch of events, and applies the
// commands JS queued meanwhile.
//
// A request that succeeds at once on a socket in
// FILE_SKIP_COMPLETION_PORT_ON_SUCCESS mode posts no packet; it, and one that
// fails at once, goes on the `ready` list and is handled on the next wake-up
// exactly like a packet, so every outcome takes one path. Each request
// carries its slot's generation, so no completion can reach a connection
// that reused the slot.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "../core.h"
#include "completion_port.h"
#include "winsock.h"

namespace ringport {

enum iocp_op : uint8_t {
  OP_ACCEPT = 1,
  OP_ACCEPT_RETRY,
  OP_RECV,
  OP_SEND,
  OP_CONNECT,
};

// AcceptEx requests kept posted per listener, as libuv does: a burst of
// logins between two wake-ups is taken from the backlog without waiting.
constexpr int ACCEPTS_AHEAD = 32;
// AcceptEx wants room for each address plus 16 bytes.
constexpr DWORD ACCEPT_ADDRESS_BYTES = sizeof(sockaddr_in6) + 16;

// A connection's extension (see slab.h): its requests' OVERLAPPEDs, which
// the kernel writes to, so they live in the slot, which never moves.
struct iocp_conn {
  io_op recv_op;  // the zero-byte WSARecv
  io_op send_op;  // WSASend; ConnectEx while dialling
  bool skip_on_success;
};

struct accept_op {
  io_op op;  // first: the port hands back &op.ov
  SOCKET sock = INVALID_SOCKET;
  bool posted = false;
  char addresses[2 * ACCEPT_ADDRESS_BYTES];
};

struct iocp_listener : listener {
  int family = AF_INET;
  bool skip_on_success = false;
  accept_op accepts[ACCEPTS_AHEAD];
  // The pause after running out of sockets: a timer posts retry_op to the port.
  HANDLE iocp = nullptr;
  HANDLE retry_timer = nullptr;
  io_op retry_op;
  std::atomic<bool> retry_posted{false};
};

struct iocp_reactor : reactor {
  iocp_reactor(uv_loop_t* loop, const reactor_options& options, const reactor_shared& shared);

  completion_port port;
  bool wsa_started = false;
  winsock_ext ext_v4;
  winsock_ext ext_v6;
  std::vector<completion> batch;  // this wake-up's completions
  std::vector<completion> ready;  // requests that finished at once, for the next wake-up
  bool leak = false;              // some request never came back: its memory must stay
};

extern const mechanism iocp_mechanism;

inline iocp_reactor* iocp_of(reactor* r) { return static_cast<iocp_reactor*>(r); }

// iocp_loop.cc
void iocp_reset_op(io_op& op, iocp_op type, uint32_t owner, uint32_t gen);
// Records how an overlapped call ended (see iocp_loop.cc). WSAGetLastError
// must still hold the call's error.
void iocp_issued(iocp_reactor* w, io_op& op, bool skip_on_success, bool done_now, DWORD bytes);
// The Winsock error a completion carries, 0 for success.
DWORD iocp_error_of(const completion& done, SOCKET sock);
// The extension functions for `family`, loaded on first use; nullptr with *error set when they cannot be.
const winsock_ext* iocp_ext_for(iocp_reactor* w, int family, int* error);
void iocp_wake(iocp_reactor* w);

// iocp_stream.cc: the stream hooks, and the stream requests' completions.
extern const stream_ops iocp_stream_ops;
void iocp_on_stream(iocp_reactor* w, const completion& done);

// iocp_listener.cc: the listener hooks, the listener requests' completions,
// and what destroy must close of a listener.
int iocp_listen(reactor* r, const listen_request& request, int* listener_id, int* bound_port);
void iocp_close_listener(reactor* r, uint32_t id, listener& l);
void iocp_on_listener(iocp_reactor* w, const completion& done);
void iocp_destroy_listener(iocp_reactor* w, iocp_listener& l);

}  // namespace ringport
