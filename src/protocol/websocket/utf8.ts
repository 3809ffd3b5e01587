/**
 * A UTF-8 validator that takes its input in pieces (the fragments of a
 * WebSocket text message, or the chunks they arrive in) and says where the
 * first invalid byte is, as soon as that byte arrives: RFC 6455 section 8.1
 * asks an endpoint to fail a connection on invalid UTF-8 as soon as it can
 * tell. Overlong forms, UTF-16 surrogates (U+D800..U+DFFF) and code points
 * above U+10FFFF are invalid (RFC 3629).
 */
export class Utf8Validator {
  /** Continuation bytes still owed by the current sequence. */
  private needed = 0;
  /** The range the next byte must fall in: tighter than 0x80..0xbf only for a sequence's second byte. */
  private lower = 0x80;
  private upper = 0xbf;

  /** True when every sequence begun has been completed. */
  get complete(): boolean {
    return this.needed === 0;
  }

  /** Checks `bytes[start, end)`; returns the index of the first invalid byte, or -1. */
  check(bytes: Uint8Array, start: number, end: number): number {
    let needed = this.needed;
    let lower = this.lower;
    let upper = this.upper;
    for (let i = start; i < end; i++) {
      const byte = bytes[i];
      if (needed === 0) {
        if (byte < 0x80) continue;
        if (byte >= 0xc2 && byte <= 0xdf) {
          needed = 1;
        } else if (byte >= 0xe0 && byte <= 0xef) {
          needed = 2;
          // E0 needs A0..BF (no overlong); ED needs 80..9F (no surrogate).
          if (byte === 0xe0) lower = 0xa0;
          else if (byte === 0xed) upper = 0x9f;
        } else if (byte >= 0xf0 && byte <= 0xf4) {
          needed = 3;
          // F0 needs 90..BF (no overlong); F4 needs 80..8F (nothing past U+10FFFF).
          if (byte === 0xf0) lower = 0x90;
          else if (byte === 0xf4) upper = 0x8f;
        } else {
          this.save(0, 0x80, 0xbf);
          return i;
        }
        continue;
      }
      if (byte < lower || byte > upper) {
        this.save(0, 0x80, 0xbf);
        return i;
      }
      lower = 0x80;
      upper = 0xbf;
      needed--;
    }
    this.save(needed, lower, upper);
    return -1;
  }

  /** Starts over, for the next message. */
  reset(): void {
    this.save(0, 0x80, 0xbf);
  }

  private save(needed: number, lower: number, upper: number): void {
    this.needed = needed;
    this.lower = lower;
    this.upper = upper;
  }
}

/** Whether `bytes[start, end)` is complete, valid UTF-8 on its own. */
export function isValidUtf8(bytes: Uint8Array, start = 0, end = bytes.length): boolean {
  const validator = new Utf8Validator();
  return validator.check(bytes, start, end) === -1 && validator.complete;
}
