import type { CloseReason } from '../close-reason';
import type { ProtocolStream, Role, StreamPeer, WireProtocol } from '../protocol';
import type { WebSocketProtocol } from '../websocket/websocket-protocol';
import { BodyWriter, type BodyFraming, type HttpBodySource } from './body-writer';
import { ChunkedBody } from './chunked';
import { OutputBatch } from './output-batch';
import { hasToken, HeadError, parseRequestHead, statusText, type HeaderFields, type RequestHead } from './request-head';

/** One request, whole: what the routes see. */
export interface HttpExchange {
  readonly method: string;
  /** The request target as sent: path and query. */
  readonly target: string;
  readonly version: string;
  readonly headers: HeaderFields;
  readonly body: Buffer;
  readonly remoteAddress: string;
  readonly remotePort: number;
}

/**
 * A response, as the routes produce it; the protocol adds the framing
 * fields. A body is whole (bytes, text) or streamed (`HttpBodySource`),
 * which the protocol writes as the connection drains, and closes in every
 * outcome.
 */
export interface HttpAnswer {
  readonly status: number;
  readonly headers?: ReadonlyArray<readonly [string, string]>;
  readonly body?: Buffer | string | HttpBodySource;
}

/** Answers one request. It never throws or rejects: the routes run application code through the guard. */
export type HttpResponder = (exchange: HttpExchange) => HttpAnswer | Promise<HttpAnswer>;

export interface HttpProtocolOptions {
  readonly respond: HttpResponder;
  /** A body over this is refused with 413 before any of it is buffered. */
  readonly maxBodyBytes: number;
  /** A request head over this is refused with 431. */
  readonly maxHeadBytes: number;
  /**
   * A connection with no complete request for this long is closed: one
   * whose request head or body is under way gets 408 first. It bounds the
   * keep-alive idle time, slowloris heads and slow handlers alike.
   */
  readonly requestTimeoutMs: number;
  /** WebSocket upgrades accepted on this listener, by path. */
  readonly upgrades: ReadonlyMap<string, WebSocketProtocol>;
  /**
   * The connection's queue limit (`limits.maxQueueBytes`). A streamed body
   * goes out in pieces of at most a quarter of it (64 KiB at most), each
   * written only while the queue is under its high-water mark, so the queue
   * never passes the high-water mark plus one piece.
   */
  readonly maxQueueBytes: number;
}

/** RFC 9110's methods; anything else is 501 (section 9.1 lets a server refuse a method it does not know). */
const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'CONNECT', 'TRACE']);
const CR = 13;
const LF = 10;
const EMPTY = Buffer.alloc(0);
const CONTINUE = Buffer.from('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');
/** Answers gathered past this are written at once, so the high-water mark still stops a pipelining peer in time. */
const FLUSH_BYTES = 16 * 1024;
/** The largest piece of a streamed body written at once: what fs.createReadStream reads at a time. */
const MAX_PIECE_BYTES = 64 * 1024;
const SERVER_ERROR: HttpAnswer = { status: 500, headers: [['Content-Type', 'text/plain; charset=utf-8']], body: 'internal server error\n' };

function isStreamed(body: HttpAnswer['body']): body is HttpBodySource {
  return body !== undefined && typeof body !== 'string' && !Buffer.isBuffer(body);
}

/** 1xx, 204 and 304 carry no body and no length (RFC 9110 sections 8.6, 15.3.5, 15.4.5). */
function isBodiless(status: number): boolean {
  return status < 200 || status === 204 || status === 304;
}

const statusLines = new Map<number, string>();
/** `HTTP/1.1 200 OK\r\n`, made once per status. */
function statusLine(status: number): string {
  let line = statusLines.get(status);
  if (line === undefined) {
    line = `HTTP/1.1 ${status} ${statusText(status)}\r\n`;
    statusLines.set(status, line);
  }
  return line;
}

