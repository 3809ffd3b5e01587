import { selectBackend, type Backend, type BackendEvent, type BackendKind } from '../../src';
import type { QueueLimits } from '../../src/backend';
import { ignoresBackpressure, type Conn, type Report, type Track } from './stress-conn';
import { HEADER_BYTES, type EchoServer } from './stress-peers';
import { eventually, sleep } from './stress-wait';

export interface StressHooks {
  open?(conn: Conn): void;
  data?(conn: Conn): void;
  drain?(conn: Conn): void;
  close?(conn: Conn): void;
  failed?(conn: Conn): void;
}

const ONE_BYTE = Buffer.from([0x2a]);

/**
 * A backend whose events are checked against the Backend contract as they
 * arrive: ids are unique, a connection's events come in order (accept or
 * connect, then data and drain, then one close), nothing follows a close,
 * drain follows a false send and comes with the queue at the low-water mark,
 * and every send's return value matches the queue it saw.
 */
export class StressBackend {
  readonly backend: Backend;
  readonly tracks = new Map<number, Track>();
  readonly listeners = new Map<number, number>();
  events = 0;
  batches = 0;
  hooks: StressHooks = {};
  /**
   * When the peer of an accepted connection is another backend, its port is
   * unknown here: the first bytes (a dial header) name the Conn instead.
   */
  claim: ((head: Buffer) => Conn | undefined) | undefined;
  /** Keyed by listener port and peer port: one peer port may serve two listeners at once. */
  private readonly acceptsWaiting = new Map<string, Track>();
  private readonly peersByPort = new Map<string, Conn>();

  constructor(
    readonly kind: BackendKind,
    readonly limits: QueueLimits,
    readonly report: Report,
    readonly name = 'backend',
  ) {
    this.backend = selectBackend(kind).create({ ...limits, onEvents: this.onEvents });
  }

  async listen(): Promise<number> {
    // A deep backlog: a thousand peers dialling at once must not wait for SYN retries.
    const { listenerId, port } = await this.backend.listen({ host: '127.0.0.1', port: 0, backlog: 4096 });
    this.listeners.set(listenerId, port);
    return listenerId;
  }

  dial(conn: Conn, port: number): void {
    const id = this.backend.connect('127.0.0.1', port);
    if (this.tracks.has(id)) this.report.fail(`${this.name}: connect returned id ${id}, which an earlier connection had`);
    const track: Track = { id, state: 'dialing', conn, remotePort: port, key: '', closes: 0 };
    this.tracks.set(id, track);
    conn.connId = id;
    conn.track = track;
  }

  /** The peer of an accepted connection knows its ports: pair it with the accept event, whichever came first. */
  registerPeer(conn: Conn, listenerPort: number, localPort: number): void {
    const key = `${listenerPort}:${localPort}`;
    const track = this.acceptsWaiting.get(key);
    if (track === undefined) {
      this.peersByPort.set(key, conn);
      return;
    }
    this.acceptsWaiting.delete(key);
    this.bind(conn, track);
  }

  /** Accept events that no peer of this test claimed. */
  get unclaimedAccepts(): number {
    let n = 0;
    for (const track of this.acceptsWaiting.values()) if (track.conn === undefined) n++;
    return n;
  }

  /** Sends through the backend, checking the return value against the queue before the call. */
  send(conn: Conn, bytes: Buffer): boolean {
    const id = conn.connId!;
    const before = this.backend.bufferedAmount(id);
    const ok = this.backend.send(id, bytes);
    if (!conn.open) {
      if (ok) this.report.fail(`${this.name}: send returned true on a closing or closed connection: ${conn.describe()}`);
      return false;
    }
    const queued = before + bytes.length;
    const { highWaterMarkBytes: high, maxQueueBytes: max } = this.limits;
    if (queued > max) {
      if (ok) this.report.fail(`${this.name}: send returned true past maxQueueBytes (${queued} > ${max}): ${conn.describe()}`);
      conn.backpressureExpected = true;
      return false;
    }
    conn.sent += bytes.length;
    conn.toPeer.push(bytes);
    if (queued > high) {
      if (ok) this.report.fail(`${this.name}: send returned true over the high-water mark (${queued} > ${high}): ${conn.describe()}`);
      conn.awaitingDrain = true;
      conn.overHighSends++;
    } else if (!ok && !conn.awaitingDrain) {
      conn.suspectFalse = `send returned false at ${queued} queued bytes (high-water ${high})`;
      conn.awaitingDrain = true;
    }
    return ok;
  }

