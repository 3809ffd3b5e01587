/** How much of a closing connection the peer has yet to take, or undefined once it is gone. */
export type UnsentProbe = () => { bytes: number; kernelCounted: boolean } | undefined;

/** A graceful close that makes no progress for this long is reset. */
export const STALLED_CLOSE_MS = 2000;

/**
 * Once everything has left our queue, a backend that cannot see the kernel's
 * send queue cannot tell a slow reader from a dead one: it waits this long
 * for the peer's FIN (a reader must take the kernel's buffer in that time).
 */
export const BLIND_FIN_WAIT_MS = 10_000;

/**
 * Watches a graceful close (flush, FIN, wait for the peer's FIN) and calls
 * `reset` once it stops making progress: a peer that stops reading, or never
 * answers our FIN, cannot hold a connection open. Progress is bytes taken by
 * the peer; once it has taken everything, it gets one more window for its
 * FIN. Resetting any earlier would throw away what the peer had not read.
 */
export function watchGracefulClose(unsent: UnsentProbe, reset: () => void): void {
  let before = unsent()?.bytes ?? 0;
  let waitingForFin = false;
  const check = (): void => {
    const now = unsent();
    if (now === undefined) return;
    if (now.bytes > 0 && now.bytes < before) {
      before = now.bytes;
      schedule(STALLED_CLOSE_MS);
    } else if (now.bytes === 0 && !waitingForFin) {
      waitingForFin = true;
      schedule(now.kernelCounted ? STALLED_CLOSE_MS : BLIND_FIN_WAIT_MS);
    } else {
      reset();
    }
  };
  const schedule = (ms: number): void => {
    setTimeout(check, ms).unref();
  };
  schedule(STALLED_CLOSE_MS);
}
