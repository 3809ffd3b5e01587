import type { EventEmitter } from 'node:events';
import type { PacketKey, Session } from './session';

/** Where application code failed. */
export type FaultSource =
  /** A packet handler, its middleware, or the encoding of the reply it returned. */
  | 'handler'
  /** An event listener (`session`, `sessionClose`, `close`, `drain`, `reconnecting`, `reconnected`, ...). */
  | 'listener'
  /** A hook ringport calls with a request of its own, outside any packet (an upgrade check, say). */
  | 'hook'
  /** An HTTP route handler or HTTP middleware; `event` names the request (`GET /rooms/7`). */
  | 'http';

/** What the error hook learns about a fault. */
export interface FaultContext {
  readonly source: FaultSource;
  /** The session the code ran for, if any. */
  readonly session: Session | undefined;
  /** The packet being handled (source `handler`): the codec's name, or the id without a codec. */
  readonly packet?: PacketKey;
  /** The packet's wire id (source `handler`). */
  readonly packetId?: number;
  /** The decoded message (source `handler`). */
  readonly message?: unknown;
  /** The event whose listener failed (source `listener`). */
  readonly event?: string | symbol;
}

/** Receives every error that application code throws or rejects with. */
export type ErrorHook = (error: unknown, ctx: FaultContext) => void;

const logFault: ErrorHook = (error, ctx) => {
  const where =
    ctx.source === 'handler'
      ? `handler for packet ${String(ctx.packet)}`
      : ctx.source === 'listener'
        ? `'${String(ctx.event)}' listener`
        : ctx.source === 'http'
          ? `HTTP route for ${String(ctx.event)}`
          : 'hook';
  const session = ctx.session === undefined ? '' : ` on session ${ctx.session.id}`;
  console.error(`ringport: ${where}${session} failed:`, error);
};

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | undefined)?.then === 'function';
}

/**
 * The one path by which ringport calls application code: handlers,
 * middleware, the codec on a reply, event listeners and hooks. A throw or a
 * rejection becomes a fault: it goes to the error hook with what is known
 * (session, packet, event), and then the `onHandlerError` policy applies to
 * that session (`close`: it closes with `handler-error`; `keep`: it carries
 * on). A fault never propagates: the batch, the event loop and every other
 * session carry on, as Netty's `exceptionCaught` keeps a pipeline going.
 *
 * An error hook that throws is itself contained: both errors are written to
 * stderr and the policy still applies.
 */
export class Guard {
  private readonly onError: ErrorHook;
  private readonly closeOnFault: boolean;

  constructor(onError: ErrorHook | undefined, closeOnFault: boolean) {
    this.onError = onError ?? logFault;
    this.closeOnFault = closeOnFault;
  }

  /** Reports a fault and applies the policy. Never throws. */
  readonly fault = (error: unknown, ctx: FaultContext): void => {
    try {
      this.onError(error, ctx);
    } catch (hookError) {
      console.error('ringport: onError threw while reporting a fault; the fault:', error, 'what onError threw:', hookError);
    }
    // close() is a no-op on a session already closing or closed.
    if (this.closeOnFault) ctx.session?.close('handler-error');
  };

  /** Reports the rejection of a promise that application code returned, if it rejects. */
  watch(result: unknown, ctx: FaultContext): void {
    if (isThenable(result)) result.then(undefined, (error: unknown) => this.fault(error, ctx));
  }

  /**
   * Calls every listener of `event` on `emitter`, in order, as
   * `EventEmitter.emit` would; a listener that throws, or returns a promise
   * that rejects, is a fault, and the listeners after it still run. Returns
   * whether there were listeners.
   */
  emit(emitter: EventEmitter, event: string | symbol, session: Session | undefined, args: unknown[]): boolean {
    if (emitter.listenerCount(event) === 0) return false;
    // rawListeners, not listeners: a `once` wrapper removes itself when called.
    for (const listener of emitter.rawListeners(event) as Array<(...a: unknown[]) => unknown>) {
      try {
        const result = listener.apply(emitter, args);
        if (isThenable(result)) this.watch(result, { source: 'listener', session, event });
      } catch (error) {
        this.fault(error, { source: 'listener', session, event });
      }
    }
    return true;
  }
}
