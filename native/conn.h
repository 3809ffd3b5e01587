// One connection, the same under every mechanism: where it is in its life
// cycle, its send queue, its water marks and its peer. What a mechanism
// keeps per connection besides (an iovec for io_uring, two OVERLAPPEDs for
// IOCP) is the slot's extension (see slab.h), allocated with it.
#pragma once

#include <cstdint>
#include <memory>

#include "address.h"
#include "protocol.h"
#include "relay.h"
#include "send_queue.h"
#include "socket.h"

namespace ringport {

enum conn_state : uint8_t {
  CS_CONNECTING,
  CS_OPEN,
  CS_DRAINING,   // a local graceful close: flush the queue, then FIN
  CS_FIN_SENT,   // FIN sent: wait for the peer's, so unread input cannot turn into a reset
  CS_PEER_DONE,  // the peer sent FIN: flush the queue, then close
  CS_CLOSING,    // operations cancelled: close once the last completes
};

struct conn {
  uint32_t gen = 0;
  bool in_use = false;
  conn_state state = CS_OPEN;
  // Operations the kernel holds for this slot (a completion mechanism's
  // requests; always 0 under epoll, which holds none). The slot is released
  // only once none are left.
  uint8_t ops = 0;
  // Input is watched: a recv is armed, a zero-byte receive posted, the
  // socket registered for EPOLLIN. Cleared by the peer's FIN.
  bool reading = false;
  // A send is in flight (under epoll: bytes wait for the socket to become
  // writable). Its slices stay queued until it is done.
  bool send_inflight = false;
  bool over_high = false;  // passed the high-water mark: RP_EV_DRAIN once at the low one
  bool dirty = false;      // on the reactor's list of slots that got sends this flush
  int32_t close_reason = RP_CLOSE_LOCAL;
  int32_t close_errno = 0;
  uint32_t high_water_mark = 0;
  uint32_t low_water_mark = 0;
  uint32_t peer_len = 0;
  socket_t sock = NO_SOCKET;
  send_queue queue;
  peer_address peer = {};
  // Its frames followed, or its place in a relay group (relay.h); null for most connections.
  std::unique_ptr<relay_state> relay;
};

}  // namespace ringport
