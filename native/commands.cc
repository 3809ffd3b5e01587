// Applying the commands JS wrote into shared memory since the last flush
// (see protocol.h): every send is copied out of the arena once, and each
// connection that got some starts one send over all of them.
#include <cstring>

#include "core.h"

namespace ringport {

namespace {

// Queues bytes for one open connection with push(queue), which returns false
// when memory runs out: that connection is then reset, and no other.
template <typename Push>
void queue_send(reactor* r, uint32_t slot, uint32_t gen, uint32_t sends, Push&& push) {
  conn* c = r->conns.find(slot, gen);
  if (c == nullptr || c->state != CS_OPEN) return;
  if (!push(c->queue)) {
    stream_abort(r, slot, *c, RP_CLOSE_ERROR, ENOMEM);
    return;
  }
  r->stats.sends += sends;
  mark_dirty(r, slot, *c);
}

// Copies the sends into their queues and applies the closes. Returns 0 or -EINVAL.
int apply(reactor* r, int32_t command_ints, int32_t arena_bytes) {
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
                     [&](send_queue& q) { return block != nullptr && q.share(r->send_mem, block); });
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
        conn* c = r->conns.find(slot, static_cast<uint32_t>(cmd[i + 2]));
        if (c != nullptr) {
          if (cmd[i + 3] == 0) stream_close(r, slot, *c);
          else stream_abort(r, slot, *c, RP_CLOSE_LOCAL, 0);
        }
        i += 4;
        break;
      }
      case RP_CMD_GROUP: {
        if (remaining < 6) {
          ret = -EINVAL;
          break;
        }
        uint32_t slot = static_cast<uint32_t>(cmd[i + 1]);
        conn* c = r->conns.find(slot, static_cast<uint32_t>(cmd[i + 2]));
        // Joining takes an open connection; leaving, any (it would leave with its slot anyway).
        if (c != nullptr && (c->state == CS_OPEN || cmd[i + 3] == 0)) {
          ret = relay_join(r, slot, *c, static_cast<uint32_t>(cmd[i + 3]), cmd[i + 4], static_cast<uint32_t>(cmd[i + 5]));
          if (ret == -ENOMEM) {
            stream_abort(r, slot, *c, RP_CLOSE_ERROR, ENOMEM);
            ret = 0;
          }
        }
        i += 6;
        break;
      }
      default:
        ret = -EINVAL;
    }
  }
  return ret;
}

}  // namespace

int apply_commands(reactor* r, bool tick_done) {
  int32_t* control = r->shared.control;
  int32_t command_ints = control[RP_CONTROL_COMMAND_INTS];
  int32_t arena_bytes = control[RP_CONTROL_ARENA_BYTES];
  control[RP_CONTROL_COMMAND_INTS] = 0;
  control[RP_CONTROL_ARENA_BYTES] = 0;
  int ret = command_ints > 0 ? apply(r, command_ints, arena_bytes) : 0;
  // One pass over the connections that got sends: each starts one send
  // carrying everything it was given in the tick (a sendmsg, a sendmsg SQE,
  // a WSASend). A flush before the tick is done (JS's buffers were full)
  // only counts what is queued: its connections stay on the list.
  for (uint32_t slot : r->dirty) {
    conn& c = r->conns.at(slot);
    // A slot listed twice, or closed and taken again since it was listed.
    if (!c.dirty) continue;
    if (!c.in_use || c.state == CS_CLOSING) {
      c.dirty = false;
      continue;
    }
    r->shared.queued[slot] = static_cast<uint32_t>(c.queue.bytes());
    if (c.queue.bytes() > c.high_water_mark) c.over_high = true;
    if (!tick_done) continue;
    c.dirty = false;
    if (!c.send_inflight && !c.queue.empty()) r->mech->stream->start_send(r, slot, c);
  }
  if (tick_done) r->dirty.clear();
  return ret;
}

}  // namespace ringport
