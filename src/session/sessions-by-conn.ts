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
  /** Dials refused before they started: their ids are negative and have no slot. */
  private readonly refused = new Map<number, Session>();

  get(connId: number): Session | undefined {
    if (connId < 0) return this.refused.get(connId);
    const session = this.bySlot[connSlot(connId)];
    return session !== undefined && session.connId === connId ? session : undefined;
  }

  /** Files `session` under its current `connId`. */
  add(session: Session): void {
    const connId = session.connId;
    if (connId < 0) this.refused.set(connId, session);
    else this.bySlot[connSlot(connId)] = session;
  }

  delete(connId: number): void {
    if (connId < 0) this.refused.delete(connId);
    else if (this.get(connId) !== undefined) this.bySlot[connSlot(connId)] = undefined;
  }
}
