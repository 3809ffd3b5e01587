import { randomFillSync } from 'node:crypto';

/** RFC 6455 section 5.2 opcodes. */
export const OPCODE = {
  CONTINUATION: 0x0,
  TEXT: 0x1,
  BINARY: 0x2,
  CLOSE: 0x8,
  PING: 0x9,
  PONG: 0xa,
} as const;

/** A control frame's payload is at most this long (section 5.5); a close reason, two bytes less. */
export const MAX_CONTROL_PAYLOAD = 125;

/** Bytes of the header before the mask key, for a payload of `length` bytes. */
function headerBytes(length: number): number {
  return length < 126 ? 2 : length <= 0xffff ? 4 : 10;
}

/** Writes FIN + opcode and the payload length; returns where the mask key (or payload) goes. */
function writeHeader(frame: Buffer, opcode: number, length: number, masked: boolean): number {
  frame[0] = 0x80 | opcode;
  const mask = masked ? 0x80 : 0;
  if (length < 126) {
    frame[1] = mask | length;
    return 2;
  }
  if (length <= 0xffff) {
    frame[1] = mask | 126;
    frame.writeUInt16BE(length, 2);
    return 4;
  }
  frame[1] = mask | 127;
  // Lengths here stay below 2^32 (maxFrameBytes is a u32), so the high word is 0.
  frame.writeUInt32BE(0, 2);
  frame.writeUInt32BE(length, 6);
  return 10;
}

// Mask keys come from the system's CSPRNG, as section 10.3 asks, a page at a time.
const keyPool = Buffer.allocUnsafe(4096);
let keyOffset = keyPool.length;

function nextMaskKey(frame: Buffer, at: number): void {
  if (keyOffset + 4 > keyPool.length) {
    randomFillSync(keyPool);
    keyOffset = 0;
  }
  keyPool.copy(frame, at, keyOffset, keyOffset + 4);
  keyOffset += 4;
}

/** XORs `buffer[start, end)` with the 4-byte key at `key[keyAt]`, starting at key byte `phase`. */
export function applyMask(buffer: Uint8Array, start: number, end: number, key: Uint8Array, keyAt: number, phase = 0): void {
  xorWithKey(buffer, start, end, key[keyAt], key[keyAt + 1], key[keyAt + 2], key[keyAt + 3], phase);
}

/**
 * XORs `buffer[start, end)` with the key bytes `k0..k3`, the first byte
 * taking key byte `phase`: masking and unmasking are the same operation.
 * The key comes as four numbers so that a receiver can keep a frame's key
 * without a Buffer of its own.
 */
export function xorWithKey(buffer: Uint8Array, start: number, end: number, k0: number, k1: number, k2: number, k3: number, phase: number): void {
  let i = start;
  // Up to the key's start, so that the loop below takes four bytes at a time.
  for (; i < end && phase !== 0; i++, phase = (phase + 1) & 3) buffer[i] ^= phase === 1 ? k1 : phase === 2 ? k2 : k3;
  const quads = end - ((end - i) & 3);
  for (; i < quads; i += 4) {
    buffer[i] ^= k0;
    buffer[i + 1] ^= k1;
    buffer[i + 2] ^= k2;
    buffer[i + 3] ^= k3;
  }
  if (i < end) buffer[i++] ^= k0;
  if (i < end) buffer[i++] ^= k1;
  if (i < end) buffer[i] ^= k2;
}

/**
 * One complete frame carrying `prefix` (the packet id of a binary message,
 * or nothing) followed by `payload`. A server's frames are unmasked, so the
 * same bytes serve every recipient of a broadcast; a client's are masked
 * with a fresh key per frame (section 5.3).
 */
export function encodeFrame(opcode: number, prefix: number, prefixBytes: 0 | 2, byteOrder: 'le' | 'be', payload: Uint8Array, masked: boolean): Buffer {
  const length = prefixBytes + payload.length;
  const at = headerBytes(length);
  const keyAt = at;
  const dataAt = masked ? at + 4 : at;
  const frame = Buffer.allocUnsafe(dataAt + length);
  writeHeader(frame, opcode, length, masked);
  if (prefixBytes === 2) {
    if (byteOrder === 'le') frame.writeUInt16LE(prefix, dataAt);
    else frame.writeUInt16BE(prefix, dataAt);
  }
  frame.set(payload, dataAt + prefixBytes);
  if (masked) {
    nextMaskKey(frame, keyAt);
    applyMask(frame, dataAt, dataAt + length, frame, keyAt);
  }
  return frame;
}

/** A control frame (ping, pong, close) with a payload of at most 125 bytes. */
export function encodeControl(opcode: number, payload: Uint8Array, masked: boolean): Buffer {
  return encodeFrame(opcode, 0, 0, 'be', payload.subarray(0, MAX_CONTROL_PAYLOAD), masked);
}

/** A close frame's payload: the code, then as much of `reason` as fits in whole UTF-8 characters. */
export function closePayload(code: number, reason: string): Buffer {
  let text = Buffer.from(reason, 'utf8');
  if (text.length > MAX_CONTROL_PAYLOAD - 2) {
    // Cut at a character boundary: a continuation byte is 10xxxxxx.
    let end = MAX_CONTROL_PAYLOAD - 2;
    while (end > 0 && (text[end] & 0xc0) === 0x80) end--;
    text = text.subarray(0, end);
  }
  const payload = Buffer.allocUnsafe(2 + text.length);
  payload.writeUInt16BE(code, 0);
  text.copy(payload, 2);
  return payload;
}
