import type { Rng } from './stress-rng';

/**
 * What one end of a connection must receive, checked as it arrives without
 * keeping the stream: the sender pushes each buffer it hands over (the bytes
 * are never changed afterwards, as the Backend contract requires), the
 * receiver feeds every chunk, and the first byte that differs, is missing or
 * is extra is recorded with its stream offset.
 */
export class ExpectedStream {
  /** Bytes pushed by the sender so far. */
  expected = 0;
  /** Bytes fed by the receiver so far. */
  received = 0;
  /** The first discrepancy, if any; later chunks are then only counted. */
  failure: string | undefined;

  private segments: Buffer[] = [];
  private head = 0;
  private offset = 0;

  constructor(readonly name: string) {}

  push(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.segments.push(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length));
    this.expected += bytes.length;
  }

  feed(chunk: Buffer): void {
    const start = this.received;
    this.received += chunk.length;
    if (this.failure !== undefined) return;
    let at = 0;
    while (at < chunk.length) {
      if (this.head >= this.segments.length) {
        this.failure = `${this.name}: ${chunk.length - at} byte(s) arrived beyond the ${this.expected} sent (at offset ${start + at})`;
        return;
      }
      const segment = this.segments[this.head];
      const n = Math.min(segment.length - this.offset, chunk.length - at);
      const got = chunk.subarray(at, at + n);
      const want = segment.subarray(this.offset, this.offset + n);
      if (!got.equals(want)) {
        let i = 0;
        while (got[i] === want[i]) i++;
        this.failure =
          `${this.name}: byte ${start + at + i} differs (got 0x${got[i].toString(16)}, want 0x${want[i].toString(16)}; ` +
          `chunk of ${chunk.length} at offset ${start})`;
        return;
      }
      at += n;
      this.offset += n;
      if (this.offset === segment.length) {
        this.segments[this.head] = EMPTY;
        this.head++;
        this.offset = 0;
        if (this.head > 1024) {
          this.segments = this.segments.slice(this.head);
          this.head = 0;
        }
      }
    }
  }

  /** Everything pushed has arrived. */
  get complete(): boolean {
    return this.received === this.expected;
  }
}

const EMPTY = Buffer.alloc(0);

/** Not a power of two, so a chunk dropped, repeated or swapped never lines up with the pattern again. */
const PATTERN_PERIOD = 1_048_573;

/** One random block shared by every stream of a test; streams read it from different offsets. */
export class Pattern {
  readonly bytes: Buffer;

  constructor(rng: Rng, readonly maxChunk: number) {
    this.bytes = rng.bytes(PATTERN_PERIOD + maxChunk);
  }

  /** A stream of the pattern starting at a random offset. */
  stream(rng: Rng): PatternStream {
    return new PatternStream(this, rng.int(0, PATTERN_PERIOD - 1));
  }
}

export class PatternStream {
  constructor(
    private readonly pattern: Pattern,
    private position: number,
  ) {}

  /** The next `n` bytes (at most `maxChunk`), as a view: no copy, never written to. */
  take(n: number): Buffer {
    if (n > this.pattern.maxChunk) throw new Error(`take(${n}) is over the pattern's chunk limit`);
    const at = this.position % PATTERN_PERIOD;
    this.position += n;
    return this.pattern.bytes.subarray(at, at + n);
  }
}