// RFC 9110 section 6.6.1: an origin server with a clock sends Date. It is
// formatted by a timer a few times a second, not per response: reading the
// clock cost more than the rest of a response head. An unreferenced timer,
// started with the first response: it keeps no process alive.
let dateLine = '';
let dateSecond = -1;
let dateTimer: ReturnType<typeof setInterval> | undefined;
function refreshDate(): void {
  const second = Math.floor(Date.now() / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateLine = `Date: ${new Date(second * 1000).toUTCString()}\r\n`;
    headStarts.clear();
  }
}
/** The status line and the Date line, per status, until the Date changes. */
const headStarts = new Map<number, string>();
function headStart(status: number): string {
  let start = headStarts.get(status);
  if (start === undefined) {
    start = statusLine(status) + date();
    headStarts.set(status, start);
  }
  return start;
}

/**
 * `Content-Type: <value>\r\n` for the types answers carry again and again
 * (the defaults, a handler's constant): one string rather than one made per
 * response. Bounded, for handlers that vary it.
 */
const contentTypeLines = new Map<string, string>();
function contentTypeLine(value: string): string {
  let line = contentTypeLines.get(value);
  if (line === undefined) {
    line = `Content-Type: ${value}\r\n`;
    if (contentTypeLines.size < 64) contentTypeLines.set(value, line);
  }
  return line;
}

/** `Content-Length: n\r\n` for the small lengths most answers have, made once each. */
const lengthLines: string[] = [];
function lengthLine(length: number): string {
  if (length >= 4096) return `Content-Length: ${length}\r\n`;
  return (lengthLines[length] ??= `Content-Length: ${length}\r\n`);
}

function date(): string {
  if (dateTimer === undefined) {
    refreshDate();
    dateTimer = setInterval(refreshDate, 250);
    dateTimer.unref();
  }
  return dateLine;
}

/**
 * HTTP/1.1 (RFC 9112) over a connection: keep-alive, pipelining (requests
 * are answered one at a time, in order, while later ones wait in the
 * buffer, behind a streamed body until it is all queued), Content-Length
 * and chunked bodies both ways, HTTP/1.0. Every limit has its
 * status: 431, 413, 400, 408, 501. A request that could be read two ways
 * (Content-Length with Transfer-Encoding, differing Content-Lengths) is 400,
 * never guessed at: that ambiguity is how requests are smuggled past a
 * proxy. An upgrade to WebSocket on one of the listener's paths hands the
 * connection to that protocol, where it becomes a session.
 */
export class HttpProtocol implements WireProtocol {
  readonly name = 'http' as const;
  readonly keepAliveMs: number;

  constructor(readonly options: HttpProtocolOptions) {
    this.keepAliveMs = options.requestTimeoutMs;
  }

  /** HTTP carries no packets: an upgraded connection speaks WebSocket, whose encoding broadcasts use. */
  encode(): Buffer {
    throw new Error('an HTTP connection carries no packets');
  }

  open(peer: StreamPeer, role: Role): ProtocolStream {
    if (role !== 'server') throw new Error('ringport has no HTTP client');
    return new HttpStream(this.options, peer);
  }
}

const HEAD = 0;
const LENGTH_BODY = 1;
const CHUNKED_BODY = 2;
const ANSWERING = 3;
const DONE = 4;

class HttpStream implements ProtocolStream {
  private state = HEAD;
  /** Bytes received and not yet parsed: `buffer[offset, ...)`. */
  private buffer: Buffer = EMPTY;
  private offset = 0;
  private head: RequestHead | undefined;
  private bodyLength = 0;
  private chunked: ChunkedBody | undefined;
  private persistent = true;
  private http10 = false;
  /** The peer is not reading its answers: no further request is read until the queue drains. */
  private blocked = false;
  /** Inside `pump`: an answer given at once lets the loop read on, rather than recursing per request. */
  private pumping = false;
  /** The streamed body being written, if any: the request it answers is still being answered. */
  private writer: BodyWriter | undefined;
  /** Answers given during a `pump`, written when it ends (or once they pass FLUSH_BYTES). */
  private readonly out = new OutputBatch();
  /** A request completed during this `pump`: the connection was active. */
  private active = false;

  constructor(
    private readonly options: HttpProtocolOptions,
    private readonly peer: StreamPeer,
  ) {}

