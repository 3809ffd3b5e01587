import { ErrorCodes, RingportError } from '../../errors';

/** Framing settings as a caller writes them; every field has a default. */
export interface FramingOptions {
  /** Size of the length prefix in bytes. Default 4. */
  lengthBytes?: 2 | 4;
  /** Byte order of the length prefix and of the packet id. Default `'le'`. */
  byteOrder?: 'le' | 'be';
  /**
   * Largest frame body accepted or sent, in bytes (the prefix is not counted).
   * Default 1 MiB, or 65535 with a 2-byte prefix.
   */
  maxFrameBytes?: number;
}

/** Validated framing settings, as produced by {@link resolveFraming}. */
export interface Framing {
  readonly lengthBytes: 2 | 4;
  readonly byteOrder: 'le' | 'be';
  readonly maxFrameBytes: number;
}

/** Every frame body starts with a u16 packet id, so a body is never shorter than this. */
export const PACKET_ID_BYTES = 2;

// 1 MiB is roomy for game state snapshots while keeping what one peer can make us hold small.
const DEFAULT_MAX_FRAME_BYTES = 1024 * 1024;
const MAX_U16 = 0xffff;
const MAX_U32 = 0xffffffff;

/**
 * Fills in defaults and checks every field, so the hot paths that take a
 * {@link Framing} never validate again.
 *
 * @throws RingportError `RP_ERR_INVALID_ARGUMENT` when a field is out of range.
 */
export function resolveFraming(options: FramingOptions = {}): Framing {
  const { lengthBytes = 4, byteOrder = 'le' } = options;
  if (lengthBytes !== 2 && lengthBytes !== 4) {
    throw invalid(`lengthBytes must be 2 or 4, got ${show(lengthBytes)}`);
  }
  if (byteOrder !== 'le' && byteOrder !== 'be') {
    throw invalid(`byteOrder must be 'le' or 'be', got ${show(byteOrder)}`);
  }
  // The largest length the prefix can carry; a larger limit could never be reached.
  const prefixMax = lengthBytes === 2 ? MAX_U16 : MAX_U32;
  const maxFrameBytes = options.maxFrameBytes ?? Math.min(DEFAULT_MAX_FRAME_BYTES, prefixMax);
  if (!Number.isInteger(maxFrameBytes) || maxFrameBytes < PACKET_ID_BYTES) {
    throw invalid(
      `maxFrameBytes must be an integer of at least ${PACKET_ID_BYTES} (a body holds the packet id), ` +
        `got ${show(maxFrameBytes)}`,
    );
  }
  if (maxFrameBytes > prefixMax) {
    throw invalid(
      `maxFrameBytes ${maxFrameBytes} does not fit a ${lengthBytes}-byte length prefix (at most ${prefixMax})`,
    );
  }
  return Object.freeze({ lengthBytes, byteOrder, maxFrameBytes });
}

function invalid(message: string): RingportError {
  return new RingportError(ErrorCodes.INVALID_ARGUMENT, message);
}

function show(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}
