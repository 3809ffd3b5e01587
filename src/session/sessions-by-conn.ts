import { connSlot } from '../backend';
import type { Session } from './session';

/**
 * A session table's sessions by the id of the connection carrying them. The
 * backend seam gives every connection id a slot (see `CONN_SLOT_LIMIT`), so
 * this is an array indexed by slot: one pointer per connection where a map
 * entry costs several, and one array read per lookup. A lookup compares the
 * whole id with the session's own, so an id whose slot has been reused
 * finds nothing.
 */
export class SessionsByConn {
  private readonly bySlot: (Session | undefined)[] = [];
  /**
   * The rest, by id: dials refused before they started (negative ids, no
   * slot), and sessions whose slot a newer connection took before their own
   * close event arrived (a backend may reuse a slot that early). Almost always empty.
   */
  private readonly others = new Map<number, Session>();

  get(connId: number): Session | undefined {
    if (connId >= 0) {
      const session = this.bySlot[connSlot(connId)];
      if (session !== undefined && session.connId === connId) return session;
    }
    return this.others.size > 0 ? this.others.get(connId) : undefined;
  }

  /** Files `session` under its current `connId`. */
  add(session: Session): void {
    const connId = session.connId;
    if (connId < 0) {
      this.others.set(connId, session);
      return;
    }
    const slot = connSlot(connId);
    const previous = this.bySlot[slot];
    // Still filed under an id of this slot: a connection whose close is yet to come.
    const displaced = previous !== undefined && previous.connId !== connId && previous.connId >= 0 && connSlot(previous.connId) === slot;
    if (displaced) this.others.set(previous.connId, previous);
    this.bySlot[slot] = session;
  }

  delete(connId: number): void {
    if (connId >= 0 && this.bySlot[connSlot(connId)]?.connId === connId) this.bySlot[connSlot(connId)] = undefined;
    else if (this.others.size > 0) this.others.delete(connId);
  }
}