  receive(bytes: Buffer): void {
    if (this.state === DONE || bytes.length === 0) return;
    if (this.offset >= this.buffer.length) {
      this.buffer = bytes;
      this.offset = 0;
    } else {
      this.buffer = Buffer.concat([this.buffer.subarray(this.offset), bytes]);
      this.offset = 0;
    }
    // Pipelined requests wait while one is answered; their bytes are bounded by the limits of the next head and body.
    // The bound holds while a request is being answered too: nothing is parsed then, so that is when bytes pile
    // up (a peer writing on behind a slow handler), and without it they would grow the server without limit.
    if (this.buffer.length - this.offset > this.options.maxHeadBytes + this.options.maxBodyBytes + 64 * 1024) {
      this.refuse(new HeadError(400, 'too many pipelined bytes'));
      return;
    }
    this.pump();
  }

  /** Reads requests until one is being answered or the bytes run out. */
  private pump(): void {
    this.pumping = true;
    try {
      while (this.state !== ANSWERING && this.state !== DONE && !this.blocked && this.offset < this.buffer.length) {
        if (this.state === HEAD) {
          if (!this.readHead()) return;
        } else if (this.state === LENGTH_BODY) {
          if (this.buffer.length - this.offset < this.bodyLength) return;
          // A copy: the request outlives the read it came in (a view would keep the whole read alive).
          const body = this.bodyLength === 0 ? EMPTY : copyOf(this.buffer, this.offset, this.bodyLength);
          this.offset += this.bodyLength;
          this.dispatch(body);
        } else if (this.state === CHUNKED_BODY) {
          this.offset = this.chunked!.push(this.buffer, this.offset, this.buffer.length);
          if (!this.chunked!.done) return;
          const body = this.chunked!.body();
          this.chunked = undefined;
          this.dispatch(body);
        }
      }
      // A request with no body completes with its head: it may be the last bytes of the read.
      if (this.state === LENGTH_BODY && this.bodyLength === 0) this.dispatch(EMPTY);
    } catch (error) {
      this.refuse(error instanceof HeadError ? error : new HeadError(400, (error as Error).message));
    } finally {
      this.pumping = false;
      this.flush();
      if (this.active) {
        this.active = false;
        this.peer.activity();
      }
    }
  }

  /** Writes the answers gathered so far, ahead of anything else the connection sends. */
  private flush(): void {
    // Over the high-water mark: a client pipelining faster than it reads waits, rather than growing our queue.
    if (!this.out.writeTo(this.peer)) this.blocked = true;
  }

  /** Parses the next request head; false while it has not all arrived. */
  private readHead(): boolean {
    // RFC 9112 section 2.2: empty lines before a request line are ignored.
    while (this.offset + 1 < this.buffer.length && this.buffer[this.offset] === 13 && this.buffer[this.offset + 1] === 10) {
      this.offset += 2;
    }
    const limit = this.options.maxHeadBytes;
    const start = this.offset;
    const end = headEnd(this.buffer, start, Math.min(this.buffer.length, start + limit));
    if (end < 0) {
      // A bare LF is refused once the head is whole (parseRequestHead), but a head whose lines all end in bare
      // LF never ends in CRLFCRLF: refuse it as soon as one arrives rather than wait for 431 or 408.
      if (hasBareLf(this.buffer, this.offset)) throw new HeadError(400, 'bare LF in the head');
      if (this.buffer.length - this.offset > limit) throw new HeadError(431, `request head over ${limit} bytes`);
      return false;
    }
    this.offset = end;
    this.startRequest(parseRequestHead(this.buffer, start, end), start);
    return true;
  }

