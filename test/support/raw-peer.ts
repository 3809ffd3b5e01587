import * as net from 'node:net';
import { FrameDecoder, encodePacket, packetPayload, readPacketId, resolveFraming, type Framing } from '../../src';

export interface RawPacket {
  id: number;
  payload: Buffer;
}

/**
 * A plain `node:net` client that writes hand-made bytes and reads frames,
 * so tests can misbehave in ways the SDK's own client never would.
 */
export class RawPeer {
  readonly socket: net.Socket;
  readonly packets: RawPacket[] = [];
  readonly closed: Promise<void>;
  private readonly framing: Framing;
  private readonly decoder: FrameDecoder;
  private waiters: Array<() => void> = [];

  private constructor(socket: net.Socket, framing: Framing) {
    this.socket = socket;
    this.framing = framing;
    this.decoder = new FrameDecoder(framing);
    socket.on('data', (chunk) => {
      this.decoder.push(chunk, (body) => {
        this.packets.push({ id: readPacketId(body, this.framing), payload: Buffer.from(packetPayload(body)) });
      });
      this.wake();
    });
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => socket.on('close', () => { this.wake(); resolve(); }));
  }

  static connect(port: number, framing: Framing = resolveFraming()): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port, noDelay: true });
      socket.once('connect', () => resolve(new RawPeer(socket, framing)));
      socket.once('error', reject);
    });
  }

  sendPacket(id: number, payload: Uint8Array): void {
    this.socket.write(encodePacket(id, payload, this.framing));
  }

  write(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  /** Resolves once `count` packets have arrived (rejects after `timeoutMs`). */
  async waitForPackets(count: number, timeoutMs = 5000): Promise<RawPacket[]> {
    await this.until(() => this.packets.length >= count, timeoutMs, `${count} packets (have ${this.packets.length})`);
    return this.packets;
  }

  get isClosed(): boolean {
    return this.socket.destroyed;
  }

  async waitClosed(timeoutMs = 5000): Promise<void> {
    await this.until(() => this.socket.destroyed, timeoutMs, 'close');
  }

  destroy(): void {
    this.socket.destroy();
  }

  private until(done: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs);
      const check = () => {
        if (done()) {
          clearTimeout(timer);
          resolve();
        } else this.waiters.push(check);
      };
      this.waiters.push(check);
    });
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}
