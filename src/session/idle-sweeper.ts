import { idleClockMs, IdleList } from './idle-list';
import type { Session } from './session';

/**
 * The sessions that share one quiet period: those bound by the endpoint's
 * `idleTimeoutMs`, or those of a protocol with a keep-alive of its own (a
 * WebSocket listener's ping interval). A session quiet for `quietMs` is
 * asked for a sign of life when its protocol can ask (a ping) and closed
 * with `idle-timeout` when it cannot, or when it was asked and stayed quiet
 * as long again. One list and one timer per quiet period keep the sweep
 * O(expired).
 */
export class IdleSweeper {
  private readonly list = new IdleList<Session>();
  private readonly timer: NodeJS.Timeout;

  constructor(readonly quietMs: number) {
    // Sweeping a few times per period keeps the overshoot under a quarter of it.
    this.timer = setInterval(this.sweep, Math.max(10, quietMs / 4));
    this.timer.unref();
  }

  /** A sign of life at `nowMs` ({@link idleClockMs}): the session starts a new quiet period, with no sign asked for. */
  touch(session: Session, nowMs: number): void {
    session.askedForLife = false;
    this.list.touch(session, nowMs);
  }

  remove(session: Session): void {
    this.list.remove(session);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private readonly sweep = (): void => {
    const now = idleClockMs();
    for (const session of this.list.sweep(now - this.quietMs)) {
      if (!session.askedForLife && session.askForLife()) {
        this.list.touch(session, now);
        session.askedForLife = true;
      } else {
        session.close('idle-timeout');
      }
    }
  };
}
