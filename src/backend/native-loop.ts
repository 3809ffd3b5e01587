import type { Addon, NativeReactor } from './native-addon';
import { connIdOf, type BackendKind } from './backend';
import { PROTOCOL as P } from './native-protocol';

/** Event records per batch; a fuller wake-up is delivered in several batches. */
const EVENT_CAPACITY = 8192;
/** Command int32s per flush; a tick that queues more flushes early. */
const COMMAND_CAPACITY = 64 * 1024;
/** Send bytes per flush: several maximum-size frames, so a big frame rarely forces an early flush. */
const ARENA_BYTES = 4 * 1024 * 1024;
/** Recipients up to which sendMany copies ids by hand rather than through a subarray view. */
const SMALL_BROADCAST = 32;
/** Connection slots per reactor; the shared queue-size table has one entry each. */
const MAX_CONNECTIONS = 65536;

/**
 * Tests make the submission queue tiny, so that it fills again and again;
 * no production code sets this variable. Read when a reactor is made.
 */
function queueDepthForTests(): number | undefined {
  const depth = Number(process.env.RINGPORT_TEST_URING_QUEUE_DEPTH);
  return depth > 0 ? depth : undefined;
}

/** What a native backend instance does with the events of its own connections. */
export interface LoopOwner {
  /** One decoded record of this batch that belongs to this owner. */
  take(type: number, slot: number, gen: number, a: number, b: number, c: number, data: Buffer | undefined): void;
  /** The batch is complete: deliver what was taken. */
  endBatch(): void;
}

/**
 * One native reactor per mechanism per JS thread, shared by every native
 * backend instance of that mechanism on the thread (a server and its
 * clients, or many clients). It owns the
 * shared memory, routes each batch's records to the instances that own the
 * connections, and batches all sends of a tick into one flush: JS copies
 * bytes into the send arena and writes command records, native applies them
 * all in one call and submits once.
 */
export class NativeLoop {
  readonly reactor: NativeReactor;
  /** Bytes queued natively per slot, kept current by the reactor. */
  readonly queued: Uint32Array;
  /**
   * Per slot, the generation + 1 of a connection that may be sent to now (open,
   * connected, not closing), else 0: a broadcast checks each recipient with one
   * array read instead of a map lookup.
   */
  readonly sendable = new Int32Array(MAX_CONNECTIONS);

  private readonly events: Int32Array;
  private readonly commands: Int32Array;
  private readonly arena: Buffer;
  private readonly control: Int32Array;
  private commandInts = 0;
  /** Relay group ids given back, and the next never used. */
  private readonly freeGroups: number[] = [];
  private nextGroup = 1;
  private arenaBytes = 0;
  private flushScheduled = false;
  /** This tick's buffers filled and went to native before the tick was done. */
  private flushedEarly = false;
  /** Counts flushes, so a caller can tell whether its arena bytes are still there. */
  private flushes = 0;
  /**
   * Per slot, the instance that owns the connection there and that
   * connection's generation + 1 (0: none): arrays rather than a map by
   * connection id, so that an idle connection costs a pointer and an int here.
   */
  private readonly owners: (LoopOwner | undefined)[] = [];
  private readonly ownedGen = new Int32Array(MAX_CONNECTIONS);
  /**
   * Connections whose slot native has already given to a newer one while
   * their own close event had not reached JS yet (a dial made between two
   * parts of a long wake-up, or after a close done on the spot in a flush),
   * by connection id, until that event comes. Almost always empty.
   */
  private readonly displaced = new Map<number, LoopOwner>();
  private readonly listenerOwners = new Map<number, LoopOwner>();
  private readonly touched = new Set<LoopOwner>();
  /** Bytes queued per slot in this tick's arena, not yet flushed to native. */
  private readonly pendingBySlot = new Uint32Array(MAX_CONNECTIONS);
  private pendingSlots: number[] = [];
  private users = 0;
  private finalStats: Record<string, number> | undefined;

  constructor(addon: Addon, mechanism: BackendKind) {
    this.events = new Int32Array(EVENT_CAPACITY * P.EVENT_INTS);
    this.commands = new Int32Array(COMMAND_CAPACITY);
    this.arena = Buffer.alloc(ARENA_BYTES);
    this.control = new Int32Array(P.CONTROL_INTS);
    this.queued = new Uint32Array(MAX_CONNECTIONS);
    this.reactor = new addon.Reactor(
      mechanism,
      { maxConnections: MAX_CONNECTIONS, queueDepth: queueDepthForTests() },
      { events: this.events, commands: this.commands, arena: this.arena, control: this.control, queued: this.queued },
      this.onBatch,
    );
  }

  /** Counts the instances using this loop; the last to leave destroys it. */
  retain(): void {
    this.users++;
  }

