/** A member of an {@link IdleList}: the links live in the member itself, so touching allocates nothing. */
export interface IdleEntry {
  idlePrev: IdleEntry | null;
  idleNext: IdleEntry | null;
  /** On the {@link idleClockMs} clock. */
  lastActiveMs: number;
}

const CLOCK_EPOCH_MS = Date.now();

/**
 * Milliseconds since this module loaded, from 1: the clock of idle lists.
 * Not `Date.now()` itself: a number that large is not a small integer, and
 * a field that holds one is kept by V8 in a box of its own, 16 bytes per
 * session. This one is a small integer (`| 0` makes it one; arithmetic on
 * doubles yields a double even when it is whole) for 24 days of uptime;
 * past that it is a plain number again, boxed, and nothing else changes.
 */
export function idleClockMs(): number {
  const ms = Date.now() - CLOCK_EPOCH_MS + 1;
  return ms <= 0x7fffffff ? ms | 0 : ms;
}

/**
 * Entries ordered by last activity, oldest first. `touch` moves an entry to
 * the tail in O(1); `sweep` walks from the head and stops at the first entry
 * that is still fresh, so a sweep costs O(expired), not O(sessions).
 */
export class IdleList<T extends IdleEntry> {
  private head: IdleEntry | null = null;
  private tail: IdleEntry | null = null;
  private count = 0;

  get size(): number {
    return this.count;
  }

  touch(entry: T, nowMs: number): void {
    entry.lastActiveMs = nowMs;
    if (this.tail === entry) return;
    if (entry.idlePrev !== null || entry.idleNext !== null || this.head === entry) this.unlink(entry);
    entry.idlePrev = this.tail;
    entry.idleNext = null;
    if (this.tail !== null) this.tail.idleNext = entry;
    else this.head = entry;
    this.tail = entry;
    this.count++;
  }

  remove(entry: T): void {
    if (entry.idlePrev !== null || entry.idleNext !== null || this.head === entry) this.unlink(entry);
  }

  /** Removes and returns every entry idle since before `cutoffMs`. */
  sweep(cutoffMs: number): T[] {
    const expired: T[] = [];
    while (this.head !== null && this.head.lastActiveMs < cutoffMs) {
      const entry = this.head as T;
      this.unlink(entry);
      expired.push(entry);
    }
    return expired;
  }

  private unlink(entry: IdleEntry): void {
    if (entry.idlePrev !== null) entry.idlePrev.idleNext = entry.idleNext;
    else this.head = entry.idleNext;
    if (entry.idleNext !== null) entry.idleNext.idlePrev = entry.idlePrev;
    else this.tail = entry.idlePrev;
    entry.idlePrev = null;
    entry.idleNext = null;
    this.count--;
  }
}
