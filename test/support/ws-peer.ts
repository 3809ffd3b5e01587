import { createHash, randomBytes } from 'node:crypto';
import * as net from 'node:net';

/** RFC 6455 section 5.2 opcodes. */
export const OP = { CONT: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa } as const;

/** The accept key a server must answer `key` with (section 4.2.2), computed here independently of src/. */
export function expectedAccept(key: string): string {
  return createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
}

export interface FrameSpec {
  opcode: number;
  payload?: Uint8Array;
  /** Default true. */
  fin?: boolean;
  /** The three reserved bits as a number 0..7 (RSV1 = 4, RSV2 = 2, RSV3 = 1). */
  rsv?: number;
  /** The mask key; `false` sends the frame unmasked (a protocol error from a client). Default: a random key. */
  mask?: Buffer | false;
  /** A length to declare instead of the payload's (with `headerOnly`, for lengths never sent). */
  declaredLength?: bigint | number;
}

/**
 * The header of a frame (first two bytes, extended length, mask key), built
 * by hand so that tests can also build broken ones. The length form is the
 * shortest that fits, as section 5.2 asks.
 */
export function frameHeader(spec: FrameSpec & { length: bigint | number }): Buffer {
  const length = BigInt(spec.length);
  const fin = spec.fin ?? true;
  const b0 = (fin ? 0x80 : 0) | ((spec.rsv ?? 0) << 4) | spec.opcode;
  const mask = spec.mask === false ? undefined : spec.mask;
  const maskBit = mask === undefined ? 0 : 0x80;
  let head: Buffer;
  if (length < 126n) {
    head = Buffer.from([b0, maskBit | Number(length)]);
  } else if (length <= 0xffffn) {
    head = Buffer.alloc(4);
    head[0] = b0;
    head[1] = maskBit | 126;
    head.writeUInt16BE(Number(length), 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = b0;
    head[1] = maskBit | 127;
    head.writeBigUInt64BE(length, 2);
  }
  return mask === undefined ? head : Buffer.concat([head, mask]);
}

/** XORs `data` with `key` from key byte `phase` (section 5.3), into a new buffer. */
export function masked(data: Uint8Array, key: Buffer, phase = 0): Buffer {
  const out = Buffer.from(data);
  for (let i = 0; i < out.length; i++) out[i] ^= key[(i + phase) & 3];
  return out;
}

/** A whole frame: header, then the payload masked with the header's key. */
export function buildFrame(spec: FrameSpec): Buffer {
  const payload = Buffer.from(spec.payload ?? Buffer.alloc(0));
  const mask = spec.mask === false ? false : (spec.mask ?? randomBytes(4));
  const head = frameHeader({ ...spec, mask, length: spec.declaredLength ?? payload.length });
  return Buffer.concat([head, mask === false ? payload : masked(payload, mask)]);
}

/** A binary message's body as ringport reads it: u16 packet id (little-endian by default), then the payload. */
export function packetBody(packetId: number, payload: Uint8Array, byteOrder: 'le' | 'be' = 'le'): Buffer {
  const body = Buffer.alloc(2 + payload.length);
  if (byteOrder === 'le') body.writeUInt16LE(packetId, 0);
  else body.writeUInt16BE(packetId, 0);
  Buffer.from(payload).copy(body, 2);
  return body;
}

/** A close frame's payload: a code (or none) and a reason. */
export function closeBody(code?: number, reason: string | Buffer = ''): Buffer {
  if (code === undefined) return Buffer.alloc(0);
  const text = typeof reason === 'string' ? Buffer.from(reason, 'utf8') : reason;
  const body = Buffer.alloc(2 + text.length);
  body.writeUInt16BE(code, 0);
  text.copy(body, 2);
  return body;
}

export interface WsFrame {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  /** How the length was sent: 7, 16 or 64 bits. */
  lengthBits: 7 | 16 | 64;
  payload: Buffer;
}

/** Reads frames from a byte stream split anywhere; unmasks masked ones. */
export class FrameReader {
  private pending: Buffer = Buffer.alloc(0);

  constructor(private readonly onFrame: (frame: WsFrame) => void) {}

  push(chunk: Buffer): void {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    for (;;) {
      const p = this.pending;
      if (p.length < 2) return;
      const short = p[1] & 0x7f;
      const isMasked = (p[1] & 0x80) !== 0;
      let at = 2;
      let length: number;
      let lengthBits: 7 | 16 | 64 = 7;
      if (short === 126) {
        if (p.length < 4) return;
        length = p.readUInt16BE(2);
        at = 4;
        lengthBits = 16;
      } else if (short === 127) {
        if (p.length < 10) return;
        length = Number(p.readBigUInt64BE(2));
        at = 10;
        lengthBits = 64;
      } else {
        length = short;
      }
      const keyAt = at;
      if (isMasked) at += 4;
      if (p.length < at + length) return;
      let payload: Buffer = Buffer.from(p.subarray(at, at + length));
      if (isMasked) payload = masked(payload, p.subarray(keyAt, keyAt + 4));
      this.pending = p.subarray(at + length);
      this.onFrame({ fin: (p[0] & 0x80) !== 0, rsv: (p[0] >> 4) & 7, opcode: p[0] & 0x0f, masked: isMasked, lengthBits, payload });
    }
  }
}

export interface HandshakeOptions {
  /** Default `/play`. */
  path?: string;
  method?: string;
  httpVersion?: string;
  /** Replaces the default fields; a field set to `undefined` is left out. Names as written. */
  headers?: Record<string, string | undefined>;
  /** Bytes written in the same write, right behind the request (frames sent before the answer). */
  trailing?: Buffer;
}

export interface HttpResponse {
  status: number;
  /** Lower-cased names. */
  headers: Record<string, string>;
  body: string;
}

/** Polls `condition` every few milliseconds until it holds; fails with `what` after `timeoutMs`. */
async function until(condition: () => boolean, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Generous: a loaded CI machine, or Wine, is several times slower than a quiet one. */
const DEADLINE_MS = 30_000;

/**
 * A WebSocket client over a plain `node:net` socket, written by hand so that
 * tests control every byte: the opening handshake (any field left out or
 * wrong), frames built one by one (unmasked, reserved bits, bad opcodes,
 * split anywhere), and a reader that records every frame the server sends.
 */
export class WsPeer {
  readonly socket: net.Socket;
  /** The socket's local port, kept: a closed socket forgets it. The server's session has it as `remotePort`. */
  readonly localPort: number;
  /** Every frame received after the handshake, in order. */
  readonly frames: WsFrame[] = [];
  /** The answer to the opening handshake, once it has arrived. */
  response: HttpResponse | undefined;
  /** The key this peer's handshake sent. */
  key = '';
  /** Whether the server ended the TCP stream (FIN or reset). */
  ended = false;
  /** Answer pings with pongs, as a browser does. */
  answerPings = false;
  private head: Buffer = Buffer.alloc(0);
  private readonly reader = new FrameReader((frame) => this.onFrame(frame));
  private readonly frameListeners: Array<(frame: WsFrame) => void> = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    this.localPort = socket.localPort!;
    socket.on('data', (chunk) => this.onData(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => (this.ended = true));
    socket.on('end', () => (this.ended = true));
  }

  /**
   * A TCP connection, nothing sent yet. With `allowHalfOpen`, the peer keeps
   * its side open after the server's FIN, as a peer that never answers would.
   */
  static open(port: number, host = '127.0.0.1', allowHalfOpen = false): Promise<WsPeer> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port, noDelay: true, allowHalfOpen });
      socket.once('connect', () => resolve(new WsPeer(socket)));
      socket.once('error', reject);
    });
  }

  /** Opens a connection and completes the handshake; throws when the server does not answer 101. */
  static async connect(port: number, options: HandshakeOptions = {}): Promise<WsPeer> {
    const peer = await WsPeer.open(port);
    const response = await peer.handshake(options);
    if (response.status !== 101) {
      peer.destroy();
      throw new Error(`handshake refused: ${response.status} ${response.body}`);
    }
    return peer;
  }

  /** The opening handshake's bytes: a valid request unless `options` say otherwise. */
  request(options: HandshakeOptions = {}): Buffer {
    this.key = randomBytes(16).toString('base64');
    const fields: Record<string, string | undefined> = {
      Host: `127.0.0.1:${this.socket.remotePort}`,
      Upgrade: 'websocket',
      Connection: 'Upgrade',
      'Sec-WebSocket-Key': this.key,
      'Sec-WebSocket-Version': '13',
      ...options.headers,
    };
    if (options.headers?.['Sec-WebSocket-Key'] !== undefined) this.key = options.headers['Sec-WebSocket-Key'];
    let text = `${options.method ?? 'GET'} ${options.path ?? '/play'} ${options.httpVersion ?? 'HTTP/1.1'}\r\n`;
    for (const [name, value] of Object.entries(fields)) if (value !== undefined) text += `${name}: ${value}\r\n`;
    return Buffer.concat([Buffer.from(`${text}\r\n`, 'latin1'), options.trailing ?? Buffer.alloc(0)]);
  }

  /** Sends the opening handshake and resolves with the answer (for a refusal: once its body is in, or the connection ends). */
  async handshake(options: HandshakeOptions = {}): Promise<HttpResponse> {
    this.socket.write(this.request(options));
    return this.waitResponse();
  }

  async waitResponse(timeoutMs = DEADLINE_MS): Promise<HttpResponse> {
    await until(() => this.response !== undefined || this.ended, 'the handshake answer', timeoutMs);
    if (this.response === undefined) throw new Error('the connection ended without an answer to the handshake');
    const response = this.response;
    if (response.status !== 101) {
      const length = Number(response.headers['content-length'] ?? 0);
      await until(() => Buffer.byteLength(response.body) >= length || this.ended, 'the refusal body', timeoutMs);
    }
    return response;
  }

  write(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  /** Writes bytes and resolves once they are handed to the kernel. */
  flush(bytes: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(bytes, (err) => (err ? reject(err) : resolve())));
  }

  /** Sends one frame (masked with a fresh key unless the spec says otherwise). */
  send(spec: FrameSpec): void {
    this.write(buildFrame(spec));
  }

  /** One binary message carrying one packet. */
  sendPacket(packetId: number, payload: Uint8Array): void {
    this.send({ opcode: OP.BINARY, payload: packetBody(packetId, payload) });
  }

  sendClose(code?: number, reason: string | Buffer = ''): void {
    this.send({ opcode: OP.CLOSE, payload: closeBody(code, reason) });
  }

  /** Data frames (binary) received, as packets: u16 LE id and payload. */
  get packets(): Array<{ id: number; payload: Buffer }> {
    return this.frames
      .filter((f) => f.opcode === OP.BINARY)
      .map((f) => ({ id: f.payload.readUInt16LE(0), payload: f.payload.subarray(2) }));
  }

  /** The server's close frame, once it has arrived: its code (1005 when empty) and reason. */
  get closeFrame(): { code: number; reason: string } | undefined {
    const frame = this.frames.find((f) => f.opcode === OP.CLOSE);
    if (frame === undefined) return undefined;
    if (frame.payload.length < 2) return { code: 1005, reason: '' };
    return { code: frame.payload.readUInt16BE(0), reason: frame.payload.toString('utf8', 2) };
  }

  count(opcode: number): number {
    return this.frames.filter((f) => f.opcode === opcode).length;
  }

  async waitFrames(count: number, opcode?: number, timeoutMs = DEADLINE_MS): Promise<WsFrame[]> {
    const matching = () => this.frames.filter((f) => opcode === undefined || f.opcode === opcode);
    await until(() => matching().length >= count, `${count} frames (have ${matching().length})`, timeoutMs);
    return matching();
  }

  async waitPackets(count: number, timeoutMs = DEADLINE_MS): Promise<Array<{ id: number; payload: Buffer }>> {
    await until(() => this.count(OP.BINARY) >= count, `${count} packets (have ${this.count(OP.BINARY)})`, timeoutMs);
    return this.packets;
  }

  /** Waits for the server's close frame. */
  async waitCloseFrame(timeoutMs = DEADLINE_MS): Promise<{ code: number; reason: string }> {
    await until(() => this.closeFrame !== undefined || this.ended, 'a close frame', timeoutMs);
    // Bytes already read are all in `frames` by the time the stream ends.
    if (this.closeFrame === undefined) throw new Error('the connection ended without a close frame');
    return this.closeFrame;
  }

  /** Waits for the server to end the TCP connection. */
  async waitEnded(timeoutMs = DEADLINE_MS): Promise<void> {
    await until(() => this.ended, 'the server to end the connection', timeoutMs);
  }

  onFrameReceived(listener: (frame: WsFrame) => void): void {
    this.frameListeners.push(listener);
  }

  destroy(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    if (this.response?.status === 101) {
      this.reader.push(chunk);
      return;
    }
    if (this.response !== undefined) {
      this.response.body += chunk.toString('utf8');
      return;
    }
    this.head = Buffer.concat([this.head, chunk]);
    const end = this.head.indexOf('\r\n\r\n');
    if (end < 0) return;
    const lines = this.head.subarray(0, end).toString('latin1').split('\r\n');
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(lines[0])?.[1] ?? 0);
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
    }
    const rest = this.head.subarray(end + 4);
    this.response = { status, headers, body: '' };
    if (status === 101) {
      if (rest.length > 0) this.reader.push(rest);
    } else {
      this.response.body = rest.toString('utf8');
    }
  }

  private onFrame(frame: WsFrame): void {
    this.frames.push(frame);
    if (this.answerPings && frame.opcode === OP.PING && !this.socket.destroyed) {
      this.send({ opcode: OP.PONG, payload: frame.payload });
    }
    for (const listener of this.frameListeners) listener(frame);
  }
}
