import { ErrorCodes, RingportError } from '../../errors';
import { readUint } from './byte-order';
import type { Framing } from './options';

const READING_HEADER = 0;
const READING_BODY = 1;
type State = typeof READING_HEADER | typeof READING_BODY;

const EMPTY = Buffer.alloc(0);
// What each byte of a little-endian length prefix is worth, by position.
const LE_BYTE_WEIGHTS = [1, 0x100, 0x10000, 0x1000000];
// The least a split frame's buffer starts with: small enough that a peer
// dripping single bytes costs little, large enough that a frame split once
// (the usual case) rarely needs to regrow.
const MIN_PARTIAL_BYTES = 512;

/** Where {@link FrameDecoder.pushTo} delivers frames, as ranges rather than as objects. */
export interface FrameSink {
  /** One frame body, `buffer[start, end)`: valid during the call only, unless the sink takes a view of it. */
  receiveFrame(buffer: Buffer, start: number, end: number): void;
}

/**
 * Turns a byte stream into frame bodies: `length | body[length]`, the length
 * prefix being `framing.lengthBytes` wide in `framing.byteOrder` and counting
 * the body only.
 *
 * A frame that lies within one chunk is delivered as a view of that chunk, without
 * copying; only a frame split across chunks is copied, into a buffer that grows
 * with what has arrived and ends at exactly the frame's size. A header that declares more than `maxFrameBytes` throws
 * `RP_ERR_FRAME_TOO_LARGE` before any of its body is buffered, and every later
 * `push` throws the same code: the stream cannot be resynchronised.
 *
 * Between pushes the decoder holds no chunk, unless a frame callback threw: what
 * is left of one (the start of a header or of a body) is taken into its own
 * state before `push` returns. An idle stream, of which a server may have many,
 * costs this object alone.
 */
export class FrameDecoder {
  private readonly framing: Framing;
  private state: State = READING_HEADER;
  // Received bytes not yet consumed: `head` from `offset` on, then each of `rest`.
  // `rest` exists only while chunks wait behind one a frame callback threw in.
  private head: Buffer = EMPTY;
  private rest: Buffer[] | undefined;
  private offset = 0;
  private buffered = 0;
  // The body's length; while a header split across chunks is being read, the part of the header read so far.
  private bodyLength = 0;
  // The body of a frame split across chunks.
  private partial: Buffer | undefined;
  // How much of the split header (READING_HEADER) or split body (READING_BODY) has arrived.
  private filled = 0;
  private failure: RingportError | undefined;

  /** @param framing settings from `resolveFraming`, trusted as valid. */
  constructor(framing: Framing) {
    this.framing = framing;
  }

  /** Bytes received but not yet delivered, the length prefix of an unfinished frame included. */
  get bufferedBytes(): number {
    const header = this.state === READING_BODY ? this.framing.lengthBytes : 0;
    return header + this.buffered + this.filled;
  }

  /**
   * Feeds one chunk of the stream and calls `onFrame` for every frame it completes,
   * in order. A chunk may have any size, including 0 bytes.
   *
   * The decoder may keep a reference to `chunk` and delivered bodies may be views of
   * it, so the caller must not reuse the chunk's memory. If `onFrame` throws, the
   * exception propagates and the rest of the chunk is kept for the next `push`.
   *
   * @throws RingportError `RP_ERR_FRAME_TOO_LARGE` when a header declares more than
   *   `maxFrameBytes`, after delivering the frames before it; and on every call after that.
   */
  push(chunk: Buffer, onFrame: (body: Buffer) => void): void {
    this.pushRanges(chunk, (buffer, start, end) =>
      onFrame(start === 0 && end === buffer.length ? buffer : buffer.subarray(start, end)),
    );
  }

  /**
   * As `push`, but each frame is given as `buffer[start, end)` rather than as a
   * view. The range is valid only during the call unless the caller takes a
   * view of it.
   */
  pushRanges(chunk: Buffer, onFrame: (buffer: Buffer, start: number, end: number) => void): void {
    this.pushTo(chunk, { receiveFrame: onFrame });
  }

