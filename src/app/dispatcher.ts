import { packetPayload, readPacketId, type Framing } from '../framing';
import type { PacketKey, Session } from '../session';
import type { Codec } from './codec';
import { compose, type Middleware } from './compose';
import type { ErrorHook, PacketContext, PacketHandler } from './context';

export interface DispatchOptions {
  /** What a packet id with no handler gets. Default `close` (reason `unknown-packet`). */
  onUnknownPacket?: 'close' | 'ignore';
  /** Whether a throwing handler closes its session (reason `handler-error`). Default `close`. */
  onHandlerError?: 'close' | 'keep';
  /** Receives handler and middleware errors. Default: written to stderr. */
  onError?: ErrorHook;
}

interface Route {
  readonly handler: PacketHandler;
  readonly replyId: number;
}

const logError: ErrorHook = (error, ctx) => {
  console.error(`ringport: handler for packet ${String(ctx.packet)} on session ${ctx.session.id} failed:`, error);
};

/**
 * Turns frame bodies into handler calls: packet id, route, decode, middleware,
 * handler, reply. A protocol violation closes only the offending session.
 */
export class Dispatcher {
  /** Packets dropped because `onUnknownPacket` is `ignore`. */
  ignoredPackets = 0;

  private readonly routes = new Map<number, Route>();
  private readonly middleware: Middleware[] = [];
  private chain: ((ctx: PacketContext) => Promise<void>) | undefined;
  private readonly closeOnUnknown: boolean;
  private readonly closeOnHandlerError: boolean;
  private readonly onError: ErrorHook;

  constructor(
    private readonly codec: Codec,
    private readonly framing: Framing,
    options: DispatchOptions,
  ) {
    this.closeOnUnknown = (options.onUnknownPacket ?? 'close') === 'close';
    this.closeOnHandlerError = (options.onHandlerError ?? 'close') === 'close';
    this.onError = options.onError ?? logError;
  }

  use(middleware: Middleware): void {
    this.middleware.push(middleware);
    this.chain = compose(this.middleware, this.runHandler);
  }

  handle(packet: PacketKey, handler: PacketHandler, reply?: PacketKey): void {
    const id = this.codec.idOf(packet);
    this.routes.set(id, { handler, replyId: reply === undefined ? id : this.codec.idOf(reply) });
  }

  readonly dispatch = (session: Session, body: Buffer): void => {
    let id: number;
    let payload: Buffer;
    try {
      id = readPacketId(body, this.framing);
      payload = packetPayload(body);
    } catch {
      session.close('decode-error');
      return;
    }
    if (!this.routes.has(id)) {
      if (this.closeOnUnknown) session.close('unknown-packet');
      else this.ignoredPackets++;
      return;
    }
    let message: unknown;
    try {
      message = this.codec.decode(id, payload);
    } catch {
      session.close('decode-error');
      return;
    }
    const ctx: PacketContext = { session, packetId: id, packet: this.codec.keyOf(id), message, state: {} };
    if (this.chain === undefined) {
      try {
        const result = this.runHandler(ctx);
        if (result !== undefined) result.catch((err: unknown) => this.fail(err, ctx));
      } catch (err) {
        this.fail(err, ctx);
      }
    } else {
      this.chain(ctx).catch((err: unknown) => this.fail(err, ctx));
    }
  };

  /** Runs the packet's handler and sends its reply; returns a promise only when the handler is async. */
  private readonly runHandler = (ctx: PacketContext): Promise<void> | undefined => {
    const route = this.routes.get(ctx.packetId)!;
    const result = route.handler(ctx.session, ctx.message, ctx);
    if (result instanceof Promise) return result.then((reply) => this.reply(route, ctx, reply));
    this.reply(route, ctx, result);
    return undefined;
  };

  private reply(route: Route, ctx: PacketContext, reply: unknown): void {
    // The session may have closed while an async handler ran; the reply has nowhere to go.
    if (reply === undefined || !ctx.session.isOpen) return;
    ctx.session.send(this.codec.keyOf(route.replyId), reply);
  }

  private fail(error: unknown, ctx: PacketContext): void {
    this.onError(error, ctx);
    if (this.closeOnHandlerError) ctx.session.close('handler-error');
  }
}
