import type { HttpBodySource } from '../../protocol';

/**
 * What `res.stream()` sends: a Node `Readable` (`fs.createReadStream`, a
 * `PassThrough` a game writes into), or any async iterable (an `async
 * function*`), yielding Buffers, Uint8Arrays or strings (sent as UTF-8).
 */
export type HttpStreamSource = NodeJS.ReadableStream | AsyncIterable<Uint8Array | string>;

export interface HttpStreamOptions {
  /**
   * The body's length in bytes, when known: sent as Content-Length. Without
   * it the body goes chunked (HTTP/1.1), or to HTTP/1.0 up to the end of
   * the connection, which then closes.
   */
  length?: number;
}

/** A stream that can be torn down at once, whatever it is waiting for: a Readable. */
interface Destroyable {
  destroy(error?: Error): unknown;
}

function ignore(): void {}

function isDestroyable(source: object): source is Destroyable {
  return typeof (source as Partial<Destroyable>).destroy === 'function';
}

/**
 * A response body read from a stream, as the HTTP protocol pulls it
 * (see `HttpBodySource`): one piece per `read`, nothing read ahead beyond
 * the stream's own buffer. Closing destroys a Readable (its file
 * descriptor is released even while a read is pending) and ends an async
 * iterator (`return()`, which runs a generator's `finally`).
 */
export class StreamBody implements HttpBodySource {
  /** @internal Where a failure of the body is reported: the routes set it to the server's error hook. */
  onFault: ((error: unknown) => void) | undefined = undefined;
  private iterator: AsyncIterator<unknown> | undefined = undefined;
  private closed = false;

  constructor(
    private readonly source: HttpStreamSource,
    readonly length: number | undefined,
  ) {
    // A Readable that fails before it is first read (a file that will not open) must not throw out of the
    // process for want of a listener; reading it later rejects with that error, which is where it is handled.
    if (typeof (source as NodeJS.ReadableStream).on === 'function') (source as NodeJS.ReadableStream).on('error', ignore);
  }

  async read(): Promise<Uint8Array | undefined> {
    this.iterator ??= (this.source as AsyncIterable<unknown>)[Symbol.asyncIterator]();
    const { value, done } = await this.iterator.next();
    if (done === true) return undefined;
    if (value instanceof Uint8Array) return value;
    if (typeof value === 'string') return Buffer.from(value, 'utf8');
    throw new TypeError(`a streamed body yields Buffers, Uint8Arrays or strings, not ${value === null ? 'null' : typeof value}`);
  }

  close(error?: unknown): void {
    if (this.closed) return;
    this.closed = true;
    if (error !== undefined) this.onFault?.(error);
    if (isDestroyable(this.source)) {
      this.source.destroy();
    } else if (this.iterator?.return !== undefined) {
      // A generator's cleanup that throws is the application's fault like any other.
      this.iterator.return().then(undefined, (cleanupError: unknown) => this.onFault?.(cleanupError));
    }
  }
}
