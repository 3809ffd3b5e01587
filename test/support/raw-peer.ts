import { randomBytes } from 'node:crypto';
import * as net from 'node:net';
import { FrameDecoder, encodePacket, packetPayload, readPacketId, resolveFraming, type Framing } from '../../src';
import type { ProtocolName } from '../../src/protocol';
import { WS_PATH } from './backends';
import { buildFrame, FrameReader, frameHeader, OP, type WsFrame } from './ws-peer';

export interface RawPacket {
  id: number;
  payload: Buffer;
}

export interface RawPeerOptions {
  framing?: Framing;
  /** `websocket`: the peer does the opening handshake at `path`, then sends each packet as one masked binary message. */
  protocol?: ProtocolName;
  /** Default `WS_PATH`. */
  path?: string;
}

/**
 * A plain `node:net` client that writes hand-made bytes and reads packets,
 * so tests can misbehave in ways the SDK's own client never would. It
 * speaks framed TCP, or WebSocket: then it completes the handshake before
 * `connect` resolves, sends each packet as one masked binary message whose
 * body is the packet's (id, then payload), answers pings as a browser
 * would, and reads the server's binary messages as packets.
 */
export class RawPeer {
  readonly socket: net.Socket;
  readonly packets: RawPacket[] = [];
  readonly closed: Promise<void>;
  readonly protocol: ProtocolName;
  /** The server's WebSocket close frame, once it has arrived (code 1005 when it has none). */
  closeFrame: { code: number; reason: string } | undefined;
  private readonly framing: Framing;
  private readonly decoder: FrameDecoder;
  private readonly reader: FrameReader;
  private waiters: Array<() => void> = [];

  private constructor(socket: net.Socket, framing: Framing, protocol: ProtocolName) {
    this.socket = socket;
    this.framing = framing;
    this.protocol = protocol;
    this.decoder = new FrameDecoder(framing);
    this.reader = new FrameReader((frame) => this.onFrame(frame));
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => socket.on('close', () => { this.wake(); resolve(); }));
  }

  /** Dials `port`; the second argument is the framing (as before) or the options. */
  static connect(port: number, options: Framing | RawPeerOptions = {}): Promise<RawPeer> {
    const { framing = resolveFraming(), protocol = 'framed', path = WS_PATH } = 'lengthBytes' in options ? { framing: options } : options;
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port, noDelay: true });
      socket.once('error', reject);
      socket.once('connect', () => {
        const peer = new RawPeer(socket, framing, protocol);
        if (protocol === 'framed') {
          socket.on('data', (chunk) => peer.onFramed(chunk));
          resolve(peer);
          return;
        }
        peer.handshake(path).then(() => resolve(peer), reject);
      });
    });
  }

  sendPacket(id: number, payload: Uint8Array): void {
    if (this.protocol === 'framed') {
      this.socket.write(encodePacket(id, payload, this.framing));
      return;
    }
    this.socket.write(buildFrame({ opcode: OP.BINARY, payload: this.body(id, payload) }));
  }

  /** Sends one message whose body is exactly `body` (which may be shorter than a packet id). */
  sendBody(body: Uint8Array): void {
    if (this.protocol === 'framed') this.socket.write(Buffer.concat([this.lengthPrefix(body.length), body]));
    else this.socket.write(buildFrame({ opcode: OP.BINARY, payload: body }));
  }

  /**
   * The bytes that start a message of `bodyLength` body bytes, after which
   * the body goes out as it is: a framed length prefix, or a WebSocket
   * header whose mask key is all zeros (so masking leaves the body as sent).
   */
  messageHeader(bodyLength: number): Buffer {
    if (this.protocol === 'framed') return this.lengthPrefix(bodyLength);
    return frameHeader({ opcode: OP.BINARY, length: bodyLength, mask: Buffer.alloc(4) });
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

  private body(id: number, payload: Uint8Array): Buffer {
    const body = Buffer.alloc(2 + payload.length);
    if (this.framing.byteOrder === 'le') body.writeUInt16LE(id, 0);
    else body.writeUInt16BE(id, 0);
    body.set(payload, 2);
    return body;
  }

  private lengthPrefix(length: number): Buffer {
    const prefix = Buffer.alloc(this.framing.lengthBytes);
    if (this.framing.lengthBytes === 2) {
      if (this.framing.byteOrder === 'le') prefix.writeUInt16LE(length, 0);
      else prefix.writeUInt16BE(length, 0);
    } else if (this.framing.byteOrder === 'le') prefix.writeUInt32LE(length, 0);
    else prefix.writeUInt32BE(length, 0);
    return prefix;
  }

  private onFramed(chunk: Buffer): void {
    this.decoder.push(chunk, (body) => {
      this.packets.push({ id: readPacketId(body, this.framing), payload: Buffer.from(packetPayload(body)) });
    });
    this.wake();
  }

  /** The opening handshake; frames that come right behind the 101 are kept. */
  private handshake(path: string): Promise<void> {
    const key = randomBytes(16).toString('base64');
    this.socket.write(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${this.socket.remotePort}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    return new Promise((resolve, reject) => {
      let head = Buffer.alloc(0);
      const onHead = (chunk: Buffer) => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        this.socket.off('data', onHead);
        this.socket.off('close', onClose);
        const status = head.subarray(0, end).toString('latin1').split('\r\n')[0];
        if (!/^HTTP\/1\.1 101 /.test(status)) {
          reject(new Error(`WebSocket handshake refused: ${status}`));
          return;
        }
        this.socket.on('data', (data) => {
          this.reader.push(data);
          this.wake();
        });
        const rest = head.subarray(end + 4);
        if (rest.length > 0) this.reader.push(rest);
        resolve();
      };
      const onClose = () => reject(new Error('the connection closed during the WebSocket handshake'));
      this.socket.on('data', onHead);
      this.socket.once('close', onClose);
    });
  }

  private onFrame(frame: WsFrame): void {
    if (frame.opcode === OP.BINARY) {
      const id = this.framing.byteOrder === 'le' ? frame.payload.readUInt16LE(0) : frame.payload.readUInt16BE(0);
      this.packets.push({ id, payload: frame.payload.subarray(2) });
    } else if (frame.opcode === OP.PING && !this.socket.destroyed) {
      this.socket.write(buildFrame({ opcode: OP.PONG, payload: frame.payload }));
    } else if (frame.opcode === OP.CLOSE) {
      this.closeFrame = frame.payload.length < 2 ? { code: 1005, reason: '' } : { code: frame.payload.readUInt16BE(0), reason: frame.payload.toString('utf8', 2) };
    }
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
