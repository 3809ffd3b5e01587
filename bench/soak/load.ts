import * as net from 'node:net';
import { encodeFrame, HEADER_BYTES } from '../wire';
import { SoakPackets as P } from './protocol';

/**
 * The soak's load, in plain node:net (like every bench load generator, so it
 * cannot inherit ringport's bugs): echo clients, receivers of the ticker's
 * broadcast, the ticker, and connection churn. Everything it receives is
 * checked; what is wrong goes to `errors`, and the soak fails on any.
 */

export interface Counters {
  echoes: number;
  ticks: number;
  cycles: number;
}

/** Splits a byte stream into (packet id, payload) frames; keeps only an unfinished frame between chunks. */
class FrameReader {
  private pending = Buffer.alloc(0);

  constructor(private readonly onFrame: (id: number, payload: Buffer) => void) {}

  feed(chunk: Buffer): void {
    const buffer = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    let at = 0;
    while (buffer.length - at >= HEADER_BYTES) {
      const length = buffer.readUInt32LE(at);
      if (buffer.length - at - 4 < length) break;
      this.onFrame(buffer.readUInt16LE(at + 4), buffer.subarray(at + HEADER_BYTES, at + 4 + length));
      at += 4 + length;
    }
    this.pending = at === buffer.length ? Buffer.alloc(0) : Buffer.from(buffer.subarray(at));
  }
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, noDelay: true });
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** A small seeded PRNG (mulberry32), so a soak's traffic is the same run to run. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    let t = (state = (state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class SoakLoad {
  readonly errors: string[] = [];
  readonly counters: Counters = { echoes: 0, ticks: 0, cycles: 0 };
  private stopping = false;
  private readonly sockets = new Set<net.Socket>();
  private readonly running: Promise<void>[] = [];
  private tickTimer: NodeJS.Timeout | undefined;
  private keepAliveTimer: NodeJS.Timeout | undefined;
  private readonly receiverSockets: net.Socket[] = [];
  private readonly random = prng(0x50a4);

  constructor(
    private readonly port: number,
    private readonly options: { echoClients: number; receivers: number; churn: number; tickMs: number },
  ) {}

  async start(): Promise<void> {
    for (let i = 0; i < this.options.echoClients; i++) await this.startEcho(i);
    for (let i = 0; i < this.options.receivers; i++) await this.startReceiver(i);
    await this.startTicker();
    // Receivers only listen; a ping every 5 s keeps them inside the server's idle timeout (30 s).
    this.keepAliveTimer = setInterval(() => {
      for (const socket of this.receiverSockets) socket.write(encodeFrame(P.ECHO, Buffer.alloc(4)));
    }, 5000);
    for (let i = 0; i < this.options.churn; i++) this.running.push(this.churnLoop(i));
  }

  /** Stops sending, waits for the churn loops, and closes every connection. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.tickTimer);
    clearInterval(this.keepAliveTimer);
    await Promise.all(this.running);
    await Promise.all(
      [...this.sockets].map(
        (socket) =>
          new Promise<void>((resolve) => {
            socket.once('close', () => resolve());
            socket.end();
          }),
      ),
    );
  }

  private fail(message: string): void {
    if (this.errors.length < 50) this.errors.push(message);
  }

  private keep(socket: net.Socket, name: string): void {
    this.sockets.add(socket);
    socket.on('error', (err: NodeJS.ErrnoException) => this.fail(`${name}: ${err.code ?? err.message}`));
    socket.on('close', () => {
      this.sockets.delete(socket);
      if (!this.stopping) this.fail(`${name}: the server closed a long-lived connection`);
    });
  }

  /** Ping-pong with up to 4 frames in flight; each echo must equal what was sent, in order. */
  private async startEcho(index: number): Promise<void> {
    const socket = await connect(this.port);
    const name = `echo client ${index}`;
    this.keep(socket, name);
    const inFlight: Buffer[] = [];
    const sendOne = () => {
      const payload = Buffer.alloc(16 + Math.floor(this.random() * 4080), index & 0xff);
      payload.writeUInt32LE(Math.floor(this.random() * 0xffffffff), 0);
      inFlight.push(payload);
      socket.write(encodeFrame(P.ECHO, payload));
    };
    const reader = new FrameReader((id, payload) => {
      const want = inFlight.shift();
      if (id !== P.ECHO || want === undefined || !want.equals(payload)) this.fail(`${name}: a wrong echo (id ${id}, ${payload.length} bytes)`);
      this.counters.echoes++;
      if (!this.stopping) sendOne();
    });
    socket.on('data', (chunk: Buffer) => reader.feed(chunk));
    for (let i = 0; i < 4; i++) sendOne();
  }

  /** Joins the tick room; the ticks must come numbered 0, 1, 2, ... with nothing missing. */
  private async startReceiver(index: number): Promise<void> {
    const socket = await connect(this.port);
    const name = `receiver ${index}`;
    this.keep(socket, name);
    let next = -1;
    this.receiverSockets.push(socket);
    const reader = new FrameReader((id, payload) => {
      if (id === P.ECHO) return; // the answer to its keep-alive ping
      const seq = payload.readUInt32LE(0);
      // The first tick a receiver sees depends on when its JOIN landed; from then on there is no gap.
      if (id !== P.TICK || (next >= 0 && seq !== next)) this.fail(`${name}: tick ${seq} where ${next} was due`);
      next = seq + 1;
      this.counters.ticks++;
    });
    socket.on('data', (chunk: Buffer) => reader.feed(chunk));
    socket.write(encodeFrame(P.JOIN, Buffer.alloc(0)));
  }

  /** A game loop's tick: one packet every `tickMs`, relayed by the server to every receiver. */
  private async startTicker(): Promise<void> {
    const socket = await connect(this.port);
    this.keep(socket, 'ticker');
    let seq = 0;
    const payload = Buffer.alloc(256, 0x74);
    this.tickTimer = setInterval(() => {
      payload.writeUInt32LE(seq++, 0);
      socket.write(encodeFrame(P.TICK, payload));
    }, this.options.tickMs);
  }

  /** Connect, echo once, then close one of three ways: FIN, reset, or FIN in the middle of a frame. */
  private async churnLoop(index: number): Promise<void> {
    while (!this.stopping) {
      let socket: net.Socket;
      try {
        socket = await connect(this.port);
      } catch (err) {
        this.fail(`churn ${index}: connect failed: ${(err as NodeJS.ErrnoException).code}`);
        return;
      }
      socket.on('error', () => undefined);
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      const payload = Buffer.alloc(1 + Math.floor(this.random() * 512), 0x63);
      const echoed = new Promise<boolean>((resolve) => {
        const reader = new FrameReader((id, got) => resolve(id === P.ECHO && got.equals(payload)));
        socket.on('data', (chunk: Buffer) => reader.feed(chunk));
        void closed.then(() => resolve(false));
      });
      socket.write(encodeFrame(P.ECHO, payload));
      if (!(await echoed)) this.fail(`churn ${index}: no echo`);
      const how = this.random();
      if (how < 0.4) socket.end();
      else if (how < 0.7) socket.resetAndDestroy();
      else {
        socket.write(encodeFrame(P.ECHO, payload).subarray(0, 5));
        socket.end();
      }
      await closed;
      this.counters.cycles++;
    }
  }
}
