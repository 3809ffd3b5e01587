import type { PacketKey, Session, SessionRoom, SessionTable } from '../session';
import { broadcast, type BroadcastOptions } from './broadcast';

/**
 * A named group of sessions that hear each other's broadcasts. A session is
 * in at most one room: joining another leaves the first. A closed session
 * leaves its room by itself; a room whose last member leaves is removed from
 * its server.
 */
export class Room implements SessionRoom {
  readonly name: string;
  private readonly members = new Set<Session>();

  /** @internal Rooms come from `server.room(name)`. */
  constructor(
    name: string,
    private readonly table: SessionTable,
    private readonly registry: { occupied(room: Room): void; empty(room: Room): void },
  ) {
    this.name = name;
  }

  get size(): number {
    return this.members.size;
  }

  has(session: Session): boolean {
    return this.members.has(session);
  }

  sessions(): IterableIterator<Session> {
    return this.members.values();
  }

  /**
   * Seats `session` here, leaving its previous room. Returns false, and
   * changes nothing, for a session that is no longer open: a player who left
   * while an async handler was deciding where to seat them.
   */
  join(session: Session): boolean {
    if (!session.isOpen) return false;
    if (session.room === this) return true;
    session.room?.leave(session);
    this.members.add(session);
    session.room = this;
    // A room kept by the game after it emptied is listed by its server again.
    if (this.members.size === 1) this.registry.occupied(this);
    return true;
  }

  leave(session: Session): void {
    if (!this.members.delete(session)) return;
    session.room = undefined;
    if (this.members.size === 0) this.registry.empty(this);
  }

  /** Sends one packet to every member (but `except`), encoded once. Returns the number of recipients. */
  broadcast(packet: PacketKey, message: unknown, options?: BroadcastOptions): number {
    return broadcast(this.table, this.members, packet, message, options);
  }
}
