import { randomBytes } from 'node:crypto';
import * as net from 'node:net';

/** Generous: a loaded CI machine, or Wine, is several times slower than a quiet one. */
export const DEADLINE_MS = 30_000;

/** One response as it came off the wire. */
export interface RawResponse {
  version: string;
  status: number;
  reason: string;
  /** Lower-cased names; a repeated field's values joined with ", ". */
  headers: Record<string, string>;
  /** The body, de-chunked when it came chunked. */
  body: Buffer;
  /** Lower-cased names, for a chunked response that had trailers. */
  trailers: Record<string, string>;
  /** Whether the body ran to the end of the connection (no length, not chunked). */
  closeDelimited: boolean;
}

const HEAD_END = Buffer.from('\r\n\r\n');

/**
 * Reads HTTP/1.1 responses from a byte stream split anywhere, written here
 * independently of src/: status line and fields, then a body framed by
 * Content-Length, by chunked coding, or by the end of the connection. 1xx
 * responses are interim (101 hands the rest of the stream over: `upgraded`);
 * 204, 304 and the answers to HEAD requests (`bodiless`) have no body.
 * Anything that does not parse stops the reader and is kept in `error`.
 */
export class ResponseReader {
  readonly responses: RawResponse[] = [];
  readonly interim: RawResponse[] = [];
  /** Bytes after a 101, as they came. */
  upgraded: Buffer | undefined;
  error: string | undefined;
  private pending: Buffer = Buffer.alloc(0);
  private current: RawResponse | undefined;
  private bodyMode: 'length' | 'chunked' | 'close' = 'length';
  private remaining = 0;
  private parts: Buffer[] = [];
  private chunkState: 'size' | 'data' | 'data-end' | 'trailers' = 'size';

  /** `bodiless(i)`: whether the i-th final response answers a HEAD request. */
  constructor(private readonly bodiless: (index: number) => boolean = () => false) {}

  /** Whether bytes have arrived that are not (yet) part of a complete response. */
  get partial(): boolean {
    return this.pending.length > 0 || this.current !== undefined;
  }

  push(chunk: Buffer): void {
    if (this.upgraded !== undefined) {
      this.upgraded = Buffer.concat([this.upgraded, chunk]);
      return;
    }
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    try {
      while (this.error === undefined && this.upgraded === undefined && this.step());
    } catch (error) {
      this.error = (error as Error).message;
    }
  }

  /** The connection ended: a body that runs to the end is complete now. */
  end(): void {
    if (this.current !== undefined && this.bodyMode === 'close') {
      this.parts.push(this.pending);
      this.pending = Buffer.alloc(0);
      this.complete();
    }
  }

  /** One step of progress; false when more bytes are needed. */
  private step(): boolean {
    if (this.current === undefined) return this.readHead();
    if (this.bodyMode === 'length') {
      const take = Math.min(this.remaining, this.pending.length);
      this.parts.push(this.pending.subarray(0, take));
      this.pending = this.pending.subarray(take);
      this.remaining -= take;
      if (this.remaining > 0) return false;
      this.complete();
      return true;
    }
    if (this.bodyMode === 'close') return false;
    if (this.chunkState === 'data') {
      const take = Math.min(this.remaining, this.pending.length);
      this.parts.push(this.pending.subarray(0, take));
      this.pending = this.pending.subarray(take);
      this.remaining -= take;
      if (this.remaining > 0) return false;
      this.chunkState = 'data-end';
      return true;
    }
    const eol = this.pending.indexOf('\r\n');
    if (eol < 0) return false;
    const line = this.pending.toString('latin1', 0, eol);
    this.pending = this.pending.subarray(eol + 2);
    if (this.chunkState === 'size') {
      const size = /^([0-9a-fA-F]+)(;.*)?$/.exec(line);
      if (size === null) throw new Error(`bad chunk size line '${line}'`);
      this.remaining = parseInt(size[1], 16);
      this.chunkState = this.remaining === 0 ? 'trailers' : 'data';
    } else if (this.chunkState === 'data-end') {
      if (line !== '') throw new Error('chunk data longer than its size');
      this.chunkState = 'size';
    } else if (line === '') {
      this.complete();
    } else {
      addField(this.current.trailers, line);
    }
    return true;
  }

