// The queue of events bound for JS, and its delivery in batches.
#include <algorithm>
#include <cstring>

#include "core.h"

namespace ringport {

// Only called between completions, so JS never runs while a handler holds a
// slot.
void deliver(reactor* r) {
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
    // Only the mechanism's completions add DATA, and none are handled while JS runs.
    r->staging.clear();
    // Sends and closes from the handlers; a close may raise an event of its own.
    apply_commands(r);
  }
}

}  // namespace ringport
