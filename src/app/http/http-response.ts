import { ErrorCodes, RingportError } from '../../errors';
import type { HttpAnswer } from '../../protocol';
import { StreamBody, type HttpStreamOptions, type HttpStreamSource } from './stream-body';

/** What a route handler may return: text, bytes, a value sent as JSON, or nothing (the `res` it was given says). */
export type HttpResult = string | Buffer | Uint8Array | object | number | boolean | null | undefined;

/**
 * The response a route handler builds, when returning a value is not
 * enough: `res.status(201).header('Location', '/rooms/7').send({ id: 7 })`.
 * A handler that returns a value (other than undefined) sends it with
 * whatever status and headers it set here.
 */
export class HttpResponse {
  statusCode = 200;
  readonly headers: Array<[string, string]> = [];
  /** @internal What was sent, once `send` or `stream` (or a returned value) has decided it. */
  body: Buffer | string | StreamBody | undefined = undefined;
  /** @internal */
  sent = false;

  status(code: number): this {
    this.statusCode = code;
    return this;
  }

  /** Adds a header field (no check for duplicates: `Set-Cookie` may repeat). */
  header(name: string, value: string | number): this {
    if (/[\r\n]/.test(name) || /[\r\n]/.test(String(value))) throw new TypeError('a header may not contain CR or LF');
    this.headers.push([name, String(value)]);
    return this;
  }

  /** Whether a header of this name has been set. */
  has(name: string): boolean {
    const lower = name.toLowerCase();
    return this.headers.some(([n]) => n.toLowerCase() === lower);
  }

  /** Sends `body`: a string as text, bytes as they are, anything else as JSON. */
  send(body: HttpResult): this {
    if (isStreamLike(body)) throw new TypeError('a stream is sent with res.stream(source, { length }), not send() or a returned value');
    this.discard();
    this.sent = true;
    if (body === undefined) {
      this.body = undefined;
    } else if (typeof body === 'string') {
      this.defaultType('text/plain; charset=utf-8');
      this.body = body;
    } else if (Buffer.isBuffer(body) || body instanceof Uint8Array) {
      this.defaultType('application/octet-stream');
      this.body = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    } else {
      this.defaultType('application/json');
      this.body = JSON.stringify(body);
    }
    return this;
  }

  /** Content-Type `type`, unless the handler set one: ours need no check for CR or LF. */
  private defaultType(type: string): void {
    if (this.headers.length === 0 || !this.has('content-type')) this.headers.push(['Content-Type', type]);
  }

  /**
   * Sends a body read from `source` as the connection takes it: a
   * `Readable` (`fs.createReadStream(file)`) or an async iterable of
   * Buffers or strings. With `length` the response has Content-Length (and
   * a source that yields more or fewer bytes closes the connection);
   * without, HTTP/1.1 gets it chunked and HTTP/1.0 up to the end of the
   * connection. The head goes out with the first piece: a source that
   * fails before yielding one is a 500, one that fails later closes the
   * connection; both are faults (`onError`, source `http`). A HEAD request
   * gets the head only. The source is destroyed in every outcome, the
   * connection closing mid-body included. A piece is queued as it is:
   * do not change a Buffer once it has been yielded.
   */
  stream(source: HttpStreamSource, options: HttpStreamOptions = {}): this {
    const { length } = options;
    if (length !== undefined && !(Number.isSafeInteger(length) && length >= 0)) {
      throw new RingportError(ErrorCodes.INVALID_ARGUMENT, `res.stream: length must be a whole number of bytes, got ${length}`);
    }
    this.discard();
    this.defaultType('application/octet-stream');
    this.sent = true;
    this.body = new StreamBody(source, length);
    return this;
  }

  /** @internal A streamed body that will not be sent (replaced, or the handler failed) releases its source. */
  discard(): void {
    if (this.body instanceof StreamBody) this.body.close();
    this.body = undefined;
  }

  /** @internal */
  answer(): HttpAnswer {
    return { status: this.statusCode, headers: this.headers, body: this.body };
  }
}

/** A value that must go through `res.stream`: JSON of it would be the stream object's fields. */
function isStreamLike(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !(value instanceof Uint8Array) && Symbol.asyncIterator in value;
}