  /** Broadcasts one buffer to `conns` (no duplicates), tracking what each must receive. */
  sendMany(conns: Conn[], bytes: Buffer): void {
    const before = conns.map((c) => this.backend.bufferedAmount(c.connId!));
    const open = conns.map((c) => c.open);
    this.backend.sendMany(
      conns.map((c) => c.connId!),
      bytes,
    );
    conns.forEach((conn, i) => {
      if (!open[i]) return;
      if (before[i] + bytes.length > this.limits.maxQueueBytes) {
        conn.backpressureExpected = true;
        return;
      }
      conn.sent += bytes.length;
      conn.toPeer.push(bytes);
      if (this.backend.bufferedAmount(conn.connId!) > this.limits.highWaterMarkBytes) {
        conn.awaitingDrain = true;
        conn.overHighSends++;
      }
    });
  }

  close(conn: Conn, mode: 'graceful' | 'abort'): void {
    const state = conn.track?.state;
    if (conn.localClose === undefined && (state === 'open' || state === 'dialing') && !conn.backpressureExpected) {
      conn.localClose = mode;
      conn.sentAtLocalClose = conn.sent;
    } else if (conn.localClose === 'graceful' && mode === 'abort') {
      conn.abortedAfterGraceful = true;
    }
    this.backend.close(conn.connId!, mode);
  }

  closeListener(listenerId: number): void {
    this.backend.closeListener(listenerId);
  }

  /** Marks every open connection as closed locally (shutdown aborts them all). */
  noteShutdown(): void {
    for (const track of this.tracks.values()) {
      const conn = track.conn;
      if (conn === undefined || conn.localClose !== undefined || conn.backpressureExpected) continue;
      if (track.state === 'open' || track.state === 'dialing') {
        conn.localClose = 'abort';
        conn.sentAtLocalClose = conn.sent;
      }
    }
  }

  private bind(conn: Conn, track: Track): void {
    conn.connId = track.id;
    conn.track = track;
    track.conn = conn;
    this.hooks.open?.(conn);
  }

  private readonly onEvents = (batch: readonly BackendEvent[]): void => {
    this.batches++;
    for (const event of batch) {
      this.events++;
      try {
        this.take(event);
      } catch (err) {
        this.report.fail(`${this.name}: checking a ${event.type} event threw: ${(err as Error).stack}`);
      }
    }
  };

  private take(event: BackendEvent): void {
    const fail = (what: string) => this.report.fail(`${this.name}: ${event.type} event for id ${event.connId}: ${what}`);
    if (event.type === 'accept') {
      if (this.tracks.has(event.connId)) return fail('the id was already used');
      if (!this.listeners.has(event.listenerId)) fail(`unknown listener ${event.listenerId}`);
      const key = `${this.listeners.get(event.listenerId)}:${event.remotePort}`;
      const track: Track = { id: event.connId, state: 'open', conn: undefined, remotePort: event.remotePort, key, closes: 0 };
      this.tracks.set(event.connId, track);
      const conn = this.peersByPort.get(key);
      if (conn === undefined) {
        this.acceptsWaiting.set(key, track);
      } else {
        this.peersByPort.delete(key);
        this.bind(conn, track);
      }
      return;
    }
    const track = this.tracks.get(event.connId);
    if (track === undefined) return fail('no such connection');
    const conn = track.conn;
    switch (event.type) {
      case 'connect':
        if (track.state !== 'dialing') return fail(`connection is ${track.state}, not dialing`);
        if (event.error !== undefined) {
          track.state = 'failed';
          if (conn !== undefined) {
            conn.connectError = event.error;
            this.hooks.failed?.(conn);
          }
        } else {
          track.state = 'open';
          if (conn !== undefined) this.hooks.open?.(conn);
        }
        return;
      case 'data':
        if (track.state !== 'open') return fail(`connection is ${track.state}`);
        if (event.bytes.length === 0) fail('empty data event');
        if (conn === undefined) {
          if (this.claim === undefined) return fail('data before the accept was paired with its peer');
          (track.early ??= []).push(event.bytes);
          const head = Buffer.concat(track.early);
          if (head.length < HEADER_BYTES) return;
          const claimed = this.claim(head);
          if (claimed === undefined || claimed.track !== undefined) return fail(`the first bytes ${head.subarray(0, 8).toString('hex')} name no waiting connection`);
          track.early = undefined;
          this.acceptsWaiting.delete(track.key);
          this.bind(claimed, track);
          claimed.toBackend.feed(head);
          this.hooks.data?.(claimed);
          return;
        }
        conn.toBackend.feed(event.bytes);
        this.hooks.data?.(conn);
        return;
      case 'drain': {
        if (track.state !== 'open') return fail(`connection is ${track.state}`);
        if (conn === undefined) return;
        conn.drains++;
        const buffered = this.backend.bufferedAmount(event.connId);
        let unexplained: string | undefined;
        if (ignoresBackpressure(conn.plan.mode)) {
          // This side kept sending while a drain was on its way, so the queue may
          // have crossed twice before the first drain arrived: count crossings.
          if (conn.drains > conn.overHighSends) {
            unexplained = `drain #${conn.drains} after only ${conn.overHighSends} send(s) over the high-water mark`;
          }
        } else if (!conn.awaitingDrain) {
          unexplained = `drain without a send that returned false (drain #${conn.drains})`;
        } else if (conn.suspectFalse !== undefined) {
          unexplained = `${conn.suspectFalse}, then a drain`;
        }
        if (unexplained !== undefined) {
          // net writes to a socket destroyed under it (the close event still to
          // come) fail on the next tick, and the failed write's callback raises
          // a drain. Tolerated there if the close follows at once; never on native.
          if (this.kind === 'net') conn.dubiousDrain ??= { what: unexplained, batch: this.batches };
          else fail(`${unexplained}: ${conn.describe()}`);
        } else if (!ignoresBackpressure(conn.plan.mode) && buffered > this.limits.lowWaterMarkBytes) {
          fail(`drain with ${buffered} bytes queued, over the low-water mark ${this.limits.lowWaterMarkBytes}`);
        }
        conn.awaitingDrain = false;
        this.hooks.drain?.(conn);
        return;
      }
      case 'close': {
        track.closes++;
        if (track.state === 'closed') return fail(`second close event (reason ${event.reason})`);
        if (track.state === 'failed') return fail('close after a failed connect');
        if (track.state === 'dialing' && conn?.localClose === undefined) {
          fail(`close (${event.reason}) for a dial that never connected and was not closed locally`);
        }
        track.state = 'closed';
        const buffered = this.backend.bufferedAmount(event.connId);
        if (buffered !== 0) fail(`bufferedAmount is ${buffered} for the closed connection`);
        if (this.backend.send(event.connId, ONE_BYTE)) fail('send on the closed connection returned true');
        if (conn === undefined) return;
        conn.closeReason = event.reason;
        conn.closeError = event.error;
        conn.suspectFalse = undefined;
        if (conn.dubiousDrain !== undefined && this.batches - conn.dubiousDrain.batch > 2) {
          fail(`${conn.dubiousDrain.what}, on a connection that stayed open ${this.batches - conn.dubiousDrain.batch} batches more: ${conn.describe()}`);
        }
        conn.receivedAtClose = conn.toBackend.received;
        this.hooks.close?.(conn);
        return;
      }
    }
  }
}

