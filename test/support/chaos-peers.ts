import * as net from 'node:net';
import type { Rng } from './stress-rng';
import { ExpectedStream, type Pattern, type PatternStream } from './stress-streams';

/**
 * Raw `node:net` peers for the chaos suite: they write hand-made bytes in
 * random chunks, so they can be honest (byte-exact echo clients), broken
 * (fuzzers) or hostile (slowloris, slow readers) in ways the SDK's own
 * client never is. Frames are built by hand too: the default framing, a u32
 * little-endian body length, then a u16 little-endian packet id.
 */

/** A u32 little-endian length prefix declaring `length` body bytes. */
export function header(length: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32LE(length, 0);
  return bytes;
}

/** One whole frame of the default framing: length, packet id, payload. */
export function frame(packetId: number, payload: Uint8Array): Buffer {
  const bytes = Buffer.allocUnsafe(6 + payload.length);
  bytes.writeUInt32LE(2 + payload.length, 0);
  bytes.writeUInt16LE(packetId, 4);
  bytes.set(payload, 6);
  return bytes;
}

/** How a raw peer's connection ended, as its socket saw it. */
export interface PeerEnd {
  /** The server's FIN arrived (a clean end of stream). */
  ended: boolean;
  /** The socket's error code, if it had one (ECONNRESET: the server reset it). */
  error: string | undefined;
}

/** A connected raw socket whose end is recorded; the promise resolves on `close`. */
export interface RawSocket {
  readonly socket: net.Socket;
  /** The socket's own port, as the server sees it in `session.remotePort` (kept: it is gone once closed). */
  localPort: number;
  readonly closed: Promise<PeerEnd>;
  readonly end: PeerEnd;
  /** Set once `closed` has resolved. */
  isClosed: boolean;
}

/** Dials 127.0.0.1:`port` with no delay; resolves once connected. */
export function dial(port: number, options: { allowHalfOpen?: boolean } = {}): Promise<RawSocket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, noDelay: true, allowHalfOpen: options.allowHalfOpen ?? false });
    const end: PeerEnd = { ended: false, error: undefined };
    const raw: RawSocket = {
      socket,
      localPort: 0,
      end,
      isClosed: false,
      closed: new Promise<PeerEnd>((resolveClosed) =>
        socket.once('close', () => {
          raw.isClosed = true;
          resolveClosed(end);
        }),
      ),
    };
    socket.on('end', () => (end.ended = true));
    socket.on('error', (err: NodeJS.ErrnoException) => (end.error ??= err.code ?? err.message));
    socket.once('connect', () => {
      raw.localPort = socket.localPort ?? 0;
      resolve(raw);
    });
    socket.once('error', reject);
  });
}

/**
 * Writes a byte stream in random pieces (1..maxChunk bytes), moving on to
 * the next turn of the event loop between pieces now and then, so that the
 * server sees frames split at arbitrary points and several frames per read.
 */
export class ChunkedWriter {
  private readonly queue: Buffer[] = [];
  private scheduled = false;
  private idleWaiters: Array<() => void> = [];
  queuedBytes = 0;
  writtenBytes = 0;

  constructor(
    private readonly socket: net.Socket,
    private readonly rng: Rng,
    private readonly maxChunk: number,
    private readonly deferChance = 0.25,
  ) {}

  write(bytes: Buffer): void {
    if (bytes.length === 0) return;
    this.queue.push(bytes);
    this.queuedBytes += bytes.length;
    this.schedule();
  }

  /** Resolves once everything given to `write` has been handed to the socket. */
  idle(): Promise<void> {
    if (this.queuedBytes === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.flush);
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    while (this.queue.length > 0) {
      if (this.socket.destroyed || this.socket.writableEnded) {
        this.queue.length = 0;
        this.queuedBytes = 0;
        break;
      }
      const head = this.queue[0];
      const n = Math.min(head.length, this.rng.logInt(1, this.maxChunk));
      this.socket.write(head.subarray(0, n));
      this.writtenBytes += n;
      this.queuedBytes -= n;
      if (n === head.length) this.queue.shift();
      else this.queue[0] = head.subarray(n);
      if (this.rng.chance(this.deferChance)) {
        this.schedule();
        return;
      }
    }
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of waiters) wake();
  };
}