  /** `headStart`: where the head began in the buffer, for an upgrade to read it again. */
  private startRequest(head: RequestHead, headStart: number): void {
    if (!KNOWN_METHODS.has(head.method)) throw new HeadError(501, `method ${head.method} is not implemented`);
    if (head.version === 'HTTP/1.1' && (head.host === undefined || head.repeated.has('host'))) {
      throw new HeadError(400, 'HTTP/1.1 needs exactly one Host header');
    }
    const connection = head.connection;
    this.http10 = head.version === 'HTTP/1.0';
    // HTTP/1.1 keeps the connection unless told to close; HTTP/1.0 closes it unless asked to keep it.
    this.persistent = this.http10 ? hasToken(connection, 'keep-alive') : !hasToken(connection, 'close');

    const upgradeTo = head.upgrade !== undefined && hasToken(head.upgrade, 'websocket') ? this.options.upgrades.get(pathOf(head.target)) : undefined;
    if (upgradeTo !== undefined) {
      // The WebSocket protocol reads the request itself: hand it everything from the head on.
      this.state = DONE;
      this.flush();
      this.peer.switchTo(upgradeTo, this.buffer.subarray(headStart));
      return;
    }

    const te = head.transferEncoding;
    const cl = head.contentLength;
    if (te !== undefined) {
      if (cl !== undefined) throw new HeadError(400, 'both Content-Length and Transfer-Encoding');
      if (head.version !== 'HTTP/1.1') throw new HeadError(400, 'Transfer-Encoding in an HTTP/1.0 request');
      // Only chunked is understood, and it must come last (RFC 9112 section 6.1).
      if (te.trim().toLowerCase() !== 'chunked') throw new HeadError(501, `Transfer-Encoding ${te} is not implemented`);
      this.head = head;
      this.chunked = new ChunkedBody(this.options.maxBodyBytes);
      this.state = CHUNKED_BODY;
      this.expectContinue(head);
      return;
    }
    let length = 0;
    if (cl !== undefined) {
      length = contentLength(cl);
      if (length > this.options.maxBodyBytes) throw new HeadError(413, `body over ${this.options.maxBodyBytes} bytes`);
    }
    this.head = head;
    this.bodyLength = length;
    this.state = LENGTH_BODY;
    if (length > 0) this.expectContinue(head);
  }

  /** A client waiting for leave to send its body gets it (RFC 9110 section 10.1.1). */
  private expectContinue(head: RequestHead): void {
    if (head.version === 'HTTP/1.1' && hasToken(head.expect, '100-continue')) {
      this.flush();
      this.peer.write(CONTINUE);
    }
  }

  private dispatch(body: Buffer): void {
    const head = this.head!;
    this.head = undefined;
    this.state = ANSWERING;
    if (this.pumping) this.active = true;
    else this.peer.activity();
    const exchange: HttpExchange = {
      method: head.method,
      target: head.target,
      version: head.version,
      headers: head.headers,
      body,
      remoteAddress: this.peer.remoteAddress,
      remotePort: this.peer.remotePort,
    };
    const answer = this.options.respond(exchange);
    if (answer instanceof Promise) void answer.then((a) => this.answered(head, a));
    else this.answered(head, answer);
  }

  private answered(head: RequestHead, answer: HttpAnswer): void {
    const body = answer.body;
    if (this.state !== ANSWERING) {
      // The connection went while the handler ran: a streamed body is released unread.
      if (isStreamed(body)) body.close();
      return;
    }
    if (isStreamed(body)) {
      if (head.method !== 'HEAD' && !isBodiless(answer.status)) {
        this.stream(answer, body);
        return;
      }
      // HEAD gets the head GET would get (its length, or chunked), and the source is never read.
      body.close();
    }
    this.write(head.method === 'HEAD', answer, this.persistent);
    this.next();
  }

  /** The answer is all queued: the next request, or the end of the connection. */
  private next(): void {
    if (this.pumping) this.active = true;
    else this.peer.activity();
    if (!this.persistent) {
      this.state = DONE;
      this.flush();
      this.peer.fail('closed');
      return;
    }
    this.state = HEAD;
    // The answer may have come later, from a promise: the requests waiting behind it go on now.
    if (this.offset < this.buffer.length) {
      if (!this.pumping) this.pump();
    } else {
      this.buffer = EMPTY;
      this.offset = 0;
    }
  }

