import { isIP } from 'node:net';
import {
  connGeneration,
  connIdOf,
  connSlot,
  type Backend,
  type BackendEvent,
  type BackendKind,
  type BackendOptions,
  type BackendStats,
  type Listening,
  type ListenOptions,
  type RelayGroups,
  type RelayKind,
  type TransportCloseReason,
} from './backend';
import { defaultBacklog } from './backlog';
import { watchGracefulClose } from './graceful-close';
import type { Addon } from './native-addon';
import { NativeLoop, type LoopOwner } from './native-loop';
import { PROTOCOL as P } from './native-protocol';
import { reusePortRefused, reusePortSupport } from './reuse-port';

/** This thread's reactor of each mechanism, while some instance uses it. */
const sharedLoops = new Map<BackendKind, NativeLoop>();

function acquireLoop(addon: Addon, kind: BackendKind): NativeLoop {
  let loop = sharedLoops.get(kind);
  if (loop === undefined) {
    loop = new NativeLoop(addon, kind);
    sharedLoops.set(kind, loop);
  }
  loop.retain();
  return loop;
}

/**
 * The text of recent IPv4 peer addresses, in a small direct-mapped cache:
 * connections from one address (a load balancer, a proxy, a NAT, loopback)
 * share one string where each would hold its own copy (32 bytes apiece).
 */
const ADDRESS_CACHE_SLOTS = 256;
const cachedAddresses = new Uint32Array(ADDRESS_CACHE_SLOTS);
const cachedTexts: (string | undefined)[] = new Array<string | undefined>(ADDRESS_CACHE_SLOTS).fill(undefined);

function ipv4Text(address: number): string {
  const slot = (address ^ (address >>> 8) ^ (address >>> 16) ^ (address >>> 24)) & (ADDRESS_CACHE_SLOTS - 1);
  const cached = cachedTexts[slot];
  if (cached !== undefined && cachedAddresses[slot] === address >>> 0) return cached;
  const text = `${(address >>> 24) & 255}.${(address >>> 16) & 255}.${(address >>> 8) & 255}.${address & 255}`;
  cachedAddresses[slot] = address;
  cachedTexts[slot] = text;
  return text;
}

function numericHost(host: string | undefined): string {
  if (host === undefined || host === '') return '';
  if (host === 'localhost') return '127.0.0.1';
  return host;
}

/**
 * A backend over a native reactor of one mechanism (`uring` or `epoll` on
 * Linux, `iocp` on Windows). Instances of one mechanism on one thread share
 * one reactor (see NativeLoop); each sees the events of its own listeners
 * and connections only.
 */
export class NativeBackend implements Backend, LoopOwner {
  readonly kind: BackendKind;

  private readonly addon: Addon;
  private readonly options: BackendOptions;
  private readonly loop: NativeLoop;
  /** Open connections, whose slots the shared loop records as this instance's. */
  private connections = 0;
  /**
   * Connections this side has started closing, with the reason their close
   * event will give; any other connection is open (or connecting). A map of
   * the few closing ones rather than a record per connection keeps an idle
   * connection free of JS objects here.
   */
  private readonly closingReasons = new Map<number, TransportCloseReason>();
  private readonly listeners = new Set<number>();
  private pending: BackendEvent[] = [];
  private targets = new Int32Array(1024);
  private nextFailedId = -1;
  private shutDown: Promise<void> | undefined;
  private onEmpty: (() => void) | undefined;

  private bytesIn = 0;
  private bytesOut = 0;
  private reads = 0;
  private sends = 0;
  private batches = 0;
  private stalledCloses = 0;
  private relayedPackets = 0;

  constructor(addon: Addon, kind: BackendKind, options: BackendOptions) {
    this.kind = kind;
    this.addon = addon;
    this.options = options;
    this.loop = acquireLoop(addon, kind);
  }

  async listen(options: ListenOptions): Promise<Listening> {
    if (options.reusePort === true && !reusePortSupport(this.kind).supported) throw reusePortRefused(this.kind);
    const host = numericHost(options.host);
    if (host !== '' && isIP(host) === 0) {
      throw Object.assign(new Error(`listen: '${host}' is not a numeric address`), { code: 'EINVAL' });
    }
    const { highWaterMarkBytes, lowWaterMarkBytes } = this.options;
    const relay = options.relay;
    const [listenerId, port] = this.loop.reactor.listen(
      host,
      options.port,
      options.backlog ?? defaultBacklog(),
      options.reusePort ?? false,
      highWaterMarkBytes,
      lowWaterMarkBytes,
      relay && [relay.lengthBytes, relay.byteOrder === 'be', relay.maxFrameBytes, Uint16Array.from(relay.packetIds)],
    );
    this.listeners.add(listenerId);
    this.loop.ownListener(listenerId, this);
    return { listenerId, host: host === '' ? '::' : host, port };
  }

