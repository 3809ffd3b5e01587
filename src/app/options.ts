import { DEFAULT_QUEUE_LIMITS, type BackendChoice, type QueueLimits } from '../backend';
import { ErrorCodes, RingportError } from '../errors';
import type { FramingOptions } from '../protocol';
import type { Codec } from './codec';
import type { DispatchOptions } from './dispatcher';

export interface Limits extends Partial<QueueLimits> {
  /**
   * Close a session that completes no packet for this long (reason
   * `idle-timeout`); 0 turns it off. Only whole packets count, so this is
   * also the deadline for finishing a frame once it has started: a peer that
   * drips a byte at a time is idle. Default: 60 s on a server (see
   * {@link SERVER_IDLE_TIMEOUT_MS}), off on a client.
   */
  idleTimeoutMs?: number;
}

/**
 * A public server must shed peers that hold a connection and say nothing
 * (half-open, crashed, or slowloris): a game client sends input or a ping far
 * more often than once a minute, so a minute of silence means it is gone.
 */
export const SERVER_IDLE_TIMEOUT_MS = 60_000;

/** Options shared by `createServer` and `connect`. */
export interface EndpointOptions extends DispatchOptions {
  /** `auto` (default) picks the native backend where it works, else `net`; see `server.backend`. */
  backend?: BackendChoice;
  /** Without a codec, packets are numeric ids with raw byte payloads. */
  codec?: Codec;
  framing?: FramingOptions;
  limits?: Limits;
}

/** Fills in the defaults; `idleTimeoutMs` defaults to `defaultIdleTimeoutMs` (the server's and the client's differ). */
export function resolveLimits(
  limits: Limits | undefined,
  defaultIdleTimeoutMs: number,
): QueueLimits & { idleTimeoutMs: number } {
  const resolved = { ...DEFAULT_QUEUE_LIMITS, idleTimeoutMs: defaultIdleTimeoutMs, ...limits };
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
