import { MAX_CONTROL_PAYLOAD, OPCODE, xorWithKey } from './frame';
import { Utf8Validator } from './utf8';

/** Close codes the receiver fails a connection with (RFC 6455 section 7.4.1). */
export const CLOSE_CODE = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  UNSUPPORTED_DATA: 1003,
  NO_STATUS: 1005,
  INVALID_PAYLOAD: 1007,
  POLICY_VIOLATION: 1008,
  MESSAGE_TOO_BIG: 1009,
  INTERNAL_ERROR: 1011,
} as const;

/** What the receiver finds in the stream. Every call happens inside `push`. */
export interface ReceiverSink {
  /** A whole data message, `buffer[start, end)`, unmasked; a text one is valid UTF-8. */
  message(binary: boolean, buffer: Buffer, start: number, end: number): void;
  ping(payload: Buffer): void;
  pong(payload: Buffer): void;
  /** The peer's close frame: its code (1005 when it gave none) and reason, both checked. */
  close(code: number, reason: string): void;
  /** The peer broke the protocol: fail the connection with this close code (section 7.1.7). */
  violation(code: number, reason: string): void;
}

export interface ReceiverOptions {
  /** Frames must be masked (a server reading a client) or must not be (a client reading a server). */
  masked: boolean;
  /** The largest data message, all its fragments together; a larger one fails with 1009 before it is buffered. */
  maxMessageBytes: number;
  /** Whether text messages are taken; when not, the first text frame fails with 1003. */
  acceptText: boolean;
}

const HEADER = 0;
const EXTENDED_LENGTH = 1;
const MASK_KEY = 2;
const PAYLOAD = 3;
const STOPPED = 4;

const EMPTY = Buffer.alloc(0);
// The least a message buffer starts with when a message spans reads or frames.
const MIN_MESSAGE_BUFFER = 512;

/** The bytes of a frame header whose second byte is `b1`: 2, then a 16- or 64-bit length, then the mask key. */
function headerLength(b1: number, masked: boolean): number {
  const short = b1 & 0x7f;
  return 2 + (short < 126 ? 0 : short === 126 ? 2 : 8) + (masked ? 4 : 0);
}

/** Close codes a peer may send (section 7.4): the defined ones, the registered 1012-1014, and 3000-4999. */
function isValidCloseCode(code: number): boolean {
  return (
    (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999)
  );
}

/**
 * RFC 6455 frames to messages: an explicit state machine over the bytes as
 * they come, as `ws`'s receiver is. It checks everything section 5 asks of a
 * receiver (reserved bits, opcodes, masking, control frame rules,
 * fragmentation, lengths) at the header, before any payload is buffered, and
 * text as it arrives. Payloads are unmasked in place: the receive buffer
 * holds this connection's bytes only. A message inside one read is handed
 * on as a range of that read, without a copy; one that spans reads or
 * frames is gathered in a buffer that grows with what has arrived.
 */
export class FrameReceiver {
  private state = HEADER;
  // The current frame.
  private fin = false;
  private opcode = 0;
  private frameLength = 0;
  private frameDone = 0;
  // The mask key, as four numbers: read once per frame, no buffer of its own.
  private k0 = 0;
  private k1 = 0;
  private k2 = 0;
  private k3 = 0;
  // A header split across reads is gathered here (made the first time one is); one within a read is read in place.
  private header: Buffer | undefined;
  private headerBytes = 0;
  private headerNeed = 2;
  // The current data message (a fragmented one spans frames).
  private messageOpcode = -1;
  private messageBytes = 0;
  private message: Buffer | undefined;
  // Made for the first text message: a binary-only peer never needs one.
  private utf8: Utf8Validator | undefined;
  // A control frame's payload, gathered when it is split across reads.
  private control: Buffer | undefined;

  /**
   * Whom the next `push` reports to. A receiver at rest holds nothing of its
   * connection's, so one can serve many connections in turn (see
   * `WebSocketProtocol`'s spare receivers): whoever pushes sets this first.
   */
  sink: ReceiverSink;