  /**
   * Answers with a streamed body: the head goes with its first piece, the
   * rest as the connection drains, and the requests behind it wait until it
   * is all queued. Without a length, an HTTP/1.0 body runs to the end of
   * the connection, which then closes.
   */
  private stream(answer: HttpAnswer, source: HttpBodySource): void {
    const framing: BodyFraming = source.length !== undefined ? 'length' : this.http10 ? 'close' : 'chunked';
    const persistent = this.persistent;
    if (framing === 'close') this.persistent = false;
    const head = this.headOf(answer, this.persistent, this.framingField(source));
    const pieceBytes = Math.max(1024, Math.min(MAX_PIECE_BYTES, Math.floor(this.options.maxQueueBytes / 4)));
    const writer = new BodyWriter(this.peer, source, framing, head, pieceBytes, {
      ended: (blocked) => {
        this.writer = undefined;
        if (blocked) this.blocked = true;
        this.next();
      },
      failedBeforeHead: () => {
        // Nothing has gone out: the request still gets an honest answer, and the connection carries on.
        this.writer = undefined;
        this.persistent = persistent;
        this.write(false, SERVER_ERROR, this.persistent);
        this.next();
      },
      failedMidBody: () => {
        // The head promised a body that will not come whole: only closing the connection says so.
        this.writer = undefined;
        this.state = DONE;
        this.peer.fail('handler-error');
      },
    });
    this.writer = writer;
    this.flush();
    writer.start();
  }

  /** The answers queued for the peer fell back to the low-water mark: write on, or read on. */
  drained(): void {
    const blocked = this.blocked;
    this.blocked = false;
    if (this.writer !== undefined) {
      this.writer.drained();
      return;
    }
    if (!blocked) return;
    if (this.state !== ANSWERING && this.state !== DONE) this.pump();
  }

  /** The field that frames a streamed body: its length, chunked (HTTP/1.1), or none (HTTP/1.0: the end of the connection). */
  private framingField(source: HttpBodySource): string {
    if (source.length !== undefined) return `Content-Length: ${source.length}\r\n`;
    return this.http10 ? '' : 'Transfer-Encoding: chunked\r\n';
  }

  /**
   * The head of a response, in latin1. `framing` is the field that frames
   * the body (a length, or chunked): undefined for a whole body, whose
   * Content-Length this adds unless the answer set one.
   */
  private headOf(answer: HttpAnswer, keepAlive: boolean, framing: string | undefined, bodyLength = 0): string {
    let head = headStart(answer.status);
    let hasLength = false;
    for (const [name, value] of answer.headers ?? []) {
      // Only the framing fields' lengths are worth lower-casing for.
      const lower = name.length === 14 || name.length === 17 ? name.toLowerCase() : '';
      // A streamed body is framed here and nowhere else: a field set by hand could contradict it and desync the connection.
      if (framing !== undefined && (lower === 'content-length' || lower === 'transfer-encoding')) continue;
      // Spelled as ringport's defaults spell it (the same string, compared by identity first): its line is kept.
      head += name === 'Content-Type' ? contentTypeLine(value) : `${name}: ${value}\r\n`;
      if (lower === 'content-length') hasLength = true;
    }
    if (isBodiless(answer.status)) {
      // No body, no length.
    } else if (framing !== undefined) {
      head += framing;
    } else if (!hasLength) {
      head += lengthLine(bodyLength);
    }
    // An HTTP/1.0 client keeps the connection only when told it is kept.
    return head + (keepAlive ? (this.http10 ? 'Connection: keep-alive\r\n\r\n' : '\r\n') : 'Connection: close\r\n\r\n');
  }

  private write(omitBody: boolean, answer: HttpAnswer, keepAlive: boolean): void {
    if (isStreamed(answer.body)) {
      // Answering HEAD: the head only, with the framing field GET would get.
      this.out.addText(this.headOf(answer, keepAlive, this.framingField(answer.body)));
    } else {
      const body = answer.body ?? EMPTY;
      const bodyLength = typeof body === 'string' ? utf8Length(body) : body.length;
      const head = this.headOf(answer, keepAlive, undefined, bodyLength);
      if (omitBody || isBodiless(answer.status) || bodyLength === 0) {
        this.out.addText(head);
      } else if (typeof body !== 'string') {
        this.out.addText(head);
        this.out.addBytes(body);
      } else if (bodyLength === body.length) {
        // As many UTF-8 bytes as characters: ASCII, the same bytes in latin1, so it joins the head's text.
        this.out.addText(head + body);
      } else {
        this.out.addText(head);
        this.out.addBytes(Buffer.from(body, 'utf8'));
      }
    }
    if (!this.pumping || this.out.bytes >= FLUSH_BYTES) this.flush();
  }