  /** Returns true when this was the last user and the reactor is gone. */
  release(): boolean {
    if (--this.users > 0) return false;
    this.flush();
    this.finalStats = this.reactor.stats();
    this.reactor.destroy();
    return true;
  }

  /** The reactor's own counters (shared by every instance on this thread); the last ones once destroyed. */
  stats(): Record<string, number> {
    return this.finalStats ?? this.reactor.stats();
  }

  own(slot: number, gen: number, owner: LoopOwner): void {
    const previous = this.owners[slot];
    if (previous !== undefined && this.ownedGen[slot] !== gen + 1) {
      this.displaced.set(connIdOf(slot, this.ownedGen[slot] - 1), previous);
    }
    this.owners[slot] = owner;
    this.ownedGen[slot] = gen + 1;
  }

  /** The connection (slot, gen) is gone; a newer one on the same slot keeps its owner. */
  disown(slot: number, gen: number): void {
    if (this.ownedGen[slot] === gen + 1) {
      this.owners[slot] = undefined;
      this.ownedGen[slot] = 0;
    } else if (this.displaced.size > 0) {
      this.displaced.delete(connIdOf(slot, gen));
    }
  }

  /** The owner of the connection (slot, gen), or undefined if that connection is gone. */
  ownerOf(slot: number, gen: number): LoopOwner | undefined {
    if (this.ownedGen[slot] === gen + 1) return this.owners[slot];
    return this.displaced.size > 0 ? this.displaced.get(connIdOf(slot, gen)) : undefined;
  }

  /** The ids of every connection `owner` holds: a walk over all slots, for what is rare (stats, shutdown). */
  connIdsOf(owner: LoopOwner): number[] {
    const ids: number[] = [];
    for (let slot = 0; slot < this.owners.length; slot++) {
      if (this.owners[slot] === owner) ids.push(connIdOf(slot, this.ownedGen[slot] - 1));
    }
    for (const [id, displacedOwner] of this.displaced) if (displacedOwner === owner) ids.push(id);
    return ids;
  }

  ownListener(listenerId: number, owner: LoopOwner): void {
    this.listenerOwners.set(listenerId, owner);
  }

  disownListener(listenerId: number): void {
    this.listenerOwners.delete(listenerId);
  }

  /** Bytes queued for a slot: what native holds plus what this tick has not flushed yet. */
  queuedBytes(slot: number): number {
    return this.queued[slot] + this.pendingBySlot[slot];
  }

  private addPending(slot: number, bytes: number): void {
    if (this.pendingBySlot[slot] === 0) this.pendingSlots.push(slot);
    this.pendingBySlot[slot] += bytes;
  }

  /** Queues `bytes` for one connection; they are copied now, so the caller may reuse them. */
  send(slot: number, gen: number, bytes: Uint8Array): void {
    if (bytes.length > ARENA_BYTES) {
      // Larger than a whole arena: queue it in arena-sized pieces, in order.
      for (let at = 0; at < bytes.length; at += ARENA_BYTES) this.send(slot, gen, bytes.subarray(at, at + ARENA_BYTES));
      return;
    }
    this.reserve(5, bytes.length);
    this.sendCommand(slot, gen, this.copy(bytes), bytes.length);
  }

  /** Queues the bytes of `latin1` (one byte per character) for one connection, encoded straight into the arena. */
  sendText(slot: number, gen: number, latin1: string): void {
    const length = latin1.length;
    if (length > ARENA_BYTES) {
      this.send(slot, gen, Buffer.from(latin1, 'latin1'));
      return;
    }
    this.reserve(5, length);
    const offset = this.arenaBytes;
    this.arena.write(latin1, offset, length, 'latin1');
    this.arenaBytes = offset + length;
    this.sendCommand(slot, gen, offset, length);
  }

  /** The command that sends `arena[offset, offset + length)` to (slot, gen); room for it was reserved. */
  private sendCommand(slot: number, gen: number, offset: number, length: number): void {
    const c = this.commands;
    const i = this.commandInts;
    c[i] = P.CMD_SEND;
    c[i + 1] = slot;
    c[i + 2] = gen;
    c[i + 3] = offset;
    c[i + 4] = length;
    this.commandInts = i + 5;
    this.addPending(slot, length);
  }