  private readHead(): boolean {
    const at = this.pending.indexOf(HEAD_END);
    if (at < 0) return false;
    const lines = this.pending.toString('latin1', 0, at).split('\r\n');
    this.pending = this.pending.subarray(at + 4);
    const start = /^(HTTP\/1\.[01]) (\d{3}) ?(.*)$/.exec(lines[0]);
    if (start === null) throw new Error(`bad status line '${lines[0]}'`);
    const response: RawResponse = {
      version: start[1],
      status: Number(start[2]),
      reason: start[3],
      headers: {},
      body: Buffer.alloc(0),
      trailers: {},
      closeDelimited: false,
    };
    for (const line of lines.slice(1)) addField(response.headers, line);
    if (response.status < 200) {
      this.interim.push(response);
      if (response.status === 101) this.upgraded = this.pending;
      this.pending = Buffer.alloc(0);
      return true;
    }
    this.current = response;
    this.parts = [];
    const te = response.headers['transfer-encoding'];
    const length = response.headers['content-length'];
    if (this.bodiless(this.responses.length) || response.status === 204 || response.status === 304) {
      this.bodyMode = 'length';
      this.remaining = 0;
    } else if (te !== undefined) {
      if (te.toLowerCase() !== 'chunked') throw new Error(`unexpected Transfer-Encoding '${te}'`);
      this.bodyMode = 'chunked';
      this.chunkState = 'size';
    } else if (length !== undefined) {
      if (!/^\d+$/.test(length)) throw new Error(`bad Content-Length '${length}'`);
      this.bodyMode = 'length';
      this.remaining = Number(length);
    } else {
      this.bodyMode = 'close';
      response.closeDelimited = true;
    }
    return true;
  }

  private complete(): void {
    const response = this.current!;
    response.body = Buffer.concat(this.parts);
    this.parts = [];
    this.current = undefined;
    this.responses.push(response);
  }
}

function addField(fields: Record<string, string>, line: string): void {
  const colon = line.indexOf(':');
  if (colon <= 0) throw new Error(`bad header line '${line}'`);
  const name = line.slice(0, colon).toLowerCase();
  const value = line.slice(colon + 1).trim();
  fields[name] = name in fields ? `${fields[name]}, ${value}` : value;
}

/**
 * An HTTP client over a plain `node:net` socket that writes whatever bytes a
 * test hands it (requests no real client would send, split anywhere) and
 * reads the answers with its own `ResponseReader`.
 */
