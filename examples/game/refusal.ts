import type { Middleware } from '../../src';

/**
 * A request the lobby turns down: the player gets an `Error` reply with this
 * code and the session stays open. Handlers and middleware throw it; the
 * `replyToRefusals` middleware turns it into the reply.
 */
export class Refusal extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'Refusal';
  }
}

/**
 * The outermost middleware: a `Refusal` thrown anywhere further in (later
 * middleware or the handler) becomes an `Error` reply. Anything else is a bug
 * and goes on to ringport's error hook.
 */
export function replyToRefusals(errorPacket: string): Middleware {
  return async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      if (!(err instanceof Refusal)) throw err;
      if (ctx.session.isOpen) {
        ctx.session.send(errorPacket, { code: err.code, message: err.message, packet: String(ctx.packet) });
      }
    }
  };
}
