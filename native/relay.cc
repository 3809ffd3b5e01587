// Following a framed connection's frames, and relaying those its group
// hears (see relay.h for the contract).
#include "relay.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>

#include "core.h"

namespace ringport {

namespace {

// A run of relayed frames up to this size is copied into each member's own
// chunk, beside what else it is sent this tick (one buffer out, no shared
// block to allocate); a larger one is copied once into a block they share.
constexpr uint32_t RELAY_COPY_MAX = 512;

constexpr uint32_t PACKET_ID_BYTES = 2;

uint32_t read_uint(const uint8_t* p, uint32_t bytes, bool big_endian) {
  uint32_t v = 0;
  if (big_endian) {
    for (uint32_t i = 0; i < bytes; i++) v = (v << 8) | p[i];
  } else {
    for (uint32_t i = bytes; i-- > 0;) v = (v << 8) | p[i];
  }
  return v;
}

// The frames of one run as WebSocket binary messages with the same bodies.
const std::vector<uint8_t>& websocket_run(reactor* r, const relay_spec& spec, const uint8_t* frames, uint32_t size) {
  std::vector<uint8_t>& out = r->relay.scratch;
  out.clear();
  for (uint32_t at = 0; at < size;) {
    uint32_t body = read_uint(frames + at, spec.length_bytes, spec.big_endian);
    const uint8_t* start = frames + at + spec.length_bytes;
    out.push_back(0x82);  // FIN, binary
    if (body < 126) {
      out.push_back(static_cast<uint8_t>(body));
    } else if (body <= 0xffff) {
      out.insert(out.end(), {126, static_cast<uint8_t>(body >> 8), static_cast<uint8_t>(body)});
    } else {
      out.insert(out.end(), {127, 0, 0, 0, 0, static_cast<uint8_t>(body >> 24), static_cast<uint8_t>(body >> 16),
                             static_cast<uint8_t>(body >> 8), static_cast<uint8_t>(body)});
    }
    out.insert(out.end(), start, start + body);
    at += spec.length_bytes + body;
  }
  return out;
}

// Queues `count` whole frames from `sender` for every other open member of
// its group. Returns the deliveries (frames times members reached).
uint64_t relay_run(reactor* r, uint32_t sender, conn& s, const uint8_t* frames, uint32_t size, uint32_t count) {
  relay_group& g = r->relay.groups[s.relay->group];
  const relay_spec& spec = *r->relay.specs[s.relay->spec - 1];
  const uint8_t* as_ws = nullptr;
  uint32_t ws_size = 0;
  send_block* blocks[2] = {nullptr, nullptr};  // by relay_kind, made when a member first needs one
  uint64_t deliveries = 0;
  for (size_t i = 0; i < g.members.size();) {
    relay_member m = g.members[i];
    conn& mc = r->conns.at(m.slot);
    if (m.slot == sender || !mc.in_use || mc.gen != m.gen || mc.state != CS_OPEN) {
      i++;
      continue;
    }
    const uint8_t* bytes = frames;
    uint32_t length = size;
    if (m.kind == RELAY_WEBSOCKET) {
      if (as_ws == nullptr) {
        const std::vector<uint8_t>& encoded = websocket_run(r, spec, frames, size);
        as_ws = encoded.data();
        ws_size = static_cast<uint32_t>(encoded.size());
      }
      bytes = as_ws;
      length = ws_size;
    }
    bool queued;
    // Judged before the copy: a copy that runs out of memory halfway has already grown the queue.
    const bool full = mc.queue.bytes() + length > m.max_queue_bytes;
    if (full) {
      queued = false;
    } else if (length <= RELAY_COPY_MAX) {
      queued = mc.queue.copy(r->send_mem, bytes, length);
    } else {
      send_block*& block = blocks[m.kind];
      if (block == nullptr) block = r->send_mem.shared(bytes, length);
      queued = block != nullptr && mc.queue.share(r->send_mem, block);
    }
    if (!queued) {
      // The member leaves the group when its slot is released, which may be now: then
      // another member has taken place i.
      size_t before = g.members.size();
      stream_abort(r, m.slot, mc, full ? RP_CLOSE_BACKPRESSURE : RP_CLOSE_ERROR, full ? 0 : ENOMEM);
      if (g.members.size() == before) i++;
      continue;
    }
    r->stats.sends += count;
    deliveries += count;
    mark_dirty(r, m.slot, mc);
    i++;
  }
  for (send_block* block : blocks) {
    if (block != nullptr) r->send_mem.unref(block);
  }
  return deliveries;
}

void leave_group(reactor* r, conn& c) {
  relay_state& rs = *c.relay;
  if (rs.group == 0) return;
  std::vector<relay_member>& members = r->relay.groups[rs.group].members;
  uint32_t at = rs.group_index;
  if (at + 1 < members.size()) {
    members[at] = members.back();
    r->conns.at(members[at].slot).relay->group_index = at;
  }
  members.pop_back();
  rs.group = 0;
}

}  // namespace

uint32_t relay_add_spec(reactor* r, const relay_spec& spec) {
  // Kept while the reactor lives, so a server that listens again (or several
  // servers on one thread) shares the one spec rather than adding more.
  std::vector<std::unique_ptr<relay_spec>>& specs = r->relay.specs;
  for (size_t k = 0; k < specs.size(); k++) {
    const relay_spec& s = *specs[k];
    if (s.length_bytes == spec.length_bytes && s.big_endian == spec.big_endian &&
        s.max_frame_bytes == spec.max_frame_bytes && s.ids == spec.ids) {
      return static_cast<uint32_t>(k + 1);
    }
  }
  specs.push_back(std::make_unique<relay_spec>(spec));
  return static_cast<uint32_t>(specs.size());
}

bool relay_follow(conn& c, uint32_t spec) {
  if (spec == 0) return true;
  c.relay.reset(new (std::nothrow) relay_state());
  if (c.relay == nullptr) return false;
  c.relay->spec = spec;
  return true;
}

void relay_received(reactor* r, uint32_t slot, conn& c, size_t n) {
  relay_state& rs = *c.relay;
  const relay_spec& spec = *r->relay.specs[rs.spec - 1];
  const uint32_t prefix = spec.length_bytes;
  const uint32_t head_bytes = prefix + PACKET_ID_BYTES;
  const size_t base = r->staging.size();
  // Reserved by the mechanism (stream_input), not yet committed: the read is in[0, n).
  uint8_t* in = const_cast<uint8_t*>(r->staging.data()) + base;
  // Bytes for JS are moved down to in[0, w) over the frames cut out; `lead`
  // is what goes to JS ahead of them from the connection's own memory (a
  // head, or a whole frame, that began in an earlier read).
  size_t w = 0;
  const uint8_t* lead = nullptr;
  uint32_t lead_size = 0;
  std::unique_ptr<uint8_t, decltype(&std::free)> lead_frame(nullptr, &std::free);
  uint8_t lead_head[sizeof(relay_state::head)];
  // The run of whole frames to relay that ends at i, and what this read relayed.
  size_t run_start = 0, run_end = 0;
  uint32_t run_frames = 0;
  uint32_t relayed = 0;
  uint64_t relayed_bytes = 0, deliveries = 0;
  auto flush_run = [&]() {
    if (run_frames == 0) return;
    if (rs.group != 0) deliveries += relay_run(r, slot, c, in + run_start, static_cast<uint32_t>(run_end - run_start), run_frames);
    relayed += run_frames;
    relayed_bytes += run_end - run_start;
    run_frames = 0;
  };
  auto pass = [&](size_t from, size_t k) {
    if (w != from) std::memmove(in + w, in + from, k);
    w += k;
  };
  // The frame gathered in rs.partial is whole: relayed, or JS's if the
  // connection left its group meanwhile (then it goes ahead of this read's
  // bytes: it can only have completed at the read's start, and a later
  // frame may reuse rs.partial, hence the bytes are taken).
  auto relay_whole = [&]() {
    rs.mode = RM_HEAD;
    uint32_t size = rs.partial.size();
    if (rs.group != 0) {
      deliveries += relay_run(r, slot, c, rs.partial.data(), size, 1);
      relayed++;
      relayed_bytes += size;
      rs.partial.clear();
    } else {
      lead_frame.reset(rs.partial.take());
      lead = lead_frame.get();
      lead_size = size;
    }
  };
  // Out of memory for a frame being gathered: the reactor stops following
  // this connection, and JS gets what was gathered, then everything after.
  auto give_up = [&]() {
    uint32_t gathered = rs.partial.size() - rs.partial.left();
    lead_frame.reset(rs.partial.take());
    lead = lead_frame.get();
    lead_size = gathered;
    rs.mode = RM_THROUGH;
  };

  size_t i = 0;
  while (i < n && c.state == CS_OPEN) {
    switch (rs.mode) {
      case RM_THROUGH:
        flush_run();
        pass(i, n - i);
        i = n;
        break;
      case RM_PASS: {
        size_t k = std::min<size_t>(rs.frame_left, n - i);
        pass(i, k);
        i += k;
        rs.frame_left -= static_cast<uint32_t>(k);
        if (rs.frame_left == 0) rs.mode = RM_HEAD;
        break;
      }
      case RM_RELAY: {
        // A frame that began in an earlier read, or whose head did.
        size_t k = std::min<size_t>(rs.partial.left(), n - i);
        if (!rs.partial.append(in + i, k)) {
          give_up();
          break;
        }
        i += k;
        if (rs.partial.left() == 0) relay_whole();
        break;
      }
      case RM_HEAD: {
        if (rs.head_have > 0 || n - i < head_bytes) {
          // A head that spans reads: gathered in rs.head, then judged whole.
          flush_run();
          bool began_here = rs.head_have == 0;
          size_t k = std::min<size_t>(head_bytes - rs.head_have, n - i);
          std::memcpy(rs.head + rs.head_have, in + i, k);
          rs.head_have = static_cast<uint8_t>(rs.head_have + k);
          i += k;
          bool whole = rs.head_have == head_bytes;
          uint32_t body = rs.head_have >= prefix ? read_uint(rs.head, prefix, spec.big_endian) : PACKET_ID_BYTES;
          bool followable = body >= PACKET_ID_BYTES && body <= spec.max_frame_bytes;
          uint32_t id = whole ? read_uint(rs.head + prefix, PACKET_ID_BYTES, spec.big_endian) : 0;
          bool to_relay = whole && followable && spec.ids[id] && rs.group != 0;
          if (!whole && followable) break;  // the read ended inside the head
          if (to_relay) {
            rs.head_have = 0;
            rs.partial.start(prefix + body);
            if (!rs.partial.append(rs.head, head_bytes)) {
              // The head goes to JS ahead of the rest, which it gets whole.
              std::memcpy(lead_head, rs.head, head_bytes);
              lead = lead_head;
              lead_size = head_bytes;
              rs.mode = RM_THROUGH;
              break;
            }
            rs.mode = RM_RELAY;
            // A frame of its id alone is whole already.
            if (rs.partial.left() == 0) relay_whole();
            break;
          }
          // JS's: what was gathered goes to it first, from the read itself
          // when the head began in it, else from a copy (rs.head is reused).
          if (began_here) {
            pass(i - k, k);
          } else {
            std::memcpy(lead_head, rs.head, rs.head_have);
            lead = lead_head;
            lead_size = rs.head_have;
          }
          rs.head_have = 0;
          if (!followable) {
            rs.mode = RM_THROUGH;
          } else {
            rs.frame_left = body - PACKET_ID_BYTES;
            rs.mode = rs.frame_left > 0 ? RM_PASS : RM_HEAD;
          }
          break;
        }
        const uint8_t* head = in + i;
        uint32_t body = read_uint(head, prefix, spec.big_endian);
        if (body < PACKET_ID_BYTES || body > spec.max_frame_bytes) {
          rs.mode = RM_THROUGH;
          break;
        }
        uint32_t id = read_uint(head + prefix, PACKET_ID_BYTES, spec.big_endian);
        size_t frame = prefix + static_cast<size_t>(body);
        if (!spec.ids[id] || rs.group == 0) {
          flush_run();
          rs.frame_left = static_cast<uint32_t>(frame);
          rs.mode = RM_PASS;
          break;
        }
        if (n - i >= frame) {
          // A whole frame: it joins the run that ends here, or starts one.
          if (run_frames == 0 || run_end != i) {
            flush_run();
            run_start = i;
          }
          run_end = i + frame;
          run_frames++;
          i += frame;
          break;
        }
        // The start of a frame to relay that ends in a later read.
        flush_run();
        rs.partial.start(static_cast<uint32_t>(frame));
        if (!rs.partial.append(in + i, n - i)) {
          rs.mode = RM_THROUGH;
          break;
        }
        rs.mode = RM_RELAY;
        i = n;
        break;
      }
    }
  }
  if (c.state == CS_OPEN) flush_run();

  r->stats.bytes_in += n;
  r->stats.reads++;
  // This side began closing (an abort above): what is left is dropped, as on net.
  if (c.state != CS_OPEN) return;
  bool counted = false;
  // A read that leaves nothing for JS yet (part of a head, the middle of a
  // frame being gathered) still reports itself, so that reads are counted.
  if (relayed > 0 || (w == 0 && lead_size == 0)) {
    push_event(r, RP_EV_RELAYED, slot, c.gen, static_cast<int32_t>(relayed), static_cast<int32_t>(relayed_bytes),
               static_cast<int32_t>(deliveries));
    counted = true;
  }
  if (lead_size > 0) {
    // After this read's bytes in the staging; its event comes first.
    r->staging.commit(w);
    uint8_t* room = r->staging.reserve(lead_size);
    if (room == nullptr) {
      stream_abort(r, slot, c, RP_CLOSE_ERROR, ENOMEM);
      return;
    }
    std::memcpy(room, lead, lead_size);
    push_event(r, RP_EV_DATA, slot, c.gen, static_cast<int32_t>(base + w), static_cast<int32_t>(lead_size), counted ? 1 : 0);
    r->staging.commit(lead_size);
    counted = true;
    if (w > 0) push_event(r, RP_EV_DATA, slot, c.gen, static_cast<int32_t>(base), static_cast<int32_t>(w), 1);
    return;
  }
  if (w > 0) {
    push_event(r, RP_EV_DATA, slot, c.gen, static_cast<int32_t>(base), static_cast<int32_t>(w), counted ? 1 : 0);
    r->staging.commit(w);
  }
}

int relay_join(reactor* r, uint32_t slot, conn& c, uint32_t group, int32_t kind, uint32_t max_queue_bytes) {
  if (group >= RP_SLOT_LIMIT || (kind != RELAY_FRAMED && kind != RELAY_WEBSOCKET)) return -EINVAL;
  if (c.relay == nullptr) {
    if (group == 0) return 0;
    c.relay.reset(new (std::nothrow) relay_state());
    if (c.relay == nullptr) return -ENOMEM;
  }
  relay_state& rs = *c.relay;
  if (rs.group == group && group != 0) {
    relay_member& m = r->relay.groups[group].members[rs.group_index];
    m.kind = static_cast<relay_kind>(kind);
    m.max_queue_bytes = max_queue_bytes;
    return 0;
  }
  leave_group(r, c);
  if (group == 0) {
    // A connection whose frames are not followed needs its state only in a group.
    if (rs.spec == 0) c.relay.reset();
    return 0;
  }
  if (r->relay.groups.size() <= group) r->relay.groups.resize(group + 1);
  std::vector<relay_member>& members = r->relay.groups[group].members;
  rs.group = group;
  rs.group_index = static_cast<uint32_t>(members.size());
  members.push_back(relay_member{slot, c.gen, static_cast<relay_kind>(kind), max_queue_bytes});
  return 0;
}

void relay_forget(reactor* r, conn& c) {
  if (c.relay == nullptr) return;
  leave_group(r, c);
  c.relay.reset();
}

}  // namespace ringport
