import type { PacketKey, Session, SessionRoom, SessionTable } from '../session';
import { broadcast, broadcastPayload, type BroadcastOptions } from './broadcast';
import type { DefaultData } from './context';

/** What a room tells its server's registry. */
interface RoomListing {
  occupy(room: Room<any>): void;
  vacate(room: Room<any>): void;
  /** A relay group id for a room that got its first member, where the backend relays; 0 where it does not. */
  takeGroup(): number;
  giveGroup(group: number): void;
}

/**
 * A named group of sessions that hear each other's broadcasts. A session is
 * in at most one room: joining another leaves the first. A closed session
 * leaves its room by itself. A room is listed in `server.rooms` while it has
 * members; `server.room(name)` returns the same room for as long as anyone
 * holds it or it has members.
 */
export class Room<Data extends object = DefaultData> implements SessionRoom {
  readonly name: string;
  private readonly members = new Set<Session<Data>>();
  /** The backend's relay group for this room while it has members (0: none; see the server's `relay`). */
  private group = 0;

  /** @internal Rooms come from `server.room(name)`. */
  constructor(
    name: string,
    private readonly table: SessionTable,
    private readonly listing: RoomListing,
  ) {
    this.name = name;
  }

  get size(): number {
    return this.members.size;
  }

  has(session: Session<Data>): boolean {
    return this.members.has(session);
  }

  sessions(): IterableIterator<Session<Data>> {
    return this.members.values();
  }

  /**
   * Seats `session` here, leaving its previous room. Returns false, and
   * changes nothing, for a session that is no longer open: a player who left
   * while an async handler was deciding where to seat them.
   */
  join(session: Session<Data>): boolean {
    if (!session.isOpen) return false;
    if (session.room === this) return true;
    session.room?.leave(session);
    this.members.add(session);
    session.room = this;
    if (this.members.size === 1) {
      this.listing.occupy(this);
      this.group = this.listing.takeGroup();
    }
    if (this.group !== 0) this.table.backend.relayGroups!.join(session.connId, this.group, session.protocol.name === 'websocket' ? 'websocket' : 'framed');
    return true;
  }

  leave(session: Session<Data>): void {
    if (!this.members.delete(session)) return;
    session.room = undefined;
    if (this.group !== 0) this.table.backend.relayGroups!.join(session.connId, 0, 'framed');
    if (this.members.size === 0) {
      this.listing.giveGroup(this.group);
      this.group = 0;
      this.listing.vacate(this);
    }
  }

  /** Sends one packet to every member (but `except`), encoded once. Returns the number of recipients. */
  broadcast(packet: PacketKey, message: unknown, options?: BroadcastOptions): number {
    return broadcast(this.table, this.members, packet, message, options);
  }

  /** @internal A relayed packet the backend did not relay itself: to every other member, as it came. */
  relay(from: Session<Data>, packetId: number, payload: Uint8Array): void {
    broadcastPayload(this.table, this.members, packetId, payload, from);
  }
}