export class RawHttp {
  readonly socket: net.Socket;
  /** Indices of final responses that answer HEAD requests (they carry no body). */
  readonly headAnswers = new Set<number>();
  readonly reader = new ResponseReader((i) => this.headAnswers.has(i));
  /** Every byte the server sent. */
  received: Buffer = Buffer.alloc(0);
  /** Whether the server ended the connection (FIN or reset). */
  ended = false;
  private waiters: Array<() => void> = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.received = Buffer.concat([this.received, chunk]);
      this.reader.push(chunk);
      this.wake();
    });
    socket.on('error', () => undefined);
    const ended = () => {
      if (this.ended) return;
      this.ended = true;
      this.reader.end();
      this.wake();
    };
    socket.on('end', ended);
    socket.on('close', ended);
  }

  static connect(port: number, host = '127.0.0.1'): Promise<RawHttp> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port, noDelay: true });
      socket.once('connect', () => resolve(new RawHttp(socket)));
      socket.once('error', reject);
    });
  }

  get responses(): RawResponse[] {
    return this.reader.responses;
  }

  /** Writes bytes (a string as latin1, byte for byte). */
  write(bytes: string | Uint8Array): void {
    this.socket.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);
  }

  /** Writes bytes and resolves once they are handed to the kernel. */
  flush(bytes: string | Uint8Array): Promise<void> {
    const data = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes;
    return new Promise((resolve, reject) => this.socket.write(data, (err) => (err ? reject(err) : resolve())));
  }

  /** Writes `bytes` in separate writes cut at `cuts` (offsets, ascending), each handed to the kernel before the next. */
  async writeSplit(bytes: string | Uint8Array, cuts: number[]): Promise<void> {
    const data = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : Buffer.from(bytes);
    let from = 0;
    for (const cut of [...cuts, data.length]) {
      if (cut > from) await this.flush(data.subarray(from, cut));
      from = cut;
    }
  }

  /** Resolves with the first `count` final responses once they have arrived. */
  async waitResponses(count: number, timeoutMs = DEADLINE_MS): Promise<RawResponse[]> {
    await this.until(
      () => this.responses.length >= count || this.reader.error !== undefined || this.ended,
      () => `${count} responses (have ${this.responses.length})`,
      timeoutMs,
    );
    if (this.reader.error !== undefined) throw new Error(`unreadable response: ${this.reader.error}`);
    if (this.responses.length < count) {
      throw new Error(`the connection ended after ${this.responses.length} of ${count} responses: ${this.received.toString('latin1').slice(0, 500)}`);
    }
    return this.responses.slice(0, count);
  }

  /** The final response at `index`, once it has arrived. */
  async response(index = 0, timeoutMs = DEADLINE_MS): Promise<RawResponse> {
    return (await this.waitResponses(index + 1, timeoutMs))[index];
  }

  async waitInterim(count: number, timeoutMs = DEADLINE_MS): Promise<RawResponse[]> {
    await this.until(() => this.reader.interim.length >= count || this.ended, () => `${count} interim responses`, timeoutMs);
    if (this.reader.interim.length < count) throw new Error('the connection ended before the interim response');
    return this.reader.interim;
  }

  /** Waits for bytes after a 101 until `done(bytes)` holds. */
  async waitUpgraded(done: (bytes: Buffer) => boolean, timeoutMs = DEADLINE_MS): Promise<Buffer> {
    await this.until(() => (this.reader.upgraded !== undefined && done(this.reader.upgraded)) || this.ended, () => 'bytes after the upgrade', timeoutMs);
    if (this.reader.upgraded === undefined || !done(this.reader.upgraded)) throw new Error('the connection ended before the bytes after the upgrade');
    return this.reader.upgraded;
  }

  /** Waits for the server to end the connection. */
  async waitEnded(timeoutMs = DEADLINE_MS): Promise<void> {
    await this.until(() => this.ended, () => 'the server to end the connection', timeoutMs);
  }

  destroy(): void {
    this.socket.destroy();
  }

  private until(done: () => boolean, what: () => string, timeoutMs: number): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`)), timeoutMs);
      const check = () => {
        if (!done()) {
          this.waiters.push(check);
          return;
        }
        clearTimeout(timer);
        resolve();
      };
      this.waiters.push(check);
    });
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}

export interface RequestOptions {
  /** Default `HTTP/1.1`. */
  version?: string;
  /** Added after `Host` (which is there for HTTP/1.1 unless set to undefined); names as written. */
  headers?: Record<string, string | undefined>;
  /** Sent as is; `Content-Length` is added unless a length or a transfer coding is among the headers. */
  body?: string | Buffer;
}

/** The bytes of one request, built by hand. */
export function request(method: string, target: string, options: RequestOptions = {}): Buffer {
  const version = options.version ?? 'HTTP/1.1';
  const fields: Record<string, string | undefined> = version === 'HTTP/1.1' ? { Host: 'ringport.test' } : {};
  Object.assign(fields, options.headers);
  const body = options.body === undefined ? Buffer.alloc(0) : Buffer.from(options.body);
  const named = (name: string) => Object.keys(fields).some((n) => n.toLowerCase() === name);
  if (options.body !== undefined && !named('content-length') && !named('transfer-encoding')) fields['Content-Length'] = String(body.length);
  let head = `${method} ${target} ${version}\r\n`;
  for (const [name, value] of Object.entries(fields)) if (value !== undefined) head += `${name}: ${value}\r\n`;
  return Buffer.concat([Buffer.from(`${head}\r\n`, 'latin1'), body]);
}

/** A chunked body: each part a chunk (with its extension, if any), then the last chunk and the trailer lines. */
export function chunked(parts: Array<string | [data: string, extension: string]>, trailers: string[] = []): string {
  let text = '';
  for (const part of parts) {
    const [data, extension] = typeof part === 'string' ? [part, ''] : part;
    text += `${Buffer.byteLength(data, 'latin1').toString(16)}${extension}\r\n${data}\r\n`;
  }
  return `${text}0\r\n${trailers.map((t) => `${t}\r\n`).join('')}\r\n`;
}

/** A valid WebSocket upgrade request for `path`. */
export function upgradeRequest(path: string): Buffer {
  return request('GET', path, {
    headers: { Upgrade: 'websocket', Connection: 'Upgrade', 'Sec-WebSocket-Key': randomBytes(16).toString('base64'), 'Sec-WebSocket-Version': '13' },
  });
}

/** A masked binary WebSocket frame carrying one ringport packet: u16 LE packet id, then the payload. */
export function packetFrame(packetId: number, payload: Uint8Array): Buffer {
  const body = Buffer.alloc(2 + payload.length);
  body.writeUInt16LE(packetId, 0);
  Buffer.from(payload).copy(body, 2);
  if (body.length > 125) throw new Error('packetFrame builds short frames only');
  const key = randomBytes(4);
  const masked = Buffer.from(body);
  for (let i = 0; i < masked.length; i++) masked[i] ^= key[i & 3];
  return Buffer.concat([Buffer.from([0x82, 0x80 | body.length]), key, masked]);
}

/** The binary messages in unmasked server frames (short ones only), as packets. */
export function readPacketFrames(bytes: Buffer): Array<{ id: number; payload: Buffer }> {
  const packets: Array<{ id: number; payload: Buffer }> = [];
  let at = 0;
  while (at + 2 <= bytes.length) {
    const length = bytes[at + 1] & 0x7f;
    if (length > 125 || at + 2 + length > bytes.length) break;
    const payload = bytes.subarray(at + 2, at + 2 + length);
    if ((bytes[at] & 0x0f) === 0x2) packets.push({ id: payload.readUInt16LE(0), payload: Buffer.from(payload.subarray(2)) });
    at += 2 + length;
  }
  return packets;
}
