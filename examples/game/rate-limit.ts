import type { Middleware, PacketKey, Session } from '../../src';
import { Refusal } from './refusal';

export interface RateLimitOptions {
  /** The packets this limit counts; others pass untouched. */
  packets: readonly PacketKey[];
  /** Tokens added per second: the sustained rate allowed. */
  ratePerSec: number;
  /** Bucket size: how many may come at once after a quiet spell. */
  burst: number;
  /**
   * Refused packets also fill a bucket that drains at `ratePerSec`; once it
   * holds more than this, the sender is flooding and the session is closed
   * with reason `rate-limited`.
   */
  closeAfterRefusals: number;
}

/** A token bucket and its twin that counts refusals. */
interface Buckets {
  tokens: number;
  refusals: number;
  updatedMs: number;
}

/**
 * A per-session token bucket. A packet within the rate passes; one over it
 * is refused (`rate-limited`); a session that keeps sending over it is
 * closed with reason `rate-limited`.
 */
export function rateLimit(options: RateLimitOptions): Middleware {
  const limited = new Set<PacketKey>(options.packets);
  // Keyed by session and dropped with it; `session.data` belongs to the game.
  const buckets = new WeakMap<Session, Buckets>();
  return (ctx, next) => {
    if (!limited.has(ctx.packet)) return next();
    const now = performance.now();
    let b = buckets.get(ctx.session);
    if (b === undefined) {
      b = { tokens: options.burst, refusals: 0, updatedMs: now };
      buckets.set(ctx.session, b);
    }
    const refill = ((now - b.updatedMs) / 1000) * options.ratePerSec;
    b.tokens = Math.min(options.burst, b.tokens + refill);
    b.refusals = Math.max(0, b.refusals - refill);
    b.updatedMs = now;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return next();
    }
    b.refusals += 1;
    if (b.refusals > options.closeAfterRefusals) {
      ctx.session.close('rate-limited');
      return;
    }
    throw new Refusal('rate-limited', `slow down: at most ${options.ratePerSec} per second`);
  };
}
