// What both reactors do the same way, whatever the mechanism under them: the
// connection life cycle, the queue of events bound for JS, and applying the
// commands JS wrote into shared memory.
//
// A reactor type R includes this after defining its `conn` (with the fields
// used below) and declaring, in the same namespace:
//   void send_fin(R*, uint32_t slot, conn&);            FIN sent, wait for the peer's
//   void begin_closing(R*, uint32_t, conn&, int32_t reason, int32_t err);
//   void abort_conn(R*, uint32_t, conn&, int32_t reason, int32_t err);
//   void start_send(R*, uint32_t slot, conn&);         one send over the queued slices
// and R has: options, shared, stats (batches, sends), conns (slab<conn>),
// send_mem (send_memory, declared before conns), events, staging, dirty,
// destroyed.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "protocol.h"
#include "send_queue.h"

namespace ringport {

enum conn_state : uint8_t {
  CS_CONNECTING,
  CS_OPEN,
  CS_DRAINING,   // a local graceful close: flush the queue, then FIN
  CS_FIN_SENT,   // FIN sent: wait for the peer's, so unread input cannot turn into a reset
  CS_PEER_DONE,  // the peer sent FIN: flush the queue, then close
  CS_CLOSING,    // operations cancelled: close once the last completes
};

// Events wait in r->events until a point where calling JS is safe (between
// completions, never inside one), then go out in chunks of event_capacity.
template <typename R>
void push_event(R* r, int32_t type, uint32_t slot, uint32_t gen, int32_t a, int32_t b, int32_t c) {
  r->events.insert(r->events.end(), {type, static_cast<int32_t>(slot), static_cast<int32_t>(gen), a, b, c});
}

template <typename R>
bool has_events(const R* r) {
  return !r->events.empty();
}

template <typename R>
int apply_commands(R* r);

// Hands JS everything pending, then applies what JS queued in response. Only
// called between completions, so JS never runs while a handler holds a slot.
template <typename R>
void deliver(R* r) {
  for (int round = 0; round < 16 && has_events(r) && !r->destroyed; round++) {
    // JS may raise events while it runs (a flush that closes a connection on
    // the spot appends a close): the size is read again after every call.
    size_t delivered = 0;
    while (!r->destroyed && delivered < r->events.size() / RP_EVENT_INTS) {
      size_t waiting = r->events.size() / RP_EVENT_INTS - delivered;
      uint32_t count = static_cast<uint32_t>(std::min<size_t>(waiting, r->shared.event_capacity));
      std::memcpy(r->shared.events, r->events.data() + delivered * RP_EVENT_INTS,
                  count * RP_EVENT_INTS * sizeof(int32_t));
      delivered += count;
      r->stats.batches++;
      // JS copies the bytes before this returns.
      r->shared.deliver(r->shared.context, count, r->staging.data(), r->staging.size());
    }
    if (r->destroyed) return;
    r->events.erase(r->events.begin(), r->events.begin() + static_cast<std::ptrdiff_t>(delivered * RP_EVENT_INTS));
    // Only completions add DATA, and none are handled while JS runs.
    r->staging.clear();
    // Sends and closes from the handlers; a close may raise an event of its own.
    apply_commands(r);
  }
}

// The queue is empty: carry on with whatever close was waiting for it.
template <typename R, typename C>
void on_queue_empty(R* r, uint32_t slot, C& c) {
  if (c.state == CS_DRAINING) send_fin(r, slot, c);
  else if (c.state == CS_PEER_DONE) begin_closing(r, slot, c, c.close_reason, 0);
}

template <typename R, typename C>
void close_graceful(R* r, uint32_t slot, C& c) {
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

// Queues bytes for one open connection with push(queue), which returns false
// when memory runs out: that connection is then reset, and no other.
template <typename R, typename Push>
void queue_send(R* r, uint32_t slot, uint32_t gen, uint32_t sends, Push&& push) {
  auto* c = r->conns.find(slot, gen);
  if (c == nullptr || c->state != CS_OPEN) return;
  if (!push(c->queue)) {
    abort_conn(r, slot, *c, RP_CLOSE_ERROR, ENOMEM);
    return;
  }
  r->stats.sends += sends;
  if (!c->dirty) {
    c->dirty = true;
    r->dirty.push_back(slot);
  }
}

// Applies the commands JS wrote since the last flush (see protocol.h).
template <typename R>
int apply_commands(R* r) {
  int32_t* control = r->shared.control;
  int32_t command_ints = control[RP_CONTROL_COMMAND_INTS];
  int32_t arena_bytes = control[RP_CONTROL_ARENA_BYTES];
  control[RP_CONTROL_COMMAND_INTS] = 0;
  control[RP_CONTROL_ARENA_BYTES] = 0;
  if (command_ints <= 0) return 0;
  if (static_cast<uint32_t>(command_ints) > r->shared.command_capacity ||
      static_cast<uint32_t>(arena_bytes) > r->shared.arena_capacity || arena_bytes < 0) {
    return -EINVAL;
  }
  // Every send is copied out of the arena once, here: a plain send into its
  // connection's chunks, a broadcast into one block its recipients share
  // (see send_queue.h).
  const uint8_t* arena = r->shared.arena;
  const int32_t* cmd = r->shared.commands;
  auto in_arena = [arena_bytes](int64_t offset, int64_t length) {
    return offset >= 0 && length >= 0 && offset + length <= arena_bytes;
  };
  auto send_many_ok = [&](int32_t at) {
    int32_t remaining = command_ints - at;
    return remaining >= 4 && in_arena(cmd[at + 1], cmd[at + 2]) && cmd[at + 3] >= 0 &&
           remaining >= 4 + 2 * static_cast<int64_t>(cmd[at + 3]);
  };
  int ret = 0;
  for (int32_t i = 0; i < command_ints && ret == 0;) {
    int32_t remaining = command_ints - i;
    switch (cmd[i]) {
      case RP_CMD_SEND:
        if (remaining < 5 || !in_arena(cmd[i + 3], cmd[i + 4])) {
          ret = -EINVAL;
          break;
        }
        if (cmd[i + 4] > 0) {
          const uint8_t* src = arena + cmd[i + 3];
          uint32_t length = static_cast<uint32_t>(cmd[i + 4]);
          queue_send(r, static_cast<uint32_t>(cmd[i + 1]), static_cast<uint32_t>(cmd[i + 2]), 1,
                     [&](send_queue& q) { return q.copy(r->send_mem, src, length); });
        }
        i += 5;
        break;
      case RP_CMD_SEND_MANY: {
        if (!send_many_ok(i)) {
          ret = -EINVAL;
          break;
        }
        int32_t offset = cmd[i + 1], count = cmd[i + 3];
        const int32_t* recipients = cmd + i + 4;
        // The broadcasts that follow to the same recipients, with their bytes
        // right after these in the arena (a tick's broadcasts to one room),
        // join this one: one block, and one slice per recipient.
        uint32_t size = static_cast<uint32_t>(cmd[i + 2]);
        uint32_t broadcasts = 1;
        i += 4 + 2 * count;
        while (i < command_ints && cmd[i] == RP_CMD_SEND_MANY && send_many_ok(i) && cmd[i + 3] == count &&
               cmd[i + 1] == offset + static_cast<int32_t>(size) &&
               std::memcmp(cmd + i + 4, recipients, 2 * sizeof(int32_t) * static_cast<size_t>(count)) == 0) {
          size += static_cast<uint32_t>(cmd[i + 2]);
          broadcasts++;
          i += 4 + 2 * count;
        }
        if (size == 0 || count == 0) break;
        // Without memory for the block, each recipient is reset with ENOMEM.
        send_block* block = r->send_mem.shared(arena + offset, size);
        for (int32_t k = 0; k < count; k++) {
          queue_send(r, static_cast<uint32_t>(recipients[2 * k]), static_cast<uint32_t>(recipients[2 * k + 1]), broadcasts,
                     [&](send_queue& q) { return block != nullptr && q.share(block); });
        }
        if (block != nullptr) r->send_mem.unref(block);
        break;
      }
      case RP_CMD_CLOSE: {
        if (remaining < 4) {
          ret = -EINVAL;
          break;
        }
        uint32_t slot = static_cast<uint32_t>(cmd[i + 1]);
        auto* c = r->conns.find(slot, static_cast<uint32_t>(cmd[i + 2]));
        if (c != nullptr) {
          if (cmd[i + 3] == 0) close_graceful(r, slot, *c);
          else if (c->state != CS_CLOSING) abort_conn(r, slot, *c, RP_CLOSE_LOCAL, 0);
        }
        i += 4;
        break;
      }
      default:
        ret = -EINVAL;
    }
  }
  for (uint32_t slot : r->dirty) {
    auto& c = r->conns.at(slot);
    c.dirty = false;
    if (!c.in_use || c.state == CS_CLOSING) continue;
    r->shared.queued[slot] = static_cast<uint32_t>(c.queue.bytes());
    if (c.queue.bytes() > c.high_water_mark) c.over_high = true;
    if (!c.send_inflight && !c.queue.empty()) start_send(r, slot, c);
  }
  r->dirty.clear();
  return ret;
}

}  // namespace ringport
