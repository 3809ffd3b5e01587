// The memory shared by the JS side and the native reactor. Both sides agree on
// these numbers; src/backend/native-protocol.ts mirrors them and a test checks
// the two against each other through the addon's `protocol` export.
//
// Events (native -> JS) are records of RP_EVENT_INTS int32s in an Int32Array
// owned by JS. Commands (JS -> native) are variable-length int32 records in a
// second Int32Array, with their payload bytes in a shared send arena.
#pragma once

#include <cstdint>

namespace ringport {

// A connection id is `gen * RP_SLOT_LIMIT + slot`: the slot indexes the
// connection slab, the generation changes whenever the slot is reused.
constexpr uint32_t RP_SLOT_BITS = 20;
constexpr uint32_t RP_SLOT_LIMIT = 1u << RP_SLOT_BITS;
constexpr uint32_t RP_GEN_MASK = (1u << 24) - 1;

// Event record: [type, slot, gen, a, b, c].
constexpr int RP_EVENT_INTS = 6;
enum event_type : int32_t {
  RP_EV_ACCEPT = 1,   // a = listener id, b = remote port, c = IPv4 address (host order) or 0
  RP_EV_CONNECT = 2,  // a = 0 or -errno, b = remote port, c = IPv4 address (host order) or 0
  RP_EV_DATA = 3,     // a = offset in this batch's data buffer, b = length
  RP_EV_DRAIN = 4,    // the queue fell to the low-water mark after passing the high one
  RP_EV_CLOSE = 5,    // a = close_reason, b = -errno (0 unless reason is error)
  // One read's frames that the reactor relayed to the sender's group (see
  // relay.h) instead of handing them over: a = frames, b = their bytes,
  // c = deliveries (frames times the members they were queued for); all 0
  // for a read that left nothing for JS yet. It comes before that read's
  // DATA events; a DATA event with c = 1 belongs to the same read as the
  // event before it (a read is counted once).
  RP_EV_RELAYED = 6,
};

enum close_reason : int32_t {
  RP_CLOSE_PEER = 0,
  RP_CLOSE_ERROR = 1,
  RP_CLOSE_LOCAL = 2,
  RP_CLOSE_BACKPRESSURE = 3,  // a relayed frame would have passed the member's max_queue_bytes
};

// Command records:
//   [RP_CMD_SEND, slot, gen, offset, length]
//   [RP_CMD_SEND_MANY, offset, length, count, slot0, gen0, slot1, gen1, ...]
//   [RP_CMD_CLOSE, slot, gen, mode]           mode: 0 graceful, 1 abort
//   [RP_CMD_GROUP, slot, gen, group, kind, max_queue_bytes]
//                                             the connection joins relay group `group` (0: leaves its group);
//                                             kind: how relayed frames reach it (relay_kind in relay.h)
enum command_type : int32_t {
  RP_CMD_SEND = 1,
  RP_CMD_SEND_MANY = 2,
  RP_CMD_CLOSE = 3,
  RP_CMD_GROUP = 4,
};

// control[] (an Int32Array of RP_CONTROL_INTS) tells native how much of the
// command array and of the send arena JS has filled since the last flush.
constexpr int RP_CONTROL_INTS = 2;
constexpr int RP_CONTROL_COMMAND_INTS = 0;
constexpr int RP_CONTROL_ARENA_BYTES = 1;

}  // namespace ringport