export interface EchoPlan {
  /** Frame bytes to send in all; Infinity sends until `stop()`. */
  bytes: number;
  /** Largest payload of one frame. */
  maxPayload: number;
  /** Smallest payload of one frame (default 0); sizes in between are spread evenly on a log scale. */
  minPayload?: number;
  /** Frame bytes sent and not yet echoed, at most (keeps the server's queue for this peer bounded). */
  windowBytes: number;
  /** Largest single write. */
  maxChunk: number;
}

/**
 * An honest client: sends ECHO frames of random sizes, written in random
 * chunks, and checks that exactly the same bytes come back, in order (the
 * server's echo of a frame is that frame). It never has more than
 * `windowBytes` unanswered, so only a server fault can make it a slow reader.
 */
export class EchoClient {
  readonly expected: ExpectedStream;
  frames = 0;
  private stopping = false;
  private readonly writer: ChunkedWriter;
  private readonly payloads: PatternStream;
  private pumpScheduled = false;
  private settledWaiters: Array<() => void> = [];

  private constructor(
    readonly raw: RawSocket,
    private readonly rng: Rng,
    pattern: Pattern,
    readonly plan: EchoPlan,
    readonly name: string,
    private readonly echoId: number,
  ) {
    this.expected = new ExpectedStream(name);
    this.payloads = pattern.stream(rng);
    this.writer = new ChunkedWriter(raw.socket, rng, plan.maxChunk);
    raw.socket.on('data', (chunk: Buffer) => {
      this.expected.feed(chunk);
      this.pump();
      if (this.settled) this.wakeSettled();
    });
    void raw.closed.then(() => this.wakeSettled());
  }

  static async connect(port: number, rng: Rng, pattern: Pattern, plan: EchoPlan, name: string, echoId = 1): Promise<EchoClient> {
    const raw = await dial(port);
    const client = new EchoClient(raw, rng, pattern, plan, name, echoId);
    client.pump();
    return client;
  }

  get socket(): net.Socket {
    return this.raw.socket;
  }

  get localPort(): number {
    return this.raw.localPort;
  }

  /** Sends no more frames; what is in flight still has to come back. */
  stop(): void {
    this.stopping = true;
    if (this.settled) this.wakeSettled();
  }

  /** Everything it meant to send has been sent, and all of it has come back. */
  get settled(): boolean {
    return (this.stopping || this.expected.expected >= this.plan.bytes) && this.expected.complete && this.writer.queuedBytes === 0;
  }

  /** What went wrong, if anything: wrong or extra bytes, or a connection that ended before everything came back. */
  get failure(): string | undefined {
    if (this.expected.failure !== undefined) return this.expected.failure;
    if (this.raw.isClosed && !this.settled) {
      return `${this.name}: the connection ended (${describeEnd(this.raw.end)}) with ${this.expected.expected - this.expected.received} byte(s) not echoed`;
    }
    return undefined;
  }

  /** Resolves once settled or closed (check `failure`), or rejects after `timeoutMs`. */
  whenSettled(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.settled || this.raw.isClosed) {
        resolve();
        return;
      }
      const timer = setTimeout(
        () =>
          reject(
            new Error(
              `${this.name}: after ${timeoutMs} ms, ${this.expected.received} of ${this.expected.expected} byte(s) echoed, ` +
                `${this.writer.queuedBytes} not yet written`,
            ),
          ),
        timeoutMs,
      );
      this.settledWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Ends the connection from this side (FIN) and resolves with how it ended. */
  end(): Promise<PeerEnd> {
    this.stopping = true;
    this.raw.socket.end();
    return this.raw.closed;
  }

  private wakeSettled(): void {
    const waiters = this.settledWaiters;
    this.settledWaiters = [];
    for (const wake of waiters) wake();
  }

