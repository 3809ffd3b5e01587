import { ErrorCodes, RingportError } from '../../errors';
import { readUint, writeUint } from './byte-order';
import { PACKET_ID_BYTES, type Framing } from './options';

const MAX_PACKET_ID = 0xffff;

/**
 * Encodes a whole frame whose body is `u16 packet id | payload`. The packet id is
 * written in the same byte order as the length prefix, so one `byteOrder` setting
 * describes the whole wire format.
 *
 * Header, id and payload share one `Buffer.allocUnsafe`, which Node serves from its
 * pool for small sizes: the common small packet costs no allocation of its own.
 *
 * @throws RingportError `RP_ERR_INVALID_ARGUMENT` when `packetId` is not an integer in
 *   0..65535; `RP_ERR_FRAME_TOO_LARGE` when id + payload is over `maxFrameBytes`.
 */
export function encodePacket(packetId: number, payload: Uint8Array, framing: Framing): Buffer {
  const { lengthBytes, byteOrder, maxFrameBytes } = framing;
  if (!Number.isInteger(packetId) || packetId < 0 || packetId > MAX_PACKET_ID) {
    throw new RingportError(
      ErrorCodes.INVALID_ARGUMENT,
      `packet id must be an integer in 0..${MAX_PACKET_ID}, got ${String(packetId)}`,
    );
  }
  const bodyLength = PACKET_ID_BYTES + payload.length;
  if (bodyLength > maxFrameBytes) {
    throw new RingportError(
      ErrorCodes.FRAME_TOO_LARGE,
      `packet body of ${bodyLength} bytes (id + payload) is over maxFrameBytes ${maxFrameBytes}`,
    );
  }
  const frame = Buffer.allocUnsafe(lengthBytes + bodyLength);
  writeUint(frame, 0, lengthBytes, byteOrder, bodyLength);
  writeUint(frame, lengthBytes, PACKET_ID_BYTES, byteOrder, packetId);
  frame.set(payload, lengthBytes + PACKET_ID_BYTES);
  return frame;
}

/**
 * Reads the packet id at the start of a frame body.
 *
 * @throws RingportError `RP_ERR_DECODE` when the body is shorter than the id.
 */
export function readPacketId(body: Buffer, framing: Framing): number {
  checkBodyLength(body);
  return readUint(body, 0, PACKET_ID_BYTES, framing.byteOrder);
}

/**
 * Reads the packet id of a body given as `buffer[start, end)`, checking only
 * that it is there (the hot path of a receiver that takes frames as ranges).
 *
 * @throws RingportError `RP_ERR_DECODE` when the body is shorter than the id.
 */
export function readPacketIdAt(buffer: Buffer, start: number, end: number, framing: Framing): number {
  if (end - start < PACKET_ID_BYTES) {
    throw new RingportError(
      ErrorCodes.DECODE,
      `frame body of ${end - start} bytes is shorter than the ${PACKET_ID_BYTES}-byte packet id`,
    );
  }
  return readUint(buffer, start, PACKET_ID_BYTES, framing.byteOrder);
}

/**
 * The payload after the packet id, as a view of `body` (no copy).
 *
 * @throws RingportError `RP_ERR_DECODE` when the body is shorter than the id, rather
 *   than passing off a malformed body as an empty payload.
 */
export function packetPayload(body: Buffer): Buffer {
  checkBodyLength(body);
  return body.subarray(PACKET_ID_BYTES);
}

function checkBodyLength(body: Buffer): void {
  if (body.length < PACKET_ID_BYTES) {
    throw new RingportError(
      ErrorCodes.DECODE,
      `frame body of ${body.length} bytes is shorter than the ${PACKET_ID_BYTES}-byte packet id`,
    );
  }
}
