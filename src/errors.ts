/**
 * Every error ringport throws or reports carries a stable `code`; tests and
 * applications should branch on the code, never on the message text.
 */
export const ErrorCodes = {
  /** A frame's declared length is over `maxFrameBytes`. */
  FRAME_TOO_LARGE: 'RP_ERR_FRAME_TOO_LARGE',
  /** A packet id has no handler and `onUnknownPacket` is `close`, or a name is not in the codec. */
  UNKNOWN_PACKET: 'RP_ERR_UNKNOWN_PACKET',
  /** A payload could not be decoded by the codec (or a body is shorter than a packet id). */
  DECODE: 'RP_ERR_DECODE',
  /** A message could not be encoded by the codec (it does not match its type). */
  ENCODE: 'RP_ERR_ENCODE',
  /** `send` on a session that is closed. */
  SESSION_CLOSED: 'RP_ERR_SESSION_CLOSED',
  /** `send` on an outbound session that is reconnecting and whose bounded queue is full. */
  NOT_CONNECTED: 'RP_ERR_NOT_CONNECTED',
  /** An outbound connection attempt failed (and retries, if any, are exhausted). */
  CONNECT_FAILED: 'RP_ERR_CONNECT_FAILED',
  /** A listener could not be opened (the `cause` says why, e.g. EADDRINUSE). */
  LISTEN_FAILED: 'RP_ERR_LISTEN_FAILED',
  /** A forced backend cannot run on this machine; the message says why. */
  BACKEND_UNAVAILABLE: 'RP_ERR_BACKEND_UNAVAILABLE',
  /** An option or argument is out of range or of the wrong type. */
  INVALID_ARGUMENT: 'RP_ERR_INVALID_ARGUMENT',
  /** The server or client has been closed. */
  CLOSED: 'RP_ERR_CLOSED',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export class RingportError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RingportError';
    this.code = code;
  }
}
