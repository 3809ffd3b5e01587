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
    private readonly onEmpty: (room: Room) => void,
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

  join(session: Session): void {
    if (session.room === this) return;
    session.room?.leave(session);
    this.members.add(session);
    session.room = this;
  }

  leave(session: Session): void {
    if (!this.members.delete(session)) return;
    session.room = undefined;
    if (this.members.size === 0) this.onEmpty(this);
  }

  /** Sends one packet to every member (but `except`), encoded once. Returns the number of recipients. */
  broadcast(packet: PacketKey, message: unknown, options?: BroadcastOptions): number {
    return broadcast(this.table, this.members, packet, message, options);
  }
}