  /** A request that cannot be served: its status, then the connection closes. */
  private refuse(error: HeadError): void {
    if (this.state === DONE) return;
    this.state = DONE;
    this.buffer = EMPTY;
    if (this.writer !== undefined) {
      // Mid-body there is no place for an answer of its own: the connection just closes.
      this.writer.stop();
      this.writer = undefined;
      this.peer.fail('protocol-error');
      return;
    }
    this.write(false, { status: error.status, headers: [['Content-Type', 'text/plain; charset=utf-8']], body: `${error.message}\n` }, false);
    this.flush();
    this.peer.fail('protocol-error');
  }

  closing(reason: CloseReason): Uint8Array | undefined {
    // Quiet in the middle of a request: say so (408) rather than just hanging up.
    const midRequest = this.state === LENGTH_BODY || this.state === CHUNKED_BODY || (this.state === HEAD && this.offset < this.buffer.length);
    const state = this.state;
    this.state = DONE;
    // Answers gathered in the pass that is closing the connection still go, ahead of its end.
    this.flush();
    // The connection is going: a body still being read releases its source (a file descriptor) now.
    this.writer?.stop();
    this.writer = undefined;
    if (reason !== 'idle-timeout' || !midRequest || state === DONE) return undefined;
    const body = Buffer.from('request timed out\n');
    return Buffer.concat([
      Buffer.from(`HTTP/1.1 408 ${statusText(408)}\r\n${date()}Connection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${body.length}\r\n\r\n`, 'latin1'),
      body,
    ]);
  }
}

/** The UTF-8 length of `text`: a short ASCII one counted here, cheaper than the call into Buffer for it. */
function utf8Length(text: string): number {
  const n = text.length;
  if (n > 64) return Buffer.byteLength(text);
  for (let i = 0; i < n; i++) if (text.charCodeAt(i) > 0x7f) return Buffer.byteLength(text);
  return n;
}

/** `length` bytes of `buffer` from `at`, in a buffer of their own; a short body is copied by hand, cheaper than a view to copy from. */
function copyOf(buffer: Buffer, at: number, length: number): Buffer {
  const copy = Buffer.allocUnsafe(length);
  if (length > 64) {
    buffer.copy(copy, 0, at, at + length);
  } else {
    for (let i = 0; i < length; i++) copy[i] = buffer[at + i];
  }
  return copy;
}

/**
 * Where the head starting at `from` ends (the index after its CRLF CRLF)
 * within `buffer[from, to)`, or -1. A byte that is neither CR nor LF cannot be part of the end, so the
 * scan looks at one byte in four until it meets one.
 */
function headEnd(buffer: Buffer, from: number, to: number): number {
  const length = to;
  let i = from + 3;
  while (i < length) {
    const b = buffer[i];
    if (b === LF) {
      if (buffer[i - 1] === CR && buffer[i - 2] === LF && buffer[i - 3] === CR) return i + 1;
      i += 2;
    } else if (b === CR) {
      i += 1;
    } else {
      i += 4;
    }
  }
  return -1;
}

/** Whether `buffer[from, ...)` holds an LF not preceded by CR. */
function hasBareLf(buffer: Buffer, from: number): boolean {
  for (let lf = buffer.indexOf(10, from); lf >= 0; lf = buffer.indexOf(10, lf + 1)) {
    if (lf === from || buffer[lf - 1] !== 13) return true;
  }
  return false;
}

function pathOf(target: string): string {
  const q = target.indexOf('?');
  return q < 0 ? target : target.slice(0, q);
}

/**
 * The value of a Content-Length field. A repeated field arrives joined with
 * ", " (RFC 9110 section 8.6): its values must all agree, else 400.
 */
function contentLength(value: string): number {
  const digits = value.length;
  if (digits > 0 && digits <= 15) {
    let n = 0;
    for (let i = 0; i < digits; i++) {
      const d = value.charCodeAt(i) - 48;
      if (d < 0 || d > 9) {
        n = -1;
        break;
      }
      n = n * 10 + d;
    }
    if (n >= 0) return n;
  }
  const values = value.split(',').map((v) => v.trim());
  if (!values.every((v) => /^\d{1,15}$/.test(v)) || new Set(values).size !== 1) {
    throw new HeadError(400, 'bad or conflicting Content-Length');
  }
  return Number(values[0]);
}