  private pump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(this.sendMore);
  }

  private readonly sendMore = (): void => {
    this.pumpScheduled = false;
    const socket = this.raw.socket;
    let frames = 0;
    while (
      !this.stopping &&
      !socket.destroyed &&
      this.expected.expected < this.plan.bytes &&
      this.expected.expected - this.expected.received < this.plan.windowBytes
    ) {
      const n = this.rng.logInt((this.plan.minPayload ?? 0) + 1, this.plan.maxPayload + 1) - 1;
      const bytes = frame(this.echoId, this.payloads.take(n));
      this.expected.push(bytes);
      this.writer.write(bytes);
      this.frames++;
      if (++frames >= 16) {
        this.pump();
        return;
      }
    }
  };
}

export function describeEnd(end: PeerEnd): string {
  return end.error !== undefined ? `error ${end.error}` : end.ended ? 'clean end' : 'closed without an end';
}

/**
 * Reads frames from a raw socket and checks that the payloads of `packetId`
 * carry the sequence numbers 0, 1, 2, ... (u32 LE at offset 0): no hole, no
 * repeat. Any other packet, or a number out of turn, is a failure.
 */
export class SequenceReader {
  /** The next sequence number expected, so also how many arrived in order. */
  next = 0;
  failure: string | undefined;
  private pending: Buffer = Buffer.alloc(0);
  private waiters: Array<() => void> = [];

  constructor(
    readonly raw: RawSocket,
    private readonly packetId: number,
    readonly name: string,
  ) {
    raw.socket.on('data', (chunk: Buffer) => this.feed(chunk));
    void raw.closed.then(() => this.wake());
  }

  /** Resolves once `count` numbers have arrived or the connection has closed; rejects after `timeoutMs`. */
  waitFor(count: number, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        if (this.next >= count || this.raw.isClosed || this.failure !== undefined) {
          resolve();
          return true;
        }
        return false;
      };
      if (check()) return;
      const timer = setTimeout(() => reject(new Error(`${this.name}: ${this.next} of ${count} packets after ${timeoutMs} ms`)), timeoutMs);
      const waiter = () => {
        if (check()) clearTimeout(timer);
        else this.waiters.push(waiter);
      };
      this.waiters.push(waiter);
    });
  }

  private feed(chunk: Buffer): void {
    let buffer = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    let at = 0;
    while (buffer.length - at >= 4) {
      const length = buffer.readUInt32LE(at);
      if (buffer.length - at - 4 < length) break;
      const id = buffer.readUInt16LE(at + 4);
      const seq = length >= 6 ? buffer.readUInt32LE(at + 6) : -1;
      if (this.failure === undefined) {
        if (id !== this.packetId) this.failure = `${this.name}: packet id ${id} after ${this.next} in order`;
        else if (seq !== this.next) this.failure = `${this.name}: sequence number ${seq} where ${this.next} was due`;
        else this.next++;
      }
      at += 4 + length;
    }
    buffer = buffer.subarray(at);
    // Keep a copy of the unfinished frame only: a view would pin the whole read.
    this.pending = buffer.length === 0 ? Buffer.alloc(0) : Buffer.from(buffer);
    this.wake();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}

/** Runs `task` over `items` with at most `limit` in flight; resolves when all have finished. */
export async function inBatches<T>(items: readonly T[], limit: number, task: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      await task(items[index], index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/**
 * Sends one ECHO frame on a raw socket and watches for exactly that frame
 * to come back: `served` turns true when it has; anything else arriving
 * (more bytes, different bytes) is a `failure`.
 */
export class OneEcho {
  served = false;
  failure: string | undefined;
  private readonly expected: ExpectedStream;

  constructor(
    readonly raw: RawSocket,
    payload: Uint8Array,
    readonly name: string,
    echoId = 1,
    /** Largest single write: Wine's loopback fails multi-megabyte writes. */
    maxWrite = 64 * 1024,
  ) {
    const bytes = frame(echoId, payload);
    this.expected = new ExpectedStream(name);
    this.expected.push(bytes);
    raw.socket.on('data', (chunk: Buffer) => {
      this.expected.feed(chunk);
      this.failure = this.expected.failure;
      if (this.expected.complete) this.served = true;
    });
    for (let at = 0; at < bytes.length; at += maxWrite) raw.socket.write(bytes.subarray(at, at + maxWrite));
  }

  /** Served, or closed without being served: either way nothing more will happen. */
  get settled(): boolean {
    return this.served || this.raw.isClosed;
  }
}
