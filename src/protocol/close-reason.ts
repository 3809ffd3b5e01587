/**
 * Why a session closed. The built-in reasons are a stable, documented set
 * (see the README); applications may close a session with a reason of their
 * own (for example `rate-limited`), which reaches the close event unchanged.
 */
export type CloseReason =
  /** `session.close()` or `client.close()` on this side, with no other reason. */
  | 'closed'
  /** The peer closed the connection. */
  | 'peer-closed'
  /** A socket error (reset, unreachable); the close event carries the error. */
  | 'error'
  /** A frame declared a length over `maxFrameBytes`. */
  | 'frame-too-large'
  /** A packet id with no handler while `onUnknownPacket` is `close`. */
  | 'unknown-packet'
  /** A payload the codec could not decode, or a body shorter than a packet id. */
  | 'decode-error'
  /** The peer broke its wire protocol's rules (a WebSocket frame with reserved bits set, unmasked, ...). */
  | 'protocol-error'
  /** A handler or middleware threw while `onHandlerError` is `close`. */
  | 'handler-error'
  /** The peer did not read: its send queue passed `maxQueueBytes`. */
  | 'backpressure'
  /** No whole packet arrived for `idleTimeoutMs`. */
  | 'idle-timeout'
  /** The server or client is shutting down. */
  | 'shutdown'
  /** An outbound session could not (re)connect within its retry budget. */
  | 'connect-failed'
  // eslint-disable-next-line @typescript-eslint/ban-types
  | (string & {});

export const BUILT_IN_CLOSE_REASONS: readonly CloseReason[] = [
  'closed',
  'peer-closed',
  'error',
  'frame-too-large',
  'unknown-packet',
  'decode-error',
  'protocol-error',
  'handler-error',
  'backpressure',
  'idle-timeout',
  'shutdown',
  'connect-failed',
];