  constructor(
    sink: ReceiverSink,
    private readonly options: ReceiverOptions,
  ) {
    this.sink = sink;
  }

  /**
   * Between frames, outside any fragmented message: nothing of the stream so
   * far is held, so this receiver may go on with another connection's bytes.
   */
  get atRest(): boolean {
    return this.state === HEADER && this.headerBytes === 0 && this.messageOpcode < 0;
  }

  /** Takes the next bytes of the stream; the chunk's payload bytes are unmasked in place. */
  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length && this.state !== STOPPED) {
      if (this.state === PAYLOAD) {
        at = this.readPayload(chunk, at);
        continue;
      }
      if (this.state === HEADER && this.headerBytes === 0 && chunk.length - at >= 2) {
        const whole = headerLength(chunk[at + 1], this.options.masked);
        if (chunk.length - at >= whole) {
          // The usual case: the whole header is in this read, and is read where it lies.
          if (!this.readHeader(chunk, at)) return;
          at += whole;
          if (this.frameLength === 0) this.endFrame(EMPTY, 0);
          continue;
        }
      }
      // Header, extended length and mask key split across reads: gathered a byte run at a time.
      const header = (this.header ??= Buffer.allocUnsafe(14));
      const take = Math.min(this.headerNeed - this.headerBytes, chunk.length - at);
      chunk.copy(header, this.headerBytes, at, at + take);
      this.headerBytes += take;
      at += take;
      if (this.headerBytes < this.headerNeed) return;
      this.advanceHeader();
      // A frame with an empty payload completes without any payload byte to read.
      if (this.state === PAYLOAD && this.frameLength === 0) this.endFrame(EMPTY, 0);
    }
  }

  /** A whole header at `src[at]`: checks it and starts the payload; false when the frame broke a rule. */
  private readHeader(src: Buffer, at: number): boolean {
    if (!this.readFirstTwo(src[at], src[at + 1])) return false;
    const short = src[at + 1] & 0x7f;
    let p = at + 2;
    if (short === 126) {
      this.frameLength = src.readUInt16BE(p);
      p += 2;
    } else if (short === 127) {
      if (!this.readLength64(src, p)) return false;
      p += 8;
    } else {
      this.frameLength = short;
    }
    if (!this.withinLimit()) return false;
    if (this.options.masked) this.readKey(src, p);
    this.startPayload();
    return true;
  }

  /** A 64-bit length at `src[p]`. Section 5.2: its most significant bit must be 0; past 2^32 is over every limit here. */
  private readLength64(src: Buffer, p: number): boolean {
    const high = src.readUInt32BE(p);
    if (high !== 0) {
      this.fail(high >= 0x80000000 ? CLOSE_CODE.PROTOCOL_ERROR : CLOSE_CODE.MESSAGE_TOO_BIG, 'frame length too large');
      return false;
    }
    this.frameLength = src.readUInt32BE(p + 4);
    return true;
  }

  private readKey(src: Buffer, p: number): void {
    this.k0 = src[p];
    this.k1 = src[p + 1];
    this.k2 = src[p + 2];
    this.k3 = src[p + 3];
  }

  /** Moves through the fields of a split header once each has wholly arrived. */
  private advanceHeader(): void {
    const header = this.header!;
    switch (this.state) {
      case HEADER: {
        if (!this.readFirstTwo(header[0], header[1])) return;
        const short = header[1] & 0x7f;
        if (short >= 126) {
          this.state = EXTENDED_LENGTH;
          this.headerNeed = 2 + (short === 126 ? 2 : 8);
          return;
        }
        this.frameLength = short;
        this.afterLength();
        return;
      }
      case EXTENDED_LENGTH: {
        if (this.headerNeed === 4) this.frameLength = header.readUInt16BE(2);
        else if (!this.readLength64(header, 2)) return;
        this.afterLength();
        return;
      }
      case MASK_KEY:
        this.readKey(header, this.headerNeed - 4);
        this.startPayload();
        return;
    }
  }

  /** Checks the first two bytes; false when the frame broke a rule (the receiver has stopped). */
  private readFirstTwo(b0: number, b1: number): boolean {
    this.fin = (b0 & 0x80) !== 0;
    this.opcode = b0 & 0x0f;
    // No extension is ever negotiated, so every reserved bit must be 0 (section 5.2).
    if ((b0 & 0x70) !== 0) return this.fail(CLOSE_CODE.PROTOCOL_ERROR, 'reserved bits set');
    const masked = (b1 & 0x80) !== 0;
    if (masked !== this.options.masked) {
      return this.fail(CLOSE_CODE.PROTOCOL_ERROR, this.options.masked ? 'client frame not masked' : 'server frame masked');
    }
    const opcode = this.opcode;
    if (opcode >= 0x8) {
      if (opcode > OPCODE.PONG) return this.fail(CLOSE_CODE.PROTOCOL_ERROR, `unknown opcode ${opcode}`);
      // Section 5.5: control frames are never fragmented and carry at most 125 bytes.
      if (!this.fin) return this.fail(CLOSE_CODE.PROTOCOL_ERROR, 'fragmented control frame');
      if ((b1 & 0x7f) > MAX_CONTROL_PAYLOAD) return this.fail(CLOSE_CODE.PROTOCOL_ERROR, 'control frame too long');
      return true;
    }
    if (opcode === OPCODE.CONTINUATION) {
      if (this.messageOpcode < 0) return this.fail(CLOSE_CODE.PROTOCOL_ERROR, 'continuation with no message to continue');
      return true;
    }
    if (opcode !== OPCODE.TEXT && opcode !== OPCODE.BINARY) return this.fail(CLOSE_CODE.PROTOCOL_ERROR, `unknown opcode ${opcode}`);
    if (this.messageOpcode >= 0) return this.fail(CLOSE_CODE.PROTOCOL_ERROR, 'new message inside a fragmented one');
    if (opcode === OPCODE.TEXT && !this.options.acceptText) return this.fail(CLOSE_CODE.UNSUPPORTED_DATA, 'text messages are not accepted');
    this.messageOpcode = opcode;
    this.messageBytes = 0;
    return true;
  }

  /** A data frame that would take its message past the limit fails now, before any of it is buffered. */
  private withinLimit(): boolean {
    if (this.opcode < 0x8 && this.messageBytes + this.frameLength > this.options.maxMessageBytes) {
      this.fail(CLOSE_CODE.MESSAGE_TOO_BIG, `message over ${this.options.maxMessageBytes} bytes`);
      return false;
    }
    return true;
  }

  private afterLength(): void {
    if (!this.withinLimit()) return;
    if (this.options.masked) {
      this.state = MASK_KEY;
      this.headerNeed += 4;
      return;
    }
    this.startPayload();
  }

  private startPayload(): void {
    this.state = PAYLOAD;
    this.frameDone = 0;
  }

  /** Reads what the chunk holds of the current frame's payload from `at`; returns where it stopped. */
  private readPayload(chunk: Buffer, at: number): number {
    const take = Math.min(this.frameLength - this.frameDone, chunk.length - at);
    const end = at + take;
    if (this.options.masked) xorWithKey(chunk, at, end, this.k0, this.k1, this.k2, this.k3, this.frameDone & 3);
    if (this.opcode >= 0x8) {
      this.gatherControl(chunk, at, end);
    } else {
      if (this.messageOpcode === OPCODE.TEXT) {
        const bad = (this.utf8 ??= new Utf8Validator()).check(chunk, at, end);
        if (bad >= 0) {
          this.fail(CLOSE_CODE.INVALID_PAYLOAD, 'invalid UTF-8 in a text message');
          return chunk.length;
        }
      }
      // A whole message inside this read goes on as a range of it; anything else is gathered.
      const wholeHere = this.fin && this.frameDone === 0 && take === this.frameLength && this.message === undefined;
      if (wholeHere) {
        this.frameDone = take;
        this.messageBytes = take;
        this.endFrame(chunk, at);
        return end;
      }
      this.gatherMessage(chunk, at, end);
    }
    this.frameDone += take;
    if (this.frameDone === this.frameLength) this.endFrame(EMPTY, 0);
    return end;
  }

  private gatherMessage(chunk: Buffer, at: number, end: number): void {
    const n = end - at;
    const need = this.messageBytes + n;
    if (this.message === undefined || need > this.message.length) {
      // Grows with what has arrived, never with what a header merely declares.
      const grown = Buffer.allocUnsafe(Math.min(this.options.maxMessageBytes, Math.max(need, MIN_MESSAGE_BUFFER, (this.message?.length ?? 0) * 2)));
      if (this.message !== undefined) this.message.copy(grown, 0, 0, this.messageBytes);
      this.message = grown;
    }
    chunk.copy(this.message, this.messageBytes, at, end);
    this.messageBytes = need;
  }

  private gatherControl(chunk: Buffer, at: number, end: number): void {
    this.control ??= Buffer.allocUnsafe(this.frameLength);
    chunk.copy(this.control, this.frameDone, at, end);
  }

  /**
   * The current frame's payload has all arrived. `whole` is set when the
   * message lay within one read: it is `whole[at, at + frameLength)`.
   */
  private endFrame(whole: Buffer, at: number): void {
    this.state = HEADER;
    this.headerBytes = 0;
    this.headerNeed = 2;
    if (this.opcode >= 0x8) {
      const payload = this.control ?? EMPTY;
      this.control = undefined;
      this.controlFrame(payload.subarray(0, this.frameLength));
      return;
    }
    if (!this.fin) return;
    const binary = this.messageOpcode === OPCODE.BINARY;
    if (!binary && !(this.utf8?.complete ?? true)) {
      this.fail(CLOSE_CODE.INVALID_PAYLOAD, 'text message ends inside a UTF-8 sequence');
      return;
    }
    const length = this.messageBytes;
    const buffer = whole !== EMPTY ? whole : (this.message ?? EMPTY);
    const start = whole !== EMPTY ? at : 0;
    this.messageOpcode = -1;
    this.messageBytes = 0;
    this.message = undefined;
    this.utf8?.reset();
    this.sink.message(binary, buffer, start, start + length);
  }

  private controlFrame(payload: Buffer): void {
    switch (this.opcode) {
      case OPCODE.PING:
        this.sink.ping(payload);
        return;
      case OPCODE.PONG:
        this.sink.pong(payload);
        return;
      case OPCODE.CLOSE: {
        if (payload.length === 1) {
          this.fail(CLOSE_CODE.PROTOCOL_ERROR, 'close frame with a one-byte payload');
          return;
        }
        const code = payload.length >= 2 ? payload.readUInt16BE(0) : CLOSE_CODE.NO_STATUS;
        if (payload.length >= 2 && !isValidCloseCode(code)) {
          this.fail(CLOSE_CODE.PROTOCOL_ERROR, `invalid close code ${code}`);
          return;
        }
        const validator = new Utf8Validator();
        if (validator.check(payload, 2, payload.length) >= 0 || !validator.complete) {
          this.fail(CLOSE_CODE.INVALID_PAYLOAD, 'invalid UTF-8 in the close reason');
          return;
        }
        // Nothing after a close frame is read (section 5.5.1).
        this.state = STOPPED;
        this.sink.close(code, payload.toString('utf8', 2));
        return;
      }
    }
  }

  private fail(code: number, reason: string): false {
    this.state = STOPPED;
    this.message = undefined;
    this.control = undefined;
    this.sink.violation(code, reason);
    return false;
  }
}
