// Relaying frames between the members of a group without a JS turn per frame.
//
// The reactor sees bytes, not packets, with one exception made for speed: a
// listener opened with a relay_spec (ringport's framed protocol, and the
// packet ids the server relays) has the frame boundaries of each of its
// connections followed here. A frame whose packet id the spec lists, from a
// connection that JS has put in a group (RP_CMD_GROUP: a room), is queued
// for every other open member of that group, as it came (a framed member)
// or as one WebSocket binary message with the same body (a WebSocket
// member: server frames are never masked, so one copy serves them all), and
// never reaches JS, which hears only how many (RP_EV_RELAYED). Every other
// byte reaches JS as DATA, in order, in whole frames where frames were cut
// out: JS's own decoder sees a valid stream, and the frames it gets are
// those the reactor did not relay. A header the reactor cannot follow (a
// body under the 2-byte packet id, or over max_frame_bytes) stops the
// following for good: from it on every byte goes to JS, whose decoder
// closes the session with the right reason.
//
// Relayed frames keep their order among themselves and with the sender's
// other frames; they may reach members before what JS sends in answer to
// frames of the same read. A member whose queue would pass its
// max_queue_bytes is closed with RP_CLOSE_BACKPRESSURE, as JS closes one.
// What a connection holds for this (relay_state) exists only for a
// connection of such a listener or one in a group; a frame being relayed
// that spans reads is gathered in a buffer that grows with what has arrived,
// as JS's decoder does, so a declared length alone pins little. Where memory
// runs out the reactor stops following the connection and JS gets the rest.
#pragma once

#include <bitset>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

namespace ringport {

struct reactor;
struct conn;

// How relayed frames are written to a member.
enum relay_kind : int32_t {
  RELAY_FRAMED = 0,     // as they came: the sender's framing is the server's, shared by every framed listener
  RELAY_WEBSOCKET = 1,  // each frame's body as one unmasked binary message (RFC 6455 5.2)
};

// The framing of a listener's connections and the packet ids relayed.
// max_frame_bytes is at most RELAY_MAX_FRAME_BYTES: a longer frame is not
// followed (JS's decoder takes it, and JS relays it).
constexpr uint32_t RELAY_MAX_FRAME_BYTES = 0xffffffffu - 16;
struct relay_spec {
  uint8_t length_bytes = 4;  // 2 or 4
  bool big_endian = false;   // of the length prefix and of the packet id
  uint32_t max_frame_bytes = 0;
  std::bitset<65536> ids;
};

// Where a followed connection is in its stream.
enum relay_mode : uint8_t {
  RM_HEAD,     // reading a frame's length prefix and packet id
  RM_PASS,     // inside a frame JS gets: frame_left bytes to go
  RM_RELAY,    // inside a frame being relayed that spans reads: gathered in `partial` until it is whole
  RM_THROUGH,  // no longer followed: every byte goes to JS
};

// A frame being gathered across reads: its room grows from 512 bytes by
// doubling, never past the frame's size.
class frame_buffer {
 public:
  frame_buffer() = default;
  frame_buffer(const frame_buffer&) = delete;
  frame_buffer& operator=(const frame_buffer&) = delete;
  ~frame_buffer() { std::free(data_); }

  void start(uint32_t size) {
    size_ = size;
    have_ = 0;
  }
  // False when memory runs out (nothing is appended then).
  bool append(const uint8_t* bytes, size_t n) {
    if (have_ + n > capacity_) {
      size_t capacity = capacity_ == 0 ? 512 : 2 * static_cast<size_t>(capacity_);
      if (capacity < have_ + n) capacity = have_ + n;
      if (capacity > size_) capacity = size_;
      auto* grown = static_cast<uint8_t*>(std::realloc(data_, capacity));
      if (grown == nullptr) return false;
      data_ = grown;
      capacity_ = static_cast<uint32_t>(capacity);
    }
    std::memcpy(data_ + have_, bytes, n);
    have_ += static_cast<uint32_t>(n);
    return true;
  }
  const uint8_t* data() const { return data_; }
  uint32_t size() const { return size_; }
  uint32_t left() const { return size_ - have_; }
  // Hands the bytes to the caller (to free with std::free) and starts empty.
  uint8_t* take() {
    uint8_t* data = data_;
    data_ = nullptr;
    capacity_ = have_ = size_ = 0;
    return data;
  }
  void clear() { std::free(take()); }

 private:
  uint8_t* data_ = nullptr;
  uint32_t size_ = 0;
  uint32_t have_ = 0;
  uint32_t capacity_ = 0;
};

// A connection's part in relaying, made when it first needs one.
struct relay_state {
  uint32_t spec = 0;  // 1 + index in reactor::relay_specs; 0: not followed (a member only)
  uint32_t group = 0;
  uint32_t group_index = 0;  // its place in the group's member list
  relay_mode mode = RM_HEAD;
  uint8_t head_have = 0;  // head bytes gathered in `head` when a head spans reads
  uint8_t head[6] = {};
  uint32_t frame_left = 0;  // RM_PASS
  // RM_RELAY: the frame being relayed that spans reads, prefix included.
  frame_buffer partial;
};

struct relay_member {
  uint32_t slot;
  uint32_t gen;
  relay_kind kind;
  uint32_t max_queue_bytes;
};

struct relay_group {
  std::vector<relay_member> members;
};

// What the reactor keeps for relaying: the listeners' specs (a handful, kept
// until the reactor goes) and the groups, indexed by the id JS gave them.
struct relay_table {
  std::vector<std::unique_ptr<relay_spec>> specs;
  std::vector<relay_group> groups;
  std::vector<uint8_t> scratch;  // a run re-encoded for WebSocket members
};

// Registers a spec for a listener; returns its number for relay_state::spec.
uint32_t relay_add_spec(reactor* r, const relay_spec& spec);

// A connection accepted on a listener with spec `spec` (0: none) is followed from its first byte.
bool relay_follow(conn& c, uint32_t spec);

// c's `n` fresh bytes at the end of the staging: relays what it can, and
// pushes RP_EV_RELAYED and the DATA events for the rest. Commits the staging.
void relay_received(reactor* r, uint32_t slot, conn& c, size_t n);

// RP_CMD_GROUP: c joins `group` (0: leaves its group). Returns 0 or -EINVAL.
int relay_join(reactor* r, uint32_t slot, conn& c, uint32_t group, int32_t kind, uint32_t max_queue_bytes);

// c is going: out of its group, and its state freed.
void relay_forget(reactor* r, conn& c);

}  // namespace ringport
