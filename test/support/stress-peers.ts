import * as net from 'node:net';
import type { Conn, Report } from './stress-conn';
import type { StressBackend } from './stress-backend';

/** Attaches the peer-side bookkeeping shared by client sockets and echo sockets. */
function watchPeer(conn: Conn, socket: net.Socket, onClosed: () => void): void {
  socket.on('end', () => {
    conn.peerGotEnd = true;
    conn.receivedByPeerAtEnd = conn.toPeer.received;
  });
  socket.on('error', (err: NodeJS.ErrnoException) => {
    conn.peerError ??= err.code ?? err.message;
  });
  socket.on('close', () => {
    conn.peerClosed = true;
    onClosed();
  });
}

const HEADER_MAGIC = 0x52505354; // 'RPST'
export const HEADER_BYTES = 8;

/** The first bytes a dialled connection sends, so the echo server can tell which connection it serves. */
export function dialHeader(index: number): Buffer {
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt32BE(HEADER_MAGIC, 0);
  header.writeUInt32BE(index, 4);
  return header;
}

/**
 * An echo server for the connections the backend dials. Each socket waits
 * for the 8-byte header naming its connection, then echoes every byte back
 * (pausing while its own writes are backed up), and records what it echoed:
 * that is exactly what the backend must receive.
 */
export class EchoServer {
  readonly server: net.Server;
  readonly sockets = new Set<net.Socket>();
  unidentified = 0;
  port = 0;

  constructor(
    private readonly conns: (index: number) => Conn | undefined,
    private readonly report: Report,
    private readonly onPeerClosed: (conn: Conn) => void,
    private readonly onPeerReady: (conn: Conn) => void,
  ) {
    this.server = net.createServer({ noDelay: true }, (socket) => this.adopt(socket));
  }

  async start(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
    return this.port;
  }

  stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private adopt(socket: net.Socket): void {
    this.sockets.add(socket);
    this.unidentified++;
    let early: Buffer[] = [];
    let conn: Conn | undefined;
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.sockets.delete(socket);
      if (conn === undefined) this.unidentified--;
    });
    socket.on('data', (chunk: Buffer) => {
      if (conn === undefined) {
        early.push(chunk);
        const head = Buffer.concat(early);
        if (head.length < HEADER_BYTES) return;
        if (head.readUInt32BE(0) !== HEADER_MAGIC) {
          this.report.fail(`echo server: a dialled connection began with ${head.subarray(0, 8).toString('hex')}, not a header`);
          socket.destroy();
          return;
        }
        const found = this.conns(head.readUInt32BE(4));
        if (found === undefined || found.socket !== undefined) {
          this.report.fail(`echo server: header names connection ${head.readUInt32BE(4)}, unknown or already served`);
          socket.destroy();
          return;
        }
        conn = found;
        this.unidentified--;
        conn.socket = socket;
        watchPeer(conn, socket, () => this.onPeerClosed(found));
        early = [];
        this.echo(conn, socket, head);
        if (conn.pausedBy.size > 0) socket.pause();
        this.onPeerReady(conn);
        return;
      }
      this.echo(conn, socket, chunk);
    });
  }

  private echo(conn: Conn, socket: net.Socket, chunk: Buffer): void {
    conn.toPeer.feed(chunk);
    if (conn.echoStopped || socket.writableEnded || socket.destroyed) return;
    conn.toBackend.push(chunk);
    conn.peerWritten += chunk.length;
    if (!socket.write(chunk)) {
      conn.setPaused('echo', true);
      socket.once('drain', () => conn.setPaused('echo', false));
    }
  }
}

/** Opens the client socket of an accepted connection. */
export function openPeer(sb: StressBackend, conn: Conn, port: number, onReady: () => void, onClosed: () => void): void {
  const socket = net.connect({ host: '127.0.0.1', port, noDelay: true });
  conn.socket = socket;
  socket.on('data', (chunk: Buffer) => conn.toPeer.feed(chunk));
  watchPeer(conn, socket, onClosed);
  socket.once('connect', () => {
    if (conn.pausedBy.size > 0) socket.pause();
    sb.registerPeer(conn, port, socket.localPort!);
    onReady();
  });
}
