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
          const body = this.readBody();
          if (body === undefined) return;
          // The state moves on before the callback so that a throwing callback leaves it consistent.
          this.state = READING_HEADER;
          onFrame(body);
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

  private readBody(): Buffer | undefined {
    if (this.partial === undefined) {
      if (this.bodyLength === 0) return EMPTY;
      if (this.buffered === 0) return undefined;
      if (this.buffers[0].length - this.offset >= this.bodyLength) return this.consume(this.bodyLength);
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

  /** Takes `n` bytes that lie in the first buffer, as a view of it. */
  private consume(n: number): Buffer {
    const first = this.buffers[0];
    const view = this.offset === 0 && n === first.length ? first : first.subarray(this.offset, this.offset + n);
    this.advance(n);
    return view;
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
