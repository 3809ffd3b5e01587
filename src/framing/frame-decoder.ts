import { ErrorCodes, RingportError } from '../errors';
import { readUint } from './byte-order';
import type { Framing } from './options';

const READING_HEADER = 0;
const READING_BODY = 1;
type State = typeof READING_HEADER | typeof READING_BODY;

const EMPTY = Buffer.alloc(0);
// The first buffer for a split frame; small frames need no regrowth.
const MIN_PARTIAL_BYTES = 16 * 1024;

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
 */
export class FrameDecoder {
  private readonly framing: Framing;
  private state: State = READING_HEADER;
  // Received bytes not yet consumed; only the first buffer may be partly consumed.
  private readonly buffers: Buffer[] = [];
  private offset = 0;
  private buffered = 0;
  private bodyLength = 0;
  // The body of a frame split across chunks, and how much of it has arrived.
  private partial: Buffer | undefined;
  private filled = 0;
  // A header split across chunks is gathered here, so reading one never allocates.
  private readonly header: Buffer;
  private failure: RingportError | undefined;
  // The body just completed, as a range.
  private out: Buffer = EMPTY;
  private outStart = 0;
  private outEnd = 0;

  /** @param framing settings from `resolveFraming`, trusted as valid. */
  constructor(framing: Framing) {
    this.framing = framing;
    this.header = Buffer.alloc(framing.lengthBytes);
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
   * view: the hot path makes no object per frame. The range is valid only
   * during the call unless the caller takes a view of it.
   */
  pushRanges(chunk: Buffer, onFrame: (buffer: Buffer, start: number, end: number) => void): void {
    if (this.failure !== undefined) {
      throw new RingportError(this.failure.code, `frame decoder stopped by an earlier error: ${this.failure.message}`, {
        cause: this.failure,
      });
    }
    if (chunk.length > 0) {
      this.buffers.push(chunk);
      this.buffered += chunk.length;
    }
    for (;;) {
      switch (this.state) {
        case READING_HEADER:
          if (this.buffered < this.framing.lengthBytes) return;
          this.bodyLength = this.readHeader();
          if (this.bodyLength > this.framing.maxFrameBytes) this.fail();
          this.state = READING_BODY;
          break;
        case READING_BODY: {
          if (!this.readBody()) return;
          // The state moves on before the callback so that a throwing callback leaves it consistent.
          this.state = READING_HEADER;
          onFrame(this.out, this.outStart, this.outEnd);
          break;
        }
      }
    }
  }

  private readHeader(): number {
    const { lengthBytes, byteOrder } = this.framing;
    const first = this.buffers[0];
    if (first.length - this.offset >= lengthBytes) {
      const length = readUint(first, this.offset, lengthBytes, byteOrder);
      this.advance(lengthBytes);
      return length;
    }
    this.consumeInto(this.header, 0, lengthBytes);
    return readUint(this.header, 0, lengthBytes, byteOrder);
  }

  /** Sets `out[outStart, outEnd)` to the next body and returns true, or returns false until it has arrived. */
  private readBody(): boolean {
    if (this.partial === undefined) {
      if (this.bodyLength === 0) return this.deliver(EMPTY, 0, 0);
      if (this.buffered === 0) return false;
      const first = this.buffers[0];
      if (first.length - this.offset >= this.bodyLength) {
        // Within one chunk: the body is a range of it, no copy.
        const start = this.offset;
        this.advance(this.bodyLength);
        return this.deliver(first, start, start + this.bodyLength);
      }
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
    if (this.filled < this.bodyLength) return false;
    // Growth stops at exactly the declared length, so the buffer is the whole body.
    const body = this.partial;
    this.partial = undefined;
    this.filled = 0;
    return this.deliver(body, 0, body.length);
  }

  private deliver(buffer: Buffer, start: number, end: number): true {
    this.out = buffer;
    this.outStart = start;
    this.outEnd = end;
    return true;
  }

  /** Copies `n` buffered bytes into `dst` at `dstOffset`. */
  private consumeInto(dst: Buffer, dstOffset: number, n: number): void {
    while (n > 0) {
      const first = this.buffers[0];
      const take = Math.min(n, first.length - this.offset);
      first.copy(dst, dstOffset, this.offset, this.offset + take);
      this.advance(take);
      dstOffset += take;
      n -= take;
    }
  }

  /** Drops `n` bytes, no more than remain in the first buffer. */
  private advance(n: number): void {
    this.offset += n;
    this.buffered -= n;
    if (this.offset === this.buffers[0].length) {
      this.buffers.shift();
      this.offset = 0;
    }
  }

  private fail(): never {
    this.failure = new RingportError(
      ErrorCodes.FRAME_TOO_LARGE,
      `frame declares ${this.bodyLength} bytes, over maxFrameBytes ${this.framing.maxFrameBytes}`,
    );
    this.buffers.length = 0;
    this.offset = 0;
    this.buffered = 0;
    throw this.failure;
  }
}