  connect(host: string, port: number): number {
    let id: number;
    try {
      id = this.loop.reactor.connect(numericHost(host), port, this.options.highWaterMarkBytes, this.options.lowWaterMarkBytes);
    } catch (err) {
      // Refused before it started (a bad address, no free slot): report it as the dial's outcome, as net would.
      const failedId = this.nextFailedId--;
      const error = { code: (err as NodeJS.ErrnoException).code ?? 'EINVAL', message: (err as Error).message };
      setImmediate(() => this.options.onEvents([{ type: 'connect', connId: failedId, remoteAddress: host, remotePort: port, error }]));
      return failedId;
    }
    this.track(connSlot(id), connGeneration(id));
    return id;
  }

  send(connId: number, bytes: Uint8Array): boolean {
    return this.queue(connId, bytes);
  }

  sendText(connId: number, latin1: string): boolean {
    return this.queue(connId, latin1);
  }

  /** `send` and `sendText`: `what` is bytes, or latin1 text of one byte per character. */
  private queue(connId: number, what: Uint8Array | string): boolean {
    const slot = connSlot(connId);
    const gen = connGeneration(connId);
    if (connId < 0 || this.loop.sendable[slot] !== gen + 1) return false;
    const length = what.length;
    const queued = this.loop.queuedBytes(slot) + length;
    if (queued > this.options.maxQueueBytes) {
      this.abortWith(connId, 'backpressure');
      return false;
    }
    if (typeof what === 'string') this.loop.sendText(slot, gen, what);
    else this.loop.send(slot, gen, what);
    this.sends++;
    this.bytesOut += length;
    return queued <= this.options.highWaterMarkBytes;
  }

  sendMany(connIds: ArrayLike<number>, bytes: Uint8Array, count = connIds.length): void {
    if (this.targets.length < 2 * count) this.targets = new Int32Array(2 * count);
    const targets = this.targets;
    let pairs = 0;
    const sendable = this.loop.sendable;
    for (let i = 0; i < count; i++) {
      const connId = connIds[i];
      const slot = connSlot(connId);
      const gen = connGeneration(connId);
      if (connId < 0 || sendable[slot] !== gen + 1) continue;
      if (this.loop.queuedBytes(slot) + bytes.length > this.options.maxQueueBytes) {
        this.abortWith(connId, 'backpressure');
        continue;
      }
      targets[2 * pairs] = slot;
      targets[2 * pairs + 1] = gen;
      pairs++;
    }
    this.loop.sendMany(targets, pairs, bytes);
    this.sends += pairs;
    this.bytesOut += pairs * bytes.length;
  }

  bufferedAmount(connId: number): number {
    return this.owns(connId) ? this.loop.queuedBytes(connSlot(connId)) : 0;
  }

  close(connId: number, mode: 'graceful' | 'abort'): void {
    if (!this.owns(connId)) return;
    const slot = connSlot(connId);
    const gen = connGeneration(connId);
    if (this.closingReasons.has(connId)) {
      // An abort may cut short a graceful close that is still flushing.
      if (mode === 'abort') this.loop.close(slot, gen, true);
      return;
    }
    this.closingReasons.set(connId, 'local');
    this.unsendable(slot, gen);
    this.loop.close(slot, gen, mode === 'abort');
    if (mode === 'graceful') {
      watchGracefulClose(
        () => {
          const unsent = this.owns(connId) ? this.loop.reactor.unsent(slot, gen) : undefined;
          return unsent && { bytes: unsent[0] + this.loop.queuedBytes(slot) - this.loop.queued[slot], kernelCounted: unsent[1] };
        },
        () => {
          this.stalledCloses++;
          this.loop.close(slot, gen, true);
        },
      );
    }
  }

  readonly relayGroups: RelayGroups = {
    // Ids come from the shared reactor, so two servers on one thread never share a group.
    open: () => this.loop.openGroup(),
    close: (group) => this.loop.closeGroup(group),
    join: (connId: number, group: number, kind: RelayKind) => {
      if (!this.owns(connId)) return;
      const maxQueue = Math.min(this.options.maxQueueBytes, 0xffffffff);
      this.loop.group(connSlot(connId), connGeneration(connId), group, kind === 'websocket' ? 1 : 0, maxQueue);
    },
  };

  closeListener(listenerId: number): void {
    if (!this.listeners.delete(listenerId)) return;
    this.loop.disownListener(listenerId);
    this.loop.reactor.closeListener(listenerId);
  }

