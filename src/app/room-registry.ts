import type { SessionTable } from '../session';
import { Room } from './room';

/**
 * The rooms of one server, by name. A room with members is listed (and held)
 * here; an empty one is held only by whoever still has it, so a lookup by a
 * name a client chose costs nothing once it is forgotten. While anyone holds
 * an empty room, asking for its name again returns that same room.
 */
export class RoomRegistry<R extends Room<any> = Room> {
  /** Rooms with at least one member. */
  readonly occupied = new Map<string, R>();
  /** Empty rooms the application may still hold, weakly; an entry goes when its room is collected. */
  private readonly unoccupied = new Map<string, WeakRef<R>>();
  private readonly collected = new FinalizationRegistry<string>((name) => {
    if (this.unoccupied.get(name)?.deref() === undefined) this.unoccupied.delete(name);
  });

  constructor(private readonly table: SessionTable) {}

  /** @internal Relay groups exist where the server relays and its backend does it natively. */
  takeGroup(): number {
    const groups = this.table.backend.relayGroups;
    return this.table.relayIds.size === 0 || groups === undefined ? 0 : groups.open();
  }

  /** @internal */
  giveGroup(group: number): void {
    if (group !== 0) this.table.backend.relayGroups!.close(group);
  }

  /** The room called `name`: the listed one, an empty one still held, or a new one. */
  get(name: string): R {
    const room = this.occupied.get(name) ?? this.unoccupied.get(name)?.deref();
    if (room !== undefined) return room;
    const created = new Room(name, this.table, this) as R;
    this.unoccupied.set(name, new WeakRef(created));
    this.collected.register(created, name);
    return created;
  }

  /** @internal A room got its first member. */
  occupy(room: R): void {
    if (this.occupied.has(room.name)) return;
    this.occupied.set(room.name, room);
    this.unoccupied.delete(room.name);
  }

  /** @internal A room lost its last member. */
  vacate(room: R): void {
    if (this.occupied.get(room.name) !== room) return;
    this.occupied.delete(room.name);
    this.unoccupied.set(room.name, new WeakRef(room));
  }
}