  /** Queues one copy of `bytes` for every (slot, gen) pair in `targets`. */
  sendMany(targets: Int32Array, pairs: number, bytes: Uint8Array): void {
    if (pairs === 0) return;
    if (bytes.length > ARENA_BYTES) {
      for (let k = 0; k < pairs; k++) this.send(targets[2 * k], targets[2 * k + 1], bytes);
      return;
    }
    // The recipients of one command must fit in the command array with room to spare.
    const perCommand = (COMMAND_CAPACITY - 4) >> 1;
    let offset = -1;
    let copiedIn = -1;
    for (let first = 0; first < pairs; first += perCommand) {
      const count = Math.min(perCommand, pairs - first);
      this.reserve(4 + 2 * count, bytes.length);
      // One copy serves every command of this broadcast, unless a flush in between took it away.
      if (copiedIn !== this.flushes) {
        offset = this.copy(bytes);
        copiedIn = this.flushes;
      }
      const c = this.commands;
      let i = this.commandInts;
      c[i] = P.CMD_SEND_MANY;
      c[i + 1] = offset;
      c[i + 2] = bytes.length;
      c[i + 3] = count;
      i += 4;
      if (count <= SMALL_BROADCAST) {
        // A small room's recipients by hand: set(subarray) would allocate a view per call.
        for (let k = 2 * first, end = 2 * (first + count); k < end; k++) c[i++] = targets[k];
      } else {
        c.set(targets.subarray(2 * first, 2 * (first + count)), i);
        i += 2 * count;
      }
      this.commandInts = i;
      // Counted with its own command: the next reserve() may flush this one,
      // and a flushed command's bytes are counted in `queued` instead.
      for (let k = first; k < first + count; k++) this.addPending(targets[2 * k], bytes.length);
    }
  }

  close(slot: number, gen: number, abort: boolean): void {
    this.reserve(4, 0);
    const c = this.commands;
    const i = this.commandInts;
    c[i] = P.CMD_CLOSE;
    c[i + 1] = slot;
    c[i + 2] = gen;
    c[i + 3] = abort ? 1 : 0;
    this.commandInts = i + 4;
  }

  /** A relay group id not in use on this reactor (never 0). */
  openGroup(): number {
    return this.freeGroups.pop() ?? this.nextGroup++;
  }

  closeGroup(group: number): void {
    this.freeGroups.push(group);
  }

  /** Puts a connection in relay group `group` (0: out of its group); see native/relay.h. */
  group(slot: number, gen: number, group: number, kind: number, maxQueueBytes: number): void {
    this.reserve(6, 0);
    const c = this.commands;
    const i = this.commandInts;
    c[i] = P.CMD_GROUP;
    c[i + 1] = slot;
    c[i + 2] = gen;
    c[i + 3] = group;
    c[i + 4] = kind;
    c[i + 5] = maxQueueBytes;
    this.commandInts = i + 6;
  }

  /** Hands every queued command to native in one call, and ends the tick's sends. */
  readonly flush = (): void => {
    this.flushScheduled = false;
    // After an early flush native waits for this one to start its sends.
    if (this.commandInts === 0 && !this.flushedEarly) return;
    this.flushedEarly = false;
    this.apply(false);
  };

  private apply(early: boolean): void {
    this.flushes++;
    this.control[P.CONTROL_COMMAND_INTS] = this.commandInts;
    this.control[P.CONTROL_ARENA_BYTES] = this.arenaBytes;
    this.commandInts = 0;
    this.arenaBytes = 0;
    this.reactor.flush(early);
    // Native has taken the bytes into its queues (and `queued`) now.
    for (const slot of this.pendingSlots) this.pendingBySlot[slot] = 0;
    this.pendingSlots = [];
  }

  /** Makes room for a command of `ints` int32s and `bytes` payload, flushing early if the tick's buffers are full. */
  private reserve(ints: number, bytes: number): void {
    if (this.commandInts + ints > COMMAND_CAPACITY || this.arenaBytes + bytes > ARENA_BYTES) {
      // The tick's sends start with its last flush, so each connection writes once.
      this.flushedEarly = true;
      this.apply(true);
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      // Everything sent in this tick (a whole batch of handlers, a game tick's broadcasts) goes in one flush.
      process.nextTick(this.flush);
    }
  }

  private copy(bytes: Uint8Array): number {
    const offset = this.arenaBytes;
    this.arena.set(bytes, offset);
    this.arenaBytes = offset + bytes.length;
    return offset;
  }

  private readonly onBatch = (count: number, data?: Buffer): void => {
    const e = this.events;
    for (let k = 0; k < count; k++) {
      const i = k * P.EVENT_INTS;
      const type = e[i];
      const slot = e[i + 1];
      const gen = e[i + 2];
      const owner = type === P.EV_ACCEPT ? this.listenerOwners.get(e[i + 3]) : this.ownerOf(slot, gen);
      if (owner === undefined) {
        // Accepted just after its listener was closed: nobody will ever read it.
        if (type === P.EV_ACCEPT) this.close(slot, gen, true);
        continue;
      }
      owner.take(type, slot, gen, e[i + 3], e[i + 4], e[i + 5], data);
      this.touched.add(owner);
    }
    for (const owner of this.touched) owner.endBatch();
    this.touched.clear();
  };
}
