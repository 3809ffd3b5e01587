import type { CloseReason } from '../close-reason';
import { CLOSE_CODE } from './receiver';

/**
 * ringport's close reasons as WebSocket close codes and back (RFC 6455
 * section 7.4.1). A close frame also carries the reason itself as its text,
 * so a browser's `CloseEvent.reason` reads `idle-timeout`, say. The README
 * has the table.
 */
const CODE_FOR_REASON: Readonly<Record<string, number>> = {
  closed: CLOSE_CODE.NORMAL,
  shutdown: CLOSE_CODE.GOING_AWAY,
  'protocol-error': CLOSE_CODE.PROTOCOL_ERROR,
  'unknown-packet': CLOSE_CODE.UNSUPPORTED_DATA,
  'decode-error': CLOSE_CODE.INVALID_PAYLOAD,
  'idle-timeout': CLOSE_CODE.POLICY_VIOLATION,
  backpressure: CLOSE_CODE.POLICY_VIOLATION,
  'frame-too-large': CLOSE_CODE.MESSAGE_TOO_BIG,
  'handler-error': CLOSE_CODE.INTERNAL_ERROR,
  error: CLOSE_CODE.INTERNAL_ERROR,
};

/** Close reasons of the application's own (`rate-limited`) travel as this private-use code with their text. */
export const APPLICATION_CLOSE_CODE = 4000;

/** The close code this side sends when it closes with `reason`. */
export function closeCodeFor(reason: CloseReason): number {
  return CODE_FOR_REASON[reason] ?? APPLICATION_CLOSE_CODE;
}

const REASON_FOR_CODE: Readonly<Record<number, CloseReason>> = {
  [CLOSE_CODE.PROTOCOL_ERROR]: 'protocol-error',
  [CLOSE_CODE.UNSUPPORTED_DATA]: 'unknown-packet',
  [CLOSE_CODE.INVALID_PAYLOAD]: 'decode-error',
  [CLOSE_CODE.MESSAGE_TOO_BIG]: 'frame-too-large',
};

/**
 * The close reason of a session whose peer closed it with `code` and
 * `text`: a code that names a fault in what this side sent (1002, 1003,
 * 1007, 1009) gives that fault's reason; a private-use code (4000-4999)
 * gives the peer's own reason, its text; anything else (1000, 1001, 1005,
 * 1008, 1011: the peer's own trouble, ...) is `peer-closed`, as a peer's FIN
 * is on a framed connection. The close event's error says which code it was.
 */
export function closeReasonFor(code: number, text: string): CloseReason {
  if (code >= 4000 && code <= 4999 && text !== '') return text;
  return REASON_FOR_CODE[code] ?? 'peer-closed';
}
