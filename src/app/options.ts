import { DEFAULT_QUEUE_LIMITS, type BackendChoice, type QueueLimits } from '../backend';
import { ErrorCodes, RingportError } from '../errors';
import type { FramingOptions } from '../framing';
import type { Codec } from './codec';
import type { DispatchOptions } from './dispatcher';

export interface Limits extends Partial<QueueLimits> {
  /** Close a session that sends nothing for this long. Default 0: never. */
  idleTimeoutMs?: number;
}

/** Options shared by `createServer` and `connect`. */
export interface EndpointOptions extends DispatchOptions {
  /** `auto` (default) picks the native backend where it works, else `net`; see `server.backend`. */
  backend?: BackendChoice;
  /** Without a codec, packets are numeric ids with raw byte payloads. */
  codec?: Codec;
  framing?: FramingOptions;
  limits?: Limits;
}

export function resolveLimits(limits: Limits | undefined): QueueLimits & { idleTimeoutMs: number } {
  const resolved = { ...DEFAULT_QUEUE_LIMITS, idleTimeoutMs: 0, ...limits };
  const { lowWaterMarkBytes: low, highWaterMarkBytes: high, maxQueueBytes: max } = resolved;
  if (!(low >= 0 && low <= high && high <= max)) {
    throw new RingportError(
      ErrorCodes.INVALID_ARGUMENT,
      `limits: need 0 <= lowWaterMarkBytes (${low}) <= highWaterMarkBytes (${high}) <= maxQueueBytes (${max})`,
    );
  }
  if (!(resolved.idleTimeoutMs >= 0)) {
    throw new RingportError(ErrorCodes.INVALID_ARGUMENT, 'limits.idleTimeoutMs must be >= 0');
  }
  return resolved;
}
