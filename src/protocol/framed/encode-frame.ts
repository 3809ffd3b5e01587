import { ErrorCodes, RingportError } from '../../errors';
import { writeUint } from './byte-order';
import type { Framing } from './options';

/**
 * Prefixes `body` with its length, in one allocation of header + body.
 *
 * @throws RingportError `RP_ERR_FRAME_TOO_LARGE` when the body is over `maxFrameBytes`.
 */
export function encodeFrame(body: Uint8Array, framing: Framing): Buffer {
  const { lengthBytes, byteOrder, maxFrameBytes } = framing;
  if (body.length > maxFrameBytes) {
    throw new RingportError(
      ErrorCodes.FRAME_TOO_LARGE,
      `frame body of ${body.length} bytes is over maxFrameBytes ${maxFrameBytes}`,
    );
  }
  const frame = Buffer.allocUnsafe(lengthBytes + body.length);
  writeUint(frame, 0, lengthBytes, byteOrder, body.length);
  frame.set(body, lengthBytes);
  return frame;
}
