import { CONN_SLOT_LIMIT, connIdOf, connSlot } from './backend';

/**
 * Connection ids in the seam's form (see {@link CONN_SLOT_LIMIT}) for a
 * backend with no native slab to number them: a freed slot is reused, its
 * generation moved on, before a new slot is taken.
 */
export class SlotIds {
  /** The generation last given out, per slot ever taken. */
  private readonly generations: number[] = [];
  private readonly free: number[] = [];

  /**
   * A new id, or -1 once every slot is in use. That takes 2^20 open
   * connections, more than Linux's default ceiling on descriptors (nr_open).
   */
  take(): number {
    let slot = this.free.pop();
    if (slot === undefined) {
      if (this.generations.length === CONN_SLOT_LIMIT) return -1;
      slot = this.generations.length;
      this.generations.push(0);
    }
    const generation = this.generations[slot] + 1;
    this.generations[slot] = generation;
    return connIdOf(slot, generation);
  }

  /** Frees the slot of `id`, taken from this instance and not yet released. */
  release(id: number): void {
    this.free.push(connSlot(id));
  }
}
