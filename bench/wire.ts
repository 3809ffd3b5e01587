/**
 * The wire format of DESIGN.md written out by hand for the load generators
 * and the `node:net` baseline server: `u32 LE length | u16 LE packet id | payload`,
 * the length counting id + payload. Nothing here imports ringport, so the
 * baseline and the load generators cannot inherit its costs or its bugs.
 */

export const LENGTH_BYTES = 4;
export const PACKET_ID_BYTES = 2;
export const HEADER_BYTES = LENGTH_BYTES + PACKET_ID_BYTES;
/** ringport's default `maxFrameBytes`; the baseline refuses larger frames the same way. */
export const MAX_FRAME_BYTES = 1024 * 1024;

/** The packets the bench workloads speak, identical for every server under test. */
export const PacketIds = {
  /** Echo: the server sends the frame back to its sender. */
  ECHO: 1,
  /** Broadcast: the server sends the frame to every connection, the sender included. */
  BROADCAST: 2,
  /** The server replies with a u32 payload: how many connections it has. */
  COUNT: 3,
  /** Payload u32 room: the server seats the sender in that room, then sends the frame back to say so. */
  JOIN: 4,
  /** The server sends the frame to every other connection in the sender's room. */
  ROOM: 5,
} as const;

/**
 * Where every WebSocket server under test listens (ringport/websocket/*,
 * uWebSockets.js, ws). One binary message carries one packet: its body is a
 * framed packet's body (u16 LE packet id | payload), so the packets above
 * are the same over both protocols.
 */
export const WEBSOCKET_PATH = '/play';

/** Writes the 6-byte header of a frame whose payload is `payloadBytes` long; returns where the payload starts. */
export function writeHeader(buf: Buffer, offset: number, packetId: number, payloadBytes: number): number {
  buf.writeUInt32LE(PACKET_ID_BYTES + payloadBytes, offset);
  buf.writeUInt16LE(packetId, offset + LENGTH_BYTES);
  return offset + HEADER_BYTES;
}

/** One complete frame, for the rare packets that are not on a hot path. */
export function encodeFrame(packetId: number, payload: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(HEADER_BYTES + payload.length);
  frame.set(payload, writeHeader(frame, 0, packetId, payload.length));
  return frame;
}

/**
 * Called for each frame with the frame's body start (its packet id) in `buf`
 * at `bodyStart`. Only the first `peekBytes` of the body are guaranteed to be
 * readable there: a frame split across chunks is gathered that far and no further.
 */
export type FrameVisitor = (buf: Buffer, bodyStart: number, bodyLength: number) => void;

/**
 * Finds frames in a byte stream for a load generator, which needs to count
 * frames and read a few bytes of each (a timestamp, a sequence number) but
 * never needs a frame as a Buffer of its own. It walks the length prefixes in
 * place and allocates nothing per frame: a frame that straddles chunks has
 * its first bytes copied into one scratch buffer made at construction.
 */
export class FrameScanner {
  private readonly head: Buffer;
  /** Bytes of the straddling frame copied into `head` so far. */
  private headFilled = 0;
  /** Bytes of the straddling frame seen so far; 0 when no frame is open. */
  private seen = 0;

  constructor(
    private readonly peekBytes: number,
    private readonly onFrame: FrameVisitor,
  ) {
    this.head = Buffer.alloc(LENGTH_BYTES + peekBytes);
  }

  scan(chunk: Buffer): void {
    let pos = this.seen > 0 ? this.finishStraddler(chunk) : 0;
    const end = chunk.length;
    while (end - pos >= LENGTH_BYTES) {
      const bodyLength = chunk.readUInt32LE(pos);
      const frameEnd = pos + LENGTH_BYTES + bodyLength;
      if (frameEnd > end) break;
      this.onFrame(chunk, pos + LENGTH_BYTES, bodyLength);
      pos = frameEnd;
    }
    if (pos < end) this.take(chunk, pos, end);
  }

  /** Continues the frame that began in an earlier chunk; returns where the rest of `chunk` starts. */
  private finishStraddler(chunk: Buffer): number {
    const pos = this.take(chunk, 0, chunk.length);
    if (this.headFilled < LENGTH_BYTES) return pos;
    const bodyLength = this.head.readUInt32LE(0);
    if (this.seen < LENGTH_BYTES + bodyLength) return pos;
    this.seen = 0;
    this.headFilled = 0;
    this.onFrame(this.head, LENGTH_BYTES, bodyLength);
    return pos;
  }

  /** Records bytes `from..to` of a frame that is not complete in this chunk; returns `to`, or the frame's end if sooner. */
  private take(chunk: Buffer, from: number, to: number): number {
    if (this.headFilled < this.head.length) {
      const n = Math.min(to - from, this.head.length - this.headFilled);
      chunk.copy(this.head, this.headFilled, from, from + n);
      this.headFilled += n;
    }
    let stop = to;
    if (this.headFilled >= LENGTH_BYTES) {
      const frameBytes = LENGTH_BYTES + this.head.readUInt32LE(0);
      stop = Math.min(to, from + frameBytes - this.seen);
    }
    // `take` never passes the frame's end, though the head copy may (when the frame
    // is shorter than the head): those bytes are never read, as the visitor is told the body length.
    this.seen += stop - from;
    return stop;
  }
}

/**
 * Splits a byte stream into whole frames for the baseline server, which
 * forwards frames byte for byte. Each frame is handed over as a range of a
 * received chunk, without copying; only a frame split across chunks is
 * copied (once, joined with the next chunk).
 */
export class FrameReader {
  private carry: Buffer | undefined;

  /**
   * Calls `onFrame(buf, start, end, packetId)` for every complete frame in order.
   * Returns false (and stops) when a frame declares more than {@link MAX_FRAME_BYTES}.
   */
  push(chunk: Buffer, onFrame: (buf: Buffer, start: number, end: number, packetId: number) => void): boolean {
    const buf = this.carry === undefined ? chunk : Buffer.concat([this.carry, chunk]);
    let pos = 0;
    while (buf.length - pos >= HEADER_BYTES) {
      const bodyLength = buf.readUInt32LE(pos);
      if (bodyLength > MAX_FRAME_BYTES || bodyLength < PACKET_ID_BYTES) return false;
      const frameEnd = pos + LENGTH_BYTES + bodyLength;
      if (frameEnd > buf.length) break;
      onFrame(buf, pos, frameEnd, buf.readUInt16LE(pos + LENGTH_BYTES));
      pos = frameEnd;
    }
    this.carry = pos < buf.length ? buf.subarray(pos) : undefined;
    return true;
  }
}

/**
 * The HTTP workloads (`http-*`): every server under test (ringport/http/*,
 * uWebSockets.js/http, node:http) answers `GET /` with `HTTP_GREETING` as
 * text/plain and `POST /echo` with the request's body as
 * application/octet-stream, 200 both, keep-alive. The load generators send
 * `HTTP_ECHO_BODY_BYTES` bytes to /echo.
 */
export const HTTP_GREETING = 'Hello, World!';
export const HTTP_GET_PATH = '/';
export const HTTP_ECHO_PATH = '/echo';
export const HTTP_ECHO_BODY_BYTES = 32;
