import type { StreamPeer } from '../protocol';

/**
 * A response body produced piece by piece: a file read from disk, or what a
 * handler generates (src/app/http makes one of a Node `Readable` or an async
 * iterable). The protocol pulls it: `read()` is called again only once the
 * previous call has settled, and only while the connection's queue is under
 * its high-water mark, so a slow reader holds the source back instead of
 * filling memory.
 */
export interface HttpBodySource {
  /**
   * The body's bytes, when known beforehand: sent as Content-Length, and
   * held to (a source that yields more or fewer fails). Unknown, the body
   * goes chunked to HTTP/1.1 and up to the end of the connection to HTTP/1.0.
   */
  readonly length: number | undefined;
  /** The next piece, or undefined at the end; rejects when the source fails. */
  read(): Promise<Uint8Array | undefined>;
  /**
   * The body is over: it ended, it is not wanted (HEAD, a connection that
   * closed), or it failed, `error` saying how. Releases what the source
   * holds (a file descriptor) even while a `read` is pending. Called exactly
   * once for every source an answer carries.
   */
  close(error?: unknown): void;
}

/** How the end of a streamed body is told: Content-Length, the last chunk, or the end of the connection. */
export type BodyFraming = 'length' | 'chunked' | 'close';

/** What a streamed body tells the HTTP stream that answers with it. */
export interface BodyWriterHost {
  /** The body is all queued; `blocked` when the last write passed the high-water mark. */
  ended(blocked: boolean): void;
  /** The first read failed: nothing has been written, so the request can still be answered (500). */
  failedBeforeHead(): void;
  /** The source failed, or broke its length, after the head went out: the connection must close. */
  failedMidBody(): void;
}

const CRLF = Buffer.from('\r\n', 'latin1');
const LAST_CHUNK = Buffer.from('0\r\n\r\n', 'latin1');
/**
 * Bytes a body writes before it lets the event loop turn. A source that
 * yields at once (a generator, `Readable.from`) would otherwise be read and
 * written in one run of promise callbacks for as long as the queue takes
 * it: the kernel takes loopback writes at once, and a connection that is
 * already gone may not say so until its close event, which could then never
 * be delivered. Other connections get their turn too.
 */
const TURN_BYTES = 256 * 1024;

/**
 * Writes one streamed body: the head goes out with its first piece (so a
 * source that fails at once is still a 500), then each piece as the
 * connection drains. A write that passes the high-water mark stops the
 * reading until `drained()`; pieces are cut to at most `maxPieceBytes`, so
 * the queue stays under the high-water mark plus one piece whatever the
 * source yields.
 */
export class BodyWriter {
  private live = true;
  private blocked = false;
  private wake: (() => void) | undefined;
  private sent = 0;
  private sentThisTurn = 0;

  constructor(
    private readonly peer: StreamPeer,
    private readonly source: HttpBodySource,
    private readonly framing: BodyFraming,
    /** The response head, framing fields included, in latin1. */
    private head: string | undefined,
    private readonly maxPieceBytes: number,
    private readonly host: BodyWriterHost,
  ) {}

  start(): void {
    void this.run();
  }

  /** The queue fell back to its low-water mark. */
  drained(): void {
    this.blocked = false;
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  /** The connection is going or gone: the source is released and nothing more is written. */
  stop(): void {
    if (!this.live) return;
    this.live = false;
    this.source.close();
    this.drained();
  }

  private async run(): Promise<void> {
    let piece = await this.next();
    if (piece === null) return;
    while (piece !== undefined) {
      for (let at = 0; at < piece.length; ) {
        if (this.blocked) {
          await new Promise<void>((resolve) => (this.wake = resolve));
          if (!this.live) return;
          this.sentThisTurn = 0;
        } else if (this.sentThisTurn >= TURN_BYTES) {
          await new Promise<void>((resolve) => setImmediate(resolve));
          if (!this.live) return;
          this.sentThisTurn = 0;
        }
        const slice = piece.subarray(at, at + this.maxPieceBytes);
        at += slice.length;
        if (!this.writePiece(slice)) return;
      }
      piece = await this.next();
      if (piece === null) return;
    }
    const length = this.source.length;
    if (length !== undefined && this.sent !== length) {
      this.fail(new Error(`the streamed body ended after ${this.sent} of its ${length} bytes`));
      return;
    }
    // The last chunk ends a chunked body; an empty body's head goes only now, with it.
    const last = this.framing === 'chunked' ? LAST_CHUNK : undefined;
    const out = this.head === undefined ? last : Buffer.from(this.head + (last === undefined ? '' : '0\r\n\r\n'), 'latin1');
    this.head = undefined;
    if (out !== undefined && !this.peer.write(out)) this.blocked = true;
    this.live = false;
    this.source.close();
    this.host.ended(this.blocked);
  }

  /** The next non-empty piece, undefined at the end, or null once this body is over (stopped, or failed). */
  private async next(): Promise<Uint8Array | undefined | null> {
    for (;;) {
      let piece: Uint8Array | undefined;
      try {
        piece = await this.source.read();
      } catch (error) {
        // What the source threw goes on as it is (an fs error keeps its code), and is never undefined.
        if (this.live) this.fail(error ?? new Error('the streamed body failed'));
        return null;
      }
      if (!this.live) return null;
      // An empty piece carries nothing, and as a chunk it would end the body.
      if (piece === undefined || piece.length > 0) return piece;
    }
  }

  /** Queues one piece (with the head, the first time), framed; false when the body has failed. */
  private writePiece(piece: Uint8Array): boolean {
    const length = this.source.length;
    if (length !== undefined && this.sent + piece.length > length) {
      this.fail(new Error(`the streamed body yielded more than its ${length} bytes`));
      return false;
    }
    this.sent += piece.length;
    this.sentThisTurn += piece.length;
    if (this.framing !== 'chunked' && this.head === undefined) {
      // No framing to add: the piece goes as it is, uncopied.
      this.blocked = !this.peer.write(piece);
    } else {
      const size = this.framing === 'chunked' ? `${piece.length.toString(16)}\r\n` : '';
      const prefix = (this.head ?? '') + size;
      const out = Buffer.allocUnsafe(prefix.length + piece.length + (size === '' ? 0 : 2));
      out.write(prefix, 0, 'latin1');
      out.set(piece, prefix.length);
      if (size !== '') CRLF.copy(out, prefix.length + piece.length);
      this.head = undefined;
      this.blocked = !this.peer.write(out);
    }
    // A body that makes progress keeps the connection from its request timeout; one whose reader stopped does not.
    this.peer.activity();
    return true;
  }

  private fail(error: unknown): void {
    this.live = false;
    this.source.close(error);
    if (this.head !== undefined) this.host.failedBeforeHead();
    else this.host.failedMidBody();
  }
}
