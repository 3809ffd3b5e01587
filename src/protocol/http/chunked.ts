import { HeadError } from './request-head';

const SIZE = 0;
const DATA = 1;
const DATA_END = 2;
const TRAILERS = 3;
const DONE = 4;

/** Bytes allowed in no chunk line: the controls but HTAB (RFC 9110 section 5.5; RFC 9112 section 7.1.1). */
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;
/** A chunk-size line longer than this is refused: 16 hex digits and a little room for extensions. */
const MAX_LINE_BYTES = 4096;

/**
 * A chunked request body (RFC 9112 section 7.1), decoded as it arrives. The
 * body is limited as a whole: a size line that would take it past
 * `maxBodyBytes` throws `HeadError` 413 before the chunk is buffered.
 */
export class ChunkedBody {
  private state = SIZE;
  private remaining = 0;
  private readonly parts: Buffer[] = [];
  private total = 0;
  private line = '';

  constructor(private readonly maxBodyBytes: number) {}

  get done(): boolean {
    return this.state === DONE;
  }

  /** The whole body, once `done`. */
  body(): Buffer {
    return this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts, this.total);
  }

  /** Takes bytes from `buffer[at, end)`; returns where it stopped (at `end`, or just after the body). Throws `HeadError`. */
  push(buffer: Buffer, at: number, end: number): number {
    while (at < end && this.state !== DONE) {
      if (this.state === DATA) {
        const take = Math.min(this.remaining, end - at);
        // A copy: the request outlives the read it came in.
        this.parts.push(Buffer.from(buffer.subarray(at, at + take)));
        this.remaining -= take;
        at += take;
        if (this.remaining === 0) this.state = DATA_END;
        continue;
      }
      const lf = buffer.indexOf(10, at);
      if (lf < 0 || lf >= end) {
        this.line += buffer.toString('latin1', at, end);
        if (this.line.length > MAX_LINE_BYTES) throw new HeadError(400, 'chunk line too long');
        return end;
      }
      const line = this.line + buffer.toString('latin1', at, lf);
      this.line = '';
      at = lf + 1;
      if (!line.endsWith('\r')) throw new HeadError(400, 'chunk line without CRLF');
      this.endLine(line.slice(0, -1));
    }
    return at;
  }

  private endLine(line: string): void {
    // Extensions and trailer fields are otherwise taken unchecked: a bare CR (or NUL, or another control byte)
    // in one would pass, and a parser in front that ends lines at a bare CR reads another body. Refused as in a head.
    if (CONTROL.test(line)) throw new HeadError(400, 'control byte in a chunk line');
    switch (this.state) {
      case SIZE: {
        const size = line.split(';', 1)[0];
        if (!/^[0-9A-Fa-f]{1,15}$/.test(size)) throw new HeadError(400, 'bad chunk size');
        const n = parseInt(size, 16);
        if (this.total + n > this.maxBodyBytes) throw new HeadError(413, `body over ${this.maxBodyBytes} bytes`);
        this.total += n;
        this.remaining = n;
        this.state = n === 0 ? TRAILERS : DATA;
        return;
      }
      case DATA_END:
        if (line !== '') throw new HeadError(400, 'chunk data longer than its size');
        this.state = SIZE;
        return;
      case TRAILERS:
        // Trailer fields are read and dropped; the empty line ends the body.
        if (line === '') this.state = DONE;
        return;
    }
  }
}
