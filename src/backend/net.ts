import * as net from 'node:net';
import type {
  Backend,
  BackendEvent,
  BackendOptions,
  BackendStats,
  Listening,
  ListenOptions,
  TransportCloseReason,
  TransportError,
} from './backend';
import { defaultBacklog } from './backlog';
import { watchGracefulClose } from './graceful-close';
import { reusePortRefused, reusePortSupport } from './reuse-port';
import { SlotIds } from './slot-ids';

interface NetConn {
  readonly id: number;
  readonly socket: net.Socket;
  /** Set once `send` reported the high-water mark; cleared by the drain. */
  overHighWater: boolean;
  /** True once this side decided to close: later input is ignored. */
  closing: boolean;
  /** The reason to report when the socket's `close` fires. */
  reason: TransportCloseReason | undefined;
  error: TransportError | undefined;
  /** Writes made since the socket was corked for this tick; 0 while it is not. */
  corkedWrites: number;
  /** False until an outbound dial has completed. */
  connected: boolean;
  readonly onWritten: () => void;
}

/**
 * Writes one writev may carry: node:net hands a corked socket's writes to a
 * single writev (WSASend on Windows), and Wine refuses one of more than 1024
 * buffers with EMSGSIZE. A tick with more writes to one socket (a broadcast
 * naming it thousands of times) goes out in several.
 */
const MAX_CORKED_WRITES = 1024;

function toTransportError(err: NodeJS.ErrnoException): TransportError {
  return { code: err.code ?? 'EIO', message: err.message };
}

/**
 * Resets a socket, or closes it where a reset cannot work. Once node:net has
 * flushed its queue after end() it issues the FIN (a libuv shutdown), and
 * until that completes libuv refuses a reset (EINVAL): node then reports an
 * error and never closes the handle, so no `close` follows and the process
 * cannot exit. Nothing is queued in node:net then, and our FIN is on its way:
 * a plain close ends the connection just as well.
 */
function reset(socket: net.Socket): void {
  if (socket.writableEnded && socket.writableLength === 0 && !socket.writableFinished) socket.destroy();
  else socket.resetAndDestroy();
}

/** The pure `node:net` backend: the reference every native backend must agree with. */
export class NetBackend implements Backend {
  readonly kind = 'net' as const;

  private readonly options: BackendOptions;
  private readonly conns = new Map<number, NetConn>();
  private readonly listeners = new Map<number, net.Server>();
  private readonly ids = new SlotIds();
  private nextRefusedId = -1;
  private nextListenerId = 1;

  private pending: BackendEvent[] = [];
  private flushScheduled = false;
  private corkedConns: NetConn[] = [];
  private uncorkScheduled = false;

  private bytesIn = 0;
  private bytesOut = 0;
  private reads = 0;
  private sends = 0;
  private batches = 0;
  private submits = 0;
  private stalledCloses = 0;

  constructor(options: BackendOptions) {
    this.options = options;
  }

