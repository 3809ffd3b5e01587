import { ErrorCodes, RingportError } from '../errors';

export interface ReconnectOptions {
  /** Delay before the first retry. Default 100 ms. */
  initialDelayMs?: number;
  /** The backoff doubles up to this. Default 5000 ms. */
  maxDelayMs?: number;
  /** Attempts after a loss (or after the first failed dial) before giving up. Default: no limit. */
  maxRetries?: number;
  /**
   * Fraction of each delay that is random, so a fleet of clients dropped by
   * one server restart does not return in lockstep. Default 0.5.
   */
  jitter?: number;
  /** Packets sent while reconnecting are queued up to this many bytes; past it `send` throws. Default 256 KiB. */
  maxQueuedBytes?: number;
}

export type ReconnectPolicy = Required<ReconnectOptions>;

export function resolveReconnect(options: ReconnectOptions | boolean | undefined): ReconnectPolicy | undefined {
  if (options === undefined || options === false) return undefined;
  const o = options === true ? {} : options;
  const policy: ReconnectPolicy = {
    initialDelayMs: o.initialDelayMs ?? 100,
    maxDelayMs: o.maxDelayMs ?? 5000,
    maxRetries: o.maxRetries ?? Infinity,
    jitter: o.jitter ?? 0.5,
    maxQueuedBytes: o.maxQueuedBytes ?? 256 * 1024,
  };
  if (!(policy.initialDelayMs >= 0) || !(policy.maxDelayMs >= policy.initialDelayMs)) {
    throw new RingportError(ErrorCodes.INVALID_ARGUMENT, 'reconnect: need 0 <= initialDelayMs <= maxDelayMs');
  }
  if (!(policy.jitter >= 0 && policy.jitter <= 1)) {
    throw new RingportError(ErrorCodes.INVALID_ARGUMENT, 'reconnect.jitter must be between 0 and 1');
  }
  if (!(policy.maxRetries >= 0) || !(policy.maxQueuedBytes >= 0)) {
    throw new RingportError(ErrorCodes.INVALID_ARGUMENT, 'reconnect: maxRetries and maxQueuedBytes must be >= 0');
  }
  return policy;
}

/** Exponential backoff with jitter: attempt 0 waits about `initialDelayMs`, each later one twice as long, capped. */
export function backoffDelayMs(policy: ReconnectPolicy, attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling * (1 - policy.jitter * random()));
}