  stats(): BackendStats {
    let queuedBytes = 0;
    for (const connId of this.loop.connIdsOf(this)) queuedBytes += this.loop.queuedBytes(connSlot(connId));
    const native = this.loop.stats();
    return {
      connections: this.connections,
      listeners: this.listeners.size,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      reads: this.reads,
      sends: this.sends,
      queuedBytes,
      batches: this.batches,
      // Submissions are the reactor's, shared by every backend instance on this thread.
      submits: native.submits,
      wakeups: native.wakeups,
      completions: native.completions,
      stalledCloses: this.stalledCloses,
      recvBuffers: native.recvBuffers,
      sendBufferBytes: native.sendBufferBytes,
      recvBufferShortages: native.enobufs,
      relayedPackets: this.relayedPackets,
    };
  }

  shutdown(): Promise<void> {
    this.shutDown ??= (async () => {
      for (const id of [...this.listeners]) this.closeListener(id);
      for (const connId of this.loop.connIdsOf(this)) this.close(connId, 'abort');
      this.loop.flush();
      if (this.connections > 0) await new Promise<void>((resolve) => (this.onEmpty = resolve));
      if (this.loop.release()) sharedLoops.delete(this.kind);
    })();
    return this.shutDown;
  }

  take(type: number, slot: number, gen: number, a: number, b: number, c: number, data: Buffer | undefined): void {
    const connId = connIdOf(slot, gen);
    // The loop hands this instance only accepts on its listeners and records of connections it owns.
    switch (type) {
      case P.EV_ACCEPT: {
        this.track(slot, gen);
        this.loop.sendable[slot] = gen + 1;
        const remoteAddress = c !== 0 ? ipv4Text(c) : (this.loop.reactor.peer(slot, gen)?.[0] ?? '');
        this.pending.push({ type: 'accept', listenerId: a, connId, remoteAddress, remotePort: b });
        break;
      }
      case P.EV_CONNECT: {
        const remoteAddress = c !== 0 ? ipv4Text(c) : (this.loop.reactor.peer(slot, gen)?.[0] ?? '');
        if (a < 0) {
          const code = this.addon.errnoName(a);
          this.forget(connId, slot, gen);
          this.pending.push({ type: 'connect', connId, remoteAddress, remotePort: b, error: { code, message: `connect ${code}` } });
        } else {
          this.loop.sendable[slot] = gen + 1;
          this.pending.push({ type: 'connect', connId, remoteAddress, remotePort: b });
        }
        break;
      }
      case P.EV_DATA:
        this.bytesIn += b;
        // c = 1: more of the read the event before it reported.
        if (c === 0) this.reads++;
        this.pending.push({ type: 'data', connId, bytes: data!.subarray(a, a + b) });
        break;
      case P.EV_RELAYED: {
        this.reads++;
        // All 0: a read that completed nothing yet (a frame being gathered).
        if (a === 0) break;
        this.bytesIn += b;
        this.sends += c;
        this.relayedPackets += a;
        // Exact where every member is framed, as the sender; a WebSocket member's headers differ by a few bytes.
        const bytesOut = Math.round((b * c) / a);
        this.bytesOut += bytesOut;
        this.pending.push({ type: 'relayed', connId, packets: a, bytes: b, deliveries: c, bytesOut });
        break;
      }
      case P.EV_DRAIN:
        if (!this.closingReasons.has(connId)) this.pending.push({ type: 'drain', connId });
        break;
      case P.EV_CLOSE: {
        const reason = this.closingReasons.get(connId);
        this.forget(connId, slot, gen);
        if (a === P.CLOSE_ERROR) {
          const code = this.addon.errnoName(b);
          this.pending.push({ type: 'close', connId, reason: reason ?? 'error', error: { code, message: `socket error ${code}` } });
        } else {
          const native = a === P.CLOSE_PEER ? 'peer' : a === P.CLOSE_BACKPRESSURE ? 'backpressure' : 'local';
          this.pending.push({ type: 'close', connId, reason: reason ?? native });
        }
        break;
      }
    }
  }

  endBatch(): void {
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    this.batches++;
    this.options.onEvents(batch);
  }

  private owns(connId: number): boolean {
    return connId >= 0 && this.loop.ownerOf(connSlot(connId), connGeneration(connId)) === this;
  }

  private track(slot: number, gen: number): void {
    this.loop.own(slot, gen, this);
    this.connections++;
  }

  private forget(connId: number, slot: number, gen: number): void {
    this.unsendable(slot, gen);
    this.closingReasons.delete(connId);
    this.loop.disown(slot, gen);
    if (--this.connections === 0) this.onEmpty?.();
  }

  private unsendable(slot: number, gen: number): void {
    if (this.loop.sendable[slot] === gen + 1) this.loop.sendable[slot] = 0;
  }

  private abortWith(connId: number, reason: TransportCloseReason): void {
    if (this.closingReasons.has(connId)) return;
    this.closingReasons.set(connId, reason);
    const slot = connSlot(connId);
    const gen = connGeneration(connId);
    this.unsendable(slot, gen);
    this.loop.close(slot, gen, true);
  }
}