  listen(options: ListenOptions): Promise<Listening> {
    if (options.reusePort === true && !reusePortSupport('net').supported) return Promise.reject(reusePortRefused('net'));
    const listenerId = this.nextListenerId++;
    const server = net.createServer({ noDelay: true, allowHalfOpen: false });
    server.on('connection', (socket) => this.adopt(listenerId, socket));
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      const { host, port, backlog = defaultBacklog(), reusePort } = options;
      // `reusePort` is only passed on where node:net knows it (see reuse-port.ts).
      server.listen({ host, port, backlog, ...(reusePort === true ? { reusePort } : {}) }, () => {
        server.off('error', reject);
        // A listener error after bind (EMFILE is retried by libuv itself) must not crash the process.
        server.on('error', () => undefined);
        this.listeners.set(listenerId, server);
        const address = server.address() as net.AddressInfo;
        resolve({ listenerId, host: address.address, port: address.port });
      });
    });
  }

  connect(host: string, port: number): number {
    const id = this.ids.take();
    if (id < 0) {
      // No slot left: report the dial as failed, as a native backend reports one it cannot start.
      const refusedId = this.nextRefusedId--;
      const error = { code: 'EMFILE', message: 'every connection slot is in use' };
      this.push({ type: 'connect', connId: refusedId, remoteAddress: host, remotePort: port, error });
      return refusedId;
    }
    const socket = net.connect({ host, port, noDelay: true, allowHalfOpen: false });
    const conn = this.track(id, socket, false);
    socket.once('connect', () => {
      conn.connected = true;
      this.push({
        type: 'connect',
        connId: conn.id,
        remoteAddress: socket.remoteAddress ?? host,
        remotePort: socket.remotePort ?? port,
      });
    });
    return conn.id;
  }

  send(connId: number, bytes: Uint8Array): boolean {
    const conn = this.sendable(connId);
    return conn !== undefined && this.write(conn, bytes);
  }

  sendText(connId: number, latin1: string): boolean {
    const conn = this.sendable(connId);
    return conn !== undefined && this.write(conn, latin1);
  }

  sendMany(connIds: ArrayLike<number>, bytes: Uint8Array, count = connIds.length): void {
    for (let i = 0; i < count; i++) {
      const conn = this.sendable(connIds[i]);
      if (conn !== undefined) this.write(conn, bytes);
    }
  }

  bufferedAmount(connId: number): number {
    return this.conns.get(connId)?.socket.writableLength ?? 0;
  }

  close(connId: number, mode: 'graceful' | 'abort'): void {
    const conn = this.conns.get(connId);
    if (conn === undefined) return;
    if (conn.closing) {
      // An abort may cut short a graceful close that is still flushing (a drain deadline).
      if (mode === 'abort' && conn.connected && !conn.socket.destroyed) reset(conn.socket);
      return;
    }
    this.beginClose(conn, 'local');
    if (!conn.connected) {
      conn.socket.destroy();
      return;
    }
    if (mode === 'abort') {
      reset(conn.socket);
      return;
    }
    conn.socket.end();
    // node:net shows only its own queue, not the kernel's.
    watchGracefulClose(
      () => (conn.socket.destroyed ? undefined : { bytes: conn.socket.writableLength, kernelCounted: false }),
      () => {
        this.stalledCloses++;
        reset(conn.socket);
      },
    );
  }

  closeListener(listenerId: number): void {
    const server = this.listeners.get(listenerId);
    if (server === undefined) return;
    this.listeners.delete(listenerId);
    server.close();
  }

  stats(): BackendStats {
    let queuedBytes = 0;
    for (const conn of this.conns.values()) queuedBytes += conn.socket.writableLength;
    return {
      connections: this.conns.size,
      listeners: this.listeners.size,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      reads: this.reads,
      sends: this.sends,
      queuedBytes,
      batches: this.batches,
      submits: this.submits,
      // node's event loop waits for these sockets, and says nothing of its wake-ups.
      wakeups: 0,
      completions: 0,
      stalledCloses: this.stalledCloses,
      // node:net reads into memory it takes per read, and holds the queued buffers themselves.
      recvBuffers: 0,
      sendBufferBytes: queuedBytes,
      recvBufferShortages: 0,
      relayedPackets: 0,
    };
  }

  async shutdown(): Promise<void> {
    const closing = [...this.listeners.values()].map(
      (server) => new Promise<void>((resolve) => server.close(() => resolve())),
    );
    this.listeners.clear();
    for (const conn of this.conns.values()) this.close(conn.id, 'abort');
    await Promise.all(closing);
  }

  private adopt(listenerId: number, socket: net.Socket): void {
    const id = this.ids.take();
    if (id < 0) {
      socket.destroy();
      return;
    }
    const conn = this.track(id, socket, true);
    this.push({
      type: 'accept',
      listenerId,
      connId: conn.id,
      remoteAddress: socket.remoteAddress ?? '',
      remotePort: socket.remotePort ?? 0,
    });
  }

  private track(id: number, socket: net.Socket, connected: boolean): NetConn {
    const conn: NetConn = {
      id,
      socket,
      overHighWater: false,
      closing: false,
      reason: undefined,
      error: undefined,
      corkedWrites: 0,
      connected,
      onWritten: () => {
        if (conn.overHighWater && socket.writableLength <= this.options.lowWaterMarkBytes) {
          conn.overHighWater = false;
          if (!conn.closing) this.push({ type: 'drain', connId: id });
        }
      },
    };
    this.conns.set(id, conn);
    socket.on('data', (bytes: Buffer) => {
      if (conn.closing) return;
      this.bytesIn += bytes.length;
      this.reads++;
      this.push({ type: 'data', connId: id, bytes });
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (conn.reason === undefined) {
        conn.reason = 'error';
        conn.error = toTransportError(err);
      }
    });
    socket.on('end', () => {
      if (conn.reason === undefined) conn.reason = 'peer';
    });
    socket.on('close', () => {
      this.conns.delete(id);
      // The close event below is pushed before any event of a connection that reuses the slot.
      this.ids.release(id);
      if (!conn.connected && conn.reason !== 'local') {
        // A dial that never completed reports its failure once, as the connect outcome.
        this.push({
          type: 'connect',
          connId: id,
          remoteAddress: socket.remoteAddress ?? '',
          remotePort: socket.remotePort ?? 0,
          error: conn.error ?? { code: 'ECONNABORTED', message: 'connection closed before it was established' },
        });
        return;
      }
      this.push({ type: 'close', connId: id, reason: conn.reason ?? 'peer', error: conn.error });
    });
    return conn;
  }

  private beginClose(conn: NetConn, reason: TransportCloseReason): void {
    conn.closing = true;
    conn.reason = reason;
  }

  /** The connection `connId` names if it may be sent to now: open, connected, not closing. */
  private sendable(connId: number): NetConn | undefined {
    const conn = this.conns.get(connId);
    return conn === undefined || conn.closing || !conn.connected ? undefined : conn;
  }

  /** `bytes` as a string: latin1, one byte per character, so its length is its byte count. */
  private write(conn: NetConn, bytes: Uint8Array | string): boolean {
    const queued = conn.socket.writableLength + bytes.length;
    if (queued > this.options.maxQueueBytes) {
      this.beginClose(conn, 'backpressure');
      reset(conn.socket);
      return false;
    }
    if (conn.corkedWrites === 0) {
      // Cork until the end of this tick so a burst of packets leaves in one writev.
      conn.socket.cork();
      this.corkedConns.push(conn);
      if (!this.uncorkScheduled) {
        this.uncorkScheduled = true;
        process.nextTick(this.uncorkAll);
      }
    } else if (conn.corkedWrites % MAX_CORKED_WRITES === 0) {
      this.submits++;
      conn.socket.uncork();
      conn.socket.cork();
    }
    conn.corkedWrites++;
    this.sends++;
    this.bytesOut += bytes.length;
    if (queued > this.options.highWaterMarkBytes) conn.overHighWater = true;
    if (conn.overHighWater) {
      conn.socket.write(bytes, 'latin1', conn.onWritten);
      return false;
    }
    conn.socket.write(bytes, 'latin1');
    return true;
  }

  private readonly uncorkAll = (): void => {
    this.uncorkScheduled = false;
    const conns = this.corkedConns;
    this.corkedConns = [];
    for (const conn of conns) {
      conn.corkedWrites = 0;
      if (!conn.socket.destroyed) {
        this.submits++;
        conn.socket.uncork();
      }
    }
  };

  private push(event: BackendEvent): void {
    this.pending.push(event);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      // setImmediate runs right after the poll phase, so everything libuv
      // reported in this wake-up reaches JS as one batch.
      setImmediate(this.flush);
    }
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    const batch = this.pending;
    this.pending = [];
    this.batches++;
    this.options.onEvents(batch);
  };
}