  /**
   * As `pushRanges`, delivering to `sink.receiveFrame`: the hot path makes no
   * object per frame or per chunk, and an object that is its own sink (a
   * session) needs no closure per stream.
   */
  pushTo(chunk: Buffer, sink: FrameSink): void {
    if (this.failure !== undefined) {
      throw new RingportError(this.failure.code, `frame decoder stopped by an earlier error: ${this.failure.message}`, {
        cause: this.failure,
      });
    }
    if (chunk.length > 0) {
      if (this.buffered === 0) this.head = chunk;
      else (this.rest ??= []).push(chunk);
      this.buffered += chunk.length;
    }
    for (;;) {
      switch (this.state) {
        case READING_HEADER: {
          const length = this.readHeader();
          if (length < 0) return;
          // Checked before it is stored: a declared length never reaches the decoder's fields unless it is allowed.
          if (length > this.framing.maxFrameBytes) this.fail(length);
          this.bodyLength = length;
          this.state = READING_BODY;
          break;
        }
        case READING_BODY: {
          // The body is `body[start, start + bodyLength)`.
          let body: Buffer = EMPTY;
          let start = 0;
          if (this.bodyLength > 0) {
            if (this.partial === undefined && this.head.length - this.offset >= this.bodyLength) {
              // Within one chunk: the body is a range of it, no copy.
              body = this.head;
              start = this.offset;
              this.advance(this.bodyLength);
            } else {
              const whole = this.readSplitBody();
              if (whole === undefined) return;
              body = whole;
            }
          }
          // The state moves on before the callback so that a throwing callback leaves it consistent.
          this.state = READING_HEADER;
          sink.receiveFrame(body, start, start + this.bodyLength);
          break;
        }
      }
    }
  }

  /** Reads the length prefix; returns -1, having taken what there is of it, until it has all arrived. */
  private readHeader(): number {
    const { lengthBytes, byteOrder } = this.framing;
    if (this.filled === 0 && this.head.length - this.offset >= lengthBytes) {
      const length = readUint(this.head, this.offset, lengthBytes, byteOrder);
      this.advance(lengthBytes);
      return length;
    }
    // Split across chunks: taken a byte at a time, the part read so far kept
    // in `bodyLength`, so that no buffer is kept per decoder to gather headers in.
    let length = this.filled === 0 ? 0 : this.bodyLength;
    while (this.filled < lengthBytes) {
      if (this.buffered === 0) {
        // At most three bytes of the four: small enough to stay a small integer.
        this.bodyLength = length;
        return -1;
      }
      const byte = this.head[this.offset];
      this.advance(1);
      // Multiplying, not shifting, keeps a 4-byte length of 2^31 or more positive.
      length = byteOrder === 'le' ? length + byte * LE_BYTE_WEIGHTS[this.filled] : length * 256 + byte;
      this.filled++;
    }
    this.filled = 0;
    return length;
  }

  /** Copies what has arrived of a body that is not within one chunk; returns the body once it is whole. */
  private readSplitBody(): Buffer | undefined {
    if (this.partial === undefined) {
      if (this.buffered === 0) return undefined;
      // The frame is split. Its buffer grows with what has arrived (doubling, up to
      // the declared length) rather than being reserved in full from the header:
      // a peer that declares 1 MiB and sends one byte must not cost us 1 MiB.
      this.partial = Buffer.allocUnsafe(Math.min(this.bodyLength, Math.max(MIN_PARTIAL_BYTES, this.buffered)));
      this.filled = 0;
    }
    const n = Math.min(this.buffered, this.bodyLength - this.filled);
    if (this.filled + n > this.partial.length) {
      const grown = Buffer.allocUnsafe(Math.min(this.bodyLength, Math.max(this.filled + n, this.partial.length * 2)));
      this.partial.copy(grown, 0, 0, this.filled);
      this.partial = grown;
    }
    this.consumeInto(this.partial, this.filled, n);
    this.filled += n;
    if (this.filled < this.bodyLength) return undefined;
    // Growth stops at exactly the declared length, so the buffer is the whole body.
    const body = this.partial;
    this.partial = undefined;
    this.filled = 0;
    return body;
  }

  /** Copies `n` buffered bytes into `dst` at `dstOffset`. */
  private consumeInto(dst: Buffer, dstOffset: number, n: number): void {
    while (n > 0) {
      const take = Math.min(n, this.head.length - this.offset);
      this.head.copy(dst, dstOffset, this.offset, this.offset + take);
      this.advance(take);
      dstOffset += take;
      n -= take;
    }
  }

  /** Drops `n` bytes, no more than remain in `head`. */
  private advance(n: number): void {
    this.offset += n;
    this.buffered -= n;
    if (this.offset === this.head.length) {
      // A used-up chunk is let go at once: it may be a view of a much larger receive buffer.
      this.head = this.rest?.shift() ?? EMPTY;
      if (this.rest?.length === 0) this.rest = undefined;
      this.offset = 0;
    }
  }

  private fail(declared: number): never {
    this.failure = new RingportError(
      ErrorCodes.FRAME_TOO_LARGE,
      `frame declares ${declared} bytes, over maxFrameBytes ${this.framing.maxFrameBytes}`,
    );
    this.head = EMPTY;
    this.rest = undefined;
    this.offset = 0;
    this.buffered = 0;
    throw this.failure;
  }
}