/**
 * What must hold once every connection of a backend has closed: no accept
 * left unclaimed, no connection left open, stats back to zero, and send,
 * close, bufferedAmount and sendMany harmless on closed and unknown ids,
 * raising no event.
 */
export async function checkQuiet(sb: StressBackend, echo?: EchoServer): Promise<void> {
  const { report, backend } = sb;
  if (sb.unclaimedAccepts > 0) report.fail(`${sb.name}: ${sb.unclaimedAccepts} accept event(s) no peer of the test made`);
  for (const track of sb.tracks.values()) {
    if (track.state === 'open' || track.state === 'dialing') report.fail(`${sb.name}: id ${track.id} is still ${track.state}`);
  }
  if (echo !== undefined && !(await eventually(() => echo.unidentified === 0, 1000))) {
    report.fail(`${sb.name}: ${echo.unidentified} echo socket(s) never got a header`);
  }
  if (!(await eventually(() => backend.stats().connections === 0, 2000))) {
    report.fail(`${sb.name}: stats().connections is ${backend.stats().connections} after every close event`);
  }
  const queued = backend.stats().queuedBytes;
  if (queued !== 0) report.fail(`${sb.name}: stats().queuedBytes is ${queued} with no connection open`);

  const closed = [...sb.tracks.values()].filter((t) => t.state === 'closed').map((t) => t.id);
  const highest = closed.reduce((a, b) => Math.max(a, b), 0);
  const ids = [...closed.slice(-50), 0, -1, -12345, 2 ** 40 + 7, highest + 1_000_003];
  const eventsBefore = sb.events;
  for (const id of ids) {
    try {
      if (backend.send(id, Buffer.from('late'))) report.fail(`${sb.name}: send(${id}) on a closed or unknown id returned true`);
      if (backend.bufferedAmount(id) !== 0) report.fail(`${sb.name}: bufferedAmount(${id}) is not 0 for a closed or unknown id`);
      backend.close(id, 'graceful');
      backend.close(id, 'abort');
    } catch (err) {
      report.fail(`${sb.name}: a call on closed or unknown id ${id} threw: ${(err as Error).message}`);
    }
  }
  try {
    backend.sendMany(ids, Buffer.from('late broadcast'));
  } catch (err) {
    report.fail(`${sb.name}: sendMany to closed and unknown ids threw: ${(err as Error).message}`);
  }
  await sleep(30);
  if (sb.events !== eventsBefore) report.fail(`${sb.name}: ${sb.events - eventsBefore} event(s) after calls on closed and unknown ids`);
  if (backend.stats().connections !== 0) report.fail(`${sb.name}: calls on closed ids left stats().connections at ${backend.stats().connections}`);
}

